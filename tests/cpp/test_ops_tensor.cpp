// The operators of ops_tensor.cpp and ops_attention.cpp against naive double-precision references
// written here from PyTorch's definitions, over odd sizes, every kind of broadcast, ranks 0 to 4,
// negative axes and empty tensors; each case runs with 1 and 2 threads, which must agree bit for
// bit. Then the messages for bad attributes and shapes. Factories are called directly, not
// through make_op.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "kernels/epilogue.hpp"
#include "ops_testing.hpp"

namespace sparsert::test {
namespace {

// --- unary -----------------------------------------------------------------------------------

double unary_ref(UnaryKind k, double x) {
  auto relu6 = [](double v) { return std::min(std::max(v, 0.0), 6.0); };
  switch (k) {
    case UnaryKind::kRelu: return std::max(x, 0.0);
    case UnaryKind::kRelu6: return relu6(x);
    case UnaryKind::kGeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryKind::kGeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryKind::kSilu: return x / (1.0 + std::exp(-x));
    case UnaryKind::kSigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryKind::kTanh: return std::tanh(x);
    case UnaryKind::kHardswish: return x * relu6(x + 3.0) / 6.0;
    case UnaryKind::kHardsigmoid: return relu6(x + 3.0) / 6.0;
    case UnaryKind::kNeg: return -x;
    case UnaryKind::kExp: return std::exp(x);
    case UnaryKind::kSqrt: return std::sqrt(x);
    case UnaryKind::kRsqrt: return 1.0 / std::sqrt(x);
    case UnaryKind::kErf: return std::erf(x);
    case UnaryKind::kAbs: return std::abs(x);
  }
  return 0;
}

TEST(OpsUnary, EveryKindMatchesReference) {
  const std::vector<Shape> shapes = {{}, {7}, {3, 5, 17}, {2, 1, 3, 4}, {0, 3}, {300, 301}};
  for (int64_t k = 0; k <= static_cast<int64_t>(UnaryKind::kAbs); ++k) {
    const auto kind = static_cast<UnaryKind>(k);
    Built b = build(make_unary, "unary", {{"kind", {k}}});
    for (const Shape& shape : shapes) {
      const Tensor x = random_f32(shape, 11 + static_cast<uint32_t>(k), 3.0f);
      const Tensor y = run(*b.op, {&x});
      ASSERT_EQ(y.shape(), shape);
      std::vector<double> ref, mag;
      for (double v : to_f64(x)) {
        ref.push_back(unary_ref(kind, v));
        // gelu's 1 + erf(x) cancels for negative x: the float result is exact to |x|·ulp only.
        mag.push_back(kind == UnaryKind::kGeluErf || kind == UnaryKind::kGeluTanh ? std::abs(v) : 0.0);
      }
      expect_close(y, ref, "unary kind " + std::to_string(k) + " shape " + str(shape), mag);
    }
  }
}

TEST(OpsUnary, SpecialValuesAsTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const Tensor x = f32_values({6}, {nan, -3.0f, 3.0f, -inf, inf, -0.0f});
  {
    Built b = build(make_unary, "unary", {{"kind", {int64_t(UnaryKind::kHardswish)}}});
    const Tensor y = run(*b.op, {&x});
    const float* p = y.data_as<float>();
    EXPECT_TRUE(std::isnan(p[0]));
    EXPECT_EQ(p[1], 0.0f);
    EXPECT_EQ(p[2], 3.0f);
  }
  {
    Built b = build(make_unary, "unary", {{"kind", {int64_t(UnaryKind::kRelu)}}});
    const Tensor y = run(*b.op, {&x});
    EXPECT_TRUE(std::isnan(y.data_as<float>()[0]));  // relu lets NaN through, as torch.relu
  }
  {
    Built b = build(make_unary, "unary", {{"kind", {int64_t(UnaryKind::kSigmoid)}}});
    const Tensor y = run(*b.op, {&x});
    EXPECT_EQ(y.data_as<float>()[3], 0.0f);
    EXPECT_EQ(y.data_as<float>()[4], 1.0f);
  }
}

TEST(OpsUnary, Errors) {
  expect_error([] { build(make_unary, "unary", {{"kind", {15}}}); },
               {"node 't.unary' (unary)", "attribute 'kind' is 15", "expected a UnaryKind, 0 to 14"});
  expect_error([] { build(make_unary, "unary"); }, {"missing integer attribute 'kind'"});
  expect_error([] { build(make_unary, "unary", {{"kind", {1, 2}}}); }, {"'kind' has 2 values (expected 1)"});
  Built b = build(make_unary, "unary", {{"kind", {0}}});
  expect_error([&] { b.op->infer(descs({{2}}, DType::kI64), 1); },
               {"input 0 (x) is i64 (expected f32; insert a cast)"});
  expect_error([&] { b.op->infer(descs({{2}, {2}}), 1); }, {"got 2 inputs (expected 1)"});
}

// --- attribute codes -------------------------------------------------------------------------

// Model files store these codes, so each table must start with exactly these entries (appending is
// allowed, renumbering is not). The importer spells them as here (python/sparsert/importer/ir.py).
TEST(AttributeCodes, StoredCodesKeepTheirMeaning) {
  const std::map<std::string, std::vector<std::string>> stored = {
      {"activation", {"none", "relu", "relu6", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh"}},
      {"unary", {"relu", "relu6", "gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
                 "neg", "exp", "sqrt", "rsqrt", "erf", "abs"}},
      {"binary", {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "eq", "ne", "lt", "le", "gt", "ge",
                  "and", "or", "xor"}},
      {"dtype", {"f32", "i64", "bool"}},
  };
  const auto codes = attribute_codes();
  ASSERT_EQ(codes.size(), stored.size());
  for (const auto& [table, names] : stored) {
    ASSERT_TRUE(codes.count(table)) << "table " << table;
    const auto& got = codes.at(table);
    ASSERT_GE(got.size(), names.size()) << "table " << table;
    std::set<std::string> seen;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].second, static_cast<int64_t>(i)) << "table " << table;
      if (i < names.size()) EXPECT_EQ(got[i].first, names[i]) << "table " << table << " code " << i;
      EXPECT_NE(got[i].first, "?") << "table " << table << " code " << i << " has no spelling";
      EXPECT_TRUE(seen.insert(got[i].first).second) << "table " << table << " spells two codes " << got[i].first;
    }
  }
}

// Every Activation but kNone is the epilogue form of exactly one unary kind, spelled the same (the
// importer fuses a unary node into the layer before it by that name), and the unary operator computes
// it with the epilogue's own function, bit for bit.
TEST(AttributeCodes, EpilogueActivationsAreUnaryKinds) {
  std::map<Activation, int> kinds_per_activation;
  for (int64_t k = 0; k <= static_cast<int64_t>(kLastUnaryKind); ++k) {
    const auto kind = static_cast<UnaryKind>(k);
    const Activation act = epilogue_activation(kind);
    if (act == Activation::kNone) continue;
    ++kinds_per_activation[act];
    EXPECT_STREQ(to_string(kind), to_string(act)) << "unary kind " << k;
    Built b = build(make_unary, "unary", {{"kind", {k}}});
    const Tensor x = random_f32({5, 37}, 7 + static_cast<uint32_t>(k), 6.0f);
    Tensor want(DType::kF32, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) want.data_as<float>()[i] = activate(x.data_as<float>()[i], act);
    expect_equal_bits(run(*b.op, {&x}), want, std::string("unary ") + to_string(kind) + " against activate()");
  }
  for (int a = 1; a <= static_cast<int>(kLastActivation); ++a) {
    EXPECT_EQ(kinds_per_activation[static_cast<Activation>(a)], 1) << to_string(static_cast<Activation>(a));
  }
}

// --- binary ----------------------------------------------------------------------------------

double binary_ref(BinaryKind k, double a, double b) {
  switch (k) {
    case BinaryKind::kAdd: return a + b;
    case BinaryKind::kSub: return a - b;
    case BinaryKind::kMul: return a * b;
    case BinaryKind::kDiv: return a / b;
    case BinaryKind::kMaximum: return std::max(a, b);
    case BinaryKind::kMinimum: return std::min(a, b);
    case BinaryKind::kPow: return std::pow(a, b);
  }
  return 0;
}

const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{}, {}},                     // 0-d with 0-d
    {{3, 4, 5}, {3, 4, 5}},       // same shape
    {{}, {2, 3}},                 // scalar on the left
    {{2, 3}, {}},                 // scalar on the right
    {{1}, {7}},                   // 1-element on the left
    {{2, 3, 17}, {17}},           // trailing broadcast
    {{17}, {2, 3, 17}},           // trailing broadcast, swapped
    {{2, 3, 5}, {3, 1}},          // inner broadcast (column)
    {{4, 1, 5}, {1, 3, 1}},       // both broadcast
    {{2, 1, 4, 1}, {3, 1, 6}},    // rank 4 with rank 3
    {{5, 1}, {1, 5}},             // outer product
    {{0, 3}, {3}},                // empty
    {{2, 0, 3}, {1, 1, 3}},       // empty middle dim
    {{64, 1024}, {1024}},         // large enough for two threads (rows)
    {{100003}, {100003}},         // large enough for two threads (one row)
    {{3, 70000}, {3, 1}},         // scalar per row, long rows
};

TEST(OpsBinary, EveryKindAndBroadcastMatchesReference) {
  for (int64_t k = 0; k <= static_cast<int64_t>(BinaryKind::kPow); ++k) {
    const auto kind = static_cast<BinaryKind>(k);
    Built op = build(make_binary, "binary", {{"kind", {k}}});
    uint32_t seed = 100;
    for (const auto& [sa, sb] : kBroadcastPairs) {
      Tensor a = random_f32(sa, ++seed), b = random_f32(sb, ++seed);
      if (kind == BinaryKind::kPow) {  // positive bases: a negative base with a fractional power is NaN
        for (int64_t i = 0; i < a.numel(); ++i) a.data_as<float>()[i] = std::abs(a.data_as<float>()[i]) + 0.25f;
      }
      const Tensor y = run(*op.op, {&a, &b});
      const Shape out = broadcast_ref(sa, sb);
      ASSERT_EQ(y.shape(), out) << str(sa) << " and " << str(sb);
      std::vector<double> ref(static_cast<size_t>(numel(out)));
      const std::vector<double> va = to_f64(a), vb = to_f64(b);
      for (size_t i = 0; i < ref.size(); ++i) {
        const auto idx = unravel(static_cast<int64_t>(i), out);
        ref[i] = binary_ref(kind, va[size_t(broadcast_index(idx, sa))], vb[size_t(broadcast_index(idx, sb))]);
      }
      expect_close(y, ref, "binary kind " + std::to_string(k) + " " + str(sa) + " and " + str(sb));
    }
  }
}

TEST(OpsBinary, MaximumMinimumPropagateNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor a = f32_values({3}, {nan, 1.0f, 2.0f}), b = f32_values({3}, {0.0f, nan, 3.0f});
  for (auto kind : {BinaryKind::kMaximum, BinaryKind::kMinimum}) {
    Built op = build(make_binary, "binary", {{"kind", {int64_t(kind)}}});
    const Tensor y = run(*op.op, {&a, &b});
    EXPECT_TRUE(std::isnan(y.data_as<float>()[0]));
    EXPECT_TRUE(std::isnan(y.data_as<float>()[1]));
    EXPECT_EQ(y.data_as<float>()[2], kind == BinaryKind::kMaximum ? 3.0f : 2.0f);
  }
}

TEST(OpsBinary, IntegerAddSubMulMaxMinStayI64) {
  for (auto kind : {BinaryKind::kAdd, BinaryKind::kSub, BinaryKind::kMul, BinaryKind::kMaximum, BinaryKind::kMinimum}) {
    Built op = build(make_binary, "binary", {{"kind", {int64_t(kind)}}});
    for (const auto& [sa, sb] : kBroadcastPairs) {
      const Tensor a = random_i64(sa, 5, -1000, 1000), b = random_i64(sb, 6, -1000, 1000);
      const Tensor y = run(*op.op, {&a, &b});
      const Shape out = broadcast_ref(sa, sb);
      Tensor want(DType::kI64, out);
      for (int64_t i = 0; i < numel(out); ++i) {
        const auto idx = unravel(i, out);
        const int64_t p = a.data_as<int64_t>()[broadcast_index(idx, sa)];
        const int64_t q = b.data_as<int64_t>()[broadcast_index(idx, sb)];
        want.data_as<int64_t>()[i] = static_cast<int64_t>(binary_ref(kind, double(p), double(q)));
      }
      expect_equal_bits(y, want, "i64 binary " + str(sa) + " and " + str(sb));
    }
  }
  // Overflow wraps as torch's int64 does.
  Built add = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kAdd)}}});
  const Tensor a = i64_values({1}, {kI64Max}), b = i64_values({1}, {1});
  EXPECT_EQ(run(*add.op, {&a, &b}).data_as<int64_t>()[0], std::numeric_limits<int64_t>::min());
}

TEST(OpsBinary, Errors) {
  expect_error([] { build(make_binary, "binary", {{"kind", {16}}}); },
               {"attribute 'kind' is 16", "expected a BinaryKind, 0 to 15"});
  expect_error([] { build(make_binary, "binary", {{"kind", {-1}}}); }, {"attribute 'kind' is -1"});
  Built add = build(make_binary, "binary", {{"kind", {0}}});
  expect_error([&] { add.op->infer(descs({{2, 3}, {4}}), 1); },
               {"node 't.binary' (binary)", "input shapes (2, 3) and (4,) do not broadcast"});
  expect_error([&] { add.op->infer({{DType::kF32, {2}}, {DType::kI64, {2}}}, 1); },
               {"inputs are f32 and i64 for add", "insert a cast"});
  expect_error([&] { add.op->infer(descs({{2}}), 1); }, {"got 1 inputs (expected 2)"});
  Built div = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kDiv)}}});
  expect_error([&] { div.op->infer(descs({{2}, {2}}, DType::kI64), 1); },
               {"inputs are i64 and i64 for div (expected two f32; insert a cast)"});
}

// --- cast ------------------------------------------------------------------------------------

TEST(OpsCast, TruncatesTowardZeroAndBack) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = f32_values({2, 4}, {-2.7f, 2.7f, -0.5f, 1e10f, nan, 3e19f, -3e19f, 7.0f});
  Built to_i64 = build(make_cast, "cast", {{"dtype", {int64_t(DType::kI64)}}});
  const int64_t lo = std::numeric_limits<int64_t>::min();
  expect_equal_bits(run(*to_i64.op, {&x}), i64_values({2, 4}, {-2, 2, 0, 10000000000, lo, lo, lo, 7}), "f32 to i64");

  const Tensor i = i64_values({3}, {3, -7, int64_t{1} << 40});
  Built to_f32 = build(make_cast, "cast", {{"dtype", {int64_t(DType::kF32)}}});
  expect_equal_bits(run(*to_f32.op, {&i}), f32_values({3}, {3.0f, -7.0f, 1099511627776.0f}), "i64 to f32");
  expect_equal_bits(run(*to_f32.op, {&x}), x, "f32 to f32");
  const Tensor s = i64_values({}, {42});
  expect_equal_bits(run(*to_i64.op, {&s}), s, "0-d i64 to i64");
}

TEST(OpsCast, Errors) {
  expect_error([] { build(make_cast, "cast", {{"dtype", {3}}}); },
               {"node 't.cast' (cast)", "attribute 'dtype' is 3 (expected 0 for f32, 1 for i64 or 2 for bool)"});
  expect_error([] { build(make_cast, "cast", {{"dtype", {-1}}}); }, {"attribute 'dtype' is -1"});
  Built op = build(make_cast, "cast", {{"dtype", {2}}});
  expect_error([&] { op.op->infer(descs({{2}, {2}}), 1); }, {"got 2 inputs (expected 1)"});
  expect_error([] { build(make_cast, "cast"); }, {"missing integer attribute 'dtype'"});
}

// --- reshape, permute, expand ----------------------------------------------------------------

Ints sizes(const std::vector<int64_t>& coef, const std::vector<int64_t>& constant) {
  return {{"shape_coef", coef}, {"shape_const", constant}};
}

TEST(OpsReshape, SizesAndInferredDim) {
  const Tensor x = random_f32({2, 3, 4}, 1);
  struct Case {
    std::vector<int64_t> coef, constant;
    int64_t batch;
    Shape want;
  };
  const std::vector<Case> cases = {
      {{0, 0}, {4, -1}, 1, {4, 6}},
      {{0, 0, 0}, {-1, 3, 2}, 1, {4, 3, 2}},
      {{0}, {-1}, 1, {24}},
      {{1, 0}, {0, -1}, 2, {2, 12}},          // the batch, then the rest
      {{1, 0, 0}, {0, 3, 4}, 2, {2, 3, 4}},
      {{2, 0}, {0, -1}, 1, {2, 12}},          // 2 · batch
      {{0, 0, 0, 0, 0}, {1, 2, 1, 12, 1}, 1, {1, 2, 1, 12, 1}},
  };
  for (const auto& c : cases) {
    Built op = build(make_reshape, "reshape", sizes(c.coef, c.constant));
    const Tensor y = run(*op.op, {&x}, c.batch);
    expect_equal_bits(y, f32_values(c.want, std::vector<float>(x.data_as<float>(), x.data_as<float>() + 24)),
                      "reshape to " + str(c.want));
  }
  // 0-d to and from one element, and an i64 input.
  const Tensor one = i64_values({1, 1}, {9});
  Built to_scalar = build(make_reshape, "reshape", sizes({}, {}));
  expect_equal_bits(run(*to_scalar.op, {&one}), i64_values({}, {9}), "reshape to ()");
  const Tensor scalar = f32_values({}, {2.5f});
  Built from_scalar = build(make_reshape, "reshape", sizes({0, 0}, {-1, 1}));
  expect_equal_bits(run(*from_scalar.op, {&scalar}), f32_values({1, 1}, {2.5f}), "reshape () to (1, 1)");
  const Tensor mask = random_bool({2, 3, 4}, 7);
  Built to_rows = build(make_reshape, "reshape", sizes({0, 0}, {-1, 4}));
  const Tensor rows = run(*to_rows.op, {&mask});
  EXPECT_EQ(rows.dtype(), DType::kBool);
  EXPECT_EQ(rows.shape(), (Shape{6, 4}));
  EXPECT_EQ(std::memcmp(rows.data(), mask.data(), 24), 0) << "reshape bool";
  const Tensor empty = random_f32({0, 3}, 1);
  Built flat_empty = build(make_reshape, "reshape", sizes({0, 0}, {3, 0}));
  EXPECT_EQ(run(*flat_empty.op, {&empty}).shape(), (Shape{3, 0}));
}

TEST(OpsReshape, Errors) {
  Built op = build(make_reshape, "reshape", sizes({0, 0}, {4, -1}));
  expect_error([&] { op.op->infer(descs({{2, 3}}), 1); },
               {"node 't.reshape' (reshape)", "input of shape (2, 3) cannot take shape (4, -1)", "expected 6 elements"});
  Built zero = build(make_reshape, "reshape", sizes({0, 0}, {-1, 0}));
  expect_error([&] { zero.op->infer(descs({{0, 3}}), 1); }, {"(0, 3) cannot take shape (-1, 0)", "could be any value"});
  expect_error([] { build(make_reshape, "reshape", sizes({0, 0}, {-1, -1})); },
               {"has 2 sizes of -1 (expected at most one)"});
  expect_error([] { build(make_reshape, "reshape", sizes({0, 0}, {-2, 3})); }, {"'shape_const' has -2 at dim 0"});
  expect_error([] { build(make_reshape, "reshape", sizes({0}, {2, 3})); },
               {"shape_coef has 1 entries but shape_const has 2"});
  expect_error([] { build(make_reshape, "reshape", {{"shape_coef", {0}}}); },
               {"missing integer attribute 'shape_const'"});
  Built neg = build(make_reshape, "reshape", sizes({1, 0}, {-3, -1}));
  expect_error([&] { neg.op->infer(descs({{2, 3}}), 1); }, {"target shape (-2, -1) for batch 1 has a negative size"});
}

/// Naive permute: out[idx] = in[idx permuted back].
Tensor permute_ref(const Tensor& x, const std::vector<int64_t>& perm) {
  const Shape& in = x.shape();
  Shape out(perm.size());
  std::vector<int64_t> p(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) p[i] = perm[i] < 0 ? perm[i] + int64_t(perm.size()) : perm[i];
  for (size_t i = 0; i < p.size(); ++i) out[i] = in[size_t(p[i])];
  Tensor y(x.dtype(), out);
  const int64_t es = dtype_size(x.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    const auto idx = unravel(i, out);
    std::vector<int64_t> src(in.size());
    for (size_t d = 0; d < p.size(); ++d) src[size_t(p[d])] = idx[d];
    int64_t flat = 0;
    for (size_t d = 0; d < in.size(); ++d) flat = flat * in[d] + src[d];
    std::memcpy(static_cast<char*>(y.data()) + i * es, static_cast<const char*>(x.data()) + flat * es, size_t(es));
  }
  return y;
}

TEST(OpsPermute, EveryRankMatchesReference) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{}, {}},
      {{7}, {0}},
      {{3, 5}, {1, 0}},
      {{3, 5}, {-1, -2}},
      {{2, 3, 4}, {2, 0, 1}},
      {{2, 3, 4}, {0, 2, 1}},
      {{2, 1, 4}, {1, 0, 2}},
      {{2, 3, 4, 5}, {0, 2, 1, 3}},  // heads ↔ sequence
      {{2, 3, 4, 5}, {3, 1, 2, 0}},
      {{2, 0, 4}, {2, 1, 0}},
      {{300, 257}, {1, 0}},          // large enough for two threads
      {{3, 200, 100}, {0, 2, 1}},    // tiles split between threads inside one matrix
  };
  uint32_t seed = 1;
  for (const auto& [shape, dims] : cases) {
    Built op = build(make_permute, "permute", {{"dims", dims}});
    const Tensor x = random_f32(shape, ++seed);
    expect_equal_bits(run(*op.op, {&x}), permute_ref(x, dims), "permute f32 " + str(shape));
    const Tensor xi = random_i64(shape, ++seed, -5, 5);
    expect_equal_bits(run(*op.op, {&xi}), permute_ref(xi, dims), "permute i64 " + str(shape));
    const Tensor xb = random_bool(shape, ++seed);  // one-byte elements, through the tiled path too
    expect_equal_bits(run(*op.op, {&xb}), permute_ref(xb, dims), "permute bool " + str(shape));
  }
}

TEST(OpsPermute, Errors) {
  expect_error([] { build(make_permute, "permute", {{"dims", {0, 0}}}); },
               {"attribute 'dims' [0, 0] is not a permutation (expected each of 0 to 1 once"});
  expect_error([] { build(make_permute, "permute", {{"dims", {0, 2}}}); }, {"[0, 2] is not a permutation"});
  Built op = build(make_permute, "permute", {{"dims", {1, 0}}});
  expect_error([&] { op.op->infer(descs({{2, 3, 4}}), 1); },
               {"input of shape (2, 3, 4) has rank 3 (expected 2, the length of dims [1, 0])"});
}

/// Naive expand: every out element reads the broadcast input element.
Tensor expand_ref(const Tensor& x, const Shape& out) {
  Tensor y(x.dtype(), out);
  const int64_t es = dtype_size(x.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t src = broadcast_index(unravel(i, out), x.shape());
    std::memcpy(static_cast<char*>(y.data()) + i * es, static_cast<const char*>(x.data()) + src * es, size_t(es));
  }
  return y;
}

TEST(OpsExpand, MatchesReference) {
  struct Case {
    Shape in;
    std::vector<int64_t> coef, constant;
    int64_t batch;
    Shape want;
  };
  const std::vector<Case> cases = {
      {{3, 1}, {0, 0, 0}, {2, -1, 4}, 1, {2, 3, 4}},  // new leading dim, -1 keeps, 1 expands
      {{}, {0, 0}, {2, 3}, 1, {2, 3}},                // 0-d
      {{1}, {0}, {0}, 1, {0}},                        // to empty
      {{2, 3}, {0, 0}, {-1, -1}, 1, {2, 3}},          // nothing changes
      {{1, 1, 5}, {1, 0, 0}, {0, 7, 5}, 3, {3, 7, 5}},  // the batch from coef
      {{4, 1, 3, 1}, {0, 0, 0, 0}, {4, 6, 3, 2}, 1, {4, 6, 3, 2}},
      {{1, 700}, {0, 0}, {100, -1}, 1, {100, 700}},   // large enough for two threads
  };
  uint32_t seed = 40;
  for (const auto& c : cases) {
    Built op = build(make_expand, "expand", sizes(c.coef, c.constant));
    const Tensor x = random_f32(c.in, ++seed);
    expect_equal_bits(run(*op.op, {&x}, c.batch), expand_ref(x, c.want), "expand " + str(c.in) + " to " + str(c.want));
    const Tensor xi = random_i64(c.in, ++seed, 0, 100);
    expect_equal_bits(run(*op.op, {&xi}, c.batch), expand_ref(xi, c.want), "expand i64 " + str(c.in));
    const Tensor xb = random_bool(c.in, ++seed);
    expect_equal_bits(run(*op.op, {&xb}, c.batch), expand_ref(xb, c.want), "expand bool " + str(c.in));
  }
}

TEST(OpsExpand, Errors) {
  Built op = build(make_expand, "expand", sizes({0, 0}, {2, 4}));
  expect_error([&] { op.op->infer(descs({{2, 3}}), 1); },
               {"input of shape (2, 3) cannot expand to (2, 4): dim 1 has size 3 (expected 1 to expand to 4"});
  Built lead = build(make_expand, "expand", sizes({0, 0}, {-1, 3}));
  expect_error([&] { lead.op->infer(descs({{3}}), 1); }, {"has -1 in new leading dim 0"});
  Built fewer = build(make_expand, "expand", sizes({0}, {3}));
  expect_error([&] { fewer.op->infer(descs({{1, 3}}), 1); },
               {"target shape (3,) has fewer dims than the input (1, 3) (expected at least 2)"});
  expect_error([] { build(make_expand, "expand", sizes({0}, {-4})); }, {"'shape_const' has -4 at dim 0"});
}

// --- concat, slice ---------------------------------------------------------------------------

TEST(OpsConcat, MatchesReference) {
  struct Case {
    std::vector<Shape> in;
    int64_t axis;
  };
  const std::vector<Case> cases = {
      {{{3}, {5}}, 0},
      {{{2, 3}, {2, 1}, {2, 4}}, 1},
      {{{2, 3}, {2, 1}, {2, 4}}, -1},
      {{{2, 3, 4}, {1, 3, 4}}, 0},
      {{{2, 3, 4}, {2, 0, 4}, {2, 5, 4}}, -2},
      {{{2, 3, 4, 5}}, 3},
      {{{2, 1, 3, 2}, {2, 2, 3, 2}}, 1},
  };
  uint32_t seed = 70;
  for (const auto& c : cases) {
    Built op = build(make_concat, "concat", {{"axis", {c.axis}}});
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      std::vector<Tensor> ins;
      for (const auto& s : c.in) {
        ins.push_back(dt == DType::kF32   ? random_f32(s, ++seed)
                      : dt == DType::kI64 ? random_i64(s, ++seed, 0, 9)
                                          : random_bool(s, ++seed));
      }
      std::vector<const Tensor*> ptrs;
      for (const auto& t : ins) ptrs.push_back(&t);
      const Tensor y = run(*op.op, ptrs);
      // Reference: out index → which input along the axis.
      const size_t axis = size_t(c.axis < 0 ? c.axis + int64_t(c.in[0].size()) : c.axis);
      Shape out = c.in[0];
      for (size_t i = 1; i < c.in.size(); ++i) out[axis] += c.in[i][axis];
      Tensor want(dt, out);
      const int64_t es = dtype_size(dt);
      for (int64_t i = 0; i < want.numel(); ++i) {
        auto idx = unravel(i, out);
        size_t which = 0;
        while (idx[axis] >= c.in[which][axis]) idx[axis] -= c.in[which++][axis];
        int64_t flat = 0;
        for (size_t d = 0; d < out.size(); ++d) flat = flat * c.in[which][d] + idx[d];
        std::memcpy(static_cast<char*>(want.data()) + i * es, static_cast<const char*>(ins[which].data()) + flat * es,
                    size_t(es));
      }
      expect_equal_bits(y, want, std::string("concat ") + to_string(dt) + " axis " + std::to_string(c.axis) + " of " +
                                     str(c.in[0]));
    }
  }
}

TEST(OpsConcat, Errors) {
  Built op = build(make_concat, "concat", {{"axis", {1}}});
  expect_error([&] { op.op->infer(descs({{2, 3}, {3, 3}}), 1); },
               {"input 1 has shape (3, 3) and input 0 (2, 3) (expected equal ranks and sizes except on axis 1)"});
  expect_error([&] { op.op->infer(descs({{2, 3}, {2, 3, 1}}), 1); }, {"input 1 has shape (2, 3, 1)"});
  expect_error([&] { op.op->infer({{DType::kF32, {2, 3}}, {DType::kI64, {2, 3}}}, 1); },
               {"input 1 is i64 (expected f32 like input 0)"});
  expect_error([&] { op.op->infer(descs({{}, {}}), 1); }, {"input 0 is 0-d"});
  expect_error([&] { op.op->infer(descs({{3}}), 1); }, {"axis 1 is out of range for rank 1 (expected -1 to 0)"});
  expect_error([&] { op.op->infer({}, 1); }, {"got 0 inputs (expected at least 1)"});
  expect_error([] { build(make_concat, "concat"); }, {"missing integer attribute 'axis'"});
}

/// Python's slice.indices, written from its definition.
std::vector<int64_t> python_slice(int64_t n, int64_t start, int64_t end, int64_t step) {
  auto adjust = [n](int64_t i) {
    if (i < 0) {
      i += n;
      if (i < 0) i = 0;
    } else if (i >= n) {
      i = n;
    }
    return i;
  };
  std::vector<int64_t> out;
  for (int64_t i = adjust(start); i < adjust(end); i += step) out.push_back(i);
  return out;
}

TEST(OpsSlice, PythonClampingMatchesReference) {
  struct Case {
    Shape in;
    int64_t axis, start, end, step;
  };
  const std::vector<Case> cases = {
      {{10}, 0, 2, 7, 1},        {{10}, 0, -3, kI64Max, 1}, {{10}, 0, 0, kI64Max, 3}, {{10}, 0, 7, 2, 1},
      {{10}, 0, -100, 100, 4},   {{10}, -1, 1, -1, 2},      {{10}, 0, 10, 12, 1},     {{3, 8, 5}, 1, 1, 7, 2},
      {{3, 8, 5}, -1, -2, kI64Max, 1}, {{3, 8, 5}, 0, 1, 2, 1}, {{2, 3, 4, 5}, 2, 0, kI64Max, kI64Max},
      {{2, 0, 4}, 2, 1, 3, 1},   {{400, 300}, 1, 3, -3, 1}, {{4, 100000}, 1, 1, kI64Max, 2},
  };
  uint32_t seed = 90;
  for (const auto& c : cases) {
    Built op = build(make_slice, "slice",
                     {{"axis", {c.axis}}, {"start", {c.start}}, {"end", {c.end}}, {"step", {c.step}}});
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      const Tensor x = dt == DType::kF32   ? random_f32(c.in, ++seed)
                       : dt == DType::kI64 ? random_i64(c.in, ++seed, 0, 1000)
                                           : random_bool(c.in, ++seed);
      const size_t axis = size_t(c.axis < 0 ? c.axis + int64_t(c.in.size()) : c.axis);
      const auto picked = python_slice(c.in[axis], c.start, c.end, c.step);
      Shape out = c.in;
      out[axis] = int64_t(picked.size());
      Tensor want(dt, out);
      const int64_t es = dtype_size(dt);
      for (int64_t i = 0; i < want.numel(); ++i) {
        auto idx = unravel(i, out);
        idx[axis] = picked[size_t(idx[axis])];
        int64_t flat = 0;
        for (size_t d = 0; d < out.size(); ++d) flat = flat * c.in[d] + idx[d];
        std::memcpy(static_cast<char*>(want.data()) + i * es, static_cast<const char*>(x.data()) + flat * es,
                    size_t(es));
      }
      std::ostringstream what;
      what << "slice " << to_string(dt) << " " << str(c.in) << " axis " << c.axis << " [" << c.start << ":" << c.end << ":" << c.step << "]";
      expect_equal_bits(run(*op.op, {&x}), want, what.str());
    }
  }
}

TEST(OpsSlice, Errors) {
  expect_error([] { build(make_slice, "slice", {{"axis", {0}}, {"step", {0}}}); },
               {"attribute 'step' is 0 (expected ≥ 1)"});
  Built op = build(make_slice, "slice", {{"axis", {2}}});
  expect_error([&] { op.op->infer(descs({{2, 3}}), 1); }, {"axis 2 is out of range for rank 2"});
  expect_error([&] { op.op->infer(descs({{}}), 1); }, {"input is 0-d"});
}

// --- layer_norm, softmax ---------------------------------------------------------------------

TEST(OpsLayerNorm, MatchesReference) {
  struct Case {
    Shape x;
    int64_t normalized;
    float offset;  // a large mean checks the variance does not cancel
  };
  const std::vector<Case> cases = {{{7}, 1, 0.0f},       {{3, 5}, 1, 0.0f},     {{3, 5}, 2, 0.0f},
                                   {{2, 3, 17}, 1, 1000.0f}, {{2, 3, 4, 5}, 2, -50.0f}, {{0, 4}, 1, 0.0f},
                                   {{64, 768}, 1, 3.0f}};
  uint32_t seed = 200;
  for (const auto& c : cases) {
    for (int mode = 0; mode < 4; ++mode) {
      const bool hw = mode & 1, hb = mode & 2;
      for (double eps : {1e-5, 0.1}) {
        Built op = build(make_layer_norm, "layer_norm",
                         {{"normalized", {c.normalized}}, {"has_weight", {hw}}, {"has_bias", {hb}}}, {{"eps", {eps}}});
        const Shape last(c.x.end() - c.normalized, c.x.end());
        const Tensor x = random_f32(c.x, ++seed, 2.0f, c.offset);
        const Tensor w = random_f32(last, ++seed), b = random_f32(last, ++seed);
        std::vector<const Tensor*> ins = {&x};
        if (hw) ins.push_back(&w);
        if (hb) ins.push_back(&b);
        const Tensor y = run(*op.op, ins);
        const int64_t inner = numel(last), rows = inner ? x.numel() / inner : 0;
        const std::vector<double> vx = to_f64(x), vw = to_f64(w), vb = to_f64(b);
        std::vector<double> ref(vx.size()), mag(vx.size());
        for (int64_t r = 0; r < rows; ++r) {
          double mean = 0, var = 0;
          for (int64_t i = 0; i < inner; ++i) mean += vx[size_t(r * inner + i)];
          mean /= double(inner);
          for (int64_t i = 0; i < inner; ++i) var += std::pow(vx[size_t(r * inner + i)] - mean, 2);
          const double rstd = 1.0 / std::sqrt(var / double(inner) + eps);
          for (int64_t i = 0; i < inner; ++i) {
            const size_t k = size_t(r * inner + i);
            const double wi = hw ? vw[size_t(i)] : 1.0, bi = hb ? vb[size_t(i)] : 0.0;
            ref[k] = (vx[k] - mean) * rstd * wi + bi;
            // x - mean is rounded to |x|·ulp; the bias adds its own rounding.
            mag[k] = (std::abs(vx[k]) + std::abs(mean)) * rstd * std::abs(wi) + std::abs(bi);
          }
        }
        std::ostringstream what;
        what << "layer_norm " << str(c.x) << " normalized " << c.normalized << " weight " << hw << " bias " << hb
             << " eps " << eps;
        expect_close(y, ref, what.str(), mag);
      }
    }
  }
}

TEST(OpsLayerNorm, Errors) {
  Built op = build(make_layer_norm, "layer_norm", {{"normalized", {1}}, {"has_weight", {1}}, {"has_bias", {1}}});
  expect_error([&] { op.op->infer(descs({{2, 4}, {5}, {4}}), 1); },
               {"input 1 (weight) has shape (5,) (expected (4,), the last 1 dims of x (2, 4))"});
  expect_error([&] { op.op->infer(descs({{2, 4}, {4}, {2, 4}}), 1); }, {"input 2 (bias) has shape (2, 4)"});
  expect_error([&] { op.op->infer(descs({{2, 4}, {4}}), 1); }, {"got 2 inputs (expected 3)"});
  Built two = build(make_layer_norm, "layer_norm", {{"normalized", {2}}});
  expect_error([&] { two.op->infer(descs({{4}}), 1); }, {"x has shape (4,) (expected at least 2 dims to normalise)"});
  expect_error([] { build(make_layer_norm, "layer_norm", {{"normalized", {0}}}); },
               {"attribute 'normalized' is 0 (expected ≥ 1)"});
  expect_error([] { build(make_layer_norm, "layer_norm", {{"normalized", {1}}, {"has_bias", {2}}}); },
               {"attribute 'has_bias' is 2 (expected 0 or 1)"});
  expect_error([] { build(make_layer_norm, "layer_norm", {{"normalized", {1}}}, {{"eps", {-1.0}}}); },
               {"attribute 'eps' is -1"});
}

std::vector<double> softmax_ref(const std::vector<double>& x, const Shape& shape, int64_t axis) {
  const size_t a = size_t(shape.empty() ? 0 : (axis < 0 ? axis + int64_t(shape.size()) : axis));
  int64_t outer = 1, n = shape.empty() ? 1 : shape[a], inner = 1;
  for (size_t d = 0; d < a; ++d) outer *= shape[d];
  for (size_t d = a + 1; d < shape.size(); ++d) inner *= shape[d];
  std::vector<double> y(x.size());
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t c = 0; c < inner; ++c) {
      auto at = [&](int64_t i) { return size_t((o * n + i) * inner + c); };
      double m = -INFINITY, s = 0;
      for (int64_t i = 0; i < n; ++i) m = std::max(m, x[at(i)]);
      for (int64_t i = 0; i < n; ++i) s += std::exp(x[at(i)] - m);
      for (int64_t i = 0; i < n; ++i) y[at(i)] = std::exp(x[at(i)] - m) / s;
    }
  }
  return y;
}

TEST(OpsSoftmax, EveryAxisMatchesReference) {
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{}, 0},         {{}, -1},        {{7}, 0},          {{3, 5}, 0},       {{3, 5}, 1},        {{3, 5}, -1},
      {{2, 3, 4, 5}, 1}, {{2, 3, 4, 5}, -1}, {{2, 3, 4, 5}, 0}, {{2, 3, 300}, 1}, {{2, 7, 600}, -2}, {{2, 0, 3}, 2},
      {{64, 1000}, -1}, {{1, 129, 1}, 1},
  };
  uint32_t seed = 300;
  for (const auto& [shape, axis] : cases) {
    Built op = build(make_softmax, "softmax", {{"axis", {axis}}});
    for (float scale : {1.0f, 40.0f}) {  // 40: exp would overflow without subtracting the max
      const Tensor x = random_f32(shape, ++seed, scale);
      const std::vector<double> ref = softmax_ref(to_f64(x), shape, axis);
      // Probabilities below float's normal range (1.2e-38) underflow: an absolute floor there.
      expect_close(run(*op.op, {&x}), ref,
                   "softmax " + str(shape) + " axis " + std::to_string(axis) + " scale " + std::to_string(scale),
                   std::vector<double>(ref.size(), 1e-32));
    }
  }
}

TEST(OpsSoftmax, InfinitiesAsTorch) {
  const float inf = std::numeric_limits<float>::infinity();
  const Tensor x = f32_values({3, 3}, {-inf, -inf, -inf, 0.0f, -inf, 1.0f, 2.0f, 2.0f, -inf});
  for (int64_t axis : {1, 0}) {
    Built op = build(make_softmax, "softmax", {{"axis", {axis}}});
    expect_close(run(*op.op, {&x}), softmax_ref(to_f64(x), {3, 3}, axis),
                 "softmax with -inf axis " + std::to_string(axis));
  }
  Built op = build(make_softmax, "softmax", {{"axis", {1}}});
  const Tensor y = run(*op.op, {&x});
  EXPECT_TRUE(std::isnan(y.data_as<float>()[0]));  // a row of -inf is NaN, as torch.softmax
  EXPECT_EQ(y.data_as<float>()[4], 0.0f);
}

TEST(OpsSoftmax, Errors) {
  Built op = build(make_softmax, "softmax", {{"axis", {-3}}});
  expect_error([&] { op.op->infer(descs({{2, 3}}), 1); },
               {"node 't.softmax' (softmax)", "axis -3 is out of range for rank 2 (expected -2 to 1)"});
  expect_error([&] { op.op->infer(descs({{2, 3}}, DType::kI64), 1); }, {"input 0 (x) is i64"});
  expect_error([] { build(make_softmax, "softmax"); }, {"missing integer attribute 'axis'"});
}

// --- reductions ------------------------------------------------------------------------------

TEST(OpsReduce, MeanAndSumMatchReference) {
  const std::vector<std::pair<Shape, std::vector<int64_t>>> cases = {
      {{}, {}},           {{}, {0}},             {{}, {-1}},          {{7}, {}},            {{7}, {0}},
      {{3, 5, 6}, {-1}},  {{3, 5, 6}, {0}},      {{3, 5, 6}, {1}},    {{3, 5, 6}, {0, 2}},  {{3, 5, 6}, {2, 0, 1}},
      {{2, 3, 4, 5}, {1, 3}}, {{2, 3, 4, 5}, {0, 1}}, {{2, 3, 4, 5}, {-2, -1}}, {{2, 1, 4, 5}, {1, 2}},
      {{0, 3}, {0}},      {{0, 3}, {1}},         {{64, 2000}, {1}},   {{3, 4000}, {0}},     {{2, 3, 4, 5}, {}},
  };
  uint32_t seed = 400;
  for (const auto& [shape, dims] : cases) {
    for (bool mean : {false, true}) {
      for (int64_t keep : {0, 1}) {
        Built op = build(mean ? make_reduce_mean : make_reduce_sum, mean ? "reduce_mean" : "reduce_sum",
                         {{"dims", dims}, {"keepdim", {keep}}});
        const Tensor x = random_f32(shape, ++seed, 1.0f, 0.5f);
        const Tensor y = run(*op.op, {&x});
        // Reference: which dims reduce, then accumulate each element into its output.
        std::vector<bool> red(shape.size(), dims.empty());
        for (int64_t d : dims) {
          if (!shape.empty()) red[size_t(d < 0 ? d + int64_t(shape.size()) : d)] = true;
        }
        Shape out, kept;
        for (size_t d = 0; d < shape.size(); ++d) {
          if (!red[d]) kept.push_back(shape[d]);
          if (!red[d] || keep) out.push_back(red[d] ? 1 : shape[d]);
        }
        ASSERT_EQ(y.shape(), out) << str(shape);
        std::vector<double> ref(size_t(numel(out)), 0.0), mag(ref.size(), 0.0);
        const std::vector<double> vx = to_f64(x);
        for (int64_t i = 0; i < x.numel(); ++i) {
          const auto idx = unravel(i, shape);
          int64_t o = 0;
          for (size_t d = 0, k = 0; d < shape.size(); ++d) {
            if (!red[d]) o = o * kept[k++] + idx[d];
          }
          ref[size_t(o)] += vx[size_t(i)];
          mag[size_t(o)] += std::abs(vx[size_t(i)]);
        }
        const double count = ref.empty() ? 1.0 : double(x.numel()) / double(ref.size());
        if (mean) {
          for (size_t i = 0; i < ref.size(); ++i) ref[i] /= count, mag[i] /= count;
        }
        std::ostringstream what;
        what << (mean ? "mean " : "sum ") << str(shape) << " dims " << dims.size() << " keepdim " << keep;
        expect_close(y, ref, what.str(), mag);
      }
    }
  }
}

TEST(OpsReduce, SumOfI64StaysI64) {
  const Tensor x = i64_values({2, 3}, {1, 2, 3, 4, 5, 6});
  Built all = build(make_reduce_sum, "reduce_sum", {{"dims", {}}});
  expect_equal_bits(run(*all.op, {&x}), i64_values({}, {21}), "i64 sum of all");
  Built rows = build(make_reduce_sum, "reduce_sum", {{"dims", {0}}, {"keepdim", {1}}});
  expect_equal_bits(run(*rows.op, {&x}), i64_values({1, 3}, {5, 7, 9}), "i64 sum over dim 0");
}

TEST(OpsReduce, Errors) {
  Built dup = build(make_reduce_sum, "reduce_sum", {{"dims", {1, -1}}});
  expect_error([&] { dup.op->infer(descs({{2, 3}}), 1); },
               {"dim 1 appears twice in dims [1, -1] (expected distinct dims)"});
  Built far = build(make_reduce_mean, "reduce_mean", {{"dims", {3}}});
  expect_error([&] { far.op->infer(descs({{2, 3}}), 1); }, {"axis 3 is out of range for rank 2"});
  Built mean = build(make_reduce_mean, "reduce_mean", {{"dims", {0}}});
  expect_error([&] { mean.op->infer(descs({{2, 3}}, DType::kI64), 1); }, {"input 0 (x) is i64 (expected f32"});
  expect_error([] { build(make_reduce_sum, "reduce_sum", {{"keepdim", {3}}}); }, {"attribute 'keepdim' is 3"});
}

// --- embedding -------------------------------------------------------------------------------

TEST(OpsEmbedding, GathersRows) {
  const Tensor w = random_f32({10, 5}, 500);
  Built op = build(make_embedding, "embedding");
  for (const Shape& shape : std::vector<Shape>{{}, {3}, {2, 4}, {2, 0}, {2, 3, 2}}) {
    const Tensor idx = random_i64(shape, 501, 0, 9);
    const Tensor y = run(*op.op, {&w, &idx});
    Shape out = shape;
    out.push_back(5);
    Tensor want(DType::kF32, out);
    for (int64_t i = 0; i < idx.numel(); ++i) {
      std::memcpy(want.data_as<float>() + i * 5, w.data_as<float>() + idx.data_as<int64_t>()[i] * 5, 5 * sizeof(float));
    }
    expect_equal_bits(y, want, "embedding of indices " + str(shape));
  }
}

TEST(OpsEmbedding, OutOfRangeIndexIsAnError) {
  const Tensor w = random_f32({10, 5}, 500);
  Built op = build(make_embedding, "embedding");
  for (int64_t bad : {int64_t{10}, int64_t{-1}, kI64Max}) {
    const Tensor idx = i64_values({2, 2}, {1, 2, bad, 3});
    Tensor out(DType::kF32, {2, 2, 5});
    const TensorDesc d{DType::kF32, {2, 2, 5}};
    expect_error([&] { op.op->run({w.view(), idx.view()}, d, out.data(), RunContext{}); },
                 {"node 't.embedding' (embedding)", "index " + std::to_string(bad) + " at position 2",
                  "expected 0 to 9 for a weight of 10 rows"});
  }
  expect_error([&] { op.op->infer({{DType::kF32, {10, 5}}, {DType::kF32, {3}}}, 1); },
               {"input 1 (indices) is f32 (expected i64)"});
  expect_error([&] { op.op->infer({{DType::kF32, {10}}, {DType::kI64, {3}}}, 1); },
               {"input 0 (weight) has shape (10,) (expected 2 dims"});
}

// --- matmul ----------------------------------------------------------------------------------

TEST(OpsMatmul, TorchSemanticsMatchReference) {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3}, {3}},                 // dot: 0-d
      {{4, 3}, {3}},              // matrix · vector
      {{3}, {3, 5}},              // vector · matrix
      {{4, 3}, {3, 5}},
      {{2, 4, 3}, {3}},           // batched matrix · vector
      {{3}, {2, 3, 4}},           // vector · batched matrix
      {{2, 1, 4, 3}, {5, 3, 2}},  // batch broadcast both ways
      {{2, 4, 3}, {3, 6}},        // shared b
      {{1, 3}, {2, 3, 4}},        // shared a
      {{3, 4, 7}, {3, 7, 5}},     // plain batch
      {{37, 129}, {129, 257}},    // odd, over a k and an n block
      {{2, 3, 65, 33}, {2, 3, 33, 70}},  // two threads over batch
      {{1, 200, 130}, {130, 300}},       // two threads over rows
      {{3, 0}, {0, 4}},           // k = 0: zeros
      {{0, 3}, {3, 4}},           // m = 0
      {{2, 3}, {3, 0}},           // n = 0
  };
  Built op = build(make_matmul, "matmul");
  uint32_t seed = 600;
  for (const auto& [sa, sb] : cases) {
    const Tensor a = random_f32(sa, ++seed), b = random_f32(sb, ++seed);
    const Tensor y = run(*op.op, {&a, &b});
    // Reference from the definition: promote, broadcast the batch, multiply, drop promoted dims.
    const Shape pa = sa.size() == 1 ? Shape{1, sa[0]} : sa, pb = sb.size() == 1 ? Shape{sb[0], 1} : sb;
    const int64_t m = pa[pa.size() - 2], k = pa.back(), n = pb.back();
    const Shape ba(pa.begin(), pa.end() - 2), bb(pb.begin(), pb.end() - 2), batch = broadcast_ref(ba, bb);
    Shape out = batch;
    if (sa.size() > 1) out.push_back(m);
    if (sb.size() > 1) out.push_back(n);
    ASSERT_EQ(y.shape(), out) << str(sa) << " @ " << str(sb);
    const std::vector<double> va = to_f64(a), vb = to_f64(b);
    std::vector<double> ref, mag;
    for (int64_t bi = 0; bi < numel(batch); ++bi) {
      const auto idx = unravel(bi, batch);
      const int64_t oa = broadcast_index(idx, ba) * m * k, ob = broadcast_index(idx, bb) * k * n;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double s = 0, g = 0;
          for (int64_t p = 0; p < k; ++p) {
            s += va[size_t(oa + i * k + p)] * vb[size_t(ob + p * n + j)];
            g += std::abs(va[size_t(oa + i * k + p)] * vb[size_t(ob + p * n + j)]);
          }
          ref.push_back(s);
          mag.push_back(g);
        }
      }
    }
    expect_close(y, ref, "matmul " + str(sa) + " @ " + str(sb), mag);
  }
}

TEST(OpsMatmul, Errors) {
  Built op = build(make_matmul, "matmul");
  expect_error([&] { op.op->infer(descs({{2, 3}, {4, 5}}), 1); },
               {"node 't.matmul' (matmul)", "input shapes (2, 3) and (4, 5) cannot be multiplied",
                "expected a's last dim 3 to equal b's second-to-last dim 4"});
  expect_error([&] { op.op->infer(descs({{2, 3}, {4}}), 1); }, {"to equal b's only dim 4"});
  expect_error([&] { op.op->infer(descs({{2, 2, 3}, {3, 3, 4}}), 1); },
               {"input shapes (2, 2, 3) and (3, 3, 4) have batch dims that do not broadcast"});
  expect_error([&] { op.op->infer(descs({{}, {3}}), 1); }, {"include a 0-d tensor"});
  expect_error([&] { op.op->infer({{DType::kI64, {2, 3}}, {DType::kF32, {3, 2}}}, 1); }, {"input 0 (a) is i64"});
}

// --- sdpa ------------------------------------------------------------------------------------

struct SdpaCase {
  Shape q, k, v, mask;  // mask empty: none
  bool has_mask, causal;
  double scale;  // 0: the default 1/sqrt(E)
};

/// Scores, mask, causal tril, softmax (a row with nothing unmasked gives zeros), weighted sum.
void sdpa_ref(const SdpaCase& c, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask,
              std::vector<double>* ref, std::vector<double>* mag, Shape* out) {
  const int64_t L = c.q[c.q.size() - 2], E = c.q.back(), S = c.k[c.k.size() - 2], Ev = c.v.back();
  const Shape bq(c.q.begin(), c.q.end() - 2), bk(c.k.begin(), c.k.end() - 2), bv(c.v.begin(), c.v.end() - 2);
  const Shape batch = broadcast_ref(broadcast_ref(bq, bk), bv);
  *out = batch;
  out->push_back(L);
  out->push_back(Ev);
  Shape scores = batch;
  scores.push_back(L);
  scores.push_back(S);
  const double scale = c.scale != 0 ? c.scale : 1.0 / std::sqrt(double(E));
  const auto vq = to_f64(q), vk = to_f64(k), vv = to_f64(v);
  const auto vm = mask ? to_f64(*mask) : std::vector<double>();
  for (int64_t b = 0; b < numel(batch); ++b) {
    const auto idx = unravel(b, batch);
    const int64_t oq = broadcast_index(idx, bq) * L * E, ok = broadcast_index(idx, bk) * S * E,
                  ov = broadcast_index(idx, bv) * S * Ev;
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<size_t>(S));
      double mx = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        double d = 0;
        for (int64_t e = 0; e < E; ++e) d += vq[size_t(oq + i * E + e)] * vk[size_t(ok + j * E + e)];
        d *= scale;
        if (mask) {
          auto sidx = idx;
          sidx.push_back(i);
          sidx.push_back(j);
          d += vm[size_t(broadcast_index(sidx, c.mask))];
        }
        if (c.causal && j > i) d = -INFINITY;
        s[size_t(j)] = d;
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (auto& x : s) sum += (x = mx == -INFINITY ? 0.0 : std::exp(x - mx));
      for (int64_t t = 0; t < Ev; ++t) {
        double o = 0, g = 0;
        for (int64_t j = 0; j < S; ++j) {
          const double p = sum > 0 ? s[size_t(j)] / sum : 0.0;
          o += p * vv[size_t(ov + j * Ev + t)];
          g += p * std::abs(vv[size_t(ov + j * Ev + t)]);
        }
        ref->push_back(o);
        mag->push_back(g);
      }
    }
  }
}

TEST(OpsSdpa, MatchesReference) {
  const std::vector<SdpaCase> cases = {
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, {}, false, false, 0},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, {}, false, true, 0},    // causal, L < S
      {{2, 3, 7, 8}, {2, 3, 5, 8}, {2, 3, 5, 6}, {}, false, true, 0},    // causal, L > S
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, {5, 7}, true, false, 0},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, {2, 1, 5, 7}, true, false, 0.3},
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, {7}, true, false, 0},   // key padding row
      {{2, 3, 5, 8}, {1, 3, 7, 8}, {2, 1, 7, 6}, {}, false, false, 0},   // batch broadcast
      {{5, 4}, {6, 4}, {6, 3}, {}, false, true, 0},                       // rank 2
      {{3, 1, 9}, {3, 11, 9}, {3, 11, 13}, {3, 1, 11}, true, false, 2.0}, // rank 3, one query
      {{1, 4, 64, 32}, {1, 4, 64, 32}, {1, 4, 64, 32}, {}, false, true, 0},  // two threads
      {{2, 2, 3, 4}, {2, 2, 0, 4}, {2, 2, 0, 5}, {}, false, false, 0},   // no keys: zeros
  };
  uint32_t seed = 700;
  for (const auto& c : cases) {
    Floats floats;
    if (c.scale != 0) floats["scale"] = {c.scale};
    Built op = build(make_sdpa, "sdpa", {{"is_causal", {c.causal}}}, floats);
    const Tensor q = random_f32(c.q, ++seed), k = random_f32(c.k, ++seed), v = random_f32(c.v, ++seed);
    Tensor mask = random_f32(c.mask, ++seed);
    std::vector<const Tensor*> ins = {&q, &k, &v};
    if (c.has_mask) {
      for (int64_t i = 0; i < mask.numel(); i += 3) mask.data_as<float>()[i] = -INFINITY;  // masked-out keys
      ins.push_back(&mask);
    }
    std::vector<double> ref, mag;
    Shape out;
    sdpa_ref(c, q, k, v, c.has_mask ? &mask : nullptr, &ref, &mag, &out);
    const Tensor y = run(*op.op, ins);
    ASSERT_EQ(y.shape(), out);
    expect_close(y, ref, "sdpa q " + str(c.q) + " k " + str(c.k) + " v " + str(c.v) + " mask " + str(c.mask), mag);
  }
}

// sdpa_rows against sdpa_ref on the heads copied out of token rows: q (B, L, Wq) with head h at
// columns [cq + h·E, ...), k and v alike; the output (B, L, H·Ev) is ref's (B, H, L, Ev) heads side by side.
struct SdpaRowsCase {
  int64_t b, l, s, heads, e, ev;
  int64_t wq, wk, wv, cq, ck, cv;
  bool fused;  // q, k and v one tensor (wq = wk = wv)
  Shape mask;  // broadcast to (B, H, L, S); empty: none
  bool causal;
};

Tensor heads_of(const Tensor& rows, int64_t heads, int64_t width, int64_t column) {
  const Shape& r = rows.shape();
  Tensor t(DType::kF32, {r[0], heads, r[1], width});
  for (int64_t b = 0; b < r[0]; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < r[1]; ++i)
        for (int64_t e = 0; e < width; ++e)
          t.data_as<float>()[((b * heads + h) * r[1] + i) * width + e] =
              rows.data_as<float>()[(b * r[1] + i) * r[2] + column + h * width + e];
  return t;
}

TEST(OpsSdpaRows, MatchesSdpaOnTheHeads) {
  const std::vector<SdpaRowsCase> cases = {
      {2, 5, 5, 3, 4, 4, 36, 36, 36, 0, 12, 24, true, {}, false},         // one fused q/k/v product
      {2, 5, 5, 3, 4, 4, 36, 36, 36, 24, 0, 12, true, {}, true},          // other column order, causal
      {3, 7, 9, 2, 5, 3, 13, 11, 8, 1, 0, 2, false, {}, false},           // cross attention, Ev ≠ E, spare columns
      {2, 6, 6, 4, 8, 8, 32, 32, 32, 0, 0, 0, false, {2, 1, 1, 6}, false},  // key padding mask per sequence
      {1, 4, 6, 3, 2, 2, 6, 6, 6, 0, 0, 0, false, {3, 4, 6}, false},     // a mask per head
      {1, 64, 64, 4, 32, 32, 384, 384, 384, 0, 128, 256, true, {}, true},  // two threads
  };
  uint32_t seed = 900;
  for (const auto& c : cases) {
    Built op = build(make_sdpa_rows, "sdpa_rows",
                     {{"heads", {c.heads}}, {"head_dims", {c.e, c.ev}}, {"columns", {c.cq, c.ck, c.cv}},
                      {"is_causal", {c.causal}}});
    const Tensor q = random_f32({c.b, c.l, c.wq}, ++seed);
    const Tensor k = c.fused ? q : random_f32({c.b, c.s, c.wk}, ++seed);
    const Tensor v = c.fused ? q : random_f32({c.b, c.s, c.wv}, ++seed);
    Tensor mask = random_f32(c.mask, ++seed);
    for (int64_t i = 0; i < mask.numel(); i += 3) mask.data_as<float>()[i] = -INFINITY;
    std::vector<const Tensor*> ins = {&q, &k, &v};
    if (!c.mask.empty()) ins.push_back(&mask);
    const Tensor y = run(*op.op, ins);
    ASSERT_EQ(y.shape(), (Shape{c.b, c.l, c.heads * c.ev}));

    const SdpaCase heads{{c.b, c.heads, c.l, c.e}, {c.b, c.heads, c.s, c.e}, {c.b, c.heads, c.s, c.ev}, c.mask,
                         !c.mask.empty(), c.causal, 0};
    std::vector<double> ref, mag;
    Shape out;
    sdpa_ref(heads, heads_of(q, c.heads, c.e, c.cq), heads_of(k, c.heads, c.e, c.ck), heads_of(v, c.heads, c.ev, c.cv),
             c.mask.empty() ? nullptr : &mask, &ref, &mag, &out);
    std::vector<double> ref_rows(ref.size()), mag_rows(mag.size());
    for (int64_t b = 0; b < c.b; ++b)
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t i = 0; i < c.l; ++i)
          for (int64_t t = 0; t < c.ev; ++t) {
            const auto from = static_cast<size_t>(((b * c.heads + h) * c.l + i) * c.ev + t);
            const auto to = static_cast<size_t>((b * c.l + i) * c.heads * c.ev + h * c.ev + t);
            ref_rows[to] = ref[from];
            mag_rows[to] = mag[from];
          }
    expect_close(y, ref_rows, "sdpa_rows q " + str(q.shape()) + " heads " + std::to_string(c.heads) + " mask " +
                                  str(c.mask), mag_rows);
  }
}

TEST(OpsSdpaRows, Errors) {
  const Ints attrs = {{"heads", {3}}, {"head_dims", {4, 4}}, {"columns", {0, 12, 24}}};
  Built op = build(make_sdpa_rows, "sdpa_rows", attrs);
  expect_error([&] { op.op->infer(descs({{2, 5, 36}, {2, 5, 23}, {2, 5, 36}}), 1); },
               {"node 't.sdpa_rows' (sdpa_rows)", "k's 3 heads of 4 columns from column 12 (expected within its 23 columns)"});
  expect_error([&] { op.op->infer(descs({{2, 5, 36}, {2, 5, 36}, {2, 5, 36}, {2, 2, 5, 5}}), 1); },
               {"mask of shape (2, 2, 5, 5) does not broadcast to the scores (2, 3, 5, 5)"});
  expect_error([] { build(make_sdpa_rows, "sdpa_rows", {{"heads", {0}}, {"head_dims", {4, 4}}, {"columns", {0, 0, 0}}}); },
               {"attribute 'heads' is 0 (expected ≥ 1)"});
  expect_error([] { build(make_sdpa_rows, "sdpa_rows", {{"heads", {2}}, {"head_dims", {4}}, {"columns", {0, 0, 0}}}); },
               {"attribute 'head_dims' [4] (expected [E, Ev], both ≥ 1)"});
  expect_error([] { build(make_sdpa_rows, "sdpa_rows", {{"heads", {2}}, {"head_dims", {4, 4}}, {"columns", {0, -1, 0}}}); },
               {"attribute 'columns' [0, -1, 0]"});
  expect_error([] { build(make_sdpa_rows, "sdpa_rows", {{"head_dims", {4, 4}}, {"columns", {0, 0, 0}}}); }, {"heads"});
}

TEST(OpsSdpa, FullyMaskedRowGivesZerosAsTorch) {
  // torch ≥ 2.5 (math and CPU flash paths, via _safe_softmax): a query that sees no key gets 0.
  const Tensor q = random_f32({1, 3, 4}, 1), k = random_f32({1, 5, 4}, 2), v = random_f32({1, 5, 2}, 3);
  Tensor mask(DType::kF32, {3, 5});
  for (int j = 0; j < 5; ++j) mask.data_as<float>()[5 + j] = -INFINITY;
  Built op = build(make_sdpa, "sdpa");
  const Tensor y = run(*op.op, {&q, &k, &v, &mask});
  EXPECT_EQ(y.data_as<float>()[2], 0.0f);
  EXPECT_EQ(y.data_as<float>()[3], 0.0f);
  EXPECT_NE(y.data_as<float>()[0], 0.0f);
}

TEST(OpsSdpa, Errors) {
  Built op = build(make_sdpa, "sdpa");
  expect_error([&] { op.op->infer(descs({{2, 5, 8}, {2, 7, 9}, {2, 7, 6}}), 1); },
               {"node 't.sdpa' (sdpa)", "q (2, 5, 8), k (2, 7, 9), v (2, 7, 6): k's last dim 9 differs from q's 8"});
  expect_error([&] { op.op->infer(descs({{2, 5, 8}, {2, 7, 8}, {2, 6, 6}}), 1); }, {"v has 6 rows and k 7"});
  expect_error([&] { op.op->infer(descs({{2, 5, 8}, {3, 7, 8}, {2, 7, 6}}), 1); }, {"batch dims do not broadcast"});
  expect_error([&] { op.op->infer(descs({{2, 5, 8}, {2, 7, 8}, {2, 7, 6}, {5, 6}}), 1); },
               {"mask of shape (5, 6) does not broadcast to the scores (2, 5, 7)"});
  expect_error([&] { op.op->infer(descs({{8}, {2, 7, 8}, {2, 7, 6}}), 1); },
               {"input 0 (q) has shape (8,) (expected at least 2 dims)"});
  expect_error([&] { op.op->infer(descs({{2, 5, 8}, {2, 7, 8}}), 1); }, {"got 2 inputs (expected 3 to 4)"});
  Built causal = build(make_sdpa, "sdpa", {{"is_causal", {1}}});
  expect_error([&] { causal.op->infer(descs({{2, 5, 8}, {2, 7, 8}, {2, 7, 6}, {5, 7}}), 1); },
               {"is_causal is 1 and a mask is given"});
  expect_error([] { build(make_sdpa, "sdpa", {{"is_causal", {2}}}); },
               {"attribute 'is_causal' is 2 (expected 0 or 1)"});
  expect_error([] { build(make_sdpa, "sdpa", {}, {{"scale", {1.0, 2.0}}}); }, {"'scale' has 2 values (expected 1)"});
}

}  // namespace
}  // namespace sparsert::test
