// Test support: seeded random weights of a chosen structure, the double-precision dense product
// y = act(x · Wᵀ + bias) that every reference kernel is checked against, and max pooling's oracle.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sparsert/sparsert.hpp"

namespace sparsert::test {

/// Random weight (rows × cols) with roughly `density` non-zeros; `structure` shapes the pattern so
/// the matrix fits a format: "unstructured", "nm" (at most n of every m), or "block" (r × c blocks).
struct Pattern {
  std::string structure = "unstructured";
  int n = 2, m = 4;
  int block_rows = 1, block_cols = 1;
};

inline std::vector<float> random_weight(int64_t rows, int64_t cols, double density, const Pattern& p, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<float> w(static_cast<size_t>(rows * cols), 0.0f);
  if (p.structure == "nm") {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g * p.m < cols; ++g) {
        int kept = 0;
        for (int64_t c = g * p.m; c < std::min<int64_t>(cols, (g + 1) * p.m); ++c)
          if (kept < p.n && u(rng) < density) { w[r * cols + c] = value(rng); ++kept; }
      }
  } else if (p.structure == "block") {
    for (int64_t bi = 0; bi * p.block_rows < rows; ++bi)
      for (int64_t bj = 0; bj * p.block_cols < cols; ++bj) {
        if (u(rng) >= density) continue;
        for (int64_t r = bi * p.block_rows; r < std::min<int64_t>(rows, (bi + 1) * p.block_rows); ++r)
          for (int64_t c = bj * p.block_cols; c < std::min<int64_t>(cols, (bj + 1) * p.block_cols); ++c)
            w[r * cols + c] = value(rng);
      }
  } else {
    for (auto& v : w) if (u(rng) < density) v = value(rng);
  }
  return w;
}

inline std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> value(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = value(rng);
  return v;
}

/// Max pooling of one h × w plane into oh × ow outputs by PyTorch's rule: `val > max || isnan(val)`
/// over the window's positions inside the plane in row-major order, from -inf, so the first of equal
/// maxima (−0 before +0) and any NaN win, and a window wholly in the padding gives -inf.
inline std::vector<float> max_pool_plane_oracle(const float* x, int64_t h, int64_t w, int64_t kh, int64_t kw,
                                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                                int64_t dw, int64_t oh, int64_t ow) {
  std::vector<float> y(static_cast<size_t>(oh * ow));
  for (int64_t r = 0; r < oh; ++r)
    for (int64_t q = 0; q < ow; ++q) {
      float m = -INFINITY;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          const int64_t ih = r * sh - ph + i * dh, iw = q * sw - pw + j * dw;
          if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
          const float v = x[ih * w + iw];
          if (v > m || std::isnan(v)) m = v;
        }
      y[static_cast<size_t>(r * ow + q)] = m;
    }
  return y;
}

inline double activate_f64(double v, Activation act) {
  switch (act) {
    case Activation::kNone: return v;
    case Activation::kRelu: return v < 0 ? 0 : v;
    case Activation::kRelu6: return v < 0 ? 0 : (v > 6 ? 6 : v);
    case Activation::kGeluErf: return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Activation::kGeluTanh: return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case Activation::kSilu: return v / (1 + std::exp(-v));
    case Activation::kSigmoid: return 1 / (1 + std::exp(-v));
    case Activation::kTanh: return std::tanh(v);
  }
  return v;
}

/// y[b, r] in double from the dense W.
inline std::vector<double> dense_product(const std::vector<float>& w, int64_t rows, int64_t cols,
                                         const std::vector<float>& x, int64_t batch, const float* bias,
                                         Activation act) {
  std::vector<double> y(static_cast<size_t>(batch * rows));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double acc = bias ? bias[r] : 0.0;
      for (int64_t c = 0; c < cols; ++c) acc += double{w[r * cols + c]} * x[b * cols + c];
      y[b * rows + r] = activate_f64(acc, act);
    }
  return y;
}

/// Σ|W[r, c]·x[b, c]| + |bias[r]|: the scale of the terms each output sums. Errors are measured
/// against it because fp32 rounding is proportional to it, while ‖ref‖ can be tiny by cancellation
/// (one output of nine terms that nearly cancel); for random data the two differ by a small factor.
inline std::vector<double> dense_magnitude(const std::vector<float>& w, int64_t rows, int64_t cols,
                                           const std::vector<float>& x, int64_t batch, const float* bias) {
  std::vector<double> m(static_cast<size_t>(batch * rows));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      double acc = bias ? std::abs(double{bias[r]}) : 0.0;
      for (int64_t c = 0; c < cols; ++c) acc += std::abs(double{w[r * cols + c]} * x[b * cols + c]);
      m[b * rows + r] = acc;
    }
  return m;
}

/// ‖y − ref‖ / ‖|ref| + magnitude‖ (see dense_magnitude; |ref| covers the activation's own
/// rounding, e.g. sigmoid(tiny) ≈ 0.5); 0 when y equals ref.
template <class A, class B>
double relative_error(const A& y, const B& ref, const std::vector<double>& magnitude) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(y[i]) - double(ref[i]);
    num += d * d;
    const double scale = std::abs(double(ref[i])) + magnitude[i];
    den += scale * scale;
  }
  return num == 0 ? 0.0 : std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
}

/// Tolerances, relative to the norm of the expected value, per dtype.
inline constexpr double kTolF32VsF64 = 1e-5;  // fp32 kernel vs double oracle
inline constexpr double kTolF32VsRef = 1e-5;  // optimised fp32 kernel vs fp32 reference kernel

/// Builds the weight in `format` from dense `w`.
inline std::unique_ptr<Weight> make_weight(Format format, const std::vector<float>& w, int64_t rows, int64_t cols,
                                           const Pattern& p) {
  switch (format) {
    case Format::kDense: return std::make_unique<DenseMatrix>(w.data(), rows, cols);
    case Format::kCsr: return std::make_unique<CsrMatrix>(w.data(), rows, cols);
    case Format::kBsr: return std::make_unique<BsrMatrix>(w.data(), rows, cols, p.block_rows, p.block_cols);
    case Format::kNM: return std::make_unique<NmMatrix>(w.data(), rows, cols, p.n, p.m);
    case Format::kCsc: return std::make_unique<CscMatrix>(w.data(), rows, cols);
  }
  return nullptr;
}

}  // namespace sparsert::test
