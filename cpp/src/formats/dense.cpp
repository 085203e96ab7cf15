#include "sparsert/dense.hpp"

#include <algorithm>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

DenseMatrix::DenseMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kDense, rows, cols, cols) {
  detail::check_matrix("building dense", w, rows, cols);
  values_.assign(w, w + rows * cols);
}

int64_t DenseMatrix::nbytes() const { return static_cast<int64_t>(values_.size() * sizeof(float)); }

void DenseMatrix::to_dense(float* out) const { std::copy(values_.begin(), values_.end(), out); }

std::string DenseMatrix::describe() const {
  return "Dense(shape=" + detail::shape_string(rows(), cols()) + ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert

namespace sparsert {

std::shared_ptr<DenseMatrix> DenseMatrix::from_parts(int64_t rows, int64_t cols, AlignedVector<float> values) {
  if (rows < 0 || cols < 0 || static_cast<int64_t>(values.size()) != rows * cols) {
    throw InvalidArgument("reading dense " + detail::shape_string(rows, cols) + ": values has " +
                          std::to_string(values.size()) + " entries (expected rows × cols)");
  }
  std::shared_ptr<DenseMatrix> w(new DenseMatrix(rows, cols));
  w->values_ = std::move(values);
  return w;
}

}  // namespace sparsert
