// The GPU layouts, packed and checked on the CPU (no CUDA needed): the tiled CSR (formats/tcsr.hpp)
// round-trips and its host reference, which reads the layout as the kernels do, matches the double
// product; the 2:4 mma.sp layout (formats/nm24_mma.hpp) round-trips exactly, sits where the register
// map says, and rejects weights that break 2:4 with the row and group named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "formats/nm24_mma.hpp"
#include "formats/tcsr.hpp"
#include "oracle.hpp"

namespace sparsert::test {
namespace {

std::string label(int64_t rows, int64_t cols, double density, int64_t col_tile, uint32_t seed) {
  return "shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ") density " + std::to_string(density) +
         " col_tile " + std::to_string(col_tile) + " seed " + std::to_string(seed);
}

// ---- tiled CSR ----------------------------------------------------------------------------------

TEST(Tcsr, RoundTripsOverShapesDensitiesAndTiles) {
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 17, 67})
    for (int64_t cols : {1, 5, 31, 129, 300})
      for (double density : {0.0, 0.05, 0.3, 0.5, 0.95, 1.0})
        for (int64_t col_tile : {kTcsrMaxColTile, int64_t{64}, int64_t{7}, int64_t{1}}) {
          const auto w = random_weight(rows, cols, density, {}, ++seed);
          const TcsrMatrix m = tcsr_pack(w.data(), rows, cols, col_tile);
          const std::string where = label(rows, cols, density, col_tile, seed);
          ASSERT_NO_THROW(tcsr_validate(m)) << where;
          std::vector<float> back(w.size(), -1.0f);
          tcsr_to_dense(m, back.data());
          for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(w[i], back[i]) << where << " index " << i;
          int64_t nonzero = 0;
          for (float v : w) nonzero += v != 0.0f;
          EXPECT_EQ(m.nnz, nonzero) << where;
          EXPECT_EQ(m.col_tiles, (cols + col_tile - 1) / col_tile) << where;
          EXPECT_EQ(m.entries() % kTcsrVec, 0) << where;
          EXPECT_LT(m.entries() - m.nnz, 4 * rows * m.col_tiles) << where;  // < 4 padding entries per segment
        }
}

TEST(Tcsr, SegmentsStartOnVectorBoundariesAndPadWithTheLastColumn) {
  // Row 0: columns 1, 4, 6 in tile 0 (cols 0..7), column 9 in tile 1; row 1 empty; row 2 columns 8..12.
  const int64_t rows = 3, cols = 13;
  std::vector<float> w(rows * cols, 0.0f);
  w[1] = 1; w[4] = 2; w[6] = 3; w[9] = 4;
  for (int c = 8; c <= 12; ++c) w[2 * cols + c] = static_cast<float>(c);
  const TcsrMatrix m = tcsr_pack(w.data(), rows, cols, 8);
  ASSERT_EQ(m.col_tiles, 2);
  const std::vector<uint32_t> expected_ptr = {0, 4, 8, 8, 8, 8, 16};
  ASSERT_EQ(std::vector<uint32_t>(m.seg_ptr.begin(), m.seg_ptr.end()), expected_ptr);
  const std::vector<uint16_t> expected_idx = {1, 4, 6, 6, 1, 1, 1, 1, 0, 1, 2, 3, 4, 4, 4, 4};
  EXPECT_EQ(std::vector<uint16_t>(m.col_idx.begin(), m.col_idx.end()), expected_idx);
  const std::vector<float> expected_values = {1, 2, 3, 0, 4, 0, 0, 0, 8, 9, 10, 11, 12, 0, 0, 0};
  EXPECT_EQ(std::vector<float>(m.values.begin(), m.values.end()), expected_values);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.values.data()) % 16, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m.col_idx.data()) % 16, 0u);
}

TEST(Tcsr, ReferenceReadsTheLayoutAsTheKernelsAndMatchesTheDoubleProduct) {
  uint32_t seed = 500;
  for (int64_t rows : {1, 7, 33, 130})
    for (int64_t cols : {1, 9, 70, 301})
      for (double density : {0.05, 0.1, 0.3, 0.5, 0.95})
        for (int64_t col_tile : {kTcsrMaxColTile, int64_t{32}, int64_t{5}})
          for (int64_t batch : {1, 2, 5, 16, 33}) {
            ++seed;
            const auto w = random_weight(rows, cols, density, {}, seed);
            const int64_t ldx = cols + 3, ldy = rows + 2;
            auto x = random_vector(batch * ldx, seed + 1);
            std::vector<float> xd(batch * cols);  // the oracle's dense batch-major copy
            for (int64_t b = 0; b < batch; ++b)
              for (int64_t c = 0; c < cols; ++c) xd[b * cols + c] = x[b * ldx + c];
            for (int64_t b = 0; b < batch; ++b)  // an input past cols must never be read
              for (int64_t c = cols; c < ldx; ++c) x[b * ldx + c] = std::numeric_limits<float>::quiet_NaN();
            const TcsrMatrix m = tcsr_pack(w.data(), rows, cols, col_tile);
            std::vector<float> y(batch * ldy, 1234.5f), yd(batch * rows);
            spmm_tcsr_f32_ref(m, x.data(), ldx, batch, y.data(), ldy);
            for (int64_t b = 0; b < batch; ++b)
              for (int64_t r = 0; r < ldy; ++r) {
                if (r < rows) yd[b * rows + r] = y[b * ldy + r];
                else ASSERT_EQ(y[b * ldy + r], 1234.5f) << "wrote past rows at batch " << b << " row " << r;
              }
            const auto ref = dense_product(w, rows, cols, xd, batch, nullptr, Activation::kNone);
            const auto mag = dense_magnitude(w, rows, cols, xd, batch, nullptr);
            EXPECT_LE(relative_error(yd, ref, mag), kTolF32VsF64)
                << "spmm_tcsr_f32_ref " << label(rows, cols, density, col_tile, seed) << " batch " << batch;
          }
}

TEST(Tcsr, RejectsColTileOutOfRange) {
  const std::vector<float> w(4, 1.0f);
  for (int64_t bad : {int64_t{0}, int64_t{-3}, int64_t{65537}}) {
    try {
      tcsr_pack(w.data(), 2, 2, bad);
      FAIL() << "col_tile " << bad << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("col_tile " + std::to_string(bad) + " is out of range"), std::string::npos)
          << e.what();
    }
  }
}

TEST(Tcsr, ValidateNamesTheCorruptedEntry) {
  std::vector<float> w(2 * 10, 0.0f);
  w[3] = 1; w[5] = 2; w[12] = 3;
  const TcsrMatrix good = tcsr_pack(w.data(), 2, 10, 8);
  ASSERT_NO_THROW(tcsr_validate(good));
  auto expect_throw = [](const TcsrMatrix& m, const std::string& text) {
    try {
      tcsr_validate(m);
      FAIL() << "accepted a layout that should fail with: " << text;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  TcsrMatrix m = good;
  m.col_idx[1] = 9;  // tile 0 is 8 columns wide
  expect_throw(m, "entry 1 of segment 0 (row 0, tile 0) has column 9");
  m = good;
  m.values[3] = 7.0f;  // a padding entry with a value
  expect_throw(m, "entry 3 of segment 0");
  m = good;
  m.seg_ptr[1] = 3;  // not a multiple of 4
  expect_throw(m, "segment 0 (row 0, tile 0) spans entries 0..3");
  m = good;
  m.nnz = 5;
  expect_throw(m, "nnz 5 (expected 3");
}

// ---- 2:4 for mma.sp ------------------------------------------------------------------------------

TEST(Half16, ConvertsWithRoundToNearestEven) {
  struct Case { float v; uint16_t f16; uint16_t bf16; };
  const Case cases[] = {
      {1.0f, 0x3c00, 0x3f80},
      {-2.0f, 0xc000, 0xc000},
      {65504.0f, 0x7bff, 0x4780},
      {65519.0f, 0x7bff, 0x4780},
      {65520.0f, 0x7c00, 0x4780},                   // f16: the tie above 65504 goes to even, i.e. inf
      {std::ldexp(1.0f, -24), 0x0001, 0x3380},      // smallest f16 subnormal
      {std::ldexp(1.0f, -25), 0x0000, 0x3300},      // f16: a tie with zero goes to zero
      {std::ldexp(3.0f, -25), 0x0002, 0x33c0},      // f16: 1.5 ulp goes to 2
      {std::ldexp(1.0f, -14), 0x0400, 0x3880},      // smallest f16 normal
      {1.0f + std::ldexp(1.0f, -11), 0x3c00, 0x3f80},       // f16 tie, even stays
      {1.0f + std::ldexp(3.0f, -11), 0x3c02, 0x3f80},       // f16 tie, odd goes up
      {1.0f + std::ldexp(1.0f, -8), 0x3c04, 0x3f80},        // bf16 tie: even stays
      {1.0f + std::ldexp(3.0f, -8), 0x3c0c, 0x3f82},        // bf16 tie: odd goes up
      {std::numeric_limits<float>::infinity(), 0x7c00, 0x7f80},
      {-0.0f, 0x8000, 0x8000},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(float_to_half16(c.v, Half16::kF16), c.f16) << c.v;
    EXPECT_EQ(float_to_half16(c.v, Half16::kBF16), c.bf16) << c.v;
  }
  EXPECT_TRUE(std::isnan(half16_to_float(float_to_half16(std::nanf(""), Half16::kF16), Half16::kF16)));
  EXPECT_TRUE(std::isnan(half16_to_float(float_to_half16(std::nanf(""), Half16::kBF16), Half16::kBF16)));
  // Every 16-bit pattern widens and narrows back to itself (NaNs stay NaN).
  for (Half16 type : {Half16::kF16, Half16::kBF16})
    for (uint32_t bits = 0; bits < 65536; ++bits) {
      const float v = half16_to_float(static_cast<uint16_t>(bits), type);
      if (std::isnan(v)) continue;
      ASSERT_EQ(float_to_half16(v, type), bits) << to_string(type) << " bits " << bits;
    }
}

TEST(Nm24Mma, RoundTripIsExact) {
  uint32_t seed = 900;
  for (Half16 type : {Half16::kF16, Half16::kBF16})
    for (int64_t rows : {1, 5, 16, 17, 40})
      for (int64_t cols : {1, 3, 4, 15, 16, 33, 70})
        for (double density : {0.0, 0.5, 0.9, 1.0}) {
          auto w = random_weight(rows, cols, density, {"nm", 2, 4, 1, 1}, ++seed);
          // Half of the cases with values the 16-bit type holds exactly, so decode must give w itself.
          if (seed % 2)
            for (auto& v : w) v = half16_to_float(float_to_half16(v, type), type);
          const Nm24MmaMatrix m = nm24_mma_pack(w.data(), rows, cols, type);
          ASSERT_EQ(m.row_tiles, (rows + 15) / 16);
          ASSERT_EQ(m.k_tiles, (cols + 15) / 16);
          std::vector<float> back(w.size(), -1.0f);
          nm24_mma_to_dense(m, back.data());
          for (size_t i = 0; i < w.size(); ++i) {
            const float expected = half16_to_float(float_to_half16(w[i], type), type);
            ASSERT_EQ(std::memcmp(&back[i], &expected, sizeof(float)), 0)
                << to_string(type) << " shape (" << rows << ", " << cols << ") density " << density << " seed "
                << seed << " index " << i << ": got " << back[i] << ", expected " << expected;
            if (seed % 2) ASSERT_EQ(back[i], w[i]);
          }
          for (uint32_t word : m.meta)
            for (int k = 0; k < 8; ++k) {
              const uint32_t nibble = (word >> (4 * k)) & 0xfu;
              ASSERT_LT(nibble & 3u, nibble >> 2) << "metadata code " << nibble << " is not an ordered pair";
            }
        }
}

TEST(Nm24Mma, ValuesAndMetadataSitWhereTheRegisterMapSays) {
  // One 16 × 16 tile set by hand. Row 9 = group 1, second half (register a1, metadata bits 16..31);
  // its chunk 2 (columns 8..11) keeps columns 9 and 11: lane 4·1 + 2 = 6, values[6·4 + 2..3], code
  // 1 | 3 << 2 = 0b1101 at bits 16 + 4·2. Row 2 = group 2, first half; chunk 0 keeps only column 3,
  // so position 0 is filled with an explicit zero: code 0 | 3 << 2 = 0b1100 at bits 0..3 of group 2.
  std::vector<float> w(16 * 16, 0.0f);
  w[9 * 16 + 9] = 1.5f;
  w[9 * 16 + 11] = -2.0f;
  w[2 * 16 + 3] = 0.25f;
  const Nm24MmaMatrix m = nm24_mma_pack(w.data(), 16, 16, Half16::kF16);
  ASSERT_EQ(m.values.size(), 128u);
  ASSERT_EQ(m.meta.size(), 8u);
  EXPECT_EQ(m.values[6 * 4 + 2], 0x3e00);  // 1.5
  EXPECT_EQ(m.values[6 * 4 + 3], 0xc000);  // -2
  EXPECT_EQ((m.meta[1] >> (16 + 8)) & 0xfu, 0b1101u);
  EXPECT_EQ(m.values[8 * 4 + 0], 0x0000);  // lane 8 = group 2, chunk 0: the filled zero first,
  EXPECT_EQ(m.values[8 * 4 + 1], 0x3400);  // then 0.25
  EXPECT_EQ(m.meta[2] & 0xfu, 0b1100u);
  // Every other chunk is empty: positions 0 and 1, code 0b0100, in all 16 nibbles but the two above.
  int plain = 0;
  for (uint32_t word : m.meta)
    for (int k = 0; k < 8; ++k) plain += ((word >> (4 * k)) & 0xfu) == 0b0100u;
  EXPECT_EQ(plain, 8 * 8 - 2);
}

TEST(Nm24Mma, RejectsThreeNonZerosInAGroupNamingRowAndGroup) {
  std::vector<float> w(4 * 24, 0.0f);
  w[3 * 24 + 20] = 1; w[3 * 24 + 21] = 2; w[3 * 24 + 23] = 3;  // row 3, group 5 (columns 20..23)
  try {
    nm24_mma_pack(w.data(), 4, 24, Half16::kBF16);
    FAIL() << "3 non-zeros in a group of 4 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "packing nm24 for mma.sp: row 3, group 5 (columns 20..23) has 3 non-zeros "
                           "(expected at most 2: 2:4 structured sparsity)");
  }
  // A short last group counts too: columns 8..9 of a 10-column row.
  std::vector<float> v(10, 0.0f);
  v[0] = 1; v[1] = 1; v[8] = 1; v[9] = 1;
  EXPECT_NO_THROW(nm24_mma_pack(v.data(), 1, 10, Half16::kF16));
  v[2] = 1;
  EXPECT_THROW(nm24_mma_pack(v.data(), 1, 10, Half16::kF16), InvalidArgument);
}

TEST(Nm24Mma, DecoderRejectsCodesTheHardwareDoesNot) {
  std::vector<float> w(16 * 16, 0.0f);
  Nm24MmaMatrix m = nm24_mma_pack(w.data(), 16, 16, Half16::kF16);
  m.meta[3] = (m.meta[3] & ~(0xfu << 20)) | (0b0101u << 20);  // group 3, row 11, chunk 1: positions 1 and 1
  std::vector<float> out(16 * 16);
  try {
    nm24_mma_to_dense(m, out.data());
    FAIL() << "metadata code 0b0101 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("group 3, chunk 1 of row 11 has metadata code 5"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace sparsert::test
