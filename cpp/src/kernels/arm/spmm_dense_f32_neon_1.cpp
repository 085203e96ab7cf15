// NEON dense kernel for batch 1: y[r] = W[r, :] · x, four rows at a time sharing each x load.
// Layout: W row-major (dense.hpp); x a plain vector of cols() floats (ldx == 1, may be null when
// cols() == 0). Precondition: batch == 1.
#include <arm_neon.h>

#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/dense.hpp"

namespace sparsert {
namespace {

// Dot products of MR consecutive rows with x. Two accumulators per row hide the FMA latency.
template <int MR>
void rows_dot(const float* w, int64_t k_count, const float* x, float (&out)[MR]) {
  float32x4_t acc[MR][2];
  float tail[MR];
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = acc[i][1] = vdupq_n_f32(0.0f);
    tail[i] = 0.0f;
  }
  int64_t k = 0;
  for (; k + 8 <= k_count; k += 8) {
    const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
    for (int i = 0; i < MR; ++i) {
      acc[i][0] = vfmaq_f32(acc[i][0], vld1q_f32(w + i * k_count + k), x0);
      acc[i][1] = vfmaq_f32(acc[i][1], vld1q_f32(w + i * k_count + k + 4), x1);
    }
  }
  if (k + 4 <= k_count) {
    const float32x4_t x0 = vld1q_f32(x + k);
    for (int i = 0; i < MR; ++i) acc[i][0] = vfmaq_f32(acc[i][0], vld1q_f32(w + i * k_count + k), x0);
    k += 4;
  }
  for (; k < k_count; ++k)
    for (int i = 0; i < MR; ++i) tail[i] += w[i * k_count + k] * x[k];
  for (int i = 0; i < MR; ++i) out[i] = vaddvq_f32(vaddq_f32(acc[i][0], acc[i][1])) + tail[i];
}

template <int MR>
void rows(const DenseMatrix& w, const SpmmArgs& a, int64_t r) {
  float out[MR];
  rows_dot<MR>(w.values() + r * w.cols(), w.cols(), a.x, out);
  for (int i = 0; i < MR; ++i) a.y[r + i] = epilogue(out[i], a.bias, r + i, a.act);
}

}  // namespace

void spmm_dense_f32_neon_1(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const DenseMatrix&>(weight);
  int64_t r = unit_begin;
  for (; r + 4 <= unit_end; r += 4) rows<4>(w, a, r);
  for (; r < unit_end; ++r) rows<1>(w, a, r);
}

}  // namespace sparsert
