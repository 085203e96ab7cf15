// Neon: 4-lane float vectors with the operations of x86/vec_avx2.hpp that the shared kernel bodies
// (kernels/simd/*.hpp) use, so those bodies serve aarch64 as well.
#pragma once

#include <arm_neon.h>

#include <cstdint>

namespace sparsert {
namespace {

struct Neon {
  using F = float32x4_t;
  static constexpr int kWidth = 4;
  static constexpr int kRegs = 32;  // v0-v31

  static F zero() { return vdupq_n_f32(0.0f); }
  static F set1(float v) { return vdupq_n_f32(v); }
  static F broadcast(const float* p) { return vld1q_dup_f32(p); }
  static F load(const float* p) { return vld1q_f32(p); }
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
};

}  // namespace
}  // namespace sparsert
