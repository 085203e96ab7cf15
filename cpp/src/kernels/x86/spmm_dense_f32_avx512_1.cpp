// Dense × vector on AVX-512: 8 rows share each input vector, two accumulators per row, masked
// loads for the last columns (dense rows are not padded).
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/x86/spmm_dense_f32_x86.hpp"

namespace sparsert {

void spmm_dense_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batch1<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
