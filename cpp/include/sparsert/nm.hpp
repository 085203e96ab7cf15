#pragma once

#include <cstdint>

#include <memory>

#include "sparsert/shared_array.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// N:M semi-structured weight: in every row, each group of M consecutive columns holds at most
/// N non-zeros (M is 4 or 8, 1 ≤ N < M; 2:4 is the common case).
/// Layout: groups = ceil(cols / M); every group stores exactly N values,
/// values[(r * groups + g) * N + i], at distinct positions p_i ∈ [0, M) ascending; a group with
/// fewer non-zeros stores explicit zeros at the lowest unused positions (which may lie in the
/// padding past cols() in the last group, so kernels read inputs up to padded_cols()).
/// Positions take log2(M) bits each; a group's N positions form a code of N·log2(M) bits
/// (p_0 in the lowest bits), and codes are packed, least significant first, into 32-bit words:
/// groups_per_word() codes per word, words_per_row() words per row, never straddling words.
class SPARSERT_API NmMatrix final : public Weight {
 public:
  /// Packs `w` (rows × cols, row-major). Throws InvalidArgument for unsupported N/M or when a
  /// group holds more than N non-zeros (the message names row, group and columns).
  NmMatrix(const float* w, int64_t rows, int64_t cols, int n, int m);

  /// Rebuilds the matrix from its layout's arrays (the model file's weight record), validating sizes,
  /// that each group's positions ascend, and that values at padding positions are zero; throws
  /// InvalidArgument naming the field and the offending entry.
  static std::shared_ptr<NmMatrix> from_parts(int64_t rows, int64_t cols, int n, int m, SharedArray<float> values,
                                              SharedArray<uint32_t> meta);

  int n() const { return n_; }
  int m() const { return m_; }
  int64_t groups() const { return groups_; }
  int position_bits() const { return position_bits_; }
  int groups_per_word() const { return groups_per_word_; }
  int64_t words_per_row() const { return words_per_row_; }
  const float* values() const { return values_.data(); }
  const uint32_t* meta() const { return meta_.data(); }
  /// Position (0..M-1) of value i of group g in row r.
  int position(int64_t r, int64_t g, int i) const;

  int64_t nnz() const override { return nnz_; }
  int64_t nbytes() const override;
  void to_dense(float* out) const override;
  std::string describe() const override;
  int64_t row_units() const override { return rows(); }
  int64_t nnz_before(int64_t unit) const override { return unit * groups_ * n_; }

  /// True when (n, m) is a pattern the kernels support.
  static bool supports(int n, int m);

 private:
  NmMatrix(int64_t rows, int64_t cols, int n, int m);  // sizes the layout; arrays empty
  int n_;
  int m_;
  int64_t groups_;
  int position_bits_;
  int groups_per_word_;
  int64_t words_per_row_;
  SharedArray<float> values_;
  SharedArray<uint32_t> meta_;
  int64_t nnz_;
};

}  // namespace sparsert
