// NEON CSR kernel for batch ≥ 2: per row, each non-zero is broadcast against up to 16 packed lanes;
// two non-zeros per step feed two accumulator sets. Layout: csr.hpp (16- or 32-bit column indices);
// x packed as in kernel.hpp (ldx a multiple of 16, lanes ≥ batch zero). Precondition: batch ≥ 2.
#include <arm_neon.h>

#include <algorithm>
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

constexpr int64_t kTile = 16;

// Lanes [b0, b0 + nb) with V = ceil(nb / 4) vectors per row: lanes past the batch are zero in x,
// so the last vector may compute them, but they are never stored.
template <class Index, int V>
void tile(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t b0, int64_t nb, int64_t unit_begin,
          int64_t unit_end) {
  const int64_t* ptr = w.row_ptr();
  const float* val = w.values();
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    float32x4_t acc0[V], acc1[V];
    for (int j = 0; j < V; ++j) acc0[j] = acc1[j] = vdupq_n_f32(0.0f);
    int64_t i = ptr[r];
    const int64_t end = ptr[r + 1];
    for (; i + 2 <= end; i += 2) {
      const float* x0 = a.x + int64_t{col[i]} * a.ldx + b0;
      const float* x1 = a.x + int64_t{col[i + 1]} * a.ldx + b0;
      for (int j = 0; j < V; ++j) {
        acc0[j] = vfmaq_n_f32(acc0[j], vld1q_f32(x0 + 4 * j), val[i]);
        acc1[j] = vfmaq_n_f32(acc1[j], vld1q_f32(x1 + 4 * j), val[i + 1]);
      }
    }
    if (i < end) {
      const float* x0 = a.x + int64_t{col[i]} * a.ldx + b0;
      for (int j = 0; j < V; ++j) acc0[j] = vfmaq_n_f32(acc0[j], vld1q_f32(x0 + 4 * j), val[i]);
    }
    float lanes[4 * V];
    for (int j = 0; j < V; ++j) vst1q_f32(lanes + 4 * j, vaddq_f32(acc0[j], acc1[j]));
    float* y = a.transposed_y ? a.y + r * a.ldy + b0 : a.y + b0 * a.ldy + r;
    const int64_t step = a.transposed_y ? 1 : a.ldy;
    for (int64_t b = 0; b < nb; ++b) y[b * step] = epilogue(lanes[b], a.bias, r, a.act);
  }
}

template <class Index>
void run(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  for (int64_t b0 = 0; b0 < a.batch; b0 += kTile) {
    const int64_t nb = std::min(kTile, a.batch - b0);
    switch ((nb + 3) / 4) {
      case 1: tile<Index, 1>(w, col, a, b0, nb, unit_begin, unit_end); break;
      case 2: tile<Index, 2>(w, col, a, b0, nb, unit_begin, unit_end); break;
      case 3: tile<Index, 3>(w, col, a, b0, nb, unit_begin, unit_end); break;
      default: tile<Index, 4>(w, col, a, b0, nb, unit_begin, unit_end); break;
    }
  }
}

}  // namespace

void spmm_csr_f32_neon_16(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch >= 2 && ((a.ldx % kBatchPad == 0 && a.ldx >= a.batch) || a.ldx == 1));
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) run(w, w.col_idx16(), a, unit_begin, unit_end);
  else run(w, w.col_idx32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
