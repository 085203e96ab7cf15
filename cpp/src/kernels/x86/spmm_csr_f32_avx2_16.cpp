// CSR × packed batch on AVX2: the blocked driver of simd/sparse_rows_batched.hpp, tiles of up to
// 32 (4 × 8) batch lanes, each non-zero broadcast against its input row, held in cache by column blocks.
// Preconditions (kernels/kernel.hpp): batch ≥ 2, ldx a multiple of 16, lanes ≥ batch zero; units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/x86/spmm_csr_f32_x86.hpp"

namespace sparsert {

void spmm_csr_f32_avx2_16(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_csr_batched<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
