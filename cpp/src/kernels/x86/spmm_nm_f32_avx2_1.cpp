// N:M × vector on AVX2 (kernels/simd/spmm_nm_f32.hpp): 2:4 picks each value's input out of its group's
// columns in register (in-lane permutes); other patterns run an unrolled scalar loop with constant shifts.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

void spmm_nm_f32_avx2_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batch1<Avx2>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
