// Winograd F(4×4, 3×3)'s transforms of TensorKernels (kernels/tensor_kernels.hpp) over a vector type V
// (x86/vec_avx2.hpp, x86/vec_avx512.hpp, arm/vec_neon.hpp). The transforms run with vectors along
// channels (16 channels of a pixel-major image) or output tiles (16 tiles of a product row), and a
// 16 × 16 transpose turns each into the other's layout, so that the products between them are
// conv_gemm's, vectors along tiles.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/simd/activations.hpp"
#include "kernels/simd/common.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

template <class V>
struct WinogradF32 {
  using F = typename V::F;
  static constexpr int W = V::kWidth;
  static constexpr int kA = kWinogradAlpha, kM = kWinogradTile, kB = kWinogradBlock;
  static_assert(kB % W == 0, "a block is whole vectors");

  // The first column J ≥ J0 of row I of `m` that is not 0 (Cols when none).
  template <const auto& m, int I, int J0, int Cols>
  static constexpr int first_nonzero() {
    if constexpr (J0 >= Cols) return Cols;
    else if constexpr (m[I][J0] != 0.0f) return J0;
    else return first_nonzero<m, I, J0 + 1, Cols>();
  }

  // out = Σ_j m[I][j] · in[j · step], the constant coefficients folded in: 0 skipped, ±1 an add.
  template <const auto& m, int I, int Cols, int Step>
  static F combine(const F* in) {
    constexpr int J0 = first_nonzero<m, I, 0, Cols>();
    static_assert(J0 < Cols, "a transform row of zeros");
    constexpr float c0 = m[I][J0];
    F acc = c0 == 1.0f ? in[J0 * Step] : c0 == -1.0f ? V::sub(V::zero(), in[J0 * Step]) : V::mul(V::set1(c0), in[J0 * Step]);
    unroll<Cols>([&](auto j) {
      constexpr int J = decltype(j)::value;
      if constexpr (J > J0) {
        constexpr float c = m[I][J];
        if constexpr (c == 1.0f) acc = V::add(acc, in[J * Step]);
        else if constexpr (c == -1.0f) acc = V::sub(acc, in[J * Step]);
        else if constexpr (c != 0.0f) acc = V::fmadd(V::set1(c), in[J * Step], acc);
      }
    });
    return acc;
  }

  // out (Rows × Rows, row-major) = m · d · mᵀ for d (Cols × Cols, row-major): the columns first.
  template <const auto& m, int Rows, int Cols>
  static void transform(const F* d, F* out) {
    F t[Rows * Cols];  // t = m · d
    unroll<Rows>([&](auto i) {
      unroll<Cols>([&](auto s) { t[i.value * Cols + s.value] = combine<m, decltype(i)::value, Cols, Cols>(d + s.value); });
    });
    unroll<Rows>([&](auto i) {
      unroll<Rows>([&](auto j) { out[i.value * Rows + j.value] = combine<m, decltype(j)::value, Cols, 1>(t + i.value * Cols); });
    });
  }

  static void input(const WinogradInputArgs& a) {
    alignas(64) float tmp[kA * kA * kB * kB];  // [ξ][tile][channel] for one group of tiles
    for (int64_t t0 = 0; t0 < a.count; t0 += kB) {
      const int64_t n = min_i64(kB, a.count - t0);
      for (int64_t b = 0; b < a.blocks; ++b) {
        const float* image = a.image + b * a.block_stride;
        for (int64_t i = 0; i < n; ++i) {
          const float* tile = image + a.tiles[t0 + i].in;
          for (int q = 0; q < kB; q += W) {
            F d[kA * kA], v[kA * kA];
            unroll<kA>([&](auto r) {
              unroll<kA>([&](auto s) { d[r.value * kA + s.value] = V::load(tile + (r.value * a.wp + s.value) * kB + q); });
            });
            transform<kWinogradBT, kA, kA>(d, v);
            unroll<kA * kA>([&](auto x) { V::store(tmp + (x.value * kB + i) * kB + q, v[x.value]); });
          }
        }
        for (int x = 0; x < kA * kA; ++x) {
          transpose<V>(tmp + x * kB * kB, kB, a.v + x * a.xi_stride + b * kB * a.ldv + t0, a.ldv, n, kB);
        }
      }
    }
  }

  template <Activation A>
  static void output_with(const WinogradOutputArgs& a) {
    alignas(64) float sums[kM * kM * kB];  // [output (a, b)][tile]
    alignas(64) float blocks[kB * kM * kM];  // [tile][output (a, b)]
    for (int64_t r = 0; r < a.rows; ++r) {
      const F bias = a.bias != nullptr ? V::broadcast(a.bias + r) : V::zero();
      for (int64_t t0 = 0; t0 < a.count; t0 += kB) {
        const int64_t n = min_i64(kB, a.count - t0);
        for (int q = 0; q < kB; q += W) {
          const int lanes = static_cast<int>(min_i64(W, n - q));
          if (lanes <= 0) break;
          F m[kA * kA], y[kM * kM];
          unroll<kA * kA>([&](auto x) {
            const float* p = a.m + x.value * a.xi_stride + r * a.ldm + t0 + q;
            m[x.value] = lanes == W ? V::load(p) : V::load_first(p, lanes);
          });
          transform<kWinogradAT, kM, kA>(m, y);
          unroll<kM * kM>([&](auto x) { V::store(sums + x.value * kB + q, activate_vec<V, A>(V::add(y[x.value], bias))); });
        }
        transpose<V>(sums, kB, blocks, kM * kM, kM * kM, n);
        for (int64_t i = 0; i < n; ++i) {
          const WinogradTile& tile = a.tiles[t0 + i];
          float* out = a.y + r * a.ldy + tile.out;
          const float* src = blocks + i * kM * kM;
          for (int32_t row = 0; row < tile.rows; ++row) {
            // A whole row is one fixed-size copy (inlined); a library call per row took half the time.
            if (tile.cols == kM) std::memcpy(out + row * a.ow, src + row * kM, sizeof(float) * kM);
            else std::copy(src + row * kM, src + row * kM + tile.cols, out + row * a.ow);
          }
        }
      }
    }
  }

  static void output(const WinogradOutputArgs& a) {
    with_activation(a.act, [&](auto s) { output_with<decltype(s)::value>(a); });
  }
};

}  // namespace
}  // namespace sparsert
