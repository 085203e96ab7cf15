// Tiled CSR ("tcsr"): the GPU's unstructured sparse layout, packed on the host. The CUDA kernels
// (kernels/cuda/spmm_tcsr_f32_sm80.cu) and the host reference (kernels/ref/spmm_tcsr_f32_ref.cpp)
// read it exactly as specified here; nothing else defines it.
//
// Layout of W (rows × cols, row-major source):
//   col_tile      columns per column tile, 1 ≤ col_tile ≤ 65536 (default 65536: one tile when
//                 cols ≤ 65536, every shape of the models we serve). Column tile t covers columns
//                 [t·col_tile, min(cols, (t+1)·col_tile)); col_tiles = ceil(cols / col_tile) (0 when cols is 0).
//   segment s     one per (row r, column tile t), s = r·col_tiles + t, stored in that order, so a row's
//                 segments are consecutive: row r is the entry range
//                 [seg_ptr[r·col_tiles], seg_ptr[(r+1)·col_tiles]).
//   seg_ptr       rows·col_tiles + 1 uint32, seg_ptr[0] = 0, non-decreasing; segment s holds entries
//                 [seg_ptr[s], seg_ptr[s+1]). Every segment holds a multiple of kTcsrVec = 4 entries, so
//                 every segment starts on a 4-entry boundary: its values are 16-byte aligned (one float4
//                 load per 4 entries) and its indices 8-byte aligned (one ushort4 load), given 16-byte
//                 aligned base pointers (AlignedVector here, cudaMalloc on the device).
//   col_idx       uint16 per entry, the column local to the segment's tile: column = t·col_tile + col_idx.
//                 Real entries ascend by column; then come 0–3 padding entries.
//   values        float per entry. Real entries are the stored values of W (non-zero, NaN included, as in
//                 CsrMatrix); padding entries have value 0 and repeat the segment's last real column, so
//                 a padded product reads only an input the row already reads (0·x adds nothing unless
//                 x is ±inf or NaN, where the row's sum is already inf or NaN).
//   An empty segment has no entries (no padding).
// Sizes: seg_ptr.back() (entries) < 2^32; pack throws beyond.
#pragma once

#include <cstdint>
#include <string>

#include "sparsert/aligned.hpp"

namespace sparsert {

inline constexpr int kTcsrVec = 4;                 // entries per vector load (float4 values, ushort4 indices)
inline constexpr int64_t kTcsrMaxColTile = 65536;  // what a 16-bit local index addresses

struct TcsrMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t col_tile = kTcsrMaxColTile;
  int64_t col_tiles = 0;
  int64_t nnz = 0;  // real entries (padding excluded)
  AlignedVector<uint32_t> seg_ptr;
  AlignedVector<uint16_t> col_idx;
  AlignedVector<float> values;

  int64_t entries() const { return static_cast<int64_t>(seg_ptr.empty() ? 0 : seg_ptr.back()); }
  int64_t nbytes() const {
    return static_cast<int64_t>(seg_ptr.size() * sizeof(uint32_t) + col_idx.size() * sizeof(uint16_t) +
                                values.size() * sizeof(float));
  }
  std::string describe() const;
};

/// Packs the non-zeros of `w` (rows × cols, row-major; NaN counts as non-zero) into the tiled layout
/// above with `col_tile` columns per tile. Throws InvalidArgument on negative sizes, a null `w` for a
/// non-empty matrix, col_tile outside [1, 65536], or more than 2^32 - 1 entries.
TcsrMatrix tcsr_pack(const float* w, int64_t rows, int64_t cols, int64_t col_tile = kTcsrMaxColTile);

/// Writes the dense matrix (rows × cols, row-major) the layout holds; padding entries are skipped.
void tcsr_to_dense(const TcsrMatrix& m, float* out);

/// Checks every field against the layout rules above (sizes, seg_ptr monotone with 4-entry segments,
/// indices inside their tile and ascending, padding of value 0); throws InvalidArgument naming the
/// field and the offending entry. For data that did not come from tcsr_pack (files, device copies).
void tcsr_validate(const TcsrMatrix& m);

/// Host reference of the GPU kernel: y[b·ldy + r] = Σ_k x[b·ldx + k]·W[r, k] for b < batch, r < rows,
/// summed in float over the layout's 4-entry groups in storage order, padding included, with the
/// same index arithmetic as the kernels (kernels/ref/spmm_tcsr_f32_ref.cpp). x: batch rows of ldx ≥ cols
/// floats; y: batch rows of ldy ≥ rows floats. Never allocates or throws (the caller checked sizes).
void spmm_tcsr_f32_ref(const TcsrMatrix& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy);

}  // namespace sparsert
