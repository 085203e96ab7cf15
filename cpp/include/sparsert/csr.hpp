#pragma once

#include <cstdint>

#include <memory>

#include "sparsert/shared_array.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Unstructured sparse weight in compressed sparse rows.
/// Layout: row r holds entries [row_ptr[r], row_ptr[r+1]) of `values` and of the column
/// indices, ascending by column. Column indices are 16-bit when cols ≤ 65536 (col_idx16),
/// else 32-bit (col_idx32); the other array is empty. Every non-zero of W is stored (NaN counts
/// as non-zero), no zero is.
class SPARSERT_API CsrMatrix final : public Weight {
 public:
  /// Packs the non-zeros of `w` (rows × cols, row-major). Throws InvalidArgument on negative sizes.
  CsrMatrix(const float* w, int64_t rows, int64_t cols);

  /// Rebuilds the matrix from its layout's arrays (the model file's weight record, used in place),
  /// validating every pointer and index (indices of the other width are converted: copied); throws
  /// InvalidArgument naming the field and the offending entry.
  static std::shared_ptr<CsrMatrix> from_parts(int64_t rows, int64_t cols, SharedArray<int64_t> row_ptr,
                                               IndexArray col_idx, SharedArray<float> values);

  const int64_t* row_ptr() const { return row_ptr_.data(); }
  const float* values() const { return values_.data(); }
  const uint16_t* col_idx16() const { return col_idx_.u16.data(); }
  const uint32_t* col_idx32() const { return col_idx_.u32.data(); }
  const IndexArray& col_idx() const { return col_idx_; }
  int index_bits() const { return index_bits_; }

  int64_t nnz() const override { return row_ptr_.back(); }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return rows(); }
  int64_t nnz_before(int64_t unit) const override { return row_ptr_[unit]; }

 private:
  CsrMatrix(int64_t rows, int64_t cols)
      : Weight(Format::kCsr, rows, cols, cols), index_bits_(cols <= 65536 ? 16 : 32) {}
  SharedArray<int64_t> row_ptr_;
  SharedArray<float> values_;
  IndexArray col_idx_;
  int index_bits_;
};

}  // namespace sparsert
