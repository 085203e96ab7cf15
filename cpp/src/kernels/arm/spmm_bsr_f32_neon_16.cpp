// BSR × packed batch on NEON (kernels/simd/spmm_bsr_f32.hpp), tiles of 16 batch lanes (4 × 4; a last
// tile takes the vectors it needs): block rows in register groups share each block column's inputs.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are block rows.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_bsr_f32.hpp"

namespace sparsert {

static_assert(spmm_bsr_tile<Neon>() == 16, "spmm_bsr_f32_neon_16: the tile in its name and kernels.def");

void spmm_bsr_f32_neon_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_bsr_batched<Neon>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
