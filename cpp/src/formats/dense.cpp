#include "sparsert/dense.hpp"

#include <algorithm>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

DenseMatrix::DenseMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kDense, rows, cols, cols) {
  detail::check_matrix("building dense", w, rows, cols);
  pack(w);
}

void DenseMatrix::pack(const float* w) {
  const int64_t r_count = rows(), k_count = cols();
  panels_.assign(static_cast<size_t>(panel_count() * kPanelRows * k_count), 0.0f);
  if (k_count == 0) return;  // no panels: row_offset(r) past a null data() would be undefined
  for (int64_t r = 0; r < r_count; ++r) {
    float* dst = panels_.data() + row_offset(r);
    const float* src = w + r * k_count;
    for (int64_t c = 0; c < k_count; ++c) dst[c * kPanelRows] = src[c];
  }
}

int64_t DenseMatrix::nbytes() const { return static_cast<int64_t>(panels_.size() * sizeof(float)); }

int64_t DenseMatrix::nnz_before(int64_t unit) const { return std::min(unit * kPanelRows, rows()) * cols(); }

void DenseMatrix::to_dense(float* out) const {
  const int64_t r_count = rows(), k_count = cols();
  if (k_count == 0) return;  // as in pack()
  for (int64_t r = 0; r < r_count; ++r) {
    const float* src = panels_.data() + row_offset(r);
    float* dst = out + r * k_count;
    for (int64_t c = 0; c < k_count; ++c) dst[c] = src[c * kPanelRows];
  }
}

std::string DenseMatrix::describe() const {
  return "Dense(shape=" + detail::shape_string(rows(), cols()) + ", nbytes=" + std::to_string(nbytes()) + ")";
}

std::shared_ptr<DenseMatrix> DenseMatrix::from_parts(int64_t rows, int64_t cols, AlignedVector<float> values) {
  if (rows < 0 || cols < 0 || static_cast<int64_t>(values.size()) != rows * cols) {
    throw InvalidArgument("reading dense " + detail::shape_string(rows, cols) + ": values has " +
                          std::to_string(values.size()) + " entries (expected rows × cols)");
  }
  std::shared_ptr<DenseMatrix> w(new DenseMatrix(rows, cols));
  w->pack(values.data());
  return w;
}

}  // namespace sparsert
