// NEON BSR kernel for batch ≥ 2, specialised for each of the 25 block shapes; units are block rows.
// Layout: bsr.hpp (row-major R×C blocks, 16- or 32-bit block-column indices); x packed as in
// kernel.hpp (ldx a multiple of 16, lanes ≥ batch zero). Precondition: batch ≥ 2. Padded rows are never stored.
#include <arm_neon.h>

#include <algorithm>
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/bsr.hpp"

namespace sparsert {
namespace {

constexpr int64_t kTile = 16;

// acc[i][j] += W[i, c + L] · x[c + L, lanes 4j..4j+3], with W[i, c..c+3] in wv[i].
template <int L, int RB, int V>
inline void fma_lane(float32x4_t (&acc)[RB][V], const float32x4_t (&wv)[RB], const float* xk) {
  for (int j = 0; j < V; ++j) {
    const float32x4_t xv = vld1q_f32(xk + 4 * j);
    for (int i = 0; i < RB; ++i) acc[i][j] = vfmaq_laneq_f32(acc[i][j], xv, wv[i], L);
  }
}

// Lanes [b0, b0 + nb) with V = ceil(nb / 4) vectors: lanes past the batch are zero in x, so the last
// vector may compute them, but they are never stored. A block row is done RB ≤ 4 rows at a time so
// that the RB × V accumulators (16 at most) stay in registers.
template <class Index, int R, int C, int V>
void tile(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t b0, int64_t nb, int64_t unit_begin,
          int64_t unit_end) {
  constexpr int RB = R < 4 ? R : 4;
  const int64_t* ptr = w.row_ptr();
  const int64_t ldx = a.ldx;
  for (int64_t bi = unit_begin; bi < unit_end; ++bi) {
    for (int r0 = 0; r0 < R && bi * R + r0 < w.rows(); r0 += RB) {
      float32x4_t acc[RB][V];
      for (int i = 0; i < RB; ++i)
        for (int j = 0; j < V; ++j) acc[i][j] = vdupq_n_f32(0.0f);
      for (int64_t blk = ptr[bi]; blk < ptr[bi + 1]; ++blk) {
        const float* v = w.values() + blk * R * C + r0 * C;
        const float* xb = a.x + int64_t{bcol[blk]} * C * ldx + b0;
        if constexpr (C >= 4) {
          for (int c0 = 0; c0 < C; c0 += 4) {
            float32x4_t wv[RB];
            for (int i = 0; i < RB; ++i) wv[i] = vld1q_f32(v + i * C + c0);
            const float* xk = xb + c0 * ldx;
            fma_lane<0>(acc, wv, xk);
            fma_lane<1>(acc, wv, xk + ldx);
            fma_lane<2>(acc, wv, xk + 2 * ldx);
            fma_lane<3>(acc, wv, xk + 3 * ldx);
          }
        } else {
          for (int cc = 0; cc < C; ++cc) {
            for (int j = 0; j < V; ++j) {
              const float32x4_t xv = vld1q_f32(xb + cc * ldx + 4 * j);
              for (int i = 0; i < RB; ++i) acc[i][j] = vfmaq_n_f32(acc[i][j], xv, v[i * C + cc]);
            }
          }
        }
      }
      for (int i = 0; i < RB && bi * R + r0 + i < w.rows(); ++i) {
        const int64_t r = bi * R + r0 + i;
        float lanes[4 * V];
        for (int j = 0; j < V; ++j) vst1q_f32(lanes + 4 * j, acc[i][j]);
        for (int64_t b = 0; b < nb; ++b) a.y[(b0 + b) * a.ldy + r] = epilogue(lanes[b], a.bias, r, a.act);
      }
    }
  }
}

template <class Index, int R, int C>
void run(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  for (int64_t b0 = 0; b0 < a.batch; b0 += kTile) {
    const int64_t nb = std::min(kTile, a.batch - b0);
    switch ((nb + 3) / 4) {
      case 1: tile<Index, R, C, 1>(w, bcol, a, b0, nb, unit_begin, unit_end); break;
      case 2: tile<Index, R, C, 2>(w, bcol, a, b0, nb, unit_begin, unit_end); break;
      case 3: tile<Index, R, C, 3>(w, bcol, a, b0, nb, unit_begin, unit_end); break;
      default: tile<Index, R, C, 4>(w, bcol, a, b0, nb, unit_begin, unit_end); break;
    }
  }
}

template <class Index, int R>
void dispatch_cols(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  switch (w.block_cols()) {
    case 1: run<Index, R, 1>(w, bcol, a, unit_begin, unit_end); break;
    case 2: run<Index, R, 2>(w, bcol, a, unit_begin, unit_end); break;
    case 4: run<Index, R, 4>(w, bcol, a, unit_begin, unit_end); break;
    case 8: run<Index, R, 8>(w, bcol, a, unit_begin, unit_end); break;
    default: run<Index, R, 16>(w, bcol, a, unit_begin, unit_end); break;
  }
}

template <class Index>
void dispatch(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  switch (w.block_rows()) {
    case 1: dispatch_cols<Index, 1>(w, bcol, a, unit_begin, unit_end); break;
    case 2: dispatch_cols<Index, 2>(w, bcol, a, unit_begin, unit_end); break;
    case 4: dispatch_cols<Index, 4>(w, bcol, a, unit_begin, unit_end); break;
    case 8: dispatch_cols<Index, 8>(w, bcol, a, unit_begin, unit_end); break;
    default: dispatch_cols<Index, 16>(w, bcol, a, unit_begin, unit_end); break;
  }
}

}  // namespace

void spmm_bsr_f32_neon_16(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0 && a.ldx >= a.batch);
  const auto& w = static_cast<const BsrMatrix&>(weight);
  assert(BsrMatrix::supports_block(w.block_rows(), w.block_cols()));
  if (w.index_bits() == 16) dispatch(w, w.block_col16(), a, unit_begin, unit_end);
  else dispatch(w, w.block_col32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
