// Findings of the model-file fuzzer (tests/fuzz) and the sanitizer build of .ci/run, each reduced
// to the graph or file field that caused it. Before their fixes each was undefined behaviour that
// only a sanitizer reports (a memcpy from a null pointer, signed overflow in a size product); now
// each loads and runs, or is refused with a message naming the value and the limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "graph/ops.hpp"
#include "graphs_testing.hpp"
#include "sparsert/sparsert.hpp"

namespace sparsert {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "sparsert_fuzz_" + name + "_" + std::to_string(::getpid()) + ".sprt";
}

std::vector<char> saved_bytes(const Graph& graph, const std::string& path) {
  Model(graph).save(path);
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The header's checksum rewritten, so that a deliberate change reaches the field validation.
void reseal(std::vector<char>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 32; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * 1099511628211ull;
  std::memcpy(bytes.data() + 24, &h, 8);
}

std::string run_error(const Graph& graph, int64_t batch) {
  try {
    std::vector<float> x(static_cast<size_t>(batch * 4));
    Model(graph).run({TensorView{DType::kF32, {batch, 4}, x.data()}});
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "no error";
}

// model_file.cpp copied a constant's bytes with memcpy(t->data(), ...), and an empty tensor's
// data() is null (UBSan: null pointer passed as argument 1).
TEST(FuzzRegressions, EmptyConstantRoundTrips) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 3});
  const int empty = g.add_constant("empty", std::make_shared<Tensor>(DType::kF32, Shape{0, 3}));
  g.set_outputs({x, empty});
  const std::string path = temp_path("empty");
  Model(g).save(path);
  const Model loaded = Model::load(path);
  std::remove(path.c_str());
  const float xs[6] = {1, 2, 3, 4, 5, 6};
  const auto out = loaded.run({TensorView{DType::kF32, {2, 3}, xs}});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].shape(), (Shape{0, 3}));
  EXPECT_EQ(std::memcmp(out[0].data(), xs, sizeof(xs)), 0);
}

// An nm weight of 597001043984 rows overflowed rows × groups × n in NmMatrix::from_parts; every
// weight dim read from a file is now below 2^31 (u32 column indices; products of two dims fit).
TEST(FuzzRegressions, HugeWeightDimsAreRefusedByTheReader) {
  const std::string path = temp_path("weight_dims");
  auto bytes = saved_bytes(test::mixed_dtype_graph(), path);
  // fc1's record: u8 format (csr = 1), i64 rows (37), i64 cols (20).
  char record[17] = {1};
  const int64_t rows = 37, cols = 20, huge = int64_t{1} << 40;
  std::memcpy(record + 1, &rows, 8);
  std::memcpy(record + 9, &cols, 8);
  const auto at = std::search(bytes.begin(), bytes.end(), record, record + 17);
  ASSERT_NE(at, bytes.end());
  std::memcpy(&*at + 1, &huge, 8);
  reseal(bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  try {
    Model::load(path);
    ADD_FAILURE() << "a weight of 2^40 rows loaded";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("a weight has shape (1099511627776, 20) (expected each dim in [0, 2^31))"),
              std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
}

// Node shapes from attributes: numel() of an inferred shape overflowed in the planner, and the
// products and affine sizes that reshape and arange form from their attributes overflowed.
TEST(FuzzRegressions, OversizedShapesAreRefusedBeforeTheyOverflow) {
  auto graph_with = [](NodeDef node) {
    Graph g;
    const int x = g.add_input("x", DType::kF32, {-1, 4});
    if (node.op == "reshape") node.inputs = {x};
    const int y = g.add_node(std::move(node), "y");
    g.set_outputs({y, x});
    return g;
  };
  auto node = [](const std::string& op, std::map<std::string, std::vector<int64_t>> ints) {
    NodeDef n{op, op, {}, -1, {}, {}};
    n.attrs.ints = std::move(ints);
    return n;
  };
  const int64_t big = int64_t{1} << 40;
  // 2^47 i64 positions: each size is allowed, the bytes (2^50) are not.
  EXPECT_NE(run_error(graph_with(node("arange", {{"start", {0}}, {"step", {1}}, {"length_coef", {0}},
                                                   {"length_const", {int64_t{1} << 47}}})), 2)
                .find("planning the model: node 'arange' (arange) gives shape (140737488355328,) (expected dims ≥ 0 "
                      "and at most 2^48 bytes)"),
            std::string::npos);
  EXPECT_NE(run_error(graph_with(node("arange", {{"start", {0}}, {"step", {1}}, {"length_coef", {int64_t{1} << 62}},
                                                   {"length_const", {0}}})), 4)
                .find("is past the int64 range at batch 4 (expected ≥ 0)"),
            std::string::npos);
  EXPECT_NE(run_error(graph_with(node("reshape", {{"shape_coef", {0, 0}}, {"shape_const", {big, big}}})), 2)
                .find("target shape (1099511627776, 1099511627776) for batch 2 has more than 2^48 elements"),
            std::string::npos);
  EXPECT_NE(run_error(graph_with(node("reshape", {{"shape_coef", {int64_t{1} << 62}}, {"shape_const", {0}}})), 4)
                .find("size 0 is 4611686018427387904 · batch 4 + 0 (expected at most 2^48)"),
            std::string::npos);
}

}  // namespace
}  // namespace sparsert
