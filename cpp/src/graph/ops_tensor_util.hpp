// Helpers shared by the operators of ops_tensor.cpp and ops_attention.cpp: attribute and dtype
// checks with uniform messages, NumPy broadcasting, a strided copy for the view-like operators
// (permute, expand, slice) that moves elements of any dtype as raw bits, and a threaded loop over
// independent rows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "graph/op.hpp"
#include "runtime/thread_pool.hpp"

namespace sparsert {
namespace tensor_ops {

/// Op with the checks every operator of these files repeats.
class TensorOp : public Op {
 public:
  using Op::Op;

 protected:
  /// The scalar integer attribute `name`; fails when absent or not a single value.
  int64_t required_int(const std::string& name) const {
    const auto& v = node_.attrs.int_list(name, where());
    if (v.size() != 1) {
      fail("attribute '" + name + "' has " + std::to_string(v.size()) + " values (expected 1)");
    }
    return v[0];
  }
  /// A 0/1 attribute, `fallback` when absent.
  bool flag(const std::string& name, bool fallback) const {
    const int64_t v = node_.attrs.int_or(name, fallback ? 1 : 0, where());
    if (v != 0 && v != 1) fail("attribute '" + name + "' is " + std::to_string(v) + " (expected 0 or 1)");
    return v == 1;
  }
  void expect_dtype(const std::vector<TensorDesc>& inputs, size_t i, DType dtype, const char* role) const {
    if (inputs[i].dtype != dtype) {
      fail(std::string("input ") + std::to_string(i) + " (" + role + ") is " + to_string(inputs[i].dtype) +
           " (expected " + to_string(dtype) + (dtype == DType::kF32 ? "; insert a cast" : "") + ")");
    }
  }
};

/// Op along the one dim its "axis" attribute names (negative counts from the end): it mixes that dim
/// of its input alone, and its loops run over the (outer, along, inner) extents around it.
class AxisOp : public TensorOp {
 public:
  explicit AxisOp(const NodeDef& node) : TensorOp(node), axis_(required_int("axis")) {}

  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t, int64_t axis) const override {
    return axis == axis_of(inputs[0].shape);
  }

 protected:
  struct Extents {
    int64_t outer = 1, along = 1, inner = 1;
  };
  int64_t axis_of(const Shape& shape) const {
    return normalize_axis(axis_, static_cast<int64_t>(shape.size()), where());
  }
  Extents extents(const Shape& shape) const {
    Extents e;
    if (shape.empty()) return e;
    const size_t axis = static_cast<size_t>(axis_of(shape));
    e.along = shape[axis];
    for (size_t d = 0; d < axis; ++d) e.outer *= shape[d];
    for (size_t d = axis + 1; d < shape.size(); ++d) e.inner *= shape[d];
    return e;
  }

  int64_t axis_;
};

/// A short list of dims or strides that lives on the stack up to 8 entries, so that run() of a
/// tensor of ordinary rank does not allocate.
class Dims {
 public:
  Dims() = default;
  explicit Dims(size_t n, int64_t value = 0) { resize(n, value); }
  Dims(const Shape& s) {  // NOLINT: implicit on purpose, a Shape is a list of dims
    for (int64_t v : s) push_back(v);
  }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int64_t* data() { return heap_.empty() ? inline_ : heap_.data(); }
  const int64_t* data() const { return heap_.empty() ? inline_ : heap_.data(); }
  int64_t& operator[](size_t i) { return data()[i]; }
  int64_t operator[](size_t i) const { return data()[i]; }
  int64_t& back() { return data()[size_ - 1]; }
  int64_t back() const { return data()[size_ - 1]; }
  void push_back(int64_t v) {
    if (heap_.empty() && size_ == kInline) heap_.assign(inline_, inline_ + kInline);
    if (heap_.empty()) {
      inline_[size_] = v;
    } else {
      heap_.push_back(v);
    }
    ++size_;
  }
  void resize(size_t n, int64_t value = 0) {
    while (size_ < n) push_back(value);
    if (n < size_) {
      if (!heap_.empty()) heap_.resize(n);
      size_ = n;
    }
  }

 private:
  static constexpr size_t kInline = 8;
  int64_t inline_[kInline] = {};
  std::vector<int64_t> heap_;  // used, holding every entry, once more than kInline are pushed
  size_t size_ = 0;
};

/// Row-major strides (in elements) of a contiguous tensor of `shape`.
inline Dims contiguous_strides(const Dims& shape) {
  Dims s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/// NumPy broadcast of two shapes (aligned on the right); false when some dim pair differs and neither is 1.
inline bool broadcast_shapes(const Dims& a, const Dims& b, Dims* out) {
  const size_t rank = std::max(a.size(), b.size());
  Dims r(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) return false;
    r[i] = da == 1 ? db : da;
  }
  *out = r;
  return true;
}

/// The first `count` dims of `shape`.
inline Dims leading_dims(const Shape& shape, size_t count) {
  Dims d;
  for (size_t i = 0; i < count; ++i) d.push_back(shape[i]);
  return d;
}

inline Shape to_shape(const Dims& d) { return Shape(d.data(), d.data() + d.size()); }

/// Strides (in elements) that read a contiguous tensor of `in` as if broadcast to `out` (rank of
/// `out` ≥ rank of `in`; each dim of `in` equals its dim in `out` or is 1): 0 where broadcast.
inline Dims broadcast_strides(const Dims& in, const Dims& out) {
  Dims s(out.size(), 0);
  const size_t lead = out.size() - in.size();
  int64_t acc = 1;
  for (size_t i = in.size(); i-- > 0;) {
    s[lead + i] = in[i] == 1 ? 0 : acc;
    acc *= in[i];
  }
  return s;
}

/// An iteration space of up to three operands over one output shape, simplified: size-1 dims
/// dropped and neighbouring dims merged where every operand steps through them as one. At least one
/// dim remains (a 1-element space becomes shape (1) with stride 0).
template <size_t N>
struct Strided {
  Dims shape;
  Dims strides[N];  // per operand, per dim
};

template <size_t N>
Strided<N> simplify(const Dims& shape, const Dims (&strides)[N]) {
  Strided<N> r;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !r.shape.empty();
    for (size_t o = 0; merge && o < N; ++o) merge = r.strides[o].back() == strides[o][d] * shape[d];
    if (merge) {
      r.shape.back() *= shape[d];
      for (size_t o = 0; o < N; ++o) r.strides[o].back() = strides[o][d];
    } else {
      r.shape.push_back(shape[d]);
      for (size_t o = 0; o < N; ++o) r.strides[o].push_back(strides[o][d]);
    }
  }
  if (r.shape.empty()) {
    r.shape.push_back(1);
    for (auto& s : r.strides) s.push_back(0);
  }
  return r;
}

/// Walks the outer dims (all but the last) of `it` for outer rows [begin, end), calling
/// inner(row, offsets) with each operand's element offset of the row's first element.
template <size_t N, class Inner>
void for_each_row(const Strided<N>& it, int64_t begin, int64_t end, Inner&& inner) {
  const size_t outer = it.shape.size() - 1;
  Dims idx(outer, 0);
  int64_t off[N] = {};
  int64_t rest = begin;
  for (size_t d = outer; d-- > 0;) {
    idx[d] = rest % it.shape[d];
    rest /= it.shape[d];
    for (size_t o = 0; o < N; ++o) off[o] += idx[d] * it.strides[o][d];
  }
  for (int64_t row = begin; row < end; ++row) {
    inner(row, off);
    for (size_t d = outer; d-- > 0;) {
      for (size_t o = 0; o < N; ++o) off[o] += it.strides[o][d];
      if (++idx[d] < it.shape[d]) break;
      for (size_t o = 0; o < N; ++o) off[o] -= it.strides[o][d] * it.shape[d];
      idx[d] = 0;
    }
  }
}

/// Calls body(begin, end) over [0, n) split into at most `threads` contiguous ranges of at least
/// `grain` items each; one range runs inline. `body` must not throw.
template <class Body>
void parallel_for(int threads, int64_t n, int64_t grain, const Body& body) {
  if (n <= 0) return;
  const int64_t by_grain = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  const int tasks = static_cast<int>(std::min<int64_t>(std::max(1, threads), by_grain));
  if (tasks <= 1) {
    body(int64_t{0}, n);
    return;
  }
  // The task captures one pointer, so std::function keeps it inline instead of allocating.
  struct Job {
    const Body* body;
    int64_t n;
    int tasks;
  } job{&body, n, tasks};
  ThreadPool::instance().run(tasks, [j = &job](int t) {
    (*j->body)(j->n * t / j->tasks, j->n * (t + 1) / j->tasks);
  });
}

/// Calls f(T{}) with T the unsigned integer of `elem_size` bytes (1, 4 or 8: bool, f32, i64), for
/// the operators that move elements as raw bits whatever their dtype.
template <class F>
void with_element_type(int64_t elem_size, F&& f) {
  switch (elem_size) {
    case 1: return f(uint8_t{});
    case 4: return f(uint32_t{});
    default: return f(uint64_t{});
  }
}

/// out (contiguous, `shape`) = in[base + Σ idx·strides], for the view-like operators. Elements are
/// copied as raw bits of `elem_size` bytes (1, 4 or 8), so any dtype works.
inline void strided_copy(const void* in, int64_t base, const Dims& shape, const Dims& strides, void* out,
                         int64_t elem_size, int threads) {
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) n *= shape[i];
  if (n == 0) return;
  const Dims operand[1] = {strides};
  const Strided<1> it = simplify(shape, operand);
  const int64_t inner = it.shape.back();
  const int64_t step = it.strides[0].back();
  const int64_t rows = n / inner;
  // A transpose-like copy (the input's unit-stride dim is not the output's last): copy in square
  // tiles so that both the lines read and the lines written stay in L1 across a tile, instead of
  // one cache line read per element.
  size_t unit = it.shape.size();
  if (step != 0 && step != 1) {
    for (size_t d = 0; d + 1 < it.shape.size(); ++d) {
      if (it.strides[0][d] == 1) unit = d;
    }
  }
  if (unit < it.shape.size()) {
    auto tiled = [&](auto tag) {
      using T = decltype(tag);
      constexpr int64_t kTile = 32;
      const Dims out_strides = contiguous_strides(it.shape);
      // The other dims, walked as rows of a dummy last dim of size 1.
      Dims rest_shape;
      Dims rest_strides[2];
      for (size_t d = 0; d + 1 < it.shape.size(); ++d) {
        if (d == unit) continue;
        rest_shape.push_back(it.shape[d]);
        rest_strides[0].push_back(it.strides[0][d]);
        rest_strides[1].push_back(out_strides[d]);
      }
      rest_shape.push_back(1);
      rest_strides[0].push_back(0);
      rest_strides[1].push_back(0);
      Strided<2> rest;
      rest.shape = rest_shape;
      rest.strides[0] = rest_strides[0];
      rest.strides[1] = rest_strides[1];
      const int64_t combos = n / (it.shape[unit] * inner);
      const int64_t rows = it.shape[unit], bands = (rows + kTile - 1) / kTile, ostride = out_strides[unit];
      const T* src = static_cast<const T*>(in) + base;
      T* dst = static_cast<T*>(out);
      parallel_for(threads, combos * bands, std::max<int64_t>(1, (int64_t{1} << 15) / (kTile * inner)),
                   [&](int64_t b, int64_t e) {
                     // Items run combo-major, so a range is a few runs of consecutive bands of one combo.
                     for (int64_t item = b; item < e;) {
                       const int64_t combo = item / bands;
                       const int64_t band_end = std::min(e, (combo + 1) * bands);
                       for_each_row<2>(rest, combo, combo + 1, [&](int64_t, const int64_t* off) {
                         for (int64_t band = item % bands; band < band_end - combo * bands; ++band) {
                           const int64_t r0 = band * kTile, r1 = std::min(rows, r0 + kTile);
                           for (int64_t c0 = 0; c0 < inner; c0 += kTile) {
                             const int64_t c1 = std::min(inner, c0 + kTile);
                             for (int64_t r = r0; r < r1; ++r) {
                               const T* s = src + off[0] + r;
                               T* d = dst + off[1] + r * ostride;
                               for (int64_t c = c0; c < c1; ++c) d[c] = s[c * step];
                             }
                           }
                         }
                       });
                       item = band_end;
                     }
                   });
    };
    with_element_type(elem_size, tiled);
    return;
  }
  auto copy = [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(in) + base;
    T* dst = static_cast<T*>(out);
    // Row-major copies of ≥ 32 K elements are worth a second thread; smaller ones are memory-bound
    // already and the wake-up costs more than it saves.
    parallel_for(threads, rows, std::max<int64_t>(1, (int64_t{1} << 15) / inner), [&](int64_t b, int64_t e) {
      for_each_row<1>(it, b, e, [&](int64_t row, const int64_t* off) {
        const T* s = src + off[0];
        T* d = dst + row * inner;
        if (step == 1) {
          std::memcpy(d, s, static_cast<size_t>(inner) * sizeof(T));
        } else if (step == 0) {
          std::fill(d, d + inner, *s);
        } else {
          for (int64_t i = 0; i < inner; ++i) d[i] = s[i * step];
        }
      });
    });
  };
  with_element_type(elem_size, copy);
}

/// Σ x[i] in double with independent partial sums (a float sum of a long row drifts; one running
/// double sum serialises on the add latency).
inline double sum_f64(const float* x, int64_t n) {
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) s[j] += x[i + j];
  }
  for (; i < n; ++i) s[0] += x[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/// Σ a[i]·b[i] in float with eight partial sums, which the compiler keeps in vector registers.
inline float dot_f32(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) s[0] += a[i] * b[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

}  // namespace tensor_ops
}  // namespace sparsert
