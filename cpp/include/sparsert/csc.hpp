#pragma once

#include <cstdint>
#include <memory>

#include "sparsert/shared_array.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Unstructured sparse weight stored by columns, for layers whose inputs hold many zeros (a layer
/// after a ReLU): the kernel visits only the columns whose input is non-zero and scatters them into
/// the output, so zero activations cost one test each instead of a multiply per stored weight.
/// Layout: column c holds entries [col_ptr[c], col_ptr[c+1]) of `values` and of the row indices,
/// ascending by row. Row indices are 16-bit when rows ≤ 65536 (row_idx16), else 32-bit (row_idx32).
/// The scatter writes every output row, so the whole matrix is one work unit (one thread).
class SPARSERT_API CscMatrix final : public Weight {
 public:
  /// Packs the non-zeros of `w` (rows × cols, row-major). Throws InvalidArgument on negative sizes.
  CscMatrix(const float* w, int64_t rows, int64_t cols);
  /// Rebuilds the matrix from its layout's arrays (the model file's weight record), validating every
  /// pointer and index (row indices arrive 32-bit); throws InvalidArgument naming the field.
  static std::shared_ptr<CscMatrix> from_parts(int64_t rows, int64_t cols, SharedArray<int64_t> col_ptr,
                                               IndexArray row_idx, SharedArray<float> values);

  const int64_t* col_ptr() const { return col_ptr_.data(); }
  const float* values() const { return values_.data(); }
  const uint16_t* row_idx16() const { return row_idx_.u16.data(); }
  const uint32_t* row_idx32() const { return row_idx_.u32.data(); }
  const IndexArray& row_idx() const { return row_idx_; }
  int index_bits() const { return index_bits_; }

  int64_t nnz() const override { return col_ptr_.back(); }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return rows() > 0 ? 1 : 0; }
  int64_t nnz_before(int64_t unit) const override { return unit > 0 ? nnz() : 0; }

 private:
  CscMatrix(int64_t rows, int64_t cols)
      : Weight(Format::kCsc, rows, cols, cols), index_bits_(rows <= 65536 ? 16 : 32) {}
  SharedArray<int64_t> col_ptr_;
  SharedArray<float> values_;
  IndexArray row_idx_;
  int index_bits_;
};

}  // namespace sparsert
