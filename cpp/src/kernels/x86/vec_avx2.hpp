// Avx2: 8-lane float vectors for the *_avx2 kernels. vec_avx512.hpp offers the same operations on
// 16 lanes and arm/vec_neon.hpp on 4, so the kernel bodies (simd/*.hpp) are written once over any.
// Include only from files compiled with -mavx2 -mfma (the *_avx2*.cpp glob in cpp/CMakeLists.txt).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/x86/gather_by_loads.hpp"
#include "kernels/x86/transpose8x8.hpp"
#include "kernels/x86/vec_xmm.hpp"

namespace sparsert {
namespace {

struct Avx2 {
  using F = __m256;
  using I = __m256i;
  static constexpr int kWidth = 8;
  using Narrow = Xmm4;  // lanes for a batch of at most 4
  static constexpr int kRegs = 16;  // ymm registers; kernels budget half of them for accumulators

  static F zero() { return _mm256_setzero_ps(); }
  static F set1(float v) { return _mm256_set1_ps(v); }
  static F broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  // Every lane the float whose bits are the low 32 of `bits` (a register, not memory).
  static F broadcast_bits(uint64_t bits) { return _mm256_broadcastss_ps(_mm_castsi128_ps(_mm_cvtsi32_si128(static_cast<int>(bits)))); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  // A load kept in a register for its several users (not folded into each as a memory operand).
  static F load_held(const float* p) {
    F v = load(p);
    asm("" : "+x"(v));
    return v;
  }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  // transpose() (simd/common.hpp) moves square blocks of this side through registers.
  static constexpr int kTransposeBlock = 8;
  static void transpose_block(const float* src, int64_t ss, float* dst, int64_t ds) {
    transpose8x8_avx(src, ss, dst, ds);
  }
  // max/min return the second operand when one is NaN: callers put the value there.
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  // v where v > m or v is NaN, else m (max_ps(v, m) is v > m ? v : m).
  static F max_or_nan(F m, F v) { return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q)); }
  // p[0], p[2], ..., p[14] and p[1], p[3], ..., p[15].
  static F load_even(const float* p) { return even(load(p), load(p + 8)); }
  static F load_odd(const float* p) { return odd(load(p), load(p + 8)); }
  // Lanes 0, 2, ..., 14 and 1, 3, ..., 15 of the 16 lanes a then b.
  static F even(F a, F b) { return pick_pairs<_MM_SHUFFLE(2, 0, 2, 0)>(a, b); }
  static F odd(F a, F b) { return pick_pairs<_MM_SHUFFLE(3, 1, 3, 1)>(a, b); }
  template <int Pick>
  static F pick_pairs(F a, F b) {
    const F s = _mm256_shuffle_ps(a, b, Pick);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
  }
  // For the activations of simd/activations.hpp.
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F abs(F a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static F copysign(F mag, F s) { return _mm256_or_ps(mag, _mm256_and_ps(_mm256_set1_ps(-0.0f), s)); }
  static F blend_lt(F x, F t, F a, F b) { return _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, t, _CMP_LT_OQ)); }
  static F round(F a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {  // 2^n for integral n in [-126, 127]
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
  static constexpr bool kScalef = false;  // no scalef (Avx512::scalef)
  static constexpr bool kMaskedLoads = false;  // no load_lanes (Avx512::load_lanes)
  // Lane J of each 128-bit lane of v across that lane: with load_tiled<4>, four weights broadcast
  // from one load.
  template <int J>
  static F splat4(F v) { return _mm256_permute_ps(v, J * 0x55); }

  // Lanes [0, n) of memory, n in [0, 8]; masked-off lanes read as zero and are never touched.
  static I first(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static F load_first(const float* p, int n) { return _mm256_maskload_ps(p, first(n)); }
  static void store_first(float* p, F v, int n) {  // a low half, then Xmm4's pieces (no vmaskmovps)
    if (n >= 8) return store(p, v);
    __m128 part = _mm256_castps256_ps128(v);
    if (n & 4) {
      _mm_storeu_ps(p, part);
      part = _mm256_extractf128_ps(v, 1);
      p += 4;
    }
    Xmm4::store_first(p, part, n & 3);
  }

  // x[idx[0..8)]: scalar loads (gather_by_loads.hpp), not vgatherdps.
  static F gather(const float* x, const uint16_t* idx) { return gather8_by_loads(x, idx); }

  static float sum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
  }

  // The C floats at p repeated across all lanes (C divides kWidth, C < kWidth).
  template <int C>
  static F load_tiled(const float* p) {
    static_assert(C == 1 || C == 2 || C == 4, "load_tiled: C must be 1, 2 or 4 for 8 lanes");
    if constexpr (C == 1) return _mm256_broadcast_ss(p);
    else if constexpr (C == 2) return _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(p)));
    else return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(p));
  }

  // 2:4 step: kWidth values = 4 groups over the 16 input columns at xs, positions in 16 bits of a
  // metadata word; lane l holds value l%2 of group l/2. In-lane permutes only (vpermilps reads the
  // low 2 bits of each control, the position within a group): the inputs are loaded once per step
  // as [g0|g2] and [g1|g3], so each 128-bit lane permutes within its own group, and a blend
  // interleaves the two.
  struct Nm24Inputs {
    F even, odd;
  };
  static Nm24Inputs nm24_inputs(const float* xs) { return {_mm256_loadu2_m128(xs + 8, xs), _mm256_loadu2_m128(xs + 12, xs + 4)}; }
  // A metadata word (two steps) in every lane; nm24_index<J> is step J's controls.
  static I nm24_word(const uint32_t* p) { return _mm256_set1_epi32(static_cast<int>(*p)); }
  template <int J>
  static I nm24_index(I word) {
    return _mm256_srlv_epi32(word, _mm256_setr_epi32(16 * J, 16 * J + 2, 16 * J + 4, 16 * J + 6, 16 * J + 8,
                                                     16 * J + 10, 16 * J + 12, 16 * J + 14));
  }
  static F nm24_select(const Nm24Inputs& in, I idx) {
    return _mm256_blend_ps(_mm256_permutevar_ps(in.even, idx), _mm256_permutevar_ps(in.odd, idx), 0xCC);
  }
};

}  // namespace
}  // namespace sparsert
