// Dense × packed batch on AVX2, tiles of 16 batch columns (2 × 8 lanes; a last tile of ≤ 8 takes one):
// register blocks of up to 8 rows × 2 vectors, each weight broadcast against its input row.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/x86/spmm_dense_f32_x86.hpp"

namespace sparsert {

void spmm_dense_f32_avx2_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_dense_batched<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
