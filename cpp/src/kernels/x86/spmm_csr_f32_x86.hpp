// CSR kernel bodies for the AVX2 and AVX-512 files, over a vector type V (vec_avx2.hpp, vec_avx512.hpp).
// Weight layout: sparsert/csr.hpp (16- or 32-bit column indices; a row's entries end at row_ptr[r+1],
// which is never read past). Input and output conventions: kernels/kernel.hpp.
#pragma once

#include <cassert>

#include "kernels/simd/common.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

// y[r] = Σ values[i] · x[col[i]], scalar with four independent accumulators. Measured against
// gathering kWidth inputs per step (16-bit indices widened in register) on Zen 3 / AVX2: the gather
// is 3-25% slower on every shape tried (768² to 4096², densities 1-30%), as Zen 3 microcodes it.
template <class Index>
void csr_rows(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t r0, int64_t r1) {
  const int64_t* ptr = w.row_ptr();
  const float* val = w.values();
  for (int64_t r = r0; r < r1; ++r) {
    int64_t i = ptr[r];
    const int64_t end = ptr[r + 1];
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; i + 4 <= end; i += 4) {
      s0 += val[i] * a.x[col[i]];
      s1 += val[i + 1] * a.x[col[i + 1]];
      s2 += val[i + 2] * a.x[col[i + 2]];
      s3 += val[i + 3] * a.x[col[i + 3]];
    }
    for (; i < end; ++i) s0 += val[i] * a.x[col[i]];
    a.y[r] = (s0 + s1) + (s2 + s3);
  }
}

template <class V>
void spmm_csr_batch1(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) csr_rows(w, w.col_idx16(), a, r0, r1);
  else csr_rows(w, w.col_idx32(), a, r0, r1);
  finish_vector<V>(a, r0, r1);
}

// One row over NV vectors of batch lanes: a broadcast weight times the input row of its column.
// Four accumulator sets take consecutive non-zeros, so each FMA chain waits on every fourth one.
template <class V, int NV, class Index>
void csr_tile(const CsrMatrix& w, const Index* col, const SpmmArgs& a, int64_t r0, int64_t r1, int64_t b0) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  constexpr int S = 4;
  const int64_t* ptr = w.row_ptr();
  const float* val = w.values();
  const int64_t ldx = a.ldx, lanes = min_i64(a.batch - b0, NV * W);
  for (int64_t r = r0; r < r1; ++r) {
    F acc[S][NV];
    for (int s = 0; s < S; ++s)
      for (int v = 0; v < NV; ++v) acc[s][v] = V::zero();
    auto step = [&](int s, int64_t i) {
      const F wv = V::set1(val[i]);
      const float* xr = a.x + int64_t{col[i]} * ldx + b0;
      for (int v = 0; v < NV; ++v) acc[s][v] = V::fmadd(wv, V::load(xr + v * W), acc[s][v]);
    };
    int64_t i = ptr[r];
    const int64_t end = ptr[r + 1];
    for (; i + S <= end; i += S)
      for (int s = 0; s < S; ++s) step(s, i + s);
    for (; i < end; ++i) step(0, i);
    for (int v = 0; v < NV; ++v) acc[0][v] = V::add(V::add(acc[0][v], acc[1][v]), V::add(acc[2][v], acc[3][v]));
    store_lanes<V>(acc[0][0], acc[0][NV - 1], a.y + b0 * a.ldy + r, a.ldy, lanes);
  }
}

template <class V>
void spmm_csr_batched(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0);
  const auto& w = static_cast<const CsrMatrix&>(weight);
  for_each_tile<V>(a, r0, r1, [&](auto nv, int64_t b0) {
    constexpr int NV = decltype(nv)::value;
    if (w.index_bits() == 16) csr_tile<V, NV>(w, w.col_idx16(), a, r0, r1, b0);
    else csr_tile<V, NV>(w, w.col_idx32(), a, r0, r1, b0);
  });
}

}  // namespace
}  // namespace sparsert
