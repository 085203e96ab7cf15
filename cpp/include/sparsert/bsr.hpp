#pragma once

#include <cstdint>

#include <memory>

#include "sparsert/shared_array.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Block-sparse weight with blocks of block_rows × block_cols (each 1, 2, 4, 8 or 16).
/// Layout: W is cut into block rows of `block_rows` rows; block row i holds blocks
/// [row_ptr[i], row_ptr[i+1]) in ascending block-column order. Block b covers columns
/// [block_col[b] * block_cols, +block_cols) and its values are
/// values[b * block_rows * block_cols + rr * block_cols + cc], row-major inside the block.
/// Block-column indices are 16-bit when the number of block columns ≤ 65536, else 32-bit.
/// A block is stored when any of its entries is non-zero. When rows or cols are not multiples of
/// the block, the last block row/column is padded with zeros inside the format: kernels compute
/// padded rows and never store them, and read inputs up to padded_cols().
class SPARSERT_API BsrMatrix final : public Weight {
 public:
  /// Packs `w` (rows × cols, row-major). Throws InvalidArgument for an unsupported block shape.
  BsrMatrix(const float* w, int64_t rows, int64_t cols, int block_rows, int block_cols);

  /// Rebuilds the matrix from its layout's arrays (the model file's weight record), validating the
  /// block shape, pointers and block-column indices, and that padding outside the matrix is zero;
  /// throws InvalidArgument naming the field and the offending entry.
  static std::shared_ptr<BsrMatrix> from_parts(int64_t rows, int64_t cols, int block_rows, int block_cols,
                                               SharedArray<int64_t> row_ptr, IndexArray block_col,
                                               SharedArray<float> values);

  int block_rows() const { return block_rows_; }
  int block_cols() const { return block_cols_; }
  int64_t block_row_count() const { return static_cast<int64_t>(row_ptr_.size()) - 1; }
  int64_t nblocks() const { return row_ptr_.back(); }
  const int64_t* row_ptr() const { return row_ptr_.data(); }
  const float* values() const { return values_.data(); }
  const uint16_t* block_col16() const { return block_col_.u16.data(); }
  const uint32_t* block_col32() const { return block_col_.u32.data(); }
  const IndexArray& block_col() const { return block_col_; }
  int index_bits() const { return index_bits_; }

  int64_t nnz() const override { return nnz_; }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return block_row_count(); }
  int64_t nnz_before(int64_t unit) const override {
    return row_ptr_[unit] * block_rows_ * block_cols_;
  }

  /// True when (block_rows, block_cols) is a shape the kernels support.
  static bool supports_block(int block_rows, int block_cols);

 private:
  BsrMatrix(int64_t rows, int64_t cols, int block_rows, int block_cols);
  int block_rows_;
  int block_cols_;
  SharedArray<int64_t> row_ptr_;
  SharedArray<float> values_;
  IndexArray block_col_;
  int index_bits_;
  int64_t nnz_;
};

}  // namespace sparsert
