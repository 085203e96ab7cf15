// Element-wise, shape, normalisation and mask-building operators (ops.def, section ops_tensor.cpp),
// with PyTorch's semantics. Every tensor is row-major and contiguous; the view-like operators
// (permute, expand, slice) copy through ops_tensor_util.hpp's strided_copy. Bool elements are
// bytes, 0 or 1; where an operator reads one as a truth value, any nonzero byte is true, so a
// caller's buffer holding other bytes still gives 0/1 results. Element-wise loops are written so
// that the compiler vectorises their inner loop: no calls it cannot inline, no aliasing it must
// assume.
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "graph/ops_tensor_util.hpp"
#include "kernels/epilogue.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

using tensor_ops::Dims;
using tensor_ops::AxisOp;
using tensor_ops::TensorOp;

// Element-wise work is split across threads in pieces of at least this many elements: below it a
// thread's wake-up (a few µs) costs more than the loop.
constexpr int64_t kElementGrain = int64_t{1} << 15;

// --- unary -----------------------------------------------------------------------------------

template <class F>
void map_f32(const float* __restrict x, float* __restrict y, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// The kinds that are epilogue activations go through activate() with the Activation that
// epilogue_activation() gives, so that a fused epilogue and a separate unary node give bit-identical
// results. A template, so that each loop's activation is a constant and its switch folds away.
template <UnaryKind kKind>
void map_activation(const float* x, float* y, int64_t n) {
  constexpr Activation kAct = epilogue_activation(kKind);
  static_assert(kAct != Activation::kNone, "a unary kind without an epilogue activation");
  map_f32(x, y, n, [](float v) { return activate(v, kAct); });
}

void unary_f32(UnaryKind kind, const float* x, float* y, int64_t n) {
  switch (kind) {
    case UnaryKind::kRelu: return map_activation<UnaryKind::kRelu>(x, y, n);
    case UnaryKind::kRelu6: return map_activation<UnaryKind::kRelu6>(x, y, n);
    case UnaryKind::kGeluErf: return map_activation<UnaryKind::kGeluErf>(x, y, n);
    case UnaryKind::kGeluTanh: return map_activation<UnaryKind::kGeluTanh>(x, y, n);
    case UnaryKind::kSilu: return map_activation<UnaryKind::kSilu>(x, y, n);
    case UnaryKind::kSigmoid: return map_activation<UnaryKind::kSigmoid>(x, y, n);
    case UnaryKind::kTanh: return map_activation<UnaryKind::kTanh>(x, y, n);
    case UnaryKind::kHardswish: return map_activation<UnaryKind::kHardswish>(x, y, n);
    // torch: min(max(x + 3, 0), 6) / 6.
    case UnaryKind::kHardsigmoid:
      return map_f32(x, y, n, [](float v) { return activate(v + 3.0f, Activation::kRelu6) / 6.0f; });
    case UnaryKind::kNeg: return map_f32(x, y, n, [](float v) { return -v; });
    case UnaryKind::kExp: return map_f32(x, y, n, [](float v) { return std::exp(v); });
    case UnaryKind::kSqrt: return map_f32(x, y, n, [](float v) { return std::sqrt(v); });
    case UnaryKind::kRsqrt: return map_f32(x, y, n, [](float v) { return 1.0f / std::sqrt(v); });
    case UnaryKind::kErf: return map_f32(x, y, n, [](float v) { return std::erf(v); });
    case UnaryKind::kAbs: return map_f32(x, y, n, [](float v) { return std::fabs(v); });
  }
}

class UnaryOp final : public TensorOp {
 public:
  explicit UnaryOp(const NodeDef& node) : TensorOp(node) {
    const int64_t k = required_int("kind");
    if (k < 0 || k > static_cast<int64_t>(kLastUnaryKind)) {
      fail("attribute 'kind' is " + std::to_string(k) + " (expected a UnaryKind, 0 to " +
           std::to_string(static_cast<int64_t>(kLastUnaryKind)) + ")");
    }
    kind_ = static_cast<UnaryKind>(k);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    expect_dtype(inputs, 0, DType::kF32, "x");
    return inputs[0];
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    tensor_ops::parallel_for(ctx.threads, numel(out_desc.shape), kElementGrain,
                             [&](int64_t b, int64_t e) { unary_f32(kind_, x + b, y + b, e - b); });
  }

 private:
  UnaryKind kind_;
};

// --- binary ----------------------------------------------------------------------------------

// One row of the simplified broadcast: the inner dim's strides are 0 or 1 for each operand.
template <class T, class R, class F>
void binary_row(const T* __restrict a, int64_t sa, const T* __restrict b, int64_t sb, R* __restrict y, int64_t n,
                F f) {
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const T vb = *b;
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], vb);
  } else if (sa == 0 && sb == 1) {
    const T va = *a;
    for (int64_t i = 0; i < n; ++i) y[i] = f(va, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i * sa], b[i * sb]);
  }
}

// Same shapes, a scalar operand and a trailing broadcast ((B, S, D) + (D)) all simplify to few
// dims with a long contiguous inner row; a single row is split across threads by elements.
template <class T, class R, class F>
void binary_apply(const tensor_ops::Strided<2>& it, const T* a, const T* b, R* y, int threads, F f) {
  const int64_t inner = it.shape.back();
  const int64_t sa = it.strides[0].back();
  const int64_t sb = it.strides[1].back();
  int64_t rows = 1;
  for (size_t d = 0; d + 1 < it.shape.size(); ++d) rows *= it.shape[d];
  if (rows == 1) {
    tensor_ops::parallel_for(threads, inner, kElementGrain, [&](int64_t s, int64_t e) {
      binary_row(a + s * sa, sa, b + s * sb, sb, y + s, e - s, f);
    });
    return;
  }
  tensor_ops::parallel_for(threads, rows, std::max<int64_t>(1, kElementGrain / inner), [&](int64_t s, int64_t e) {
    tensor_ops::for_each_row<2>(it, s, e, [&](int64_t row, const int64_t* off) {
      binary_row(a + off[0], sa, b + off[1], sb, y + row * inner, inner, f);
    });
  });
}

// NaN-propagating, as torch.maximum / torch.minimum.
inline float max_nan(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
inline float min_nan(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }

void binary_f32(BinaryKind kind, const tensor_ops::Strided<2>& it, const float* a, const float* b, float* y,
                int threads) {
  switch (kind) {
    case BinaryKind::kAdd: return binary_apply(it, a, b, y, threads, [](float p, float q) { return p + q; });
    case BinaryKind::kSub: return binary_apply(it, a, b, y, threads, [](float p, float q) { return p - q; });
    case BinaryKind::kMul: return binary_apply(it, a, b, y, threads, [](float p, float q) { return p * q; });
    case BinaryKind::kDiv: return binary_apply(it, a, b, y, threads, [](float p, float q) { return p / q; });
    case BinaryKind::kMaximum: return binary_apply(it, a, b, y, threads, max_nan);
    case BinaryKind::kMinimum: return binary_apply(it, a, b, y, threads, min_nan);
    case BinaryKind::kPow:
      return binary_apply(it, a, b, y, threads, [](float p, float q) { return std::pow(p, q); });
    default: break;  // the comparisons give bool (binary_compare); and, or, xor are rejected by infer()
  }
}

// Integer arithmetic wraps on overflow, as torch's does; unsigned arithmetic makes that defined.
void binary_i64(BinaryKind kind, const tensor_ops::Strided<2>& it, const int64_t* a, const int64_t* b, int64_t* y,
                int threads) {
  using U = uint64_t;
  switch (kind) {
    case BinaryKind::kAdd:
      return binary_apply(it, a, b, y, threads, [](int64_t p, int64_t q) { return int64_t(U(p) + U(q)); });
    case BinaryKind::kSub:
      return binary_apply(it, a, b, y, threads, [](int64_t p, int64_t q) { return int64_t(U(p) - U(q)); });
    case BinaryKind::kMul:
      return binary_apply(it, a, b, y, threads, [](int64_t p, int64_t q) { return int64_t(U(p) * U(q)); });
    case BinaryKind::kMaximum:
      return binary_apply(it, a, b, y, threads, [](int64_t p, int64_t q) { return p > q ? p : q; });
    case BinaryKind::kMinimum:
      return binary_apply(it, a, b, y, threads, [](int64_t p, int64_t q) { return p < q ? p : q; });
    default: break;  // rejected by infer() or handled by binary_compare
  }
}

// Bool operands are bytes; any nonzero byte reads as true, so the result is 0 or 1 whatever a
// caller's buffer holds. mul is and, maximum or, minimum and (torch's results on bool).
void binary_bool(BinaryKind kind, const tensor_ops::Strided<2>& it, const uint8_t* a, const uint8_t* b, uint8_t* y,
                 int threads) {
  switch (kind) {
    case BinaryKind::kMul:
    case BinaryKind::kMinimum:
    case BinaryKind::kAnd:
      return binary_apply(it, a, b, y, threads, [](uint8_t p, uint8_t q) { return uint8_t((p != 0) & (q != 0)); });
    case BinaryKind::kMaximum:
    case BinaryKind::kOr:
      return binary_apply(it, a, b, y, threads, [](uint8_t p, uint8_t q) { return uint8_t((p != 0) | (q != 0)); });
    case BinaryKind::kXor:
      return binary_apply(it, a, b, y, threads, [](uint8_t p, uint8_t q) { return uint8_t((p != 0) ^ (q != 0)); });
    default: break;  // rejected by infer() or handled by binary_compare
  }
}

// eq to ge on operands of type T read through v (the identity, or != 0 for bool); NaN compares
// unequal to everything, as in torch.
template <class T, class V>
void binary_compare(BinaryKind kind, const tensor_ops::Strided<2>& it, const T* a, const T* b, uint8_t* y,
                    int threads, V v) {
  switch (kind) {
    case BinaryKind::kEq: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) == v(q)); });
    case BinaryKind::kNe: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) != v(q)); });
    case BinaryKind::kLt: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) < v(q)); });
    case BinaryKind::kLe: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) <= v(q)); });
    case BinaryKind::kGt: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) > v(q)); });
    case BinaryKind::kGe: return binary_apply(it, a, b, y, threads, [v](T p, T q) { return uint8_t(v(p) >= v(q)); });
    default: break;
  }
}

bool is_comparison(BinaryKind kind) { return kind >= BinaryKind::kEq && kind <= BinaryKind::kGe; }

// Whether `kind` takes two operands of `dtype`.
bool binary_accepts(BinaryKind kind, DType dtype) {
  switch (kind) {
    case BinaryKind::kAdd:
    case BinaryKind::kSub: return dtype != DType::kBool;
    case BinaryKind::kDiv:
    case BinaryKind::kPow: return dtype == DType::kF32;
    case BinaryKind::kAnd:
    case BinaryKind::kOr:
    case BinaryKind::kXor: return dtype == DType::kBool;
    default: return true;  // mul, maximum, minimum and the comparisons
  }
}

// dtypes: both operands have one dtype, which the kind accepts (binary_accepts): f32 for every
// kind but and/or/xor; i64 for add, sub, mul, maximum, minimum (torch's result type there, and
// exact for token positions and index arithmetic) and the comparisons; bool for the comparisons,
// and/or/xor and, as torch allows them, mul, maximum and minimum. Everything else is refused with
// a request for a cast rather than converted silently: torch would promote i64 / i64 and
// i64 ** i64 differently, mixed operands to f32, and bool + bool to an error.
class BinaryOp final : public TensorOp {
 public:
  explicit BinaryOp(const NodeDef& node) : TensorOp(node) {
    const int64_t k = required_int("kind");
    if (k < 0 || k > static_cast<int64_t>(kLastBinaryKind)) {
      fail("attribute 'kind' is " + std::to_string(k) + " (expected a BinaryKind, 0 to " +
           std::to_string(static_cast<int64_t>(kLastBinaryKind)) + ")");
    }
    kind_ = static_cast<BinaryKind>(k);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 2, 2);
    const DType da = inputs[0].dtype, db = inputs[1].dtype;
    if (da != db || !binary_accepts(kind_, da)) {
      std::vector<std::string> ok;  // "two f32", "two f32 or two i64", "two f32, two i64 or two bool"
      for (DType d : {DType::kF32, DType::kI64, DType::kBool}) {
        if (binary_accepts(kind_, d)) ok.push_back(std::string("two ") + to_string(d));
      }
      std::string accepted = ok[0];
      for (size_t i = 1; i < ok.size(); ++i) accepted += (i + 1 == ok.size() ? " or " : ", ") + ok[i];
      fail(std::string("inputs are ") + to_string(da) + " and " + to_string(db) + " for " + to_string(kind_) +
           " (expected " + accepted + "; insert a cast)");
    }
    Dims shape;
    if (!tensor_ops::broadcast_shapes(inputs[0].shape, inputs[1].shape, &shape)) {
      fail("input shapes " + shape_string(inputs[0].shape) + " and " + shape_string(inputs[1].shape) +
           " do not broadcast (expected, aligned from the last dim, equal sizes or 1)");
    }
    return {is_comparison(kind_) ? DType::kBool : da, tensor_ops::to_shape(shape)};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    if (numel(out_desc.shape) == 0) return;
    const Dims shape(out_desc.shape);
    const Dims strides[2] = {tensor_ops::broadcast_strides(inputs[0].shape, shape),
                             tensor_ops::broadcast_strides(inputs[1].shape, shape)};
    const auto it = tensor_ops::simplify(shape, strides);
    const void* a = inputs[0].data;
    const void* b = inputs[1].data;
    const int threads = ctx.threads;
    if (is_comparison(kind_)) {
      uint8_t* y = static_cast<uint8_t*>(out);
      switch (inputs[0].dtype) {
        case DType::kF32:
          return binary_compare(kind_, it, static_cast<const float*>(a), static_cast<const float*>(b), y, threads,
                                [](float v) { return v; });
        case DType::kI64:
          return binary_compare(kind_, it, static_cast<const int64_t*>(a), static_cast<const int64_t*>(b), y, threads,
                                [](int64_t v) { return v; });
        case DType::kBool:
          return binary_compare(kind_, it, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b), y, threads,
                                [](uint8_t v) { return v != 0; });
      }
    }
    switch (out_desc.dtype) {
      case DType::kF32:
        return binary_f32(kind_, it, static_cast<const float*>(a), static_cast<const float*>(b),
                          static_cast<float*>(out), threads);
      case DType::kI64:
        return binary_i64(kind_, it, static_cast<const int64_t*>(a), static_cast<const int64_t*>(b),
                          static_cast<int64_t*>(out), threads);
      case DType::kBool:
        return binary_bool(kind_, it, static_cast<const uint8_t*>(a), static_cast<const uint8_t*>(b),
                           static_cast<uint8_t*>(out), threads);
    }
  }

 private:
  BinaryKind kind_;
};

// --- cast ------------------------------------------------------------------------------------

template <class From, class To, class F>
void map_cast(const void* in, void* out, int64_t n, F f) {
  const From* __restrict x = static_cast<const From*>(in);
  To* __restrict y = static_cast<To*>(out);
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// Conversions as torch's .to(dtype): to bool is x != 0 (NaN is nonzero, so true); from bool gives 0
// or 1 (any nonzero byte reads as true).
class CastOp final : public TensorOp {
 public:
  explicit CastOp(const NodeDef& node) : TensorOp(node) {
    const int64_t d = required_int("dtype");
    if (d < 0 || d > static_cast<int64_t>(kLastDType)) {
      fail("attribute 'dtype' is " + std::to_string(d) + " (expected 0 for f32, 1 for i64 or 2 for bool)");
    }
    dtype_ = static_cast<DType>(d);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    return {dtype_, inputs[0].shape};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext&) const override {
    const int64_t n = numel(out_desc.shape);
    const DType from = inputs[0].dtype;
    const void* x = inputs[0].data;
    if (n == 0) return;  // an empty tensor may have no data
    if (from == dtype_) {
      std::memcpy(out, x, static_cast<size_t>(n * dtype_size(from)));
    } else if (from == DType::kF32 && dtype_ == DType::kI64) {
      // Truncation toward zero as torch's .long(). NaN and values outside the i64 range are
      // undefined in C++; they give INT64_MIN here, what x86's cvttss2si (and so torch on x86) gives.
      constexpr float kLimit = 9223372036854775808.0f;  // 2^63
      map_cast<float, int64_t>(x, out, n, [](float v) {
        return (v >= -kLimit && v < kLimit) ? static_cast<int64_t>(v) : std::numeric_limits<int64_t>::min();
      });
    } else if (from == DType::kI64 && dtype_ == DType::kF32) {
      map_cast<int64_t, float>(x, out, n, [](int64_t v) { return static_cast<float>(v); });
    } else if (from == DType::kF32) {
      map_cast<float, uint8_t>(x, out, n, [](float v) { return uint8_t(v != 0.0f); });
    } else if (from == DType::kI64) {
      map_cast<int64_t, uint8_t>(x, out, n, [](int64_t v) { return uint8_t(v != 0); });
    } else if (dtype_ == DType::kF32) {
      map_cast<uint8_t, float>(x, out, n, [](uint8_t v) { return v != 0 ? 1.0f : 0.0f; });
    } else {
      map_cast<uint8_t, int64_t>(x, out, n, [](uint8_t v) { return int64_t(v != 0); });
    }
  }

 private:
  DType dtype_;
};

// --- reshape, permute, expand ----------------------------------------------------------------

/// Checks a shape_coef/shape_const pair at construction: the lists exist with equal lengths, and a
/// constant size (coef 0) is ≥ 0 or, where `minus_one` allows it, -1.
void check_sizes_attr(const NodeDef& node, const std::string& where, bool minus_one) {
  resolve_sizes(node.attrs, "shape", 0, where);  // throws for missing or unequal lists
  const auto& coef = node.attrs.int_list("shape_coef", where);
  const auto& constant = node.attrs.int_list("shape_const", where);
  for (size_t i = 0; i < coef.size(); ++i) {
    if (coef[i] == 0 && constant[i] < (minus_one ? -1 : 0)) {
      throw InvalidArgument(where + ": attribute 'shape_const' has " + std::to_string(constant[i]) + " at dim " +
                            std::to_string(i) + " (expected a size ≥ 0" + (minus_one ? ", or -1)" : ")"));
    }
  }
}

class ReshapeOp final : public TensorOp {
 public:
  explicit ReshapeOp(const NodeDef& node) : TensorOp(node) {
    check_sizes_attr(node, where(), true);
    const auto& coef = node.attrs.int_list("shape_coef", where());
    const auto& constant = node.attrs.int_list("shape_const", where());
    int unknown = 0;
    for (size_t i = 0; i < coef.size(); ++i) unknown += coef[i] == 0 && constant[i] == -1;
    if (unknown > 1) {
      fail("attribute 'shape_const' " + list_string(constant) + " has " + std::to_string(unknown) +
           " sizes of -1 (expected at most one)");
    }
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t batch) const override {
    expect_inputs(inputs, 1, 1);
    Shape shape = resolve_sizes(node_.attrs, "shape", batch, where());
    const Shape& in = inputs[0].shape;
    int64_t known = 1;
    int unknown = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
      if (shape[i] == -1 && unknown < 0) {
        unknown = static_cast<int>(i);
      } else if (shape[i] < 0) {
        fail("target shape " + shape_string(shape) + " for batch " + std::to_string(batch) +
             " has a negative size (expected sizes ≥ 0 and at most one -1)");
      } else if (shape[i] > 1 && known > (int64_t{1} << 48) / shape[i]) {
        fail("target shape " + shape_string(shape) + " for batch " + std::to_string(batch) +
             " has more than 2^48 elements (expected the input's " + std::to_string(numel(in)) + ")");
      } else {
        known *= shape[i];
      }
    }
    const int64_t count = numel(in);
    if (unknown >= 0) {
      if (known == 0) {
        fail("input of shape " + shape_string(in) + " cannot take shape " + shape_string(shape) +
             " (expected no -1 beside a size 0: the -1 could be any value)");
      }
      if (count % known == 0) shape[static_cast<size_t>(unknown)] = count / known;
    }
    if (numel(shape) != count || (unknown >= 0 && shape[static_cast<size_t>(unknown)] < 0)) {
      fail("input of shape " + shape_string(in) + " cannot take shape " + shape_string(shape) + " (expected " +
           std::to_string(count) + " elements)");
    }
    return {inputs[0].dtype, shape};
  }

  bool is_view() const override { return true; }

  // Runs only where the output is a graph output (the planner aliases it otherwise).
  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext&) const override {
    const int64_t bytes = numel(out_desc.shape) * dtype_size(out_desc.dtype);
    if (bytes > 0) std::memcpy(out, inputs[0].data, static_cast<size_t>(bytes));  // an empty tensor may have no data
  }
};

class PermuteOp final : public TensorOp {
 public:
  explicit PermuteOp(const NodeDef& node) : TensorOp(node) {
    const auto& dims = node.attrs.int_list("dims", where());
    const int64_t rank = static_cast<int64_t>(dims.size());
    std::vector<bool> seen(dims.size(), false);
    for (int64_t d : dims) {
      if (d < -rank || d >= rank || seen[static_cast<size_t>(d < 0 ? d + rank : d)]) {
        fail("attribute 'dims' " + list_string(dims) + " is not a permutation (expected each of 0 to " +
             std::to_string(rank - 1) + " once, negative counting from the end)");
      }
      seen[static_cast<size_t>(d < 0 ? d + rank : d)] = true;
      perm_.push_back(d < 0 ? d + rank : d);
    }
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    const Shape& in = inputs[0].shape;
    if (in.size() != perm_.size()) {
      fail("input of shape " + shape_string(in) + " has rank " + std::to_string(in.size()) + " (expected " +
           std::to_string(perm_.size()) + ", the length of dims " + list_string(perm_) + ")");
    }
    TensorDesc out{inputs[0].dtype, Shape(in.size())};
    for (size_t i = 0; i < perm_.size(); ++i) out.shape[i] = in[static_cast<size_t>(perm_[i])];
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Dims in_strides = tensor_ops::contiguous_strides(inputs[0].shape);
    Dims strides(perm_.size());
    for (size_t i = 0; i < perm_.size(); ++i) strides[i] = in_strides[static_cast<size_t>(perm_[i])];
    tensor_ops::strided_copy(inputs[0].data, 0, out_desc.shape, strides, out, dtype_size(out_desc.dtype),
                             ctx.threads);
  }

 private:
  std::vector<int64_t> perm_;
};

class ExpandOp final : public TensorOp {
 public:
  explicit ExpandOp(const NodeDef& node) : TensorOp(node) { check_sizes_attr(node, where(), true); }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t batch) const override {
    expect_inputs(inputs, 1, 1);
    const Shape target = resolve_sizes(node_.attrs, "shape", batch, where());
    const Shape& in = inputs[0].shape;
    if (target.size() < in.size()) {
      fail("target shape " + shape_string(target) + " has fewer dims than the input " + shape_string(in) +
           " (expected at least " + std::to_string(in.size()) + ")");
    }
    const size_t lead = target.size() - in.size();
    Shape out(target.size());
    for (size_t i = 0; i < target.size(); ++i) {
      const int64_t t = target[i];
      if (i < lead) {
        if (t < 0) {
          fail("target shape " + shape_string(target) + " has " + std::to_string(t) + " in new leading dim " +
               std::to_string(i) + " (expected a size ≥ 0; -1 only keeps an existing dim)");
        }
        out[i] = t;
        continue;
      }
      const int64_t s = in[i - lead];
      if (t == -1 || t == s) {
        out[i] = s;
      } else if (s == 1 && t >= 0) {
        out[i] = t;
      } else {
        fail("input of shape " + shape_string(in) + " cannot expand to " + shape_string(target) + ": dim " +
             std::to_string(i) + " has size " + std::to_string(s) + " (expected 1 to expand to " +
             std::to_string(t) + ", or a target of -1 or " + std::to_string(s) + ")");
      }
    }
    return {inputs[0].dtype, out};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Dims shape(out_desc.shape);
    tensor_ops::strided_copy(inputs[0].data, 0, shape, tensor_ops::broadcast_strides(inputs[0].shape, shape), out,
                             dtype_size(out_desc.dtype), ctx.threads);
  }
};

// --- concat, slice ---------------------------------------------------------------------------

class ConcatOp final : public AxisOp {
 public:
  using AxisOp::AxisOp;

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    if (inputs.empty()) fail("got 0 inputs (expected at least 1)");
    const Shape& first = inputs[0].shape;
    if (first.empty()) fail("input 0 is 0-d (expected tensors of rank ≥ 1, as torch.cat)");
    const int64_t axis = axis_of(first);
    TensorDesc out = inputs[0];
    for (size_t i = 1; i < inputs.size(); ++i) {
      const Shape& s = inputs[i].shape;
      if (inputs[i].dtype != inputs[0].dtype) {
        fail("input " + std::to_string(i) + " is " + to_string(inputs[i].dtype) + " (expected " +
             to_string(inputs[0].dtype) + " like input 0)");
      }
      bool ok = s.size() == first.size();
      for (size_t d = 0; ok && d < s.size(); ++d) ok = static_cast<int64_t>(d) == axis || s[d] == first[d];
      if (!ok) {
        fail("input " + std::to_string(i) + " has shape " + shape_string(s) + " and input 0 " + shape_string(first) +
             " (expected equal ranks and sizes except on axis " + std::to_string(axis) + ")");
      }
      out.shape[static_cast<size_t>(axis)] += s[static_cast<size_t>(axis)];
    }
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext&) const override {
    const Shape& shape = out_desc.shape;
    const size_t axis = static_cast<size_t>(axis_of(shape));
    int64_t outer = 1, inner = dtype_size(out_desc.dtype);
    for (size_t d = 0; d < axis; ++d) outer *= shape[d];
    for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
    unsigned char* dst = static_cast<unsigned char*>(out);
    for (int64_t o = 0; o < outer; ++o) {
      for (const TensorView& in : inputs) {
        const int64_t chunk = in.shape[axis] * inner;  // bytes
        if (chunk == 0) continue;  // an empty input may have no data
        std::memcpy(dst, static_cast<const unsigned char*>(in.data) + o * chunk, static_cast<size_t>(chunk));
        dst += chunk;
      }
    }
  }
};

class SliceOp final : public TensorOp {
 public:
  // Defaults as aten.slice: dim 0, start None (0), end None (to the end), step 1.
  explicit SliceOp(const NodeDef& node)
      : TensorOp(node),
        axis_(node.attrs.int_or("axis", 0, where())),
        start_(node.attrs.int_or("start", 0, where())),
        end_(node.attrs.int_or("end", std::numeric_limits<int64_t>::max(), where())),
        step_(node.attrs.int_or("step", 1, where())) {
    if (step_ < 1) fail("attribute 'step' is " + std::to_string(step_) + " (expected ≥ 1)");
  }

  // Along its axis, unless it keeps all of it (x[:, 0] exports as such a slice of dim 0 first).
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t, int64_t axis) const override {
    const Shape& x = inputs[0].shape;
    if (axis != normalize_axis(axis_, static_cast<int64_t>(x.size()), where())) return false;
    const int64_t n = x[static_cast<size_t>(axis)];
    const Range r = range(n);
    return !(r.start == 0 && r.count == n);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    if (inputs[0].shape.empty()) fail("input is 0-d (expected rank ≥ 1 to slice)");
    TensorDesc out = inputs[0];
    const size_t axis = static_cast<size_t>(normalize_axis(axis_, static_cast<int64_t>(out.shape.size()), where()));
    out.shape[axis] = range(out.shape[axis]).count;
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Shape& in = inputs[0].shape;
    const size_t axis = static_cast<size_t>(normalize_axis(axis_, static_cast<int64_t>(in.size()), where()));
    Dims strides = tensor_ops::contiguous_strides(in);
    const Range r = range(in[axis]);
    const int64_t base = r.start * strides[axis];
    // With one element or none the step is never taken (and may be as large as INT64_MAX).
    if (r.count > 1) strides[axis] *= step_;
    tensor_ops::strided_copy(inputs[0].data, base, out_desc.shape, strides, out, dtype_size(out_desc.dtype),
                             ctx.threads);
  }

 private:
  struct Range {
    int64_t start, count;
  };
  // Python's clamping: a negative index counts from the end, then both ends clamp to [0, n].
  Range range(int64_t n) const {
    auto clamp = [n](int64_t i) {
      if (i < 0) i = i < -n ? 0 : i + n;
      return i > n ? n : i;
    };
    const int64_t s = clamp(start_), e = clamp(end_);
    return {s, e > s ? (e - s - 1) / step_ + 1 : 0};
  }

  int64_t axis_, start_, end_, step_;
};

// --- layer_norm, softmax ---------------------------------------------------------------------

class LayerNormOp final : public TensorOp {
 public:
  explicit LayerNormOp(const NodeDef& node)
      : TensorOp(node),
        normalized_(required_int("normalized")),
        eps_(node.attrs.float_or("eps", 1e-5, where())),
        has_weight_(flag("has_weight", false)),
        has_bias_(flag("has_bias", false)) {
    if (normalized_ < 1) fail("attribute 'normalized' is " + std::to_string(normalized_) + " (expected ≥ 1)");
    if (!(eps_ >= 0.0)) fail("attribute 'eps' is " + std::to_string(eps_) + " (expected ≥ 0)");
  }

  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t, int64_t axis) const override {
    return axis >= static_cast<int64_t>(inputs[0].shape.size()) - normalized_;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    const size_t count = 1 + has_weight_ + has_bias_;
    expect_inputs(inputs, count, count);
    for (size_t i = 0; i < count; ++i) expect_dtype(inputs, i, DType::kF32, i == 0 ? "x" : "weight or bias");
    const Shape& x = inputs[0].shape;
    if (static_cast<int64_t>(x.size()) < normalized_) {
      fail("x has shape " + shape_string(x) + " (expected at least " + std::to_string(normalized_) +
           " dims to normalise)");
    }
    const Shape last(x.end() - normalized_, x.end());
    for (size_t i = 1; i < count; ++i) {
      if (inputs[i].shape != last) {
        fail("input " + std::to_string(i) + " (" + (i == 1 && has_weight_ ? "weight" : "bias") + ") has shape " +
             shape_string(inputs[i].shape) + " (expected " + shape_string(last) + ", the last " +
             std::to_string(normalized_) + " dims of x " + shape_string(x) + ")");
      }
    }
    return inputs[0];
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Shape& shape = out_desc.shape;
    int64_t inner = 1;
    for (size_t d = shape.size() - static_cast<size_t>(normalized_); d < shape.size(); ++d) inner *= shape[d];
    const int64_t total = numel(shape);
    if (total == 0) return;
    const int64_t rows = total / inner;
    const float* x = static_cast<const float*>(inputs[0].data);
    const float* w = has_weight_ ? static_cast<const float*>(inputs[1].data) : nullptr;
    const float* b = has_bias_ ? static_cast<const float*>(inputs[1 + has_weight_].data) : nullptr;
    float* y = static_cast<float*>(out);
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);
    const int64_t grain = std::max<int64_t>(1, kElementGrain / inner);
    tensor_ops::parallel_for(ctx.threads, rows, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) tk.layer_norm_row(x + r * inner, y + r * inner, inner, w, b, eps_);
    });
  }

 private:
  int64_t normalized_;
  double eps_;
  bool has_weight_, has_bias_;
};

// Softmax along a strided axis (inner > 1): columns [c0, c1) of one outer block at a time, each
// pass a vectorisable loop over those columns.
constexpr int64_t kSoftmaxColumns = 256;
void softmax_columns(const float* x, float* y, int64_t n, int64_t inner, int64_t c0, int64_t c1) {
  float m[kSoftmaxColumns], s[kSoftmaxColumns];
  const int64_t w = c1 - c0;
  for (int64_t c = 0; c < w; ++c) m[c] = -std::numeric_limits<float>::infinity(), s[c] = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * inner + c0;
    for (int64_t c = 0; c < w; ++c) m[c] = xr[c] > m[c] ? xr[c] : m[c];
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* xr = x + i * inner + c0;
    float* yr = y + i * inner + c0;
    for (int64_t c = 0; c < w; ++c) {
      yr[c] = std::exp(xr[c] - m[c]);
      s[c] += yr[c];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    float* yr = y + i * inner + c0;
    for (int64_t c = 0; c < w; ++c) yr[c] /= s[c];
  }
}

class SoftmaxOp final : public AxisOp {
 public:
  using AxisOp::AxisOp;

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    expect_dtype(inputs, 0, DType::kF32, "x");
    axis_of(inputs[0].shape);
    return inputs[0];
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    if (numel(out_desc.shape) == 0) return;
    // Named copies, not a structured binding: the lambdas below capture them, which C++17 (and
    // clang before 16) does not allow for structured bindings.
    const Extents ext = extents(out_desc.shape);
    const int64_t outer = ext.outer, n = ext.along, inner = ext.inner;
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    if (inner == 1) {
      tensor_ops::parallel_for(ctx.threads, outer, std::max<int64_t>(1, kElementGrain / n), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) tensor_kernels().softmax_row(x + o * n, y + o * n, n, 1.0f, nullptr, 0);
      });
      return;
    }
    const int64_t chunks = (inner + kSoftmaxColumns - 1) / kSoftmaxColumns;
    const int64_t per_item = n * std::min(inner, kSoftmaxColumns);
    tensor_ops::parallel_for(ctx.threads, outer * chunks, std::max<int64_t>(1, kElementGrain / per_item),
                             [&](int64_t b, int64_t e) {
                               for (int64_t item = b; item < e; ++item) {
                                 const int64_t o = item / chunks, c0 = item % chunks * kSoftmaxColumns;
                                 softmax_columns(x + o * n * inner, y + o * n * inner, n, inner, c0,
                                                 std::min(inner, c0 + kSoftmaxColumns));
                               }
                             });
  }

};

// --- reductions ------------------------------------------------------------------------------

class ReduceOp final : public TensorOp {
 public:
  ReduceOp(const NodeDef& node, bool mean)
      : TensorOp(node), mean_(mean), keepdim_(flag("keepdim", false)) {
    auto it = node.attrs.ints.find("dims");
    if (it != node.attrs.ints.end()) dims_ = it->second;
  }

  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t, int64_t axis) const override {
    return reduced_dims(inputs[0].shape)[static_cast<size_t>(axis)];
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    if (mean_ || inputs[0].dtype != DType::kI64) expect_dtype(inputs, 0, DType::kF32, "x");
    const Dims reduced = reduced_dims(inputs[0].shape);
    TensorDesc out{inputs[0].dtype, {}};
    for (size_t d = 0; d < reduced.size(); ++d) {
      if (!reduced[d]) {
        out.shape.push_back(inputs[0].shape[d]);
      } else if (keepdim_) {
        out.shape.push_back(1);
      }
    }
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Shape& in = inputs[0].shape;
    const int64_t n_out = numel(out_desc.shape);
    if (n_out == 0) return;
    const int64_t n_in = numel(in);
    if (n_in == 0) {  // a sum of nothing is 0 and a mean of nothing NaN, as torch
      if (out_desc.dtype == DType::kI64) {
        std::fill(static_cast<int64_t*>(out), static_cast<int64_t*>(out) + n_out, int64_t{0});
      } else {
        std::fill(static_cast<float*>(out), static_cast<float*>(out) + n_out,
                  mean_ ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
      }
      return;
    }
    const Dims reduced = reduced_dims(in);
    // Out strides over the input's dims: contiguous over the kept dims, 0 over the reduced ones.
    // Walking the input in memory order then adds each element into out[offset].
    Dims shape(in), strides(in.size());
    int64_t acc = 1;
    for (size_t d = in.size(); d-- > 0;) {
      strides[d] = reduced[d] ? 0 : acc;
      if (!reduced[d]) acc *= in[d];
    }
    const Dims operand[1] = {strides};
    const auto it = tensor_ops::simplify(shape, operand);
    const int64_t inner = it.shape.back();
    const bool inner_reduced = it.strides[0].back() == 0;
    const int64_t rows = n_in / inner;

    if (out_desc.dtype == DType::kI64) {
      const int64_t* x = static_cast<const int64_t*>(inputs[0].data);
      uint64_t* y = static_cast<uint64_t*>(out);  // wraps on overflow, as torch
      std::fill(y, y + n_out, uint64_t{0});
      tensor_ops::for_each_row<1>(it, 0, rows, [&](int64_t row, const int64_t* off) {
        const int64_t* xr = x + row * inner;
        for (int64_t i = 0; i < inner; ++i) y[off[0] + (inner_reduced ? 0 : i)] += static_cast<uint64_t>(xr[i]);
      });
      return;
    }

    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const double count = static_cast<double>(n_in) / static_cast<double>(n_out);
    const double scale = mean_ ? 1.0 / count : 1.0;
    if (inner_reduced && it.shape.size() <= 2) {
      // Reducing trailing dims (mean over the features): each output is one contiguous row.
      tensor_ops::parallel_for(ctx.threads, rows, std::max<int64_t>(1, kElementGrain / inner),
                               [&](int64_t b, int64_t e) {
                                 for (int64_t r = b; r < e; ++r) {
                                   y[r] = static_cast<float>(tensor_ops::sum_f64(x + r * inner, inner) * scale);
                                 }
                               });
      return;
    }
    // General pattern: accumulate in double scratch indexed like the output.
    thread_local std::vector<double> scratch;
    if (scratch.size() < static_cast<size_t>(n_out)) scratch.resize(static_cast<size_t>(n_out));
    double* s = scratch.data();
    std::fill(s, s + n_out, 0.0);
    tensor_ops::for_each_row<1>(it, 0, rows, [&](int64_t row, const int64_t* off) {
      const float* xr = x + row * inner;
      if (inner_reduced) {
        s[off[0]] += tensor_ops::sum_f64(xr, inner);
      } else {
        double* sr = s + off[0];
        for (int64_t i = 0; i < inner; ++i) sr[i] += xr[i];
      }
    });
    for (int64_t i = 0; i < n_out; ++i) y[i] = static_cast<float>(s[i] * scale);
  }

 private:
  // 1 for each dim of `shape` that is reduced, 0 for each kept.
  Dims reduced_dims(const Shape& shape) const {
    const int64_t rank = static_cast<int64_t>(shape.size());
    Dims reduced(shape.size(), dims_.empty() ? 1 : 0);
    Dims seen(static_cast<size_t>(rank == 0 ? 1 : rank), 0);
    for (int64_t d : dims_) {
      const int64_t a = normalize_axis(d, rank, where());
      if (seen[static_cast<size_t>(a)]) {
        fail("dim " + std::to_string(a) + " appears twice in dims " + list_string(dims_) + " (expected distinct dims)");
      }
      seen[static_cast<size_t>(a)] = 1;
      if (rank > 0) reduced[static_cast<size_t>(a)] = 1;
    }
    return reduced;
  }

  bool mean_, keepdim_;
  std::vector<int64_t> dims_;
};

// --- embedding -------------------------------------------------------------------------------

class EmbeddingOp final : public TensorOp {
 public:
  using TensorOp::TensorOp;

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 2, 2);
    expect_dtype(inputs, 0, DType::kF32, "weight");
    if (inputs[1].dtype != DType::kI64) {
      fail(std::string("input 1 (indices) is ") + to_string(inputs[1].dtype) + " (expected i64)");
    }
    if (inputs[0].shape.size() != 2) {
      fail("input 0 (weight) has shape " + shape_string(inputs[0].shape) + " (expected 2 dims, (V, D))");
    }
    TensorDesc out{DType::kF32, inputs[1].shape};
    out.shape.push_back(inputs[0].shape[1]);
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out, const RunContext&) const override {
    const float* w = static_cast<const float*>(inputs[0].data);
    const int64_t* idx = static_cast<const int64_t*>(inputs[1].data);
    const int64_t rows = inputs[0].shape[0], dim = inputs[0].shape[1];
    const int64_t n = numel(inputs[1].shape);
    float* y = static_cast<float*>(out);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = idx[i];
      if (r < 0 || r >= rows) {
        fail("index " + std::to_string(r) + " at position " + std::to_string(i) + " of indices " +
             shape_string(inputs[1].shape) + " is out of range (expected 0 to " + std::to_string(rows - 1) +
             " for a weight of " + std::to_string(rows) + " rows)");
      }
      if (dim > 0) std::memcpy(y + i * dim, w + r * dim, static_cast<size_t>(dim) * sizeof(float));
    }
  }
};

// --- where, arange, index, cumsum: the operators that build attention masks and positions ------

// One row of where's simplified broadcast (strides 0 or 1); elements move as raw bits of T.
template <class T>
void where_row(const uint8_t* __restrict c, int64_t sc, const T* __restrict a, int64_t sa, const T* __restrict b,
               int64_t sb, T* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = c[i * sc] != 0 ? a[i * sa] : b[i * sb];
}

// torch.where(cond, a, b): any nonzero byte of cond reads as true.
class WhereOp final : public TensorOp {
 public:
  using TensorOp::TensorOp;

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 3, 3);
    expect_dtype(inputs, 0, DType::kBool, "cond");
    if (inputs[1].dtype != inputs[2].dtype) {
      fail(std::string("inputs 1 (a) and 2 (b) are ") + to_string(inputs[1].dtype) + " and " +
           to_string(inputs[2].dtype) + " (expected one dtype; insert a cast)");
    }
    Dims ab, shape;
    if (!tensor_ops::broadcast_shapes(inputs[1].shape, inputs[2].shape, &ab) ||
        !tensor_ops::broadcast_shapes(inputs[0].shape, ab, &shape)) {
      fail("input shapes " + shape_string(inputs[0].shape) + " (cond), " + shape_string(inputs[1].shape) + " (a) and " +
           shape_string(inputs[2].shape) + " (b) do not broadcast (expected, aligned from the last dim, equal sizes or 1)");
    }
    return {inputs[1].dtype, tensor_ops::to_shape(shape)};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    if (numel(out_desc.shape) == 0) return;
    const Dims shape(out_desc.shape);
    const Dims strides[3] = {tensor_ops::broadcast_strides(inputs[0].shape, shape),
                             tensor_ops::broadcast_strides(inputs[1].shape, shape),
                             tensor_ops::broadcast_strides(inputs[2].shape, shape)};
    const auto it = tensor_ops::simplify(shape, strides);
    const int64_t inner = it.shape.back();
    const int64_t sc = it.strides[0].back(), sa = it.strides[1].back(), sb = it.strides[2].back();
    const int64_t rows = numel(out_desc.shape) / inner;
    const uint8_t* c = static_cast<const uint8_t*>(inputs[0].data);
    tensor_ops::with_element_type(dtype_size(out_desc.dtype), [&](auto tag) {
      using T = decltype(tag);
      const T* a = static_cast<const T*>(inputs[1].data);
      const T* b = static_cast<const T*>(inputs[2].data);
      T* y = static_cast<T*>(out);
      if (rows == 1) {
        tensor_ops::parallel_for(ctx.threads, inner, kElementGrain, [&](int64_t s, int64_t e) {
          where_row(c + s * sc, sc, a + s * sa, sa, b + s * sb, sb, y + s, e - s);
        });
        return;
      }
      tensor_ops::parallel_for(ctx.threads, rows, std::max<int64_t>(1, kElementGrain / inner),
                               [&](int64_t s, int64_t e) {
                                 tensor_ops::for_each_row<3>(it, s, e, [&](int64_t row, const int64_t* off) {
                                   where_row(c + off[0], sc, a + off[1], sa, b + off[2], sb, y + row * inner, inner);
                                 });
                               });
    });
  }
};

// torch.arange(start, start + length · step, step) with a length that may follow the batch (the
// positions of a sequence whose length is the batch dim, e.g. x[torch.arange(B), last]).
class ArangeOp final : public TensorOp {
 public:
  explicit ArangeOp(const NodeDef& node)
      : TensorOp(node),
        start_(required_int("start")),
        step_(required_int("step")),
        coef_(required_int("length_coef")),
        const_(required_int("length_const")) {
    if (step_ == 0) fail("attribute 'step' is 0 (expected a nonzero step)");
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t batch) const override {
    expect_inputs(inputs, 0, 0);
    int64_t length = 0;
    const bool overflow = __builtin_mul_overflow(coef_, batch, &length) || __builtin_add_overflow(length, const_, &length);
    if (overflow || length < 0) {
      fail("length " + std::to_string(coef_) + " · batch + " + std::to_string(const_) + " is " +
           (overflow ? std::string("past the int64 range") : std::to_string(length)) + " at batch " +
           std::to_string(batch) + " (expected ≥ 0)");
    }
    return {DType::kI64, {length}};
  }

  void run(const std::vector<TensorView>&, const TensorDesc& out_desc, void* out, const RunContext&) const override {
    const int64_t n = numel(out_desc.shape);
    int64_t* y = static_cast<int64_t*>(out);
    // Wraps past the i64 range like the other i64 arithmetic (unsigned makes that defined).
    for (int64_t i = 0; i < n; ++i) y[i] = int64_t(uint64_t(start_) + uint64_t(i) * uint64_t(step_));
  }

 private:
  int64_t start_, step_, coef_, const_;
};

// torch's advanced indexing x[:, …, idx_0, …, idx_{k-1}, …] with the index tensors on consecutive
// dims p to p + k - 1 (aten.index.Tensor with None before them). The source block of each index
// position is computed (and every index checked) once, then pre × positions blocks of `post`
// elements are copied.
class IndexOp final : public TensorOp {
 public:
  explicit IndexOp(const NodeDef& node) : TensorOp(node), axis_(required_int("axis")) {}

  // An output element reads x at an index taken from data: the indexed dims of x are mixed.
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const override {
    if (input != 0) return false;
    const int64_t p = first_dim(inputs[0].shape, inputs.size() - 1);
    return axis >= p && axis < p + static_cast<int64_t>(inputs.size()) - 1;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    if (inputs.size() < 2) {
      fail("got " + std::to_string(inputs.size()) + " inputs (expected at least 2: x and one index tensor)");
    }
    const size_t k = inputs.size() - 1;
    Dims index_shape;
    std::string shapes;
    for (size_t j = 1; j < inputs.size(); ++j) {
      if (inputs[j].dtype != DType::kI64) {
        fail("input " + std::to_string(j) + " (index tensor " + std::to_string(j - 1) + ") is " +
             to_string(inputs[j].dtype) + " (expected i64)");
      }
      shapes += (j > 1 ? ", " : "") + shape_string(inputs[j].shape);
    }
    for (size_t j = 1; j < inputs.size(); ++j) {
      if (!tensor_ops::broadcast_shapes(index_shape, inputs[j].shape, &index_shape)) {
        fail("index tensor shapes " + shapes + " do not broadcast (expected, aligned from the last dim, equal sizes or 1)");
      }
    }
    const Shape& x = inputs[0].shape;
    const size_t p = static_cast<size_t>(first_dim(x, k));
    TensorDesc out{inputs[0].dtype, Shape(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(p))};
    for (size_t d = 0; d < index_shape.size(); ++d) out.shape.push_back(index_shape[d]);
    out.shape.insert(out.shape.end(), x.begin() + static_cast<std::ptrdiff_t>(p + k), x.end());
    return out;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Shape& x = inputs[0].shape;
    const size_t k = inputs.size() - 1;
    const size_t p = static_cast<size_t>(first_dim(x, k));
    const size_t index_rank = out_desc.shape.size() - (x.size() - k);
    const Dims index_shape(Shape(out_desc.shape.begin() + static_cast<std::ptrdiff_t>(p),
                                 out_desc.shape.begin() + static_cast<std::ptrdiff_t>(p + index_rank)));
    int64_t pre = 1, block = 1, post = 1, positions = 1;
    for (size_t d = 0; d < p; ++d) pre *= x[d];
    for (size_t d = p; d < p + k; ++d) block *= x[d];
    for (size_t d = p + k; d < x.size(); ++d) post *= x[d];
    for (size_t d = 0; d < index_shape.size(); ++d) positions *= index_shape[d];
    if (positions == 0) return;

    // Source block (in units of `post` elements, within one of the `pre` slabs) per index position.
    thread_local std::vector<int64_t> scratch;
    if (scratch.size() < static_cast<size_t>(positions)) scratch.resize(static_cast<size_t>(positions));
    int64_t* offsets = scratch.data();
    std::fill(offsets, offsets + positions, int64_t{0});
    int64_t stride = block;
    for (size_t j = 0; j < k; ++j) {
      const int64_t size = x[p + j];
      stride /= std::max<int64_t>(size, 1);
      const int64_t* idx = static_cast<const int64_t*>(inputs[1 + j].data);
      const Dims operand[1] = {tensor_ops::broadcast_strides(inputs[1 + j].shape, index_shape)};
      const auto it = tensor_ops::simplify(index_shape, operand);
      const int64_t inner = it.shape.back(), step = it.strides[0].back();
      tensor_ops::for_each_row<1>(it, 0, positions / inner, [&](int64_t row, const int64_t* off) {
        for (int64_t t = 0; t < inner; ++t) {
          const int64_t at = off[0] + t * step;
          int64_t v = idx[at];
          if (v < -size || v >= size) {
            fail("index tensor " + std::to_string(j) + " holds " + std::to_string(v) + " at position " +
                 std::to_string(at) + ", out of range for dim " + std::to_string(p + j) + " of size " +
                 std::to_string(size) + " of x " + shape_string(x) +
                 (size == 0 ? " (expected no index: the dim is empty)"
                            : " (expected " + std::to_string(-size) + " to " + std::to_string(size - 1) + ")"));
          }
          if (v < 0) v += size;
          offsets[row * inner + t] += v * stride;
        }
      });
    }

    if (pre == 0 || post == 0) return;
    tensor_ops::with_element_type(dtype_size(out_desc.dtype), [&](auto tag) {
      using T = decltype(tag);
      const T* src = static_cast<const T*>(inputs[0].data);
      T* dst = static_cast<T*>(out);
      tensor_ops::parallel_for(ctx.threads, pre * positions, std::max<int64_t>(1, kElementGrain / post),
                               [&](int64_t b, int64_t e) {
                                 for (int64_t item = b; item < e; ++item) {
                                   const int64_t o = item / positions, i = item % positions;
                                   const T* s = src + (o * block + offsets[i]) * post;
                                   T* d = dst + item * post;
                                   if (post == 1) {
                                     *d = *s;
                                   } else {
                                     std::memcpy(d, s, static_cast<size_t>(post) * sizeof(T));
                                   }
                                 }
                               });
    });
  }

 private:
  // p, the first indexed dim, for x of shape `x` indexed by k tensors; fails unless p + k ≤ rank.
  int64_t first_dim(const Shape& x, size_t k) const {
    const int64_t rank = static_cast<int64_t>(x.size());
    const int64_t p = normalize_axis(axis_, rank, where());
    if (p + static_cast<int64_t>(k) > rank) {
      fail("attribute 'axis' " + std::to_string(axis_) + " with " + std::to_string(k) + " index tensors indexes dims " +
           std::to_string(p) + " to " + std::to_string(p + static_cast<int64_t>(k) - 1) + " of x " + shape_string(x) +
           " (expected axis + " + std::to_string(k) + " ≤ rank " + std::to_string(rank) + ")");
    }
    return p;
  }

  int64_t axis_;
};

// Running sums along one axis of columns [c0, c1) of an (n, inner) block, each column accumulated
// in Acc and read through `read`; a pass over the axis updates up to kCumsumColumns sums in a
// vectorisable loop.
constexpr int64_t kCumsumColumns = 256;
template <class Acc, class T, class Out, class Read>
void cumsum_columns(const T* x, Out* y, int64_t n, int64_t inner, int64_t c0, int64_t c1, Read read) {
  Acc acc[kCumsumColumns];
  const int64_t w = c1 - c0;
  for (int64_t c = 0; c < w; ++c) acc[c] = Acc(0);
  for (int64_t i = 0; i < n; ++i) {
    const T* xr = x + i * inner + c0;
    Out* yr = y + i * inner + c0;
    for (int64_t c = 0; c < w; ++c) {
      acc[c] += read(xr[c]);
      yr[c] = static_cast<Out>(acc[c]);
    }
  }
}

// torch.cumsum: f32 accumulates in double and rounds each sum (torch's CPU kernel does the same);
// i64 and bool (read as 0/1, as torch promotes it) give i64 and wrap on overflow.
class CumsumOp final : public AxisOp {
 public:
  using AxisOp::AxisOp;

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 1, 1);
    axis_of(inputs[0].shape);
    return {inputs[0].dtype == DType::kF32 ? DType::kF32 : DType::kI64, inputs[0].shape};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    if (numel(out_desc.shape) == 0) return;
    // Named copies, not a structured binding: the lambdas below capture them, which C++17 (and
    // clang before 16) does not allow for structured bindings.
    const Extents ext = extents(out_desc.shape);
    const int64_t outer = ext.outer, n = ext.along, inner = ext.inner;
    const int64_t chunks = (inner + kCumsumColumns - 1) / kCumsumColumns;
    const int64_t per_item = n * std::min(inner, kCumsumColumns);
    auto each = [&](auto body) {
      tensor_ops::parallel_for(ctx.threads, outer * chunks, std::max<int64_t>(1, kElementGrain / per_item),
                               [&](int64_t b, int64_t e) {
                                 for (int64_t item = b; item < e; ++item) {
                                   const int64_t o = item / chunks, c0 = item % chunks * kCumsumColumns;
                                   body(o * n * inner, c0, std::min(inner, c0 + kCumsumColumns));
                                 }
                               });
    };
    const void* x = inputs[0].data;
    switch (inputs[0].dtype) {
      case DType::kF32:
        return each([&](int64_t base, int64_t c0, int64_t c1) {
          cumsum_columns<double>(static_cast<const float*>(x) + base, static_cast<float*>(out) + base, n, inner, c0,
                                 c1, [](float v) { return double(v); });
        });
      case DType::kI64:
        return each([&](int64_t base, int64_t c0, int64_t c1) {
          cumsum_columns<uint64_t>(static_cast<const int64_t*>(x) + base, static_cast<int64_t*>(out) + base, n, inner,
                                   c0, c1, [](int64_t v) { return uint64_t(v); });
        });
      case DType::kBool:
        return each([&](int64_t base, int64_t c0, int64_t c1) {
          cumsum_columns<uint64_t>(static_cast<const uint8_t*>(x) + base, static_cast<int64_t*>(out) + base, n, inner,
                                   c0, c1, [](uint8_t v) { return uint64_t(v != 0); });
        });
    }
  }

};

}  // namespace

std::unique_ptr<Op> make_unary(const NodeDef& node, const Graph&) { return std::make_unique<UnaryOp>(node); }
std::unique_ptr<Op> make_binary(const NodeDef& node, const Graph&) { return std::make_unique<BinaryOp>(node); }
std::unique_ptr<Op> make_cast(const NodeDef& node, const Graph&) { return std::make_unique<CastOp>(node); }
std::unique_ptr<Op> make_reshape(const NodeDef& node, const Graph&) { return std::make_unique<ReshapeOp>(node); }
std::unique_ptr<Op> make_permute(const NodeDef& node, const Graph&) { return std::make_unique<PermuteOp>(node); }
std::unique_ptr<Op> make_expand(const NodeDef& node, const Graph&) { return std::make_unique<ExpandOp>(node); }
std::unique_ptr<Op> make_concat(const NodeDef& node, const Graph&) { return std::make_unique<ConcatOp>(node); }
std::unique_ptr<Op> make_slice(const NodeDef& node, const Graph&) { return std::make_unique<SliceOp>(node); }
std::unique_ptr<Op> make_layer_norm(const NodeDef& node, const Graph&) { return std::make_unique<LayerNormOp>(node); }
std::unique_ptr<Op> make_softmax(const NodeDef& node, const Graph&) { return std::make_unique<SoftmaxOp>(node); }
std::unique_ptr<Op> make_reduce_mean(const NodeDef& node, const Graph&) {
  return std::make_unique<ReduceOp>(node, true);
}
std::unique_ptr<Op> make_reduce_sum(const NodeDef& node, const Graph&) {
  return std::make_unique<ReduceOp>(node, false);
}
std::unique_ptr<Op> make_embedding(const NodeDef& node, const Graph&) { return std::make_unique<EmbeddingOp>(node); }
std::unique_ptr<Op> make_where(const NodeDef& node, const Graph&) { return std::make_unique<WhereOp>(node); }
std::unique_ptr<Op> make_arange(const NodeDef& node, const Graph&) { return std::make_unique<ArangeOp>(node); }
std::unique_ptr<Op> make_index(const NodeDef& node, const Graph&) { return std::make_unique<IndexOp>(node); }
std::unique_ptr<Op> make_cumsum(const NodeDef& node, const Graph&) { return std::make_unique<CumsumOp>(node); }

}  // namespace sparsert
