// The common interface of every weight format: a matrix W of shape (rows, cols) = (out, in)
// stored in some packed layout, multiplied as y = x · Wᵀ by the kernels.
#pragma once

#include <cstdint>
#include <string>

#include "sparsert/export.hpp"
#include "sparsert/format.hpp"

namespace sparsert {

/// A packed weight matrix. Immutable after construction, so one Weight may be used by any
/// number of threads at once. Concrete formats: DenseMatrix, CsrMatrix, BsrMatrix, NmMatrix.
class SPARSERT_API Weight {
 public:
  virtual ~Weight() = default;
  Weight(const Weight&) = default;
  Weight& operator=(const Weight&) = default;

  Format format() const { return format_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  /// Inputs a kernel may read per batch column: cols() rounded up to the format's column
  /// granularity (BSR block width, N:M group size). Entries past cols() must be zero.
  int64_t padded_cols() const { return padded_cols_; }

  /// Stored values that lie inside the matrix (explicit zeros inside BSR blocks and N:M groups
  /// count; padding outside the matrix does not).
  virtual int64_t nnz() const = 0;
  double density() const {
    return rows_ * cols_ == 0 ? 0.0 : static_cast<double>(nnz()) / static_cast<double>(rows_ * cols_);
  }
  /// Bytes the packed format occupies (values, indices, pointers, metadata).
  virtual int64_t nbytes() const = 0;
  /// Writes W into `out` (rows × cols, row-major); an exact round trip of the constructor input.
  virtual void to_dense(float* out) const = 0;
  /// One-line summary, e.g. `CSR(shape=(768, 3072), nnz=235930, density=0.1000, index=u16, nbytes=...)`.
  virtual std::string describe() const = 0;

  /// Units in which kernels split rows among threads (rows, or block rows for BSR).
  virtual int64_t row_units() const = 0;
  /// Non-zeros stored in units [0, unit): a monotone work estimate for balancing threads.
  virtual int64_t nnz_before(int64_t unit) const = 0;

 protected:
  Weight(Format format, int64_t rows, int64_t cols, int64_t padded_cols)
      : format_(format), rows_(rows), cols_(cols), padded_cols_(padded_cols) {}

 private:
  Format format_;
  int64_t rows_;
  int64_t cols_;
  int64_t padded_cols_;
};

}  // namespace sparsert
