// Model: a small graph built in C++ runs with the fast kernels as with the reference kernels, at
// several batches; the model file round-trips and every kind of damage gives a ModelFileError
// whose message names the problem.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include <unistd.h>

#include "graph/ops.hpp"
#include "io/model_file.hpp"
#include "graphs_testing.hpp"
#include "sparsert/sparsert.hpp"

namespace sparsert {
namespace {

using test::add_sparse_layers;

// x (batch, 20) -> linear csr (37) + relu -> linear nm 2:4 (20) -> add x -> softmax -> outputs
Graph small_graph() {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 20});
  const auto [h, y] = add_sparse_layers(g, x);
  NodeDef add{"binary", "residual", {y, x}, -1, {}, {}};
  add.attrs.ints["kind"] = {static_cast<int64_t>(BinaryKind::kAdd)};
  const int r = g.add_node(add, "r");
  NodeDef soft{"softmax", "softmax", {r}, -1, {}, {}};
  soft.attrs.ints["axis"] = {-1};
  const int out = g.add_node(soft, "out");
  g.set_outputs({out, h});
  return g;
}

std::vector<float> input(int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(batch * 20));
  for (auto& v : x) v = normal(rng);
  return x;
}

void expect_close(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.shape(), b.shape());
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = a.data_as<float>()[i] - b.data_as<float>()[i];
    num += d * d;
    den += double(b.data_as<float>()[i]) * b.data_as<float>()[i];
  }
  EXPECT_LT(std::sqrt(num / std::max(den, 1e-30)), 1e-5);
}

TEST(Model, FastKernelsMatchReferenceAtEveryBatch) {
  Model fast(small_graph()), ref(small_graph(), ModelOptions{1, true});
  for (int64_t batch : {1, 7, 33, 2, 1}) {
    auto x = input(batch, static_cast<uint32_t>(batch));
    const TensorView view{DType::kF32, {batch, 20}, x.data()};
    auto a = fast.run({view});
    auto b = ref.run({view});
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].shape(), (Shape{batch, 20}));
    EXPECT_EQ(a[1].shape(), (Shape{batch, 37}));
    expect_close(a[0], b[0]);
    expect_close(a[1], b[1]);
  }
}

// Reshapes that are not graph outputs read their input's storage (no copy, not run); that storage
// must then outlive the last reader of every view of it. Here a's block would be handed to b if it
// were freed when its last direct reader (the first reshape) ran, and c would read b's values.
TEST(Model, ViewsShareStorageAndKeepItAlive) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 6});
  auto reshape = [&](int in, std::vector<int64_t> dims, const std::string& name) {
    NodeDef n{"reshape", name, {in}, -1, {}, {}};
    n.attrs.ints["shape_coef"] = {1};
    n.attrs.ints["shape_const"] = {0};
    for (int64_t d : dims) {
      n.attrs.ints["shape_coef"].push_back(0);
      n.attrs.ints["shape_const"].push_back(d);
    }
    return g.add_node(n, name);
  };
  auto binary = [&](BinaryKind kind, int a, int b, const std::string& name) {
    NodeDef n{"binary", name, {a, b}, -1, {}, {}};
    n.attrs.ints["kind"] = {static_cast<int64_t>(kind)};
    return g.add_node(n, name);
  };
  const int x_view = reshape(x, {2, 3}, "x_view");  // a view of a graph input, itself an output: copied
  const int a = binary(BinaryKind::kAdd, x, x, "a");
  const int a_chain = reshape(reshape(a, {3, 2}, "a_view"), {6}, "a_chain");  // a view of a view
  const int b = binary(BinaryKind::kMul, x, x, "b");
  const int c = binary(BinaryKind::kAdd, a_chain, b, "c");
  const int c_view = reshape(c, {2, 3}, "c_view");  // a graph output: copied
  g.set_outputs({c_view, x_view, c});
  Model whole(g), sliced(g, ModelOptions{1, false, 2});
  EXPECT_EQ(sliced.micro_batch(5), 2);  // reshapes that keep the batch in dim 0 allow slices
  for (const Model* model : {&whole, &sliced}) {
    for (int64_t batch : {1, 5}) {
      const Model& m = *model;
      auto xs = input(batch, 9);
      const auto out = m.run({TensorView{DType::kF32, {batch, 6}, xs.data()}});
      ASSERT_EQ(out.size(), 3u);
      EXPECT_EQ(out[0].shape(), (Shape{batch, 2, 3}));
      EXPECT_EQ(out[1].shape(), (Shape{batch, 2, 3}));
      for (int64_t i = 0; i < batch * 6; ++i) {
        const float v = xs[static_cast<size_t>(i)], want = (v + v) + v * v;
        EXPECT_EQ(out[0].data_as<float>()[i], want) << "c_view at " << i;
        EXPECT_EQ(out[2].data_as<float>()[i], want) << "c at " << i;
        EXPECT_EQ(out[1].data_as<float>()[i], v) << "x_view at " << i;
      }
      const auto seconds = m.profile({TensorView{DType::kF32, {batch, 6}, xs.data()}}, 1);
      EXPECT_EQ(seconds[2], 0.0) << "a_view ran";  // node order: x_view, a, a_view, a_chain, b, c, c_view
      EXPECT_EQ(seconds[3], 0.0) << "a_chain ran";
    }
  }
}

// A batch-major graph runs in slices of dim 0 (here 3, 3, 2 of 8 items, outputs listed twice
// included) as it runs whole; a softmax or concat over dim 0 keeps the batch whole.
TEST(Model, MicroBatchesMatchTheWholeBatch) {
  Graph g = small_graph();
  g.set_outputs({g.outputs()[0], g.outputs()[1], g.outputs()[0]});
  Model whole(g), sliced(g, ModelOptions{1, false, 3});
  EXPECT_EQ(whole.micro_batch(8), 8);
  EXPECT_EQ(sliced.micro_batch(8), 3);
  EXPECT_EQ(sliced.micro_batch(1), 1);
  auto x = input(8, 5);
  const TensorView view{DType::kF32, {8, 20}, x.data()};
  const auto a = whole.run({view}), b = sliced.run({view});
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) expect_close(b[i], a[i]);

  for (const char* op : {"softmax", "concat"}) {
    Graph mixing;
    const int in = mixing.add_input("x", DType::kF32, {-1, 4});
    NodeDef n{op, op, {in}, -1, {}, {}};
    n.attrs.ints["axis"] = {0};
    if (std::string(op) == "concat") n.inputs.push_back(in);
    mixing.set_outputs({mixing.add_node(n, "y")});
    Model m(mixing, ModelOptions{1, false, 2});
    EXPECT_EQ(m.micro_batch(6), 6) << op;
    std::vector<float> xs(24);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.1f * static_cast<float>(i);
    const auto y = m.run({TensorView{DType::kF32, {6, 4}, xs.data()}})[0];
    if (std::string(op) == "concat") {
      ASSERT_EQ(y.shape(), (Shape{12, 4}));
      for (int64_t i = 0; i < 48; ++i) EXPECT_EQ(y.data_as<float>()[i], xs[static_cast<size_t>(i % 24)]);
    } else {
      double column = 0;  // softmax over the 6 rows of column 0 sums to 1
      for (int64_t r = 0; r < 6; ++r) column += y.data_as<float>()[r * 4];
      EXPECT_NEAR(column, 1.0, 1e-6);
    }
  }
}

// A micro-batched run's tail runs once at the whole batch: here fc4, whose input z (3 floats an item)
// at batch 8 fits in a micro-batch's arena, while fc3's input y (20 an item) does not. The slices
// write z's rows into the tail's arena; h, a graph output computed in the slices, its rows of h.
TEST(Model, TailOfMicroBatchesRunsAtTheWholeBatch) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 20});
  const auto [h, y] = test::add_sparse_layers(g, x);
  const auto w3 = test::pruned_weights(3, 20, 1.0, 3), w4 = test::pruned_weights(2, 3, 1.0, 4);
  const int z = g.add_node(NodeDef{"linear", "fc3", {y}, -1, {}, {std::make_shared<DenseMatrix>(w3.data(), 3, 20)}}, "z");
  const int out = g.add_node(NodeDef{"linear", "fc4", {z}, -1, {}, {std::make_shared<DenseMatrix>(w4.data(), 2, 3)}}, "out");
  g.set_outputs({out, h});
  Model whole(g), sliced(g, ModelOptions{1, false, 2});
  ASSERT_EQ(sliced.micro_batch(8), 2);
  for (int64_t batch : {8, 5}) {
    std::vector<int64_t> items;
    for (const NodeInfo& n : sliced.node_info(batch)) items.push_back(n.items);
    EXPECT_EQ(items, (std::vector<int64_t>{2, 2, 2, batch})) << "fc1, fc2, fc3 in slices, fc4 whole at batch " << batch;
    auto xs = input(batch, static_cast<uint32_t>(batch));
    const TensorView view{DType::kF32, {batch, 20}, xs.data()};
    const auto a = whole.run({view}), b = sliced.run({view});
    ASSERT_EQ(b.size(), 2u);
    expect_close(b[0], a[0]);
    expect_close(b[1], a[1]);
  }
  for (const NodeInfo& n : sliced.node_info(1)) EXPECT_EQ(n.items, 1) << n.name;
}

// The batch may move out of dim 0 on the way (a fused q/k/v projection split after a permute):
// y = x[:, 0:2] through (B, 3, 2) -> (3, B, 2) -> slice [0:1] of dim 0 -> (B, 2) runs in slices;
// (3, B, 2) reshaped to (3B, 2) as an output does not (an item's rows would not be one block).
TEST(Model, MicroBatchesFollowTheBatchThroughPermutes) {
  for (bool item_rows_apart : {false, true}) {
    Graph g;
    const int x = g.add_input("x", DType::kF32, {-1, 6});
    auto reshape = [&](int in, std::vector<int64_t> coef, std::vector<int64_t> dims, const std::string& name) {
      NodeDef n{"reshape", name, {in}, -1, {}, {}};
      n.attrs.ints["shape_coef"] = coef;
      n.attrs.ints["shape_const"] = dims;
      return g.add_node(n, name);
    };
    NodeDef perm{"permute", "perm", {reshape(x, {1, 0, 0}, {0, 3, 2}, "split")}, -1, {}, {}};
    perm.attrs.ints["dims"] = {1, 0, 2};
    const int p = g.add_node(perm, "p");
    int y;
    if (item_rows_apart) {
      y = reshape(p, {3, 0}, {0, 2}, "merged");
    } else {
      NodeDef slice{"slice", "first", {p}, -1, {}, {}};
      slice.attrs.ints["axis"] = {0};
      slice.attrs.ints["start"] = {0};
      slice.attrs.ints["end"] = {1};
      y = reshape(g.add_node(slice, "q"), {1, 0}, {0, 2}, "y");
    }
    g.set_outputs({y});
    Model m(g, ModelOptions{1, false, 2});
    EXPECT_EQ(m.micro_batch(5), item_rows_apart ? 5 : 2);
    auto xs = input(5, 3);  // 100 values; the first 30 are x
    const auto out = m.run({TensorView{DType::kF32, {5, 6}, xs.data()}})[0];
    for (int64_t b = 0; b < 5; ++b)
      for (int64_t j = 0; j < 2; ++j) {
        // merged: row k·5 + b holds x[b, 2k .. 2k + 1]; the slice keeps k = 0.
        for (int64_t k = 0; k < (item_rows_apart ? 3 : 1); ++k) {
          EXPECT_EQ(out.data_as<float>()[(k * 5 + b) * 2 + j], xs[static_cast<size_t>(b * 6 + 2 * k + j)]);
        }
      }
  }
}

TEST(Model, RejectsBadInputsNamingThem) {
  Model m(small_graph());
  auto x = input(2, 1);
  EXPECT_THROW(m.run({}), InvalidArgument);
  try {
    m.run({TensorView{DType::kF32, {2, 21}, x.data()}});
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("input 'x' has shape (2, 21) (expected (batch, 20))"), std::string::npos) << e.what();
  }
  EXPECT_THROW(m.run({TensorView{DType::kI64, {2, 20}, x.data()}}), InvalidArgument);
}

TEST(Model, UnknownOperatorIsNamed) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {2});
  g.add_node(NodeDef{"frobnicate", "layer7", {x}, -1, {}, {}}, "y");
  g.set_outputs({1});
  try {
    Model m(g);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("node 'layer7': unknown operator 'frobnicate'"), std::string::npos);
  }
}

// The mask-building operators in a graph (a BERT/GPT-2 style mask: causal positions from an
// arange, a key-padding mask of bools, where, cumsum for position ids, x[arange(B), -1] pooling).
// Nodes without inputs (arange) get planned buffers; one whose length follows the batch computes
// positions, so the graph then runs whole instead of in micro-batches.
NodeDef make_node(const std::string& op, const std::string& name, std::vector<int> inputs,
                  std::map<std::string, std::vector<int64_t>> ints = {}) {
  NodeDef n{op, name, std::move(inputs), -1, {}, {}};
  n.attrs.ints = std::move(ints);
  return n;
}

Graph mask_graph(bool batch_arange) {
  Graph g;
  const int scores = g.add_input("scores", DType::kF32, {-1, 6, 6});
  const int mask = g.add_input("mask", DType::kBool, {-1, 6});
  const int pos = g.add_node(
      make_node("arange", "pos", {}, {{"start", {0}}, {"step", {1}}, {"length_coef", {0}}, {"length_const", {6}}}), "pos");
  const int col = g.add_node(make_node("reshape", "col", {pos}, {{"shape_coef", {0, 0}}, {"shape_const", {6, 1}}}), "col");
  const int causal = g.add_node(make_node("binary", "causal", {pos, col}, {{"kind", {int64_t(BinaryKind::kLe)}}}), "causal");
  const int keys = g.add_node(make_node("reshape", "keys", {mask}, {{"shape_coef", {1, 0, 0}}, {"shape_const", {0, 1, 6}}}), "keys");
  const int allowed = g.add_node(make_node("binary", "allowed", {causal, keys}, {{"kind", {int64_t(BinaryKind::kAnd)}}}), "allowed");
  auto fill = std::make_shared<Tensor>(DType::kF32, Shape{});
  fill->data_as<float>()[0] = -1e4f;
  const int masked = g.add_node(make_node("where", "masked", {allowed, scores, g.add_constant("fill", fill)}), "masked");
  const int counts = g.add_node(make_node("cumsum", "counts", {mask}, {{"axis", {-1}}}), "counts");
  std::vector<int> outputs = {masked, counts, allowed};
  if (batch_arange) {
    const int items = g.add_node(
        make_node("arange", "items", {}, {{"start", {0}}, {"step", {1}}, {"length_coef", {1}}, {"length_const", {0}}}),
        "items");
    auto last = std::make_shared<Tensor>(DType::kI64, Shape{1});
    last->data_as<int64_t>()[0] = -1;
    outputs.push_back(
        g.add_node(make_node("index", "pooled", {masked, items, g.add_constant("last", last)}, {{"axis", {0}}}), "pooled"));
  }
  g.set_outputs(outputs);
  return g;
}

TEST(Model, MaskOperatorsAndZeroInputNodes) {
  for (bool batch_arange : {false, true}) {
    const Graph g = mask_graph(batch_arange);
    Model whole(g), sliced(g, ModelOptions{1, false, 1});
    EXPECT_EQ(sliced.micro_batch(3), batch_arange ? 3 : 1) << "an arange of batch length keeps the batch whole";
    for (int64_t batch : {1, 3, 2}) {
      std::mt19937 rng(static_cast<uint32_t>(40 + batch));
      std::normal_distribution<float> normal;
      std::vector<float> scores(static_cast<size_t>(batch * 36));
      for (auto& v : scores) v = normal(rng);
      std::vector<uint8_t> mask(static_cast<size_t>(batch * 6));
      for (auto& v : mask) v = rng() % 3 != 0;
      const std::vector<TensorView> in = {{DType::kF32, {batch, 6, 6}, scores.data()}, {DType::kBool, {batch, 6}, mask.data()}};
      for (const Model* m : {&whole, &sliced}) {
        const auto out = m->run(in);
        ASSERT_EQ(out.size(), batch_arange ? 4u : 3u);
        ASSERT_EQ(out[0].shape(), (Shape{batch, 6, 6}));
        ASSERT_EQ(out[1].dtype(), DType::kI64);
        ASSERT_EQ(out[2].dtype(), DType::kBool);
        ASSERT_EQ(out[2].shape(), (Shape{batch, 6, 6}));
        for (int64_t b = 0; b < batch; ++b) {
          int64_t count = 0;
          for (int64_t j = 0; j < 6; ++j) {
            count += mask[size_t(b * 6 + j)];
            EXPECT_EQ(out[1].data_as<int64_t>()[b * 6 + j], count) << "counts " << b << ", " << j;
            for (int64_t i = 0; i < 6; ++i) {
              const int64_t at = (b * 6 + i) * 6 + j;
              const bool keep = j <= i && mask[size_t(b * 6 + j)] != 0;
              EXPECT_EQ(out[2].data_as<uint8_t>()[at], keep ? 1 : 0) << "allowed at " << at;
              EXPECT_EQ(out[0].data_as<float>()[at], keep ? scores[size_t(at)] : -1e4f) << "masked at " << at;
            }
            if (batch_arange) {
              ASSERT_EQ(out[3].shape(), (Shape{batch, 6}));
              EXPECT_EQ(out[3].data_as<float>()[b * 6 + j], out[0].data_as<float>()[(b * 6 + 5) * 6 + j]) << "pooled";
            }
          }
        }
      }
    }
  }
}

TEST(Model, GraphWithoutInputsRunsItsZeroInputNodes) {
  Graph g;
  const int a = g.add_node(
      make_node("arange", "a", {}, {{"start", {3}}, {"step", {-2}}, {"length_coef", {0}}, {"length_const", {5}}}), "a");
  const int s = g.add_node(make_node("cumsum", "s", {a}, {{"axis", {0}}}), "s");
  g.set_outputs({s, a});
  Model m(g);
  const auto out = m.run({});
  ASSERT_EQ(out.size(), 2u);
  const std::vector<int64_t> want_a = {3, 1, -1, -3, -5}, want_s = {3, 4, 3, 0, -5};
  ASSERT_EQ(out[1].shape(), (Shape{5}));
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(out[1].data_as<int64_t>()[i], want_a[i]);
    EXPECT_EQ(out[0].data_as<int64_t>()[i], want_s[i]);
  }
}

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    // One file per test and process: ctest -j runs the tests of this fixture side by side.
    path_ = ::testing::TempDir() + "sparsert_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
            std::to_string(::getpid()) + ".sprt";
    Model(small_graph()).save(path_);
    std::ifstream in(path_, std::ios::binary);
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  void TearDown() override { std::remove(path_.c_str()); }

  void write(const std::vector<char>& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  // Rewrites the header's checksum so that a deliberate change reaches the field validation.
  static void reseal(std::vector<char>& bytes) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 32; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ull;
    std::memcpy(bytes.data() + 24, &h, 8);
  }
  std::string load_error() {
    try {
      Model::load(path_);
    } catch (const ModelFileError& e) {
      return e.what();
    }
    return "no error";
  }

  std::string path_;
  std::vector<char> bytes_;
};

TEST_F(ModelFile, RoundTripsExactly) {
  Model original(small_graph());
  Model loaded = Model::load(path_);
  auto x = input(5, 9);
  const TensorView view{DType::kF32, {5, 20}, x.data()};
  auto a = original.run({view});
  auto b = loaded.run({view});
  for (size_t o = 0; o < a.size(); ++o) {
    ASSERT_EQ(a[o].shape(), b[o].shape());
    EXPECT_EQ(std::memcmp(a[o].data(), b[o].data(), static_cast<size_t>(a[o].nbytes())), 0);
  }
}

TEST_F(ModelFile, EveryTruncationIsDetected) {
  for (size_t keep : {size_t{0}, size_t{7}, size_t{31}, size_t{32}, bytes_.size() / 2, bytes_.size() - 1}) {
    write(std::vector<char>(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(keep)));
    const std::string e = load_error();
    EXPECT_TRUE(e.find("truncated") != std::string::npos || e.find("fewer than the 32-byte header") != std::string::npos)
        << keep << ": " << e;
  }
}

TEST_F(ModelFile, CorruptionVersionAndMagicAreNamed) {
  auto flipped = bytes_;
  flipped[bytes_.size() / 2] ^= 1;
  write(flipped);
  EXPECT_NE(load_error().find("checksum"), std::string::npos);

  auto future = bytes_;
  future[8] = 3;
  write(future);
  EXPECT_NE(load_error().find("format version 3 (this sparsert reads version 2; upgrade sparsert)"), std::string::npos)
      << load_error();
  auto past = bytes_;
  past[8] = 1;
  write(past);
  EXPECT_NE(load_error().find("format version 1 (this sparsert reads version 2; save or convert the model again"),
            std::string::npos)
      << load_error();

  auto other = bytes_;
  other[0] = 'X';
  write(other);
  EXPECT_NE(load_error().find("magic"), std::string::npos);
}

TEST_F(ModelFile, ResealedDamageIsCaughtByFieldValidation) {
  // A huge value count: more items than the file could hold.
  auto counts = bytes_;
  const uint32_t huge = 0x7fffffff;
  std::memcpy(counts.data() + 32, &huge, 4);
  reseal(counts);
  write(counts);
  EXPECT_NE(load_error().find("value count"), std::string::npos) << load_error();

  // Every single-byte change in the body, resealed, either loads a valid model or throws
  // ModelFileError; it never crashes (the sanitizer-free version of a fuzz pass).
  for (size_t i = 32; i < bytes_.size(); i += 7) {
    auto damaged = bytes_;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
    reseal(damaged);
    write(damaged);
    try {
      Model m = Model::load(path_);
      auto x = input(3, 1);
      m.run({TensorView{DType::kF32, {3, 20}, x.data()}});
    } catch (const ModelFileError&) {
    } catch (const InvalidArgument&) {  // a damaged shape that only shows when run
    }
  }
}

// A chain of linear layers 20 → 20, one per format, each weight pruned to about half and relu'd,
// with a bias constant: every kind of array the model file holds.
Graph every_format_graph() {
  Graph g;
  int x = g.add_input("x", DType::kF32, {-1, 20});
  const auto w = test::pruned_weights(20, 20, 0.5, 3);
  auto w24 = w;
  for (size_t i = 0; i < w24.size(); ++i)
    if (i % 4 >= 2) w24[i] = 0.0f;
  const std::vector<std::shared_ptr<const Weight>> weights = {
      std::make_shared<DenseMatrix>(w.data(), 20, 20), std::make_shared<CsrMatrix>(w.data(), 20, 20),
      std::make_shared<BsrMatrix>(w.data(), 20, 20, 4, 4), std::make_shared<NmMatrix>(w24.data(), 20, 20, 2, 4),
      std::make_shared<CscMatrix>(w.data(), 20, 20)};
  auto bias = std::make_shared<Tensor>(DType::kF32, Shape{20});
  for (int i = 0; i < 20; ++i) bias->data_as<float>()[i] = 0.05f * static_cast<float>(i % 7);
  const int b = g.add_constant("bias", bias);
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::string name = "fc" + std::to_string(i);
    NodeDef fc{"linear", name, {x, b}, -1, {}, {weights[i]}};
    fc.attrs.ints["act"] = {static_cast<int64_t>(Activation::kRelu)};
    x = g.add_node(fc, name + ".out");
  }
  g.set_outputs({x});
  return g;
}

// The first bytes of every array a loaded graph reads: its weights' and constants'.
std::vector<const void*> array_starts(const Graph& graph) {
  std::vector<const void*> out;
  for (const auto& v : graph.values())
    if (v.kind == ValueKind::kConstant) out.push_back(v.constant->data());
  for (const auto& node : graph.nodes()) {
    for (const auto& w : node.weights) {
      if (const auto* d = dynamic_cast<const DenseMatrix*>(w.get())) out.push_back(d->panels());
      if (const auto* c = dynamic_cast<const CsrMatrix*>(w.get())) out.insert(out.end(), {c->row_ptr(), c->values(), c->col_idx16()});
      if (const auto* c = dynamic_cast<const BsrMatrix*>(w.get())) out.insert(out.end(), {c->row_ptr(), c->values(), c->block_col16()});
      if (const auto* c = dynamic_cast<const NmMatrix*>(w.get())) out.insert(out.end(), {c->values(), c->meta()});
      if (const auto* c = dynamic_cast<const CscMatrix*>(w.get())) out.insert(out.end(), {c->col_ptr(), c->values(), c->row_idx16()});
    }
  }
  return out;
}

// The address range of `path`'s mapping in this process (/proc/self/maps), or {0, 0}.
std::pair<uintptr_t, uintptr_t> mapped_range(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.size() < path.size() || line.compare(line.size() - path.size(), path.size(), path) != 0) continue;
    return {std::stoull(line.substr(0, line.find('-')), nullptr, 16),
            std::stoull(line.substr(line.find('-') + 1, line.find(' ') - line.find('-') - 1), nullptr, 16)};
  }
  return {0, 0};
}

TEST_F(ModelFile, LoadMapsTheFileAndReadsEveryArrayInPlace) {
  Model original(every_format_graph());
  original.save(path_);
  auto x = input(3, 11);
  const TensorView view{DType::kF32, {3, 20}, x.data()};
  const auto expected = original.run({view});
  {
    Model loaded = Model::load(path_);
    char resolved[4096];
    ASSERT_NE(::realpath(path_.c_str(), resolved), nullptr);
    const auto [lo, hi] = mapped_range(resolved);
    ASSERT_NE(lo, 0u) << "no mapping of " << resolved;
    const auto starts = array_starts(loaded.graph());
    EXPECT_EQ(starts.size(), 1u + 1 + 3 + 3 + 2 + 3);
    for (const void* p : starts) {
      const auto a = reinterpret_cast<uintptr_t>(p);
      EXPECT_TRUE(a >= lo && a < hi) << "an array was copied out of the mapping";
      EXPECT_EQ(a % 64, 0u);
    }
    // Saving over the file replaces it: the loaded model keeps reading the old one's mapping.
    Model(small_graph()).save(path_);
    auto again = loaded.run({view});
    EXPECT_EQ(std::memcmp(again[0].data(), expected[0].data(), static_cast<size_t>(expected[0].nbytes())), 0);
  }
  EXPECT_EQ(mapped_range(path_).first, 0u);  // unmapped with the model
}

TEST_F(ModelFile, BufferLoadsCopyOrReadInPlace) {
  Model original(every_format_graph());
  original.save(path_);
  std::ifstream in(path_, std::ios::binary);
  const std::vector<char> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  AlignedVector<char> aligned(file.begin(), file.end());
  std::vector<char> shifted(file.size() + 1);
  std::memcpy(shifted.data() + 1, file.data(), file.size());
  auto x = input(2, 12);
  const TensorView view{DType::kF32, {2, 20}, x.data()};
  const auto expected = original.run({view});

  auto inside = [](const Graph& g, const void* base, size_t size) {
    size_t n = 0;
    for (const void* p : array_starts(g)) n += p >= base && p < static_cast<const char*>(base) + size;
    return n;
  };
  Model in_place = Model::load_buffer_in_place(aligned.data(), aligned.size());
  EXPECT_EQ(inside(in_place.graph(), aligned.data(), aligned.size()), array_starts(in_place.graph()).size());
  Model copied = Model::load_buffer(aligned.data(), aligned.size());
  EXPECT_EQ(inside(copied.graph(), aligned.data(), aligned.size()), 0u);
  Model unaligned = Model::load_buffer_in_place(shifted.data() + 1, file.size());  // copied: not 64-byte aligned
  EXPECT_EQ(inside(unaligned.graph(), shifted.data(), shifted.size()), 0u);
  std::fill(shifted.begin(), shifted.end(), 0);
  for (const Model* m : {&in_place, &copied, &unaligned}) {
    auto y = m->run({view});
    EXPECT_EQ(std::memcmp(y[0].data(), expected[0].data(), static_cast<size_t>(expected[0].nbytes())), 0);
  }
}

TEST(Model, RunsNeedingMoreThanTheMemoryLimitAreRefusedBeforeAllocating) {
  ModelOptions capped;
  capped.max_memory_bytes = 64 << 10;
  Model model(small_graph(), capped);
  auto small = input(2, 13);
  EXPECT_EQ(model.run({TensorView{DType::kF32, {2, 20}, small.data()}}).size(), 2u);
  auto large = input(1000, 14);  // outputs alone: 1000 × (20 + 37) floats, 228 KB
  try {
    model.run({TensorView{DType::kF32, {1000, 20}, large.data()}});
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("running the model at batch 1000: its intermediate values and outputs need"),
              std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("more than max_memory_bytes (65536 bytes)"), std::string::npos) << e.what();
  }
  // Without a cap, the machine's memory is the limit: a batch of 2^40 items is refused, not attempted.
  Model uncapped(small_graph());
  const TensorView huge{DType::kF32, {int64_t{1} << 40, 20}, small.data()};
  EXPECT_THROW(uncapped.run({huge}), InvalidArgument);
}

TEST(Tensor, SharedBytesAreCopiedOnFirstWrite) {
  AlignedVector<unsigned char> bytes(8, 7);
  SharedArray<unsigned char> shared(bytes.data(), bytes.size(), nullptr);
  Tensor t(DType::kF32, {2}, shared);
  EXPECT_EQ(static_cast<const Tensor&>(t).data(), bytes.data());
  Tensor copy = t;
  static_cast<unsigned char*>(copy.data())[0] = 1;  // writes its own copy
  EXPECT_EQ(bytes[0], 7);
  EXPECT_NE(static_cast<const Tensor&>(copy).data(), bytes.data());
  EXPECT_EQ(static_cast<const unsigned char*>(static_cast<const Tensor&>(copy).data())[1], 7);
  EXPECT_THROW(Tensor(DType::kF32, {3}, shared), InvalidArgument);
}

// A bool input that is also an output, a bool constant, bool and i64 results and a zero-input node
// round-trip through the file.
Graph bool_graph() {
  Graph g;
  const int flags = g.add_input("flags", DType::kBool, {-1, 5});
  auto keep = std::make_shared<Tensor>(DType::kBool, Shape{5});
  const uint8_t bits[5] = {1, 0, 1, 1, 0};
  std::memcpy(keep->data(), bits, 5);
  const int k = g.add_constant("keep", keep);
  const int flipped = g.add_node(make_node("binary", "flip", {flags, k}, {{"kind", {int64_t(BinaryKind::kXor)}}}), "flipped");
  const int pos = g.add_node(
      make_node("arange", "pos", {}, {{"start", {1}}, {"step", {1}}, {"length_coef", {0}}, {"length_const", {5}}}), "pos");
  const int zero = g.add_constant("zero", std::make_shared<Tensor>(DType::kI64, Shape{}));
  const int picked = g.add_node(make_node("where", "pick", {flipped, pos, zero}), "picked");
  g.set_outputs({flipped, flags, picked});
  return g;
}

TEST_F(ModelFile, BoolValuesRoundTrip) {
  Model original(bool_graph());
  original.save(path_);
  Model loaded = Model::load(path_);
  const auto& values = loaded.graph().values();
  EXPECT_EQ(values[static_cast<size_t>(loaded.graph().find("flags"))].dtype, DType::kBool);
  const auto& keep = values[static_cast<size_t>(loaded.graph().find("keep"))];
  ASSERT_EQ(keep.dtype, DType::kBool);
  EXPECT_EQ(std::memcmp(keep.constant->data(), bool_graph().values()[1].constant->data(), 5), 0);
  std::vector<uint8_t> flags = {1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1};
  const TensorView view{DType::kBool, {3, 5}, flags.data()};
  const auto a = original.run({view}), b = loaded.run({view});
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].dtype(), DType::kBool);
  EXPECT_EQ(b[1].dtype(), DType::kBool);
  EXPECT_EQ(b[2].dtype(), DType::kI64);
  for (size_t o = 0; o < a.size(); ++o) {
    ASSERT_EQ(a[o].shape(), b[o].shape());
    EXPECT_EQ(std::memcmp(a[o].data(), b[o].data(), static_cast<size_t>(a[o].nbytes())), 0) << "output " << o;
  }
  for (int64_t i = 0; i < 15; ++i) {
    const uint8_t want = flags[size_t(i)] ^ (i % 5 == 0 || i % 5 == 2 || i % 5 == 3);
    EXPECT_EQ(b[0].data_as<uint8_t>()[i], want) << i;
    EXPECT_EQ(b[2].data_as<int64_t>()[i], want ? i % 5 + 1 : 0) << i;
  }
}

TEST_F(ModelFile, UnknownDtypeAndNonBinaryBoolAreNamed) {
  // Value 0 is input 'x': u32 name length at byte 36, the name at 40, kind at 41, dtype at 42.
  ASSERT_EQ(bytes_[40], 'x');
  ASSERT_EQ(bytes_[42], 0);
  auto dtype3 = bytes_;
  dtype3[42] = 3;
  reseal(dtype3);
  write(dtype3);
  EXPECT_NE(load_error().find("value 'x' has dtype 3 (expected 0 for f32, 1 for i64 or 2 for bool)"), std::string::npos)
      << load_error();

  // A bool constant's byte of 2: the data of 'keep' starts at the next multiple of 64 after its
  // name, kind, dtype, shape (rank 1) and byte count.
  Model(bool_graph()).save(path_);
  std::ifstream in(path_, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string name = "keep";
  const auto at = std::search(bytes.begin(), bytes.end(), name.begin(), name.end()) - bytes.begin();
  const size_t data = (static_cast<size_t>(at) + 4 + 2 + 4 + 8 + 8 + 63) / 64 * 64;
  ASSERT_EQ(bytes[data], 1);
  ASSERT_EQ(bytes[data + 1], 0);
  bytes[data + 1] = 2;
  reseal(bytes);
  write(bytes);
  EXPECT_NE(load_error().find("bool constant 'keep' holds 2 at element 1 (expected 0 or 1)"), std::string::npos)
      << load_error();
}

}  // namespace
}  // namespace sparsert
