// CSR × packed batch on AVX-512, tiles of 32 batch columns (2 × 16 lanes; a last tile of ≤ 16 takes one):
// per row, each non-zero broadcasts against its input row, four accumulator sets deep.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/x86/spmm_csr_f32_x86.hpp"

namespace sparsert {

void spmm_csr_f32_avx512_32(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_csr_batched<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
