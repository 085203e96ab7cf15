// The operators that build attention masks and positions inside models (Hugging Face BERT and
// GPT-2): bool tensors through binary (comparisons, and/or/xor, bool mul/maximum/minimum) and
// cast, then where, arange, index and cumsum, each against a naive reference written here from
// PyTorch's definitions, over odd shapes, every kind of broadcast and f32, i64 and bool data; each
// case runs with 1 and 2 threads, which must agree bit for bit. Then the messages for wrong dtypes,
// bad attributes and out-of-range indices. Graph-level checks (zero-input nodes, micro-batches,
// the model file) are in test_model.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "ops_testing.hpp"

namespace sparsert::test {
namespace {

constexpr int64_t kI64Min = std::numeric_limits<int64_t>::min();
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

/// f32 values from a small set (so that equal pairs occur), a NaN about every 11th element.
Tensor small_f32(const Shape& shape, uint32_t seed) {
  Tensor t = random_i64(shape, seed, -3, 3);
  Tensor f(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    f.data_as<float>()[i] = (i + seed) % 11 == 5 ? kNaN : 0.5f * static_cast<float>(t.data_as<int64_t>()[i]);
  }
  return f;
}

/// Element i of `t` as a double (bool: 0 or 1; any nonzero byte is true).
double value_at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kF32: return t.data_as<float>()[i];
    case DType::kI64: return static_cast<double>(t.data_as<int64_t>()[i]);
    case DType::kBool: return t.data_as<uint8_t>()[i] != 0 ? 1.0 : 0.0;
  }
  return 0;
}

Tensor random_of(DType dtype, const Shape& shape, uint32_t seed) {
  switch (dtype) {
    case DType::kF32: return small_f32(shape, seed);
    case DType::kI64: return random_i64(shape, seed, -3, 3);
    case DType::kBool: return random_bool(shape, seed);
  }
  return {};
}

/// Copies element `from` of `src` to element `to` of `dst` (same dtype), as raw bytes.
void copy_element(const Tensor& src, int64_t from, Tensor& dst, int64_t to) {
  const int64_t es = dtype_size(src.dtype());
  std::memcpy(static_cast<char*>(dst.data()) + to * es, static_cast<const char*>(src.data()) + from * es, size_t(es));
}

const std::vector<std::pair<Shape, Shape>> kPairs = {
    {{}, {}},                   // 0-d with 0-d
    {{3, 4, 5}, {3, 4, 5}},     // same shape
    {{}, {2, 3}},               // scalar on the left
    {{2, 7, 17}, {17}},         // trailing broadcast
    {{2, 3, 5}, {3, 1}},        // inner broadcast (column)
    {{4, 1, 5}, {1, 3, 1}},     // both broadcast
    {{2, 1, 4, 1}, {3, 1, 6}},  // rank 4 with rank 3: (B, 1, 1, S) masks against (H, L, S)
    {{0, 3}, {3}},              // empty
    {{64, 1031}, {1031}},       // large enough for two threads (rows)
    {{100003}, {}},             // large enough for two threads (one row)
};

// --- binary on bool and comparisons ----------------------------------------------------------

double compare_ref(BinaryKind k, double a, double b) {
  switch (k) {
    case BinaryKind::kEq: return a == b;
    case BinaryKind::kNe: return a != b;
    case BinaryKind::kLt: return a < b;
    case BinaryKind::kLe: return a <= b;
    case BinaryKind::kGt: return a > b;
    case BinaryKind::kGe: return a >= b;
    case BinaryKind::kAnd: return a != 0 && b != 0;
    case BinaryKind::kOr: return a != 0 || b != 0;
    case BinaryKind::kXor: return (a != 0) != (b != 0);
    case BinaryKind::kMul: return a * b;
    case BinaryKind::kMaximum: return std::max(a, b);
    case BinaryKind::kMinimum: return std::min(a, b);
    default: return -1;
  }
}

/// Runs binary `kind` on a and b and checks a bool result against compare_ref per element.
void check_bool_binary(BinaryKind kind, const Tensor& a, const Tensor& b, const std::string& what) {
  Built op = build(make_binary, "binary", {{"kind", {int64_t(kind)}}});
  const Tensor y = run(*op.op, {&a, &b});
  const Shape out = broadcast_ref(a.shape(), b.shape());
  Tensor want(DType::kBool, out);
  for (int64_t i = 0; i < numel(out); ++i) {
    const auto idx = unravel(i, out);
    const double p = value_at(a, broadcast_index(idx, a.shape())), q = value_at(b, broadcast_index(idx, b.shape()));
    want.data_as<uint8_t>()[i] = compare_ref(kind, p, q) != 0 ? 1 : 0;
  }
  expect_equal_bits(y, want, what);
}

TEST(OpsBinaryMask, ComparisonsOfEveryDtypeGiveBool) {
  uint32_t seed = 3100;
  for (int64_t k = int64_t(BinaryKind::kEq); k <= int64_t(BinaryKind::kGe); ++k) {
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      for (const auto& [sa, sb] : kPairs) {
        const Tensor a = random_of(dt, sa, ++seed), b = random_of(dt, sb, ++seed);
        check_bool_binary(static_cast<BinaryKind>(k), a, b,
                          "kind " + std::to_string(k) + " " + to_string(dt) + " " + str(sa) + " and " + str(sb));
      }
    }
  }
}

TEST(OpsBinaryMask, ComparisonsWithNaNAndInfinityAsTorch) {
  const Tensor a = f32_values({5}, {kNaN, kNaN, 1.0f, kInf, -0.0f});
  const Tensor b = f32_values({5}, {kNaN, 1.0f, kNaN, kInf, 0.0f});
  const std::vector<std::pair<BinaryKind, std::vector<uint8_t>>> cases = {
      {BinaryKind::kEq, {0, 0, 0, 1, 1}}, {BinaryKind::kNe, {1, 1, 1, 0, 0}}, {BinaryKind::kLt, {0, 0, 0, 0, 0}},
      {BinaryKind::kLe, {0, 0, 0, 1, 1}}, {BinaryKind::kGt, {0, 0, 0, 0, 0}}, {BinaryKind::kGe, {0, 0, 0, 1, 1}},
  };
  for (const auto& [kind, want] : cases) {
    Built op = build(make_binary, "binary", {{"kind", {int64_t(kind)}}});
    expect_equal_bits(run(*op.op, {&a, &b}), bool_values({5}, want), "kind " + std::to_string(int64_t(kind)));
  }
  // i64 comparisons are exact where a double would round: 2^53 + 1 vs 2^53.
  const Tensor big = i64_values({2}, {(int64_t{1} << 53) + 1, kI64Min});
  const Tensor near = i64_values({2}, {int64_t{1} << 53, kI64Min + 1});
  Built gt = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kGt)}}});
  expect_equal_bits(run(*gt.op, {&big, &near}), bool_values({2}, {1, 0}), "i64 gt");
}

TEST(OpsBinaryMask, LogicAndBoolArithmeticGiveBool) {
  uint32_t seed = 3300;
  for (BinaryKind kind : {BinaryKind::kAnd, BinaryKind::kOr, BinaryKind::kXor, BinaryKind::kMul, BinaryKind::kMaximum,
                          BinaryKind::kMinimum}) {
    for (const auto& [sa, sb] : kPairs) {
      const Tensor a = random_bool(sa, ++seed, 0.3), b = random_bool(sb, ++seed, 0.6);
      check_bool_binary(kind, a, b, "bool kind " + std::to_string(int64_t(kind)) + " " + str(sa) + " and " + str(sb));
    }
  }
  // A caller's byte other than 0 and 1 reads as true; results are 0 or 1.
  const Tensor odd = bool_values({4}, {2, 0, 255, 1}), ones = bool_values({4}, {1, 1, 0, 0});
  Built eq = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kEq)}}});
  expect_equal_bits(run(*eq.op, {&odd, &ones}), bool_values({4}, {1, 0, 0, 0}), "eq of a byte 2");
  Built band = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kAnd)}}});
  expect_equal_bits(run(*band.op, {&odd, &odd}), bool_values({4}, {1, 0, 1, 1}), "and of bytes 2 and 255");
}

TEST(OpsBinaryMask, Errors) {
  auto infer = [](BinaryKind kind, DType a, DType b) {
    Built op = build(make_binary, "binary", {{"kind", {int64_t(kind)}}});
    op.op->infer({{a, {2}}, {b, {2}}}, 1);
  };
  expect_error([&] { infer(BinaryKind::kAdd, DType::kBool, DType::kBool); },
               {"node 't.binary' (binary)", "inputs are bool and bool for add (expected two f32 or two i64; insert a cast)"});
  expect_error([&] { infer(BinaryKind::kSub, DType::kBool, DType::kBool); }, {"inputs are bool and bool for sub"});
  expect_error([&] { infer(BinaryKind::kDiv, DType::kBool, DType::kBool); }, {"for div (expected two f32;"});
  expect_error([&] { infer(BinaryKind::kPow, DType::kBool, DType::kBool); }, {"for pow (expected two f32;"});
  expect_error([&] { infer(BinaryKind::kAnd, DType::kF32, DType::kF32); },
               {"inputs are f32 and f32 for and (expected two bool; insert a cast)"});
  expect_error([&] { infer(BinaryKind::kOr, DType::kI64, DType::kI64); }, {"inputs are i64 and i64 for or"});
  expect_error([&] { infer(BinaryKind::kXor, DType::kBool, DType::kI64); }, {"inputs are bool and i64 for xor"});
  expect_error([&] { infer(BinaryKind::kEq, DType::kF32, DType::kI64); },
               {"inputs are f32 and i64 for eq (expected two f32, two i64 or two bool; insert a cast)"});
  expect_error([&] { infer(BinaryKind::kLt, DType::kBool, DType::kF32); }, {"inputs are bool and f32 for lt"});
  expect_error([&] { infer(BinaryKind::kMaximum, DType::kI64, DType::kBool); },
               {"for maximum (expected two f32, two i64 or two bool"});
  Built ge = build(make_binary, "binary", {{"kind", {int64_t(BinaryKind::kGe)}}});
  expect_error([&] { ge.op->infer(descs({{2, 3}, {4}}, DType::kBool), 1); },
               {"input shapes (2, 3) and (4,) do not broadcast"});
  EXPECT_EQ(ge.op->infer(descs({{2, 3}, {3}}, DType::kI64), 1).dtype, DType::kBool);
}

// --- cast ------------------------------------------------------------------------------------

TEST(OpsCastMask, EveryConversionAsTorch) {
  const float denormal = std::numeric_limits<float>::denorm_min();
  const Tensor f = f32_values({2, 4}, {-2.7f, 0.0f, -0.0f, kNaN, kInf, 0.5f, denormal, 3.0f});
  const Tensor i = i64_values({2, 4}, {0, -1, 5, kI64Min, 0, int64_t{1} << 40, 1, 0});
  const Tensor b = bool_values({2, 4}, {0, 1, 1, 0, 2, 0, 1, 0});  // a byte 2 reads as true
  Built to_f32 = build(make_cast, "cast", {{"dtype", {int64_t(DType::kF32)}}});
  Built to_i64 = build(make_cast, "cast", {{"dtype", {int64_t(DType::kI64)}}});
  Built to_bool = build(make_cast, "cast", {{"dtype", {int64_t(DType::kBool)}}});
  // to bool: x != 0, so NaN, infinities and denormals are true and -0.0 false.
  expect_equal_bits(run(*to_bool.op, {&f}), bool_values({2, 4}, {1, 0, 0, 1, 1, 1, 1, 1}), "f32 to bool");
  expect_equal_bits(run(*to_bool.op, {&i}), bool_values({2, 4}, {0, 1, 1, 1, 0, 1, 1, 0}), "i64 to bool");
  expect_equal_bits(run(*to_bool.op, {&b}), b, "bool to bool");
  // from bool: 0 or 1.
  expect_equal_bits(run(*to_f32.op, {&b}), f32_values({2, 4}, {0, 1, 1, 0, 1, 0, 1, 0}), "bool to f32");
  expect_equal_bits(run(*to_i64.op, {&b}), i64_values({2, 4}, {0, 1, 1, 0, 1, 0, 1, 0}), "bool to i64");
  // f32 <-> i64 as before: truncation toward zero, INT64_MIN for NaN and out-of-range values.
  expect_equal_bits(run(*to_i64.op, {&f}), i64_values({2, 4}, {-2, 0, 0, kI64Min, kI64Min, 0, 0, 3}), "f32 to i64");
  expect_equal_bits(run(*to_f32.op, {&i}),
                    f32_values({2, 4}, {0.0f, -1.0f, 5.0f, -9223372036854775808.0f, 0.0f, 1099511627776.0f, 1.0f, 0.0f}),
                    "i64 to f32");
  // Random data, zeros sprinkled in, odd shapes including 0-d and empty.
  uint32_t seed = 3500;
  for (const Shape& shape : {Shape{}, Shape{7}, Shape{3, 5, 17}, Shape{0, 4}, Shape{100003}}) {
    Tensor x = random_f32(shape, ++seed);
    for (int64_t k = 0; k < x.numel(); k += 3) x.data_as<float>()[k] = 0.0f;
    const Tensor y = run(*to_bool.op, {&x});
    Tensor want(DType::kBool, shape);
    for (int64_t k = 0; k < x.numel(); ++k) want.data_as<uint8_t>()[k] = x.data_as<float>()[k] != 0.0f;
    expect_equal_bits(y, want, "random f32 to bool " + str(shape));
    const Tensor back = run(*to_i64.op, {&y});
    for (int64_t k = 0; k < x.numel(); ++k) ASSERT_EQ(back.data_as<int64_t>()[k], want.data_as<uint8_t>()[k]) << k;
  }
}

// --- where -----------------------------------------------------------------------------------

struct WhereCase {
  Shape cond, a, b;
};

TEST(OpsWhere, EveryDtypeAndBroadcastMatchesReference) {
  const std::vector<WhereCase> cases = {
      {{}, {}, {}},
      {{2, 3, 4}, {2, 3, 4}, {2, 3, 4}},
      {{4, 1, 1, 7}, {4, 3, 5, 7}, {}},  // a key-padding mask over scores, a scalar fill
      {{5, 7}, {}, {3, 5, 7}},           // a causal mask, the fill first (masked_fill's order)
      {{1, 7}, {3, 7}, {3, 1}},
      {{5, 1}, {1, 6}, {}},              // every operand broadcast
      {{2, 1, 4, 1}, {3, 1, 6}, {1}},    // rank 4 with rank 3
      {{3}, {2, 0, 3}, {3}},             // empty
      {{3, 1}, {3, 70001}, {70001}},     // long rows: two threads
      {{100003}, {100003}, {}},          // one long row: two threads
  };
  uint32_t seed = 3700;
  for (const auto& c : cases) {
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      const Tensor cond = random_bool(c.cond, ++seed, 0.4);
      const Tensor a = dt == DType::kF32 ? random_f32(c.a, ++seed) : random_of(dt, c.a, ++seed);
      const Tensor b = dt == DType::kF32 ? random_f32(c.b, ++seed) : random_of(dt, c.b, ++seed);
      Built op = build(make_where, "where");
      const Tensor y = run(*op.op, {&cond, &a, &b});
      const Shape out = broadcast_ref(broadcast_ref(c.cond, c.a), c.b);
      Tensor want(dt, out);
      for (int64_t i = 0; i < numel(out); ++i) {
        const auto idx = unravel(i, out);
        const bool take_a = cond.data_as<uint8_t>()[broadcast_index(idx, c.cond)] != 0;
        if (take_a) {
          copy_element(a, broadcast_index(idx, c.a), want, i);
        } else {
          copy_element(b, broadcast_index(idx, c.b), want, i);
        }
      }
      expect_equal_bits(y, want, std::string("where ") + to_string(dt) + " cond " + str(c.cond) + " a " + str(c.a) +
                                     " b " + str(c.b));
    }
  }
  // A byte other than 0 and 1 in cond reads as true.
  const Tensor cond = bool_values({3}, {2, 0, 1});
  const Tensor a = i64_values({3}, {1, 2, 3}), b = i64_values({}, {-9});
  Built op = build(make_where, "where");
  expect_equal_bits(run(*op.op, {&cond, &a, &b}), i64_values({3}, {1, -9, 3}), "where with a byte 2");
}

TEST(OpsWhere, Errors) {
  Built op = build(make_where, "where");
  expect_error([&] { op.op->infer(descs({{2}, {2}, {2}}), 1); },
               {"node 't.where' (where)", "input 0 (cond) is f32 (expected bool)"});
  expect_error([&] { op.op->infer(descs({{2}, {2}, {2}}, DType::kI64), 1); }, {"input 0 (cond) is i64 (expected bool)"});
  expect_error([&] { op.op->infer({{DType::kBool, {2}}, {DType::kF32, {2}}, {DType::kI64, {2}}}, 1); },
               {"inputs 1 (a) and 2 (b) are f32 and i64 (expected one dtype; insert a cast)"});
  expect_error([&] { op.op->infer({{DType::kBool, {2, 3}}, {DType::kF32, {3}}, {DType::kF32, {4}}}, 1); },
               {"input shapes (2, 3) (cond), (3,) (a) and (4,) (b) do not broadcast"});
  expect_error([&] { op.op->infer({{DType::kBool, {2, 3}}, {DType::kF32, {4, 1}}, {DType::kF32, {1}}}, 1); },
               {"input shapes (2, 3) (cond), (4, 1) (a) and (1,) (b) do not broadcast"});
  expect_error([&] { op.op->infer({{DType::kBool, {2}}, {DType::kF32, {2}}}, 1); }, {"got 2 inputs (expected 3)"});
}

// --- arange ----------------------------------------------------------------------------------

Ints arange_attrs(int64_t start, int64_t step, int64_t coef, int64_t constant) {
  return {{"start", {start}}, {"step", {step}}, {"length_coef", {coef}}, {"length_const", {constant}}};
}

TEST(OpsArange, StartStepAndBatchLength) {
  struct Case {
    int64_t start, step, coef, constant, batch;
  };
  const std::vector<Case> cases = {
      {0, 1, 0, 7, 1},    {5, -2, 0, 4, 1},  {-3, 3, 2, 1, 4}, {0, 1, 1, 0, 5},
      {11, 7, 0, 0, 1},   {0, 1, 1, -2, 2},  {2, 5, 3, 0, 0},  {-100, 13, 0, 100003, 3},
  };
  for (const auto& c : cases) {
    Built op = build(make_arange, "arange", arange_attrs(c.start, c.step, c.coef, c.constant));
    const Tensor y = run(*op.op, {}, c.batch);
    const int64_t length = c.coef * c.batch + c.constant;
    Tensor want(DType::kI64, {length});
    for (int64_t i = 0; i < length; ++i) want.data_as<int64_t>()[i] = c.start + i * c.step;
    expect_equal_bits(y, want, "arange start " + std::to_string(c.start) + " step " + std::to_string(c.step) +
                                   " length " + std::to_string(length));
  }
  // Wraps past the i64 range like the other i64 arithmetic.
  Built wrap = build(make_arange, "arange", arange_attrs(kI64Max - 1, 1, 0, 3));
  expect_equal_bits(run(*wrap.op, {}), i64_values({3}, {kI64Max - 1, kI64Max, kI64Min}), "arange past INT64_MAX");
}

TEST(OpsArange, Errors) {
  expect_error([] { build(make_arange, "arange", arange_attrs(0, 0, 0, 4)); },
               {"node 't.arange' (arange)", "attribute 'step' is 0 (expected a nonzero step)"});
  expect_error([] { build(make_arange, "arange", {{"step", {1}}, {"length_coef", {0}}, {"length_const", {3}}}); },
               {"missing integer attribute 'start'"});
  expect_error([] { build(make_arange, "arange", {{"start", {0}}, {"step", {1}}, {"length_const", {3}}}); },
               {"missing integer attribute 'length_coef'"});
  expect_error([] { build(make_arange, "arange", {{"start", {0, 1}}, {"step", {1}}, {"length_coef", {0}}, {"length_const", {3}}}); },
               {"attribute 'start' has 2 values (expected 1)"});
  Built op = build(make_arange, "arange", arange_attrs(0, 1, -1, 2));
  expect_error([&] { op.op->infer({}, 3); }, {"length -1 · batch + 2 is -1 at batch 3 (expected ≥ 0)"});
  expect_error([&] { op.op->infer(descs({{2}}), 1); }, {"got 1 inputs (expected 0)"});
}

// --- index -----------------------------------------------------------------------------------

struct IndexCase {
  Shape x;
  int64_t axis;
  std::vector<Shape> idx;
};

/// torch's x[(slice(None),) * p + (idx_0, …, idx_{k-1})], written from its definition.
Tensor index_ref(const Tensor& x, int64_t axis, const std::vector<Tensor>& idx) {
  const Shape& xs = x.shape();
  const size_t k = idx.size();
  const size_t p = size_t(axis < 0 ? axis + int64_t(xs.size()) : axis);
  Shape ishape;
  for (const auto& t : idx) ishape = broadcast_ref(ishape, t.shape());
  Shape out(xs.begin(), xs.begin() + std::ptrdiff_t(p));
  out.insert(out.end(), ishape.begin(), ishape.end());
  out.insert(out.end(), xs.begin() + std::ptrdiff_t(p + k), xs.end());
  Tensor y(x.dtype(), out);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const auto o = unravel(i, out);
    const std::vector<int64_t> ipos(o.begin() + std::ptrdiff_t(p), o.begin() + std::ptrdiff_t(p + ishape.size()));
    std::vector<int64_t> src(o.begin(), o.begin() + std::ptrdiff_t(p));
    for (size_t j = 0; j < k; ++j) {
      int64_t v = idx[j].data_as<int64_t>()[broadcast_index(ipos, idx[j].shape())];
      src.push_back(v < 0 ? v + xs[p + j] : v);
    }
    src.insert(src.end(), o.begin() + std::ptrdiff_t(p + ishape.size()), o.end());
    int64_t flat = 0;
    for (size_t d = 0; d < xs.size(); ++d) flat = flat * xs[d] + src[d];
    copy_element(x, flat, y, i);
  }
  return y;
}

TEST(OpsIndex, AdvancedIndexingMatchesReference) {
  const std::vector<IndexCase> cases = {
      {{7}, 0, {{5}}},                    // a gather of a 1-d tensor
      {{4, 5, 3}, 1, {{2, 3}}},           // a 2-d index in the middle: (4, 2, 3, 3)
      {{4, 5, 3}, 0, {{6}, {6}}},         // two index tensors on the leading dims
      {{4, 5, 3}, 1, {{2, 1}, {1, 3}}},   // index tensors broadcast together to (2, 3)
      {{3, 4, 5, 6}, 1, {{}, {7}}},       // a 0-d index with a 1-d one
      {{3, 4, 5}, -1, {{2, 2}}},          // the last dim, negative axis
      {{3, 4, 5}, -2, {{3}, {3}}},        // the last two dims
      {{2, 3}, 0, {{}, {}}},              // every dim indexed by 0-d tensors: a 0-d result
      {{3, 6, 5}, 0, {{3}, {3}}},         // x[arange(B), last]: a pooled token per item
      {{6, 0, 2}, 0, {{3}}},              // empty trailing block
      {{5, 4}, 0, {{0}}},                 // no index positions
      {{0, 5}, 1, {{2}}},                 // empty leading block
      {{300, 201}, 0, {{500}}},           // rows: two threads
      {{2, 1000, 3}, 2, {{1}}},           // one element per position: two threads
      {{2, 50, 700}, 1, {{40}}},          // long blocks copied whole
  };
  uint32_t seed = 3900;
  for (const auto& c : cases) {
    Built op = build(make_index, "index", {{"axis", {c.axis}}});
    const size_t p = size_t(c.axis < 0 ? c.axis + int64_t(c.x.size()) : c.axis);
    std::vector<Tensor> idx;
    for (size_t j = 0; j < c.idx.size(); ++j) {
      const int64_t size = c.x[p + j];  // every index in [-size, size): negatives count from the end
      idx.push_back(random_i64(c.idx[j], ++seed, -size, size - 1));
    }
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      const Tensor x = dt == DType::kF32 ? random_f32(c.x, ++seed) : random_of(dt, c.x, ++seed);
      std::vector<const Tensor*> ins = {&x};
      for (const auto& t : idx) ins.push_back(&t);
      expect_equal_bits(run(*op.op, ins), index_ref(x, c.axis, idx),
                        std::string("index ") + to_string(dt) + " x " + str(c.x) + " axis " + std::to_string(c.axis));
    }
  }
}

TEST(OpsIndex, OutOfRangeIndexIsAnErrorNamingIt) {
  Built op = build(make_index, "index", {{"axis", {1}}});
  const Tensor x = random_f32({3, 5, 2}, 1);
  auto error_for = [&](const Tensor& idx) {
    const TensorDesc d = op.op->infer({{x.dtype(), x.shape()}, {idx.dtype(), idx.shape()}}, 1);
    Tensor out(d.dtype, d.shape);
    op.op->run({x.view(), idx.view()}, d, out.data(), RunContext{});
  };
  expect_error([&] { error_for(i64_values({4}, {0, -5, 5, 1})); },
               {"node 't.index' (index)", "index tensor 0 holds 5 at position 2, out of range for dim 1 of size 5",
                "of x (3, 5, 2) (expected -5 to 4)"});
  expect_error([&] { error_for(i64_values({2, 2}, {4, -6, 0, 0})); }, {"holds -6 at position 1", "expected -5 to 4"});
  expect_error([&] { error_for(i64_values({1}, {kI64Min})); }, {"holds -9223372036854775808"});
  // The second index tensor, broadcast: its own position is named.
  Built two = build(make_index, "index", {{"axis", {0}}});
  const Tensor i0 = i64_values({3, 1}, {0, 1, 2}), i1 = i64_values({2}, {1, 5});
  const TensorDesc d = two.op->infer({{x.dtype(), x.shape()}, {i0.dtype(), i0.shape()}, {i1.dtype(), i1.shape()}}, 1);
  Tensor out(d.dtype, d.shape);
  expect_error([&] { two.op->run({x.view(), i0.view(), i1.view()}, d, out.data(), RunContext{}); },
               {"index tensor 1 holds 5 at position 1, out of range for dim 1 of size 5 of x (3, 5, 2) (expected -5 to 4)"});
  const Tensor empty = random_f32({3, 0}, 2);
  Built last = build(make_index, "index", {{"axis", {-1}}});
  const Tensor zero = i64_values({1}, {0});
  const TensorDesc de = last.op->infer({{empty.dtype(), empty.shape()}, {zero.dtype(), zero.shape()}}, 1);
  Tensor oute(de.dtype, de.shape);
  expect_error([&] { last.op->run({empty.view(), zero.view()}, de, oute.data(), RunContext{}); },
               {"holds 0 at position 0, out of range for dim 1 of size 0", "expected no index: the dim is empty"});
}

TEST(OpsIndex, Errors) {
  Built op = build(make_index, "index", {{"axis", {1}}});
  expect_error([&] { op.op->infer({{DType::kF32, {3, 4}}, {DType::kF32, {2}}}, 1); },
               {"node 't.index' (index)", "input 1 (index tensor 0) is f32 (expected i64)"});
  expect_error([&] { op.op->infer({{DType::kF32, {3, 4}}, {DType::kBool, {4}}}, 1); },
               {"input 1 (index tensor 0) is bool (expected i64)"});
  expect_error([&] { op.op->infer(descs({{3, 4}}), 1); }, {"got 1 inputs (expected at least 2: x and one index tensor)"});
  expect_error([&] { op.op->infer({{DType::kF32, {3, 4, 5}}, {DType::kI64, {2}}, {DType::kI64, {3}}}, 1); },
               {"index tensor shapes (2,), (3,) do not broadcast"});
  expect_error([&] { op.op->infer({{DType::kF32, {3, 4}}, {DType::kI64, {2}}, {DType::kI64, {2}}}, 1); },
               {"attribute 'axis' 1 with 2 index tensors indexes dims 1 to 2 of x (3, 4) (expected axis + 2 ≤ rank 2)"});
  expect_error([&] { op.op->infer({{DType::kF32, {}}, {DType::kI64, {2}}}, 1); }, {"axis 1 is out of range for rank 0"});
  Built far = build(make_index, "index", {{"axis", {-3}}});
  expect_error([&] { far.op->infer({{DType::kF32, {3, 4}}, {DType::kI64, {2}}}, 1); },
               {"axis -3 is out of range for rank 2 (expected -2 to 1)"});
  expect_error([] { build(make_index, "index"); }, {"missing integer attribute 'axis'"});
}

// --- cumsum ----------------------------------------------------------------------------------

TEST(OpsCumsum, EveryAxisAndDtypeMatchesReference) {
  const std::vector<std::pair<Shape, int64_t>> cases = {
      {{}, 0},      {{}, -1},        {{7}, 0},         {{7}, -1},      {{3, 5, 4}, 0},  {{3, 5, 4}, 1},
      {{3, 5, 4}, 2}, {{3, 5, 4}, -2}, {{2, 300, 3}, 1}, {{4, 600}, 0},  {{0, 3}, 1},     {{5, 0}, 0},
      {{100003}, 0}, {{64, 1031}, 1},
  };
  uint32_t seed = 4100;
  for (const auto& [shape, axis] : cases) {
    Built op = build(make_cumsum, "cumsum", {{"axis", {axis}}});
    const size_t a = shape.empty() ? 0 : size_t(axis < 0 ? axis + int64_t(shape.size()) : axis);
    const int64_t n = shape.empty() ? 1 : shape[a];
    int64_t inner = 1;
    for (size_t d = a + 1; d < shape.size(); ++d) inner *= shape[d];
    for (DType dt : {DType::kF32, DType::kI64, DType::kBool}) {
      const Tensor x = dt == DType::kF32   ? random_f32(shape, ++seed)
                       : dt == DType::kI64 ? random_i64(shape, ++seed, -1000000, 1000000)
                                           : random_bool(shape, ++seed);
      const Tensor y = run(*op.op, {&x});
      const std::string what = std::string("cumsum ") + to_string(dt) + " " + str(shape) + " axis " + std::to_string(axis);
      ASSERT_EQ(y.shape(), shape) << what;
      ASSERT_EQ(y.dtype(), dt == DType::kF32 ? DType::kF32 : DType::kI64) << what;
      // Element i is x[i] plus the sum at its predecessor along the axis (i - inner), if any.
      std::vector<double> ref(size_t(x.numel())), mag(size_t(x.numel()));
      for (int64_t i = 0; i < x.numel(); ++i) {
        const bool first = i / inner % n == 0;
        ref[size_t(i)] = value_at(x, i) + (first ? 0.0 : ref[size_t(i - inner)]);
        mag[size_t(i)] = std::abs(value_at(x, i)) + (first ? 0.0 : mag[size_t(i - inner)]);
      }
      if (dt == DType::kF32) {
        expect_close(y, ref, what, mag);
      } else {
        for (int64_t i = 0; i < y.numel(); ++i) {
          ASSERT_EQ(y.data_as<int64_t>()[i], static_cast<int64_t>(ref[size_t(i)])) << what << " at " << i;
        }
      }
    }
  }
}

TEST(OpsCumsum, I64WrapsAndF32AccumulatesInDouble) {
  Built op = build(make_cumsum, "cumsum", {{"axis", {0}}});
  const Tensor i = i64_values({3}, {kI64Max, 1, 5});
  expect_equal_bits(run(*op.op, {&i}), i64_values({3}, {kI64Max, kI64Min, kI64Min + 5}), "i64 wraps");
  // 2^24 + 1 + 1: float running sums would stay at 2^24; double ones reach 2^24 + 2, as torch on CPU.
  const Tensor f = f32_values({3}, {16777216.0f, 1.0f, 1.0f});
  expect_equal_bits(run(*op.op, {&f}), f32_values({3}, {16777216.0f, 16777216.0f, 16777218.0f}), "double sums");
  const Tensor b = bool_values({2, 3}, {1, 0, 2, 1, 1, 0});  // a byte 2 counts once
  Built rows = build(make_cumsum, "cumsum", {{"axis", {-1}}});
  expect_equal_bits(run(*rows.op, {&b}), i64_values({2, 3}, {1, 1, 2, 1, 2, 2}), "bool counts");
}

TEST(OpsCumsum, Errors) {
  Built op = build(make_cumsum, "cumsum", {{"axis", {2}}});
  expect_error([&] { op.op->infer(descs({{2, 3}}), 1); },
               {"node 't.cumsum' (cumsum)", "axis 2 is out of range for rank 2 (expected -2 to 1)"});
  expect_error([&] { op.op->infer(descs({{2, 3}, {2, 3}}), 1); }, {"got 2 inputs (expected 1)"});
  expect_error([] { build(make_cumsum, "cumsum"); }, {"missing integer attribute 'axis'"});
  expect_error([] { build(make_cumsum, "cumsum", {{"axis", {0, 1}}}); }, {"attribute 'axis' has 2 values (expected 1)"});
}

// --- f32-only operators keep refusing bool -------------------------------------------------------

TEST(OpsBoolInput, F32OperatorsRefuseItWithTheirMessage) {
  const std::vector<TensorDesc> one = descs({{2, 3}}, DType::kBool);
  Built unary = build(make_unary, "unary", {{"kind", {0}}});
  expect_error([&] { unary.op->infer(one, 1); }, {"input 0 (x) is bool (expected f32; insert a cast)"});
  Built softmax = build(make_softmax, "softmax", {{"axis", {-1}}});
  expect_error([&] { softmax.op->infer(one, 1); }, {"input 0 (x) is bool (expected f32"});
  Built mean = build(make_reduce_mean, "reduce_mean");
  expect_error([&] { mean.op->infer(one, 1); }, {"input 0 (x) is bool (expected f32"});
  Built sum = build(make_reduce_sum, "reduce_sum");
  expect_error([&] { sum.op->infer(one, 1); }, {"input 0 (x) is bool (expected f32"});
  Built norm = build(make_layer_norm, "layer_norm", {{"normalized", {1}}});
  expect_error([&] { norm.op->infer(one, 1); }, {"input 0 (x) is bool (expected f32"});
  Built matmul = build(make_matmul, "matmul");
  expect_error([&] { matmul.op->infer({{DType::kF32, {2, 3}}, {DType::kBool, {3, 2}}}, 1); },
               {"input 1 (b) is bool (expected f32"});
  Built sdpa = build(make_sdpa, "sdpa");
  expect_error([&] { sdpa.op->infer({{DType::kF32, {2, 5, 8}}, {DType::kF32, {2, 7, 8}}, {DType::kF32, {2, 7, 6}},
                                     {DType::kBool, {5, 7}}}, 1); },
               {"input 3 (mask) is bool (expected f32"});
  Built embedding = build(make_embedding, "embedding");
  expect_error([&] { embedding.op->infer({{DType::kF32, {10, 4}}, {DType::kBool, {3}}}, 1); },
               {"input 1 (indices) is bool (expected i64)"});
}

}  // namespace
}  // namespace sparsert::test
