// One 8 × 8 float transpose through eight ymm registers, for Avx2 and Avx512 (both compile AVX):
// transpose (simd/common.hpp) moves the batched kernels' row-major partial sums into lane-major
// outputs, and packs linear layers' inputs, with it.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sparsert {
namespace {

// dst[c * ds + r] = src[r * ss + c] for r, c < 8; no alignment needed.
inline void transpose8x8_avx(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {  // [a_i0 a_j0 a_i1 a_j1 | a_i4 a_j4 a_i5 a_j5], j = i + 1, and the hi pairs
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // four rows' column c in each 128-bit half: c = 0, 1, 2, 3 | 4, 5, 6, 7
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    _mm256_storeu_ps(dst + c * ds, _mm256_permute2f128_ps(r[c], r[c + 4], 0x20));
    _mm256_storeu_ps(dst + (c + 4) * ds, _mm256_permute2f128_ps(r[c], r[c + 4], 0x31));
  }
}

}  // namespace
}  // namespace sparsert
