// Kernel check for cross builds, where GoogleTest is not available: every kernel of all_kernels()
// whose ISA this CPU has is compared with the reference kernel of its format (the references are
// the oracle, so they are not listed), both run through run_spmm so inputs are packed as in
// production, CSR's also with transposed output; then each TensorKernels set against the scalar one.
// .ci/cross_aarch64.sh builds it against the cross-built library and runs it under qemu.
// Output: one `PASS name (cases)`, `FAIL name <case>: <first bad index and both values>` or
// `SKIP name (...)` line per kernel, then `N passed, N failed`; the exit status is 1 on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/registry.hpp"
#include "kernels/tensor_kernels.hpp"
#include "runtime/run_spmm.hpp"
#include "sparsert/aligned.hpp"
#include "sparsert/bsr.hpp"
#include "sparsert/csc.hpp"
#include "sparsert/csr.hpp"
#include "sparsert/dense.hpp"
#include "sparsert/nm.hpp"

namespace {

using namespace sparsert;

// float32 tolerance, relative to Σ|w·x| + |bias| of the output: kernels sum in another order than
// the reference (error ≤ ~n·2⁻²⁴ of that magnitude for n ≤ 147 terms, gelu's slope ≤ 1.13).
constexpr double kRelTol = 2e-5;
// Canary in y past batch × rows: kernels must never write lanes ≥ batch.
constexpr float kCanary = -12345.5f;

const int64_t kDims[] = {0, 1, 2, 7, 17, 65, 131};
const double kDensities[] = {0.0, 0.1, 1.0};
// Batches: 1, 2, then the edges of the kernel's tile T (kernels.def): T - 1, T + 1 and 2T + 1.
std::vector<int64_t> batches_for(const KernelInfo& k) {
  std::vector<int64_t> out = {1, 2};
  if (k.tile > 1) {
    for (int64_t b : {int64_t{k.tile} - 1, int64_t{k.tile} + 1, 2 * int64_t{k.tile} + 1})
      if (std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  }
  return out;
}
const int kBlockSides[] = {1, 2, 4, 8, 16};
const int kPatterns[][2] = {{1, 4}, {2, 4}, {3, 4}, {2, 8}, {4, 8}};
const Activation kActs[] = {Activation::kNone, Activation::kRelu, Activation::kGeluErf};

struct Case {
  Format format;
  int64_t rows, cols;
  double density;
  int64_t batch;
  int p, q;  // bsr: block rows, block cols; nm: n, m
  Activation act;
  bool bias;
  bool special;  // NaN and ±Inf among the stored weights, Inf in the input
  int threads;
  uint32_t seed;

  std::string describe() const {
    char buf[256];
    std::snprintf(buf, sizeof buf, "shape (%lld, %lld) density %.1f batch %lld", static_cast<long long>(rows),
                  static_cast<long long>(cols), density, static_cast<long long>(batch));
    std::string s = buf;
    if (format == Format::kBsr) s += " block " + std::to_string(p) + "x" + std::to_string(q);
    if (format == Format::kNM) s += " pattern " + std::to_string(p) + ":" + std::to_string(q);
    s += std::string(" act ") + to_string(act) + (bias ? " bias" : " no-bias") + (special ? " nan-inf" : "") +
         " threads " + std::to_string(threads) + " seed " + std::to_string(seed);
    return s;
  }
};

// A rows × cols weight with the sparsity its format stores: element-wise for dense and csr, whole
// blocks for bsr (so block rows can be empty), at most N per group for nm.
std::vector<float> make_weight(const Case& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> value(-1.0f, 1.0f), unit(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(c.rows * c.cols), 0.0f);
  auto at = [&](int64_t r, int64_t k) -> float& { return w[static_cast<size_t>(r * c.cols + k)]; };
  if (c.format == Format::kBsr) {
    for (int64_t r0 = 0; r0 < c.rows; r0 += c.p)
      for (int64_t k0 = 0; k0 < c.cols; k0 += c.q) {
        if (unit(rng) >= c.density) continue;
        for (int64_t r = r0; r < std::min(c.rows, r0 + c.p); ++r)
          for (int64_t k = k0; k < std::min(c.cols, k0 + c.q); ++k) at(r, k) = value(rng);
      }
  } else if (c.format == Format::kNM) {
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t k0 = 0; k0 < c.cols; k0 += c.q) {
        std::vector<int64_t> ks;
        for (int64_t k = k0; k < std::min(c.cols, k0 + c.q); ++k) ks.push_back(k);
        std::shuffle(ks.begin(), ks.end(), rng);
        for (size_t i = 0; i < ks.size() && i < static_cast<size_t>(c.p); ++i)
          if (unit(rng) < c.density) at(r, ks[i]) = value(rng);
      }
  } else {
    for (float& v : w) v = unit(rng) < c.density ? value(rng) : 0.0f;
  }
  if (c.special) {
    // Rows 1..3 get NaN, +Inf, and +Inf with -Inf, on stored entries only, so the sparsity
    // pattern (and N:M validity) is unchanged.
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<std::vector<float>> specials = {{std::numeric_limits<float>::quiet_NaN()}, {inf}, {inf, -inf}};
    for (int64_t r = 1; r <= 3 && r < c.rows; ++r) {
      size_t used = 0;
      for (int64_t k = 0; k < c.cols && used < specials[r - 1].size(); ++k)
        if (at(r, k) != 0.0f) at(r, k) = specials[r - 1][used++];
    }
  }
  return w;
}

std::unique_ptr<Weight> pack(const Case& c, const std::vector<float>& w) {
  switch (c.format) {
    case Format::kDense: return std::make_unique<DenseMatrix>(w.data(), c.rows, c.cols);
    case Format::kCsr: return std::make_unique<CsrMatrix>(w.data(), c.rows, c.cols);
    case Format::kBsr: return std::make_unique<BsrMatrix>(w.data(), c.rows, c.cols, c.p, c.q);
    case Format::kNM: return std::make_unique<NmMatrix>(w.data(), c.rows, c.cols, c.p, c.q);
    case Format::kCsc: return std::make_unique<CscMatrix>(w.data(), c.rows, c.cols);
  }
  return nullptr;
}

bool close(float got, float want, double scale) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::isfinite(got) && std::fabs(static_cast<double>(got) - want) <= kRelTol * scale;
}

// Empty when kernel k matches the reference on case c, else what went wrong.
std::string check(const KernelInfo& k, const Case& c) {
  std::mt19937 rng(c.seed);
  const std::vector<float> wd = make_weight(c, rng);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(c.batch * c.cols)), bias(static_cast<size_t>(c.rows));
  for (float& v : x) v = value(rng);
  for (float& v : bias) v = value(rng);
  if (c.special && c.cols > 3) x[3] = std::numeric_limits<float>::infinity();
  const std::unique_ptr<Weight> w = pack(c, wd);

  const size_t n = static_cast<size_t>(c.batch * c.rows), guard = static_cast<size_t>(kBatchPad * c.rows + 64);
  std::vector<float> want(n), got(n + guard, kCanary);
  // cols == 0: the input may be null, and a kernel must then never touch it.
  const float* xp = c.cols == 0 ? nullptr : x.data();
  const float* bp = c.bias ? bias.data() : nullptr;
  run_spmm(reference_kernel(c.format), *w, xp, c.batch, bp, want.data(), c.act, 1);
  run_spmm(k, *w, xp, c.batch, bp, got.data(), c.act, c.threads);

  char buf[160];
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t r = 0; r < c.rows; ++r) {
      double scale = c.bias ? std::fabs(bias[r]) : 0.0;
      for (int64_t kk = 0; kk < c.cols; ++kk) {
        const double wk = wd[r * c.cols + kk];
        if (wk != 0.0) scale += std::fabs(wk * x[b * c.cols + kk]);  // skips 0 · Inf, which is not a magnitude
      }
      const size_t i = static_cast<size_t>(b * c.rows + r);
      if (!close(got[i], want[i], scale)) {
        std::snprintf(buf, sizeof buf, "y[b=%lld, r=%lld] = %.9g (expected %.9g)", static_cast<long long>(b),
                      static_cast<long long>(r), got[i], want[i]);
        return buf;
      }
    }
  }
  for (size_t i = n; i < n + guard; ++i) {
    if (got[i] != kCanary) {
      std::snprintf(buf, sizeof buf, "wrote y[%zu] past batch × rows = %zu (value %.9g)", i, n, got[i]);
      return buf;
    }
  }
  if (c.format != Format::kCsr || c.cols == 0) return {};
  // CSR's transposed output (kernel.hpp), from a packed input: the same values at y[r · ldy + b], the
  // lane past the batch in each row untouched. Both runs use this kernel, so they agree exactly.
  const int64_t ldx = c.batch == 1 ? 1 : packed_ldx(c.batch), ldy = c.batch + 1;
  AlignedVector<float> packed(static_cast<size_t>(w->padded_cols() * ldx), 0.0f);
  for (int64_t b = 0; b < c.batch; ++b)
    for (int64_t kk = 0; kk < c.cols; ++kk) packed[static_cast<size_t>(kk * ldx + b)] = x[b * c.cols + kk];
  std::vector<float> yt(static_cast<size_t>(c.rows * ldy), kCanary);
  run_spmm_packed(k, *w, packed.data(), ldx, c.batch, bp, yt.data(), c.act, c.threads, {ldy});
  for (int64_t r = 0; r < c.rows; ++r)
    for (int64_t b = 0; b < ldy; ++b) {
      const float t = yt[static_cast<size_t>(r * ldy + b)];
      const float expect = b < c.batch ? got[static_cast<size_t>(b * c.rows + r)] : kCanary;
      if (!(t == expect || (std::isnan(t) && std::isnan(expect)))) {
        std::snprintf(buf, sizeof buf, "transposed y[r=%lld, b=%lld] = %.9g (expected %.9g)", static_cast<long long>(r),
                      static_cast<long long>(b), t, expect);
        return buf;
      }
    }
  return {};
}

// Each non-reference TensorKernels set against tensor_f32_ref on a few shapes: the GEMM within
// float32 tolerance, the exp pass within 1e-6, layer norm within float32 tolerance, the transpose,
// max-pooling's update and the strided copy exactly.
std::string check_tensor(const TensorKernels& t) {
  const TensorKernels& ref = kTensorF32Ref;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  auto random = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(std::max<int64_t>(n, 1)));
    for (float& e : v) e = value(rng);
    return v;
  };
  char buf[160];
  for (int64_t m : {1, 7, 13})
    for (int64_t k : {0, 5, 33})
      for (int64_t n : {1, 6, 19}) {
        const auto a = random(m * k), b = random(k * n);
        std::vector<float> c(static_cast<size_t>(m * n)), c_ref(c.size());
        t.gemm(a.data(), k, b.data(), n, c.data(), n, m, k, n);
        ref.gemm(a.data(), k, b.data(), n, c_ref.data(), n, m, k, n);
        for (size_t i = 0; i < c.size(); ++i)
          if (!close(c[i], c_ref[i], static_cast<double>(k))) {
            std::snprintf(buf, sizeof buf, "gemm m %lld k %lld n %lld at %zu: %.9g vs %.9g", static_cast<long long>(m),
                          static_cast<long long>(k), static_cast<long long>(n), i, c[i], c_ref[i]);
            return buf;
          }
      }
  for (int64_t rows : {1, 4, 9})
    for (int64_t cols : {3, 4, 13}) {
      const auto x = random(rows * cols);
      std::vector<float> y(static_cast<size_t>(rows * cols)), y_ref(y.size());
      t.transpose(x.data(), cols, y.data(), rows, rows, cols);
      ref.transpose(x.data(), cols, y_ref.data(), rows, rows, cols);
      if (y != y_ref) return "transpose " + std::to_string(rows) + " x " + std::to_string(cols);
    }
  for (int64_t n : {3, 4, 9, 30}) {
    const auto x = random(n), mask = random(n);
    std::vector<float> y(static_cast<size_t>(n)), y_ref(y.size());
    const float m = t.softmax_row(x.data(), y.data(), n, 0.5f, mask.data(), 1),
                m_ref = ref.softmax_row(x.data(), y_ref.data(), n, 0.5f, mask.data(), 1);
    if (std::fabs(m - m_ref) > 1e-6 * std::fabs(m_ref)) return "softmax_row max, n " + std::to_string(n);
    for (int64_t i = 0; i < n; ++i)
      if (std::fabs(y[i] - y_ref[i]) > 2e-6 * y_ref[i]) return "softmax_row n " + std::to_string(n);
  }
  for (int64_t n : {1, 5, 8, 19, 70}) {
    auto x = random(n), w = random(n), b = random(n);
    for (float& v : x) v += 100.0f;  // a mean far from zero
    std::vector<float> y(static_cast<size_t>(n)), y_ref(y.size());
    t.layer_norm_row(x.data(), y.data(), n, w.data(), b.data(), 1e-5f);
    ref.layer_norm_row(x.data(), y_ref.data(), n, w.data(), b.data(), 1e-5f);
    for (int64_t i = 0; i < n; ++i)
      if (!close(y[i], y_ref[i], 1.0)) return "layer_norm_row n " + std::to_string(n) + " at " + std::to_string(i);
  }
  for (int64_t stride : {1, 2, 3})
    for (int64_t n : {1, 4, 5, 9, 30}) {
      auto x = random((n - 1) * stride + 3);  // copy_padded reads n positions
      for (int64_t i = 0; i < n; i += 3) x[static_cast<size_t>(i * stride)] = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> c(static_cast<size_t>(4 * (n + 3))), c_ref(c.size());  // x as rows 1 and 2 of 4
      t.copy_padded(x.data(), 0, stride, c.data(), 4, n + 3, 1, 3, 1, n + 1);
      ref.copy_padded(x.data(), 0, stride, c_ref.data(), 4, n + 3, 1, 3, 1, n + 1);
      for (size_t i = 0; i < c.size(); ++i)
        if (!(c[i] == c_ref[i] || (std::isnan(c[i]) && std::isnan(c_ref[i]))))
          return "copy_padded stride " + std::to_string(stride) + " n " + std::to_string(n) + " at " + std::to_string(i);
      // max_pool_plane: x as a 3-row plane, 3 × 3 windows at this stride, padding 1.
      const int64_t w = ((n - 1) * stride + 3) / 3, ow = (w + 2 - 3) / stride + 1;
      const WindowGeometry g{3, 3, stride, stride, 1, 1, 1, 1, (3 + 2 - 3) / stride + 1, ow};
      std::vector<float> pooled(static_cast<size_t>(g.oh * ow)), pooled_ref(pooled.size());
      std::vector<float> scratch(static_cast<size_t>(max_pool_scratch_floats(g, 3, w)));
      t.max_pool_plane(x.data(), 3, w, g, pooled.data(), scratch.data());
      ref.max_pool_plane(x.data(), 3, w, g, pooled_ref.data(), scratch.data());
      for (size_t i = 0; i < pooled.size(); ++i)
        if (!(pooled[i] == pooled_ref[i] || (std::isnan(pooled[i]) && std::isnan(pooled_ref[i]))))
          return "max_pool_plane stride " + std::to_string(stride) + " width " + std::to_string(w) + " at " +
                 std::to_string(i);
    }
  // conv_gemm on dense and on sparse panels (each row keeps 2 of every 4 columns), plain rows and
  // wide ones (rows at offsets, the tail of each 9-pixel row dropped), bias, residual and ReLU.
  for (bool sparse : {false, true})
    for (int64_t rows : {5, 20})
      for (int64_t cols : {7, 40})
        for (int64_t wide_cols : {0, 9}) {
          const int64_t p1 = 70, ldx = 80, ow = 7, ldy = 80;  // wide: output (i, j) at i · 7 + j
          std::vector<int64_t> offsets(static_cast<size_t>(cols));
          for (int64_t k = 0; k < cols; ++k) offsets[static_cast<size_t>(k)] = k * 83 + k % 5;
          const auto x = random(cols * ldx + 128), bias = random(rows), res = random(rows * ldy);
          const int64_t steps = sparse ? (cols + 3) / 4 * 2 : cols, panel = (rows + 15) / 16 * 16 * steps;
          AlignedVector<float> values(static_cast<size_t>(panel), 0.0f);
          AlignedVector<ConvEntry> entries(static_cast<size_t>(panel), ConvEntry{0.0f, 0});
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t s = 0; s < steps; ++s) {
              const size_t e = static_cast<size_t>((r / 16 * steps + s) * 16 + r % 16);
              const int64_t k = std::min(cols - 1, s / 2 * 4 + s % 2 * 2 + (r + s / 2) % 2);
              values[e] = value(rng);
              entries[e] = {values[e], static_cast<int32_t>(wide_cols > 0 ? offsets[static_cast<size_t>(k)] : k)};
            }
          const ConvPanels w = sparse ? ConvPanels{nullptr, entries.data(), steps, cols}
                                      : ConvPanels{values.data(), nullptr, steps, cols};
          AlignedVector<float> scratch(static_cast<size_t>(conv_gemm_scratch_floats(rows)));
          std::vector<float> y(static_cast<size_t>(rows * ldy), 0.0f), y_ref(y.size(), 0.0f);
          const int64_t* off = wide_cols > 0 && !sparse ? offsets.data() : nullptr;
          const int64_t lda = sparse && wide_cols > 0 ? 1 : ldx;
          ConvGemmArgs a{x.data(), lda, off, 3, p1, wide_cols, ow, bias.data(), res.data(), y.data(), ldy,
                         Activation::kRelu, scratch.data()};
          t.conv_gemm(w, rows, a);
          a.y = y_ref.data();
          ref.conv_gemm(w, rows, a);
          for (size_t i = 0; i < y.size(); ++i)
            if (!close(y[i], y_ref[i], static_cast<double>(cols))) {
              std::snprintf(buf, sizeof buf, "conv_gemm %s rows %lld cols %lld wide %lld at %zu: %.9g vs %.9g",
                            sparse ? "sparse" : "dense", static_cast<long long>(rows), static_cast<long long>(cols),
                            static_cast<long long>(wide_cols), i, y[i], y_ref[i]);
              return buf;
            }
        }
  // depthwise_planes, 9 planes, bias and ReLU6: outputs along rows, and (4 × 4 at stride 2: rows of
  // 2, half a vector) along channels, in two groups of 4 and a partial one.
  for (const int64_t size : {4, 9})
    for (const int64_t stride : {1, 2}) {
      const int64_t planes = 9, o = (size - 1) / stride + 1;
      const WindowGeometry g{3, 3, stride, stride, 1, 1, 1, 1, o, o};
      const auto x = random(planes * size * size), wk = random(planes * 9), bias = random(planes);
      std::vector<float> scratch(static_cast<size_t>(depthwise_scratch_floats(g, size, size)));
      std::vector<float> y(static_cast<size_t>(planes * o * o)), y_ref(y.size());
      t.depthwise_planes(x.data(), planes, size, size, g, wk.data(), bias.data(), 1, Activation::kRelu6, y.data(),
                         scratch.data());
      ref.depthwise_planes(x.data(), planes, size, size, g, wk.data(), bias.data(), 1, Activation::kRelu6,
                           y_ref.data(), scratch.data());
      for (size_t i = 0; i < y.size(); ++i)
        if (!close(y[i], y_ref[i], 9.0)) {
          std::snprintf(buf, sizeof buf, "depthwise_planes %lldx%lld stride %lld at %zu: %.9g vs %.9g",
                        static_cast<long long>(size), static_cast<long long>(size), static_cast<long long>(stride), i,
                        y[i], y_ref[i]);
          return buf;
        }
    }
  // Winograd's transforms: 2 channel blocks, 5 × 4 tiles (a full group of 16 and a partial one),
  // outputs clipped to 18 × 14, bias and SiLU.
  {
    constexpr int64_t kB = kWinogradBlock, kXi = kWinogradAlpha * kWinogradAlpha;
    const int64_t th = 5, tw = 4, count = th * tw, wp = tw * 4 + 2, block_stride = (th * 4 + 2) * wp * kB;
    const int64_t oh = 18, ow = 14, rows = 3, ld = count + 1;
    std::vector<WinogradTile> tiles;
    for (int64_t i = 0; i < th; ++i)
      for (int64_t j = 0; j < tw; ++j) {
        tiles.push_back({(i * 4 * wp + j * 4) * kB, i * 4 * ow + j * 4, static_cast<int32_t>(std::min<int64_t>(4, oh - i * 4)),
                         static_cast<int32_t>(std::min<int64_t>(4, ow - j * 4))});
      }
    const auto image = random(2 * block_stride);
    std::vector<float> v(static_cast<size_t>(kXi * 2 * kB * ld)), v_ref(v.size());
    t.winograd_input({image.data(), wp, block_stride, 2, tiles.data(), count, v.data(), ld, 2 * kB * ld});
    ref.winograd_input({image.data(), wp, block_stride, 2, tiles.data(), count, v_ref.data(), ld, 2 * kB * ld});
    const auto m = random(kXi * rows * ld), bias = random(rows);
    std::vector<float> y(static_cast<size_t>(rows * oh * ow)), y_ref(y.size());
    t.winograd_output({m.data(), ld, rows * ld, rows, tiles.data(), count, bias.data(), Activation::kSilu, y.data(), oh * ow, ow});
    ref.winograd_output(
        {m.data(), ld, rows * ld, rows, tiles.data(), count, bias.data(), Activation::kSilu, y_ref.data(), oh * ow, ow});
    for (const auto& [got, want, name] : {std::tuple{&v, &v_ref, "winograd_input"}, std::tuple{&y, &y_ref, "winograd_output"}})
      for (size_t i = 0; i < got->size(); ++i)
        if (!close((*got)[i], (*want)[i], 400.0)) {
          std::snprintf(buf, sizeof buf, "%s at %zu: %.9g vs %.9g", name, i, (*got)[i], (*want)[i]);
          return buf;
        }
  }
  return {};
}

// The sweep for one kernel: every shape, density, batch its tile fits and format parameter, with
// activation, bias and thread count rotating over the cases; then NaN/Inf cases on one shape.
std::vector<Case> sweep(const KernelInfo& k) {
  std::vector<std::pair<int, int>> params = {{0, 0}};
  if (k.format == Format::kBsr) {
    params.clear();
    for (int br : kBlockSides)
      for (int bc : kBlockSides) params.emplace_back(br, bc);
  } else if (k.format == Format::kNM) {
    params.clear();
    for (const auto& nm : kPatterns) params.emplace_back(nm[0], nm[1]);
  }
  std::vector<Case> cases;
  auto add = [&](int64_t rows, int64_t cols, double density, bool special) {
    for (const auto& [p, q] : params)
      for (int64_t batch : batches_for(k)) {
        if (!tile_fits(k.tile, batch)) continue;
        const uint32_t i = static_cast<uint32_t>(cases.size());
        cases.push_back(Case{k.format, rows, cols, density, batch, p, q, kActs[i % 3], (i / 3) % 2 == 0, special,
                             i % 4 == 3 ? 3 : 1, 1000 + i});
      }
  };
  for (int64_t rows : kDims)
    for (int64_t cols : kDims)
      for (double density : kDensities) add(rows, cols, density, false);
  add(17, 65, 1.0, true);
  add(17, 65, 0.1, true);
  return cases;
}

}  // namespace

int main() {
  int passed = 0, failed = 0;
  for (const KernelInfo& k : all_kernels()) {
    if (k.isa == Isa::kRef) continue;
    if (!isa_available(k.isa)) {
      std::printf("SKIP %s (isa %s not available on this CPU)\n", k.name, to_string(k.isa));
      continue;
    }
    const std::vector<Case> cases = sweep(k);
    std::string failure;
    for (const Case& c : cases) {
      try {
        failure = check(k, c);
      } catch (const std::exception& e) {
        failure = std::string("threw: ") + e.what();
      }
      if (!failure.empty()) {
        std::printf("FAIL %s %s: %s\n", k.name, c.describe().c_str(), failure.c_str());
        break;
      }
    }
    if (failure.empty()) std::printf("PASS %s (%zu cases)\n", k.name, cases.size());
    std::fflush(stdout);
    (failure.empty() ? passed : failed) += 1;
  }
  for (const TensorKernels& t : all_tensor_kernels()) {
    if (t.isa == Isa::kRef || !isa_available(t.isa)) continue;
    const std::string failure = check_tensor(t);
    if (failure.empty()) std::printf("PASS %s\n", t.name);
    else std::printf("FAIL %s: %s\n", t.name, failure.c_str());
    (failure.empty() ? passed : failed) += 1;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
