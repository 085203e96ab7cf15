// The TensorKernels (kernels/tensor_kernels.hpp) over a vector type V: a register-tiled GEMM on
// row-major operands read in place (they change every call, so there is nothing to pre-pack) and
// the softmax's exp pass, for the graph's matmul, attention and softmax; layer norm's rows;
// max-pooling's update and the strided copy beside it; the transpose is simd/common.hpp's, the
// convolution loops simd/conv_f32.hpp's.
// tensor_f32_kernels assembles the set each ISA file defines.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/simd/activations.hpp"
#include "kernels/simd/common.hpp"
#include "kernels/simd/conv_f32.hpp"
#include "kernels/simd/winograd_f32.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

template <class V>
struct TensorF32 {
  using F = typename V::F;
  static constexpr int W = V::kWidth;
  static constexpr int kNr = 2 * W;  // columns of a register tile
  static constexpr int kMr = 6;      // rows of a register tile: 12 accumulators, 2 B vectors, 1 broadcast
  // k per pass: the kc × kNr strip of B a tile column reads stays in L1 (16 KiB) while every row
  // tile of an m block passes over it; an m block's kc-wide slice of A (≤ 96 KiB) stays in L2.
  static constexpr int64_t kKc = 16 * 1024 / (kNr * 4);
  static constexpr int64_t kMc = 96 * 1024 / (kKc * 4) / kMr * kMr;

  // C rows [0, MR) × columns [0, nr) (nr ≤ kNr) over k in [0, kc), added to C unless `first`.
  template <int MR>
  static void tile(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t kc,
                   int64_t nr, bool first) {
    F acc[MR][2];
    unroll<MR>([&](auto i) { acc[i.value][0] = acc[i.value][1] = V::zero(); });
    auto step = [&](int64_t p, F b0, F b1) {
      unroll<MR>([&](auto i) {
        const F ai = V::broadcast(a + i.value * lda + p);
        acc[i.value][0] = V::fmadd(ai, b0, acc[i.value][0]);
        acc[i.value][1] = V::fmadd(ai, b1, acc[i.value][1]);
      });
    };
    if (nr == kNr) {
      for (int64_t p = 0; p < kc; ++p) step(p, V::load(b + p * ldb), V::load(b + p * ldb + W));
    } else {
      const int n0 = static_cast<int>(min_i64(nr, W)), n1 = static_cast<int>(nr - n0);
      for (int64_t p = 0; p < kc; ++p) step(p, V::load_first(b + p * ldb, n0), V::load_first(b + p * ldb + W, n1));
    }
    unroll<MR>([&](auto i) {
      float* ci = c + i.value * ldc;
      if (nr == kNr) {
        V::store(ci, first ? acc[i.value][0] : V::add(V::load(ci), acc[i.value][0]));
        V::store(ci + W, first ? acc[i.value][1] : V::add(V::load(ci + W), acc[i.value][1]));
      } else {
        const int n0 = static_cast<int>(min_i64(nr, W)), n1 = static_cast<int>(nr - n0);
        V::store_first(ci, first ? acc[i.value][0] : V::add(V::load_first(ci, n0), acc[i.value][0]), n0);
        V::store_first(ci + W, first ? acc[i.value][1] : V::add(V::load_first(ci + W, n1), acc[i.value][1]), n1);
      }
    });
  }

  // C[i] = A row i · B's only column (n == 1): row dot products, B read with its stride.
  static void matvec(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                     int64_t k) {
    for (int64_t i = 0; i < m; ++i) {
      const float* ai = a + i * lda;
      F acc = V::zero();
      int64_t p = 0;
      if (ldb == 1) {
        for (; p + W <= k; p += W) acc = V::fmadd(V::load(ai + p), V::load(b + p), acc);
      }
      float s = V::sum(acc);
      for (; p < k; ++p) s += ai[p] * b[p * ldb];
      c[i * ldc] = s;
    }
  }

  static void gemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m,
                   int64_t k, int64_t n) {
    if (m == 0 || n == 0) return;
    if (n == 1) return matvec(a, lda, b, ldb, c, ldc, m, k);
    for (int64_t p0 = 0; p0 == 0 || p0 < k; p0 += kKc) {  // one pass even when k == 0: it writes the zeros
      const int64_t kc = min_i64(kKc, k - p0);
      for (int64_t i0 = 0; i0 < m; i0 += kMc) {
        const int64_t mc = min_i64(kMc, m - i0);
        for (int64_t j = 0; j < n; j += kNr) {
          const int64_t nr = min_i64(kNr, n - j);
          for (int64_t i = i0; i < i0 + mc; i += kMr) {
            const float* at = a + i * lda + p0;
            const float* bt = b + p0 * ldb + j;
            float* ct = c + i * ldc + j;
            switch (min_i64(kMr, i0 + mc - i)) {
              case 6: tile<6>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
              case 5: tile<5>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
              case 4: tile<4>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
              case 3: tile<3>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
              case 2: tile<2>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
              default: tile<1>(at, lda, bt, ldb, ct, ldc, kc, nr, p0 == 0); break;
            }
          }
        }
      }
    }
  }

  // Three passes over the row, each on vectors: scale · x + mask and its max, the exp and its sum,
  // the product by 1 / sum. Scalar passes beside the exp had taken half of BERT's attention softmax.
  static float softmax_row(const float* x, float* y, int64_t n, float scale, const float* mask, int64_t mask_stride) {
    const F sv = V::set1(scale);
    auto scaled = [&](const F xv, const F mv) { return mask == nullptr ? V::mul(xv, sv) : V::fmadd(xv, sv, mv); };
    const F broadcast_mask = mask != nullptr && mask_stride == 0 ? V::broadcast(mask) : V::zero();
    alignas(64) float lanes[W];
    const float lowest = -std::numeric_limits<float>::infinity();
    F mx = V::set1(lowest);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const F v = scaled(V::load(x + i), mask_stride == 1 && mask != nullptr ? V::load(mask + i) : broadcast_mask);
      V::store(y + i, v);
      mx = V::max(v, mx);  // NaN lanes keep mx
    }
    V::store(lanes, mx);
    float m = lowest;
    for (float l : lanes) m = l > m ? l : m;
    const int rest = static_cast<int>(n - i);
    if (rest > 0) {
      const F v = scaled(V::load_first(x + i, rest),
                         mask_stride == 1 && mask != nullptr ? V::load_first(mask + i, rest) : broadcast_mask);
      V::store_first(y + i, v, rest);
      V::store(lanes, v);
      for (int l = 0; l < rest; ++l) m = lanes[l] > m ? lanes[l] : m;
    }
    const F inv = V::set1(1.0f / exp_shifted_sum(y, y, n, m));
    for (i = 0; i + W <= n; i += W) V::store(y + i, V::mul(V::load(y + i), inv));
    if (rest > 0) V::store_first(y + i, V::mul(V::load_first(y + i, rest), inv), rest);
    return m;
  }

  static float exp_shifted_sum(const float* x, float* y, int64_t n, float shift) {
    const F s = V::set1(shift);
    F acc = V::zero();
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const F e = VecMath<V>::exp(V::sub(V::load(x + i), s));
      V::store(y + i, e);
      acc = V::add(acc, e);
    }
    if (i < n) {
      const int rest = static_cast<int>(n - i);
      // Masked-off lanes hold exp(0 - shift): keep them out of the sum.
      const F e = VecMath<V>::exp(V::sub(V::load_first(x + i, rest), s));
      V::store_first(y + i, e, rest);
      float tail[W];
      V::store(tail, e);
      float t = V::sum(acc);
      for (int l = 0; l < rest; ++l) t += tail[l];
      return t;
    }
    return V::sum(acc);
  }

  static void layer_norm_row(const float* x, float* y, int64_t n, const float* w, const float* b, float eps) {
    F s0 = V::zero(), s1 = V::zero();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      s0 = V::add(s0, V::load(x + i));
      s1 = V::add(s1, V::load(x + i + W));
    }
    float sum = V::sum(V::add(s0, s1));
    for (; i < n; ++i) sum += x[i];
    const float mean0 = sum / static_cast<float>(n);
    // The deviations' own sum corrects the mean's rounding (the corrected two-pass algorithm): with
    // a mean far from zero, float partial sums of x leave an error the small deviations do not.
    const F m0 = V::set1(mean0);
    F d_sum = V::zero();
    s0 = s1 = V::zero();
    for (i = 0; i + 2 * W <= n; i += 2 * W) {
      const F d0 = V::sub(V::load(x + i), m0), d1 = V::sub(V::load(x + i + W), m0);
      d_sum = V::add(d_sum, V::add(d0, d1));
      s0 = V::fmadd(d0, d0, s0);
      s1 = V::fmadd(d1, d1, s1);
    }
    float dev = V::sum(d_sum), sq = V::sum(V::add(s0, s1));
    for (; i < n; ++i) {
      dev += x[i] - mean0;
      sq += (x[i] - mean0) * (x[i] - mean0);
    }
    // x − mean0 is exact for x near mean0, so the output subtracts the two parts of the mean in turn:
    // mean0 + shift rounded to one float would lose the shift's low bits when the mean is large.
    const float shift = dev / static_cast<float>(n);
    const F sh = V::set1(shift);
    const float var = sq / static_cast<float>(n) - shift * shift;
    const float rstd = 1.0f / std::sqrt((var > 0.0f ? var : 0.0f) + eps);
    const F r = V::set1(rstd);
    for (i = 0; i + W <= n; i += W) {
      F v = V::mul(V::sub(V::sub(V::load(x + i), m0), sh), r);
      if (w != nullptr) v = V::mul(v, V::load(w + i));
      if (b != nullptr) v = V::add(v, V::load(b + i));
      V::store(y + i, v);
    }
    for (; i < n; ++i) {
      float v = (x[i] - mean0 - shift) * rstd;
      if (w != nullptr) v *= w[i];
      if (b != nullptr) v += b[i];
      y[i] = v;
    }
  }

  // store(i, v, count): lanes v = x[(i + l) · stride] for l < count (count ≤ W, the others zero), i
  // ascending, reading x only within x[0 .. (n − 1) · stride]. Stride 1 loads vectors and a masked
  // tail. Stride 2 loads whole vectors with load_even (2W floats, the last one past x[2(i + W − 1)]:
  // it stops before that passes x[2(n − 1)]) and ends, when n > W, with the last W positions in one
  // vector read backwards from x[2(n − 1)] (load_odd), overlapping the one before: stores of the
  // same lanes again, which copying and max-pooling both allow; under W positions, one masked read
  // (the 14-column phase planes of a 28-wide image were copied float by float). Other tails go
  // through a copy, which was most of the time of a phase-plane fill when stride 1 and 2 took it
  // too (bench/NOTES.md, ResNet-18 and convolutions).
  template <class Store>
  static void for_strided(const float* x, int64_t stride, int64_t n, Store&& store) {
    int64_t i = 0;
    if (stride == 1) {
      for (; i + W <= n; i += W) store(i, V::load(x + i), W);
      if (i < n) {
        store(i, V::load_first(x + i, static_cast<int>(n - i)), static_cast<int>(n - i));
        i = n;
      }
    } else if (stride == 2) {
      for (; i + W < n; i += W) store(i, V::load_even(x + 2 * i), W);
      if (i < n && n > W) {
        store(n - W, V::load_odd(x + 2 * (n - W) - 1), W);
        i = n;
      } else if (i < n) {  // their 2n − 1 floats, masked, through a buffer load_even can read whole
        alignas(64) float xs[2 * W];
        const int span = static_cast<int>(2 * n - 1);
        V::store(xs, V::load_first(x, std::min(span, W)));
        V::store(xs + W, span > W ? V::load_first(x + W, span - W) : V::zero());
        store(0, V::load_even(xs), static_cast<int>(n));
        i = n;
      }
    }
    alignas(64) float xs[W];
    for (; i < n; i += W) {
      const int count = static_cast<int>(min_i64(W, n - i));
      for (int l = 0; l < count; ++l) xs[l] = x[(i + l) * stride];
      store(i, V::load_first(xs, count), count);
    }
  }

  static F load_lanes(const float* p, int count) { return count == W ? V::load(p) : V::load_first(p, count); }
  static void store_lanes(float* p, F v, int count) {
    if (count == W) V::store(p, v);
    else V::store_first(p, v, count);
  }

  static void zero(float* y, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(y + i, V::zero());
    if (i < n) V::store_first(y + i, V::zero(), static_cast<int>(n - i));
  }

  // One call a plane: called a row, the calls cost more than the fill's stores (stride-2 3×3 conv).
  static void copy_padded(const float* x, int64_t ldx, int64_t stride, float* y, int64_t rows, int64_t cols,
                          int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
    int64_t zeros_from = 0;  // the zeros before each copied run: one row's end and the next one's start
    for (int64_t i = r0; i < r1; ++i) {
      float* yr = y + i * cols + c0;
      zero(y + zeros_from, yr - (y + zeros_from));
      for_strided(x + (i - r0) * ldx, stride, c1 - c0,
                  [&](int64_t j, F v, int count) { store_lanes(yr + j, v, count); });
      zeros_from = i * cols + c1;
    }
    zero(y + zeros_from, rows * cols - zeros_from);
  }

  static void store_rows(const float* x, int64_t ldx, const float* res, float* y, int64_t ldy, int64_t rows,
                         int64_t n, Activation act) {
    with_activation(act, [&](auto a) {
      for (int64_t r = 0; r < rows; ++r) {
        activate_row<V, decltype(a)::value>(x + r * ldx, res != nullptr ? res + r * ldy : nullptr, y + r * ldy, n);
      }
    });
  }

  // NV vectors of y from position i, each over every tap in registers, stored once; `load(p, at)`
  // reads the W positions from `at` of the tap starting at p. NV chains of maxima in flight.
  template <int NV, class Load>
  static void max_taps_vectors(const float* x, int64_t tap_stride, int64_t taps, Load&& load, float* y, int64_t i) {
    F m[NV];
    unroll<NV>([&](auto v) { m[v.value] = V::set1(-std::numeric_limits<float>::infinity()); });
    for (int64_t t = 0; t < taps; ++t) {
      const float* p = x + t * tap_stride;
      unroll<NV>([&](auto v) { m[v.value] = V::max_or_nan(m[v.value], load(p, i + v.value * W)); });
    }
    unroll<NV>([&](auto v) { V::store(y + i + v.value * W, m[v.value]); });
  }

  static void max_pool_plane(const float* x, int64_t h, int64_t w, const WindowGeometry& g, float* y, float* scratch) {
    if constexpr (V::kMaskedLoads) {
      if (g.kh == 3 && g.kw == 3 && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1) return max_pool_3x3_s2(x, h, w, g, y);
    }
    max_pool_plane_by([](auto... a) { max_taps(a...); }, x, h, w, g, y, scratch);
  }

  // 3 × 3 max pooling at stride 2, undilated, where masked loads cost a plain load (V::kMaskedLoads:
  // AVX-512): the plane read in place in blocks of R output rows × one vector. Each of a block's 2R +
  // 1 input rows is loaded once, as two pairs of vectors (the windows' columns 0 and 2 on), its taps'
  // maximum taken from their even and odd lanes (in-lane shuffles; the lanes put in order once at the
  // store), then each output row's over its three rows: max_pool_plane_by's order (columns, then
  // rows), so ties and NaNs resolve as there. Lanes outside the row load as -inf, rows outside are
  // -inf. max_pool_plane_by's row passes cost most on small planes: SqueezeNet's 256 planes of 27²
  // took 94 µs, onnxruntime (channels in vectors) 17.
  static void max_pool_3x3_s2(const float* x, int64_t h, int64_t w, const WindowGeometry& g, float* y) {
    constexpr int R = 4;
    const F ninf = V::set1(-std::numeric_limits<float>::infinity());
    for (int64_t q = 0; q < g.ow; q += W) {
      typename V::Lanes in_row[2][2];  // pair p (columns 2p on), half e: its lanes inside the row
      for (int p = 0; p < 2; ++p)
        for (int e = 0; e < 2; ++e) in_row[p][e] = lanes_in_row<V>(2 * q - g.pw + 2 * p + e * W, w);
      const int n = static_cast<int>(min_i64(W, g.ow - q));
      const auto row_max = [&](int64_t ih) {  // input row ih's three taps, lanes reordered
        if (ih < 0 || ih >= h) return ninf;
        const float* row = x + ih * w + 2 * q - g.pw;
        const F a0 = V::load_lanes(row, in_row[0][0], ninf), a1 = V::load_lanes(row + W, in_row[0][1], ninf);
        const F b0 = V::load_lanes(row + 2, in_row[1][0], ninf), b1 = V::load_lanes(row + 2 + W, in_row[1][1], ninf);
        return V::max_or_nan(V::max_or_nan(V::even_shuffled(a0, a1), V::odd_shuffled(a0, a1)), V::even_shuffled(b0, b1));
      };
      const auto store = [&](int64_t r, F m) {
        if (n == W) V::store(y + r * g.ow + q, V::in_pair_order(m));
        else V::store_first(y + r * g.ow + q, V::in_pair_order(m), n);
      };
      int64_t r = 0;
      for (; r + R <= g.oh; r += R) {
        F rows[2 * R + 1];
        unroll<2 * R + 1>([&](auto t) { rows[t.value] = row_max(2 * r + t.value - g.ph); });
        unroll<R>([&](auto i) {
          const int t = 2 * i.value;
          store(r + i.value, V::max_or_nan(V::max_or_nan(rows[t], rows[t + 1]), rows[t + 2]));
        });
      }
      for (; r < g.oh; ++r) {
        const int64_t top = 2 * r - g.ph;
        store(r, V::max_or_nan(V::max_or_nan(row_max(top), row_max(top + 1)), row_max(top + 2)));
      }
    }
  }

  static void max_taps(const float* x, int64_t tap_stride, int64_t taps, int64_t stride, float* y, int64_t n) {
    // Stride 2 reads whole vectors with load_even, which reads 2W floats: they stop before passing the
    // last position, and the last W positions come as one vector read backwards (load_odd), as in
    // for_strided.
    auto whole = [&](auto load, int64_t vectors) {  // in blocks of up to 4 vectors
      for (int64_t v = 0; v < vectors; v += 4) {
        switch (min_i64(vectors - v, 4)) {
          case 4: max_taps_vectors<4>(x, tap_stride, taps, load, y, v * W); break;
          case 3: max_taps_vectors<3>(x, tap_stride, taps, load, y, v * W); break;
          case 2: max_taps_vectors<2>(x, tap_stride, taps, load, y, v * W); break;
          default: max_taps_vectors<1>(x, tap_stride, taps, load, y, v * W); break;
        }
      }
      return vectors * W;
    };
    int64_t i = 0;
    if (stride == 1) {
      i = whole([](const float* p, int64_t at) { return V::load(p + at); }, n / W);
    } else if (stride == 2 && n > 0) {
      i = whole([](const float* p, int64_t at) { return V::load_even(p + 2 * at); }, (n - 1) / W);
      if (i < n && n > W) {
        max_taps_vectors<1>(x, tap_stride, taps, [](const float* p, int64_t at) { return V::load_odd(p + 2 * at - 1); },
                            y, n - W);
        return;
      }
    }
    auto taps_max = [&](auto load) {
      F m = V::set1(-std::numeric_limits<float>::infinity());
      for (int64_t t = 0; t < taps; ++t) m = V::max_or_nan(m, load(x + t * tap_stride));
      return m;
    };
    // A masked last vector at stride 1, and at stride 2 the even lanes of two masked loads (rows of
    // at most W outputs: SqueezeNet's 27² planes into 13², through a copy each row ran at a sixth of
    // the rate of wide ones); other strides through a copy.
    for (; i < n; i += W) {
      const int count = static_cast<int>(min_i64(W, n - i));
      store_lanes(y + i, taps_max([&](const float* p) {
        if (stride == 1) return V::load_first(p + i, count);
        if (stride == 2) {  // positions 2 · (i + l) for l < count: 2 · count − 1 floats from p + 2i
          const int span = 2 * count - 1;
          return V::even(V::load_first(p + 2 * i, span < W ? span : W), V::load_first(p + 2 * i + W, span > W ? span - W : 0));
        }
        alignas(64) float xs[W];
        for (int l = 0; l < count; ++l) xs[l] = p[(i + l) * stride];
        return V::load_first(xs, count);
      }), count);
    }
  }
};

// The set over V, for the ISA files' one-line definitions.
template <class V>
constexpr TensorKernels tensor_f32_kernels(const char* name, Isa isa) {
  using T = TensorF32<V>;
  using C = ConvF32<V>;
  using Wg = WinogradF32<V>;
  return {name,        isa,           &T::gemm,       &T::softmax_row, &transpose<V>,
          &T::max_pool_plane, &T::copy_padded, &T::store_rows, &T::layer_norm_row, &C::depthwise_planes,
          &C::conv_gemm,  &Wg::input,    &Wg::output};
}

}  // namespace
}  // namespace sparsert
