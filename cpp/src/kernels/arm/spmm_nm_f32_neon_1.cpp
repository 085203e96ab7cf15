// NEON N:M kernel for batch 1: decodes one metadata word at a time and gathers the inputs its values
// use, four per vector. Layout: nm.hpp; x a plain vector zero-padded to padded_cols() (ldx == 1).
// Precondition: batch == 1. 2:4 gets a compile-time pattern; other patterns share a run-time one.
#include <arm_neon.h>

#include <algorithm>
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {
namespace {

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

inline float32x4_t gather4(const float* x, const int32_t* off) {
  float32x4_t v = vld1q_dup_f32(x + off[0]);
  v = vld1q_lane_f32(x + off[1], v, 1);
  v = vld1q_lane_f32(x + off[2], v, 2);
  return vld1q_lane_f32(x + off[3], v, 3);
}

template <class P>
float row_dot(const P& p, const float* v, const uint32_t* meta, int64_t groups, const float* x) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  float tail = 0.0f;
  for (int64_t g0 = 0; g0 < groups; g0 += p.groups_per_word, ++meta) {
    const int nv = static_cast<int>(std::min<int64_t>(p.groups_per_word, groups - g0)) * p.n;
    int32_t off[16];  // a word holds at most 32 / bits ≤ 16 values
    decode(p, *meta, nv, off);
    const float* vw = v + g0 * p.n;
    const float* xw = x + g0 * p.m;
    int j = 0;
    for (; j + 8 <= nv; j += 8) {
      acc0 = vfmaq_f32(acc0, vld1q_f32(vw + j), gather4(xw, off + j));
      acc1 = vfmaq_f32(acc1, vld1q_f32(vw + j + 4), gather4(xw, off + j + 4));
    }
    if (j + 4 <= nv) {
      acc0 = vfmaq_f32(acc0, vld1q_f32(vw + j), gather4(xw, off + j));
      j += 4;
    }
    for (; j < nv; ++j) tail += vw[j] * xw[off[j]];
  }
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + tail;
}

template <class P>
void run(const NmMatrix& w, const P& p, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const int64_t groups = w.groups();
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    const float acc =
        row_dot(p, w.values() + r * groups * p.n, w.meta() + r * w.words_per_row(), groups, a.x);
    a.y[r] = epilogue(acc, a.bias, r, a.act);
  }
}

}  // namespace

void spmm_nm_f32_neon_1(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const NmMatrix&>(weight);
  assert(NmMatrix::supports(w.n(), w.m()));
  if (w.n() == 2 && w.m() == 4) run(w, Pattern24{}, a, unit_begin, unit_end);
  else run(w, PatternAny{w.n(), w.m(), w.position_bits(), w.groups_per_word()}, a, unit_begin, unit_end);
}

}  // namespace sparsert
