#include "sparsert/nm.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "formats/common.hpp"

namespace sparsert {

bool NmMatrix::supports(int n, int m) { return (m == 4 || m == 8) && n >= 1 && n < m; }

namespace {
int log2_exact(int m) { return m == 4 ? 2 : 3; }
}  // namespace

NmMatrix::NmMatrix(const float* w, int64_t rows, int64_t cols, int n, int m)
    : Weight(Format::kNM, rows, cols, detail::round_up(cols, m == 4 || m == 8 ? m : 1)), n_(n), m_(m), nnz_(0) {
  if (!supports(n, m)) {
    throw InvalidArgument("building nm: pattern " + std::to_string(n) + ":" + std::to_string(m) +
                          " is not supported (expected M of 4 or 8 and 1 ≤ N < M, e.g. 2:4)");
  }
  detail::check_matrix("building nm", w, rows, cols);
  groups_ = (cols + m - 1) / m;
  position_bits_ = log2_exact(m);
  groups_per_word_ = 32 / (n * position_bits_);
  words_per_row_ = (groups_ + groups_per_word_ - 1) / groups_per_word_;
  AlignedVector<float> values(static_cast<size_t>(rows * groups_ * n), 0.0f);
  AlignedVector<uint32_t> meta(static_cast<size_t>(rows * words_per_row_), 0u);

  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups_; ++g) {
      const int64_t c0 = g * m, c1 = std::min(cols, c0 + m);
      int pos[8];
      int count = 0;
      for (int64_t c = c0; c < c1; ++c) {
        if (!detail::is_stored(w[r * cols + c])) continue;
        if (count == n) {
          int found = 0;
          for (int64_t cc = c0; cc < c1; ++cc) found += detail::is_stored(w[r * cols + cc]);
          throw InvalidArgument("building nm " + std::to_string(n) + ":" + std::to_string(m) + ": row " +
                                std::to_string(r) + ", group " + std::to_string(g) + " (columns " +
                                std::to_string(c0) + ".." + std::to_string(c1 - 1) + ") has " + std::to_string(found) +
                                " non-zeros (expected at most " + std::to_string(n) + ")");
        }
        pos[count++] = static_cast<int>(c - c0);
      }
      nnz_ += c1 - c0 < n ? c1 - c0 : n;  // in-bounds stored entries, explicit zeros included
      // Fill to exactly N positions with the lowest unused ones, then keep them ascending.
      for (int p = 0; count < n; ++p) {
        if (std::find(pos, pos + count, p) == pos + count) pos[count++] = p;
      }
      std::sort(pos, pos + n);
      uint32_t code = 0;
      for (int i = 0; i < n; ++i) {
        code |= static_cast<uint32_t>(pos[i]) << (i * position_bits_);
        const int64_t c = c0 + pos[i];
        values[(r * groups_ + g) * n + i] = c < cols ? w[r * cols + c] : 0.0f;
      }
      const int shift = static_cast<int>(g % groups_per_word_) * n * position_bits_;
      meta[r * words_per_row_ + g / groups_per_word_] |= code << shift;
    }
  }
  values_ = std::move(values);
  meta_ = std::move(meta);
}

int NmMatrix::position(int64_t r, int64_t g, int i) const {
  const uint32_t word = meta_[r * words_per_row_ + g / groups_per_word_];
  const int shift = static_cast<int>(g % groups_per_word_) * n_ * position_bits_ + i * position_bits_;
  return static_cast<int>((word >> shift) & static_cast<uint32_t>(m_ - 1));
}

int64_t NmMatrix::nbytes() const {
  return static_cast<int64_t>(values_.size() * sizeof(float) + meta_.size() * sizeof(uint32_t));
}

void NmMatrix::to_dense(float* out) const {
  std::fill(out, out + rows() * cols(), 0.0f);
  for (int64_t r = 0; r < rows(); ++r) {
    for (int64_t g = 0; g < groups_; ++g) {
      for (int i = 0; i < n_; ++i) {
        const int64_t c = g * m_ + position(r, g, i);
        if (c < cols()) out[r * cols() + c] = values_[(r * groups_ + g) * n_ + i];
      }
    }
  }
}

std::string NmMatrix::describe() const {
  return "NM(shape=" + detail::shape_string(rows(), cols()) + ", pattern=" + std::to_string(n_) + ":" +
         std::to_string(m_) + ", nnz=" + std::to_string(nnz()) + ", density=" + detail::format_double(density(), 4) +
         ", nbytes=" + std::to_string(nbytes()) + ")";
}

}  // namespace sparsert

namespace sparsert {

NmMatrix::NmMatrix(int64_t rows, int64_t cols, int n, int m)
    : Weight(Format::kNM, rows, cols, detail::round_up(cols, m)),
      n_(n),
      m_(m),
      groups_((cols + m - 1) / m),
      position_bits_(log2_exact(m)),
      groups_per_word_(32 / (n * log2_exact(m))),
      words_per_row_((groups_ + groups_per_word_ - 1) / groups_per_word_),
      nnz_(0) {}

std::shared_ptr<NmMatrix> NmMatrix::from_parts(int64_t rows, int64_t cols, int n, int m, SharedArray<float> values,
                                               SharedArray<uint32_t> meta) {
  const std::string what = "reading nm " + detail::shape_string(rows, cols);
  if (rows < 0 || cols < 0) throw InvalidArgument(what + ": negative shape");
  if (!supports(n, m)) {
    throw InvalidArgument(what + ": pattern " + std::to_string(n) + ":" + std::to_string(m) +
                          " is not supported (expected M of 4 or 8 and 1 ≤ N < M)");
  }
  std::shared_ptr<NmMatrix> w(new NmMatrix(rows, cols, n, m));
  if (static_cast<int64_t>(values.size()) != rows * w->groups_ * n ||
      static_cast<int64_t>(meta.size()) != rows * w->words_per_row_) {
    throw InvalidArgument(what + ": values has " + std::to_string(values.size()) + " entries and meta " +
                          std::to_string(meta.size()) + " words (expected " + std::to_string(rows * w->groups_ * n) +
                          " and " + std::to_string(rows * w->words_per_row_) + ")");
  }
  w->values_ = std::move(values);
  w->meta_ = std::move(meta);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < w->groups_; ++g) {
      const int64_t c0 = g * m, in_bounds = std::min<int64_t>(m, cols - c0);
      for (int i = 0; i < n; ++i) {
        const int p = w->position(r, g, i);
        if ((i > 0 && p <= w->position(r, g, i - 1)) ||
            (c0 + p >= cols && w->values_[(r * w->groups_ + g) * n + i] != 0.0f)) {
          throw InvalidArgument(what + ": row " + std::to_string(r) + ", group " + std::to_string(g) +
                                " has positions out of order or a non-zero past the last column " +
                                "(expected ascending positions and zero padding)");
        }
      }
      w->nnz_ += in_bounds < n ? in_bounds : n;
    }
  }
  return w;
}

}  // namespace sparsert
