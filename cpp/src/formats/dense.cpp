#include "sparsert/dense.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "formats/common.hpp"

namespace sparsert {

DenseMatrix::DenseMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kDense, rows, cols, cols) {
  detail::check_matrix("building dense", w, rows, cols);
  AlignedVector<float> panels(static_cast<size_t>(panel_count() * kPanelRows * cols), 0.0f);
  if (cols > 0) {  // no panels: row_offset(r) past a null data() would be undefined
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = panels.data() + row_offset(r);
      const float* src = w + r * cols;
      for (int64_t c = 0; c < cols; ++c) dst[c * kPanelRows] = src[c];
    }
  }
  panels_ = std::move(panels);
}

int64_t DenseMatrix::nbytes() const { return static_cast<int64_t>(panels_.size() * sizeof(float)); }

int64_t DenseMatrix::nnz_before(int64_t unit) const { return std::min(unit * kPanelRows, rows()) * cols(); }

void DenseMatrix::to_dense(float* out) const {
  const int64_t r_count = rows(), k_count = cols();
  if (k_count == 0) return;  // as in the constructor
  for (int64_t r = 0; r < r_count; ++r) {
    const float* src = panels_.data() + row_offset(r);
    float* dst = out + r * k_count;
    for (int64_t c = 0; c < k_count; ++c) dst[c] = src[c * kPanelRows];
  }
}

std::string DenseMatrix::describe() const {
  return "Dense(shape=" + detail::shape_string(rows(), cols()) + ", nbytes=" + std::to_string(nbytes()) + ")";
}

std::shared_ptr<DenseMatrix> DenseMatrix::from_parts(int64_t rows, int64_t cols, SharedArray<float> panels) {
  const std::string what = "reading dense " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  std::shared_ptr<DenseMatrix> w(new DenseMatrix(rows, cols));
  const int64_t expected = w->panel_count() * kPanelRows * cols;
  if (static_cast<int64_t>(panels.size()) != expected) {
    throw InvalidArgument(what + ": panels has " + std::to_string(panels.size()) + " entries (expected " +
                          std::to_string(expected) + ": " + std::to_string(w->panel_count()) + " panels of " +
                          std::to_string(kPanelRows) + " rows × cols)");
  }
  // The last panel's rows past rows() hold zeros as written; anything else is a damaged file.
  for (int64_t r = rows; r < w->panel_count() * kPanelRows && cols > 0; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (panels[static_cast<size_t>(w->row_offset(r) + c * kPanelRows)] != 0.0f) {
        throw InvalidArgument(what + ": padding row " + std::to_string(r) + " holds a non-zero (expected zeros)");
      }
    }
  }
  w->panels_ = std::move(panels);
  return w;
}

}  // namespace sparsert
