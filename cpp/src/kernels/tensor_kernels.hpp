// Kernels for operators between activations (no weight): the graph's matmul and attention
// products, its softmax and layer norm, the transpose that packs a linear layer's input,
// max-pooling's update; and the two convolution loops that read the image in place, depthwise and
// dense weights on pixel rows (ops_conv.cpp). One set per ISA, listed and picked in registry.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.hpp"

namespace sparsert {

/// A depthwise convolution's window and output size (ops_conv.cpp checked them: kernel, stride and
/// dilation ≥ 1, padding ≥ 0, the output non-empty).
struct DepthwiseGeometry {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, oh, ow;
};

/// Floats of scratch depthwise_planes needs for an h × w plane: the zero-padded plane, rows
/// depthwise_padded_cols floats apart, and the vector lanes past the last output read (up to two
/// vectors of 16 beyond a row's last tap at stride 2, whatever the ISA).
inline int64_t depthwise_padded_cols(const DepthwiseGeometry& g, int64_t w) {
  const int64_t reach = (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  return (reach > g.pw + w ? reach : g.pw + w) + 32;
}
inline int64_t depthwise_scratch_floats(const DepthwiseGeometry& g, int64_t h, int64_t w) {
  const int64_t reach = (g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  return ((reach > g.ph + h ? reach : g.ph + h) + 1) * depthwise_padded_cols(g, w);
}

/// conv_gemm's input and output (TensorKernels::conv_gemm).
struct ConvGemmArgs {
  /// Input row k: x_k = x + offsets[k], or x + k · ldx when offsets is null; read at [p0, p1) only.
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
inline int64_t conv_gemm_scratch_floats(int64_t rows) { return ((rows + 31) / 32 * 32 * 2 + 128) * 64; }

struct TensorKernels {
  const char* name;
  Isa isa;
  /// C (m × n, row stride ldc) = A (m × k, lda) · B (k × n, ldb), all row-major; C is overwritten
  /// (zeros when k == 0).
  void (*gemm)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m, int64_t k,
               int64_t n);
  /// y[i] = exp(x[i] − shift) for i < n (y may be x); returns their sum.
  float (*exp_shifted_sum)(const float* x, float* y, int64_t n, float shift);
  /// y[j · ldy + i] = x[i · ldx + j] for i < rows, j < cols (x and y do not overlap).
  void (*transpose)(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols);
  /// y[i] = x[i · stride] where that is greater than y[i] or NaN, for i < n: max-pooling's update,
  /// PyTorch's `val > max || isnan(val)`. Reads x only at those n positions.
  void (*max_into)(const float* x, int64_t stride, float* y, int64_t n);
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
  void (*depthwise_planes)(const float* x, int64_t planes, int64_t h, int64_t w, const DepthwiseGeometry& g,
                           const float* wk, const float* bias, int64_t m, Activation act, float* y, float* scratch);
  /// A convolution's dense product on pixel rows, written channel-major: for r < rows and the
  /// product's pixels p in [a.p0, a.p1), out[r, p] = act(Σ_k W[r, k] · x_k[p] + bias[r] + res[r, p]),
  /// W in DenseMatrix's panel layout (sparsert/dense.hpp: panels[(r / 16 · cols + k) · 16 + r % 16],
  /// rows zero past `rows` in the last panel, 16-float aligned), k < cols. Layouts: ConvGemmArgs.
  void (*conv_gemm)(const float* panels, int64_t rows, int64_t cols, const ConvGemmArgs& a);
};

TensorKernels tensor_f32_ref();
#if SPARSERT_ARCH_X86
TensorKernels tensor_f32_avx2();
TensorKernels tensor_f32_avx512();
#endif
#if SPARSERT_ARCH_ARM64
TensorKernels tensor_f32_neon();
#endif

/// Every set compiled for this architecture, the preferred first.
const std::vector<TensorKernels>& all_tensor_kernels();
/// The first set of all_tensor_kernels() that this CPU runs; with `reference`, the scalar set
/// (RunContext::reference_kernels).
const TensorKernels& tensor_kernels(bool reference = false);

}  // namespace sparsert
