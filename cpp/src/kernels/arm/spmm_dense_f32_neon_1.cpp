// Dense × vector on NEON: the shared panel body (kernels/simd/spmm_dense_f32.hpp), 4 vectors per
// panel column. Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1; units are panels.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_dense_f32.hpp"

namespace sparsert {

void spmm_dense_f32_neon_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batch1<Neon>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
