// N:M × packed batch on NEON (kernels/simd/spmm_nm_f32.hpp): the blocked driver of simd/sparse_rows_batched.hpp,
// tiles of up to 16 (4 × 4) batch lanes, each stored value broadcast against its input row.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

static_assert(spmm_nm_tile<Neon>() == 16, "spmm_nm_f32_neon_16: the tile in its name and kernels.def");

void spmm_nm_f32_neon_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batched<Neon, false>(w, a, unit_begin, unit_end);  // nm24_columns not yet timed on an ARM core
}

}  // namespace sparsert
