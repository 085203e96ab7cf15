// Scalar reference for BSR weights, any supported block shape; units are block rows.
#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/bsr.hpp"

namespace sparsert {
namespace {

template <class Index>
void run(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const int br = w.block_rows(), bc = w.block_cols();
  const int64_t* ptr = w.row_ptr();
  for (int64_t bi = unit_begin; bi < unit_end; ++bi) {
    for (int rr = 0; rr < br; ++rr) {
      const int64_t r = bi * br + rr;
      if (r >= w.rows()) break;
      for (int64_t b = 0; b < a.batch; ++b) {
        float acc = 0.0f;
        for (int64_t blk = ptr[bi]; blk < ptr[bi + 1]; ++blk) {
          const float* v = w.values() + blk * br * bc + rr * bc;
          const float* x = a.x + int64_t{bcol[blk]} * bc * a.ldx + b;
          for (int cc = 0; cc < bc; ++cc) acc += v[cc] * x[cc * a.ldx];
        }
        a.y[b * a.ldy + r] = epilogue(acc, a.bias, r, a.act);
      }
    }
  }
}

}  // namespace

void spmm_bsr_f32_ref(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const auto& w = static_cast<const BsrMatrix&>(weight);
  if (w.index_bits() == 16) run(w, w.block_col16(), a, unit_begin, unit_end);
  else run(w, w.block_col32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
