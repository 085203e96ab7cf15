// The "ops_conv.cpp" section of ops.def: conv2d, with packed weights (dense and N:M: TensorKernels'
// conv_gemm written channel-major, reading the image in place for 1×1 or its phase planes; CSR: direct
// over phase planes; the other formats: im2col, then the spmm kernels), and depthwise_conv2d on the
// TensorKernels' vector loops. Attribute rules, output shapes and values follow PyTorch
// (torch.nn.functional.conv2d); images are NCHW, or CHW unbatched.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graph/ops.hpp"
#include "graph/ops_nn_util.hpp"
#include "kernels/tensor_kernels.hpp"
#include "runtime/run_spmm.hpp"
#include "sparsert/csr.hpp"
#include "sparsert/dense.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {
namespace {

using nn_ops::ceil_div;
using nn_ops::ConvWindow;
using nn_ops::for_planes;
using nn_ops::Image;
using nn_ops::kernel_for;
using nn_ops::kMinWorkPerThread;
using nn_ops::NnOp;
using nn_ops::Pair;
using nn_ops::pair_string;
using nn_ops::round_up;
using nn_ops::scratch;
using nn_ops::valid_run;

// conv2d packs at most this many floats of im2col panel per chunk of output pixels (512 KiB), so the
// panel stays in L2 while every weight row sweeps it; chunks hold 64 to 256 pixels.
constexpr int64_t kPanelFloats = 128 * 1024;
constexpr int64_t kMinChunk = 64;
constexpr int64_t kMaxChunk = 256;
// Dense and N:M weights run conv_gemm (TensorKernels: NCHW written directly, no transpose) from this many
// output pixels; fewer (a pooled 1 × 1 image) take the spmm kernels, whose batch-1 kernel reads a
// single pixel's channels as one vector.
constexpr int64_t kMinPixelRows = 16;
// Winograd's 36 transformed inputs and products of a block of tiles stay within this many floats
// (4 MiB; blocks of 1 MiB ran 64 channels at 56² 15% slower, in products of 48 tiles, and of 16 MiB
// 8%); blocks hold at least 16 tiles.
constexpr int64_t kWinogradBlockFloats = 1024 * 1024;
// Winograd takes a product whose transformed weight (36 · in · out floats, 4× the weight) is at
// most this many floats per output tile of the call: 7 × 7 outputs of ResNet-18's 512-channel layers
// (4 tiles an image) would stream 38 MB for 4 tiles.
constexpr int64_t kWinogradWeightFloatsPerTile = 1024 * 1024;
// Direct convolution's column blocks keep this much of the input in L1 (16 KiB: up to 5% slower on
// ResNet-18's layers, 32 KiB: up to 10%).
constexpr int64_t kDirectWindowBytes = 24 * 1024;
// N:M 1 × 1 convolutions take conv_gemm's lockstep panels from this many output pixels, the spmm
// kernels below it: MobileNetV2-style 2:4, all N:M (Model.profile minima, two processes each), at 56²
// and 28² the panels ran 24 → 96 at 56² 110-116 µs against 158-159, 40 → 240 at 28² 97-115 against
// 129-130; at 14² and 7² slower, 112 → 672 244-253 against 223-224, 160 → 960 at 7² 178-204 against 139.
constexpr int64_t kMinPointwiseNmPixels = 512;

// ---------------------------------------------------------------------------------------------
// conv2d: per group, one spmm per chunk of output pixels. CSR weights read the image directly
// (DirectPlan) and the kernels write the chunk channel-major; the other formats read an im2col panel
// in the kernels' packed input (kernels/kernel.hpp), or a 1 × 1 convolution's image in place, and
// their result goes to the NCHW output's channel rows (run_spmm_packed's transposed output).

/// One panel row of im2col: dst[b] = xc[oh·sh − ph + i·dh, ow·sw − pw + j·dw] for the output pixels
/// (oh, ow) = p0 + b, b < count, of one channel `xc`; zero in the padding. The pixels cross output
/// rows, one segment each; segments are short on small images (7 pixels on 7 × 7), so they are copied
/// by plain loops, not library calls, and found without a division at stride 1.
void copy_tap_rows(const float* xc, int64_t h, int64_t w, const ConvWindow& win, int64_t ow_count, int64_t p0,
                   int64_t count, int64_t i, int64_t j, float* dst) {
  const int64_t sh = win.stride[0], sw = win.stride[1];
  const int64_t col_off = j * win.dilation[1] - win.padding[1];
  int64_t oh = p0 / ow_count, ow0 = p0 % ow_count;
  for (int64_t b = 0; b < count; ++oh, ow0 = 0) {
    const int64_t n = std::min(count - b, ow_count - ow0);
    const int64_t ih = oh * sh - win.padding[0] + i * win.dilation[0];
    float* seg = dst + b;
    b += n;
    if (ih < 0 || ih >= h) {
      for (int64_t t = 0; t < n; ++t) seg[t] = 0.0f;
      continue;
    }
    const int64_t base = ow0 * sw + col_off;  // input column of the segment's first pixel
    int64_t lo, hi;
    if (sw == 1) {
      lo = std::clamp<int64_t>(-base, 0, n);
      hi = std::clamp<int64_t>(w - base, lo, n);
    } else {
      valid_run(base, sw, w, n, lo, hi);
    }
    const float* src = xc + ih * w + (base + lo * sw);  // input of pixel lo, inside the row
    for (int64_t t = 0; t < lo; ++t) seg[t] = 0.0f;
    if (sw == 1) {
      for (int64_t t = 0; t < hi - lo; ++t) seg[lo + t] = src[t];
    } else {
      for (int64_t t = 0; t < hi - lo; ++t) seg[lo + t] = src[t * sw];
    }
    for (int64_t t = hi; t < n; ++t) seg[t] = 0.0f;
  }
}

/// Rows [k0, k1) of the packed panel for output pixels [p0, p0 + count) of one image and group:
/// panel[k · ldx + b] = x[c, oh·sh − ph + i·dh, ow·sw − pw + j·dw] with k = (c, i, j) and (oh, ow) the
/// pixel p0 + b; zero where that lies in the padding, for lanes b ≥ count, and for rows k ≥ cols.
void im2col(const float* x, int64_t h, int64_t w, const ConvWindow& win, int64_t ow_count, int64_t p0, int64_t count,
            int64_t cols, int64_t ldx, float* panel, int64_t k0, int64_t k1) {
  const int64_t kh = win.kernel[0], kw = win.kernel[1];
  const int64_t sh = win.stride[0], sw = win.stride[1];
  // 1×1, stride 1, unpadded: a channel's pixels [p0, p0 + count) are one contiguous run.
  const bool contiguous = kh * kw == 1 && sh == 1 && sw == 1 && win.padding == Pair{0, 0};
  // Row k's tap (c, i, j) is stepped along with k: a division per row costs more than a short row's copy.
  int64_t c = k0 / (kh * kw), i = k0 / kw % kh, j = k0 % kw;
  for (int64_t k = k0; k < std::min(k1, cols); ++k) {
    float* dst = panel + k * ldx;
    const float* xc = x + c * h * w;
    if (contiguous) {
      std::copy(xc + p0, xc + p0 + count, dst);
    } else {
      copy_tap_rows(xc, h, w, win, ow_count, p0, count, i, j, dst);
    }
    std::fill(dst + count, dst + ldx, 0.0f);
    if (++j == kw) {
      j = 0;
      if (++i == kh) {
        i = 0;
        ++c;
      }
    }
  }
  for (int64_t k = std::max(k0, cols); k < k1; ++k) std::fill(panel + k * ldx, panel + (k + 1) * ldx, 0.0f);
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

/// N:M weights as conv_gemm's lockstep panels (ConvPanels): every row holds n values per group of m
/// columns, so a panel's rows step through their values together. Each entry's `at` is
/// input_row(column); entries past the weight's columns (its last group's padding) are zeros at
/// input_row(0).
struct NmPanels {
  AlignedVector<ConvEntry> entries;
  int64_t steps = 0, cols = 0;

  template <class InputRow>
  NmPanels(const NmMatrix& w, InputRow&& input_row) : steps(w.groups() * w.n()), cols(w.cols()) {
    constexpr int64_t kPanel = DenseMatrix::kPanelRows;
    const ConvEntry zero{0.0f, input_row(0)};
    entries.assign(static_cast<size_t>((w.rows() + kPanel - 1) / kPanel * kPanel * steps), zero);
    for (int64_t r = 0; r < w.rows(); ++r)
      for (int64_t g = 0; g < w.groups(); ++g)
        for (int i = 0; i < w.n(); ++i) {
          const int64_t k = g * w.m() + w.position(r, g, i);
          if (k >= cols) continue;
          entries[static_cast<size_t>((r / kPanel * steps + g * w.n() + i) * kPanel + r % kPanel)] = {
              w.values()[(r * w.groups() + g) * w.n() + i], input_row(k)};
        }
  }
  ConvPanels view() const { return {nullptr, entries.data(), steps, cols}; }
};

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
  std::vector<std::shared_ptr<const CsrMatrix>> weights;  // per group (CSR weights)
  std::vector<int64_t> offsets;  // dense weights: column k's offset in the phase planes (conv_gemm's x rows)
  // N:M weights read aligned copies of the phase planes instead, one per column shift ⌊j·dw / sw⌋ of
  // the taps, rows wq_aligned floats (a multiple of 16), so that each tap's input row of a pixel tile
  // starts on a 64-byte line: a sparse step loads its input once per FMA, and a load across two lines
  // costs two (the tile's loop alone: 5.8 FMA instructions per ns aligned, 2.7-3.4 misaligned). Where rounding rows up to 16
  // floats would waste over a quarter of the lanes (7 × 7 outputs: 16 for 7), nm_aligned is false
  // and the N:M weights read im2col panels instead (entries at their columns).
  bool nm_aligned = false;
  int64_t wq_aligned = 0, channel_aligned = 0, copy_floats = 0;
  std::vector<int64_t> shifts;          // the distinct column shifts, one copy each
  std::vector<char> copy_phase_used;    // shifts · stride_h · stride_w flags: the phases some tap reads in a copy
  std::vector<NmPanels> nm_panels;      // per group (N:M weights)
};

/// Winograd F(4×4, 3×3) for one input size (kernels/tensor_kernels.hpp): output tiles of `images`
/// images, image-major, each image's row by row; and the layout of the image they read, pixel-major
/// in blocks of 16 channels, zero-padded to whole tiles (hp × wp pixels a block, image_floats an image).
struct WinogradPlan {
  int64_t h = 0, w = 0, images = 0;
  int64_t th = 0, tw = 0, hp = 0, wp = 0, blocks = 0, block_stride = 0, image_floats = 0;
  std::vector<WinogradTile> tiles;
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
    dense_ = true;
    nm_ = true;
    winograd_ = groups_ == 1 && win_.kernel == Pair{3, 3} && win_.stride == one && win_.dilation == one;
    for (const auto& w : node.weights) {
      direct_ = direct_ && w->format() == Format::kCsr;
      dense_ = dense_ && w->format() == Format::kDense;
      nm_ = nm_ && w->format() == Format::kNM && w->cols() <= std::numeric_limits<int32_t>::max();
    }
    winograd_ = winograd_ && dense_;
    if (nm_ && pointwise_) {
      for (const auto& w : node.weights)
        pointwise_panels_.emplace_back(static_cast<const NmMatrix&>(*w), [](int64_t k) { return static_cast<int32_t>(k); });
    }
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
    if (use_winograd(im.n, oh, ow)) return run_winograd(im, x, bias, residual, y, oh, ow, threads, ctx);
    if (pixel_rows(pixels, im)) return run_dense(im, x, bias, residual, y, oh, ow, threads, ctx);
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
      // Straight into the output's channel rows (a transposed output: the row-sparse kernels store it
      // themselves, where a store through a pixel-major scratch cost a second transpose).
      float* yg = y + (n * oc + g * ocg_) * pixels + p0;
      run_spmm_packed(kernel_for(w, count, ctx), w, packed, ldx, count, bias ? bias + g * ocg_ : nullptr, yg,
                      kernel_act(), inner, {pixels});
      if (residual != nullptr) {
        tensor_kernels().store_rows(yg, pixels, residual + (yg - y), yg, pixels, ocg_, count, act_);
      }
    };
    for_items(im.n * groups_ * chunks, threads, run_item);
  }

  // Winograd's products want 16 tiles: as many images as make use_winograd hold, when a few do.
  int64_t min_items(const std::vector<TensorDesc>& item_inputs) const override {
    if (!winograd_ || item_inputs.empty()) return 1;
    const Image im = image(item_inputs[0]);
    const Pair out = out_size(item_inputs[0].shape, im);
    for (int64_t n = 1; n <= kWinogradBlock; n *= 2)
      if (use_winograd(n, out[0], out[1])) return n;
    return 1;
  }

  std::string kernel_name(const std::vector<TensorDesc>& inputs, const RunContext& ctx) const override {
    int64_t count = 1;
    if (!inputs.empty()) {
      const Image im = image(inputs[0]);
      const Pair out = out_size(inputs[0].shape, im);
      if (use_winograd(im.n, out[0], out[1])) return std::string(tensor_kernels(ctx.reference_kernels).name) + ".winograd";
      if (pixel_rows(out[0] * out[1], im)) {
        return std::string(tensor_kernels(ctx.reference_kernels).name) + (dense_ ? ".conv_gemm" : ".conv_gemm_nm");
      }
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
  // Whether run_dense takes an output of this many pixels (kMinPixelRows): N:M weights of a
  // DirectPlan's (aligned plane copies or im2col panels), or of a 1×1 convolution from
  // kMinPointwiseNmPixels on (the image's channels as rows: on fewer pixels, the spmm kernels are
  // faster); else im2col and spmm.
  bool pixel_rows(int64_t pixels, const Image& im) const {
    if (pixels < kMinPixelRows) return false;
    if (dense_) return true;
    if (!nm_) return false;
    if (pointwise_) return pixels >= kMinPointwiseNmPixels;
    const auto plan = direct_plan(im.h, im.w);
    return plan != nullptr && !plan->nm_panels.empty();
  }
  // Group g's dense weight as conv_gemm reads it.
  ConvPanels dense_panels(int64_t g) const {
    const auto& w = static_cast<const DenseMatrix&>(*node_.weights[static_cast<size_t>(g)]);
    return {w.panels(), nullptr, w.cols(), w.cols()};
  }
  // With a residual the kernels add the bias only; the residual and act follow in one pass.
  Activation kernel_act() const { return residual_ ? Activation::kNone : act_; }

  /// Dense and N:M weights: conv_gemm on the image itself (1×1, stride 1, unpadded: a group's channels are
  /// rows H·W apart; one item per image, group and thread's share of the pixels) or, one item per
  /// (image, group), on its phase planes (DirectPlan) as wide pixels, every tap a row at a fixed
  /// offset: no im2col panel, and the product writes each channel's output pixels with bias,
  /// residual and activation applied. Phase planes too large for the plan (32-bit offsets) take
  /// im2col panels, one item per chunk of pixels.
  void run_dense(const Image& im, const float* x, const float* bias, const float* residual, float* y, int64_t oh,
                 int64_t ow, int threads, const RunContext& ctx) const {
    const int64_t pixels = oh * ow, oc = groups_ * ocg_;
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);
    constexpr int64_t kPanel = DenseMatrix::kPanelRows;
    // The product of w over pixels [p0, p1) of `a`, its rows split among `inner` threads by panels.
    const auto product = [&](const ConvPanels& w, ConvGemmArgs a, int inner) {
      const int64_t panel_count = ceil_div(ocg_, kPanel);
      const int parts = static_cast<int>(std::min<int64_t>(inner, panel_count));
      const auto part = [&](int t) {
        const int64_t r0 = panel_count * t / parts * kPanel, r1 = std::min(ocg_, panel_count * (t + 1) / parts * kPanel);
        if (r1 <= r0) return;
        ConvGemmArgs b = a;
        b.bias = a.bias ? a.bias + r0 : nullptr;
        b.res = a.res ? a.res + r0 * a.ldy : nullptr;
        b.y = a.y + r0 * a.ldy;
        b.scratch = scratch(1, conv_gemm_scratch_floats(r1 - r0));
        ConvPanels wr = w;  // from row r0 on
        if (wr.values != nullptr) wr.values += r0 * w.steps;
        if (wr.entries != nullptr) wr.entries += r0 * w.steps;
        tk.conv_gemm(wr, r1 - r0, b);
      };
      if (parts <= 1) part(0);
      else ThreadPool::instance().run(parts, std::cref(part));
    };
    const auto args = [&](int64_t n, int64_t g, const float* xs, int64_t ldx, const int64_t* offsets, int64_t p0,
                          int64_t p1, int64_t wide_cols) {
      const int64_t first = (n * oc + g * ocg_) * pixels;  // the group's output channel 0
      return ConvGemmArgs{xs, ldx, offsets, p0, p1, wide_cols, ow, bias ? bias + g * ocg_ : nullptr,
                          residual ? residual + first : nullptr, y + first, pixels, act_, nullptr};
    };
    if (pointwise_) {
      const int64_t chunk = round_up(ceil_div(pixels, threads), kBatchPad), chunks = ceil_div(pixels, chunk);
      for_items(im.n * groups_ * chunks, threads, [&](int64_t item, int inner) {
        const int64_t n = item / (groups_ * chunks), g = item / chunks % groups_, p0 = item % chunks * chunk;
        const float* xg = x + (n * im.c + g * cg_) * im.h * im.w;
        product(nm_ ? pointwise_panels_[static_cast<size_t>(g)].view() : dense_panels(g),
                args(n, g, xg, im.h * im.w, nullptr, p0, std::min(pixels, p0 + chunk), 0), inner);
      });
      return;
    }
    const auto plan = direct_plan(im.h, im.w);
    if (plan == nullptr || (nm_ && !plan->nm_aligned)) {
      const int64_t chunk = chunk_size(pixels), chunks = ceil_div(pixels, chunk);
      for_items(im.n * groups_ * chunks, threads, [&](int64_t item, int inner) {
        const int64_t n = item / (groups_ * chunks), g = item / chunks % groups_, p0 = item % chunks * chunk;
        const int64_t count = std::min(chunk, pixels - p0);
        const int64_t k = cg_ * win_.kernel[0] * win_.kernel[1], ldx = packed_ldx(count);
        const float* xg = x + (n * im.c + g * cg_) * im.h * im.w;
        float* panel = scratch(0, k * ldx);
        const int n_im2col = static_cast<int>(std::min<int64_t>(inner, k));
        const auto fill = [&](int t) {
          im2col(xg, im.h, im.w, win_, ow, p0, count, k, ldx, panel, k * t / n_im2col, k * (t + 1) / n_im2col);
        };
        if (n_im2col <= 1) fill(0);
        else ThreadPool::instance().run(n_im2col, std::cref(fill));
        ConvGemmArgs a = args(n, g, panel, ldx, nullptr, 0, count, 0);
        a.y += p0;
        if (a.res != nullptr) a.res += p0;
        product(nm_ ? plan->nm_panels[static_cast<size_t>(g)].view() : dense_panels(g), a, inner);
      });
      return;
    }
    const DirectPlan& p = *plan;
    const int64_t wq = nm_ ? p.wq_aligned : p.wq, wide = (oh - 1) * wq + ow;
    const int64_t span = nm_ ? static_cast<int64_t>(p.shifts.size()) * p.copy_floats : cg_ * p.channel;
    for_items(im.n * groups_, threads, [&](int64_t item, int inner) {
      const int64_t n = item / groups_, g = item % groups_;
      // Wide pixels read up to span + wide: the tail past the last channel's planes is zero.
      float* planes = scratch(0, span + wide + kOverlapSlack);
      std::fill(planes + span, planes + span + wide + kOverlapSlack, 0.0f);
      const float* xg = x + (n * im.c + g * cg_) * im.h * im.w;
      const int n_fill = static_cast<int>(std::min<int64_t>(inner, cg_));
      const auto fill = [&](int t) {
        if (nm_) fill_aligned(p, xg, planes, cg_ * t / n_fill, cg_ * (t + 1) / n_fill);
        else fill_planes(p, xg, planes, cg_ * t / n_fill, cg_ * (t + 1) / n_fill);
      };
      ThreadPool::instance().run(n_fill, std::cref(fill));
      // N:M entries hold their input rows' offsets (ldx 1); dense columns look theirs up.
      const ConvPanels w = nm_ ? p.nm_panels[static_cast<size_t>(g)].view() : dense_panels(g);
      const int64_t ldx = nm_ ? 1 : 0;
      const int64_t* offsets = nm_ ? nullptr : p.offsets.data();
      // Threads of one item take shares of the wide pixels (multiples of 48: whole dense tiles on every
      // ISA, and starts on 64-byte lines),
      // or, where whole tiles split them unevenly, shares of the weight's rows: 7² has 61 wide pixels,
      // 48 + 13 (2 threads: 1.2x one thread's speed on ResNet-18's 512-channel layers), and its
      // weight is the larger operand anyway.
      const int64_t share = round_up(ceil_div(wide, inner), 48);
      const int parts = static_cast<int>(ceil_div(wide, share));
      const int64_t panels = ceil_div(ocg_, kPanel);
      const double pixels_max = static_cast<double>(std::min(share, wide)) / static_cast<double>(wide);
      const double rows_max = static_cast<double>(ceil_div(panels, inner)) / static_cast<double>(panels);
      if (inner > 1 && rows_max + 0.05 < pixels_max) {
        product(w, args(n, g, planes, ldx, offsets, 0, wide, wq), inner);
        return;
      }
      const auto part = [&](int t) {
        product(w, args(n, g, planes, ldx, offsets, t * share, std::min(wide, (t + 1) * share), wq), 1);
      };
      if (parts <= 1) part(0);
      else ThreadPool::instance().run(parts, std::cref(part));
    });
  }

  // Whether a product of n images of oh × ow outputs takes Winograd (kWinogradWeightFloatsPerTile).
  bool use_winograd(int64_t n, int64_t oh, int64_t ow) const {
    if (!winograd_) return false;
    const int64_t tiles = n * ceil_div(oh, kWinogradTile) * ceil_div(ow, kWinogradTile);
    return tiles >= kWinogradBlock && kWinogradAlpha * kWinogradAlpha * cg_ * ocg_ <= kWinogradWeightFloatsPerTile * tiles;
  }

  /// Winograd F(4×4, 3×3) (dense weight, one group, 3 × 3, stride 1): the images copied pixel-major in
  /// blocks of 16 channels, zero-padded; then per block of tiles (one item each): the input transform,
  /// 36 conv_gemm products (vectors along tiles) with the transformed weight, and the output transform
  /// writing NCHW with bias and activation (a residual follows in one pass over the output).
  void run_winograd(const Image& im, const float* x, const float* bias, const float* residual, float* y, int64_t oh,
                    int64_t ow, int threads, const RunContext& ctx) const {
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);
    const auto plan = winograd_plan(im.h, im.w, im.n);
    const WinogradPlan& p = *plan;
    const auto& weights = winograd_weights();
    const int64_t pixels = oh * ow, tiles = im.n * p.th * p.tw, rows_in = p.blocks * kWinogradBlock;
    constexpr int64_t kXi = kWinogradAlpha * kWinogradAlpha;
    float* image = scratch(0, im.n * p.image_floats);
    for_planes(im.n * p.blocks, im.n * p.image_floats, threads, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) fill_winograd_block(p, x, i / p.blocks, i % p.blocks, image, tk);
    });
    // Tile blocks: within kWinogradBlockFloats, evened out, whole 16-tile groups.
    const int64_t per_tile = kXi * (rows_in + round_up(ocg_, DenseMatrix::kPanelRows));
    const int64_t most = std::max<int64_t>(kWinogradBlock, kWinogradBlockFloats / per_tile / kWinogradBlock * kWinogradBlock);
    const int64_t n_blocks = ceil_div(tiles, most), block = round_up(ceil_div(tiles, n_blocks), kWinogradBlock);
    const int64_t ld = block;
    const Activation out_act = residual != nullptr ? Activation::kNone : act_;
    for_items(n_blocks, threads, [&](int64_t item, int inner) {
      const int64_t t0 = item * block, count = std::min(block, tiles - t0);
      float* v = scratch(2, kXi * (rows_in + ocg_) * ld);
      float* m = v + kXi * rows_in * ld;
      const auto split = [&](int64_t total, const auto& body) {  // body(begin, end) over shares of [0, total)
        const int parts = static_cast<int>(std::min<int64_t>(inner, total));
        const auto part = [&](int t) { body(total * t / parts, total * (t + 1) / parts); };
        if (parts <= 1) part(0);
        else ThreadPool::instance().run(parts, std::cref(part));
      };
      split(p.blocks, [&](int64_t b0, int64_t b1) {
        tk.winograd_input({image + b0 * p.block_stride, p.wp, p.block_stride, b1 - b0, p.tiles.data() + t0, count,
                           v + b0 * kWinogradBlock * ld, ld, rows_in * ld});
      });
      split(kXi, [&](int64_t x0, int64_t x1) {
        float* gemm_scratch = scratch(1, conv_gemm_scratch_floats(ocg_));
        for (int64_t xi = x0; xi < x1; ++xi) {
          const DenseMatrix& u = *weights[static_cast<size_t>(xi)];
          tk.conv_gemm({u.panels(), nullptr, cg_, cg_}, ocg_,
                       {v + xi * rows_in * ld, ld, nullptr, 0, count, 0, 0, nullptr, nullptr, m + xi * ocg_ * ld, ld,
                        Activation::kNone, gemm_scratch});
        }
      });
      split(ceil_div(ocg_, int64_t{8}), [&](int64_t r0, int64_t r1) {
        r0 *= 8;
        r1 = std::min(ocg_, r1 * 8);
        tk.winograd_output({m + r0 * ld, ld, ocg_ * ld, r1 - r0, p.tiles.data() + t0, count,
                            bias != nullptr ? bias + r0 : nullptr, out_act, y + r0 * pixels, pixels, ow});
      });
    });
    if (residual != nullptr) {
      for_planes(im.n * ocg_, im.n * ocg_ * pixels, threads, [&](int64_t begin, int64_t end) {
        tk.store_rows(y + begin * pixels, pixels, residual + begin * pixels, y + begin * pixels, pixels, end - begin,
                      pixels, act_);
      });
    }
  }

  /// Channel block b of image n as Winograd reads it (WinogradPlan): its channels transposed to
  /// pixel-major, zero past the input's, then copied between the padding's zeros (copy_padded: rows of
  /// wp pixels of 16 floats).
  void fill_winograd_block(const WinogradPlan& p, const float* x, int64_t n, int64_t b, float* image,
                           const TensorKernels& tk) const {
    constexpr int64_t kB = kWinogradBlock;
    const int64_t ph = win_.padding[0], pw = win_.padding[1], hw = p.h * p.w;
    const int64_t c0 = b * kB, nc = std::min(kB, cg_ - c0);
    float* pixel_major = scratch(1, hw * kB);
    if (nc < kB) std::fill(pixel_major, pixel_major + hw * kB, 0.0f);
    tk.transpose(x + (n * cg_ + c0) * hw, hw, pixel_major, kB, nc, hw);
    tk.copy_padded(pixel_major, p.w * kB, 1, image + n * p.image_floats + b * p.block_stride, p.hp, p.wp * kB, ph,
                   ph + p.h, pw * kB, (pw + p.w) * kB);
  }

  /// The WinogradPlan for h × w inputs, covering at least `images` images; built when a run first needs it.
  std::shared_ptr<const WinogradPlan> winograd_plan(int64_t h, int64_t w, int64_t images) const {
    std::lock_guard<std::mutex> lock(plan_mu_);
    if (winograd_plan_ != nullptr && winograd_plan_->h == h && winograd_plan_->w == w && winograd_plan_->images >= images) {
      return winograd_plan_;
    }
    auto p = std::make_shared<WinogradPlan>();
    p->h = h;
    p->w = w;
    p->images = images;
    const int64_t oh = h + 2 * win_.padding[0] - 2, ow = w + 2 * win_.padding[1] - 2;
    p->th = ceil_div(oh, kWinogradTile);
    p->tw = ceil_div(ow, kWinogradTile);
    p->hp = p->th * kWinogradTile + 2;
    p->wp = p->tw * kWinogradTile + 2;
    p->blocks = ceil_div(cg_, kWinogradBlock);
    p->block_stride = p->hp * p->wp * kWinogradBlock;
    p->image_floats = p->blocks * p->block_stride;
    for (int64_t n = 0; n < images; ++n)
      for (int64_t i = 0; i < p->th; ++i)
        for (int64_t j = 0; j < p->tw; ++j) {
          const int64_t r = i * kWinogradTile, c = j * kWinogradTile;
          p->tiles.push_back({n * p->image_floats + (r * p->wp + c) * kWinogradBlock, n * ocg_ * oh * ow + r * ow + c,
                              static_cast<int32_t>(std::min<int64_t>(kWinogradTile, oh - r)),
                              static_cast<int32_t>(std::min<int64_t>(kWinogradTile, ow - c))});
        }
    winograd_plan_ = p;
    return winograd_plan_;
  }

  /// The 36 transformed weights U[ξ] (out × in) = (G g Gᵀ)[ξ] of every (out, in) pair, as dense panels;
  /// computed in double when a run first needs them.
  const std::vector<std::unique_ptr<const DenseMatrix>>& winograd_weights() const {
    std::call_once(winograd_once_, [&] {
      const Weight& w = *node_.weights[0];
      std::vector<float> g(static_cast<size_t>(w.rows() * w.cols()));
      w.to_dense(g.data());
      constexpr int kA = kWinogradAlpha;
      std::vector<std::vector<float>> u(kA * kA, std::vector<float>(static_cast<size_t>(ocg_ * cg_)));
      for (int64_t k = 0; k < ocg_; ++k)
        for (int64_t c = 0; c < cg_; ++c) {
          const float* gk = g.data() + (k * cg_ + c) * 9;
          double t[kA][3];  // G · g
          for (int i = 0; i < kA; ++i)
            for (int b = 0; b < 3; ++b) {
              t[i][b] = 0.0;
              for (int a = 0; a < 3; ++a) t[i][b] += kWinogradG[i][a] * gk[a * 3 + b];
            }
          for (int i = 0; i < kA; ++i)
            for (int j = 0; j < kA; ++j) {
              double v = 0.0;
              for (int b = 0; b < 3; ++b) v += t[i][b] * kWinogradG[j][b];
              u[static_cast<size_t>(i * kA + j)][static_cast<size_t>(k * cg_ + c)] = static_cast<float>(v);
            }
        }
      for (const auto& ui : u) winograd_weights_.push_back(std::make_unique<const DenseMatrix>(ui.data(), ocg_, cg_));
    });
    return winograd_weights_;
  }

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
    if (nm_ && !plan_nm(*p)) return nullptr;
    if (dense_) {
      const int64_t taps = kh * kw;
      p->offsets.resize(static_cast<size_t>(cg_ * taps));
      for (int64_t k = 0; k < cg_ * taps; ++k) {
        p->offsets[static_cast<size_t>(k)] = k / taps * p->channel + tap[static_cast<size_t>(k % taps)];
      }
    }
    for (const auto& weight : node_.weights) {
      if (weight->format() != Format::kCsr) continue;
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

  /// The aligned plane copies of N:M weights (DirectPlan) and their panels; false when the copies
  /// would outgrow 32-bit offsets.
  bool plan_nm(DirectPlan& p) const {
    const int64_t sh = win_.stride[0], sw = win_.stride[1], kh = win_.kernel[0], kw = win_.kernel[1];
    const int64_t taps = kh * kw;
    p.wq_aligned = round_up(p.wq, 16);
    const int64_t ow = (p.w + 2 * win_.padding[1] - win_.dilation[1] * (kw - 1) - 1) / sw + 1;
    p.nm_aligned = p.wq_aligned * 4 <= ow * 5;
    if (!p.nm_aligned) {
      for (const auto& weight : node_.weights) {
        p.nm_panels.emplace_back(static_cast<const NmMatrix&>(*weight), [](int64_t k) { return static_cast<int32_t>(k); });
      }
      return true;
    }
    const int64_t plane = p.hq * p.wq_aligned;
    p.channel_aligned = round_up(sh * sw * plane, 16);
    if (p.channel_aligned / 16 % 2 == 0) p.channel_aligned += 16;  // as channel: odd lines apart
    p.copy_floats = cg_ * p.channel_aligned;
    for (int64_t j = 0; j < kw; ++j) {
      const int64_t shift = j * win_.dilation[1] / sw;
      if (std::find(p.shifts.begin(), p.shifts.end(), shift) == p.shifts.end()) p.shifts.push_back(shift);
    }
    // Tap (i, j) reads copy u (its column shift) at u · copy_floats + its phase plane's row offset.
    std::vector<int64_t> tap(static_cast<size_t>(taps));
    p.copy_phase_used.assign(p.shifts.size() * static_cast<size_t>(sh * sw), 0);
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const int64_t di = i * win_.dilation[0], dj = j * win_.dilation[1], phase = di % sh * sw + dj % sw;
        const int64_t u = std::find(p.shifts.begin(), p.shifts.end(), dj / sw) - p.shifts.begin();
        p.copy_phase_used[static_cast<size_t>(u * sh * sw + phase)] = 1;
        tap[static_cast<size_t>(i * kw + j)] = u * p.copy_floats + phase * plane + di / sh * p.wq_aligned;
      }
    const int64_t span = static_cast<int64_t>(p.shifts.size()) * p.copy_floats;
    if (span + plane + kOverlapSlack > std::numeric_limits<int32_t>::max()) return false;
    for (const auto& weight : node_.weights) {
      p.nm_panels.emplace_back(static_cast<const NmMatrix&>(*weight), [&](int64_t k) {
        return static_cast<int32_t>(k / taps * p.channel_aligned + tap[static_cast<size_t>(k % taps)]);
      });
    }
    return true;
  }

  /// Channels [c0, c1) of one image group's aligned plane copies (DirectPlan, N:M): copy u holds the
  /// phase planes (rows wq_aligned floats) shifted left by shifts[u] columns, zero past their ends.
  void fill_aligned(const DirectPlan& p, const float* x, float* dst, int64_t c0, int64_t c1) const {
    const int64_t sh = win_.stride[0], sw = win_.stride[1], wqa = p.wq_aligned, plane = p.hq * wqa;
    const TensorKernels& tk = tensor_kernels();
    for (size_t u = 0; u < p.shifts.size(); ++u) {
      const int64_t t = p.shifts[u];
      for (int64_t c = c0; c < c1; ++c) {
        float* channel = dst + static_cast<int64_t>(u) * p.copy_floats + c * p.channel_aligned;
        std::fill(channel + sh * sw * plane, channel + p.channel_aligned, 0.0f);  // phases unread stay as they are
        for (int64_t a = 0; a < sh; ++a)
          for (int64_t b = 0; b < sw; ++b) {
            if (!p.copy_phase_used[u * static_cast<size_t>(sh * sw) + static_cast<size_t>(a * sw + b)]) continue;
            int64_t i0, i1, j0, j1;  // the phase plane's rows and columns inside the image
            valid_run(a - win_.padding[0], sh, p.h, p.hq, i0, i1);
            valid_run(b - win_.padding[1], sw, p.w, p.wq, j0, j1);
            // Copy column q is the phase plane's column q + t.
            const int64_t q0 = std::min(std::max<int64_t>(j0 - t, 0), wqa), q1 = std::max(q0, std::min(j1 - t, wqa));
            const float* first = i0 < i1 && q0 < q1 ? x + (c * p.h + i0 * sh + a - win_.padding[0]) * p.w +
                                                          (q0 + t) * sw + b - win_.padding[1]
                                                    : x;
            tk.copy_padded(first, sh * p.w, sw, channel + (a * sw + b) * plane, p.hq, wqa, i0, i1, q0, q1);
          }
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
  // over the chunks the image needs; rounded up to whole kBatchPad tiles where a 1×1 convolution may
  // read its input in place (chunks start aligned). Rounding im2col chunks up left slivers: 14 × 14
  // in chunks of 64 left one of 4 pixels, which streamed the whole weight again (dense 256 → 256
  // 3 × 3: ~25% of the layer).
  int64_t chunk_size(int64_t pixels) const {
    const int64_t target = std::clamp(kPanelFloats / std::max<int64_t>(padded_cols_, 1) / kBatchPad * kBatchPad,
                                      kMinChunk, kMaxChunk);
    if (pixels <= target) return std::max<int64_t>(pixels, 1);
    const int64_t even = ceil_div(pixels, ceil_div(pixels, target));
    return pointwise_ && pixels % kBatchPad == 0 ? round_up(even, kBatchPad) : even;
  }

  ConvWindow win_;
  int64_t groups_ = 1;
  int64_t cg_ = 0;   // input channels per group
  int64_t ocg_ = 0;  // output channels per group
  int64_t padded_cols_ = 0;
  bool pointwise_ = false;
  std::vector<NmPanels> pointwise_panels_;  // N:M 1 × 1 weights on pixel rows (input row k: channel k)
  bool direct_ = false;  // every weight CSR and not pointwise: run_direct
  bool dense_ = false;   // every weight dense: run_dense
  bool nm_ = false;      // every weight N:M: run_dense where pixel_rows says
  bool winograd_ = false;  // dense, one group, 3 × 3, stride 1: run_winograd where use_winograd says
  bool residual_ = false;  // the last input is added to the output before act
  Activation act_ = Activation::kNone;
  mutable std::mutex plan_mu_;
  mutable std::shared_ptr<const DirectPlan> plan_;  // for the last input size seen
  mutable std::shared_ptr<const WinogradPlan> winograd_plan_;  // for the last input size seen
  mutable std::once_flag winograd_once_;
  mutable std::vector<std::unique_ptr<const DenseMatrix>> winograd_weights_;
};

// ---------------------------------------------------------------------------------------------
// depthwise_conv2d: output channel o reads input channel o / m (m = OC / C); TensorKernels'
// depthwise_planes, each input plane zero-padded once for its m output planes.

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
    const WindowGeometry geo{kh, kw, sh, sw, win_.padding[0], win_.padding[1], win_.dilation[0], win_.dilation[1],
                                oh, ow};
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);
    const int64_t h = im.h, w = im.w, c = im.c, taps = kh * kw;
    const int64_t pad_floats = depthwise_scratch_floats(geo, h, w);
    // A thread's input planes of each image in one call: each plane is padded once for its `mult`
    // outputs (input plane p = n·C + c writes output planes p·mult onwards).
    for_planes(im.n * c, im.n * oc * oh * ow * taps, ctx.threads, [&](int64_t begin, int64_t end) {
      float* pad = scratch(0, pad_floats);
      for (int64_t p = begin; p < end;) {
        const int64_t stop = std::min(end, (p / c + 1) * c);
        tk.depthwise_planes(x + p * h * w, stop - p, h, w, geo, wt + p % c * mult * taps,
                            bias ? bias + p % c * mult : nullptr, mult, act_, y + p * mult * oh * ow, pad);
        p = stop;
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

}  // namespace

std::unique_ptr<Op> make_conv2d(const NodeDef& node, const Graph&) { return std::make_unique<Conv2d>(node); }
std::unique_ptr<Op> make_depthwise_conv2d(const NodeDef& node, const Graph& graph) {
  return std::make_unique<DepthwiseConv2d>(node, graph);
}

}  // namespace sparsert
