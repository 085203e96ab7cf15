// N:M kernel bodies for the AVX2, AVX-512 and NEON files, over a vector type V (x86/vec_avx2.hpp,
// x86/vec_avx512.hpp, arm/vec_neon.hpp).
// Weight layout: sparsert/nm.hpp (N values per group of M columns, positions bit-packed in 32-bit
// words); each pattern is compiled separately so positions decode with constant shifts.
// Input and output conventions: kernels/kernel.hpp.
#pragma once

#include <cassert>

#include "kernels/simd/common.hpp"
#include "kernels/simd/sparse_rows_batched.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {
namespace {

// The metadata of an N:M pattern, as sparsert/nm.hpp packs it.
template <int N, int M>
struct NmCode {
  static constexpr int kBits = M == 4 ? 2 : 3;  // per position
  static constexpr int kGroupBits = N * kBits;
  static constexpr int kGroupsPerWord = 32 / kGroupBits;
  // Position of value i of the group that sits gg-th in its word.
  static int position(uint32_t word, int gg, int i) {
    return static_cast<int>((word >> (gg * kGroupBits + i * kBits)) & (M - 1));
  }
};

// f(Const<N>{}, Const<M>{}) for the pattern the format validated.
template <class Fn>
void with_pattern(int n, int m, Fn&& f) {
  if (m == 4) {
    switch (n) {
      case 1: return f(Const<1>{}, Const<4>{});
      case 2: return f(Const<2>{}, Const<4>{});
      default: return f(Const<3>{}, Const<4>{});
    }
  }
  switch (n) {
    case 1: return f(Const<1>{}, Const<8>{});
    case 2: return f(Const<2>{}, Const<8>{});
    case 3: return f(Const<3>{}, Const<8>{});
    case 4: return f(Const<4>{}, Const<8>{});
    case 5: return f(Const<5>{}, Const<8>{});
    case 6: return f(Const<6>{}, Const<8>{});
    default: return f(Const<7>{}, Const<8>{});
  }
}

// Calls value(Const<j>, column, weight) for the stored values of row r: a whole metadata word
// unrolled at a time (j counts its values, so callers can rotate accumulators), then the groups of a
// last partial word with j = 0.
template <int N, int M, class Fn>
void for_each_nm_value(const NmMatrix& w, int64_t r, Fn&& value) {
  using Code = NmCode<N, M>;
  constexpr int GPW = Code::kGroupsPerWord;
  const int64_t groups = w.groups(), full_words = groups / GPW;
  const float* v = w.values() + r * groups * N;
  const uint32_t* meta = w.meta() + r * w.words_per_row();
  for (int64_t wi = 0; wi < full_words; ++wi) {
    const uint32_t word = meta[wi];
    const int64_t g0 = wi * GPW;
    unroll<GPW * N>([&](auto j) {
      constexpr int gg = decltype(j)::value / N, i = decltype(j)::value % N;
      value(j, (g0 + gg) * M + Code::position(word, gg, i), v[(g0 + gg) * N + i]);
    });
  }
  const int64_t g0 = full_words * GPW;
  for (int64_t g = g0; g < groups; ++g)
    for (int i = 0; i < N; ++i)
      value(Const<0>{}, g * M + Code::position(meta[full_words], static_cast<int>(g - g0), i), v[g * N + i]);
}

// Batch 1, any pattern: scalar, four accumulators rotating over the unrolled values.
template <int N, int M>
void nm_rows_scalar(const NmMatrix& w, const SpmmArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for_each_nm_value<N, M>(w, r, [&](auto j, int64_t c, float wv) { acc[decltype(j)::value % 4] += wv * a.x[c]; });
    a.y[r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  }
}

// Batch 1, 2:4: a step of kWidth values spans kWidth / 2 groups = 2 · kWidth columns; the step's
// positions come from 2 · kWidth metadata bits, and each value's input is picked out of those
// columns loaded as whole vectors (V::nm24_inputs, V::nm24_select), no gather. Rows go in fours so
// a step's inputs are loaded once for four rows and four accumulators are in flight. Groups short
// of a step go scalar.
template <class V>
void nm24_rows(const NmMatrix& w, const SpmmArgs& a, int64_t r0, int64_t r1) {
  using F = typename V::F;
  using Code = NmCode<2, 4>;
  constexpr int W = V::kWidth;
  using I = typename V::I;
  constexpr int kRows = 4, kStepsPerWord = 32 / (2 * W);
  static_assert(32 % (2 * W) == 0, "a step's metadata must not straddle words");
  const int64_t groups = w.groups(), steps = groups / (W / 2), words = w.words_per_row();
  auto rows = [&](int64_t r, auto count) {
    constexpr int R = decltype(count)::value;
    // The next four rows' values, a step at a time, toward L2: four rows read side by side are four
    // short streams the hardware prefetcher barely follows. MobileNetV2's classifier layers (1280 ×
    // 960, 1000 × 1280), cold in the model, ran 218-283 µs against dense's 114-142, 124-146 with this.
    const bool ahead = R == kRows && r + 2 * kRows <= r1;
    const float* v = w.values() + r * groups * 2;
    const uint32_t* meta = w.meta() + r * words;
    F acc[R];
    for (int k = 0; k < R; ++k) acc[k] = V::zero();
    // A metadata word's steps, from one broadcast of the word per row: J < count of them.
    auto word_steps = [&](int64_t word, auto count) {
      I code[R];
      for (int k = 0; k < R; ++k) code[k] = V::nm24_word(meta + k * words + word);
      unroll<decltype(count)::value>([&](auto jc) {
        constexpr int J = decltype(jc)::value;
        const int64_t s = word * kStepsPerWord + J;
        const auto in = V::nm24_inputs(a.x + s * 2 * W);
        unroll<R>([&](auto kc) {
          constexpr int k = decltype(kc)::value;
          if (ahead) __builtin_prefetch(v + (R + k) * groups * 2 + s * W, 0, 2);  // toward L2
          acc[k] = V::fmadd(V::load(v + k * groups * 2 + s * W), V::nm24_select(in, V::template nm24_index<J>(code[k])), acc[k]);
        });
      });
    };
    int64_t word = 0;
    for (; (word + 1) * kStepsPerWord <= steps; ++word) word_steps(word, Const<kStepsPerWord>{});
    // The steps of a last, partial word (AVX2's words hold 2 steps, NEON's 4).
    with_count<kStepsPerWord - 1>(steps - word * kStepsPerWord, [&](auto n) { word_steps(word, n); });
    for (int k = 0; k < R; ++k) {
      float sum = V::sum(acc[k]);
      const float* vk = v + k * groups * 2;
      for (int64_t g = steps * (W / 2); g < groups; ++g) {
        const uint32_t code = meta[k * words + g / Code::kGroupsPerWord];
        const int gg = static_cast<int>(g % Code::kGroupsPerWord);
        sum += vk[g * 2] * a.x[g * 4 + Code::position(code, gg, 0)];
        sum += vk[g * 2 + 1] * a.x[g * 4 + Code::position(code, gg, 1)];
      }
      a.y[r + k] = sum;
    }
  };
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) rows(r, Const<kRows>{});
  for (; r < r1; ++r) rows(r, Const<1>{});
}

template <class V>
void spmm_nm_batch1(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const NmMatrix&>(weight);
  if (w.n() == 2 && w.m() == 4) {
    nm24_rows<V>(w, a, r0, r1);
  } else {
    with_pattern(w.n(), w.m(), [&](auto n, auto m) {
      nm_rows_scalar<decltype(n)::value, decltype(m)::value>(w, a, r0, r1);
    });
  }
  finish_vector<V>(a, r0, r1);
}

// The N:M row walker of the batched driver (simd/sparse_rows_batched.hpp): column blocks are whole
// metadata words, so a block's groups start a word and decode with constant shifts.
template <int N, int M>
struct NmRows {
  using Code = NmCode<N, M>;
  struct Cursor {};
  static constexpr int64_t kColumnAlign = Code::kGroupsPerWord * M;
  static constexpr bool kScattered = false;
  const NmMatrix& w;

  int64_t padded_cols() const { return w.padded_cols(); }
  void open(int64_t, Cursor&) const {}
  void prefetch(int64_t r, int64_t k0, int64_t k1) const {
    const int64_t groups = w.groups(), g0 = k0 / M, g1 = min_i64(k1 / M, groups);
    const char* v = reinterpret_cast<const char*>(w.values() + (r * groups + g0) * N);
    for (int64_t at = 0; at < (g1 - g0) * N * 4; at += 64) __builtin_prefetch(v + at);
  }
  template <class Fma>
  void visit(int64_t r, Cursor&, int64_t k0, int64_t k1, Fma&& fma) const {
    constexpr int GPW = Code::kGroupsPerWord;
    const int64_t groups = w.groups(), g_end = min_i64(k1 / M, groups);
    const float* v = w.values() + r * groups * N;
    const uint32_t* meta = w.meta() + r * w.words_per_row();
    int64_t g0 = k0 / M;
    for (; g0 + GPW <= g_end; g0 += GPW) {
      const uint32_t word = meta[g0 / GPW];
      auto column = [&](auto j) {  // of the word's j-th value
        constexpr int gg = decltype(j)::value / N, i = decltype(j)::value % N;
        return (g0 + gg) * M + Code::position(word, gg, i);
      };
      if constexpr (GPW * N % 4 == 0) {  // the word's values are consecutive: hand them over in fours
        unroll<GPW * N / 4>([&](auto q) {
          constexpr int j0 = 4 * decltype(q)::value;
          const int64_t cols[4] = {column(Const<j0>{}), column(Const<j0 + 1>{}), column(Const<j0 + 2>{}),
                                   column(Const<j0 + 3>{})};
          fma(Const<j0>{}, cols, v + g0 * N + j0);
        });
      } else {
        unroll<GPW * N>([&](auto j) { fma(j, column(j), v + g0 * N + decltype(j)::value); });
      }
    }
    for (int64_t g = g0; g < g_end; ++g)  // the groups of a last, partial word
      for (int i = 0; i < N; ++i)
        fma(Const<0>{}, g * M + Code::position(meta[g0 / GPW], static_cast<int>(g - g0), i), v + g * N + i);
  }
};

// The batch lanes of a batched N:M kernel's widest tile (the tile of its kernels.def line).
template <class V>
constexpr int spmm_nm_tile() { return sparse_rows_tile_lanes<V>(); }

// Small batches, 2:4: the batch-1 kernel's way (each stored value's input picked out of whole vectors
// of an input row by an in-register permute) for every batch column at once, two rows at a time, so
// a row's weight vectors and metadata are loaded and decoded once for all columns. The batched driver
// broadcasts each stored value against its input row instead, at 8 lanes one FMA for about as many
// other instructions; the batch-1 kernel run once per column (batches 2-4 before) reads the weights
// once per column. Ice Lake host, `linear_timing R C B nm`, minima of 3-5 alternated runs, AVX-512:
// batch 8 768 × 3,072 846 → 433 µs (dense 426-457), 4,096² 7,302 → 5,201 (dense 5,636-5,943);
// batch 4 768 × 3,072 622 → 269, 4,096² 10,818 → 4,146. AVX2, batch 4: 3,072 × 768 671 → 471,
// 4,096² 8,705 → 4,237. The input goes column block by column block into xt, one row of the block per
// batch column (the permutes read 2 · kWidth consecutive columns of one batch column); a block's sums
// are added into y.
template <class V>
constexpr int nm24_columns_tile() { return V::kWidth == 16 ? 8 : 4; }  // with two rows: 16 or 8 accumulators
inline constexpr int64_t kNm24ColumnsInputBytes = 32 * 1024;

template <class V, int NB>
void nm24_columns(const NmMatrix& w, const SpmmArgs& a, int64_t r0, int64_t r1) {
  using F = typename V::F;
  using I = typename V::I;
  using Code = NmCode<2, 4>;
  constexpr int W = V::kWidth, kStepsPerWord = 32 / (2 * W), R = 2;
  constexpr int64_t kWordCols = Code::kGroupsPerWord * 4;
  constexpr int64_t KC = kNm24ColumnsInputBytes / 4 / nm24_columns_tile<V>() / kWordCols * kWordCols;
  const int64_t groups = w.groups(), words = w.words_per_row(), full_words = groups / Code::kGroupsPerWord;
  alignas(64) float xt[NB * KC];
  auto y_at = [&](int64_t r, int64_t b) -> float& { return a.transposed_y ? a.y[r * a.ldy + b] : a.y[b * a.ldy + r]; };
  for (int64_t k0 = 0; k0 < full_words * kWordCols; k0 += KC) {
    const int64_t w0 = k0 / kWordCols, w1 = min_i64(w0 + KC / kWordCols, full_words);
    transpose<V>(a.x + k0 * a.ldx, a.ldx, xt, KC, (w1 - w0) * kWordCols, NB);
    auto rows = [&](int64_t r, auto count) {
      constexpr int RC = decltype(count)::value;
      const float* v = w.values() + r * groups * 2;
      const uint32_t* meta = w.meta() + r * words;
      F acc[RC][NB];
      unroll<RC>([&](auto k) { unroll<NB>([&](auto j) { acc[k.value][j.value] = V::zero(); }); });
      for (int64_t wi = w0; wi < w1; ++wi) {
        I code[RC];
        unroll<RC>([&](auto k) { code[k.value] = V::nm24_word(meta + k.value * words + wi); });
        unroll<kStepsPerWord>([&](auto jc) {
          constexpr int J = decltype(jc)::value;
          const int64_t s = wi * kStepsPerWord + J;
          I idx[RC];
          F wv[RC];
          unroll<RC>([&](auto k) {
            idx[k.value] = V::template nm24_index<J>(code[k.value]);
            wv[k.value] = V::load(v + k.value * groups * 2 + s * W);
          });
          unroll<NB>([&](auto j) {
            const auto in = V::nm24_inputs(xt + j.value * KC + s * 2 * W - k0);
            unroll<RC>([&](auto k) {
              acc[k.value][j.value] = V::fmadd(wv[k.value], V::nm24_select(in, idx[k.value]), acc[k.value][j.value]);
            });
          });
        });
      }
      unroll<RC>([&](auto k) {
        unroll<NB>([&](auto j) {
          float& out = y_at(r + k.value, j.value);
          out = (k0 == 0 ? 0.0f : out) + V::sum(acc[k.value][j.value]);
        });
      });
    };
    int64_t r = r0;
    for (; r + R <= r1; r += R) rows(r, Const<R>{});
    if (r < r1) rows(r, Const<1>{});
  }
  // The groups of a last, partial word, bias and ReLU (NaN passes), from the packed input.
  for (int64_t r = r0; r < r1; ++r) {
    const float* v = w.values() + r * groups * 2;
    const uint32_t* meta = w.meta() + r * words;
    for (int64_t b = 0; b < NB; ++b) {
      float sum = full_words > 0 ? y_at(r, b) : 0.0f;
      for (int64_t g = full_words * Code::kGroupsPerWord; g < groups; ++g) {
        const int gg = static_cast<int>(g % Code::kGroupsPerWord);
        for (int i = 0; i < 2; ++i) {
          sum += v[g * 2 + i] * a.x[(g * 4 + Code::position(meta[full_words], gg, i)) * a.ldx + b];
        }
      }
      if (a.bias != nullptr) sum += a.bias[r];
      if (a.act == Activation::kRelu && sum < 0.0f) sum = 0.0f;
      y_at(r, b) = sum;
    }
  }
  if (a.act == Activation::kNone || a.act == Activation::kRelu) return;
  if (a.transposed_y) {
    for (int64_t r = r0; r < r1; ++r) finish_rows<V>(a.y + r * a.ldy, NB, nullptr, a.act);
  } else {
    for (int64_t b = 0; b < NB; ++b) finish_rows<V>(a.y + b * a.ldy + r0, r1 - r0, nullptr, a.act);
  }
}

// Batched N:M: 2:4 at batches up to one tile of nm24_columns (where the ISA file enables it) by
// nm24_columns, the rest by the batched driver. Two tiles' columns would read the weights twice: on the
// Ice Lake host 3,072 × 768 at batch 8 on AVX2 (two tiles of 4) took 1,758 µs against the driver's 929.
template <class V, bool Columns>
void spmm_nm_batched(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  const auto& w = static_cast<const NmMatrix&>(weight);
  if constexpr (Columns) {
    if (w.n() == 2 && w.m() == 4 && a.batch <= nm24_columns_tile<V>()) {
      with_count<nm24_columns_tile<V>()>(a.batch, [&](auto nb) { nm24_columns<V, decltype(nb)::value>(w, a, r0, r1); });
      return;
    }
  }
  with_pattern(w.n(), w.m(), [&](auto n, auto m) {
    sparse_rows_batched<V>(NmRows<decltype(n)::value, decltype(m)::value>{w}, a, r0, r1);
  });
}

}  // namespace
}  // namespace sparsert
