// What the operators of ops_nn.cpp and ops_conv.cpp share: NnOp (attributes, image and bias checks
// with messages naming the values involved, convolution and pooling output sizes), per-thread
// scratch, a threaded loop over image planes, and the kernel a packed weight runs with.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph/op.hpp"
#include "kernels/registry.hpp"
#include "runtime/thread_pool.hpp"
#include "sparsert/aligned.hpp"
#include "sparsert/format.hpp"

namespace sparsert {
namespace nn_ops {

// Below this many multiply-adds (or element reads) per thread, waking another thread costs more
// than it saves: the same measure as run_spmm's kMinFmaPerThread (a wake-up is a few µs).
inline constexpr int64_t kMinWorkPerThread = 32 * 1024;

using Pair = std::array<int64_t, 2>;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a ≥ 0, b ≥ 1
// ⌊a / b⌋ for any sign of a, b ≥ 1 (C++ division truncates toward zero).
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

inline std::string pair_string(const Pair& p) { return std::to_string(p[0]) + "×" + std::to_string(p[1]); }

/// Per-thread scratch that only grows, so steady-state runs do not allocate. `slot` picks one of a
/// few independent buffers; the pointer stays valid until the same thread asks that slot for more.
inline float* scratch(int slot, int64_t n) {
  thread_local AlignedVector<float> buffers[3];
  AlignedVector<float>& b = buffers[slot];
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  return b.data();
}

/// Calls body(begin, end) over [0, planes) split evenly among up to `threads` threads, fewer when
/// `work` (total element operations) does not pay for waking them. body must not throw.
template <class Body>
void for_planes(int64_t planes, int64_t work, int threads, const Body& body) {
  const int64_t useful = std::max<int64_t>(1, work / kMinWorkPerThread);
  const int n = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({threads, planes, useful})));
  if (n == 1) {
    body(int64_t{0}, planes);
    return;
  }
  const auto task = [&](int t) { body(planes * t / n, planes * (t + 1) / n); };
  ThreadPool::instance().run(n, std::cref(task));  // a reference: std::function stores it without allocating
}

/// An image input: (N, C, H, W), or (C, H, W) unbatched as PyTorch allows (then n == 1).
struct Image {
  int64_t n, c, h, w;
  bool batched;
  Shape shape_with(int64_t c2, int64_t h2, int64_t w2) const {
    return batched ? Shape{n, c2, h2, w2} : Shape{c2, h2, w2};
  }
};

/// First index t ≥ 0 with base + t·step ≥ 0, and first index with base + t·step ≥ limit, both
/// clamped to [0, count]: the run of outputs whose input column lies inside [0, limit).
inline void valid_run(int64_t base, int64_t step, int64_t limit, int64_t count, int64_t& lo, int64_t& hi) {
  lo = base >= 0 ? 0 : ceil_div(-base, step);
  hi = limit - base <= 0 ? 0 : ceil_div(limit - base, step);
  lo = std::min(lo, count);
  hi = std::max(lo, std::min(hi, count));
}

/// A convolution's or pooling's window: sizes (height, width) of the kernel, stride, padding, dilation.
struct ConvWindow {
  Pair kernel, stride, padding, dilation;
};

/// What every operator of ops_nn.cpp and ops_conv.cpp shares: attribute parsing with messages that
/// name the attribute and its value, and input checks that name the shapes involved.
class NnOp : public Op {
 public:
  using Op::Op;

  // Images (dim 0) are independent; channels and pixels meet. Linear overrides.
  bool mixes_axis(const std::vector<TensorDesc>&, size_t, int64_t axis) const override { return axis != 0; }

 protected:
  // Op::expect_inputs's rule, with the inputs' names in the message ("x [, bias]").
  void check_count(size_t got, size_t lo, size_t hi, const char* names) const {
    if (got < lo || got > hi) {
      fail("got " + std::to_string(got) + " inputs (expected " +
           (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + ": " + names + ")");
    }
  }

  /// Largest window size, stride, padding or dilation a model file may ask for: products of these
  /// (kernel area, padded extents) then fit int64 however a damaged file combines them.
  static constexpr int64_t kMaxWindowValue = int64_t{1} << 20;

  /// A two-value attribute (height, width), each in [`min`, kMaxWindowValue]; `fallback` when absent
  /// (required when null).
  Pair pair_attr(const std::string& name, const Pair* fallback, int64_t min) const {
    if (!node_.attrs.has(name)) {
      if (fallback == nullptr) node_.attrs.int_list(name, where());  // throws "missing integer attribute"
      return *fallback;
    }
    const std::vector<int64_t>& v = node_.attrs.int_list(name, where());
    if (v.size() != 2) {
      fail("attribute '" + name + "' is " + list_string(v) + " (expected 2 values, height and width)");
    }
    if (v[0] < min || v[1] < min || v[0] > kMaxWindowValue || v[1] > kMaxWindowValue) {
      fail("attribute '" + name + "' is " + list_string(v) + " (expected values from " + std::to_string(min) +
           " to " + std::to_string(kMaxWindowValue) + ")");
    }
    return {v[0], v[1]};
  }

  int64_t int_attr(const std::string& name, int64_t fallback, int64_t lo, int64_t hi, const std::string& rule) const {
    const int64_t v = node_.attrs.int_or(name, fallback, where());
    if (v < lo || v > hi) fail("attribute '" + name + "' is " + std::to_string(v) + " (expected " + rule + ")");
    return v;
  }

  bool bool_attr(const std::string& name, bool fallback) const {
    return int_attr(name, fallback ? 1 : 0, 0, 1, "0 or 1") != 0;
  }

  Activation act_attr() const {
    constexpr int64_t kLast = static_cast<int64_t>(kLastActivation);
    std::string choices;
    for (int64_t a = 0; a <= kLast; ++a) {
      choices += (a ? ", " : "") + std::to_string(a) + " " + to_string(static_cast<Activation>(a));
    }
    return static_cast<Activation>(int_attr("act", 0, 0, kLast, "an Activation: " + choices));
  }

  void expect_no_weights() const {
    if (!node_.weights.empty()) {
      fail("has " + std::to_string(node_.weights.size()) + " packed weights (expected none)");
    }
  }

  void expect_f32(const TensorDesc& d, const char* name) const {
    if (d.dtype != DType::kF32) {
      fail("input " + std::string(name) + " has dtype " + to_string(d.dtype) + " (expected f32)");
    }
  }

  Image image(const TensorDesc& x) const { return image(x.dtype, x.shape); }
  Image image(DType dtype, const Shape& s) const {
    expect_f32({dtype, {}}, "x");
    if (s.size() != 3 && s.size() != 4) {
      fail("input x has shape " + shape_string(s) + " (expected 4 dims (N, C, H, W) or 3 dims (C, H, W))");
    }
    const bool batched = s.size() == 4;
    const Image im{batched ? s[0] : 1, s[s.size() - 3], s[s.size() - 2], s[s.size() - 1], batched};
    if (im.c == 0 || im.h == 0 || im.w == 0) {
      fail("input x has shape " + shape_string(s) + " (expected non-zero C, H and W)");
    }
    return im;
  }

  void check_bias(const TensorDesc& b, int64_t channels, const Shape& weight_shape) const {
    expect_f32(b, "bias");
    if (b.shape != Shape{channels}) {
      fail("input bias has shape " + shape_string(b.shape) + " but the weight has shape " +
           shape_string(weight_shape) + " (expected bias " + shape_string(Shape{channels}) + ")");
    }
  }

  /// Convolution output size along one dim: ⌊(in + 2·pad − dilation·(k − 1) − 1) / stride⌋ + 1.
  int64_t conv_out(const Shape& x, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, const char* dim) const {
    const int64_t span = d * (k - 1) + 1;
    if (in + 2 * p < span) {
      fail("input x has shape " + shape_string(x) + ": " + dim + " " + std::to_string(in) + " padded by " +
           std::to_string(p) + " on each side is " + std::to_string(in + 2 * p) +
           " (expected at least the dilated kernel size " + std::to_string(span) + ")");
    }
    return (in + 2 * p - span) / s + 1;
  }

  /// Pooling output size along one dim, as PyTorch's pooling_output_shape: with ceil_mode the last
  /// window must start inside the input or the left padding.
  int64_t pool_out(const Shape& x, int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode,
                   const char* dim) const {
    const int64_t out = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
    const int64_t fixed = ceil_mode && (out - 1) * s >= in + p ? out - 1 : out;
    if (fixed < 1) {
      fail("input x has shape " + shape_string(x) + ": " + dim + " " + std::to_string(in) + " gives output size " +
           std::to_string(fixed) + " (expected ≥ 1; the window spans " + std::to_string(d * (k - 1) + 1) +
           " with padding " + std::to_string(p) + ")");
    }
    return fixed;
  }

  /// PyTorch's pooling rule: padding at most half the kernel. (pooling_output_shape also allows half
  /// the dilated window, but pool2d_shape_check's kernel / 2 is the stricter and applies to both pools.)
  void check_pool_padding(const Pair& kernel, const Pair& padding) const {
    if (padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2) {
      fail("attribute 'padding' is [" + std::to_string(padding[0]) + ", " + std::to_string(padding[1]) +
           "] (expected at most half the kernel " + pair_string(kernel) + ", [" + std::to_string(kernel[0] / 2) +
           ", " + std::to_string(kernel[1] / 2) + "])");
    }
  }
};

/// The kernel a packed weight runs with at this batch: the scalar reference when the run asks for it.
inline const KernelInfo& kernel_for(const Weight& w, int64_t batch, const RunContext& ctx) {
  return ctx.reference_kernels ? reference_kernel(w.format()) : select_kernel(w, batch);
}

}  // namespace nn_ops
}  // namespace sparsert
