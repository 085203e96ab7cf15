// The batched driver of the row-sparse kernels (CSR, N:M), over a vector type V: vectors run along
// batch lanes and each stored weight is broadcast against the packed input row of its column.
//
// Blocking, so that every weight's input row is an L1 hit, not a line from L2 or L3: columns go in
// blocks whose input rows (one per column, NV · kWidth lanes of 4 bytes) fit in
// kSparseInputTileBytes, and rows in blocks whose partial sums (rows × lanes, in `part`) fill
// kSparsePartBytes (128 rows at 32 lanes, 1024 at 4) and are carried across the column blocks.
// Tiles narrower than kBatchPad read a compact copy of their lanes (input_rows(compact)), since in
// place each non-zero would read a 64-byte line for 16-32 useful bytes. A batch of at most 4 runs on
// V::Narrow (4 lanes), so that 8- or 16-lane vectors do not compute padding; on AVX-512 one of 5 to 8
// on V::Half (8 lanes: 2:4 at batch 8 on Zen 4, 3072×768, 790 → 659 µs).
//
// A format supplies a row walker R with
//   using Cursor = ...;                      per-row state carried from one column block to the next
//   static constexpr int64_t kColumnAlign;   column blocks start at multiples of this
//   static constexpr bool kScattered;        rows touch few of a block's columns (CSR), not most (N:M)
//   int64_t padded_cols() const;
//   void open(int64_t r, Cursor& c) const;
//   template <class Fma> void visit(int64_t r, Cursor& c, int64_t k0, int64_t k1, Fma&& fma) const;
//   void prefetch(int64_t r, int64_t k0, int64_t k1) const;  (kScattered false only) row r's stored
//                                            values of columns [k0, k1) toward L1
// where visit hands over the stored values of row r with column in [k0, k1), in column order, as
//   fma(Const<j>{}, int64_t column, const float* weight)               one value, or
//   fma(Const<j>{}, const int64_t (&columns)[4], const float* weights) four consecutive ones,
// j numbering them so that consecutive ones go to different accumulators (a compile-time constant:
// callers unroll). Fours cost one weight load and four in-register splats instead of four loads.
#pragma once

#include <cassert>
#include <cstdint>

#include "kernels/simd/common.hpp"

namespace sparsert {
namespace {

inline constexpr int64_t kSparseInputTileBytes = 64 * 1024;
// Walkers whose rows read every group (kScattered false: N:M) reuse a block's input rows across the
// whole row block, so at 32+ lanes their blocks hold few columns and stay in L1; the weights then come
// in short pieces, row after row, and the next row's are prefetched, as the hardware prefetcher does
// not follow them from DRAM. 128 columns a block: 16 KiB at 32 lanes, 32 KiB at 64. On Zen 4 (L1d
// 32 KiB; `linear_timing R C B nm`, 2:4) 64-lane tiles ran 6-18% faster with 128 columns than with
// 64 and slower with 192; 32-lane (AVX2) tiles up to 1.5× slower with 256. Below 32 lanes
// kSparseInputTileBytes blocks measured faster, so those keep them.
inline constexpr int64_t kL1InputColumns = 128;
// Scattered walkers reading in place: block size in bytes of lanes (sparse_rows_tile says why).
inline constexpr int64_t kSparseInPlaceBytes = 512 * 1024;
// Rows a chunk, within which the batch tiles run (sparse_rows_batched says why).
inline constexpr int64_t kSparseRowChunk = 256;
// Vectors in the widest batch tile: with its two accumulator sets (S in sparse_rows_tile), eight FMA
// chains in flight, as at narrower tiles.
inline constexpr int kSparseTileVectors = 4;

// The batch lanes of the widest tile (the tile of the CSR and N:M kernels' kernels.def lines).
template <class V>
constexpr int sparse_rows_tile_lanes() { return kSparseTileVectors * V::kWidth; }

// Rows [r0, r1) for batch lanes [b0, b0 + min(batch - b0, NV · kWidth)).
template <class V, int NV, class R>
void sparse_rows_tile(const R& rows, const SpmmArgs& a, int64_t r0, int64_t r1, int64_t b0) {
  using F = typename V::F;
  constexpr int W = V::kWidth, L = NV * W;
  constexpr int S = NV >= 4 ? 2 : (NV == 1 ? 8 : 4);  // accumulator sets: ~8 FMA chains in flight
  constexpr bool l1_blocks = !R::kScattered && L >= 32;
  constexpr int64_t kc_raw = l1_blocks ? kL1InputColumns : kSparseInputTileBytes / (L * 4);
  constexpr int64_t kc = kc_raw < R::kColumnAlign ? R::kColumnAlign : kc_raw / R::kColumnAlign * R::kColumnAlign;
  const int64_t K = rows.padded_cols(), lanes = min_i64(a.batch - b0, L);
  alignas(64) float xt[kc * L];
  constexpr int64_t RB = kSparsePartBytes / (L * 4);  // rows a block
  alignas(64) float part[RB * L];
  typename R::Cursor cursor[RB];
  // A scattered walker's rows touch few input rows each: read in place, its input goes in blocks that
  // fill L2 (kSparseInPlaceBytes of lanes: 4096 columns at 32 lanes), L2 hits with few visits per
  // row, where L1-sized blocks would make each row visit many. N:M's rows read every group of a
  // block, so its blocks stay small enough to be L1 or L2 hits. Overlapping rows (ldx 1,
  // kernel.hpp) are read in place, in the caller's column blocks (column_block: whole channels of an
  // image) or unblocked: a block sized in input rows would hold a sliver of a row's taps.
  constexpr int64_t in_place_cols = kSparseInPlaceBytes / (L * 4) / R::kColumnAlign * R::kColumnAlign;
  const bool overlapping = a.ldx == 1;
  const bool in_place = R::kScattered && L >= kBatchPad && !ldx_folds_l1(a.ldx);
  const int64_t block_cols = overlapping ? (a.column_block > 0 ? a.column_block : K) : in_place ? in_place_cols : kc;
  // Bias and ReLU go onto the sums in registers, at a row's last column block; other activations run
  // in a pass over each row block while it is L1-resident (on y's rows when y is transposed,
  // else on part).
  const bool in_register = a.act == Activation::kNone || a.act == Activation::kRelu;
  // The arguments a row's stores use, read once: y's stores may alias `a` for all the compiler knows,
  // so it reloaded them at every vector of every row (MobileNetV2's 16 → 64 expansion at 10%, 1-2
  // non-zeros a row: 243-272 → 208-237 µs).
  const bool relu = a.act == Activation::kRelu, direct = a.transposed_y, whole = !direct || lanes >= L;
  const float* const bias = a.bias;
  float* const y = a.y;
  const int64_t ldy = a.ldy;
  for (int64_t rb = r0; rb < r1; rb += RB) {
    const int64_t nr = min_i64(RB, r1 - rb);
    for (int64_t i = 0; i < nr; ++i) rows.open(rb + i, cursor[i]);
    for (int64_t k0 = 0; k0 == 0 || k0 < K; k0 += block_cols) {  // one pass even when K == 0: it writes the zeros
      const int64_t k1 = min_i64(k0 + block_cols, K);
      const InputRows in = input_rows(a, k0, k1, b0, L, xt, /*compact=*/L < kBatchPad && !overlapping);
      const float* x_k = in.data - k0 * in.stride;  // x_k + c · stride: column c's input row
      for (int64_t i = 0; i < nr; ++i) {
        F acc[S][NV];
        unroll<S>([&](auto s) { unroll<NV>([&](auto v) { acc[s.value][v.value] = V::zero(); }); });
        auto fma_row = [&](auto s, int64_t c, F wv) {  // accumulator set s += wv · input row of column c
          const float* xr = x_k + c * in.stride;
          unroll<NV>([&](auto v) {
            acc[s.value][v.value] = V::fmadd(wv, V::load(xr + v.value * W), acc[s.value][v.value]);
          });
        };
        auto one = [&](auto j, int64_t c, const float* wp) {
          fma_row(Const<decltype(j)::value % S>{}, c, V::broadcast(wp));
        };
        auto four = [&](auto j, const int64_t (&c)[4], const float* wp) {
          const F q = V::template load_tiled<4>(wp);
          unroll<4>([&](auto t) {
            fma_row(Const<(decltype(j)::value + t.value) % S>{}, c[t.value], V::template splat4<t.value>(q));
          });
        };
        if constexpr (l1_blocks) {
          if (i + 1 < nr) rows.prefetch(rb + i + 1, k0, k1);
        }
        rows.visit(rb + i, cursor[i], k0, k1, Overload{one, four});
        unroll<S - 1>([&](auto s) {
          unroll<NV>([&](auto v) { acc[0][v.value] = V::add(acc[0][v.value], acc[s.value + 1][v.value]); });
        });
        float* p = part + i * L;
        if (k1 < K) {
          unroll<NV>([&](auto v) {
            float* q = p + v.value * W;
            V::store(q, k0 == 0 ? acc[0][v.value] : V::add(V::load(q), acc[0][v.value]));
          });
          continue;
        }
        // The row's last block: the sums with bias and ReLU go to y's row directly when y is
        // transposed (its lanes are a run of that row), else to part, which reaches y once the
        // block's rows are done.
        float* out = direct ? y + (rb + i) * ldy + b0 : p;
        const F row_bias = bias != nullptr ? V::broadcast(bias + rb + i) : V::zero();
        if (k0 > 0) unroll<NV>([&](auto v) { acc[0][v.value] = V::add(V::load(p + v.value * W), acc[0][v.value]); });
        unroll<NV>([&](auto v) {
          acc[0][v.value] = V::add(acc[0][v.value], row_bias);
          // NaN passes
          if (relu) acc[0][v.value] = V::blend_lt(acc[0][v.value], V::zero(), V::zero(), acc[0][v.value]);
        });
        if (whole) {
          unroll<NV>([&](auto v) { V::store(out + v.value * W, acc[0][v.value]); });
        } else {
          unroll<NV>([&](auto v) {
            constexpr int at = v.value * W;
            if (at + W <= lanes) V::store(out + at, acc[0][v.value]);
            else if (at < lanes) V::store_first(out + at, acc[0][v.value], static_cast<int>(lanes - at));
          });
        }
      }
    }
    if (direct) {
      if (!in_register) {
        for (int64_t i = 0; i < nr; ++i) finish_rows<V>(y + (rb + i) * ldy + b0, lanes, nullptr, a.act);
      }
      continue;
    }
    // On part, while it is L1-resident: a pass over y's rows after the transpose would re-read them
    // from L2 or beyond.
    if (!in_register) finish_rows<V>(part, nr * L, nullptr, a.act);
    store_part<V, L, RB>(part, y + b0 * ldy + rb, ldy, nr, lanes);
  }
}

// All batch lanes in tiles of up to kSparseTileVectors vectors (a last tile takes as many as it needs:
// ldx is a multiple of kBatchPad, so ceil(rest / kWidth) vectors never read past it).
template <class V, class R>
void sparse_rows_batched(const R& rows, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch >= 2 && (a.ldx % kBatchPad == 0 || a.ldx == 1));
  constexpr int W = V::kWidth;
  static_assert(kSparseTileVectors == 4, "the switch below names each vector count");
  if (a.batch <= 4) return sparse_rows_tile<typename V::Narrow, 1>(rows, a, r0, r1, 0);
  if constexpr (W == 16) {
    if (a.batch <= 8) return sparse_rows_tile<typename V::Half, 1>(rows, a, r0, r1, 0);
  }
  // Tiles go innermost over chunks of rows: the first tile reads a chunk's weights from memory, the
  // others find them in L3 (a 256-row chunk of a 2:4 4096² weight is 2 MiB of values), where tiles
  // outermost would read every weight from DRAM once per tile.
  for (int64_t c0 = r0; c0 < r1; c0 += kSparseRowChunk) {
    const int64_t c1 = min_i64(c0 + kSparseRowChunk, r1);
    for (int64_t b0 = 0; b0 < a.batch;) {
      const int64_t nv = min_i64((a.batch - b0 + W - 1) / W, kSparseTileVectors);
      switch (nv) {
        case 1: sparse_rows_tile<V, 1>(rows, a, c0, c1, b0); break;
        case 2: sparse_rows_tile<V, 2>(rows, a, c0, c1, b0); break;
        case 3: sparse_rows_tile<V, 3>(rows, a, c0, c1, b0); break;
        default: sparse_rows_tile<V, 4>(rows, a, c0, c1, b0); break;
      }
      b0 += nv * W;
    }
  }
}

}  // namespace
}  // namespace sparsert
