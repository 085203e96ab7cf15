// NEON BSR kernel for batch 1, specialised for each of the 25 block shapes; units are block rows.
// Layout: bsr.hpp (row-major R×C blocks, 16- or 32-bit block-column indices); x a plain vector
// zero-padded to padded_cols() (ldx == 1). Precondition: batch == 1. Padded rows are never stored.
#include <arm_neon.h>

#include <cassert>
#include <type_traits>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/bsr.hpp"

namespace sparsert {
namespace {

// Accumulator layout per block shape. Blocks at least 4 wide keep one vector per row (columns
// folded into the lanes, summed at the end). Narrower blocks (C of 1 or 2) multiply the block as
// R·C/4 flat vectors against x repeated every C lanes, so no lane is wasted. Blocks of fewer than
// 4 entries stay scalar. Two accumulator sets (alternate blocks) hide FMA latency when registers allow.
template <int R, int C>
struct Shape {
  static constexpr bool kScalar = R * C < 4;
  static constexpr int kVecs = kScalar || C >= 4 ? R : R * C / 4;
  static constexpr int kSets = kVecs <= 8 ? 2 : 1;
  using Acc = std::conditional_t<kScalar, float, float32x4_t>;
};

inline float add(float a, float b) { return a + b; }
inline float32x4_t add(float32x4_t a, float32x4_t b) { return vaddq_f32(a, b); }

template <int R, int C>
inline void accumulate(float (&acc)[R], const float* v, const float* xb) {
  for (int rr = 0; rr < R; ++rr)
    for (int cc = 0; cc < C; ++cc) acc[rr] += v[rr * C + cc] * xb[cc];
}

template <int R, int C, int N>
inline void accumulate(float32x4_t (&acc)[N], const float* v, const float* xb) {
  if constexpr (C >= 4) {
    float32x4_t xv[C / 4];
    for (int q = 0; q < C / 4; ++q) xv[q] = vld1q_f32(xb + 4 * q);
    for (int rr = 0; rr < R; ++rr)
      for (int q = 0; q < C / 4; ++q) acc[rr] = vfmaq_f32(acc[rr], vld1q_f32(v + rr * C + 4 * q), xv[q]);
  } else {
    const float32x4_t xv = C == 2 ? vcombine_f32(vld1_f32(xb), vld1_f32(xb)) : vld1q_dup_f32(xb);
    for (int q = 0; q < N; ++q) acc[q] = vfmaq_f32(acc[q], vld1q_f32(v + 4 * q), xv);
  }
}

template <int R, int C>
inline void row_sums(const float (&acc)[R], float (&out)[R]) {
  for (int rr = 0; rr < R; ++rr) out[rr] = acc[rr];
}

template <int R, int C, int N>
inline void row_sums(const float32x4_t (&acc)[N], float (&out)[R]) {
  if constexpr (C >= 4) {
    for (int rr = 0; rr < R; ++rr) out[rr] = vaddvq_f32(acc[rr]);
  } else {
    float flat[R * C];
    for (int q = 0; q < N; ++q) vst1q_f32(flat + 4 * q, acc[q]);
    for (int rr = 0; rr < R; ++rr) out[rr] = C == 2 ? flat[2 * rr] + flat[2 * rr + 1] : flat[rr];
  }
}

template <class Index, int R, int C>
void run(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  using S = Shape<R, C>;
  const int64_t* ptr = w.row_ptr();
  for (int64_t bi = unit_begin; bi < unit_end; ++bi) {
    typename S::Acc acc[S::kSets][S::kVecs] = {};
    int64_t blk = ptr[bi];
    for (; blk + S::kSets <= ptr[bi + 1]; blk += S::kSets)
      for (int s = 0; s < S::kSets; ++s)
        accumulate<R, C>(acc[s], w.values() + (blk + s) * R * C, a.x + int64_t{bcol[blk + s]} * C);
    for (; blk < ptr[bi + 1]; ++blk) accumulate<R, C>(acc[0], w.values() + blk * R * C, a.x + int64_t{bcol[blk]} * C);
    for (int s = 1; s < S::kSets; ++s)
      for (int i = 0; i < S::kVecs; ++i) acc[0][i] = add(acc[0][i], acc[s][i]);
    float out[R];
    row_sums<R, C>(acc[0], out);
    for (int rr = 0; rr < R && bi * R + rr < w.rows(); ++rr) {
      const int64_t r = bi * R + rr;
      a.y[r] = epilogue(out[rr], a.bias, r, a.act);
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

void spmm_bsr_f32_neon_1(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const BsrMatrix&>(weight);
  assert(BsrMatrix::supports_block(w.block_rows(), w.block_cols()));
  if (w.index_bits() == 16) dispatch(w, w.block_col16(), a, unit_begin, unit_end);
  else dispatch(w, w.block_col32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
