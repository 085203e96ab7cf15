// CSR × packed batch on NEON (kernels/simd/spmm_csr_f32.hpp): the blocked driver of simd/sparse_rows_batched.hpp,
// tiles of up to 16 (4 × 4) batch lanes, each non-zero broadcast against its input row.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16 with lanes ≥ batch zero, or ldx == 1
// (overlapping rows); units are rows.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_csr_f32.hpp"

namespace sparsert {

static_assert(spmm_csr_tile<Neon>() == 16, "spmm_csr_f32_neon_16: the tile in its name and kernels.def");

void spmm_csr_f32_neon_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_csr_batched<Neon>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
