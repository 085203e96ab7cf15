#include "sparsert/csr.hpp"

#include <algorithm>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

CsrMatrix::CsrMatrix(const float* w, int64_t rows, int64_t cols)
    : Weight(Format::kCsr, rows, cols, cols), index_bits_(cols <= 65536 ? 16 : 32) {
  detail::check_matrix("building csr", w, rows, cols);
  row_ptr_.assign(static_cast<size_t>(rows) + 1, 0);
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    for (int64_t c = 0; c < cols; ++c) count += detail::is_stored(row[c]);
    row_ptr_[r + 1] = count;
  }
  values_.resize(count);
  if (index_bits_ == 16) col_idx16_.resize(count); else col_idx32_.resize(count);
  int64_t at = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    for (int64_t c = 0; c < cols; ++c) {
      if (!detail::is_stored(row[c])) continue;
      values_[at] = row[c];
      // 16-bit indices hold c ≤ 65535 since cols ≤ 65536.
      if (index_bits_ == 16) col_idx16_[at] = static_cast<uint16_t>(c); else col_idx32_[at] = static_cast<uint32_t>(c);
      ++at;
    }
  }
}

int64_t CsrMatrix::nbytes() const {
  return static_cast<int64_t>(row_ptr_.size() * sizeof(int64_t) + values_.size() * sizeof(float) +
                              col_idx16_.size() * sizeof(uint16_t) + col_idx32_.size() * sizeof(uint32_t));
}

void CsrMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  for (int64_t r = 0; r < rows(); ++r) {
    for (int64_t i = row_ptr_[r]; i < row_ptr_[r + 1]; ++i) {
      const int64_t c = index_bits_ == 16 ? col_idx16_[i] : col_idx32_[i];
      out[r * cols() + c] = values_[i];
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

std::shared_ptr<CsrMatrix> CsrMatrix::from_parts(int64_t rows, int64_t cols, AlignedVector<int64_t> row_ptr,
                                                 AlignedVector<uint32_t> col_idx, AlignedVector<float> values) {
  const std::string what = "reading csr " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  detail::check_row_ptr(what, row_ptr, rows, static_cast<int64_t>(values.size()));
  detail::check_compressed_indices(what, row_ptr, rows, col_idx, static_cast<int64_t>(values.size()), cols,
                                   "col_idx", "row", "columns");
  std::shared_ptr<CsrMatrix> w(new CsrMatrix(rows, cols));
  w->row_ptr_ = std::move(row_ptr);
  w->values_ = std::move(values);
  if (w->index_bits_ == 16) w->col_idx16_.assign(col_idx.begin(), col_idx.end());
  else w->col_idx32_ = std::move(col_idx);
  return w;
}

}  // namespace sparsert
