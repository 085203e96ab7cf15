// N:M × packed batch on AVX-512 (kernels/simd/spmm_nm_f32.hpp): the blocked driver of simd/sparse_rows_batched.hpp,
// tiles of up to 64 (4 × 16) batch lanes, each stored value broadcast against its input row;
// 2:4 at batches up to 8 by nm24_columns (each value's input picked by a permute).
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

static_assert(spmm_nm_tile<Avx512>() == 64, "spmm_nm_f32_avx512_64: the tile in its name and kernels.def");

void spmm_nm_f32_avx512_64(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batched<Avx512, true>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
