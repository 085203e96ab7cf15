// The "ops_nn.cpp" section of ops.def: layers with packed weights (linear, conv2d) and the
// direct-loop image operators (depthwise convolution, pooling). Attribute rules, output shapes and
// values follow PyTorch (torch.nn.functional of the same names); images are NCHW, or CHW unbatched.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graph/ops.hpp"
#include "kernels/epilogue.hpp"
#include "kernels/registry.hpp"
#include "kernels/tensor_kernels.hpp"
#include "runtime/run_spmm.hpp"
#include "runtime/thread_pool.hpp"
#include "sparsert/aligned.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

// Below this many multiply-adds (or element reads) per thread, waking another thread costs more
// than it saves: the same measure as run_spmm's kMinFmaPerThread (a wake-up is a few µs).
constexpr int64_t kMinWorkPerThread = 32 * 1024;
// conv2d packs at most this many floats of im2col panel per chunk of output pixels (512 KiB), so the
// panel stays in L2 while every weight row sweeps it; chunks hold 64 to 256 pixels.
constexpr int64_t kPanelFloats = 128 * 1024;
constexpr int64_t kMinChunk = 64;
// Direct convolution's column blocks keep this much of the input in L1 (16 KiB: up to 5% slower on
// ResNet-18's layers, 32 KiB: up to 10%).
constexpr int64_t kDirectWindowBytes = 24 * 1024;
constexpr int64_t kMaxChunk = 256;

using Pair = std::array<int64_t, 2>;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }  // a ≥ 0, b ≥ 1
// ⌊a / b⌋ for any sign of a, b ≥ 1 (C++ division truncates toward zero).
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

std::string list_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}
std::string pair_string(const Pair& p) { return std::to_string(p[0]) + "×" + std::to_string(p[1]); }

/// Per-thread scratch that only grows, so steady-state runs do not allocate. `slot` picks one of a
/// few independent buffers; the pointer stays valid until the same thread asks that slot for more.
float* scratch(int slot, int64_t n) {
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
void valid_run(int64_t base, int64_t step, int64_t limit, int64_t count, int64_t& lo, int64_t& hi) {
  lo = base >= 0 ? 0 : ceil_div(-base, step);
  hi = limit - base <= 0 ? 0 : ceil_div(limit - base, step);
  lo = std::min(lo, count);
  hi = std::max(lo, std::min(hi, count));
}

/// What every operator of this file shares: attribute parsing with messages that name the
/// attribute and its value, and input checks that name the shapes involved.
class NnOp : public Op {
 public:
  using Op::Op;

  // Images (dim 0) are independent; channels and pixels meet. Linear overrides.
  bool mixes_axis(const std::vector<TensorDesc>&, size_t, int64_t axis) const override { return axis != 0; }

 protected:
  // Op::expect_inputs lives in ops.cpp next to make_op, whose references to every factory in
  // ops.def would then have to link; this check is the same rule without that dependency.
  void check_count(size_t got, size_t lo, size_t hi, const char* names) const {
    if (got < lo || got > hi) {
      fail("got " + std::to_string(got) + " inputs (expected " +
           (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + ": " + names + ")");
    }
  }

  /// A two-value attribute (height, width), each ≥ `min`; `fallback` when absent (required when null).
  Pair pair_attr(const std::string& name, const Pair* fallback, int64_t min) const {
    if (!node_.attrs.has(name)) {
      if (fallback == nullptr) node_.attrs.int_list(name, where());  // throws "missing integer attribute"
      return *fallback;
    }
    const std::vector<int64_t>& v = node_.attrs.int_list(name, where());
    if (v.size() != 2) {
      fail("attribute '" + name + "' is " + list_string(v) + " (expected 2 values, height and width)");
    }
    if (v[0] < min || v[1] < min) {
      fail("attribute '" + name + "' is " + list_string(v) + " (expected values ≥ " + std::to_string(min) + ")");
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
    constexpr int64_t kLast = static_cast<int64_t>(Activation::kTanh);
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

const KernelInfo& kernel_for(const Weight& w, int64_t batch, const RunContext& ctx) {
  return ctx.reference_kernels ? reference_kernel(w.format()) : select_kernel(w, batch);
}

// ---------------------------------------------------------------------------------------------
// linear: y = act(x · Wᵀ + bias) over every leading dim of x.

class Linear final : public NnOp {
 public:
  explicit Linear(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 2, "x [, bias]");
    if (node.weights.size() != 1) {
      fail("has " + std::to_string(node.weights.size()) + " packed weights (expected 1, of shape (out, in))");
    }
    act_ = act_attr();
  }

  // x's last dim; rows (every other dim of x) are independent.
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const override {
    return input == 0 && axis == static_cast<int64_t>(inputs[0].shape.size()) - 1;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 2, "x [, bias]");
    const Weight& w = *node_.weights[0];
    const TensorDesc& x = inputs[0];
    expect_f32(x, "x");
    if (x.shape.empty() || x.shape.back() != w.cols()) {
      fail("input x has shape " + shape_string(x.shape) + " but the weight has shape " +
           shape_string({w.rows(), w.cols()}) + " (expected x's last dim to be " + std::to_string(w.cols()) + ")");
    }
    if (inputs.size() == 2) check_bias(inputs[1], w.rows(), {w.rows(), w.cols()});
    Shape out = x.shape;
    out.back() = w.rows();
    return {DType::kF32, out};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out, const RunContext& ctx) const override {
    const Weight& w = *node_.weights[0];
    const int64_t batch = leading(inputs[0].shape);
    const float* bias = inputs.size() == 2 ? static_cast<const float*>(inputs[1].data) : nullptr;
    run_spmm(kernel_for(w, batch, ctx), w, static_cast<const float*>(inputs[0].data), batch, bias,
             static_cast<float*>(out), act_, ctx.threads);
  }

  std::string kernel_name(const std::vector<TensorDesc>& inputs, const RunContext& ctx) const override {
    const bool known = !inputs.empty() && !inputs[0].shape.empty();
    return kernel_for(*node_.weights[0], known ? leading(inputs[0].shape) : 1, ctx).name;
  }

 private:
  // Rows of x: the product of its leading dims (1 for a 1-D x).
  static int64_t leading(const Shape& s) {
    int64_t n = 1;
    for (size_t i = 0; i + 1 < s.size(); ++i) n *= s[i];
    return n;
  }

  Activation act_;
};

// ---------------------------------------------------------------------------------------------
// conv2d: per group, one spmm per chunk of output pixels. CSR weights read the image directly
// (DirectPlan) and the kernels write the chunk channel-major; the other formats read an im2col panel
// in the kernels' packed input (kernels/kernel.hpp) and their (pixels × OC/groups) result is
// transposed into the NCHW output.

struct ConvWindow {
  Pair kernel, stride, padding, dilation;
};

/// Rows [k0, k1) of the packed panel for output pixels [p0, p0 + count) of one image and group:
/// panel[k · ldx + b] = x[c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] with k = (c, i, j) and (oh, ow) the
/// pixel p0 + b; zero where that lies in the padding, for lanes b ≥ count, and for rows k ≥ cols.
void im2col(const float* x, int64_t h, int64_t w, const ConvWindow& win, int64_t ow_count, int64_t p0, int64_t count,
            int64_t cols, int64_t ldx, float* panel, int64_t k0, int64_t k1) {
  const int64_t kh = win.kernel[0], kw = win.kernel[1];
  const int64_t sh = win.stride[0], sw = win.stride[1];
  for (int64_t k = k0; k < k1; ++k) {
    float* dst = panel + k * ldx;
    if (k >= cols) {
      std::fill(dst, dst + ldx, 0.0f);
      continue;
    }
    const int64_t c = k / (kh * kw), i = k / kw % kh, j = k % kw;
    const float* xc = x + c * h * w;
    const int64_t col_off = j * win.dilation[1] - win.padding[1];
    // The chunk crosses output rows: each segment is one output row's run of pixels.
    for (int64_t b = 0, p = p0; b < count;) {
      const int64_t oh = p / ow_count, ow0 = p % ow_count;
      const int64_t n = std::min(count - b, ow_count - ow0);
      const int64_t ih = oh * sh - win.padding[0] + i * win.dilation[0];
      float* seg = dst + b;
      if (ih < 0 || ih >= h) {
        std::fill(seg, seg + n, 0.0f);
      } else {
        const int64_t base = ow0 * sw + col_off;  // input column of the segment's first pixel
        int64_t lo, hi;
        valid_run(base, sw, w, n, lo, hi);
        std::fill(seg, seg + lo, 0.0f);
        const float* src = xc + ih * w + (base + lo * sw);  // input of pixel lo, inside the row
        if (sw == 1) {
          std::copy(src, src + (hi - lo), seg + lo);
        } else {
          for (int64_t t = 0; t < hi - lo; ++t) seg[lo + t] = src[t * sw];
        }
        std::fill(seg + hi, seg + n, 0.0f);
      }
      b += n;
      p += n;
    }
    std::fill(dst + count, dst + ldx, 0.0f);
  }
}

/// The kernel's result for `count` pixels (count × channels, row-major) into channel rows of the
/// NCHW output: dst[r · ld + b] = src[b · channels + r].
void store_channels(const float* src, int64_t count, int64_t channels, float* dst, int64_t ld) {
  tensor_kernels().transpose(src, channels, dst, ld, count, channels);
}

/// Items (of an operator's work) run by whole items on each thread from a shared counter when there
/// are enough of them, else in turn with each item's work split among the threads:
/// run_item(item, threads for it).
template <class RunItem>
void for_items(int64_t items, int threads, const RunItem& run_item) {
  const int64_t waste = ceil_div(items, threads) * threads - items;  // idle item slots in the last round
  if (threads > 1 && items >= threads && 4 * waste <= items) {
    std::atomic<int64_t> next{0};
    const auto worker = [&](int) {
      for (int64_t item = next.fetch_add(1); item < items; item = next.fetch_add(1)) run_item(item, 1);
    };
    ThreadPool::instance().run(threads, std::cref(worker));
  } else {
    for (int64_t item = 0; item < items; ++item) run_item(item, threads);
  }
}

/// Direct convolution's view of CSR weights for one input size: the image is copied once, zero-padded
/// and split into stride_h × stride_w phase planes (phase (a, b) holds the padded rows ≡ a and columns
/// ≡ b modulo the stride), so that every tap (c, i, j) of an output pixel reads the phase plane
/// position at a fixed offset from the pixel's own. A weight's column index becomes that offset (the
/// kernels' overlapping-rows input, kernels/kernel.hpp): no im2col panel is written.
struct DirectPlan {
  int64_t h = 0, w = 0;     // the input size it is for
  int64_t hq = 0, wq = 0;   // a phase plane's rows and columns
  int64_t channel = 0;      // floats from one channel's phase planes to the next's
  int64_t column_block = 0;  // the kernels' column blocks (kernel.hpp): whole channels
  std::vector<char> phase_used;  // stride_h · stride_w flags: the phases some tap reads
  std::vector<std::shared_ptr<const CsrMatrix>> weights;  // per group
};

class Conv2d final : public NnOp {
 public:
  explicit Conv2d(const NodeDef& node) : NnOp(node) {
    residual_ = bool_attr("residual", false);
    check_inputs(node.inputs.size());
    const Pair one{1, 1}, zero{0, 0};
    win_ = {pair_attr("kernel", nullptr, 1), pair_attr("stride", &one, 1), pair_attr("padding", &zero, 0),
            pair_attr("dilation", &one, 1)};
    groups_ = int_attr("groups", 1, 1, std::numeric_limits<int64_t>::max(), "≥ 1");
    act_ = act_attr();
    if (static_cast<int64_t>(node.weights.size()) != groups_) {
      fail("has " + std::to_string(node.weights.size()) + " packed weights (expected one per group, groups = " +
           std::to_string(groups_) + ")");
    }
    const Weight& w0 = *node.weights[0];
    for (int64_t g = 1; g < groups_; ++g) {
      const Weight& wg = *node.weights[g];
      if (wg.rows() != w0.rows() || wg.cols() != w0.cols()) {
        fail("weight " + std::to_string(g) + " has shape " + shape_string({wg.rows(), wg.cols()}) +
             " but weight 0 has " + shape_string({w0.rows(), w0.cols()}) + " (expected every group's shape equal)");
      }
    }
    const int64_t taps = win_.kernel[0] * win_.kernel[1];
    if (w0.cols() % taps != 0) {
      fail("weight 0 has shape " + shape_string({w0.rows(), w0.cols()}) + " (expected columns a multiple of kernel " +
           pair_string(win_.kernel) + " = " + std::to_string(taps) + ", in (c, kh, kw) order)");
    }
    cg_ = w0.cols() / taps;
    ocg_ = w0.rows();
    for (const auto& w : node.weights) padded_cols_ = std::max(padded_cols_, w->padded_cols());
    // A 1×1, stride-1, unpadded convolution reads the NCHW input as it is: one image's group of
    // channels is already x[c · H·W + pixel], the packed layout with ldx = H·W.
    pointwise_ = taps == 1 && win_.stride == one && win_.padding == zero;
    direct_ = !pointwise_;
    for (const auto& w : node.weights) direct_ = direct_ && w->format() == Format::kCsr;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_inputs(inputs.size());
    const Image im = image(inputs[0]);
    if (im.c != groups_ * cg_) {
      fail("input x has shape " + shape_string(inputs[0].shape) + " but the weight has shape " +
           shape_string(weight_shape()) + " with groups " + std::to_string(groups_) +
           " (expected x's channel dim to be " + std::to_string(groups_ * cg_) + ")");
    }
    if (has_bias(inputs.size())) check_bias(inputs[1], groups_ * ocg_, weight_shape());
    const Pair out = out_size(inputs[0].shape, im);
    const TensorDesc y{DType::kF32, im.shape_with(groups_ * ocg_, out[0], out[1])};
    if (residual_) {
      const TensorDesc& r = inputs.back();
      expect_f32(r, "residual");
      if (r.shape != y.shape) {
        fail("input residual has shape " + shape_string(r.shape) + " (expected the output's shape " +
             shape_string(y.shape) + ")");
      }
    }
    return y;
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1], pixels = oh * ow;
    const int64_t oc = groups_ * ocg_;
    if (im.n == 0 || pixels == 0 || ocg_ == 0) return;
    const float* x = static_cast<const float*>(inputs[0].data);
    const float* bias = has_bias(inputs.size()) ? static_cast<const float*>(inputs[1].data) : nullptr;
    const float* residual = residual_ ? static_cast<const float*>(inputs.back().data) : nullptr;
    float* y = static_cast<float*>(out);
    int64_t nnz = 0;
    for (const auto& w : node_.weights) nnz += w->nnz_before(w->row_units());
    const int64_t work = im.n * pixels * (nnz + groups_ * cg_ * win_.kernel[0] * win_.kernel[1]);
    const int threads = static_cast<int>(
        std::max<int64_t>(1, std::min<int64_t>(ctx.threads, work / kMinWorkPerThread)));
    if (direct_) {
      if (const auto plan = direct_plan(im.h, im.w)) {
        return run_direct(*plan, im, x, bias, residual, y, oh, ow, threads, ctx);
      }
    }

    // One item = (image, group, chunk of pixels): im2col, spmm, store.
    const int64_t chunk = chunk_size(pixels);
    const int64_t chunks = ceil_div(pixels, chunk);
    auto run_item = [&](int64_t item, int inner) {
      const int64_t n = item / (groups_ * chunks), g = item / chunks % groups_, p0 = item % chunks * chunk;
      const int64_t count = std::min(chunk, pixels - p0);
      const Weight& w = *node_.weights[static_cast<size_t>(g)];
      const float* xg = x + (n * im.c + g * cg_) * im.h * im.w;
      const float* packed = nullptr;
      int64_t ldx = count == 1 ? 1 : packed_ldx(count);
      if (pointwise_ && w.padded_cols() == w.cols() && count == 1 && im.h * im.w == 1) {
        packed = xg;  // the pixel's channels are contiguous: a plain vector
      } else if (pointwise_ && w.padded_cols() == w.cols() && count > 1 && im.h * im.w % kBatchPad == 0 &&
                 reinterpret_cast<uintptr_t>(xg) % kAlignment == 0) {
        // p0 is a multiple of the chunk, itself a multiple of kBatchPad when there are several, so
        // the chunk's start stays aligned and its last tile reads at most to the end of the row.
        packed = xg + p0;
        ldx = im.h * im.w;
      } else {
        float* panel = scratch(0, w.padded_cols() * ldx);
        const int64_t kp = w.padded_cols();
        const int n_im2col = static_cast<int>(std::min<int64_t>(inner, kp));
        if (n_im2col <= 1) {
          im2col(xg, im.h, im.w, win_, ow, p0, count, w.cols(), ldx, panel, 0, kp);
        } else {
          const auto part = [&](int t) {
            im2col(xg, im.h, im.w, win_, ow, p0, count, w.cols(), ldx, panel, kp * t / n_im2col,
                   kp * (t + 1) / n_im2col);
          };
          ThreadPool::instance().run(n_im2col, std::cref(part));
        }
        packed = panel;
      }
      float* yc = scratch(1, count * ocg_);
      run_spmm_packed(kernel_for(w, count, ctx), w, packed, ldx, count, bias ? bias + g * ocg_ : nullptr, yc,
                      kernel_act(), inner);
      float* yg = y + (n * oc + g * ocg_) * pixels + p0;
      store_channels(yc, count, ocg_, yg, pixels);
      if (residual != nullptr) {
        tensor_kernels().store_rows(yg, pixels, residual + (yg - y), yg, pixels, ocg_, count, act_);
      }
    };
    for_items(im.n * groups_ * chunks, threads, run_item);
  }

  std::string kernel_name(const std::vector<TensorDesc>& inputs, const RunContext& ctx) const override {
    int64_t count = 1;
    if (!inputs.empty()) {
      const Image im = image(inputs[0]);
      const Pair out = out_size(inputs[0].shape, im);
      count = chunk_size(out[0] * out[1]);
    }
    std::string names;
    for (const auto& w : node_.weights) {
      const std::string name = kernel_for(*w, count, ctx).name;
      if (names.find(name) == std::string::npos) names += (names.empty() ? "" : ", ") + name;
    }
    return names;
  }

 private:
  Shape weight_shape() const { return {groups_ * ocg_, cg_, win_.kernel[0], win_.kernel[1]}; }

  void check_inputs(size_t got) const {
    if (residual_) check_count(got, 2, 3, "x [, bias], residual");
    else check_count(got, 1, 2, "x [, bias]");
  }
  bool has_bias(size_t inputs) const { return inputs == (residual_ ? 3u : 2u); }
  // With a residual the kernels add the bias only; the residual and act follow in one pass.
  Activation kernel_act() const { return residual_ ? Activation::kNone : act_; }

  /// The DirectPlan for an h × w input, built on first use for that size; null when the phase planes
  /// would outgrow 32-bit offsets (im2col then).
  std::shared_ptr<const DirectPlan> direct_plan(int64_t h, int64_t w) const {
    std::lock_guard<std::mutex> lock(plan_mu_);
    if (plan_ != nullptr && plan_->h == h && plan_->w == w) return plan_;
    const int64_t sh = win_.stride[0], sw = win_.stride[1], kh = win_.kernel[0], kw = win_.kernel[1];
    auto p = std::make_shared<DirectPlan>();
    p->h = h;
    p->w = w;
    p->hq = ceil_div(h + 2 * win_.padding[0], sh);
    p->wq = ceil_div(w + 2 * win_.padding[1], sw);
    const int64_t plane = p->hq * p->wq;
    // Channels an odd number of cache lines apart, so that a block of them spreads over every L1 set
    // (14 × 14 inputs, 1 KiB a channel, folded onto a quarter of the sets: 25% slower).
    p->channel = round_up(sh * sw * plane, 16);
    if (p->channel / 16 % 2 == 0) p->channel += 16;
    const int64_t span = cg_ * p->channel;
    if (span + p->hq * p->wq + kOverlapSlack > std::numeric_limits<uint32_t>::max()) return nullptr;
    // Tap (i, j) of the window: padded row oh·sh + i·dh = (oh + ⌊i·dh / sh⌋)·sh + (i·dh mod sh), so
    // it reads phase row (i·dh mod sh) at ⌊i·dh / sh⌋ rows below the pixel; columns alike.
    std::vector<int64_t> tap(static_cast<size_t>(kh * kw));
    p->phase_used.assign(static_cast<size_t>(sh * sw), 0);
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t di = i * win_.dilation[0], dj = j * win_.dilation[1];
        const int64_t phase = di % sh * sw + dj % sw;
        p->phase_used[static_cast<size_t>(phase)] = 1;
        tap[static_cast<size_t>(i * kw + j)] = phase * plane + di / sh * p->wq + dj / sw;
      }
    p->column_block = column_block(tap, p->channel);
    for (const auto& weight : node_.weights) {
      const auto& csr = static_cast<const CsrMatrix&>(*weight);
      const int64_t* ptr = csr.row_ptr();
      AlignedVector<int64_t> row_ptr(ptr, ptr + csr.rows() + 1);
      AlignedVector<uint32_t> offsets(static_cast<size_t>(csr.nnz()));
      AlignedVector<float> values(static_cast<size_t>(csr.nnz()));
      std::vector<std::pair<uint32_t, float>> row;
      for (int64_t r = 0; r < csr.rows(); ++r) {
        row.clear();
        for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
          const int64_t k = csr.index_bits() == 16 ? csr.col_idx16()[e] : csr.col_idx32()[e];
          row.emplace_back(static_cast<uint32_t>(k / (kh * kw) * p->channel + tap[static_cast<size_t>(k % (kh * kw))]),
                           csr.values()[e]);
        }
        std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.first < b.first; });  // stride > 1
        for (size_t e = 0; e < row.size(); ++e) {
          offsets[static_cast<size_t>(ptr[r]) + e] = row[e].first;
          values[static_cast<size_t>(ptr[r]) + e] = row[e].second;
        }
      }
      p->weights.push_back(
          CsrMatrix::from_parts(csr.rows(), span, std::move(row_ptr), std::move(offsets), std::move(values)));
    }
    plan_ = p;
    return plan_;
  }

  /// Columns per kernel column block for direct convolution: whole channels, as many as keep the
  /// input a 32-lane tile reads (the union of each tap's 32 floats, `tap` holding their offsets in a
  /// channel) within kDirectWindowBytes of L1, in blocks of even size. Measured on ResNet-18 at 10%:
  /// 7-25% faster than one block on layers of 128-512 channels, whose windows overflow L1.
  int64_t column_block(std::vector<int64_t> tap, int64_t channel) const {
    constexpr int64_t kTile = 32;
    std::sort(tap.begin(), tap.end());
    int64_t window = 0, end = 0;
    for (int64_t o : tap) {
      window += std::max<int64_t>(0, o + kTile - std::max(o, end));
      end = std::max(end, o + kTile);
    }
    const int64_t fit = std::max<int64_t>(1, kDirectWindowBytes / 4 / window);
    return cg_ == 0 ? channel : ceil_div(cg_, ceil_div(cg_, fit)) * channel;
  }

  /// Channels [c0, c1) of one image group's phase planes (DirectPlan): dst[c · channel + (a · sw + b) ·
  /// plane + qi · wq + qj] = x[c, qi · sh + a − ph, qj · sw + b − pw], zero in the padding; phases no
  /// tap reads are skipped.
  void fill_planes(const DirectPlan& p, const float* x, float* dst, int64_t c0, int64_t c1) const {
    const int64_t sh = win_.stride[0], sw = win_.stride[1], plane = p.hq * p.wq;
    const TensorKernels& tk = tensor_kernels();
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(dst + c * p.channel + sh * sw * plane, dst + (c + 1) * p.channel, 0.0f);
      for (int64_t a = 0; a < sh; ++a)
        for (int64_t b = 0; b < sw; ++b) {
          if (!p.phase_used[static_cast<size_t>(a * sw + b)]) continue;
          int64_t i0, i1, j0, j1;  // the plane's rows and columns inside the image
          valid_run(a - win_.padding[0], sh, p.h, p.hq, i0, i1);
          valid_run(b - win_.padding[1], sw, p.w, p.wq, j0, j1);
          const float* first =
              i0 < i1 && j0 < j1 ? x + (c * p.h + i0 * sh + a - win_.padding[0]) * p.w + j0 * sw + b - win_.padding[1] : x;
          tk.copy_padded(first, sh * p.w, sw, dst + c * p.channel + (a * sw + b) * plane, p.hq, p.wq, i0, i1, j0, j1);
        }
    }
  }

  /// Direct convolution (DirectPlan), one item per (image, group): its phase planes, then the spmm
  /// over chunks of "wide" pixels, every phase-plane position (oh, qj) from (0, 0) to the last output
  /// pixel, qj ≥ OW included (they cost (wq − OW) / wq of the work and are dropped when stored). The
  /// kernels write each chunk channel-major (transposed output, kernel.hpp), bias and activation
  /// applied, so storing it is a copy of each channel's runs of real pixels.
  void run_direct(const DirectPlan& p, const Image& im, const float* x, const float* bias, const float* residual,
                  float* y, int64_t oh, int64_t ow, int threads, const RunContext& ctx) const {
    const int64_t pixels = oh * ow, wide = (oh - 1) * p.wq + ow, span = cg_ * p.channel;
    // yc (ocg × chunk floats) stays within 128 KiB of L2.
    const int64_t max_chunk = std::clamp<int64_t>(32 * 1024 / ocg_ / kBatchPad * kBatchPad, kBatchPad, 1024);
    auto run_item = [&](int64_t item, int inner) {
      const int64_t n = item / groups_, g = item % groups_;
      // Reads reach span + the chunk's lanes past a chunk's start (kernel.hpp's overlapping rows).
      float* planes = scratch(0, span + wide + kOverlapSlack);
      const float* xg = x + (n * im.c + g * cg_) * im.h * im.w;
      std::fill(planes + span, planes + span + wide + kOverlapSlack, 0.0f);
      const Weight& w = *p.weights[static_cast<size_t>(g)];
      float* yg = y + (n * groups_ + g) * ocg_ * pixels;
      // Threads of one item take whole chunks (no fork per chunk), about four each in 32-lane tiles,
      // when there are that many tiles; else they split each chunk's rows (7 × 7 outputs: 2 tiles).
      const bool split_chunks = inner > 1 && wide >= 4 * inner * 32;
      const int64_t chunk = split_chunks ? std::min(max_chunk, round_up(ceil_div(wide, 4 * inner), 32)) : max_chunk;
      const int64_t chunks = ceil_div(wide, chunk);
      auto run_chunk = [&](int64_t q0) {
        const int64_t count = std::min(chunk, wide - q0);
        float* yc = scratch(1, ocg_ * chunk);
        run_spmm_packed(kernel_for(w, count, ctx), w, planes + q0, 1, count, bias ? bias + g * ocg_ : nullptr, yc,
                        kernel_act(), split_chunks ? 1 : inner, {chunk, p.column_block});
        // The chunk's phase-plane rows hold output pixels in their first OW positions: at most a
        // partial row, whole rows, a partial row, each the same runs in every channel.
        struct Run {  // `rows` rows of n pixels, from yc + src (stride wq) to dst (stride OW)
          int64_t src, dst, rows, n;
        } runs[3];
        int n_runs = 0;
        for (int64_t q = q0, end = q0 + count; q < end;) {
          const int64_t r = q / p.wq, col = q % p.wq;
          if (col == 0 && end - q >= p.wq) {
            const int64_t rows = (end - q) / p.wq;
            runs[n_runs++] = {q - q0, r * ow, rows, ow};
            q += rows * p.wq;
          } else {
            const int64_t stop = std::min(end, q - col + p.wq);
            if (col < ow) runs[n_runs++] = {q - q0, r * ow + col, 1, std::min(stop - q, ow - col)};
            q = stop;
          }
        }
        const TensorKernels& tk = tensor_kernels();
        const Activation act = residual ? act_ : Activation::kNone;  // else the kernel applied it
        for (int64_t oc = 0; oc < ocg_; ++oc) {
          float* dst = yg + oc * pixels;
          const float* res = residual ? residual + (dst - y) : nullptr;
          for (int i = 0; i < n_runs; ++i) {
            const Run& u = runs[i];
            tk.store_rows(yc + oc * chunk + u.src, p.wq, res ? res + u.dst : nullptr, dst + u.dst, ow, u.rows, u.n,
                          act);
          }
        }
      };
      const int n_threads = static_cast<int>(std::min<int64_t>(inner, cg_));
      const auto fill = [&](int t) { fill_planes(p, xg, planes, cg_ * t / n_threads, cg_ * (t + 1) / n_threads); };
      ThreadPool::instance().run(n_threads, std::cref(fill));
      if (!split_chunks) {
        for (int64_t c = 0; c < chunks; ++c) run_chunk(c * chunk);
        return;
      }
      std::atomic<int64_t> next{0};
      const auto worker = [&](int) {
        for (int64_t c = next.fetch_add(1); c < chunks; c = next.fetch_add(1)) run_chunk(c * chunk);
      };
      ThreadPool::instance().run(inner, std::cref(worker));
    };
    for_items(im.n * groups_, threads, run_item);
  }

  Pair out_size(const Shape& x, const Image& im) const {
    return {conv_out(x, im.h, win_.kernel[0], win_.stride[0], win_.padding[0], win_.dilation[0], "height"),
            conv_out(x, im.w, win_.kernel[1], win_.stride[1], win_.padding[1], win_.dilation[1], "width")};
  }

  // Pixels per chunk: as many as keep the panel within kPanelFloats, 64 to 256, then evened out
  // over the chunks the image needs and rounded up to whole kBatchPad tiles.
  int64_t chunk_size(int64_t pixels) const {
    const int64_t target = std::clamp(kPanelFloats / std::max<int64_t>(padded_cols_, 1) / kBatchPad * kBatchPad,
                                      kMinChunk, kMaxChunk);
    if (pixels <= target) return std::max<int64_t>(pixels, 1);
    return round_up(ceil_div(pixels, ceil_div(pixels, target)), kBatchPad);
  }

  ConvWindow win_;
  int64_t groups_ = 1;
  int64_t cg_ = 0;   // input channels per group
  int64_t ocg_ = 0;  // output channels per group
  int64_t padded_cols_ = 0;
  bool pointwise_ = false;
  bool direct_ = false;  // every weight CSR and not pointwise: run_direct
  bool residual_ = false;  // the last input is added to the output before act
  Activation act_ = Activation::kNone;
  mutable std::mutex plan_mu_;
  mutable std::shared_ptr<const DirectPlan> plan_;  // for the last input size seen
};

// ---------------------------------------------------------------------------------------------
// depthwise_conv2d: output channel o reads input channel o / m (m = OC / C), direct loops along each
// output row so that the compiler vectorises over output columns.

class DepthwiseConv2d final : public NnOp {
 public:
  DepthwiseConv2d(const NodeDef& node, const Graph& graph) : NnOp(node) {
    check_count(node.inputs.size(), 2, 3, "x, weight [, bias]");
    expect_no_weights();
    const Pair one{1, 1}, zero{0, 0};
    win_ = {pair_attr("kernel", nullptr, 1), pair_attr("stride", &one, 1), pair_attr("padding", &zero, 0),
            pair_attr("dilation", &one, 1)};
    act_ = act_attr();
    // A constant weight is checked now, so a bad model fails when it is compiled.
    const size_t wi = static_cast<size_t>(node.inputs[1]);
    if (wi < graph.values().size() && graph.values()[wi].kind == ValueKind::kConstant) {
      check_weight({graph.values()[wi].dtype, graph.values()[wi].shape});
    }
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 2, 3, "x, weight [, bias]");
    const Image im = image(inputs[0]);
    check_weight(inputs[1]);
    const Shape& ws = inputs[1].shape;
    if (ws[0] % im.c != 0 || ws[0] == 0) {
      fail("input x has shape " + shape_string(inputs[0].shape) + " but the weight has shape " + shape_string(ws) +
           " (expected the weight's dim 0 to be a non-zero multiple of x's " + std::to_string(im.c) + " channels)");
    }
    if (inputs.size() == 3) check_bias(inputs[2], ws[0], ws);
    const Pair out = {conv_out(inputs[0].shape, im.h, win_.kernel[0], win_.stride[0], win_.padding[0],
                               win_.dilation[0], "height"),
                      conv_out(inputs[0].shape, im.w, win_.kernel[1], win_.stride[1], win_.padding[1],
                               win_.dilation[1], "width")};
    return {DType::kF32, im.shape_with(ws[0], out[0], out[1])};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const int64_t oc = inputs[1].shape[0], mult = oc / im.c;
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1];
    const int64_t kh = win_.kernel[0], kw = win_.kernel[1], sh = win_.stride[0], sw = win_.stride[1];
    const float* x = static_cast<const float*>(inputs[0].data);
    const float* wt = static_cast<const float*>(inputs[1].data);
    const float* bias = inputs.size() == 3 ? static_cast<const float*>(inputs[2].data) : nullptr;
    float* y = static_cast<float*>(out);
    const Activation act = act_;
    const ConvWindow win = win_;
    const int64_t h = im.h, w = im.w, c = im.c;

    for_planes(im.n * oc, im.n * oc * oh * ow * kh * kw, ctx.threads, [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t n = plane / oc, o = plane % oc;
        const float* xc = x + (n * c + o / mult) * h * w;
        const float* wk = wt + o * kh * kw;
        const float b = bias ? bias[o] : 0.0f;
        float* yp = y + plane * oh * ow;
        for (int64_t r = 0; r < oh; ++r) {
          float* __restrict__ yr = yp + r * ow;
          std::fill(yr, yr + ow, b);
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t ih = r * sh - win.padding[0] + i * win.dilation[0];
            if (ih < 0 || ih >= h) continue;
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t base = j * win.dilation[1] - win.padding[1];
              int64_t lo, hi;
              valid_run(base, sw, w, ow, lo, hi);
              const float wv = wk[i * kw + j];
              const float* __restrict__ xr = xc + ih * w + (base + lo * sw);
              float* __restrict__ yo = yr + lo;
              if (sw == 1) {
                for (int64_t t = 0; t < hi - lo; ++t) yo[t] += wv * xr[t];
              } else {
                for (int64_t t = 0; t < hi - lo; ++t) yo[t] += wv * xr[t * sw];
              }
            }
          }
          if (act != Activation::kNone) {
            for (int64_t t = 0; t < ow; ++t) yr[t] = activate(yr[t], act);
          }
        }
      }
    });
  }

 private:
  void check_weight(const TensorDesc& wd) const {
    expect_f32(wd, "weight");
    const Shape& s = wd.shape;
    if (s.size() != 4 || s[1] != 1 || s[2] != win_.kernel[0] || s[3] != win_.kernel[1]) {
      fail("input weight has shape " + shape_string(s) + " (expected (C·m, 1, " + std::to_string(win_.kernel[0]) +
           ", " + std::to_string(win_.kernel[1]) + ") for kernel " + pair_string(win_.kernel) + ")");
    }
  }

  ConvWindow win_;
  Activation act_ = Activation::kNone;
};

// ---------------------------------------------------------------------------------------------
// Pooling: direct loops over (n, c) planes, vectorised along output rows.

class MaxPool2d final : public NnOp {
 public:
  explicit MaxPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    const Pair one{1, 1}, zero{0, 0};
    win_.kernel = pair_attr("kernel", nullptr, 1);
    win_.stride = stride_or_kernel(win_.kernel);
    win_.padding = pair_attr("padding", &zero, 0);
    win_.dilation = pair_attr("dilation", &one, 1);
    ceil_mode_ = bool_attr("ceil_mode", false);
    check_pool_padding(win_.kernel, win_.padding);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    return {DType::kF32, im.shape_with(im.c, out_dim(inputs[0].shape, im.h, 0), out_dim(inputs[0].shape, im.w, 1))};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const ConvWindow win = win_;
    const int64_t h = im.h, w = im.w, sw = win.stride[1];
    const int64_t planes = im.n * im.c;
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);

    // Separable: each input row's maxima over the window's columns first (`rows`, one per input row,
    // computed when an output row first needs it), then each output row's over its window's rows.
    // Overlapping windows (stride < kernel) share the first pass: 3 × 3 stride 2 reads each input row
    // once per column tap instead of 1.5 times. Both passes keep PyTorch's window order, so the first
    // of equal maxima (−0 before +0) and any NaN win as they do there.
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    for_planes(planes, planes * oh * ow * win.kernel[0] * win.kernel[1], ctx.threads, [&](int64_t begin, int64_t end) {
      float* rows = scratch(2, h * ow);
      std::vector<int64_t> done(static_cast<size_t>(h));
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xc = x + plane * h * w;
        std::fill(done.begin(), done.end(), -1);
        for (int64_t r = 0; r < oh; ++r) {
          float* yr = y + (plane * oh + r) * ow;
          // -inf is the padding: a window wholly in the padding stays -inf, as in PyTorch.
          std::fill(yr, yr + ow, kNegInf);
          for (int64_t i = 0; i < win.kernel[0]; ++i) {
            const int64_t ih = r * win.stride[0] - win.padding[0] + i * win.dilation[0];
            if (ih < 0 || ih >= h) continue;
            float* row = rows + ih * ow;
            if (done[static_cast<size_t>(ih)] != plane) {
              done[static_cast<size_t>(ih)] = plane;
              std::fill(row, row + ow, kNegInf);
              for (int64_t j = 0; j < win.kernel[1]; ++j) {
                const int64_t base = j * win.dilation[1] - win.padding[1];
                int64_t lo, hi;
                valid_run(base, sw, w, ow, lo, hi);
                tk.max_into(xc + ih * w + (base + lo * sw), sw, row + lo, hi - lo);
              }
            }
            tk.max_into(row, 1, yr, ow);
          }
        }
      }
    });
  }

 private:
  Pair stride_or_kernel(const Pair& kernel) const {
    // PyTorch's default stride is the kernel; an empty list means the same.
    if (node_.attrs.has("stride") && node_.attrs.int_list("stride", where()).empty()) return kernel;
    return pair_attr("stride", &kernel, 1);
  }
  int64_t out_dim(const Shape& x, int64_t in, int d) const {
    return pool_out(x, in, win_.kernel[d], win_.stride[d], win_.padding[d], win_.dilation[d], ceil_mode_,
                    d == 0 ? "height" : "width");
  }

  ConvWindow win_;
  bool ceil_mode_ = false;
};

class AvgPool2d final : public NnOp {
 public:
  explicit AvgPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    const Pair zero{0, 0};
    kernel_ = pair_attr("kernel", nullptr, 1);
    if (node_.attrs.has("stride") && node_.attrs.int_list("stride", where()).empty()) stride_ = kernel_;
    else stride_ = pair_attr("stride", &kernel_, 1);
    padding_ = pair_attr("padding", &zero, 0);
    ceil_mode_ = bool_attr("ceil_mode", false);
    count_include_pad_ = bool_attr("count_include_pad", true);
    divisor_ = int_attr("divisor", 0, 0, std::numeric_limits<int64_t>::max(), "≥ 0; 0 = the window size");
    check_pool_padding(kernel_, padding_);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    const Shape& s = inputs[0].shape;
    return {DType::kF32,
            im.shape_with(im.c, pool_out(s, im.h, kernel_[0], stride_[0], padding_[0], 1, ceil_mode_, "height"),
                          pool_out(s, im.w, kernel_[1], stride_[1], padding_[1], 1, ceil_mode_, "width"))};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const int64_t h = im.h, w = im.w, kh = kernel_[0], kw = kernel_[1], sh = stride_[0], sw = stride_[1];
    const int64_t ph = padding_[0], pw = padding_[1];
    const int64_t planes = im.n * im.c;
    const bool include = count_include_pad_;
    const int64_t divisor = divisor_;
    // Column sums of the window's rows, laid out with pw zeros before the input columns and zeros
    // after, long enough for the last window: out[t] sums sums[t·sw + j] for j < kw.
    const int64_t span = std::max((ow - 1) * sw + kw, pw + w);

    for_planes(planes, planes * (oh * ow * kw + oh * kh * w), ctx.threads, [&](int64_t begin, int64_t end) {
      float* sums = scratch(0, span);
      float* acc = scratch(1, ow);
      // Per output column: the window's size including padding (clipped at W + pw, as PyTorch) and
      // its count of real inputs. A window without real inputs sums to exactly 0, and PyTorch gives
      // 0 there: a count of 1 keeps 0 / 0 away and the division loops free of branches.
      float* cols_pad = scratch(2, 2 * ow);
      float* cols_real = cols_pad + ow;
      for (int64_t t = 0; t < ow; ++t) {
        const int64_t start = t * sw - pw, stop = std::min(start + kw, w + pw);
        cols_pad[t] = static_cast<float>(stop - start);
        cols_real[t] = static_cast<float>(std::max<int64_t>(1, std::min(stop, w) - std::max<int64_t>(start, 0)));
      }
      std::fill(sums, sums + span, 0.0f);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xc = x + plane * h * w;
        for (int64_t r = 0; r < oh; ++r) {
          float* __restrict__ yr = y + (plane * oh + r) * ow;
          const int64_t start = r * sh - ph, stop = std::min(start + kh, h + ph);
          const int64_t rows_pad = stop - start;
          const int64_t h0 = std::max<int64_t>(start, 0), h1 = std::min(stop, h);
          if (h0 >= h1) {
            std::fill(yr, yr + ow, 0.0f);
            continue;
          }
          float* __restrict__ s = sums + pw;
          std::copy(xc + h0 * w, xc + h0 * w + w, s);
          for (int64_t ih = h0 + 1; ih < h1; ++ih) {
            const float* __restrict__ xr = xc + ih * w;
            for (int64_t t = 0; t < w; ++t) s[t] += xr[t];
          }
          std::fill(acc, acc + ow, 0.0f);
          for (int64_t j = 0; j < kw; ++j) {
            const float* __restrict__ sj = sums + j;
            if (sw == 1) {
              for (int64_t t = 0; t < ow; ++t) acc[t] += sj[t];
            } else {
              for (int64_t t = 0; t < ow; ++t) acc[t] += sj[t * sw];
            }
          }
          if (divisor != 0) {
            const float d = static_cast<float>(divisor);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / d;
          } else if (include) {
            const float rp = static_cast<float>(rows_pad);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / (rp * cols_pad[t]);
          } else {
            const float rr = static_cast<float>(h1 - h0);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / (rr * cols_real[t]);
          }
        }
      }
    });
  }

 private:
  Pair kernel_, stride_, padding_;
  bool ceil_mode_ = false;
  bool count_include_pad_ = true;
  int64_t divisor_ = 0;
};

class AdaptiveAvgPool2d final : public NnOp {
 public:
  explicit AdaptiveAvgPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    out_ = pair_attr("output_size", nullptr, 1);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    return {DType::kF32, im.shape_with(im.c, out_[0], out_[1])};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out, const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const int64_t h = im.h, w = im.w, oh = out_[0], ow = out_[1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const int64_t planes = im.n * im.c;
    // PyTorch's windows: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉), overlapping when out does not divide in.
    auto start = [](int64_t i, int64_t in, int64_t n) { return i * in / n; };
    auto stop = [](int64_t i, int64_t in, int64_t n) { return ((i + 1) * in + n - 1) / n; };

    for_planes(planes, planes * (h * w + oh * w), ctx.threads, [&](int64_t begin, int64_t end) {
      float* sums = scratch(0, w);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xc = x + plane * h * w;
        for (int64_t r = 0; r < oh; ++r) {
          const int64_t h0 = start(r, h, oh), h1 = stop(r, h, oh);
          float* __restrict__ s = sums;
          std::copy(xc + h0 * w, xc + h0 * w + w, s);
          for (int64_t ih = h0 + 1; ih < h1; ++ih) {
            const float* __restrict__ xr = xc + ih * w;
            for (int64_t t = 0; t < w; ++t) s[t] += xr[t];
          }
          float* yr = y + (plane * oh + r) * ow;
          for (int64_t t = 0; t < ow; ++t) {
            const int64_t w0 = start(t, w, ow), w1 = stop(t, w, ow);
            float acc = 0.0f;
            for (int64_t iw = w0; iw < w1; ++iw) acc += s[iw];
            yr[t] = acc / static_cast<float>((h1 - h0) * (w1 - w0));
          }
        }
      }
    });
  }

 private:
  Pair out_;
};

}  // namespace

std::unique_ptr<Op> make_linear(const NodeDef& node, const Graph&) { return std::make_unique<Linear>(node); }
std::unique_ptr<Op> make_conv2d(const NodeDef& node, const Graph&) { return std::make_unique<Conv2d>(node); }
std::unique_ptr<Op> make_depthwise_conv2d(const NodeDef& node, const Graph& graph) {
  return std::make_unique<DepthwiseConv2d>(node, graph);
}
std::unique_ptr<Op> make_max_pool2d(const NodeDef& node, const Graph&) { return std::make_unique<MaxPool2d>(node); }
std::unique_ptr<Op> make_avg_pool2d(const NodeDef& node, const Graph&) { return std::make_unique<AvgPool2d>(node); }
std::unique_ptr<Op> make_adaptive_avg_pool2d(const NodeDef& node, const Graph&) {
  return std::make_unique<AdaptiveAvgPool2d>(node);
}

}  // namespace sparsert
