// CSR × vector on AVX-512 (kernels/simd/spmm_csr_f32.hpp): 16 non-zeros per FMA, their inputs gathered
// by the native gather (Avx512::gather); 32-bit-index rows go scalar. Bias and activation are applied vectorised.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_csr_f32.hpp"

namespace sparsert {

void spmm_csr_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_csr_batch1<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
