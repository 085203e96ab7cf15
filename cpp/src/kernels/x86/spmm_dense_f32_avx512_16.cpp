// Dense × packed batch on AVX-512: the shared panel body (kernels/simd/spmm_dense_f32.hpp), register
// tiles of one 16-row panel × 16 batch columns.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are panels.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_dense_f32.hpp"

namespace sparsert {

static_assert(dense_tile_cols<Avx512>() == 16, "spmm_dense_f32_avx512_16: the tile in its name and kernels.def");

void spmm_dense_f32_avx512_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batched<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
