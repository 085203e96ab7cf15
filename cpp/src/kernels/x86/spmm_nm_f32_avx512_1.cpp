// N:M × vector on AVX-512 (kernels/simd/spmm_nm_f32.hpp): 2:4 picks each value's input out of its group's
// columns in register (one two-source permute); other patterns run an unrolled scalar loop with constant shifts.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

void spmm_nm_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batch1<Avx512>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
