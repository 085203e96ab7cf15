// Tiled CSR for the GPU: packing, unpacking and validation. The layout is specified in tcsr.hpp.
#include "formats/tcsr.hpp"

#include <algorithm>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

namespace {

int64_t tiles_for(int64_t cols, int64_t col_tile) { return (cols + col_tile - 1) / col_tile; }

}  // namespace

TcsrMatrix tcsr_pack(const float* w, int64_t rows, int64_t cols, int64_t col_tile) {
  detail::check_matrix("building tcsr", w, rows, cols);
  if (col_tile < 1 || col_tile > kTcsrMaxColTile) {
    throw InvalidArgument("building tcsr: col_tile " + std::to_string(col_tile) +
                          " is out of range (expected 1 to 65536, what a 16-bit local index addresses)");
  }
  TcsrMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.col_tile = col_tile;
  m.col_tiles = tiles_for(cols, col_tile);
  const int64_t segments = rows * m.col_tiles;

  // Pass 1: entries per segment, each rounded up to whole 4-entry groups.
  m.seg_ptr.assign(static_cast<size_t>(segments) + 1, 0u);
  uint64_t total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < m.col_tiles; ++t) {
      const int64_t c0 = t * col_tile, c1 = std::min(cols, c0 + col_tile);
      int64_t count = 0;
      for (int64_t c = c0; c < c1; ++c) count += detail::is_stored(w[r * cols + c]);
      m.nnz += count;
      total += static_cast<uint64_t>(detail::round_up(count, kTcsrVec));
      if (total > 0xffffffffull) {
        throw InvalidArgument("building tcsr: shape " + detail::shape_string(rows, cols) + " needs more than " +
                              "2^32 - 1 entries by row " + std::to_string(r) +
                              " (expected fewer: seg_ptr is 32-bit; split the weight)");
      }
      m.seg_ptr[static_cast<size_t>(r * m.col_tiles + t) + 1] = static_cast<uint32_t>(total);
    }
  }

  // Pass 2: the entries, each segment's padding repeating its last real column with value 0.
  m.col_idx.assign(static_cast<size_t>(total), 0);
  m.values.assign(static_cast<size_t>(total), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < m.col_tiles; ++t) {
      const int64_t s = r * m.col_tiles + t;
      const int64_t c0 = t * col_tile, c1 = std::min(cols, c0 + col_tile);
      uint32_t at = m.seg_ptr[s];
      uint16_t last = 0;
      for (int64_t c = c0; c < c1; ++c) {
        const float v = w[r * cols + c];
        if (!detail::is_stored(v)) continue;
        last = static_cast<uint16_t>(c - c0);  // c - c0 < col_tile ≤ 65536
        m.col_idx[at] = last;
        m.values[at] = v;
        ++at;
      }
      for (; at < m.seg_ptr[s + 1]; ++at) m.col_idx[at] = last;  // padding: value already 0
    }
  }
  return m;
}

void tcsr_to_dense(const TcsrMatrix& m, float* out) {
  std::fill(out, out + m.rows * m.cols, 0.0f);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t t = 0; t < m.col_tiles; ++t) {
      const int64_t s = r * m.col_tiles + t;
      int64_t prev = -1;
      for (uint32_t e = m.seg_ptr[s]; e < m.seg_ptr[s + 1]; ++e) {
        const int64_t local = m.col_idx[e];
        if (local <= prev) break;  // the padding starts where the columns stop ascending
        prev = local;
        out[r * m.cols + t * m.col_tile + local] = m.values[e];
      }
    }
  }
}

void tcsr_validate(const TcsrMatrix& m) {
  const std::string what = "checking tcsr " + detail::shape_string(m.rows, m.cols);
  if (m.rows < 0 || m.cols < 0) throw InvalidArgument(what + ": negative shape (expected sizes ≥ 0)");
  if (m.col_tile < 1 || m.col_tile > kTcsrMaxColTile) {
    throw InvalidArgument(what + ": col_tile " + std::to_string(m.col_tile) + " (expected 1 to 65536)");
  }
  if (m.col_tiles != tiles_for(m.cols, m.col_tile)) {
    throw InvalidArgument(what + ": col_tiles " + std::to_string(m.col_tiles) + " (expected ceil(cols / col_tile) = " +
                          std::to_string(tiles_for(m.cols, m.col_tile)) + ")");
  }
  const int64_t segments = m.rows * m.col_tiles;
  if (static_cast<int64_t>(m.seg_ptr.size()) != segments + 1 || m.seg_ptr[0] != 0) {
    throw InvalidArgument(what + ": seg_ptr has " + std::to_string(m.seg_ptr.size()) + " entries starting at " +
                          (m.seg_ptr.empty() ? std::string("nothing") : std::to_string(m.seg_ptr[0])) +
                          " (expected rows·col_tiles + 1 = " + std::to_string(segments + 1) + " starting at 0)");
  }
  const int64_t entries = m.entries();
  if (static_cast<int64_t>(m.col_idx.size()) != entries || static_cast<int64_t>(m.values.size()) != entries) {
    throw InvalidArgument(what + ": col_idx has " + std::to_string(m.col_idx.size()) + " and values " +
                          std::to_string(m.values.size()) + " entries (expected seg_ptr's last, " +
                          std::to_string(entries) + ")");
  }
  int64_t nnz = 0;
  for (int64_t s = 0; s < segments; ++s) {
    const int64_t begin = m.seg_ptr[s], end = m.seg_ptr[s + 1];
    if (end < begin || (end - begin) % kTcsrVec != 0) {
      throw InvalidArgument(what + ": segment " + std::to_string(s) + " (row " + std::to_string(s / m.col_tiles) +
                            ", tile " + std::to_string(s % m.col_tiles) + ") spans entries " + std::to_string(begin) +
                            ".." + std::to_string(end) + " (expected a non-negative multiple of 4)");
    }
    const int64_t t = s % m.col_tiles;
    const int64_t width = std::min(m.cols, (t + 1) * m.col_tile) - t * m.col_tile;
    int64_t prev = -1;
    bool padding = false;
    for (int64_t e = begin; e < end; ++e) {
      const int64_t local = m.col_idx[e];
      if (!padding && local <= prev) padding = true;
      const bool bad_index = local >= width;
      const bool bad_padding = padding && (m.values[e] != 0.0f || local != prev || end - e > kTcsrVec - 1);
      if (bad_index || bad_padding) {
        throw InvalidArgument(what + ": entry " + std::to_string(e) + " of segment " + std::to_string(s) + " (row " +
                              std::to_string(s / m.col_tiles) + ", tile " + std::to_string(t) + ") has column " +
                              std::to_string(local) + " and value " + detail::format_double(m.values[e], 6) +
                              " (expected ascending columns below " + std::to_string(width) +
                              ", then at most 3 padding entries of value 0 repeating the last column)");
      }
      if (!padding) {
        prev = local;
        ++nnz;
      }
    }
  }
  if (nnz != m.nnz) {
    throw InvalidArgument(what + ": nnz " + std::to_string(m.nnz) + " (expected " + std::to_string(nnz) +
                          ", the real entries counted)");
  }
}

std::string TcsrMatrix::describe() const {
  const double total = static_cast<double>(rows) * static_cast<double>(cols);
  return "tcsr " + detail::shape_string(rows, cols) + " col_tile " + std::to_string(col_tile) + " nnz " +
         std::to_string(nnz) + " (density " + detail::format_double(total > 0 ? nnz / total : 0.0, 3) + ", " +
         std::to_string(entries() - nnz) + " padding entries)";
}

}  // namespace sparsert
