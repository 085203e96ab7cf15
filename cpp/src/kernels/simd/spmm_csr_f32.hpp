// CSR kernel bodies for the AVX2, AVX-512 and NEON files, over a vector type V (x86/vec_avx2.hpp,
// x86/vec_avx512.hpp, arm/vec_neon.hpp). Weight layout: sparsert/csr.hpp (16- or 32-bit column
// indices; a row's entries end at row_ptr[r+1], which is never read past). Input and output
// conventions: kernels/kernel.hpp.
#pragma once

#include <cassert>
#include <cstring>

#include "kernels/simd/common.hpp"
#include "kernels/simd/sparse_rows_batched.hpp"
#include "sparsert/csr.hpp"

namespace sparsert {
namespace {

// y[r] = Σ values[i] · x[col[i]], scalar with four independent accumulators: the 32-bit-index path
// (more than 65536 columns), rare enough that V::gather takes 16-bit indices only.
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

// The 16-bit-index path: kWidth non-zeros per step, their inputs gathered into a vector (V::gather),
// two accumulators; a row's last < kWidth non-zeros go scalar (on AVX-512 a half vector first, so at
// most 7: 768² at 10% 8% faster).
template <class V>
void csr_rows_gather(const CsrMatrix& w, const SpmmArgs& a, int64_t r0, int64_t r1) {
  using F = typename V::F;
  constexpr int W = V::kWidth;
  const int64_t* ptr = w.row_ptr();
  const float* val = w.values();
  const uint16_t* col = w.col_idx16();
  for (int64_t r = r0; r < r1; ++r) {
    int64_t i = ptr[r];
    const int64_t end = ptr[r + 1];
    F acc0 = V::zero(), acc1 = V::zero();
    for (; i + 2 * W <= end; i += 2 * W) {
      acc0 = V::fmadd(V::load(val + i), V::gather(a.x, col + i), acc0);
      acc1 = V::fmadd(V::load(val + i + W), V::gather(a.x, col + i + W), acc1);
    }
    if (i + W <= end) {
      acc0 = V::fmadd(V::load(val + i), V::gather(a.x, col + i), acc0);
      i += W;
    }
    if constexpr (W == 16) {  // AVX-512: half a vector more, so that at most 7 go scalar
      if (i + W / 2 <= end) {
        acc1 = V::fmadd(V::load_first(val + i, W / 2), V::gather_half(a.x, col + i), acc1);
        i += W / 2;
      }
    }
    float sum = V::sum(V::add(acc0, acc1));
    for (; i < end; ++i) sum += val[i] * a.x[col[i]];
    a.y[r] = sum;
  }
}

template <class V>
void spmm_csr_batch1(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  assert(a.batch == 1 && a.ldx == 1);
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) csr_rows_gather<V>(w, a, r0, r1);
  else csr_rows(w, w.col_idx32(), a, r0, r1);
  finish_vector<V>(a, r0, r1);
}

// The CSR row walker of the batched driver (simd/sparse_rows_batched.hpp): a row's cursor is its
// next entry; columns ascend within a row, so a block's entries are the next run below k1.
template <class Index>
struct CsrRows {
  using Cursor = int64_t;
  static constexpr int64_t kColumnAlign = 1;
  static constexpr bool kScattered = true;
  const CsrMatrix& w;
  const Index* col;
  const int64_t* ptr = w.row_ptr();
  const float* val = w.values();

  // Four column indices; 16-bit ones in one 64-bit load, split in registers: the input loads keep
  // the load ports busy, the integer units have room.
  static void load4(const Index* at, int64_t (&cols)[4]) {
    if constexpr (sizeof(Index) == 2) {
      uint64_t word;
      std::memcpy(&word, at, sizeof(word));
      for (int t = 0; t < 4; ++t) cols[t] = static_cast<int64_t>((word >> (16 * t)) & 0xffffu);
    } else {
      for (int t = 0; t < 4; ++t) cols[t] = at[t];
    }
  }

  int64_t padded_cols() const { return w.padded_cols(); }
  void open(int64_t r, Cursor& c) const { c = ptr[r]; }
  template <class Fma>
  void visit(int64_t r, Cursor& c, int64_t, int64_t k1, Fma&& fma) const {
    const int64_t end = ptr[r + 1];
    int64_t i = c;
    for (; i + 4 <= end; i += 4) {
      int64_t cols[4];
      load4(col + i, cols);
      if (cols[3] >= k1) break;
      fma(Const<0>{}, cols, val + i);
    }
    for (; i < end && col[i] < k1; ++i) fma(Const<0>{}, int64_t{col[i]}, val + i);
    c = i;
  }
};

// The batch lanes of a batched CSR kernel's widest tile (the tile of its kernels.def line).
template <class V>
constexpr int spmm_csr_tile() { return sparse_rows_tile_lanes<V>(); }

template <class V>
void spmm_csr_batched(const Weight& weight, const SpmmArgs& a, int64_t r0, int64_t r1) {
  const auto& w = static_cast<const CsrMatrix&>(weight);
  if (w.index_bits() == 16) sparse_rows_batched<V>(CsrRows<uint16_t>{w, w.col_idx16()}, a, r0, r1);
  else sparse_rows_batched<V>(CsrRows<uint32_t>{w, w.col_idx32()}, a, r0, r1);
}

}  // namespace
}  // namespace sparsert
