// 2:4 compression for mma.sp m16n8k16: packing, decoding, and the float ↔ f16/bf16 conversions.
// The layout is specified in nm24_mma.hpp.
#include "formats/nm24_mma.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "formats/common.hpp"

namespace sparsert {

const char* to_string(Half16 h) { return h == Half16::kF16 ? "f16" : "bf16"; }

namespace {

uint32_t float_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

uint16_t float_to_f16(float v) {
  const uint32_t x = float_bits(v);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return static_cast<uint16_t>(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));  // NaN, inf
  // 65520 = 65504 + half an ulp: ties go to even, and 65504's mantissa is odd, so it rounds to inf.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (a < 0x38800000u) {
    // Below 2^-14, f16's smallest normal: a multiple of 2^-24. Scaling by 2^24 is exact, and
    // nearbyint rounds half to even in the default rounding mode; 1024 (= 2^-14) encodes as the
    // smallest normal, which is what bits 0x0400 mean.
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(bits_float(a) * 16777216.0f)));
  }
  // Normal: rebias the exponent (127 → 15, i.e. subtract 112 << 23) and round 23 mantissa bits to 10;
  // a carry out of the mantissa correctly bumps the exponent.
  uint32_t h = (a - 0x38000000u) >> 13;
  const uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(man), -24);  // exact: man < 2^10
    return sign ? -v : v;
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (man << 13));
  return bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t float_to_bf16(float v) {
  const uint32_t x = float_bits(v);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);  // ties to even; overflow to inf
}

float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

// The six position pairs mma.sp::ordered_metadata accepts, as nibbles i0 | i1 << 2 with i0 < i1.
bool valid_code(uint32_t nibble) {
  const uint32_t i0 = nibble & 3u, i1 = nibble >> 2;
  return i0 < i1;
}

std::string group_columns(int64_t c0, int64_t cols) {
  return "columns " + std::to_string(c0) + ".." + std::to_string(std::min(c0 + 3, cols - 1));
}

}  // namespace

uint16_t float_to_half16(float v, Half16 type) { return type == Half16::kF16 ? float_to_f16(v) : float_to_bf16(v); }

float half16_to_float(uint16_t bits, Half16 type) {
  return type == Half16::kF16 ? f16_to_float(bits) : bf16_to_float(bits);
}

Nm24MmaMatrix nm24_mma_pack(const float* w, int64_t rows, int64_t cols, Half16 type) {
  detail::check_matrix("packing nm24 for mma.sp", w, rows, cols);
  Nm24MmaMatrix m;
  m.rows = rows;
  m.cols = cols;
  m.type = type;
  m.row_tiles = (rows + kNm24TileRows - 1) / kNm24TileRows;
  m.k_tiles = (cols + kNm24TileCols - 1) / kNm24TileCols;
  const int64_t tiles = m.row_tiles * m.k_tiles;
  m.values.assign(static_cast<size_t>(tiles * 128), 0);
  m.meta.assign(static_cast<size_t>(tiles * 8), 0u);

  for (int64_t r = 0; r < m.row_tiles * kNm24TileRows; ++r) {
    const int64_t rt = r / kNm24TileRows, row_in_tile = r % kNm24TileRows;
    const int64_t g = row_in_tile % 8, half = row_in_tile / 8;  // half 0: register a0 / low meta bits
    for (int64_t group = 0; group < m.k_tiles * 4; ++group) {
      const int64_t c0 = group * 4;
      int pos[4];
      int count = 0;
      if (r < rows) {
        for (int i = 0; i < 4 && c0 + i < cols; ++i) {
          if (!detail::is_stored(w[r * cols + c0 + i])) continue;
          if (count == 2) {
            int found = 0;
            for (int j = 0; j < 4 && c0 + j < cols; ++j) found += detail::is_stored(w[r * cols + c0 + j]);
            throw InvalidArgument("packing nm24 for mma.sp: row " + std::to_string(r) + ", group " +
                                  std::to_string(group) + " (" + group_columns(c0, cols) + ") has " +
                                  std::to_string(found) + " non-zeros (expected at most 2: 2:4 structured sparsity)");
          }
          pos[count++] = i;
        }
      }
      // Fill to two kept positions with the lowest unused ones, then order them (i0 < i1).
      for (int p = 0; count < 2; ++p) {
        if (std::find(pos, pos + count, p) == pos + count) pos[count++] = p;
      }
      if (pos[0] > pos[1]) std::swap(pos[0], pos[1]);

      const int64_t kt = group / 4, q = group % 4;
      const int64_t t = rt * m.k_tiles + kt;
      const int64_t lane = 4 * g + q;
      for (int i = 0; i < 2; ++i) {
        const int64_t c = c0 + pos[i];
        const float v = (r < rows && c < cols) ? w[r * cols + c] : 0.0f;
        m.values[static_cast<size_t>(t * 128 + lane * 4 + half * 2 + i)] = float_to_half16(v, type);
      }
      const uint32_t nibble = static_cast<uint32_t>(pos[0]) | static_cast<uint32_t>(pos[1]) << 2;
      m.meta[static_cast<size_t>(t * 8 + g)] |= nibble << (16 * half + 4 * q);
    }
  }
  return m;
}

void nm24_mma_to_dense(const Nm24MmaMatrix& m, float* out) {
  const std::string what = "decoding nm24 for mma.sp " + detail::shape_string(m.rows, m.cols);
  const int64_t tiles = m.row_tiles * m.k_tiles;
  if (m.row_tiles != (m.rows + 15) / 16 || m.k_tiles != (m.cols + 15) / 16 ||
      static_cast<int64_t>(m.values.size()) != tiles * 128 || static_cast<int64_t>(m.meta.size()) != tiles * 8) {
    throw InvalidArgument(what + ": " + std::to_string(m.row_tiles) + " × " + std::to_string(m.k_tiles) + " tiles, " +
                          std::to_string(m.values.size()) + " values, " + std::to_string(m.meta.size()) +
                          " metadata words (expected ceil(rows/16) × ceil(cols/16) tiles of 128 values and 8 words)");
  }
  std::fill(out, out + m.rows * m.cols, 0.0f);
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t rt = t / m.k_tiles, kt = t % m.k_tiles;
    for (int64_t g = 0; g < 8; ++g) {
      const uint32_t word = m.meta[static_cast<size_t>(t * 8 + g)];
      for (int64_t half = 0; half < 2; ++half) {
        const int64_t r = rt * 16 + half * 8 + g;
        for (int64_t q = 0; q < 4; ++q) {
          const uint32_t nibble = (word >> (16 * half + 4 * q)) & 0xfu;
          if (!valid_code(nibble)) {
            throw InvalidArgument(what + ": tile " + std::to_string(t) + " (row tile " + std::to_string(rt) +
                                  ", k tile " + std::to_string(kt) + "), group " + std::to_string(g) + ", chunk " +
                                  std::to_string(q) + " of row " + std::to_string(r) + " has metadata code " +
                                  std::to_string(nibble) +
                                  " (expected i0 | i1 << 2 with i0 < i1: 4, 8, 9, 12, 13 or 14)");
          }
          const int64_t lane = 4 * g + q;
          for (int i = 0; i < 2; ++i) {
            const uint16_t bits = m.values[static_cast<size_t>(t * 128 + lane * 4 + half * 2 + i)];
            const int64_t c = kt * 16 + q * 4 + static_cast<int64_t>((nibble >> (2 * i)) & 3u);
            if (r < m.rows && c < m.cols) {
              out[r * m.cols + c] = half16_to_float(bits, m.type);
            } else if ((bits & 0x7fffu) != 0) {
              throw InvalidArgument(what + ": tile " + std::to_string(t) + ", lane " + std::to_string(lane) +
                                    " stores value bits " + std::to_string(bits) + " at padding position (row " +
                                    std::to_string(r) + ", column " + std::to_string(c) + ") (expected zero)");
            }
          }
        }
      }
    }
  }
}

std::string Nm24MmaMatrix::describe() const {
  return std::string("nm24 mma.sp m16n8k16 ") + to_string(type) + " " + detail::shape_string(rows, cols) + ", " +
         std::to_string(row_tiles) + " × " + std::to_string(k_tiles) + " tiles of 16 × 16";
}

}  // namespace sparsert
