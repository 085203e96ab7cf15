// Pieces every SIMD kernel body shares, written over a vector type V (x86/vec_avx2.hpp,
// x86/vec_avx512.hpp, arm/vec_neon.hpp). Kernels store raw sums first and apply bias and activation
// in one pass over each contiguous run of outputs (y[b * ldy + r0 .. r1)), so the epilogue is
// vectorised along rows whatever the kernel's tile. Everything here has internal linkage: it is
// compiled into TUs with different ISA flags.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>

#include "kernels/simd/activations.hpp"
#include "kernels/kernel.hpp"

namespace sparsert {
namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// The lanes of the V::kWidth floats from column a of a row of w floats that lie inside the row, for
// V::load_lanes (where V::kMaskedLoads): loads that start before the row or run past it touch no
// memory outside it.
template <class V>
inline typename V::Lanes lanes_in_row(int64_t a, int64_t w) {
  constexpr int64_t W = V::kWidth;
  const int64_t lo = a >= 0 ? 0 : min_i64(-a, W);
  const int64_t hi = a >= w ? lo : min_i64(w - a, W);
  return V::lanes(static_cast<int>(lo), static_cast<int>(hi > lo ? hi : lo));
}

// A compile-time count of vectors (batch tiles) or an unrolled index.
template <int N>
struct Const {
  static constexpr int value = N;
};

// A type passed as a value, to a generic lambda that runs on it.
template <class T>
struct TypeTag {
  using type = T;
};

// f(Const<0>{}), ..., f(Const<N-1>{}): keeps accumulator indices compile-time constants.
template <int N, int I = 0, class Fn>
inline void unroll(Fn&& f) {
  if constexpr (I < N) {
    f(Const<I>{});
    unroll<N, I + 1>(f);
  }
}

// f(Const<n>{}) for a run-time count 0 ≤ n ≤ N, nothing for n = 0: a partial tile's or tail's
// count as a compile-time constant.
template <int N, class Fn>
inline void with_count(int64_t n, Fn&& f) {
  assert(n >= 0 && n <= N);
  if constexpr (N > 0) {
    if (n == N) return f(Const<N>{});
    with_count<N - 1>(n, f);
  }
}

// One callable from several lambdas, each call going to the one whose parameters fit.
template <class... Fs>
struct Overload : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overload(Fs...) -> Overload<Fs...>;

// y[i] = A(x[i] + b[i]) for i < n (b may be null: A(x[i]); y may be x), a vector at a time.
template <class V, Activation A>
void activate_row(const float* x, const float* b, float* y, int64_t n) {
  constexpr int W = V::kWidth;
  int64_t i = 0;
  if (b != nullptr) {
    for (; i + W <= n; i += W) V::store(y + i, activate_vec<V, A>(V::add(V::load(x + i), V::load(b + i))));
  } else {
    for (; i + W <= n; i += W) V::store(y + i, activate_vec<V, A>(V::load(x + i)));
  }
  if (i < n) {
    const int rest = static_cast<int>(n - i);
    typename V::F v = V::load_first(x + i, rest);
    if (b != nullptr) v = V::add(v, V::load_first(b + i, rest));
    V::store_first(y + i, activate_vec<V, A>(v), rest);
  }
}

// y[i] = act(y[i] + bias[i]) for i < n (bias may be null), a vector at a time (activations.hpp).
template <class V>
void finish_rows(float* y, int64_t n, const float* bias, Activation act) {
  if (bias == nullptr && act == Activation::kNone) return;
  with_activation(act, [&](auto a) { activate_row<V, decltype(a)::value>(y, bias, y, n); });
}

// Batch-1 kernels: rows [r0, r1) of y hold raw sums.
template <class V>
void finish_vector(const SpmmArgs& a, int64_t r0, int64_t r1) {
  finish_rows<V>(a.y + r0, r1 - r0, a.bias != nullptr ? a.bias + r0 : nullptr, a.act);
}

// Vectors in a tile of for_each_tile: two, and no fewer than kBatchPad lanes (NEON: four), so that
// each broadcast weight feeds at least two FMAs and 4-lane vectors load a whole 64-byte line of lanes.
template <class V>
constexpr int tile_vectors() {
  return kBatchPad / V::kWidth > 2 ? static_cast<int>(kBatchPad / V::kWidth) : 2;
}

// Batched kernels: walks the packed batch in tiles of tile_vectors<V>() vectors, handing
// body(Const<NV>, b0) the vector count each tile needs (a last tile takes ceil(rest / kWidth)), then
// finishes the tile's outputs for rows [r0, r1). ldx is a multiple of kBatchPad ≥ kWidth, so a tile
// that starts below batch may read NV * kWidth lanes.
template <class V, class Body>
void for_each_tile(const SpmmArgs& a, int64_t r0, int64_t r1, Body&& body) {
  constexpr int W = V::kWidth, NT = tile_vectors<V>();
  static_assert(kBatchPad % W == 0, "a tile must not cross the padded batch");
  static_assert(NT >= 1 && NT <= 4, "a tile is one to four vectors");
  for (int64_t b0 = 0; b0 < a.batch; b0 += NT * W) {
    switch (min_i64((a.batch - b0 + W - 1) / W, NT)) {
      case 1: body(Const<1>{}, b0); break;
      case 2: if constexpr (NT >= 2) body(Const<2>{}, b0); break;
      case 3: if constexpr (NT >= 3) body(Const<3>{}, b0); break;
      default: if constexpr (NT >= 4) body(Const<4>{}, b0); break;
    }
    for (int64_t b = b0; b < min_i64(a.batch, b0 + NT * W); ++b)
      finish_rows<V>(a.y + b * a.ldy + r0, r1 - r0, a.bias != nullptr ? a.bias + r0 : nullptr, a.act);
  }
}

// Batched kernels that sum a block of rows for a tile of lanes before storing keep the sums row-major
// (`part`, rows × L lanes) in this many bytes, and store them with transpose.
inline constexpr int64_t kSparsePartBytes = 16 * 1024;

// y[j · ldy + i] = x[i · ldx + j] for i < rows, j < cols: square blocks through registers
// (V::transpose_block), edges scalar. Element by element the copy took ~6 instructions each.
// The blocks of a 64-byte run of y's rows (kTransposeRun rows of x) go one after another, so that
// each line of y is written whole at once: blocks of 8 fill half a line, and the line was often
// evicted before its other half came. Most where y's rows lie a multiple of 4 KiB apart, all in the
// same L1 set: a batched kernel's part → y store for 3072 rows at 128 lanes, alone, 206 → 141 µs
// (with rows 3088 floats apart 30 → 25); BERT-2 g90, batch 1, Model.profile minima of 3 processes
// in turns with the build before: FFN-1 1455-1474 → 1390-1436 µs, QKV 903-930 → 891-913.
inline constexpr int64_t kTransposeRun = 16;
template <class V>
void transpose(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols) {
  constexpr int B = V::kTransposeBlock;
  static_assert(kTransposeRun % B == 0, "a run is whole blocks");
  const int64_t rows_b = rows / B * B, cols_b = cols / B * B;
  for (int64_t i0 = 0; i0 < rows_b; i0 += kTransposeRun) {
    const int64_t i1 = min_i64(i0 + kTransposeRun, rows_b);
    for (int64_t j = 0; j < cols_b; j += B) {
      for (int64_t i = i0; i < i1; i += B) V::transpose_block(x + i * ldx + j, ldx, y + j * ldy + i, ldy);
    }
    for (int64_t j = cols_b; j < cols; ++j)
      for (int64_t r = i0; r < i1; ++r) y[j * ldy + r] = x[r * ldx + j];
  }
  for (int64_t i = rows_b; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[j * ldy + i] = x[i * ldx + j];
}

// A batched kernel's row block, `part` (rows × L lanes, row-major), into y's rows: y[l · ldy + i] =
// part[i · L + l] for i < rows, l < lanes; Rows ≥ rows. Where y's rows lie a multiple of 4 KiB apart
// (1024, 3072, 4096 outputs), every lane's row of y falls in the same L1 set, and the transpose's
// stores into up to 8 of them at once thrash it. Those blocks go through a staging buffer whose rows
// do not fold, then each lane's run is copied to its row of y, one line after the next. Part → y for
// 3072 rows at 128 lanes, a scratch program's minima in three runs: 130-150 µs direct, 84-87 staged;
// with y 3088 floats wide 43-44 direct, 89-90 staged, so unfolded strides stay direct. BERT-2 g90's
// FFN-1 (768 → 3072 at 128 rows), Model.profile minima, 3 processes in turns: 1389-1416 → 1310-1322 µs.
template <class V, int L, int64_t Rows>
void store_part(const float* part, float* y, int64_t ldy, int64_t rows, int64_t lanes) {
  if (ldy * static_cast<int64_t>(sizeof(float)) % 4096 != 0) return transpose<V>(part, L, y, ldy, rows, lanes);
  constexpr int W = V::kWidth;
  constexpr int64_t ld = Rows + kTransposeRun;
  alignas(64) float stage[L * ld];
  transpose<V>(part, L, stage, ld, rows, lanes);
  for (int64_t l = 0; l < lanes; ++l) {
    const float* src = stage + l * ld;
    float* dst = y + l * ldy;
    int64_t i = 0;
    for (; i + W <= rows; i += W) V::store(dst + i, V::load(src + i));
    if (i < rows) V::store_first(dst + i, V::load(src + i), static_cast<int>(rows - i));
  }
}

// Where a kernel reads the input rows [k0, k1) of lanes [b0, b0 + width): row k at
// data + (k - k0) · stride. In place, or copied into buf (width floats a row) when the packed input's
// stride folds them onto a part of the L1 sets (ldx_folds_l1): run_spmm's packing never folds, a
// caller's layout (a convolution's activation read in place) may. `compact` copies regardless: a
// narrow tile's lanes would use a quarter of each cache line read in place.
struct InputRows {
  const float* data;
  int64_t stride;
};
inline InputRows input_rows(const SpmmArgs& a, int64_t k0, int64_t k1, int64_t b0, int64_t width, float* buf,
                            bool compact = false) {
  if (!compact && !ldx_folds_l1(a.ldx)) return {a.x + k0 * a.ldx + b0, a.ldx};
  for (int64_t k = k0; k < k1; ++k) std::memcpy(buf + (k - k0) * width, a.x + k * a.ldx + b0, sizeof(float) * width);
  return {buf, width};
}

}  // namespace
}  // namespace sparsert
