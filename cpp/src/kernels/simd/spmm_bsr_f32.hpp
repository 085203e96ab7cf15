// BSR kernel bodies for the AVX2, AVX-512 and NEON files, over a vector type V (x86/vec_avx2.hpp,
// x86/vec_avx512.hpp, arm/vec_neon.hpp).
// Weight layout: sparsert/bsr.hpp (R × C blocks, R, C ∈ {1, 2, 4, 8, 16}, each shape compiled
// separately; units are block rows; rows past w.rows() are computed or skipped, never stored).
// Input and output conventions: kernels/kernel.hpp.
#pragma once

#include <cassert>

#include "kernels/simd/common.hpp"
#include "sparsert/bsr.hpp"

namespace sparsert {
namespace {

// Loops that index accumulators carry `#pragma GCC unroll`: GCC does not always unroll them inside
// a block's loops on its own, and an accumulator indexed at run time lives in memory, not a register.
constexpr int clamp_int(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

// f(Const<R>{}, Const<C>{}) for the block shape (br, bc) the format validated.
template <class Fn>
void with_block_shape(int br, int bc, Fn&& f) {
  auto with_cols = [&](auto r) {
    switch (bc) {
      case 1: return f(r, Const<1>{});
      case 2: return f(r, Const<2>{});
      case 4: return f(r, Const<4>{});
      case 8: return f(r, Const<8>{});
      default: return f(r, Const<16>{});
    }
  };
  switch (br) {
    case 1: return with_cols(Const<1>{});
    case 2: return with_cols(Const<2>{});
    case 4: return with_cols(Const<4>{});
    case 8: return with_cols(Const<8>{});
    default: return with_cols(Const<16>{});
  }
}

// step(s, blk) over the blocks of block row bi: S at a time on accumulator sets 0..S-1, the rest on
// set 0 (callers' step lambdas index acc[s]; the unrolled loop keeps s a constant, acc in registers).
template <int S, class Step>
void for_each_block(const int64_t* ptr, int64_t bi, Step&& step) {
  const int64_t end = ptr[bi + 1];
  int64_t blk = ptr[bi];
  for (; blk + S <= end; blk += S) {
    #pragma GCC unroll 16
    for (int s = 0; s < S; ++s) step(s, blk + s);
  }
  for (; blk < end; ++blk) step(0, blk);
}

// Batch 1, blocks narrower than a vector: a block's R × C values are contiguous, so each vector
// covers kWidth / C block rows against the block's C inputs repeated (blocks smaller than a vector
// use a masked load; the unused lanes are never summed). S accumulator sets take consecutive blocks.
template <class V, int R, int C, class Index>
void bsr_rows_narrow(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t u0, int64_t u1) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  constexpr int NF = (R * C + W - 1) / W;  // vectors per block
  constexpr int S = clamp_int(V::kRegs / 2 / NF, 1, 4);
  const int64_t* ptr = w.row_ptr();
  for (int64_t bi = u0; bi < u1; ++bi) {
    F acc[S][NF];
    for (int s = 0; s < S; ++s)
      for (int f = 0; f < NF; ++f) acc[s][f] = V::zero();
    auto step = [&](int s, int64_t blk) {
      const F xt = V::template load_tiled<C>(a.x + int64_t{bcol[blk]} * C);
      const float* v = w.values() + blk * (R * C);
      #pragma GCC unroll 16
      for (int f = 0; f < NF; ++f) {
        const F wv = R * C < W ? V::load_first(v, R * C) : V::load(v + f * W);
        acc[s][f] = V::fmadd(wv, xt, acc[s][f]);
      }
    };
    for_each_block<S>(ptr, bi, step);
    alignas(64) float t[NF * W];
    for (int f = 0; f < NF; ++f) {
      for (int s = 1; s < S; ++s) acc[0][f] = V::add(acc[0][f], acc[s][f]);
      V::store(t + f * W, acc[0][f]);
    }
    for (int rr = 0; rr < R && bi * R + rr < w.rows(); ++rr) {
      float sum = 0.0f;
      for (int cc = 0; cc < C; ++cc) sum += t[rr * C + cc];
      a.y[bi * R + rr] = sum;
    }
  }
}

// Batch 1, blocks at least a vector wide: each block row is C / kWidth vectors against the same
// inputs; block rows go in groups of RG so that the group's accumulators fit in registers.
template <class V, int R, int C, class Index>
void bsr_rows_wide(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t u0, int64_t u1) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  constexpr int CW = C / W;
  constexpr int RG = R < V::kRegs / 2 / CW ? R : V::kRegs / 2 / CW;
  constexpr int S = clamp_int(V::kRegs / 2 / (RG * CW), 1, 4);
  const int64_t* ptr = w.row_ptr();
  for (int64_t bi = u0; bi < u1; ++bi) {
    for (int g0 = 0; g0 < R && bi * R + g0 < w.rows(); g0 += RG) {
      F acc[S][RG][CW];
      for (int s = 0; s < S; ++s)
        for (int rr = 0; rr < RG; ++rr)
          for (int j = 0; j < CW; ++j) acc[s][rr][j] = V::zero();
      auto step = [&](int s, int64_t blk) {
        const float* xb = a.x + int64_t{bcol[blk]} * C;
        F xv[CW];
        for (int j = 0; j < CW; ++j) xv[j] = V::load(xb + j * W);
        const float* v = w.values() + blk * (R * C) + g0 * C;
        #pragma GCC unroll 16
        for (int rr = 0; rr < RG; ++rr)
          for (int j = 0; j < CW; ++j) acc[s][rr][j] = V::fmadd(V::load(v + rr * C + j * W), xv[j], acc[s][rr][j]);
      };
      for_each_block<S>(ptr, bi, step);
      unroll<RG>([&](auto rr) {
        if (bi * R + g0 + rr.value >= w.rows()) return;
        F t = acc[0][rr.value][0];
        for (int j = 1; j < CW; ++j) t = V::add(t, acc[0][rr.value][j]);
        for (int s = 1; s < S; ++s)
          for (int j = 0; j < CW; ++j) t = V::add(t, acc[s][rr.value][j]);
        a.y[bi * R + g0 + rr.value] = V::sum(t);
      });
    }
  }
}

template <class V>
void spmm_bsr_batch1(const Weight& weight, const SpmmArgs& a, int64_t u0, int64_t u1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const BsrMatrix&>(weight);
  with_block_shape(w.block_rows(), w.block_cols(), [&](auto r, auto c) {
    constexpr int R = decltype(r)::value, C = decltype(c)::value;
    if constexpr (C < V::kWidth) {
      if (w.index_bits() == 16) bsr_rows_narrow<V, R, C>(w, w.block_col16(), a, u0, u1);
      else bsr_rows_narrow<V, R, C>(w, w.block_col32(), a, u0, u1);
    } else {
      if (w.index_bits() == 16) bsr_rows_wide<V, R, C>(w, w.block_col16(), a, u0, u1);
      else bsr_rows_wide<V, R, C>(w, w.block_col32(), a, u0, u1);
    }
  });
  finish_vector<V>(a, u0 * w.block_rows(), min_i64(u1 * w.block_rows(), w.rows()));
}

// Batched: a group of RG block rows over NV vectors of lanes; per block column, NV input vectors
// are shared by RG rows and each weight broadcast by NV vectors. S sets take consecutive blocks
// when the group alone would leave the FMA units waiting on latency. Sums go to `part` (row blocks
// of kSparsePartBytes) and reach the lane-major output through register transposes
// (V::transpose_block), not lane by lane with a store each. Inputs are read in place: a block's
// rows already reuse its input vectors, and column blocks as in the row-sparse driver measured
// slower.
template <class V, int R, int C, int NV, class Index>
void bsr_tile(const BsrMatrix& w, const Index* bcol, const SpmmArgs& a, int64_t u0, int64_t u1, int64_t b0) {
  using F = typename V::F;
  constexpr int W = V::kWidth, L = NV * W;
  constexpr int RG = R < V::kRegs / 2 / NV ? R : V::kRegs / 2 / NV;
  constexpr int S = clamp_int(V::kRegs / 2 / (RG * NV), 1, 4);
  constexpr int64_t RB = kSparsePartBytes / (R * L * 4) < 1 ? 1 : kSparsePartBytes / (R * L * 4);  // block rows
  const int64_t* ptr = w.row_ptr();
  const int64_t ldx = a.ldx, lanes = min_i64(a.batch - b0, L);
  alignas(64) float part[RB * R * L];
  for (int64_t rb = u0; rb < u1; rb += RB) {
    const int64_t nb = min_i64(RB, u1 - rb);
    for (int64_t bi = rb; bi < rb + nb; ++bi) {
      for (int g0 = 0; g0 < R; g0 += RG) {
        F acc[S][RG][NV];
        for (int s = 0; s < S; ++s)
          for (int rr = 0; rr < RG; ++rr)
            for (int v = 0; v < NV; ++v) acc[s][rr][v] = V::zero();
        auto step = [&](int s, int64_t blk) {
          const float* xb = a.x + int64_t{bcol[blk]} * C * ldx + b0;
          const float* wb = w.values() + blk * (R * C) + g0 * C;
          for (int cc = 0; cc < C; ++cc) {
            F xv[NV];
            for (int v = 0; v < NV; ++v) xv[v] = V::load(xb + cc * ldx + v * W);
            #pragma GCC unroll 16
            for (int rr = 0; rr < RG; ++rr) {
              const F wv = V::broadcast(wb + rr * C + cc);
              for (int v = 0; v < NV; ++v) acc[s][rr][v] = V::fmadd(wv, xv[v], acc[s][rr][v]);
            }
          }
        };
        for_each_block<S>(ptr, bi, step);
        unroll<RG>([&](auto rr) {
          for (int s = 1; s < S; ++s)
            for (int v = 0; v < NV; ++v) acc[0][rr.value][v] = V::add(acc[0][rr.value][v], acc[s][rr.value][v]);
          float* p = part + ((bi - rb) * R + g0 + rr.value) * L;
          for (int v = 0; v < NV; ++v) V::store(p + v * W, acc[0][rr.value][v]);
        });
      }
    }
    const int64_t row0 = rb * R, nr = min_i64(nb * R, w.rows() - row0);  // padded rows are never stored
    store_part<V, L, RB * R>(part, a.y + b0 * a.ldy + row0, a.ldy, nr, lanes);
  }
}

// The batch lanes of a batched BSR kernel's widest tile (the tile of its kernels.def line).
template <class V>
constexpr int spmm_bsr_tile() { return tile_vectors<V>() * V::kWidth; }

template <class V>
void spmm_bsr_batched(const Weight& weight, const SpmmArgs& a, int64_t u0, int64_t u1) {
  assert(a.batch >= 2 && a.ldx % kBatchPad == 0);
  const auto& w = static_cast<const BsrMatrix&>(weight);
  const int64_t r0 = u0 * w.block_rows(), r1 = min_i64(u1 * w.block_rows(), w.rows());
  with_block_shape(w.block_rows(), w.block_cols(), [&](auto r, auto c) {
    constexpr int R = decltype(r)::value, C = decltype(c)::value;
    const auto tiles = [&](auto vector_type) {
      using U = typename decltype(vector_type)::type;
      for_each_tile<U>(a, r0, r1, [&](auto nv, int64_t b0) {
        constexpr int NV = decltype(nv)::value;
        if (w.index_bits() == 16) bsr_tile<U, R, C, NV>(w, w.block_col16(), a, u0, u1, b0);
        else bsr_tile<U, R, C, NV>(w, w.block_col32(), a, u0, u1, b0);
      });
    };
    if constexpr (V::kWidth == 16) {  // AVX-512: a batch of at most 8 on 8-lane vectors, not half-empty 16-lane ones
      if (a.batch <= 8) return tiles(TypeTag<typename V::Half>{});
    }
    tiles(TypeTag<V>{});
  });
}

}  // namespace
}  // namespace sparsert
