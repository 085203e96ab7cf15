#include "sparsert/csc.hpp"

#include <algorithm>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

CscMatrix::CscMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kCsc, rows, cols, cols), index_bits_(rows <= 65536 ? 16 : 32) {
  detail::check_matrix("building csc", w, rows, cols);
  col_ptr_.assign(static_cast<size_t>(cols) + 1, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) col_ptr_[c + 1] += detail::is_stored(w[r * cols + c]);
  for (int64_t c = 0; c < cols; ++c) col_ptr_[c + 1] += col_ptr_[c];
  values_.resize(col_ptr_.back());
  if (index_bits_ == 16) row_idx16_.resize(col_ptr_.back()); else row_idx32_.resize(col_ptr_.back());
  AlignedVector<int64_t> next(col_ptr_.begin(), col_ptr_.end() - 1);
  for (int64_t r = 0; r < rows; ++r) {  // rows ascend, so each column's entries do too
    for (int64_t c = 0; c < cols; ++c) {
      if (!detail::is_stored(w[r * cols + c])) continue;
      const int64_t at = next[c]++;
      values_[at] = w[r * cols + c];
      if (index_bits_ == 16) row_idx16_[at] = static_cast<uint16_t>(r); else row_idx32_[at] = static_cast<uint32_t>(r);
    }
  }
}

std::shared_ptr<CscMatrix> CscMatrix::from_parts(int64_t rows, int64_t cols, AlignedVector<int64_t> col_ptr,
                                                 AlignedVector<uint32_t> row_idx, AlignedVector<float> values) {
  const std::string what = "reading csc " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  detail::check_row_ptr(what, col_ptr, cols, static_cast<int64_t>(values.size()));
  detail::check_compressed_indices(what, col_ptr, cols, row_idx, static_cast<int64_t>(values.size()), rows,
                                   "row_idx", "column", "rows");
  std::shared_ptr<CscMatrix> w(new CscMatrix(rows, cols));
  w->col_ptr_ = std::move(col_ptr);
  w->values_ = std::move(values);
  if (w->index_bits_ == 16) w->row_idx16_.assign(row_idx.begin(), row_idx.end());
  else w->row_idx32_ = std::move(row_idx);
  return w;
}

int64_t CscMatrix::nbytes() const {
  return static_cast<int64_t>(col_ptr_.size() * sizeof(int64_t) + values_.size() * sizeof(float) +
                              row_idx16_.size() * sizeof(uint16_t) + row_idx32_.size() * sizeof(uint32_t));
}

void CscMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  for (int64_t c = 0; c < cols(); ++c) {
    for (int64_t i = col_ptr_[c]; i < col_ptr_[c + 1]; ++i) {
      const int64_t r = index_bits_ == 16 ? row_idx16_[i] : row_idx32_[i];
      out[r * cols() + c] = values_[i];
    }
  }
}

std::string CscMatrix::describe() const {
  return "CSC(shape=" + detail::shape_string(rows(), cols()) + ", nnz=" + std::to_string(nnz()) +
         ", density=" + detail::format_double(density(), 4) + ", index=u" + std::to_string(index_bits_) +
         ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert
