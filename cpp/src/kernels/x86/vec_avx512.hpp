// Avx512: 16-lane float vectors for the *_avx512 kernels, the same operations as vec_avx2.hpp.
// Include only from files compiled with the AVX-512 F/BW/VL/DQ flags (the *_avx512*.cpp glob in
// cpp/CMakeLists.txt).
#pragma once

// GCC 12 implements many AVX-512 intrinsics with _mm512_undefined_*, whose self-initialisation
// trips -W(maybe-)uninitialized at the header's lines (GCC PR 105593): silence those lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/x86/gather_by_loads.hpp"
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/x86/transpose8x8.hpp"
#include "kernels/x86/vec_xmm.hpp"

namespace sparsert {
namespace {

struct Avx512 {
  using F = __m512;
  using I = __m512i;
  static constexpr int kWidth = 16;
  using Narrow = Xmm4;  // lanes for a batch of at most 4
  using Half = Avx2;    // and of 5 to 8 (simd/sparse_rows_batched.hpp)
  static constexpr int kRegs = 32;  // zmm registers; kernels budget half of them for accumulators

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float v) { return _mm512_set1_ps(v); }
  static F broadcast(const float* p) { return _mm512_set1_ps(*p); }
  // Every lane the float whose bits are the low 32 of `bits` (a register, not memory): one
  // vpbroadcastd from the integer register, 1-1.5% faster in the sparse conv tile than vmovd +
  // vbroadcastss.
  static F broadcast_bits(uint64_t bits) { return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(bits))); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  // A load kept in a register for its several users: GCC otherwise folds it into each user as a
  // memory operand, a load per use.
  static F load_held(const float* p) {
    F v = load(p);
    asm("" : "+v"(v));
    return v;
  }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  // transpose() (simd/common.hpp) moves square blocks of this side through registers.
  static constexpr int kTransposeBlock = 8;
  static void transpose_block(const float* src, int64_t ss, float* dst, int64_t ds) {
    transpose8x8_avx(src, ss, dst, ds);
  }
  // max/min return the second operand when one is NaN: callers put the value there.
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  // v where v > m or v is NaN, else m (max_ps(v, m) is v > m ? v : m).
  static F max_or_nan(F m, F v) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_max_ps(v, m), v);
  }
  // p[0], p[2], ..., p[30] and p[1], p[3], ..., p[31].
  static F load_even(const float* p) { return even(load(p), load(p + 16)); }
  static F load_odd(const float* p) { return odd(load(p), load(p + 16)); }
  // Lanes 0, 2, ..., 30 and 1, 3, ..., 31 of the 32 lanes a then b.
  static F even(F a, F b) { return pick_pairs(a, b, 0); }
  static F odd(F a, F b) { return pick_pairs(a, b, 1); }
  static F pick_pairs(F a, F b, int first) {
    const __m512i at = _mm512_add_epi32(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30),
                                        _mm512_set1_epi32(first));
    return _mm512_permutex2var_ps(a, at, b);
  }
  // even() and odd() with the lanes in another order, the same for both (in-lane shuffles, cheaper than
  // the cross-lane permutes); in_pair_order puts such a vector's lanes back in even()'s order.
  static F even_shuffled(F a, F b) { return _mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); }
  static F odd_shuffled(F a, F b) { return _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)); }
  static F in_pair_order(F v) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15), v);
  }
  // For the activations of simd/activations.hpp.
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F abs(F a) { return _mm512_abs_ps(a); }
  static F copysign(F mag, F s) {
    return _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_castps_si512(mag), _mm512_and_si512(_mm512_set1_epi32(INT32_MIN), _mm512_castps_si512(s))));
  }
  static F blend_lt(F x, F t, F a, F b) { return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, t, _CMP_LT_OQ), b, a); }
  static F round(F a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {  // 2^n for integral n in [-126, 127]
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
  // p · 2^n for integral n, to ±∞ or through subnormals to 0 beyond float's range: one vscalefps
  // where pow2 and a product take four operations and its range needs blends (VecMath::exp).
  static constexpr bool kScalef = true;
  static constexpr bool kMaskedLoads = true;  // load_lanes costs a plain load
  static F scalef(F p, F n) { return _mm512_scalef_ps(p, n); }
  // Lane J of each 128-bit lane of v across that lane: with load_tiled<4>, four weights broadcast
  // from one load.
  template <int J>
  static F splat4(F v) { return _mm512_permute_ps(v, J * 0x55); }

  // Lanes [0, n) of memory, n in [0, 16]; masked-off lanes read as zero and are never touched.
  static __mmask16 first(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static F load_first(const float* p, int n) { return _mm512_maskz_loadu_ps(first(n), p); }
  // Lanes [lo, hi) of memory (0 ≤ lo ≤ hi ≤ 16); the other lanes are fill's and memory there is
  // never touched.
  using Lanes = __mmask16;
  static Lanes lanes(int lo, int hi) { return static_cast<__mmask16>(first(hi) & ~first(lo)); }
  static F load_lanes(const float* p, Lanes m, F fill) { return _mm512_mask_loadu_ps(fill, m, p); }
  static void store_first(float* p, F v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }

  // x[idx[0..16)]: the native gather (Avx512LoadGather below assembles it from scalar loads).
  static F gather(const float* x, const uint16_t* idx) {
    const __m512i i = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx)));
    return _mm512_i32gather_ps(i, x, 4);
  }
  // x[idx[0..8)] in the low 8 lanes, zero above: a row's tail of 8 to 15 non-zeros.
  static F gather_half(const float* x, const uint16_t* idx) {
    const __m256i i = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(idx)));
    return _mm512_zextps256_ps512(_mm256_i32gather_ps(x, i, 4));
  }

  static float sum(F v) { return _mm512_reduce_add_ps(v); }

  // The C floats at p repeated across all lanes (C divides kWidth, C < kWidth).
  template <int C>
  static F load_tiled(const float* p) {
    static_assert(C == 1 || C == 2 || C == 4 || C == 8, "load_tiled: C must be 1, 2, 4 or 8 for 16 lanes");
    if constexpr (C == 1) return _mm512_set1_ps(*p);
    else if constexpr (C == 2)
      return _mm512_castpd_ps(_mm512_broadcastsd_pd(_mm_load_sd(reinterpret_cast<const double*>(p))));
    else if constexpr (C == 4) return _mm512_broadcast_f32x4(_mm_loadu_ps(p));
    else return _mm512_broadcast_f32x8(_mm256_loadu_ps(p));
  }

  // 2:4 step: kWidth values = 8 groups over 32 input columns, positions in all 32 bits of a metadata
  // word; lane l holds value l%2 of group l/2, so its column is (l/2)*4 + 2-bit position.
  // nm24_word puts the word (one step) in every lane; nm24_index<0> is the step's columns.
  static I nm24_word(const uint32_t* p) { return _mm512_set1_epi32(static_cast<int>(*p)); }
  template <int J>
  static I nm24_index(I word) {
    static_assert(J == 0, "one step per metadata word");
    const I pos = _mm512_and_si512(
        _mm512_srlv_epi32(word, _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)),
        _mm512_set1_epi32(3));
    return _mm512_add_epi32(pos, _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28));
  }
  // The step's 32 input columns, loaded once for every row of the step; nm24_select picks the
  // columns of nm24_index out of them (one two-source permute).
  struct Nm24Inputs {
    F lo, hi;
  };
  static Nm24Inputs nm24_inputs(const float* xs) { return {load(xs), load(xs + 16)}; }
  static F nm24_select(const Nm24Inputs& in, I idx) { return _mm512_permutex2var_ps(in.lo, idx, in.hi); }
};

// Avx512 with the gather assembled from scalar loads, for CPUs whose vgatherdps is slower than that
// (Zen 4: 1.65x slower in batch-1 CSR); spmm_csr_f32_avx512_1.cpp measures which to take.
struct Avx512LoadGather : Avx512 {
  static F gather(const float* x, const uint16_t* idx) {
    return _mm512_insertf32x8(_mm512_castps256_ps512(gather8_by_loads(x, idx)), gather8_by_loads(x, idx + 8), 1);
  }
  static F gather_half(const float* x, const uint16_t* idx) { return _mm512_zextps256_ps512(gather8_by_loads(x, idx)); }
};

}  // namespace
}  // namespace sparsert
