// NEON N:M kernel for batch ≥ 2: each stored value is broadcast against up to 16 packed lanes of the
// input row its position selects; alternate values feed two accumulator sets. Layout: nm.hpp; x packed
// as in kernel.hpp (ldx a multiple of 16, lanes ≥ batch zero). Precondition: batch ≥ 2.
#include <arm_neon.h>

#include <algorithm>
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {
namespace {

constexpr int64_t kTile = 16;

// With all fields constant, the compiler unrolls the word decode (16 positions of 2 bits).
struct Pattern24 {
  static constexpr int n = 2, m = 4, bits = 2, groups_per_word = 8;
};

struct PatternAny {
  int n, m, bits, groups_per_word;
};

// Offsets from the word's first input column of its nv values. Value j of the word sits at bits
// [j·bits, (j+1)·bits) because group codes are packed back to back (nm.hpp).
template <class P>
inline void decode(const P& p, uint32_t word, int nv, int32_t* off) {
  for (int j = 0; j < nv; ++j) off[j] = (j / p.n) * p.m + static_cast<int32_t>((word >> (j * p.bits)) & (p.m - 1));
}

// Lanes [b0, b0 + nb) with V = ceil(nb / 4) vectors per row: lanes past the batch are zero in x,
// so the last vector may compute them, but they are never stored.
template <class P, int V>
void tile(const NmMatrix& w, const P& p, const SpmmArgs& a, int64_t b0, int64_t nb, int64_t unit_begin,
          int64_t unit_end) {
  const int64_t groups = w.groups(), ldx = a.ldx;
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    const float* v = w.values() + r * groups * p.n;
    const uint32_t* meta = w.meta() + r * w.words_per_row();
    float32x4_t acc0[V], acc1[V];
    for (int j = 0; j < V; ++j) acc0[j] = acc1[j] = vdupq_n_f32(0.0f);
    for (int64_t g0 = 0; g0 < groups; g0 += p.groups_per_word, ++meta) {
      const int nv = static_cast<int>(std::min<int64_t>(p.groups_per_word, groups - g0)) * p.n;
      int32_t off[16];  // a word holds at most 32 / bits ≤ 16 values
      decode(p, *meta, nv, off);
      const float* vw = v + g0 * p.n;
      const float* xw = a.x + g0 * p.m * ldx + b0;
      int i = 0;
      for (; i + 2 <= nv; i += 2) {
        const float* x0 = xw + off[i] * ldx;
        const float* x1 = xw + off[i + 1] * ldx;
        for (int j = 0; j < V; ++j) {
          acc0[j] = vfmaq_n_f32(acc0[j], vld1q_f32(x0 + 4 * j), vw[i]);
          acc1[j] = vfmaq_n_f32(acc1[j], vld1q_f32(x1 + 4 * j), vw[i + 1]);
        }
      }
      if (i < nv) {
        const float* x0 = xw + off[i] * ldx;
        for (int j = 0; j < V; ++j) acc0[j] = vfmaq_n_f32(acc0[j], vld1q_f32(x0 + 4 * j), vw[i]);
      }
    }
    float lanes[4 * V];
    for (int j = 0; j < V; ++j) vst1q_f32(lanes + 4 * j, vaddq_f32(acc0[j], acc1[j]));
    for (int64_t b = 0; b < nb; ++b) a.y[(b0 + b) * a.ldy + r] = epilogue(lanes[b], a.bias, r, a.act);
  }
}

template <class P>
void run(const NmMatrix& w, const P& p, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  for (int64_t b0 = 0; b0 < a.batch; b0 += kTile) {
    const int64_t nb = std::min(kTile, a.batch - b0);
    switch ((nb + 3) / 4) {
      case 1: tile<P, 1>(w, p, a, b0, nb, unit_begin, unit_end); break;
      case 2: tile<P, 2>(w, p, a, b0, nb, unit_begin, unit_end); break;
      case 3: tile<P, 3>(w, p, a, b0, nb, unit_begin, unit_end); break;
      default: tile<P, 4>(w, p, a, b0, nb, unit_begin, unit_end); break;
    }
  }
}

}  // namespace

void spmm_nm_f32_neon_16(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0 && a.ldx >= a.batch);
  const auto& w = static_cast<const NmMatrix&>(weight);
  assert(NmMatrix::supports(w.n(), w.m()));
  if (w.n() == 2 && w.m() == 4) run(w, Pattern24{}, a, unit_begin, unit_end);
  else run(w, PatternAny{w.n(), w.m(), w.position_bits(), w.groups_per_word()}, a, unit_begin, unit_end);
}

}  // namespace sparsert
