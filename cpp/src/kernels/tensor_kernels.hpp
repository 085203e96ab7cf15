// Kernels for operators between activations (no weight): the graph's matmul and attention
// products, its softmax and layer norm, the transpose that packs a linear layer's input,
// max-pooling's passes; and the two convolution loops that read the image in place, depthwise and
// dense weights on pixel rows (ops_conv.cpp). One set per ISA, listed and picked in registry.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/kernel.hpp"

namespace sparsert {

/// A depthwise convolution's or max pooling's window and output size (the operators checked them:
/// kernel, stride and dilation ≥ 1, padding ≥ 0, the output non-empty).
struct WindowGeometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

/// A depthwise plane zero-padded: rows and columns covering every tap and the image.
inline int64_t depthwise_window_rows(const WindowGeometry& g, int64_t h) {
  const int64_t reach = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  return reach > g.ph + h ? reach : g.ph + h;
}
inline int64_t depthwise_window_cols(const WindowGeometry& g, int64_t w) {
  const int64_t reach = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return reach > g.pw + w ? reach : g.pw + w;
}
/// Floats between rows of the plane path's padded plane: its columns and the vector lanes past the
/// last output read (up to two vectors of 16 beyond a row's last tap at stride 2, whatever the ISA).
inline int64_t depthwise_padded_cols(const WindowGeometry& g, int64_t w) { return depthwise_window_cols(g, w) + 32; }
/// Output rows this narrow may run with vectors along channels (ConvF32::dw_channels takes rows that
/// fill at most half a vector, and 16 floats is the widest): the scratch then holds its buffers.
inline constexpr int64_t kDepthwiseChannelMaxCols = 8;
/// Floats of scratch depthwise_planes needs for an h × w plane: the plane path's padded plane (and a
/// row of slack), or for narrow outputs the channel path's buffers if larger.
inline int64_t depthwise_scratch_floats(const WindowGeometry& g, int64_t h, int64_t w) {
  const int64_t plane_path = (depthwise_window_rows(g, h) + 1) * depthwise_padded_cols(g, w);
  if (g.ow > kDepthwiseChannelMaxCols) return plane_path;
  // 16 channels (the widest vector) of: the padded plane, the image, the taps' weights, the outputs.
  const int64_t channel_path =
      16 * (depthwise_window_rows(g, h) * depthwise_window_cols(g, w) + h * w + g.kh * g.kw + g.oh * g.ow);
  return plane_path > channel_path ? plane_path : channel_path;
}

/// Floats in a row of max pooling's padded input: the row between columns of -inf, wide enough for
/// every tap of every output column (w itself when no tap leaves the row: it is then read in place).
inline int64_t max_pool_padded_cols(const WindowGeometry& g, int64_t w) {
  const int64_t reach = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return reach > g.pw + w ? reach : g.pw + w;
}
/// Floats of scratch max_pool_plane needs for an h × w plane: a row of column maxima per input row,
/// and two padded rows.
inline int64_t max_pool_scratch_floats(const WindowGeometry& g, int64_t h, int64_t w) {
  return h * g.ow + 2 * max_pool_padded_cols(g, w);
}

/// max_pool_plane's algorithm over an ISA's `max_taps(x, tap_stride, taps, stride, y, n)`: y[i] = the
/// maximum of x[i · stride + t · tap_stride] over t < taps by PyTorch's rule from -inf (`val > max ||
/// isnan(val)`, t in order). Separable: each input row's maxima over the window's columns first (one
/// row of `scratch` per input row, computed when an output row first needs it, so that it is still in
/// L1 for the next; where taps reach past the row, it is copied between columns of -inf, the padding's
/// value, so that every tap is in range), then each output row's over its window's rows. Overlapping windows (stride
/// < kernel) share the first pass: 3 × 3 stride 2 reads each input row once per column tap instead
/// of 1.5 times. Both passes keep PyTorch's window order, so the first of equal maxima (−0 before +0)
/// and any NaN win as there; a window wholly in the padding stays -inf.
/// The padded copy of the next row is made before the taps read this one's, into the other of two
/// buffers: taps read the copy at every column offset, across the copy's vector stores, and a load
/// across stores still in flight waits for them (ResNet-18's 64 × 112² 3 × 3 stride 2, the kernel
/// alone, minima of 6 runs in turns: 243-248 → 207-222 µs).
template <class MaxTaps>
inline void max_pool_plane_by(MaxTaps&& max_taps, const float* x, int64_t h, int64_t w, const WindowGeometry& g,
                              float* y, float* scratch) {
  const int64_t wp = max_pool_padded_cols(g, w);
  const bool in_place = g.pw == 0 && wp == w;
  float* rows = scratch;
  float* padded[2] = {scratch + h * g.ow, scratch + h * g.ow + wp};
  auto copy_padded = [&](int64_t r) { std::copy(x + r * w, x + (r + 1) * w, padded[r % 2] + g.pw); };
  if (!in_place) {
    std::fill(padded[0], padded[0] + 2 * wp, -std::numeric_limits<float>::infinity());
    if (h > 0) copy_padded(0);
  }
  int64_t computed = 0;  // rows [0, computed) hold their column maxima
  for (int64_t r = 0; r < g.oh; ++r) {
    const int64_t top = r * g.sh - g.ph;  // input row of the window's first row
    const int64_t needed = std::min(h, top + (g.kh - 1) * g.dh + 1);
    for (; computed < needed; ++computed) {
      const float* row = x + computed * w;
      if (!in_place) {
        if (computed + 1 < h) copy_padded(computed + 1);
        row = padded[computed % 2];
      }
      max_taps(row, g.dw, g.kw, g.sw, rows + computed * g.ow, g.ow);
    }
    // The window's rows inside the input: i in [lo, hi) with 0 ≤ top + i·dh < h.
    const int64_t lo = top >= 0 ? 0 : std::min(g.kh, (-top + g.dh - 1) / g.dh);
    const int64_t hi = std::max(lo, std::min(g.kh, h - top <= 0 ? 0 : (h - top + g.dh - 1) / g.dh));
    max_taps(hi > lo ? rows + (top + lo * g.dh) * g.ow : rows, g.dh * g.ow, hi - lo, 1, y + r * g.ow, g.ow);
  }
}

/// conv_gemm's input and output (TensorKernels::conv_gemm).
struct ConvGemmArgs {
  /// Input row k: x_k = x + offsets[k], or x + k · ldx when offsets is null (sparse panels: the entry's
  /// row x + at · ldx; offsets unused); read at [p0, p1) only.
  const float* x;
  int64_t ldx;
  const int64_t* offsets;
  int64_t p0, p1;
  /// wide_cols == 0: out[r, p] is y[r · ldy + p]. Else p = i · wide_cols + j ("wide" pixels: a
  /// direct convolution's padded rows, ops_conv.cpp) is y[r · ldy + i · ow + j] when j < ow, and
  /// dropped when j ≥ ow. res (null, or the same layout as y) is read where y is written.
  int64_t wide_cols, ow;
  const float* bias;
  const float* res;
  float* y;
  int64_t ldy;
  Activation act;
  /// conv_gemm_scratch_floats(rows) floats for sums before they are stored (and inputs packed):
  /// required with wide pixels; null otherwise makes every product take the pixel tiles.
  float* scratch;
};
/// (Up to 64 pixels: two blocks of 64 pixels × the rows rounded up to a 64-row group, and 128
/// columns of packed inputs; wider products: a tile of the rows × 48 pixels.)
inline int64_t conv_gemm_scratch_floats(int64_t rows) { return ((rows + 63) / 64 * 64 * 2 + 128) * 64; }

/// One stored weight of sparse panels (ConvPanels): its value and its input row, x + at · ldx
/// (ConvGemmArgs; ldx 1 makes `at` an offset in the input). 8 bytes, so a kernel reads both at once.
struct ConvEntry {
  float value;
  int32_t at;
};

/// A convolution's weight as conv_gemm reads it: panels of 16 rows, each stored step by step, entry
/// (r, s) at [(r / 16 · steps + s) · 16 + r % 16] (rows zero past `rows` in the last panel, 64-byte
/// aligned). Dense (`values`; entries null): step s is column s, steps == cols (DenseMatrix's
/// panels, sparsert/dense.hpp). Sparse in lockstep (`entries`, N:M, whose rows all hold `steps`
/// values): entry (r, s) is W[r, k] with k the column its input row belongs to; cols is the
/// weight's, to size passes.
struct ConvPanels {
  const float* values;
  const ConvEntry* entries;
  int64_t steps, cols;
};

/// Winograd F(4×4, 3×3) (Lavin and Gray, 2016; points 0, ±1, ±2): a 3 × 3, stride-1 convolution's
/// output in 4 × 4 tiles, each from a 6 × 6 input tile d as Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 36 products
/// per tile and channel pair against 144. The transformed weights and inputs meet in 36 products (one
/// per position ξ of the 6 × 6), each conv_gemm's. Transforms work on blocks of 16 channels or tiles.
inline constexpr int kWinogradTile = 4, kWinogradAlpha = 6, kWinogradBlock = 16;
inline constexpr float kWinogradBT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                                            {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
inline constexpr float kWinogradAT[4][6] = {
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
inline constexpr double kWinogradG[6][3] = {{1.0 / 4, 0, 0},           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                            {-1.0 / 6, 1.0 / 6, -1.0 / 6}, {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                            {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}};

/// One output tile: its 6 × 6 input tile's top left at `in` floats into each channel block of the
/// image (WinogradInputArgs), its 4 × 4 outputs' top left at `out` floats into each output row of y
/// (WinogradOutputArgs), of which rows × cols lie inside the output.
struct WinogradTile {
  int64_t in, out;
  int32_t rows, cols;
};

/// winograd_input: for tiles t < count and channels c < 16 · blocks, v[ξ · xi_stride + c · ldv + t] =
/// (Bᵀ d B)[ξ] of tile t's input of channel c. The image is pixel-major in blocks of 16 channels:
/// channel 16 · b + l of padded pixel (i, j) at image[b · block_stride + (i · wp + j) · 16 + l], zero
/// in the padding and in channels past the input's.
struct WinogradInputArgs {
  const float* image;
  int64_t wp, block_stride, blocks;
  const WinogradTile* tiles;
  int64_t count;
  float* v;
  int64_t ldv, xi_stride;
};

/// winograd_output: for rows r < rows and tiles t < count, the 4 × 4 outputs act(Aᵀ M A + bias[r]) of
/// M[ξ] = m[ξ · xi_stride + r · ldm + t], stored at y + r · ldy + tile.out, rows ow floats apart (the
/// tile's rows × cols inside the output only). bias may be null.
struct WinogradOutputArgs {
  const float* m;
  int64_t ldm, xi_stride, rows;
  const WinogradTile* tiles;
  int64_t count;
  const float* bias;
  Activation act;
  float* y;
  int64_t ldy, ow;
};

struct TensorKernels {
  const char* name;
  Isa isa;
  /// C (m × n, row stride ldc) = A (m × k, lda) · B (k × n, ldb), all row-major; C is overwritten
  /// (zeros when k == 0).
  void (*gemm)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t k,
               int64_t n);
  /// y = softmax(scale · x + mask) over n ≥ 1 elements (y may be x), the max subtracted before the
  /// exp; mask null, or read at mask[i · mask_stride] with mask_stride 1 or 0 (one value for the row).
  /// Returns that max, ignoring NaN: -inf when every element is -inf, whose row is NaN as in
  /// torch.softmax (attention makes it zeros).
  float (*softmax_row)(const float* x, float* y, int64_t n, float scale, const float* mask, int64_t mask_stride);
  /// y[j · ldy + i] = x[i · ldx + j] for i < rows, j < cols (x and y do not overlap).
  void (*transpose)(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols);
  /// Max pooling of one h × w plane x into y (g.oh × g.ow): y[r, q] = the maximum of x[r·sh − ph + i·dh,
  /// q·sw − pw + j·dw] over the window's positions inside the plane by PyTorch's rule (`val > max ||
  /// isnan(val)` in row-major window order, from -inf), so the first of equal maxima (−0 before +0)
  /// and any NaN win as there; -inf where the window is wholly in the padding. `scratch` holds
  /// max_pool_scratch_floats(g, h, w) floats.
  void (*max_pool_plane)(const float* x, int64_t h, int64_t w, const WindowGeometry& g, float* y, float* scratch);
  /// A convolution's zero-padded phase plane, y (rows × cols, contiguous): y[i · cols + j] =
  /// x[(i − r0) · ldx + (j − c0) · stride] for r0 ≤ i < r1 and c0 ≤ j < c1, 0 elsewhere (0 ≤ r0 ≤ r1 ≤
  /// rows, 0 ≤ c0 ≤ c1 ≤ cols). Reads x only at those positions.
  void (*copy_padded)(const float* x, int64_t ldx, int64_t stride, float* y, int64_t rows, int64_t cols, int64_t r0,
                      int64_t r1, int64_t c0, int64_t c1);
  /// y[r · ldy + i] = act(x[r · ldx + i] + res[r · ldy + i]) for r < rows, i < n; without res (null),
  /// act(x[r · ldx + i]). A direct convolution's output runs into the output tensor, the residual and
  /// activation fused; y may be x (ldx = ldy) or res.
  void (*store_rows)(const float* x, int64_t ldx, const float* res, float* y, int64_t ldy, int64_t rows, int64_t n,
                     Activation act);
  /// One row of layer norm: y = (x − mean) / √(var + eps) · w + b for n ≥ 1 elements (w, b may be
  /// null; y may be x). Two passes, the mean and then the squared deviations from it, so that a large
  /// mean does not cancel the variance.
  void (*layer_norm_row)(const float* x, float* y, int64_t n, const float* w, const float* b, float eps);
  /// A depthwise convolution of `planes` input planes x (each h × w, contiguous, one after the other)
  /// into m output planes each (y: planes · m planes of oh × ow, in that order): output plane o of
  /// input plane c is y_{c·m+o}[r, q] = act(bias[c·m+o] + Σ_{i,j} wk[((c·m + o) · kh + i) · kw + j] ·
  /// x_c[r·sh − ph + i·dh, q·sw − pw + j·dw]), x zero outside the plane; bias may be null. `scratch`
  /// holds depthwise_scratch_floats(g, h, w) floats (the padded plane).
  void (*depthwise_planes)(const float* x, int64_t planes, int64_t h, int64_t w, const WindowGeometry& g,
                           const float* wk, const float* bias, int64_t m, Activation act, float* y, float* scratch);
  /// A convolution's product on pixel rows, written channel-major: for r < rows and the product's
  /// pixels p in [a.p0, a.p1), out[r, p] = act(Σ_k W[r, k] · x_k[p] + bias[r] + res[r, p]), k <
  /// w.cols. Layouts: ConvPanels, ConvGemmArgs.
  void (*conv_gemm)(const ConvPanels& w, int64_t rows, const ConvGemmArgs& a);
  /// Winograd F(4×4, 3×3)'s input and output transforms (WinogradInputArgs, WinogradOutputArgs).
  void (*winograd_input)(const WinogradInputArgs& a);
  void (*winograd_output)(const WinogradOutputArgs& a);
};

// Each set is a constant, filled in at compile time: no code of an ISA's file runs before the CPU
// is known to have that ISA (a function there, compiled with -mavx512f, may itself use AVX-512).
extern const TensorKernels kTensorF32Ref;
#if SPARSERT_ARCH_X86
extern const TensorKernels kTensorF32Avx2;
extern const TensorKernels kTensorF32Avx512;
#endif
#if SPARSERT_ARCH_ARM64
extern const TensorKernels kTensorF32Neon;
#endif

/// Every set compiled for this architecture, the preferred first.
const std::vector<TensorKernels>& all_tensor_kernels();
/// The first set of all_tensor_kernels() that this CPU runs; with `reference`, the scalar set
/// (RunContext::reference_kernels).
const TensorKernels& tensor_kernels(bool reference = false);

}  // namespace sparsert
