// Dense kernel bodies for the AVX2, AVX-512 and NEON files, over a vector type V (x86/vec_avx2.hpp,
// x86/vec_avx512.hpp, arm/vec_neon.hpp).
// Weight layout: sparsert/dense.hpp (panels of P = 16 rows stored column by column, zero rows past
// the end; units are panels). Input and output conventions: kernels/kernel.hpp.
// Both kernels put vectors along a panel's rows and broadcast inputs, so the weight is read as whole
// aligned vectors, outputs are stored as vectors and no horizontal sums are needed.
#pragma once

#include <cassert>

#include "kernels/simd/common.hpp"
#include "sparsert/dense.hpp"

namespace sparsert {
namespace {

constexpr int64_t kPanel = DenseMatrix::kPanelRows;

// Vectors per panel column.
template <class V>
constexpr int panel_vectors() {
  static_assert(kPanel % V::kWidth == 0, "a panel is whole vectors");
  return static_cast<int>(kPanel / V::kWidth);
}

// Stores (or, with accumulate, adds to) the first `rows` sums of a panel column, given as its
// PV ≤ 4 vectors (the ones past PV are ignored). By value, taken with constant indices
// (SPARSERT_STORE_PANEL_COLUMN): an accumulator array passed by reference makes GCC keep a memory copy of it, updated
// in the hot loop.
template <class V, int PV>
void store_panel_column(float* y, int rows, bool accumulate, typename V::F v0, typename V::F v1, typename V::F v2,
                        typename V::F v3) {
  static_assert(PV >= 1 && PV <= 4, "a panel column is one to four vectors");
  constexpr int W = V::kWidth;
  auto put = [&](typename V::F sum, int v) {
    float* p = y + v * W;
    const int n = rows - v * W;
    if (n >= W) V::store(p, accumulate ? V::add(V::load(p), sum) : sum);
    else if (n > 0) V::store_first(p, accumulate ? V::add(V::load_first(p, n), sum) : sum, n);
  };
  put(v0, 0);
  if constexpr (PV > 1) put(v1, 1);
  if constexpr (PV > 2) put(v2, 2);
  if constexpr (PV > 3) put(v3, 3);
}

// store_panel_column of acc[0..PV) (a row of an accumulator array).
#define SPARSERT_STORE_PANEL_COLUMN(V, PV, acc, y, rows, accumulate)                                   \
  store_panel_column<V, PV>(y, rows, accumulate, acc[0], acc[(PV) > 1 ? 1 : 0], acc[(PV) > 2 ? 2 : 0], \
                            acc[(PV) > 3 ? 3 : 0])

// Batch 1: NP consecutive panels' outputs at once (the last one's first `rows`), y = Σ_k panel[k, :] ·
// x[k]. S sets of accumulators take consecutive columns so the FMA chains do not wait on each other.
// Several panels at once are as many streams from memory: a single stream reads the weight well
// below the bandwidth of DRAM or L3; four did best on the AMD AVX2 host (linear_timing on 4096²,
// 768×3072, 3072×768). Where a panel column is one vector (AVX-512), eight: as many accumulators as
// AVX2's four panels of two vectors. On the Intel Ice Lake host (bench/NOTES.md, nineteenth session)
// weights from DRAM ran 5-10% faster with eight (linear_timing minima of five alternated runs: 4096²
// 4,753 → 4,378 µs, 11,008 × 4,096 12,768 → 11,813, 2,048² 621 → 559, 2 threads on 4096² 2,257 →
// 2,174), L3-resident ones alike (768 × 3,072, 3,072 × 768, 1,024²).
template <class V>
constexpr int dense_vector_panels() { return panel_vectors<V>() == 1 ? 8 : 4; }

template <class V, int NP>
void dense_panels_vector(const float* wp, int64_t K, const float* x, float* y, int rows) {
  using F = typename V::F;
  constexpr int W = V::kWidth, PV = panel_vectors<V>();
  constexpr int S = NP * PV >= 8 ? 1 : 8 / (NP * PV);
  F acc[NP][S][PV];
  unroll<NP>([&](auto q) {
    unroll<S>([&](auto s) { unroll<PV>([&](auto v) { acc[q.value][s.value][v.value] = V::zero(); }); });
  });
  auto step = [&](auto s, int64_t k) {
    const F xb = V::broadcast(x + k);
    unroll<NP>([&](auto q) {
      const float* col = wp + (q.value * K + k) * kPanel;
      unroll<PV>([&](auto v) {
        acc[q.value][s.value][v.value] = V::fmadd(V::load(col + v.value * W), xb, acc[q.value][s.value][v.value]);
      });
    });
  };
  int64_t k = 0;
  for (; k + S <= K; k += S) unroll<S>([&](auto s) { step(s, k + s.value); });
  for (; k < K; ++k) step(Const<0>{}, k);
  unroll<NP>([&](auto q) {
    unroll<S - 1>([&](auto s) {
      unroll<PV>([&](auto v) { acc[q.value][0][v.value] = V::add(acc[q.value][0][v.value], acc[q.value][s.value + 1][v.value]); });
    });
    SPARSERT_STORE_PANEL_COLUMN(V, PV, acc[q.value][0], y + q.value * kPanel, q.value + 1 < NP ? kPanel : rows, false);
  });
}

template <class V>
void spmm_dense_batch1(const Weight& weight, const SpmmArgs& a, int64_t u0, int64_t u1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const DenseMatrix&>(weight);
  const int64_t K = w.cols();
  constexpr int NP = dense_vector_panels<V>();
  int64_t p = u0;
  auto panels = [&](auto count) {  // the next `count` panels, the last one's rows clipped
    constexpr int n = decltype(count)::value;
    const int rows = static_cast<int>(min_i64(kPanel, w.rows() - (p + n - 1) * kPanel));
    dense_panels_vector<V, n>(w.panels() + p * K * kPanel, K, a.x, a.y + p * kPanel, rows);
    p += n;
  };
  while (p + NP <= u1) panels(Const<NP>{});
  if constexpr (NP > 4) {  // four of the panels left, where there are
    if (p + 4 <= u1) panels(Const<4>{});
  }
  while (p < u1) panels(Const<1>{});
  finish_vector<V>(a, u0 * kPanel, min_i64(u1 * kPanel, w.rows()));
}

// Batch columns per register tile (the tile of the batched kernels' kernels.def lines): PV · NB
// accumulators, PV weight vectors and one broadcast fill the register file (AVX2: 2 × 6, AVX-512:
// 1 × 16, NEON: 4 × 6).
template <class V>
constexpr int dense_tile_cols() {
  constexpr int pv = panel_vectors<V>();
  constexpr int nb = (V::kRegs - pv - 1) / pv;
  return nb < 16 ? nb : 16;
}

// Batch columns of a tile over two consecutive panels, or 0 where such tiles would not load less per
// FMA than dense_tile_cols' one-panel tiles: a tile loads its weight vectors and a broadcast per batch
// column each column of W. AVX-512's one-panel tile (1 × 16) loads about once per FMA, the load
// pipes' limit; two panels × 14 columns load 16 times per 28 FMAs. AVX2 (2 × 6) and NEON (4 × 6) keep
// one panel: two would leave room for 2 columns.
template <class V>
constexpr int dense_pair_tile_cols() {
  constexpr int pv = panel_vectors<V>(), nb = dense_tile_cols<V>();
  constexpr int pair = (V::kRegs - 2 * pv - 1) / (2 * pv);
  return pair >= 1 && (2 * pv + pair) * (pv * nb) < (pv + nb) * (2 * pv * pair) ? pair : 0;
}

// Columns of W per pass (kDenseKBlock) and batch columns per packed input chunk (kDenseChunkCols):
// a panel's slice of a pass (16 × 256 floats, 16 KiB) stays in L1 while the chunk's tiles (64 KiB
// in all, from L2) stream past it, as in BLIS; the other way round (a tile's inputs in L1, the
// panels streamed from L2) measured slower at batch 64.
inline constexpr int64_t kDenseKBlock = 256;
inline constexpr int64_t kDenseChunkCols = 64;

// A chunk of one tile prefetches its panels' weights this many columns ahead: the hardware
// prefetcher alone falls behind a DRAM-resident weight (4096², 64 MiB) at small batches. With
// several tiles the last one prefetches the next panels' slice, the others nothing (each prefetch
// costs a load slot). Against the first tile prefetching its own slice and the second the next one,
// `linear_timing` minima on the Intel Ice Lake host (bench/NOTES.md, eighteenth session): batch 32
// 768² 289 -> 274 µs, 3,072 × 768 1,190 -> 1,098, 768 × 3,072 1,164 -> 1,083; batch 48-384 3-8%
// faster; batch 16 768² 3-5% slower, 3,072 × 768 2% faster.
inline constexpr int64_t kDensePrefetchCols = 32;

// NP consecutive panels (1 or 2) × NB batch columns over kn columns of W: y[b0 + j, panel rows]
// (+)= Σ_k panel[k, :] · x[k, b0 + j]. wp points at the first panel's column k0, each next panel's is
// panel_stride floats on; x at x[k0, b0], y at y[b0, first panel's row 0]; the last panel's first
// `rows` rows are stored. kFetch: prefetch fetch + q · panel_stride + k · kPanel for panel q at column k.
template <class V, int NP, int NB, bool kFetch>
[[gnu::noinline]] void dense_panel_tile(const float* wp, int64_t panel_stride, int64_t kn, const float* x, int64_t ldx, float* y,
                      int64_t ldy, int rows, bool accumulate, const float* fetch) {
  using F = typename V::F;
  constexpr int W = V::kWidth, PV = panel_vectors<V>();
  F acc[NB][NP * PV];
  unroll<NB>([&](auto j) { unroll<NP * PV>([&](auto v) { acc[j.value][v.value] = V::zero(); }); });
  for (int64_t k = 0; k < kn; ++k) {
    if constexpr (kFetch) unroll<NP>([&](auto q) { __builtin_prefetch(fetch + q.value * panel_stride + k * kPanel); });
    // Weight vector v of column k, loaded where each FMA takes it: GCC loads each once into a
    // register. Held in an array, one of them went to the stack in some builds and every FMA reloaded
    // it (GCC 12, the AVX-512 2 × 10 tile: 1.4-1.6x its neighbours' time at batch 32).
    const auto weight = [&](int v) { return V::load(wp + v / PV * panel_stride + k * kPanel + v % PV * W); };
    const float* xk = x + k * ldx;
    unroll<NB>([&](auto j) {
      const F xb = V::broadcast(xk + j.value);
      unroll<NP * PV>([&](auto v) { acc[j.value][v.value] = V::fmadd(weight(v.value), xb, acc[j.value][v.value]); });
    });
  }
  unroll<NB>([&](auto j) {
    unroll<NP>([&](auto q) {
      SPARSERT_STORE_PANEL_COLUMN(V, PV, (acc[j.value] + q.value * PV), y + j.value * ldy + q.value * kPanel,
                                  q.value + 1 < NP ? static_cast<int>(kPanel) : rows, accumulate);
    });
  });
}

// f(Const<n>{}) for a tile of 1 ≤ n ≤ N batch columns: register tiles and input copies of a
// compile-time width (a copy then is a few moves, not a memcpy call).
template <int N, class Fn>
void with_tile_cols(int64_t n, Fn&& f) {
  if constexpr (N > 1) {
    if (n < N) return with_tile_cols<N - 1>(n, f);
  }
  f(Const<N>{});
}

// Column blocks outermost, then chunks of the batch, then panels, then the chunk's tiles (without
// pair tiles, a batch of one tile: panel by panel, whole); bias and activation once all column
// blocks are summed.
template <class V>
void spmm_dense_batched(const Weight& weight, const SpmmArgs& a, int64_t u0, int64_t u1) {
  assert(a.batch >= 2 && (a.ld_rows > 0 || a.ldx % kBatchPad == 0));
  const auto& w = static_cast<const DenseMatrix&>(weight);
  constexpr int NB = dense_tile_cols<V>(), NB2 = dense_pair_tile_cols<V>();
  const int64_t K = w.cols();
  const int64_t r0 = u0 * kPanel, r1 = min_i64(u1 * kPanel, w.rows());
  if (K == 0) {  // no column block runs: the sums are empty
    for (int64_t b = 0; b < a.batch; ++b)
      for (int64_t r = r0; r < r1; ++r) a.y[b * a.ldy + r] = 0.0f;
  }
  auto finish = [&] {
    for (int64_t b = 0; b < a.batch; ++b)
      finish_rows<V>(a.y + b * a.ldy + r0, r1 - r0, a.bias != nullptr ? a.bias + r0 : nullptr, a.act);
  };
  // One-panel tiles, a batch of one tile: each panel read once, front to back. The column blocks pay
  // only when several tiles share a panel's slice; for one tile they would only cut the weight stream
  // into 16 KiB pieces.
  if (NB2 == 0 && a.ld_rows == 0 && a.batch <= NB && !ldx_folds_l1(a.ldx) && K > 0) {
    for (int64_t p = u0; p < u1; ++p) {
      const int rows = static_cast<int>(min_i64(kPanel, w.rows() - p * kPanel));
      const float* wp = w.panels() + p * K * kPanel;
      with_tile_cols<NB>(a.batch, [&](auto n) {
        dense_panel_tile<V, 1, decltype(n)::value, true>(wp, K * kPanel, K, a.x, a.ldx, a.y + p * kPanel, a.ldy, rows,
                                                         false, wp + kDensePrefetchCols * kPanel);
      });
    }
    return finish();
  }
  // The chunk's tiles: two panels at a time where dense_pair_tile_cols says so, at every batch (a
  // last odd panel alone, in tiles of the same width). Pairs load 2 + n times per 2n FMAs, one-panel
  // tiles 1 + n per n. Measured with `linear_timing R C B dense` on the Intel AVX-512 host of
  // bench/NOTES.md (seventeenth session), where one-panel tiles of 16 columns ran 67-99 GFLOP/s
  // (256² and 768², batch 16) and pairs 120-137 (batch 48): 768² at batch 8 and 16 took 0.66-0.70× the
  // one-panel stream's time, 768² and 3,072 × 768 at batch 32 0.62-0.68× two one-panel tiles'. The
  // Zen 5 host (2026-12-05) had pairs 5-9% slower at 32.
  // A tile's input is packed compact: kn rows of `cols` floats, from the packed input or the unpacked rows.
  alignas(64) float xt[kDenseKBlock * kDenseChunkCols];
  for (int64_t k0 = 0; k0 < K; k0 += kDenseKBlock) {
    const int64_t kn = min_i64(kDenseKBlock, K - k0);
    const bool accumulate = k0 > 0;
    for (int64_t c0 = 0; c0 < a.batch; c0 += kDenseChunkCols) {
      const int64_t chunk = min_i64(kDenseChunkCols, a.batch - c0);
      // As few tiles as their width allows, evened out: batch 8 runs 4 + 4 columns, not 6 + 2.
      constexpr int width = NB2 > 0 ? NB2 : NB;
      const int64_t tiles = (chunk + width - 1) / width;
      int64_t start[kDenseChunkCols + 1];
      for (int64_t t = 0; t <= tiles; ++t) start[t] = t * chunk / tiles;
      for (int64_t t = 0; t < tiles; ++t) {
        with_tile_cols<NB>(start[t + 1] - start[t], [&](auto n) {
          constexpr int cols = decltype(n)::value;
          float* dst = xt + start[t] * kn;
          if (a.ld_rows == 0) {
            input_rows(a, k0, k0 + kn, c0 + start[t], cols, dst, /*compact=*/true);
            return;
          }
          transpose<V>(a.x + (c0 + start[t]) * a.ld_rows + k0, a.ld_rows, dst, cols, cols, kn);
        });
      }
      for (int64_t p = u0; p < u1;) {
        const float* wp = w.panels() + (p * K + k0) * kPanel;
        const bool pair = NB2 > 0 && p + 1 < u1;
        const int64_t last = pair ? p + 1 : p;  // the tile's last panel
        const int rows = static_cast<int>(min_i64(kPanel, w.rows() - last * kPanel));
        for (int64_t t = 0; t < tiles; ++t) {
          float* y = a.y + (c0 + start[t]) * a.ldy + p * kPanel;
          const float* xp = xt + start[t] * kn;
          // A lone tile fetches its panels' weights ahead, the last of several the next panels'.
          const float* fetch = tiles == 1                          ? wp + kDensePrefetchCols * kPanel
                               : t == tiles - 1 && last + 1 < u1 ? wp + (last + 1 - p) * K * kPanel
                                                                 : nullptr;
          const auto tile = [&](auto panels, auto width) {
            with_tile_cols<decltype(width)::value>(start[t + 1] - start[t], [&](auto n) {
              constexpr int NP = decltype(panels)::value, cols = decltype(n)::value;
              if (fetch != nullptr) dense_panel_tile<V, NP, cols, true>(wp, K * kPanel, kn, xp, cols, y, a.ldy, rows, accumulate, fetch);
              else dense_panel_tile<V, NP, cols, false>(wp, K * kPanel, kn, xp, cols, y, a.ldy, rows, accumulate, nullptr);
            });
          };
          if constexpr (NB2 > 0) {
            if (pair) {
              tile(Const<2>{}, Const<NB2>{});
              continue;
            }
          }
          tile(Const<1>{}, Const<NB>{});
        }
        p = last + 1;
      }
    }
  }
  finish();
}

}  // namespace
}  // namespace sparsert
