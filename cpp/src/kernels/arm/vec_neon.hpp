// Neon: 4-lane float vectors with the operations of x86/vec_avx2.hpp that the shared kernel bodies
// (kernels/simd/*.hpp) use, so those bodies serve aarch64 as well.
#pragma once

#include <arm_neon.h>

#include <cstdint>
#include <cstring>

namespace sparsert {
namespace {

struct Neon {
  using F = float32x4_t;
  using I = uint32x4_t;
  static constexpr int kWidth = 4;
  using Narrow = Neon;  // a batch of at most 4 fills one vector already
  static constexpr int kRegs = 32;  // v0-v31; kernels budget half of them for accumulators

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F broadcast(const float* p) { return vld1q_dup_f32(p); }
  // Every lane the float whose bits are the low 32 of `bits` (a register, not memory).
  static F broadcast_bits(uint64_t bits) { return vreinterpretq_f32_u32(vdupq_n_u32(static_cast<uint32_t>(bits))); }
  static F load(const float* p) { return vld1q_f32(p); }
  static F load_held(const float* p) { return load(p); }  // NEON's FMAs take no memory operand
  static void store(float* p, F v) { vst1q_f32(p, v); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F fmadd(F a, F b, F c) { return vfmaq_f32(c, a, b); }
  static constexpr int kTransposeBlock = 4;
  static void transpose_block(const float* src, int64_t ss, float* dst, int64_t ds) {
    const F r0 = vld1q_f32(src), r1 = vld1q_f32(src + ss), r2 = vld1q_f32(src + 2 * ss), r3 = vld1q_f32(src + 3 * ss);
    // Pairs of rows interleaved (t0 = r0[0] r1[0] r0[2] r1[2], ...), then 64-bit halves exchanged.
    const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)), t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)),
                      t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)), t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
    vst1q_f32(dst, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
    vst1q_f32(dst + ds, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
    vst1q_f32(dst + 2 * ds, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
    vst1q_f32(dst + 3 * ds, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
  }
  // As on x86, the second operand is returned when one is NaN (callers put the value there).
  static F max(F a, F b) { return vbslq_f32(vcgtq_f32(a, b), a, b); }
  static F min(F a, F b) { return vbslq_f32(vcltq_f32(a, b), a, b); }
  // v where v > m or v is NaN, else m.
  static F max_or_nan(F m, F v) { return vbslq_f32(vorrq_u32(vcgtq_f32(v, m), vmvnq_u32(vceqq_f32(v, v))), v, m); }
  // p[0], p[2], p[4], p[6] and p[1], p[3], p[5], p[7].
  static F load_even(const float* p) { return vld2q_f32(p).val[0]; }
  static F load_odd(const float* p) { return vld2q_f32(p).val[1]; }
  // Lanes 0, 2, 4, 6 and 1, 3, 5, 7 of the 8 lanes a then b.
  static F even(F a, F b) { return vuzp1q_f32(a, b); }
  static F odd(F a, F b) { return vuzp2q_f32(a, b); }
  // For the activations of simd/activations.hpp.
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F div(F a, F b) { return vdivq_f32(a, b); }
  static F abs(F a) { return vabsq_f32(a); }
  static F copysign(F mag, F s) { return vbslq_f32(vdupq_n_u32(0x80000000u), s, mag); }
  static F blend_lt(F x, F t, F a, F b) { return vbslq_f32(vcltq_f32(x, t), a, b); }
  static F round(F a) { return vrndnq_f32(a); }
  static F pow2(F n) {  // 2^n for integral n in [-126, 127]
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23));
  }
  static constexpr bool kScalef = false;  // no scalef (Avx512::scalef)
  static constexpr bool kMaskedLoads = false;  // no load_lanes (Avx512::load_lanes)

  // Lanes [0, n) of memory, n in [0, 4]; the other lanes read as zero and are never touched.
  static F load_first(const float* p, int n) {
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int i = 0; i < n; ++i) t[i] = p[i];
    return vld1q_f32(t);
  }
  static void store_first(float* p, F v, int n) {
    float t[4];
    vst1q_f32(t, v);
    for (int i = 0; i < n; ++i) p[i] = t[i];
  }

  static float sum(F v) { return vaddvq_f32(v); }

  // The C floats at p repeated across all lanes (C divides kWidth, C ≤ kWidth).
  template <int C>
  static F load_tiled(const float* p) {
    static_assert(C == 1 || C == 2 || C == 4, "load_tiled: C must be 1, 2 or 4 for 4 lanes");
    if constexpr (C == 1) return vld1q_dup_f32(p);
    else if constexpr (C == 2) return vcombine_f32(vld1_f32(p), vld1_f32(p));
    else return vld1q_f32(p);
  }
  // Lane J of v in every lane: with load_tiled<4>, four weights from one load (an FMA by element).
  template <int J>
  static F splat4(F v) { return vdupq_laneq_f32(v, J); }

  // x[idx[0..4)]: NEON has no gather; lane loads, the four indices from one 64-bit load.
  static F gather(const float* x, const uint16_t* idx) {
    uint64_t word;
    std::memcpy(&word, idx, sizeof(word));
    auto at = [&](int k) { return x + ((word >> (16 * k)) & 0xffffu); };
    F v = vld1q_dup_f32(at(0));
    v = vld1q_lane_f32(at(1), v, 1);
    v = vld1q_lane_f32(at(2), v, 2);
    return vld1q_lane_f32(at(3), v, 3);
  }

  // 2:4 step: kWidth values = 2 groups over the 8 input columns at xs, positions in 8 bits of a
  // metadata word (four steps a word); lane l holds value l%2 of group l/2. The columns are picked
  // by one table lookup over the 32 bytes of the step's inputs, so no input is loaded per value.
  using Nm24Inputs = uint8x16x2_t;
  static Nm24Inputs nm24_inputs(const float* xs) {
    return {{vreinterpretq_u8_f32(vld1q_f32(xs)), vreinterpretq_u8_f32(vld1q_f32(xs + 4))}};
  }
  static I nm24_word(const uint32_t* p) { return vld1q_dup_u32(p); }
  // Step J's byte indices: lane l's column c = (l/2)·4 + position, as bytes 4c .. 4c + 3.
  template <int J>
  static I nm24_index(I word) {
    const int32_t shifts[4] = {-8 * J, -8 * J - 2, -8 * J - 4, -8 * J - 6};  // right shifts
    const uint32_t groups[4] = {0, 0, 4, 4};
    const I column = vaddq_u32(vandq_u32(vshlq_u32(word, vld1q_s32(shifts)), vdupq_n_u32(3)), vld1q_u32(groups));
    return vmlaq_n_u32(vdupq_n_u32(0x03020100u), column, 0x04040404u);
  }
  static F nm24_select(const Nm24Inputs& in, I idx) {
    return vreinterpretq_f32_u8(vqtbl2q_u8(in, vreinterpretq_u8_u32(idx)));
  }
};

}  // namespace
}  // namespace sparsert
