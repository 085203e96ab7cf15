// Xmm4: 4-lane float vectors (128-bit, FMA) for the batched driver's narrow tiles (batch ≤ 4), where
// Avx2's 8 or Avx512's 16 lanes would mostly compute padding. The same operations as vec_avx2.hpp
// that simd/sparse_rows_batched.hpp and simd/common.hpp's finish_rows use. Include only from files
// compiled with -mavx2 -mfma or wider (vec_avx2.hpp, vec_avx512.hpp include it).
#pragma once

#include <immintrin.h>

namespace sparsert {
namespace {

struct Xmm4 {
  using F = __m128;
  static constexpr int kWidth = 4;

  static F zero() { return _mm_setzero_ps(); }
  static F set1(float v) { return _mm_set1_ps(v); }
  static F broadcast(const float* p) { return _mm_broadcast_ss(p); }
  static F load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, F v) { _mm_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm_add_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm_fmadd_ps(a, b, c); }
  static constexpr int kTransposeBlock = 4;
  static void transpose_block(const float* src, int64_t ss, float* dst, int64_t ds) {
    __m128 r0 = _mm_loadu_ps(src), r1 = _mm_loadu_ps(src + ss), r2 = _mm_loadu_ps(src + 2 * ss),
           r3 = _mm_loadu_ps(src + 3 * ss);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(dst, r0);
    _mm_storeu_ps(dst + ds, r1);
    _mm_storeu_ps(dst + 2 * ds, r2);
    _mm_storeu_ps(dst + 3 * ds, r3);
  }
  // max/min return the second operand when one is NaN: callers put the value there.
  static F max(F a, F b) { return _mm_max_ps(a, b); }
  static F min(F a, F b) { return _mm_min_ps(a, b); }
  static F sub(F a, F b) { return _mm_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm_mul_ps(a, b); }
  static F div(F a, F b) { return _mm_div_ps(a, b); }
  static F abs(F a) { return _mm_andnot_ps(_mm_set1_ps(-0.0f), a); }
  static F copysign(F mag, F s) { return _mm_or_ps(mag, _mm_and_ps(_mm_set1_ps(-0.0f), s)); }
  static F blend_lt(F x, F t, F a, F b) { return _mm_blendv_ps(b, a, _mm_cmplt_ps(x, t)); }
  static F round(F a) { return _mm_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {  // 2^n for integral n in [-126, 127]
    return _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23));
  }
  static constexpr bool kScalef = false;  // no scalef (Avx512::scalef)
  static constexpr bool kMaskedLoads = false;  // no load_lanes (Avx512::load_lanes)
  // The C floats at p repeated across all lanes (C divides kWidth, C ≤ kWidth).
  template <int C>
  static F load_tiled(const float* p) {
    static_assert(C == 4, "load_tiled: C must be 4 for 4 lanes");
    __m128 v = _mm_loadu_ps(p);
    // GCC turns splat4(load) back into four broadcast loads; a narrow tile's non-zero already costs
    // three loads (index, weight, input), so keep the one load (12% faster at batch 2-4).
    asm("" : "+x"(v));
    return v;
  }
  // Lane J of v in every lane.
  template <int J>
  static F splat4(F v) { return _mm_permute_ps(v, J * 0x55); }

  // Lanes [0, n) of memory, n in [0, 4]; lanes from n on read as zero and are never touched.
  static __m128i first(int n) { return _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)); }
  static F load_first(const float* p, int n) { return _mm_maskload_ps(p, first(n)); }
  // In pieces of 2 and 1 lanes, not vmaskmovps, which Zen 3 runs far slower (bench/NOTES.md, ResNet-18
  // and convolutions).
  static void store_first(float* p, F v, int n) {
    if (n >= 4) return _mm_storeu_ps(p, v);
    if (n & 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), v);
      v = _mm_movehl_ps(v, v);
      p += 2;
    }
    if (n & 1) _mm_store_ss(p, v);
  }
};

}  // namespace
}  // namespace sparsert
