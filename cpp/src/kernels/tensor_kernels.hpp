// Kernels for operators between activations (no weight): the graph's matmul and attention
// products, its softmax and layer norm, the transpose that packs a linear layer's input, and
// max-pooling's update. One set per ISA, listed and picked in registry.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.hpp"

namespace sparsert {

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
