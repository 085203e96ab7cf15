// Dense kernel bodies for the AVX2 and AVX-512 files, over a vector type V (vec_avx2.hpp, vec_avx512.hpp).
// Weight layout: sparsert/dense.hpp (row-major, rows not padded, so the last columns of a row are
// read with masked loads). Input and output conventions: kernels/kernel.hpp.
#pragma once

#include <cassert>

#include "kernels/x86/common_x86.hpp"
#include "sparsert/dense.hpp"

namespace sparsert {
namespace {

// y[m] = W[m, :] · x for MR rows at once: every x vector feeds MR rows, and two accumulators per
// row hide the FMA latency. wr points at row 0 of the block, rows are K floats apart.
template <class V, int MR>
void dense_dot_rows(const float* wr, int64_t K, const float* x, float* y) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  F acc[MR][2];
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = V::zero();
  int64_t k = 0;
  for (; k + 2 * W <= K; k += 2 * W) {
    const F x0 = V::load(x + k), x1 = V::load(x + k + W);
    for (int m = 0; m < MR; ++m) {
      acc[m][0] = V::fmadd(V::load(wr + m * K + k), x0, acc[m][0]);
      acc[m][1] = V::fmadd(V::load(wr + m * K + k + W), x1, acc[m][1]);
    }
  }
  for (; k < K; k += W) {  // at most two steps, masked: neither x nor W is padded
    const int n = static_cast<int>(min_i64(K - k, W));
    const F x0 = V::load_first(x + k, n);
    for (int m = 0; m < MR; ++m) acc[m][0] = V::fmadd(V::load_first(wr + m * K + k, n), x0, acc[m][0]);
  }
  // Constant indices (here and in every kernel's final stores) keep acc in registers: a runtime
  // index after the loop makes GCC keep a memory copy of the array, updated in the hot loop.
  unroll<MR>([&](auto m) { y[m.value] = V::sum(V::add(acc[m.value][0], acc[m.value][1])); });
}

// dense_dot_rows for a leftover block of `rows` < MR + 1 rows.
template <class V, int MR>
void dense_dot_rows_upto(int rows, const float* wr, int64_t K, const float* x, float* y) {
  if constexpr (MR > 1) {
    if (rows < MR) return dense_dot_rows_upto<V, MR - 1>(rows, wr, K, x, y);
  }
  dense_dot_rows<V, MR>(wr, K, x, y);
}

template <class V>
void spmm_dense_batch1(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const DenseMatrix&>(weight);
  constexpr int MR = V::kRegs / 4;  // 2 accumulators per row, half the registers
  const int64_t K = w.cols();
  int64_t r = r0;
  for (; r + MR <= r1; r += MR) dense_dot_rows<V, MR>(w.values() + r * K, K, a.x, a.y + r);
  if (r < r1) dense_dot_rows_upto<V, MR - 1>(static_cast<int>(r1 - r), w.values() + r * K, K, a.x, a.y + r);
  finish_vector<V>(a, r0, r1);
}

// Rows of the batched register block: MR × NV accumulators plus NV input vectors and one broadcast
// fill the register file (6 × 2 on AVX2); at most 8 weight rows stream at once.
template <class V, int NV>
constexpr int dense_tile_rows() {
  const int mr = (V::kRegs - NV - 1) / NV;
  return mr < 8 ? mr : 8;
}

// Columns of W per pass of the batched kernel: MR weight rows × kDenseKBlock floats (6 KiB) stay in L1
// across all batch tiles, and the input panel (kDenseKBlock × ldx) in L2 across all row blocks.
// Without this blocking W streamed from memory once per 16-lane tile: 0.4-0.6× torch at batch 64.
inline constexpr int64_t kDenseKBlock = 256;

// y[b0 + l, m] (+)= W[m, k0:k0+kn] · x[k0:k0+kn, b0 + l] for MR rows and NV vectors of lanes: each x
// vector feeds MR rows, each weight broadcast NV vectors. `accumulate` adds to the partial sums of
// earlier column blocks already in y. wr points at W[row 0, k0], x at x[k0, 0], y at y[b0 * ldy + row 0].
template <class V, int MR, int NV>
void dense_tile(const float* wr, int64_t K, int64_t kn, const float* x, int64_t ldx, int64_t b0, float* y,
                int64_t ldy, int64_t lanes, bool accumulate) {
  using F = typename V::F;
  F acc[MR][NV];
  for (int m = 0; m < MR; ++m) {
    if (accumulate) {
      alignas(64) float t[NV * V::kWidth] = {};
      for (int64_t l = 0; l < lanes; ++l) t[l] = y[l * ldy + m];
      for (int v = 0; v < NV; ++v) acc[m][v] = V::load(t + v * V::kWidth);
    } else {
      for (int v = 0; v < NV; ++v) acc[m][v] = V::zero();
    }
  }
  for (int64_t k = 0; k < kn; ++k) {
    F xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = V::load(x + k * ldx + b0 + v * V::kWidth);
    for (int m = 0; m < MR; ++m) {
      const F wv = V::broadcast(wr + m * K + k);
      for (int v = 0; v < NV; ++v) acc[m][v] = V::fmadd(wv, xv[v], acc[m][v]);
    }
  }
  unroll<MR>([&](auto m) { store_lanes<V>(acc[m.value][0], acc[m.value][NV - 1], y + m.value, ldy, lanes); });
}

template <class V, int MR, int NV>
void dense_tile_upto(int rows, const float* wr, int64_t K, int64_t kn, const float* x, int64_t ldx, int64_t b0,
                     float* y, int64_t ldy, int64_t lanes, bool accumulate) {
  if constexpr (MR > 1) {
    if (rows < MR) return dense_tile_upto<V, MR - 1, NV>(rows, wr, K, kn, x, ldx, b0, y, ldy, lanes, accumulate);
  }
  dense_tile<V, MR, NV>(wr, K, kn, x, ldx, b0, y, ldy, lanes, accumulate);
}

// Column blocks outermost, then row blocks, then batch tiles (see kDenseKBlock); bias and activation
// once all column blocks are summed.
template <class V>
void spmm_dense_batched(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0);
  const auto& w = static_cast<const DenseMatrix&>(weight);
  constexpr int W = V::kWidth;
  const int64_t K = w.cols();
  if (K == 0) {  // no column block runs: the sums are empty
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t r = r0; r < r1; ++r) a.y[b * a.ldy + r] = 0.0f;
  }
  for (int64_t k0 = 0; k0 < K; k0 += kDenseKBlock) {
    const int64_t kn = min_i64(kDenseKBlock, K - k0);
    const bool accumulate = k0 > 0;
    const float* x = a.x + k0 * a.ldx;
    constexpr int MR = dense_tile_rows<V, 2>();
    for (int64_t r = r0; r < r1; r += MR) {
      const float* wr = w.values() + r * K + k0;
      const int rows = static_cast<int>(min_i64(MR, r1 - r));
      // Tiles of two vectors; a last tile of at most W lanes takes one (ldx pads to kBatchPad ≥ W only).
      for (int64_t b0 = 0; b0 < a.batch; b0 += 2 * W) {
        const int64_t lanes = min_i64(a.batch - b0, 2 * W);
        float* y = a.y + b0 * a.ldy + r;
        if (lanes > W) dense_tile_upto<V, MR, 2>(rows, wr, K, kn, x, a.ldx, b0, y, a.ldy, lanes, accumulate);
        else dense_tile_upto<V, MR, 1>(rows, wr, K, kn, x, a.ldx, b0, y, a.ldy, lanes, accumulate);
      }
    }
  }
  for (int64_t b = 0; b < a.batch; ++b)
    finish_rows<V>(a.y + b * a.ldy + r0, r1 - r0, a.bias != nullptr ? a.bias + r0 : nullptr, a.act);
}

}  // namespace
}  // namespace sparsert
