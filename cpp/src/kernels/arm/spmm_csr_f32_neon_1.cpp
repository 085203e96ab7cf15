// NEON CSR kernel for batch 1: per row, 8 non-zeros per step gathered into two vector accumulators.
// Layout: csr.hpp (16- or 32-bit column indices); x a plain vector of cols() floats (ldx == 1, may be
// null when cols() == 0 since no entry then refers to it). Precondition: batch == 1.
#include <arm_neon.h>

#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

template <class Index>
inline float32x4_t gather4(const float* x, const Index* col) {
  float32x4_t v = vld1q_dup_f32(x + col[0]);
  v = vld1q_lane_f32(x + col[1], v, 1);
  v = vld1q_lane_f32(x + col[2], v, 2);
  return vld1q_lane_f32(x + col[3], v, 3);
}

template <class Index>
float row_dot(const float* val, const Index* col, int64_t i, int64_t end, const float* x) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (; i + 8 <= end; i += 8) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(val + i), gather4(x, col + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(val + i + 4), gather4(x, col + i + 4));
  }
  if (i + 4 <= end) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(val + i), gather4(x, col + i));
    i += 4;
  }
  float tail = 0.0f;
  for (; i < end; ++i) tail += val[i] * x[col[i]];
  return vaddvq_f32(vaddq_f32(acc0, acc1)) + tail;
}

template <class Index>
void run(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const int64_t* ptr = w.row_ptr();
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    const float acc = row_dot(w.values(), col, ptr[r], ptr[r + 1], a.x);
    a.y[r] = epilogue(acc, a.bias, r, a.act);
  }
}

}  // namespace

void spmm_csr_f32_neon_1(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) run(w, w.col_idx16(), a, unit_begin, unit_end);
  else run(w, w.col_idx32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
