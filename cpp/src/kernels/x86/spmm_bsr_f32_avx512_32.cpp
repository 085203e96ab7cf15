// BSR × packed batch on AVX-512 (kernels/simd/spmm_bsr_f32.hpp), tiles of 32 batch lanes (2 × 16; a last
// tile takes the vectors it needs): block rows in register groups share each block column's inputs.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are block rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_bsr_f32.hpp"

namespace sparsert {

static_assert(spmm_bsr_tile<Avx512>() == 32, "spmm_bsr_f32_avx512_32: the tile in its name and kernels.def");

void spmm_bsr_f32_avx512_32(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_bsr_batched<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
