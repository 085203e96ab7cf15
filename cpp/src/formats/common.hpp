// Helpers shared by the format constructors.
#pragma once

#include <cstdint>
#include <string>

#include "sparsert/shared_array.hpp"
#include "sparsert/error.hpp"

namespace sparsert::detail {

/// Stored means "not exactly zero": NaN and ±0 differ here on purpose (NaN is kept, -0.0 is not).
inline bool is_stored(float v) { return v != 0.0f; }

inline void check_matrix(const char* action, const float* w, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) {
    throw InvalidArgument(std::string(action) + ": shape (" + std::to_string(rows) + ", " +
                          std::to_string(cols) + ") is negative (expected sizes ≥ 0)");
  }
  if (w == nullptr && rows * cols > 0) {
    throw InvalidArgument(std::string(action) + ": weight pointer is null for a non-empty matrix");
  }
}

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/// "(768, 3072)"
inline std::string shape_string(int64_t rows, int64_t cols) {
  return "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")";
}

std::string format_double(double v, int digits);

}  // namespace sparsert::detail

namespace sparsert::detail {

/// Checks a row-pointer array read from a file: `units` + 1 entries, starting at 0, never
/// decreasing, ending at `entries`. Throws InvalidArgument prefixed with `what`.
void check_row_ptr(const std::string& what, const SharedArray<int64_t>& row_ptr, int64_t units, int64_t entries);

/// Checks the index array of a compressed layout read from a file (CSR columns per row, CSC rows per
/// column, BSR block columns per block row): one index per entry, ascending within each of the
/// `units` segments of `ptr` (already checked), each below `limit`. Names are for the message, e.g.
/// ("col_idx", "row", "columns").
void check_compressed_indices(const std::string& what, const SharedArray<int64_t>& ptr, int64_t units,
                              const IndexArray& idx, int64_t entries, int64_t limit,
                              const char* idx_name, const char* unit_name, const char* index_noun);

}  // namespace sparsert::detail
