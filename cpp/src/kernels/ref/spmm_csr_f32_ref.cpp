// Scalar reference for CSR weights (both index widths).
#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

template <class Index>
void run(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const int64_t* ptr = w.row_ptr();
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    for (int64_t b = 0; b < a.batch; ++b) {
      float acc = 0.0f;
      for (int64_t i = ptr[r]; i < ptr[r + 1]; ++i) acc += w.values()[i] * a.x[int64_t{col[i]} * a.ldx + b];
      a.y[a.transposed_y ? r * a.ldy + b : b * a.ldy + r] = epilogue(acc, a.bias, r, a.act);
    }
  }
}

}  // namespace

void spmm_csr_f32_ref(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) run(w, w.col_idx16(), a, unit_begin, unit_end);
  else run(w, w.col_idx32(), a, unit_begin, unit_end);
}

}  // namespace sparsert
