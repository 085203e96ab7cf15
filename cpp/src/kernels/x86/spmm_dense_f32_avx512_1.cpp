// Dense × vector on AVX-512: the shared panel body (kernels/simd/spmm_dense_f32.hpp), one vector per
// panel column. Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1; units are panels.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_dense_f32.hpp"

namespace sparsert {

void spmm_dense_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batch1<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
