// Scalar reference for dense weights: the oracle of the dense SIMD kernels and their fallback.
// Units are panels of DenseMatrix::kPanelRows rows (layout: sparsert/dense.hpp).
#include <algorithm>

#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/dense.hpp"

namespace sparsert {

void spmm_dense_f32_ref(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const auto& w = static_cast<const DenseMatrix&>(weight);
  constexpr int64_t P = DenseMatrix::kPanelRows;
  const int64_t k_count = w.cols();
  for (int64_t r = unit_begin * P; r < std::min(unit_end * P, w.rows()); ++r) {
    const float* wr = w.panels() + w.row_offset(r);
    for (int64_t b = 0; b < a.batch; ++b) {
      float acc = 0.0f;
      for (int64_t k = 0; k < k_count; ++k) acc += wr[k * P] * a.x[k * a.ldx + b];
      a.y[b * a.ldy + r] = epilogue(acc, a.bias, r, a.act);
    }
  }
}

}  // namespace sparsert
