#pragma once

#include <memory>

#include "sparsert/shared_array.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Dense weight, for layers that stay dense.
/// Layout: row panels of kPanelRows consecutive rows, each stored column by column:
///   panels[(p * cols + c) * kPanelRows + i] = W[p * kPanelRows + i, c],
/// rows past rows() in the last panel are zero; 64-byte aligned base. A column of a panel is a run of
/// whole SIMD vectors, so kernels multiply it by one broadcast input with no per-call repacking.
/// Units (the thread split) are panels.
class SPARSERT_API DenseMatrix final : public Weight {
 public:
  static constexpr int64_t kPanelRows = 16;

  /// Copies `w` (rows × cols, row-major). Throws InvalidArgument on negative sizes.
  DenseMatrix(const float* w, int64_t rows, int64_t cols);

  /// Rebuilds the matrix from its panels (the model file's weight record, used in place); throws
  /// InvalidArgument naming the field when the size is wrong or a padding row holds a non-zero.
  static std::shared_ptr<DenseMatrix> from_parts(int64_t rows, int64_t cols, SharedArray<float> panels);

  const float* panels() const { return panels_.data(); }
  int64_t panel_count() const { return (rows() + kPanelRows - 1) / kPanelRows; }
  /// Offset of W[r, 0] in panels(); W[r, c] lies c · kPanelRows further on.
  int64_t row_offset(int64_t r) const { return (r / kPanelRows) * cols() * kPanelRows + r % kPanelRows; }

  int64_t nnz() const override { return rows() * cols(); }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return panel_count(); }
  int64_t nnz_before(int64_t unit) const override;

 private:
  DenseMatrix(int64_t rows, int64_t cols) : Weight(Format::kDense, rows, cols, cols) {}
  SharedArray<float> panels_;
};

}  // namespace sparsert
