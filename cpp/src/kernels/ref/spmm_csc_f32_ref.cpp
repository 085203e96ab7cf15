// CSC × packed input, any batch: zero the outputs, scatter every stored weight of each column whose
// input is non-zero (per batch column), then apply bias and activation. A zero input is skipped
// whole, which is the point of the format; NaN and Inf are non-zero and propagate.
// Preconditions (kernels/kernel.hpp): one unit (the whole matrix); x packed with ldx ≥ batch.
#include <cassert>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/csc.hpp"

namespace sparsert {

namespace {

template <class Index>
void scatter(const CscMatrix& w, const Index* row, const SpmmArgs& a) {
  const int64_t* ptr = w.col_ptr();
  const float* val = w.values();
  for (int64_t c = 0; c < w.cols(); ++c) {
    for (int64_t b = 0; b < a.batch; ++b) {
      const float xv = a.x[c * a.ldx + b];
      if (xv == 0.0f) continue;
      float* y = a.y + b * a.ldy;
      for (int64_t i = ptr[c]; i < ptr[c + 1]; ++i) y[row[i]] += val[i] * xv;
    }
  }
}

}  // namespace

void spmm_csc_f32_ref(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  assert(unit_begin == 0 && unit_end == 1);
  (void)unit_begin, (void)unit_end;
  const auto& w = static_cast<const CscMatrix&>(weight);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t r = 0; r < w.rows(); ++r) a.y[b * a.ldy + r] = 0.0f;
  if (w.index_bits() == 16) scatter(w, w.row_idx16(), a);
  else scatter(w, w.row_idx32(), a);
  for (int64_t b = 0; b < a.batch; ++b)
    for (int64_t r = 0; r < w.rows(); ++r) a.y[b * a.ldy + r] = epilogue(a.y[b * a.ldy + r], a.bias, r, a.act);
}

}  // namespace sparsert
