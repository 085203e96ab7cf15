// The portable TensorKernels (kernels/tensor_kernels.hpp): what the ISA sets are checked against,
// and what runs where none applies.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/epilogue.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

// GEMM blocking: C rows are updated kGemmRows at a time over a kGemmN-wide column panel (4 × 1 KB
// of C stays in L1) while B's kGemmK × kGemmN panel (128 KB) stays in L2.
constexpr int64_t kGemmRows = 4;
constexpr int64_t kGemmN = 256;
constexpr int64_t kGemmK = 128;

/// C (rows × n, row stride ldc) = A (rows × k, lda) · B (k × n, ldb), loop order i-k-j: the inner
/// loop over j is a contiguous axpy the compiler vectorises, and four rows of C share each load of B.
void gemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t rows, int64_t k,
          int64_t n) {
  if (n == 1) {  // matrix · vector: dot products are faster than one-column axpys
    for (int64_t i = 0; i < rows; ++i) {
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const float* ai = a + i * lda;
      int64_t p = 0;
      for (; p + 8 <= k; p += 8) {
        for (int j = 0; j < 8; ++j) s[j] += ai[p + j] * b[(p + j) * ldb];
      }
      for (; p < k; ++p) s[0] += ai[p] * b[p * ldb];
      c[i * ldc] = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    }
    return;
  }
  for (int64_t i = 0; i < rows; ++i) std::memset(c + i * ldc, 0, static_cast<size_t>(n) * sizeof(float));
  for (int64_t j0 = 0; j0 < n; j0 += kGemmN) {
    const int64_t nb = std::min(kGemmN, n - j0);
    for (int64_t p0 = 0; p0 < k; p0 += kGemmK) {
      const int64_t kb = std::min(kGemmK, k - p0);
      int64_t i = 0;
      for (; i + kGemmRows <= rows; i += kGemmRows) {
        float* __restrict c0 = c + (i + 0) * ldc + j0;
        float* __restrict c1 = c + (i + 1) * ldc + j0;
        float* __restrict c2 = c + (i + 2) * ldc + j0;
        float* __restrict c3 = c + (i + 3) * ldc + j0;
        const float* a0 = a + (i + 0) * lda + p0;
        const float* a1 = a + (i + 1) * lda + p0;
        const float* a2 = a + (i + 2) * lda + p0;
        const float* a3 = a + (i + 3) * lda + p0;
        for (int64_t p = 0; p < kb; ++p) {
          const float* __restrict bp = b + (p0 + p) * ldb + j0;
          const float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
          for (int64_t j = 0; j < nb; ++j) {
            const float v = bp[j];
            c0[j] += x0 * v;
            c1[j] += x1 * v;
            c2[j] += x2 * v;
            c3[j] += x3 * v;
          }
        }
      }
      for (; i < rows; ++i) {
        float* __restrict ci = c + i * ldc + j0;
        const float* ai = a + i * lda + p0;
        for (int64_t p = 0; p < kb; ++p) {
          const float* __restrict bp = b + (p0 + p) * ldb + j0;
          const float x = ai[p];
          for (int64_t j = 0; j < nb; ++j) ci[j] += x * bp[j];
        }
      }
    }
  }
}

float softmax_row(const float* x, float* y, int64_t n, float scale, const float* mask, int64_t mask_stride) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) {
    y[i] = mask == nullptr ? x[i] * scale : std::fma(x[i], scale, mask[i * mask_stride]);
    m = y[i] > m ? y[i] : m;
  }
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(y[i] - m);
    s += y[i];
  }
  const float inv = static_cast<float>(1.0 / s);
  for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  return m;
}

void transpose(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[j * ldy + i] = x[i * ldx + j];
}

void max_taps(const float* x, int64_t tap_stride, int64_t taps, int64_t stride, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t t = 0; t < taps; ++t) {
      const float v = x[i * stride + t * tap_stride];
      m = (v > m || v != v) ? v : m;
    }
    y[i] = m;
  }
}

void max_pool_plane(const float* x, int64_t h, int64_t w, const WindowGeometry& g, float* y, float* scratch) {
  max_pool_plane_by(&max_taps, x, h, w, g, y, scratch);
}

void copy_padded(const float* x, int64_t ldx, int64_t stride, float* y, int64_t rows, int64_t cols, int64_t r0,
                 int64_t r1, int64_t c0, int64_t c1) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) {
      const bool inside = i >= r0 && i < r1 && j >= c0 && j < c1;
      y[i * cols + j] = inside ? x[(i - r0) * ldx + (j - c0) * stride] : 0.0f;
    }
}

void store_rows(const float* x, int64_t ldx, const float* res, float* y, int64_t ldy, int64_t rows, int64_t n,
                Activation act) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) {
      const float v = res != nullptr ? x[r * ldx + i] + res[r * ldy + i] : x[r * ldx + i];  // keeps −0
      y[r * ldy + i] = activate(v, act);
    }
}

// In double, the oracle for the vector versions.
void layer_norm_row(const float* x, float* y, int64_t n, const float* w, const float* b, float eps) {
  double sum = 0.0, sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(n) + eps);
  for (int64_t i = 0; i < n; ++i) {
    double v = (x[i] - mean) * rstd;
    if (w != nullptr) v *= w[i];
    if (b != nullptr) v += b[i];
    y[i] = static_cast<float>(v);
  }
}

// Reads x in place, bounds checked tap by tap; no scratch.
void depthwise_planes(const float* x, int64_t planes, int64_t h, int64_t w, const WindowGeometry& g,
                      const float* wk, const float* bias, int64_t m, Activation act, float* y, float*) {
  for (int64_t o = 0; o < planes * m; ++o) {
    const float* xc = x + o / m * h * w;
    for (int64_t r = 0; r < g.oh; ++r)
      for (int64_t q = 0; q < g.ow; ++q) {
        float acc = bias != nullptr ? bias[o] : 0.0f;
        for (int64_t i = 0; i < g.kh; ++i) {
          const int64_t ih = r * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= h) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            const int64_t iw = q * g.sw - g.pw + j * g.dw;
            if (iw >= 0 && iw < w) acc += wk[(o * g.kh + i) * g.kw + j] * xc[ih * w + iw];
          }
        }
        y[(o * g.oh + r) * g.ow + q] = activate(acc, act);
      }
  }
}

void conv_gemm(const ConvPanels& w, int64_t rows, const ConvGemmArgs& a) {
  constexpr int64_t kPanel = 16;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t first = r / kPanel * w.steps * kPanel + r % kPanel;  // entry (r, 0)
    for (int64_t p = a.p0; p < a.p1; ++p) {
      int64_t out = r * a.ldy + p;
      if (a.wide_cols > 0) {
        if (p % a.wide_cols >= a.ow) continue;
        out = r * a.ldy + p / a.wide_cols * a.ow + p % a.wide_cols;
      }
      float v = 0.0f;
      for (int64_t s = 0; s < w.steps; ++s) {
        const int64_t e = first + s * kPanel;
        if (w.entries != nullptr) {
          v += w.entries[e].value * a.x[w.entries[e].at * a.ldx + p];
        } else {
          v += w.values[e] * a.x[(a.offsets != nullptr ? a.offsets[s] : s * a.ldx) + p];
        }
      }
      if (a.bias != nullptr) v += a.bias[r];
      if (a.res != nullptr) v += a.res[out];
      a.y[out] = activate(v, a.act);
    }
  }
}

// The transforms as written: out = m · d · mᵀ element by element.
template <int Rows, int Cols>
void winograd_transform(const float (&m)[Rows][Cols], const float* d, float* out) {
  float t[Rows * Cols];
  for (int i = 0; i < Rows; ++i)
    for (int s = 0; s < Cols; ++s) {
      float v = 0.0f;
      for (int r = 0; r < Cols; ++r) v += m[i][r] * d[r * Cols + s];
      t[i * Cols + s] = v;
    }
  for (int i = 0; i < Rows; ++i)
    for (int j = 0; j < Rows; ++j) {
      float v = 0.0f;
      for (int s = 0; s < Cols; ++s) v += t[i * Cols + s] * m[j][s];
      out[i * Rows + j] = v;
    }
}

void winograd_input(const WinogradInputArgs& a) {
  constexpr int kA = kWinogradAlpha, kB = kWinogradBlock;
  float d[kA * kA], v[kA * kA];
  for (int64_t t = 0; t < a.count; ++t)
    for (int64_t c = 0; c < a.blocks * kB; ++c) {
      const float* tile = a.image + c / kB * a.block_stride + a.tiles[t].in + c % kB;
      for (int r = 0; r < kA; ++r)
        for (int s = 0; s < kA; ++s) d[r * kA + s] = tile[(r * a.wp + s) * kB];
      winograd_transform(kWinogradBT, d, v);
      for (int x = 0; x < kA * kA; ++x) a.v[x * a.xi_stride + c * a.ldv + t] = v[x];
    }
}

void winograd_output(const WinogradOutputArgs& a) {
  constexpr int kA = kWinogradAlpha, kM = kWinogradTile;
  float m[kA * kA], y[kM * kM];
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t t = 0; t < a.count; ++t) {
      for (int x = 0; x < kA * kA; ++x) m[x] = a.m[x * a.xi_stride + r * a.ldm + t];
      winograd_transform(kWinogradAT, m, y);
      const WinogradTile& tile = a.tiles[t];
      for (int32_t i = 0; i < tile.rows; ++i)
        for (int32_t j = 0; j < tile.cols; ++j) {
          a.y[r * a.ldy + tile.out + i * a.ow + j] =
              activate(y[i * kM + j] + (a.bias != nullptr ? a.bias[r] : 0.0f), a.act);
        }
    }
}

}  // namespace

constexpr TensorKernels kTensorF32Ref = {"tensor_f32_ref", Isa::kRef,     &gemm,       &softmax_row, &transpose,
                                         &max_pool_plane,         &copy_padded, &store_rows, &layer_norm_row,
                                         &depthwise_planes,       &conv_gemm,   &winograd_input, &winograd_output};

}  // namespace sparsert
