#pragma once

#include <memory>

#include "sparsert/aligned.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Dense weight, for layers that stay dense.
/// Layout: values[r * cols + c], row-major, 64-byte aligned base.
class SPARSERT_API DenseMatrix final : public Weight {
 public:
  /// Copies `w` (rows × cols, row-major). Throws InvalidArgument on negative sizes.
  DenseMatrix(const float* w, int64_t rows, int64_t cols);

  /// Rebuilds the matrix from its layout's array (the model file's weight record); throws
  /// InvalidArgument naming the field when a size is wrong.
  static std::shared_ptr<DenseMatrix> from_parts(int64_t rows, int64_t cols, AlignedVector<float> values);

  const float* values() const { return values_.data(); }

  int64_t nnz() const override { return rows() * cols(); }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return rows(); }
  int64_t nnz_before(int64_t unit) const override { return unit * cols(); }

 private:
  DenseMatrix(int64_t rows, int64_t cols) : Weight(Format::kDense, rows, cols, cols) {}
  AlignedVector<float> values_;
};

}  // namespace sparsert
