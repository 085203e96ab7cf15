// Dense × vector on AVX2: 4 rows share each input vector, two accumulators per row, masked
// loads for the last columns (dense rows are not padded).
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/x86/spmm_dense_f32_x86.hpp"

namespace sparsert {

void spmm_dense_f32_avx2_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batch1<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
