// Each format: dense → format → dense is exact, counts are right, and bad parameters are rejected.
#include <gtest/gtest.h>

#include "oracle.hpp"

namespace sparsert::test {
namespace {

struct FormatCase {
  Format format;
  Pattern pattern;
  std::string label;
};

std::vector<FormatCase> format_cases() {
  std::vector<FormatCase> out = {{Format::kDense, {}, "dense"}, {Format::kCsr, {}, "csr"}, {Format::kCsc, {}, "csc"}};
  for (int r : {1, 2, 4, 8, 16})
    for (int c : {1, 2, 4, 8, 16}) {
      Pattern p{"block", 2, 4, r, c};
      out.push_back({Format::kBsr, p, "bsr" + std::to_string(r) + "x" + std::to_string(c)});
    }
  for (auto [n, m] : std::vector<std::pair<int, int>>{{1, 4}, {2, 4}, {3, 4}, {1, 8}, {2, 8}, {4, 8}, {7, 8}}) {
    Pattern p{"nm", n, m, 1, 1};
    out.push_back({Format::kNM, p, "nm" + std::to_string(n) + "of" + std::to_string(m)});
  }
  return out;
}

class RoundTrip : public ::testing::TestWithParam<FormatCase> {};

TEST_P(RoundTrip, ExactOverShapesAndDensities) {
  const FormatCase& fc = GetParam();
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 16, 17, 67})
    for (int64_t cols : {1, 4, 5, 31, 129})
      for (double density : {0.0, 0.2, 1.0}) {
        const auto w = random_weight(rows, cols, density, fc.pattern, ++seed);
        const auto weight = make_weight(fc.format, w, rows, cols, fc.pattern);
        std::vector<float> back(w.size(), -1.0f);
        weight->to_dense(back.data());
        for (size_t i = 0; i < w.size(); ++i) {
          ASSERT_EQ(w[i], back[i]) << fc.label << " shape (" << rows << ", " << cols << ") density " << density
                                   << " seed " << seed << " index " << i;
        }
        int64_t nonzero = 0;
        for (float v : w) nonzero += v != 0.0f;
        EXPECT_GE(weight->nnz(), nonzero) << fc.label;
        EXPECT_LE(weight->nnz(), rows * cols) << fc.label;
        if (fc.format == Format::kCsr) EXPECT_EQ(weight->nnz(), nonzero);
        EXPECT_GT(weight->nbytes(), 0) << fc.label;
        EXPECT_EQ(weight->nnz_before(weight->row_units()) >= weight->nnz(), true) << fc.label;
      }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, RoundTrip, ::testing::ValuesIn(format_cases()),
                         [](const auto& info) { return info.param.label; });

TEST(Csr, IndexWidthFollowsColumnCount) {
  std::vector<float> narrow(65536, 0.0f), wide(65537, 0.0f);
  narrow.back() = 1.0f;
  wide.back() = 2.0f;
  CsrMatrix a(narrow.data(), 1, 65536), b(wide.data(), 1, 65537);
  EXPECT_EQ(a.index_bits(), 16);
  EXPECT_EQ(b.index_bits(), 32);
  std::vector<float> back(65537);
  b.to_dense(back.data());
  EXPECT_EQ(back.back(), 2.0f);
  a.to_dense(back.data());
  EXPECT_EQ(back[65535], 1.0f);
  // 16-bit CSR: 6 bytes per non-zero plus row pointers.
  EXPECT_EQ(a.nbytes(), 1 * 6 + 2 * 8);
}

TEST(Csr, KeepsNanAndDropsNegativeZero) {
  const float w[4] = {NAN, -0.0f, 0.0f, 3.0f};
  CsrMatrix m(w, 2, 2);
  EXPECT_EQ(m.nnz(), 2);
}

TEST(Bsr, RejectsUnsupportedBlocks) {
  const float w[4] = {1, 2, 3, 4};
  for (auto [r, c] : std::vector<std::pair<int, int>>{{3, 1}, {0, 4}, {4, 0}, {32, 1}, {-1, 2}}) {
    try {
      BsrMatrix m(w, 2, 2, r, c);
      FAIL() << "block " << r << "x" << c << " accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("block shape"), std::string::npos) << e.what();
    }
  }
}

TEST(Bsr, PadsPartialEdgeBlocks) {
  // 5 × 7 with 4 × 4 blocks: 2 × 2 block grid, the last row and column of blocks partial.
  std::vector<float> w(35, 0.0f);
  w[4 * 7 + 6] = 5.0f;  // only the bottom-right partial block
  BsrMatrix m(w.data(), 5, 7, 4, 4);
  EXPECT_EQ(m.nblocks(), 1);
  EXPECT_EQ(m.nnz(), 1 * 3);  // in-bounds part of the 4 × 4 block: 1 row × 3 cols
  EXPECT_EQ(m.padded_cols(), 8);
}

TEST(Nm, RejectsViolationNamingRowAndGroup) {
  std::vector<float> w(2 * 8, 0.0f);
  w[8 + 4] = w[8 + 5] = w[8 + 6] = 1.0f;  // row 1, group 1 holds 3 non-zeros
  try {
    NmMatrix m(w.data(), 2, 8, 2, 4);
    FAIL() << "violation accepted";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("row 1, group 1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("columns 4..7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most 2"), std::string::npos) << msg;
  }
}

TEST(Nm, RejectsUnsupportedPatterns) {
  const float w[4] = {1, 0, 0, 0};
  for (auto [n, m] : std::vector<std::pair<int, int>>{{0, 4}, {4, 4}, {2, 3}, {2, 16}, {5, 4}}) {
    EXPECT_THROW(NmMatrix(w, 1, 4, n, m), InvalidArgument) << n << ":" << m;
  }
}

TEST(Nm, CompactMetadataFor24) {
  std::vector<float> w(1 * 64, 0.0f);
  NmMatrix m(w.data(), 1, 64, 2, 4);
  // 16 groups of 4 bits = 2 words; 32 values.
  EXPECT_EQ(m.words_per_row(), 2);
  EXPECT_EQ(m.nbytes(), 32 * 4 + 2 * 4);
}

TEST(Names, ParseIsInverseOfToString) {
  for (Format f : {Format::kDense, Format::kCsr, Format::kBsr, Format::kNM, Format::kCsc}) EXPECT_EQ(parse_format(to_string(f)), f);
  for (Activation a : {Activation::kNone, Activation::kRelu, Activation::kRelu6, Activation::kGeluErf,
                       Activation::kGeluTanh, Activation::kSilu, Activation::kSigmoid, Activation::kTanh})
    EXPECT_EQ(parse_activation(to_string(a)), a);
  EXPECT_THROW(parse_activation("swish"), InvalidArgument);
  EXPECT_THROW(parse_format("coo"), InvalidArgument);
}

}  // namespace
}  // namespace sparsert::test

namespace sparsert {
namespace {

// from_parts: the model file's way in. Every index is checked before a kernel can use it.
TEST(FromParts, RebuildsAndRejectsBadIndicesNamingThem) {
  auto message = [](auto&& build) -> std::string {
    try {
      build();
    } catch (const InvalidArgument& e) {
      return e.what();
    }
    return "no error";
  };
  const float w[6] = {1, 0, 2, 0, 3, 0};  // (2, 3)
  auto csr = CsrMatrix::from_parts(2, 3, {0, 2, 3}, {0, 2, 1}, {1, 2, 3});
  std::vector<float> back(6);
  csr->to_dense(back.data());
  EXPECT_TRUE(std::equal(back.begin(), back.end(), w));
  EXPECT_NE(message([] { CsrMatrix::from_parts(2, 3, {0, 2, 3}, {0, 9, 1}, {1, 2, 3}); })
                .find("col_idx[1] = 9 in row 0 (expected ascending columns below 3)"),
            std::string::npos);
  auto csc = CscMatrix::from_parts(2, 3, {0, 1, 2, 3}, {0, 1, 0}, {1, 3, 2});
  csc->to_dense(back.data());
  EXPECT_TRUE(std::equal(back.begin(), back.end(), w));
  EXPECT_NE(message([] { CscMatrix::from_parts(2, 3, {0, 1, 2, 3}, {0, 2, 0}, {1, 3, 2}); })
                .find("row_idx[1] = 2 in column 1 (expected ascending rows below 2)"),
            std::string::npos);
  EXPECT_NE(message([] { BsrMatrix::from_parts(2, 3, 1, 4, {0, 1, 2}, {0, 1}, AlignedVector<float>(8, 0.0f)); })
                .find("block_col[1] = 1 in block row 1 (expected ascending block columns below 1)"),
            std::string::npos);
  EXPECT_NE(message([] { CsrMatrix::from_parts(2, 3, {0, 2, 1}, {0, 2, 1}, {1, 2, 3}); }).find("row_ptr"),
            std::string::npos);
}

}  // namespace
}  // namespace sparsert
