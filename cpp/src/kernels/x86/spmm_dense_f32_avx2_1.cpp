// Dense × vector on AVX2: the shared panel body (kernels/simd/spmm_dense_f32.hpp), 2 vectors per
// panel column. Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1; units are panels.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/spmm_dense_f32.hpp"

namespace sparsert {

void spmm_dense_f32_avx2_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batch1<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
