// NEON dense kernel for batch ≥ 2: 4 rows × 16 packed batch lanes per micro-tile, 16 accumulators.
// Layout: W row-major (dense.hpp); x packed as in kernel.hpp (x[k * ldx + b], ldx a multiple of 16,
// lanes ≥ batch zero, 64-byte aligned). Preconditions: batch ≥ 2; only lanes < batch are stored.
#include <arm_neon.h>

#include <algorithm>
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/dense.hpp"

namespace sparsert {
namespace {

constexpr int64_t kTile = 16;

// acc[i][j] += W[i, k + L] · x[k + L, lanes 4j..4j+3], with W[i, k..k+3] in wv[i].
template <int L, int MR, int V>
inline void fma_lane(float32x4_t (&acc)[MR][V], const float32x4_t (&wv)[MR], const float* xk) {
  for (int j = 0; j < V; ++j) {
    const float32x4_t xv = vld1q_f32(xk + 4 * j);
    for (int i = 0; i < MR; ++i) acc[i][j] = vfmaq_laneq_f32(acc[i][j], xv, wv[i], L);
  }
}

// Rows [r, r + MR) for lanes [b0, b0 + nb), with V = ceil(nb / 4) vectors per row: lanes past the
// batch are zero in x, so the last vector may compute them, but they are never stored.
template <int MR, int V>
void micro_tile(const DenseMatrix& w, const SpmmArgs& a, int64_t r, int64_t b0, int64_t nb) {
  const int64_t k_count = w.cols(), ldx = a.ldx;
  const float* wr = w.values() + r * k_count;
  float32x4_t acc[MR][V];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < V; ++j) acc[i][j] = vdupq_n_f32(0.0f);
  int64_t k = 0;
  for (; k + 4 <= k_count; k += 4) {
    float32x4_t wv[MR];
    for (int i = 0; i < MR; ++i) wv[i] = vld1q_f32(wr + i * k_count + k);
    const float* xk = a.x + k * ldx + b0;
    fma_lane<0>(acc, wv, xk);
    fma_lane<1>(acc, wv, xk + ldx);
    fma_lane<2>(acc, wv, xk + 2 * ldx);
    fma_lane<3>(acc, wv, xk + 3 * ldx);
  }
  for (; k < k_count; ++k) {
    const float* xk = a.x + k * ldx + b0;
    for (int j = 0; j < V; ++j) {
      const float32x4_t xv = vld1q_f32(xk + 4 * j);
      for (int i = 0; i < MR; ++i) acc[i][j] = vfmaq_n_f32(acc[i][j], xv, wr[i * k_count + k]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    float lanes[4 * V];
    for (int j = 0; j < V; ++j) vst1q_f32(lanes + 4 * j, acc[i][j]);
    for (int64_t b = 0; b < nb; ++b) a.y[(b0 + b) * a.ldy + r + i] = epilogue(lanes[b], a.bias, r + i, a.act);
  }
}

template <int V>
void tile(const DenseMatrix& w, const SpmmArgs& a, int64_t b0, int64_t nb, int64_t unit_begin, int64_t unit_end) {
  int64_t r = unit_begin;
  for (; r + 4 <= unit_end; r += 4) micro_tile<4, V>(w, a, r, b0, nb);
  for (; r < unit_end; ++r) micro_tile<1, V>(w, a, r, b0, nb);
}

}  // namespace

void spmm_dense_f32_neon_16(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0 && a.ldx >= a.batch);
  const auto& w = static_cast<const DenseMatrix&>(weight);
  for (int64_t b0 = 0; b0 < a.batch; b0 += kTile) {
    const int64_t nb = std::min(kTile, a.batch - b0);
    switch ((nb + 3) / 4) {
      case 1: tile<1>(w, a, b0, nb, unit_begin, unit_end); break;
      case 2: tile<2>(w, a, b0, nb, unit_begin, unit_end); break;
      case 3: tile<3>(w, a, b0, nb, unit_begin, unit_end); break;
      default: tile<4>(w, a, b0, nb, unit_begin, unit_end); break;
    }
  }
}

}  // namespace sparsert
