// BSR × vector on NEON (kernels/simd/spmm_bsr_f32.hpp): blocks narrower than 4 columns multiply whole
// against their inputs repeated across the vector; wider blocks go a block row at a time.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are block rows.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_bsr_f32.hpp"

namespace sparsert {

void spmm_bsr_f32_neon_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_bsr_batch1<Neon>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
