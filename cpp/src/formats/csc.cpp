#include "sparsert/csc.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "formats/common.hpp"

namespace sparsert {

CscMatrix::CscMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kCsc, rows, cols, cols), index_bits_(rows <= 65536 ? 16 : 32) {
  detail::check_matrix("building csc", w, rows, cols);
  AlignedVector<int64_t> col_ptr(static_cast<size_t>(cols) + 1, 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) col_ptr[c + 1] += detail::is_stored(w[r * cols + c]);
  for (int64_t c = 0; c < cols; ++c) col_ptr[c + 1] += col_ptr[c];
  AlignedVector<float> values(static_cast<size_t>(col_ptr.back()));
  AlignedVector<uint32_t> row_idx(static_cast<size_t>(col_ptr.back()));
  AlignedVector<int64_t> next(col_ptr.begin(), col_ptr.end() - 1);
  for (int64_t r = 0; r < rows; ++r) {  // rows ascend, so each column's entries do too
    for (int64_t c = 0; c < cols; ++c) {
      if (!detail::is_stored(w[r * cols + c])) continue;
      const int64_t at = next[c]++;
      values[at] = w[r * cols + c];
      row_idx[at] = static_cast<uint32_t>(r);
    }
  }
  col_ptr_ = std::move(col_ptr);
  values_ = std::move(values);
  row_idx_ = IndexArray(std::move(row_idx)).with_bits(index_bits_);
}

std::shared_ptr<CscMatrix> CscMatrix::from_parts(int64_t rows, int64_t cols, SharedArray<int64_t> col_ptr,
                                                 IndexArray row_idx, SharedArray<float> values) {
  const std::string what = "reading csc " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  detail::check_row_ptr(what, col_ptr, cols, static_cast<int64_t>(values.size()));
  detail::check_compressed_indices(what, col_ptr, cols, row_idx, static_cast<int64_t>(values.size()), rows,
                                   "row_idx", "column", "rows");
  std::shared_ptr<CscMatrix> w(new CscMatrix(rows, cols));
  w->col_ptr_ = std::move(col_ptr);
  w->values_ = std::move(values);
  w->row_idx_ = row_idx.with_bits(w->index_bits_);
  return w;
}

int64_t CscMatrix::nbytes() const {
  return static_cast<int64_t>(col_ptr_.size() * sizeof(int64_t) + values_.size() * sizeof(float)) + row_idx_.nbytes();
}

void CscMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  for (int64_t c = 0; c < cols(); ++c) {
    for (int64_t i = col_ptr_[c]; i < col_ptr_[c + 1]; ++i) {
      out[row_idx_[i] * cols() + c] = values_[i];
    }
  }
}

std::string CscMatrix::describe() const {
  return "CSC(shape=" + detail::shape_string(rows(), cols()) + ", nnz=" + std::to_string(nnz()) +
         ", density=" + detail::format_double(density(), 4) + ", index=u" + std::to_string(index_bits_) +
         ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert
