#include "formats/common.hpp"

#include <cstdio>

namespace sparsert::detail {

std::string format_double(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}


void check_compressed_indices(const std::string& what, const SharedArray<int64_t>& ptr, int64_t units,
                              const IndexArray& idx, int64_t entries, int64_t limit,
                              const char* idx_name, const char* unit_name, const char* index_noun) {
  if (static_cast<int64_t>(idx.size()) != entries) {
    throw InvalidArgument(what + ": " + idx_name + " has " + std::to_string(idx.size()) + " entries (expected " +
                          std::to_string(entries) + ", one per stored entry)");
  }
  for (int64_t u = 0; u < units; ++u) {
    for (int64_t i = ptr[u]; i < ptr[u + 1]; ++i) {
      if (idx[i] >= static_cast<uint64_t>(limit) || (i > ptr[u] && idx[i] <= idx[i - 1])) {
        throw InvalidArgument(what + ": " + idx_name + "[" + std::to_string(i) + "] = " + std::to_string(idx[i]) +
                              " in " + unit_name + " " + std::to_string(u) + " (expected ascending " + index_noun +
                              " below " + std::to_string(limit) + ")");
      }
    }
  }
}

}  // namespace sparsert::detail

namespace sparsert::detail {

void check_row_ptr(const std::string& what, const SharedArray<int64_t>& row_ptr, int64_t units, int64_t entries) {
  if (static_cast<int64_t>(row_ptr.size()) != units + 1) {
    throw InvalidArgument(what + ": row_ptr has " + std::to_string(row_ptr.size()) + " entries (expected " +
                          std::to_string(units + 1) + ")");
  }
  if (row_ptr[0] != 0 || row_ptr[units] != entries) {
    throw InvalidArgument(what + ": row_ptr runs from " + std::to_string(row_ptr[0]) + " to " +
                          std::to_string(row_ptr[units]) + " (expected 0 to " + std::to_string(entries) + ")");
  }
  for (int64_t i = 0; i < units; ++i) {
    if (row_ptr[i + 1] < row_ptr[i]) {
      throw InvalidArgument(what + ": row_ptr decreases at entry " + std::to_string(i + 1) + " (expected non-decreasing)");
    }
  }
}

}  // namespace sparsert::detail
