#include "sparsert/bsr.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "formats/common.hpp"

namespace sparsert {

bool BsrMatrix::supports_block(int block_rows, int block_cols) {
  auto ok = [](int v) { return v == 1 || v == 2 || v == 4 || v == 8 || v == 16; };
  return ok(block_rows) && ok(block_cols);
}

BsrMatrix::BsrMatrix(const float* w, int64_t rows, int64_t cols, int block_rows, int block_cols)
    : Weight(Format::kBsr, rows, cols, detail::round_up(cols, block_cols > 0 ? block_cols : 1)),
      block_rows_(block_rows),
      block_cols_(block_cols),
      nnz_(0) {
  if (!supports_block(block_rows, block_cols)) {
    throw InvalidArgument("building bsr: block shape (" + std::to_string(block_rows) + ", " +
                          std::to_string(block_cols) + ") is not supported (expected each side 1, 2, 4, 8 or 16)");
  }
  detail::check_matrix("building bsr", w, rows, cols);
  const int64_t brows = (rows + block_rows - 1) / block_rows;
  const int64_t bcols = (cols + block_cols - 1) / block_cols;
  index_bits_ = bcols <= 65536 ? 16 : 32;

  // A block's in-bounds window: rows [r0, r1), columns [c0, c1).
  auto block_stored = [&](int64_t bi, int64_t bj) {
    const int64_t r1 = std::min(rows, (bi + 1) * block_rows), c1 = std::min(cols, (bj + 1) * block_cols);
    for (int64_t r = bi * block_rows; r < r1; ++r)
      for (int64_t c = bj * block_cols; c < c1; ++c)
        if (detail::is_stored(w[r * cols + c])) return true;
    return false;
  };

  AlignedVector<int64_t> row_ptr(static_cast<size_t>(brows) + 1, 0);
  AlignedVector<uint32_t> cols_found;
  for (int64_t bi = 0; bi < brows; ++bi) {
    for (int64_t bj = 0; bj < bcols; ++bj)
      if (block_stored(bi, bj)) cols_found.push_back(static_cast<uint32_t>(bj));
    row_ptr[bi + 1] = static_cast<int64_t>(cols_found.size());
  }
  const int64_t nblk = row_ptr.back();
  const int64_t bsize = int64_t{block_rows} * block_cols;
  AlignedVector<float> values(static_cast<size_t>(nblk * bsize), 0.0f);
  for (int64_t bi = 0; bi < brows; ++bi) {
    const int64_t r1 = std::min(rows, (bi + 1) * block_rows);
    for (int64_t b = row_ptr[bi]; b < row_ptr[bi + 1]; ++b) {
      const int64_t bj = cols_found[b];
      const int64_t c1 = std::min(cols, (bj + 1) * block_cols);
      for (int64_t r = bi * block_rows; r < r1; ++r)
        for (int64_t c = bj * block_cols; c < c1; ++c)
          values[b * bsize + (r - bi * block_rows) * block_cols + (c - bj * block_cols)] = w[r * cols + c];
      nnz_ += (r1 - bi * block_rows) * (c1 - bj * block_cols);
    }
  }
  row_ptr_ = std::move(row_ptr);
  values_ = std::move(values);
  block_col_ = IndexArray(std::move(cols_found)).with_bits(index_bits_);
}

int64_t BsrMatrix::nbytes() const {
  return static_cast<int64_t>(row_ptr_.size() * sizeof(int64_t) + values_.size() * sizeof(float)) + block_col_.nbytes();
}

void BsrMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  const int64_t bsize = int64_t{block_rows_} * block_cols_;
  for (int64_t bi = 0; bi < block_row_count(); ++bi) {
    for (int64_t b = row_ptr_[bi]; b < row_ptr_[bi + 1]; ++b) {
      const int64_t bj = block_col_[b];
      for (int rr = 0; rr < block_rows_; ++rr) {
        const int64_t r = bi * block_rows_ + rr;
        if (r >= rows()) break;
        for (int cc = 0; cc < block_cols_; ++cc) {
          const int64_t c = bj * block_cols_ + cc;
          if (c >= cols()) break;
          out[r * cols() + c] = values_[b * bsize + rr * block_cols_ + cc];
        }
      }
    }
  }
}

std::string BsrMatrix::describe() const {
  return "BSR(shape=" + detail::shape_string(rows(), cols()) + ", block=(" + std::to_string(block_rows_) + ", " +
         std::to_string(block_cols_) + "), nblocks=" + std::to_string(nblocks()) + ", nnz=" + std::to_string(nnz()) +
         ", density=" + detail::format_double(density(), 4) + ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert

namespace sparsert {

BsrMatrix::BsrMatrix(int64_t rows, int64_t cols, int block_rows, int block_cols)
    : Weight(Format::kBsr, rows, cols, detail::round_up(cols, block_cols)),
      block_rows_(block_rows),
      block_cols_(block_cols),
      index_bits_((cols + block_cols - 1) / block_cols <= 65536 ? 16 : 32),
      nnz_(0) {}

std::shared_ptr<BsrMatrix> BsrMatrix::from_parts(int64_t rows, int64_t cols, int block_rows, int block_cols,
                                                 SharedArray<int64_t> row_ptr, IndexArray block_col,
                                                 SharedArray<float> values) {
  const std::string what = "reading bsr " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  if (!supports_block(block_rows, block_cols)) {
    throw InvalidArgument(what + ": block shape (" + std::to_string(block_rows) + ", " + std::to_string(block_cols) +
                          ") is not supported (expected each side 1, 2, 4, 8 or 16)");
  }
  const int64_t brows = (rows + block_rows - 1) / block_rows, bcols = (cols + block_cols - 1) / block_cols;
  const int64_t bsize = int64_t{block_rows} * block_cols;
  detail::check_row_ptr(what, row_ptr, brows, static_cast<int64_t>(block_col.size()));
  if (static_cast<int64_t>(values.size()) != static_cast<int64_t>(block_col.size()) * bsize) {
    throw InvalidArgument(what + ": values has " + std::to_string(values.size()) + " entries (expected " +
                          std::to_string(block_col.size()) + " blocks × " + std::to_string(bsize) + ")");
  }
  detail::check_compressed_indices(what, row_ptr, brows, block_col, static_cast<int64_t>(block_col.size()), bcols,
                                   "block_col", "block row", "block columns");
  std::shared_ptr<BsrMatrix> w(new BsrMatrix(rows, cols, block_rows, block_cols));
  for (int64_t bi = 0; bi < brows; ++bi) {
    const int64_t r_in = std::min<int64_t>(block_rows, rows - bi * block_rows);
    for (int64_t b = row_ptr[bi]; b < row_ptr[bi + 1]; ++b) {
      const int64_t bj = block_col[b];
      const int64_t c_in = std::min<int64_t>(block_cols, cols - bj * block_cols);
      for (int rr = 0; rr < block_rows; ++rr) {
        for (int cc = 0; cc < block_cols; ++cc) {
          // Padding is multiplied by zero inputs, which only works if it holds zeros (NaN · 0 = NaN).
          if ((rr >= r_in || cc >= c_in) && values[b * bsize + rr * block_cols + cc] != 0.0f) {
            throw InvalidArgument(what + ": block " + std::to_string(b) + " holds a non-zero outside the matrix " +
                                  "(expected zero padding)");
          }
        }
      }
      w->nnz_ += r_in * c_in;
    }
  }
  w->row_ptr_ = std::move(row_ptr);
  w->values_ = std::move(values);
  w->block_col_ = block_col.with_bits(w->index_bits_);
  return w;
}

}  // namespace sparsert
