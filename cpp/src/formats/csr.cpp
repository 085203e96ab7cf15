#include "sparsert/csr.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "formats/common.hpp"

namespace sparsert {

CsrMatrix::CsrMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kCsr, rows, cols, cols), index_bits_(cols <= 65536 ? 16 : 32) {
  detail::check_matrix("building csr", w, rows, cols);
  AlignedVector<int64_t> row_ptr(static_cast<size_t>(rows) + 1, 0);
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    for (int64_t c = 0; c < cols; ++c) count += detail::is_stored(row[c]);
    row_ptr[r + 1] = count;
  }
  AlignedVector<float> values(static_cast<size_t>(count));
  AlignedVector<uint32_t> col_idx(static_cast<size_t>(count));
  int64_t at = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if (!detail::is_stored(row[c])) continue;
      values[at] = row[c];
      col_idx[at] = static_cast<uint32_t>(c);
      ++at;
    }
  }
  row_ptr_ = std::move(row_ptr);
  values_ = std::move(values);
  col_idx_ = IndexArray(std::move(col_idx)).with_bits(index_bits_);  // 16-bit holds c ≤ 65535 since cols ≤ 65536
}

int64_t CsrMatrix::nbytes() const {
  return static_cast<int64_t>(row_ptr_.size() * sizeof(int64_t) + values_.size() * sizeof(float)) + col_idx_.nbytes();
}

void CsrMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  for (int64_t r = 0; r < rows(); ++r) {
    for (int64_t i = row_ptr_[r]; i < row_ptr_[r + 1]; ++i) {
      out[r * cols() + col_idx_[i]] = values_[i];
    }
  }
}

std::string CsrMatrix::describe() const {
  return "CSR(shape=" + detail::shape_string(rows(), cols()) + ", nnz=" + std::to_string(nnz()) +
         ", density=" + detail::format_double(density(), 4) + ", index=u" + std::to_string(index_bits_) +
         ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert

namespace sparsert {

std::shared_ptr<CsrMatrix> CsrMatrix::from_parts(int64_t rows, int64_t cols, SharedArray<int64_t> row_ptr,
                                                 IndexArray col_idx, SharedArray<float> values) {
  const std::string what = "reading csr " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  detail::check_row_ptr(what, row_ptr, rows, static_cast<int64_t>(values.size()));
  detail::check_compressed_indices(what, row_ptr, rows, col_idx, static_cast<int64_t>(values.size()), cols,
                                   "col_idx", "row", "columns");
  std::shared_ptr<CsrMatrix> w(new CsrMatrix(rows, cols));
  w->row_ptr_ = std::move(row_ptr);
  w->values_ = std::move(values);
  w->col_idx_ = col_idx.with_bits(w->index_bits_);
  return w;
}

}  // namespace sparsert
