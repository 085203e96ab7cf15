// CSR × vector on AVX2 (kernels/simd/spmm_csr_f32.hpp): 8 non-zeros per FMA, their inputs gathered
// assembled from scalar loads (Avx2::gather); 32-bit-index rows go scalar. Bias and activation are applied vectorised.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/spmm_csr_f32.hpp"

namespace sparsert {

void spmm_csr_f32_avx2_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_csr_batch1<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
