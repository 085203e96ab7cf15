// BSR × vector on AVX-512 (kernels/simd/spmm_bsr_f32.hpp): blocks narrower than 16 columns multiply whole
// against their inputs repeated across the vector; wider blocks go a block row at a time.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are block rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_bsr_f32.hpp"

namespace sparsert {

void spmm_bsr_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_bsr_batch1<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
