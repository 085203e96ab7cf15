// N:M × packed batch on AVX2 (kernels/simd/spmm_nm_f32.hpp): the blocked driver of simd/sparse_rows_batched.hpp,
// tiles of up to 32 (4 × 8) batch lanes, each stored value broadcast against its input row;
// 2:4 at batches up to 4 by nm24_columns (each value's input picked by a permute).
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

static_assert(spmm_nm_tile<Avx2>() == 32, "spmm_nm_f32_avx2_32: the tile in its name and kernels.def");

void spmm_nm_f32_avx2_32(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batched<Avx2, true>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
