// Oracles in layers: each reference kernel against the double-precision dense product, then every
// line of kernels.def against the reference of its format, over tile edges and odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "kernels/registry.hpp"
#include "kernels/tensor_kernels.hpp"
#include "oracle.hpp"
#include "runtime/run_spmm.hpp"
#include "sparsert/aligned.hpp"

namespace sparsert {
// Readable test parameter in gtest's output: the kernel's name.
void PrintTo(const KernelInfo& k, std::ostream* os) { *os << k.name; }
}  // namespace sparsert

namespace sparsert::test {
namespace {

constexpr Activation kActivations[] = {Activation::kNone,     Activation::kRelu, Activation::kRelu6,
                                       Activation::kGeluErf,  Activation::kGeluTanh, Activation::kSilu,
                                       Activation::kSigmoid,  Activation::kTanh};

/// Patterns that exercise a format: every BSR block shape, every N:M pattern.
std::vector<Pattern> patterns_for(Format format) {
  std::vector<Pattern> out;
  if (format == Format::kBsr) {
    for (int r : {1, 2, 4, 8, 16})
      for (int c : {1, 2, 4, 8, 16}) out.push_back({"block", 2, 4, r, c});
  } else if (format == Format::kNM) {
    for (auto [n, m] : std::vector<std::pair<int, int>>{{1, 4}, {2, 4}, {3, 4}, {1, 8}, {2, 8}, {4, 8}, {7, 8}})
      out.push_back({"nm", n, m, 1, 1});
  } else {
    out.push_back({});
  }
  return out;
}

// Skips a kernel's test where its ISA cannot run, in words .ci/run counts to report what was skipped.
#define SKIP_UNLESS_RUNNABLE(k)                                                                \
  if (!isa_available((k).isa))                                                                 \
  GTEST_SKIP() << (k).name << ": ISA " << to_string((k).isa)                                   \
               << " not run here (absent from this CPU or capped by SPARSERT_MAX_ISA)"

std::string describe_case(const std::string& kernel, int64_t rows, int64_t cols, int64_t batch, double density,
                          const Pattern& p, uint32_t seed, Activation act, bool bias) {
  std::ostringstream s;
  s << kernel << " shape (" << rows << ", " << cols << ") batch " << batch << " density " << density << " pattern "
    << p.structure << " " << p.n << ":" << p.m << " block " << p.block_rows << "x" << p.block_cols << " seed " << seed
    << " act " << to_string(act) << (bias ? " bias" : " no-bias");
  return s.str();
}

/// Index of the first element that differs beyond tolerance, for the failure message.
template <class Ref>
std::string first_bad(const std::vector<float>& y, const Ref& ref, const std::vector<double>& magnitude) {
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tol = 1e-5 * (std::abs(double(ref[i])) + magnitude[i] + 1e-30);
    if (!(std::abs(double(y[i]) - double(ref[i])) <= tol)) {
      std::ostringstream s;
      s << "first bad index " << i << ": got " << y[i] << ", expected " << ref[i];
      return s.str();
    }
  }
  return "no single element beyond 1e-5 of its magnitude; error is spread";
}

// Kernel k on two threads against its format's reference kernel on one, with a bias and `act`, on
// fresh inputs (x from `seed`, the bias from seed + 1; both outputs NaN before): the relative error
// against the dense magnitude, and the first bad element for the failure message.
struct AgainstReference {
  double error;
  std::string first_bad;
};
AgainstReference against_reference(const KernelInfo& k, const Weight& weight, const std::vector<float>& w,
                                   int64_t rows, int64_t cols, int64_t batch, Activation act, uint32_t seed) {
  const auto x = random_vector(batch * cols, seed);
  const auto bias = random_vector(rows, seed + 1);
  std::vector<float> y(static_cast<size_t>(batch * rows), NAN), y_ref(y.size(), NAN);
  run_spmm(reference_kernel(k.format), weight, x.data(), batch, bias.data(), y_ref.data(), act, 1);
  run_spmm(k, weight, x.data(), batch, bias.data(), y.data(), act, 2);
  const auto mag = dense_magnitude(w, rows, cols, x, batch, bias.data());
  return {relative_error(y, y_ref, mag), first_bad(y, y_ref, mag)};
}

TEST(Reference, MatchesDoubleOracle) {
  uint32_t seed = 100;
  for (Format format : {Format::kDense, Format::kCsr, Format::kBsr, Format::kNM, Format::kCsc})
    for (const Pattern& p : patterns_for(format))
      for (int64_t rows : {1, 7, 33})
        for (int64_t cols : {1, 9, 70})
          for (int64_t batch : {1, 2, 5}) {
            const double density = (++seed % 3) * 0.45;
            const Activation act = kActivations[seed % 8];
            const auto w = random_weight(rows, cols, density, p, seed);
            const auto x = random_vector(batch * cols, seed + 1);
            const auto bias = random_vector(rows, seed + 2);
            const auto weight = make_weight(format, w, rows, cols, p);
            std::vector<float> y(static_cast<size_t>(batch * rows), NAN);
            run_spmm(reference_kernel(format), *weight, x.data(), batch, bias.data(), y.data(), act, 1);
            const auto ref = dense_product(w, rows, cols, x, batch, bias.data(), act);
            const auto mag = dense_magnitude(w, rows, cols, x, batch, bias.data());
            ASSERT_LE(relative_error(y, ref, mag), kTolF32VsF64)
                << describe_case(reference_kernel(format).name, rows, cols, batch, density, p, seed, act, true) << "; "
                << first_bad(y, ref, mag);
          }
}

// The input that CSC exists for: most activations zero (after a ReLU). The skipped columns must
// leave the result equal to the dense product; a NaN input is non-zero and reaches its rows.
TEST(Csc, SkipsZeroInputsExactly) {
  uint32_t seed = 500;
  for (int64_t rows : {1, 13, 70})
    for (int64_t cols : {1, 8, 65})
      for (int64_t batch : {1, 3, 4, 17}) {
        const auto w = random_weight(rows, cols, 0.3, Pattern{}, ++seed);
        auto x = random_vector(batch * cols, seed + 1);
        for (size_t i = 0; i < x.size(); ++i)
          if ((i * 7 + seed) % 10 < 7) x[i] = 0.0f;  // 70% zeros
        const auto bias = random_vector(rows, seed + 2);
        const CscMatrix weight(w.data(), rows, cols);
        std::vector<float> y(static_cast<size_t>(batch * rows), NAN);
        linear(weight, x.data(), batch, bias.data(), y.data());
        const auto ref = dense_product(w, rows, cols, x, batch, bias.data(), Activation::kNone);
        const auto mag = dense_magnitude(w, rows, cols, x, batch, bias.data());
        ASSERT_LE(relative_error(y, ref, mag), kTolF32VsF64) << rows << "x" << cols << " batch " << batch;
      }
  const float w[6] = {1, 0, 0, 2, 0, 0};  // (2, 3): only column 0 holds weights
  const CscMatrix weight(w, 2, 3);
  const float x[3] = {NAN, 0.0f, INFINITY};  // column 2 holds no weight: its Inf reaches nothing
  float y[2];
  linear(weight, x, 1, nullptr, y);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_TRUE(std::isnan(y[1]));
}

class KernelSweep : public ::testing::TestWithParam<KernelInfo> {};

TEST_P(KernelSweep, MatchesReference) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  const KernelInfo& ref = reference_kernel(k.format);

  std::vector<int64_t> batches = {1, 2, 3, 7};
  if (k.tile == 1) batches = {1};
  // From the tile T (kernels.def: the lanes of the widest register tile): its edges T - 1, T, T + 1
  // and 2T + 1 (two whole tiles and one lane); T / 2 and T / 2 + 1, a last tile of half and of more
  // than half its vectors; 4 and 5, either side of the row-sparse driver's narrow (4-lane) tile, and
  // 8 and 9, of its AVX-512 half (8-lane) tile; 10 and 32, the AVX-512 dense pair tiles of 10 columns
  // (32: 10 + 11 + 11), the width GCC once spilled a register in; 3, 6 and 14, the pair tiles' other
  // widths, and 65, a last chunk of the dense kernel's batch (64 columns) of one column.
  if (k.tile > 1) {
    const int64_t t = k.tile;
    batches = {2, 3, 4, 5, 6, 8, 9, 10, 14, t / 2, t / 2 + 1, t - 1, t, t + 1, 2 * t + 1, 32, 64, 65};
    std::sort(batches.begin(), batches.end());
    batches.erase(std::unique(batches.begin(), batches.end()), batches.end());
  }
  uint32_t seed = 1000;
  int cases = 0;
  for (const Pattern& p : patterns_for(k.format))
    for (int64_t rows : {1, 5, 17, 67})
      for (int64_t cols : {1, 7, 9, 33, 130, 521})  // 521: three column blocks of the dense kernel
        for (int64_t batch : batches)
          for (double density : {0.0, 0.3, 1.0}) {
            ++seed;
            if (!tile_fits(k.tile, batch)) continue;
            const Activation act = kActivations[seed % 8];
            const bool with_bias = seed % 2 == 0;
            const auto w = random_weight(rows, cols, density, p, seed);
            const auto x = random_vector(batch * cols, seed + 1);
            const auto bias = random_vector(rows, seed + 2);
            const auto weight = make_weight(k.format, w, rows, cols, p);
            const int threads = 1 + static_cast<int>(seed % 2);
            std::vector<float> y(static_cast<size_t>(batch * rows), NAN), y_ref(y.size(), NAN);
            const float* b = with_bias ? bias.data() : nullptr;
            run_spmm(ref, *weight, x.data(), batch, b, y_ref.data(), act, 1);
            run_spmm(k, *weight, x.data(), batch, b, y.data(), act, threads);
            ++cases;
            const auto mag = dense_magnitude(w, rows, cols, x, batch, b);
            ASSERT_LE(relative_error(y, y_ref, mag), kTolF32VsRef)
                << describe_case(k.name, rows, cols, batch, density, p, seed, act, with_bias) << "; "
                << first_bad(y, y_ref, mag);
          }
  EXPECT_GT(cases, 0);
}

TEST_P(KernelSweep, WideIndicesAndEmptyRows) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  // 70000 columns need 32-bit CSR indices (and 32-bit BSR block columns for 1-wide blocks);
  // every other row is empty.
  const int64_t rows = 6, cols = 70000;
  Pattern p = patterns_for(k.format).front();
  auto w = random_weight(rows, cols, 0.01, p, 7);
  for (int64_t r = 1; r < rows; r += 2) std::fill(w.begin() + r * cols, w.begin() + (r + 1) * cols, 0.0f);
  const auto weight = make_weight(k.format, w, rows, cols, p);
  for (int64_t batch : {int64_t{1}, int64_t{2}, int64_t{k.tile > 1 ? k.tile + 1 : 3}}) {
    if (!tile_fits(k.tile, batch)) continue;
    const auto x = random_vector(batch * cols, 8);
    std::vector<float> y(static_cast<size_t>(batch * rows), NAN), y_ref(y.size(), NAN);
    run_spmm(reference_kernel(k.format), *weight, x.data(), batch, nullptr, y_ref.data(), Activation::kNone, 1);
    run_spmm(k, *weight, x.data(), batch, nullptr, y.data(), Activation::kNone, 2);
    const auto mag = dense_magnitude(w, rows, cols, x, batch, nullptr);
    ASSERT_LE(relative_error(y, y_ref, mag), kTolF32VsRef) << k.name << " batch " << batch << "; " << first_bad(y, y_ref, mag);
  }
}

// Shapes past the batched kernels' blocks at every tile width and pattern: 1100 rows cross a row
// block (1024 rows at 4 lanes, 128 at 32) and the 256-row chunks the tiles run within, 4200 columns a
// column block (4096 columns at 4 lanes, or read in place at 32), so partial sums carry across blocks
// and the compact input copy restarts; batch 70 crosses the dense kernel's 64-column input chunk.
TEST_P(KernelSweep, CrossesRowAndColumnBlocks) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  if (k.tile <= 1) GTEST_SKIP() << k.name << ": batch-1 kernels have no blocks";
  const int64_t rows = 1100, cols = 4200;
  for (const Pattern& p : patterns_for(k.format)) {
    // A few patterns (the sweep has them all): 1x1, 4x4, 16x1 and 2x8 blocks; 2:4, 3:4 (the values of a
    // metadata word not a multiple of 4), 1:8.
    const int bs = p.block_rows * 100 + p.block_cols, nm = p.n * 100 + p.m;
    if (k.format == Format::kBsr && bs != 101 && bs != 404 && bs != 1601 && bs != 208) continue;
    if (k.format == Format::kNM && nm != 204 && nm != 304 && nm != 108) continue;
    const auto w = random_weight(rows, cols, 0.05, p, 21);
    const auto weight = make_weight(k.format, w, rows, cols, p);
    for (int64_t batch : {2, 8, 40, 70}) {  // a 4-lane tile, an 8-lane one, 32 + 8 lanes, 64 + 6 columns
      const auto got = against_reference(k, *weight, w, rows, cols, batch, Activation::kRelu, 22);
      ASSERT_LE(got.error, kTolF32VsRef)
          << k.name << " " << p.structure << " " << p.block_rows << "x" << p.block_cols << " " << p.n << ":" << p.m
          << " batch " << batch << "; " << got.first_bad;
    }
  }
}

// Batch 1 over rows that cross the dense kernel's groups of panels (AVX-512: eight at a time, then
// four, then one by one): 213 rows are 13 whole panels of 16 and a partial one, 421 are 26 and one.
TEST_P(KernelSweep, Batch1CrossesPanelGroups) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  if (k.tile != 1) GTEST_SKIP() << k.name << ": a batched kernel";
  const int64_t cols = 300;
  for (const Pattern& p : patterns_for(k.format))
    for (int64_t rows : {213, 421}) {
      const auto w = random_weight(rows, cols, 0.5, p, 31);
      const auto weight = make_weight(k.format, w, rows, cols, p);
      const auto got = against_reference(k, *weight, w, rows, cols, 1, Activation::kNone, 32);
      ASSERT_LE(got.error, kTolF32VsRef) << k.name << " " << p.structure << " rows " << rows << "; " << got.first_bad;
    }
}

// 1024 outputs: y's rows lie 4 KiB apart, so the batched kernels store their row blocks through the
// staging buffer (store_part); partial row blocks (two threads split the rows by non-zeros) and
// partial lane tiles (40: 32 + 8 lanes, 70: 64 + 6) included.
TEST_P(KernelSweep, StoresRowsFourKiBApart) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  if (k.tile <= 1) GTEST_SKIP() << k.name << ": batch-1 kernels store one row";
  const int64_t rows = 1024, cols = 700;
  const Pattern p = k.format == Format::kNM ? Pattern{"nm", 2, 4, 1, 1} : patterns_for(k.format).front();
  const auto w = random_weight(rows, cols, 0.1, p, 24);
  const auto weight = make_weight(k.format, w, rows, cols, p);
  for (int64_t batch : {8, 40, 70}) {
    if (!tile_fits(k.tile, batch)) continue;
    const auto got = against_reference(k, *weight, w, rows, cols, batch, Activation::kGeluErf, 25);
    ASSERT_LE(got.error, kTolF32VsRef) << k.name << " batch " << batch << "; " << got.first_bad;
  }
}

// Transposed output (run_spmm_packed's ldy_t; conv2d's channel-major store): y[r · ldy + b] holds what
// the reference's y[b · rows + r] does, past row and column blocks (1100 × 4200), and lanes past the
// batch in each row are left alone. The CSR and N:M kernels store it themselves (writes_transposed),
// the others through run_spmm_packed's transpose; batch 1 with ldy > 1 goes through its column scatter.
TEST_P(KernelSweep, TransposedOutputMatchesReference) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  const int64_t rows = 1100, cols = 4200;
  const Pattern p = k.format == Format::kNM ? Pattern{"nm", 2, 4, 1, 1} : patterns_for(k.format).front();
  const auto w = random_weight(rows, cols, 0.05, p, 31);
  const auto weight = make_weight(k.format, w, rows, cols, p);
  const int64_t kp = weight->padded_cols();
  for (int64_t batch : {1, 2, 5, 40}) {
    if (!tile_fits(k.tile, batch)) continue;
    const auto x = random_vector(batch * cols, 32);
    const auto bias = random_vector(rows, 33);
    const int64_t ldx = batch == 1 ? 1 : packed_ldx(batch), ldy = batch + 3;
    AlignedVector<float> packed(static_cast<size_t>(kp * ldx), 0.0f);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t c = 0; c < cols; ++c) packed[c * ldx + b] = x[b * cols + c];
    constexpr float kCanary = 12345.0f;
    // ReLU is applied in registers, GELU in a pass after the stores.
    const Activation act = batch % 2 == 0 ? Activation::kRelu : Activation::kGeluTanh;
    std::vector<float> yt(static_cast<size_t>(rows * ldy), kCanary), y_ref(static_cast<size_t>(batch * rows), NAN);
    run_spmm(reference_kernel(k.format), *weight, x.data(), batch, bias.data(), y_ref.data(), act, 1);
    run_spmm_packed(k, *weight, packed.data(), ldx, batch, bias.data(), yt.data(), act, 2, {ldy});
    std::vector<float> y(y_ref.size());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t b = 0; b < batch; ++b) y[b * rows + r] = yt[r * ldy + b];
      for (int64_t b = batch; b < ldy; ++b) ASSERT_EQ(yt[r * ldy + b], kCanary) << k.name << " row " << r << " lane " << b;
    }
    const auto mag = dense_magnitude(w, rows, cols, x, batch, bias.data());
    ASSERT_LE(relative_error(y, y_ref, mag), kTolF32VsRef) << k.name << " batch " << batch << "; " << first_bad(y, y_ref, mag);
  }
}

TEST_P(KernelSweep, NanAndInfPropagateThroughStoredWeights) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  const int64_t rows = 9, cols = 20, batch = k.tile > 1 ? k.tile + 1 : 1;
  Pattern p = patterns_for(k.format).front();
  auto w = random_weight(rows, cols, 1.0, p, 11);
  auto x = random_vector(batch * cols, 12);
  x[3] = NAN;  // batch row 0, column 3
  if (batch > 1) x[cols + 5] = INFINITY;
  const auto weight = make_weight(k.format, w, rows, cols, p);
  std::vector<float> y(static_cast<size_t>(batch * rows), 0.0f), y_ref(y.size(), 0.0f);
  run_spmm(reference_kernel(k.format), *weight, x.data(), batch, nullptr, y_ref.data(), Activation::kNone, 1);
  run_spmm(k, *weight, x.data(), batch, nullptr, y.data(), Activation::kNone, 1);
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_EQ(std::isnan(y[i]), std::isnan(y_ref[i])) << k.name << " index " << i << ": " << y[i] << " vs " << y_ref[i];
    if (std::isinf(y_ref[i]))
      ASSERT_EQ(y[i], y_ref[i]) << k.name << " index " << i;
    else if (!std::isnan(y[i]))
      ASSERT_NEAR(y[i], y_ref[i], 1e-4 * (1 + std::abs(y_ref[i]))) << k.name << " index " << i;
  }
  // Rows with a stored weight in column 3 are NaN in batch row 0.
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  weight->to_dense(dense.data());
  for (int64_t r = 0; r < rows; ++r)
    if (dense[r * cols + 3] != 0.0f) EXPECT_TRUE(std::isnan(y[r])) << k.name << " row " << r;
}


// The activations each kernel applies (vectorised in simd/activations.hpp) against the float64
// functions, element by element: an all-zero weight makes y = act(bias), so the bias is the grid
// (±30 in steps of ~0.003, ±1e-6..0.1 for the relative accuracy of small tanh/GELU values, ±100,
// ±∞ and NaN).
// Bound: a few float ulps of the value plus 1e-8 of |x|, which covers the tails where the value
// vanishes and is far inside the kernels' 1e-5 tolerance. GELU (erf form) computes ½x · (1 + erf),
// as torch's CPU kernel does, so for negative x it is good to a few ulps of |x|, not of the value.
TEST_P(KernelSweep, ActivationsMatchFloat64) {
  const KernelInfo& k = GetParam();
  SKIP_UNLESS_RUNNABLE(k);
  std::vector<float> grid;
  for (int i = -10000; i <= 10000; ++i) grid.push_back(static_cast<float>(i * 0.003));
  for (double m = 1e-6; m < 0.1; m *= 1.1) {
    grid.push_back(static_cast<float>(m));
    grid.push_back(static_cast<float>(-m));
  }
  for (float special : {100.0f, -100.0f, INFINITY, -INFINITY, NAN}) grid.push_back(special);
  const int64_t rows = static_cast<int64_t>(grid.size()), cols = 9, batch = k.tile > 1 ? 3 : 1;
  const Pattern p = patterns_for(k.format).front();
  const std::vector<float> w(static_cast<size_t>(rows * cols), 0.0f);
  const auto weight = make_weight(k.format, w, rows, cols, p);
  const auto x = random_vector(batch * cols, 41);
  for (Activation act : kActivations) {
    std::vector<float> y(static_cast<size_t>(batch * rows), NAN);
    run_spmm(k, *weight, x.data(), batch, grid.data(), y.data(), act, 1);
    double worst = 0.0;
    int64_t worst_at = 0;
    for (int64_t i = 0; i < batch * rows; ++i) {
      const double v = grid[static_cast<size_t>(i % rows)];
      const double ref = activate_f64(v, act);
      const float got = y[static_cast<size_t>(i)];
      if (!std::isfinite(ref)) {  // NaN where the scalar definition gives NaN, ±∞ where it gives ±∞
        ASSERT_TRUE(std::isnan(ref) ? std::isnan(got) : double(got) == ref)
            << k.name << " " << to_string(act) << " at x = " << v << ": got " << got << ", float64 " << ref;
        continue;
      }
      const double per_x = act == Activation::kGeluErf ? 4e-7 : 1e-8;
      const double bound = 4e-7 * std::abs(ref) + per_x * std::abs(v) + 1e-38;
      const double err = std::abs(double(got) - ref) / bound;  // in units of the bound
      if (!(err <= worst)) {
        worst = err;
        worst_at = i;
      }
    }
    const double v = grid[static_cast<size_t>(worst_at % rows)];
    EXPECT_LE(worst, 1.0) << k.name << " " << to_string(act) << " at x = " << v << ": got "
                          << y[static_cast<size_t>(worst_at)] << ", float64 " << activate_f64(v, act);
  }
}

INSTANTIATE_TEST_SUITE_P(AllKernels, KernelSweep, ::testing::ValuesIn(all_kernels()),
                         [](const auto& info) { return std::string(info.param.name); });

// Each ISA's TensorKernels against float64: odd shapes, k past one pass of the GEMM's k blocking
// (256 on AVX2) and m past one m block (96 rows), operands with row strides wider than their
// rows, whose padding is NaN (read by mistake, it would reach C) and C's padding a canary; the
// exp pass, the transpose, layer norm's rows and max-pooling's update.
TEST(TensorKernels, MatchFloat64) {
  constexpr float kCanary = -12345.5f;
  for (const TensorKernels& t : all_tensor_kernels()) {
    if (!isa_available(t.isa)) continue;
    uint32_t seed = 3000;
    for (int64_t m : {1, 5, 6, 7, 100})
      for (int64_t k : {0, 1, 7, 64, 600})
        for (int64_t n : {1, 2, 15, 16, 17, 33, 130}) {
          const int64_t lda = k + 3, ldb = n + 5, ldc = n + 2;
          auto a = random_vector(m * lda, ++seed), b = random_vector(std::max<int64_t>(k, 1) * ldb, ++seed);
          for (int64_t i = 0; i < m; ++i) std::fill(a.begin() + i * lda + k, a.begin() + (i + 1) * lda, NAN);
          for (int64_t p = 0; p < k; ++p) std::fill(b.begin() + p * ldb + n, b.begin() + (p + 1) * ldb, NAN);
          std::vector<float> c(static_cast<size_t>(m * ldc), kCanary);
          t.gemm(a.data(), lda, b.data(), ldb, c.data(), ldc, m, k, n);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = c[static_cast<size_t>(i * ldc + j)];
              if (j >= n) {
                ASSERT_EQ(got, kCanary) << t.name << " wrote C's padding at (" << i << ", " << j << ")";
                continue;
              }
              double ref = 0.0, mag = 0.0;
              for (int64_t p = 0; p < k; ++p) {
                ref += double(a[i * lda + p]) * double(b[p * ldb + j]);
                mag += std::abs(double(a[i * lda + p]) * double(b[p * ldb + j]));
              }
              ASSERT_NEAR(got, ref, 1e-6 * (mag + 1e-30))
                  << t.name << " m " << m << " k " << k << " n " << n << " at (" << i << ", " << j << ")";
            }
        }
    // softmax_row: scale · x + mask (none, a row of it, one value), into another buffer and in place,
    // rows on and off the vector width; then rows with -inf and NaN.
    for (int64_t n : {1, 7, 8, 9, 17, 100})
      for (int64_t mask_stride : {-1, 0, 1})
        for (bool in_place : {false, true}) {
          auto x = random_vector(n, ++seed), mask = random_vector(n, ++seed);
          for (float& v : x) v *= 8.0f;
          const float scale = 0.37f;
          const float* mp = mask_stride < 0 ? nullptr : mask.data();
          std::vector<double> z(static_cast<size_t>(n));
          double zmax = -INFINITY, sum = 0.0;
          for (int64_t i = 0; i < n; ++i) {
            z[i] = double(x[i]) * scale + (mp ? double(mp[i * mask_stride]) : 0.0);
            zmax = std::max(zmax, z[i]);
          }
          for (double& v : z) sum += v = std::exp(v - zmax);
          std::vector<float> y(static_cast<size_t>(n + 1), kCanary);
          float* out = in_place ? x.data() : y.data();
          const float got_max = t.softmax_row(x.data(), out, n, scale, mp, std::max<int64_t>(mask_stride, 0));
          EXPECT_NEAR(got_max, zmax, 1e-6 * std::abs(zmax)) << t.name << " softmax_row n " << n;
          for (int64_t i = 0; i < n; ++i)
            ASSERT_NEAR(out[i], z[i] / sum, 2e-6 * z[i] / sum + 1e-12)
                << t.name << " softmax_row n " << n << " mask stride " << mask_stride << " index " << i;
          EXPECT_EQ(y[static_cast<size_t>(n)], kCanary) << t.name << " softmax_row wrote past n = " << n;
        }
    for (int64_t n : {5, 19}) {
      std::vector<float> x(static_cast<size_t>(n), -INFINITY), y(x.size());
      EXPECT_EQ(t.softmax_row(x.data(), y.data(), n, 1.0f, nullptr, 0), -INFINITY) << t.name;
      for (float v : y) EXPECT_TRUE(std::isnan(v)) << t.name << " softmax_row of -inf, n " << n;
      x = random_vector(n, ++seed);
      x[1] = -INFINITY;
      t.softmax_row(x.data(), y.data(), n, 1.0f, nullptr, 0);
      EXPECT_EQ(y[1], 0.0f) << t.name << " softmax_row: e^-inf";
      x[static_cast<size_t>(n - 1)] = NAN;
      t.softmax_row(x.data(), y.data(), n, 1.0f, nullptr, 0);
      for (float v : y) EXPECT_TRUE(std::isnan(v)) << t.name << " softmax_row with a NaN, n " << n;
    }
    // transpose: shapes off and on the 4 × 4 / 8 × 8 register blocks and the 16-row runs (24: a run
    // and a half), strides wider than the rows, y's padding a canary.
    for (int64_t rows : {0, 1, 3, 8, 9, 20, 24, 41})
      for (int64_t cols : {0, 1, 4, 7, 16, 23}) {
        const int64_t ldx = cols + 3, ldy = rows + 5;
        const auto x = random_vector(std::max<int64_t>(rows * ldx, 1), ++seed);
        std::vector<float> y(static_cast<size_t>(std::max<int64_t>(cols, 1) * ldy), kCanary);
        t.transpose(x.data(), ldx, y.data(), ldy, rows, cols);
        for (int64_t j = 0; j < cols; ++j)
          for (int64_t i = 0; i < ldy; ++i)
            ASSERT_EQ(y[static_cast<size_t>(j * ldy + i)], i < rows ? x[static_cast<size_t>(i * ldx + j)] : kCanary)
                << t.name << " transpose " << rows << " x " << cols << " at (" << j << ", " << i << ")";
      }
    // layer_norm_row against float64: rows short and long, a mean 1000 times the spread (the float
    // sums must not cancel it away), with and without weight and bias, in place.
    for (int64_t n : {1, 7, 16, 17, 100, 768})
      for (int variant = 0; variant < 4; ++variant) {
        auto x = random_vector(n, ++seed);
        if (variant % 2 == 1) {
          for (float& v : x) v = 1000.0f + v;
        }
        const auto w = random_vector(n, ++seed), b = random_vector(n, ++seed);
        const float* wp = variant >= 2 ? w.data() : nullptr;
        const float* bp = variant >= 2 ? b.data() : nullptr;
        double mean = 0.0, var = 0.0;
        for (float v : x) mean += v;
        mean /= static_cast<double>(n);
        for (float v : x) var += (v - mean) * (v - mean);
        const double rstd = 1.0 / std::sqrt(var / static_cast<double>(n) + 1e-5);
        std::vector<float> y = x;
        t.layer_norm_row(y.data(), y.data(), n, wp, bp, 1e-5f);
        for (int64_t i = 0; i < n; ++i) {
          const double want = (x[i] - mean) * rstd * (wp ? wp[i] : 1.0) + (bp ? bp[i] : 0.0);
          ASSERT_NEAR(y[i], want, 2e-5 * (1.0 + std::abs(want)))
              << t.name << " layer_norm_row n " << n << " variant " << variant << " at " << i;
        }
      }
    // copy_padded: x's n positions (stride apart) as row 1 of 3, after lo zeros and before 2 or 8; x
    // read as every row (ldx 0).
    for (int64_t stride : {1, 2, 3})
      for (int64_t n : {0, 1, 7, 8, 9, 16, 17, 33, 100}) {
        auto x = random_vector(std::max<int64_t>((n - 1) * stride + 1, 1), ++seed);
        for (int64_t i = 0; i < n; i += 5) x[static_cast<size_t>(i * stride)] = NAN;
        for (int64_t i = 3; i < n; i += 11) x[static_cast<size_t>(i * stride)] = -0.0f;
        for (int64_t lo : {0, 1, 9}) {
          for (int64_t after : {2, 8}) {
            const int64_t cols = lo + n + after, total = 3 * cols;
            std::vector<float> copy(static_cast<size_t>(total + 1), kCanary);
            t.copy_padded(x.data(), 0, stride, copy.data(), 3, cols, 1, 2, lo, lo + n);
            for (int64_t i = 0; i <= total; ++i) {
              const int64_t row = i / cols, col = i % cols;
              const float want = i == total                                ? kCanary
                                 : row == 1 && col >= lo && col < lo + n ? x[static_cast<size_t>((col - lo) * stride)]
                                                                           : 0.0f;
              const float got = copy[static_cast<size_t>(i)];
              ASSERT_TRUE(std::isnan(want) ? std::isnan(got) : got == want && std::signbit(got) == std::signbit(want))
                  << t.name << " copy_padded stride " << stride << " lo " << lo << " n " << n << " at " << i;
            }
          }
        }
      }
    // max_pool_plane against the window in row-major order by PyTorch's rule from -inf: NaN wins
    // wherever it is, the first of equal maxima stays (-0 before +0 and +0 before -0 in a row and
    // across rows), windows wholly in the padding give -inf; strides with and without a vector path,
    // dilation, rows wider than a 4-vector block, rows of at most one vector read in place at stride
    // 2 (13 and 16 outputs), ceil mode (a last window past the row and the plane: 3 × 3 at stride 2
    // on AVX-512 reads the plane in place, its lanes past the row masked), and a canary after the plane.
    struct Pool {
      int64_t h, w, kh, kw, sh, sw, ph, pw, dh, dw;
      bool ceil = false;
    };
    for (const Pool& p : {Pool{9, 11, 3, 3, 2, 2, 1, 1, 1, 1}, Pool{40, 150, 3, 3, 2, 2, 1, 1, 1, 1},
                          Pool{12, 13, 3, 3, 1, 1, 1, 1, 2, 2}, Pool{8, 100, 2, 2, 2, 2, 0, 0, 1, 1},
                          Pool{7, 70, 1, 3, 3, 3, 0, 1, 1, 1}, Pool{2, 5, 2, 2, 3, 3, 1, 1, 3, 3},
                          Pool{5, 1, 3, 1, 1, 1, 1, 0, 1, 1}, Pool{27, 27, 3, 3, 2, 2, 0, 0, 1, 1},
                          Pool{5, 33, 3, 3, 2, 2, 0, 0, 1, 1}, Pool{14, 56, 3, 3, 2, 2, 0, 0, 1, 1, true},
                          Pool{11, 20, 3, 3, 2, 2, 1, 1, 1, 1, true}, Pool{6, 3, 3, 3, 2, 2, 1, 1, 1, 1}}) {
      // PyTorch's output size; in ceil mode a last window must start inside the input or its left padding.
      const auto out = [&](int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d) {
        const int64_t o = (in + 2 * pad - d * (k - 1) - 1 + (p.ceil ? s - 1 : 0)) / s + 1;
        return p.ceil && (o - 1) * s >= in + pad ? o - 1 : o;
      };
      const int64_t oh = out(p.h, p.kh, p.sh, p.ph, p.dh), ow = out(p.w, p.kw, p.sw, p.pw, p.dw);
      auto x = random_vector(p.h * p.w, ++seed);
      for (int64_t i = 0; i < p.h * p.w; i += 13) x[static_cast<size_t>(i)] = NAN;
      for (int64_t i = 5; i + 1 < p.h * p.w; i += 17) x[static_cast<size_t>(i)] = 7.0f, x[static_cast<size_t>(i + 1)] = 7.0f;
      for (int64_t i = 3; i + p.w < p.h * p.w; i += 19) {  // ±0 tied along rows and across them
        x[static_cast<size_t>(i)] = -0.0f;
        x[static_cast<size_t>(i + 1)] = 0.0f;
        x[static_cast<size_t>(i + p.w)] = (i / 19) % 2 ? 0.0f : -0.0f;
      }
      for (int64_t i = 0; i < p.h * p.w; ++i)  // so that the zeros are the maxima of their windows
        if (x[static_cast<size_t>(i)] > 0.0f && x[static_cast<size_t>(i)] != 7.0f) x[static_cast<size_t>(i)] *= -1.0f;
      std::vector<float> want =
          max_pool_plane_oracle(x.data(), p.h, p.w, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, oh, ow);
      want.push_back(kCanary);
      const WindowGeometry g{p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, oh, ow};
      std::vector<float> scratch(static_cast<size_t>(max_pool_scratch_floats(g, p.h, p.w)));
      std::vector<float> y(want.size(), kCanary);
      t.max_pool_plane(x.data(), p.h, p.w, g, y.data(), scratch.data());
      for (int64_t i = 0; i <= oh * ow; ++i) {
        const float got = y[static_cast<size_t>(i)], ref = want[static_cast<size_t>(i)];
        ASSERT_TRUE(std::isnan(ref) ? std::isnan(got) : got == ref && std::signbit(got) == std::signbit(ref))
            << t.name << " max_pool_plane " << p.h << "x" << p.w << " kernel " << p.kh << "x" << p.kw << " stride "
            << p.sh << "x" << p.sw << " at " << i << ": " << got << " vs " << ref;
      }
    }
    // store_rows: with and without res, in place (y = x) and apart; rows apart, the gaps kept.
    for (Activation act : {Activation::kNone, Activation::kRelu, Activation::kGeluErf, Activation::kSigmoid})
      for (bool with_res : {false, true})
        for (bool in_place : {false, true})
          for (int64_t n : {0, 1, 7, 8, 9, 17, 40}) {
            const int64_t rows = 3, ldy = n + 5, ldx = in_place ? ldy : n + 3;
            const auto x = random_vector(rows * ldx, ++seed), res = random_vector(rows * ldy, ++seed);
            std::vector<float> y = in_place ? x : std::vector<float>(static_cast<size_t>(rows * ldy), kCanary);
            t.store_rows(in_place ? y.data() : x.data(), ldx, with_res ? res.data() : nullptr, y.data(), ldy, rows, n,
                         act);
            for (int64_t r = 0; r < rows; ++r)
              for (int64_t i = 0; i < ldy; ++i) {
                const size_t at = static_cast<size_t>(r * ldy + i);
                const float got = y[at];
                if (i >= n) {
                  ASSERT_EQ(got, in_place ? x[at] : kCanary) << t.name << " store_rows wrote past n " << n;
                  continue;
                }
                const double v = double{x[static_cast<size_t>(r * ldx + i)]} + (with_res ? res[at] : 0.0);
                const double want = activate_f64(v, act);
                ASSERT_NEAR(got, want, 1e-5 * (1.0 + std::abs(want)))
                    << t.name << " store_rows act " << to_string(act) << " res " << with_res << " n " << n << " at " << i;
              }
          }
  }
}

// 2:4 at the small batches its batched kernels take column by column (AVX-512: up to 8), as
// select_kernel picks the kernel, from the caller's rows (run_spmm) and from a packed panel whose
// lanes past the batch hold garbage (run_spmm_packed, conv2d's way).
TEST(Linear, SmallBatchesOf24MatchReference) {
  const int64_t rows = 37, cols = 75;  // padded_cols() > cols (whole groups); two metadata words and 3 groups
  const Pattern p{"nm", 2, 4, 1, 1};
  const auto w = random_weight(rows, cols, 0.5, p, 31);
  const auto weight = make_weight(Format::kNM, w, rows, cols, p);
  for (int64_t batch = 2; batch <= 9; ++batch) {
    const KernelInfo& k = select_kernel(*weight, batch);
    if (k.isa != Isa::kRef) EXPECT_GT(k.tile, 1) << k.name << " at batch " << batch;  // unless capped to scalar
    const auto x = random_vector(batch * cols, 32);
    const auto bias = random_vector(rows, 33);
    std::vector<float> y(static_cast<size_t>(batch * rows), NAN), y_ref(y.size(), NAN);
    run_spmm(reference_kernel(Format::kNM), *weight, x.data(), batch, bias.data(), y_ref.data(), Activation::kRelu, 1);
    const auto mag = dense_magnitude(w, rows, cols, x, batch, bias.data());
    run_spmm(k, *weight, x.data(), batch, bias.data(), y.data(), Activation::kRelu, 2);
    ASSERT_LE(relative_error(y, y_ref, mag), kTolF32VsRef) << k.name << " batch " << batch << "; " << first_bad(y, y_ref, mag);

    const int64_t ldx = packed_ldx(batch);  // lanes past the batch hold garbage: never read
    AlignedVector<float> packed(static_cast<size_t>(weight->padded_cols() * ldx), 7.0f);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t b = 0; b < batch; ++b) packed[c * ldx + b] = x[b * cols + c];
    for (int64_t c = cols; c < weight->padded_cols(); ++c)
      for (int64_t b = 0; b < ldx; ++b) packed[c * ldx + b] = 0.0f;
    std::fill(y.begin(), y.end(), NAN);
    run_spmm_packed(k, *weight, packed.data(), ldx, batch, bias.data(), y.data(), Activation::kRelu, 2);
    ASSERT_LE(relative_error(y, y_ref, mag), kTolF32VsRef) << k.name << " packed, batch " << batch << "; "
                                                           << first_bad(y, y_ref, mag);
  }
}

TEST(Linear, ValidatesArguments) {
  const float w[6] = {1, 0, 2, 0, 3, 0};
  CsrMatrix m(w, 2, 3);
  float y[2];
  EXPECT_THROW(linear(m, nullptr, 1, nullptr, y), InvalidArgument);
  EXPECT_THROW(linear(m, w, -1, nullptr, y), InvalidArgument);
  LinearOptions bad;
  bad.num_threads = -2;
  EXPECT_THROW(linear(m, w, 1, nullptr, y, bad), InvalidArgument);
}

TEST(Linear, ThreadCountsAgreeAndEmptySizesWork) {
  const int64_t rows = 300, cols = 257, batch = 19;
  const auto w = random_weight(rows, cols, 0.2, {}, 3);
  const auto x = random_vector(batch * cols, 4);
  CsrMatrix m(w.data(), rows, cols);
  std::vector<float> y1(batch * rows), y2(batch * rows);
  LinearOptions one, two;
  one.num_threads = 1;
  two.num_threads = 2;
  linear(m, x.data(), batch, nullptr, y1.data(), one);
  linear(m, x.data(), batch, nullptr, y2.data(), two);
  EXPECT_EQ(y1, y2);  // a row's sum does not depend on which thread computes it

  // No inputs (cols == 0): y = act(bias).
  DenseMatrix empty_in(nullptr, 2, 0);
  const float bias[2] = {-1.0f, 2.0f};
  float y[4] = {9, 9, 9, 9};
  LinearOptions relu;
  relu.activation = Activation::kRelu;
  linear(empty_in, nullptr, 2, bias, y, relu);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[3], 2.0f);
  // No outputs, no batch: nothing to do, nothing touched.
  DenseMatrix empty_out(nullptr, 0, 3);
  linear(empty_out, x.data(), 2, nullptr, nullptr);
  linear(m, nullptr, 0, nullptr, nullptr);
}

}  // namespace
}  // namespace sparsert::test
