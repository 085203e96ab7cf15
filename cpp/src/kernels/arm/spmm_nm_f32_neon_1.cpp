// N:M × vector on NEON (kernels/simd/spmm_nm_f32.hpp): 2:4 picks each value's input out of its group's
// columns in register (one table lookup); other patterns run an unrolled scalar loop with constant shifts.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/spmm_nm_f32.hpp"

namespace sparsert {

void spmm_nm_f32_neon_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  spmm_nm_batch1<Neon>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
