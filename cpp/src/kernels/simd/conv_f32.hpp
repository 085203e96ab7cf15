// The convolution loops of TensorKernels (kernels/tensor_kernels.hpp) over a vector type V
// (x86/vec_avx2.hpp, x86/vec_avx512.hpp, arm/vec_neon.hpp): depthwise planes and the dense product on
// pixel rows. Both write NCHW outputs themselves (the caller transposes nothing) and read the image
// where it lies: a 1×1 convolution's NCHW input, or a direct convolution's padded phase planes.
// Vectors run along output pixels, except for products of few pixels (vectors along channels).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/simd/activations.hpp"
#include "kernels/simd/common.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

// f(Const<A>{}) for the activations cheap enough to apply in registers as outputs are stored (none,
// ReLU, ReLU6, hardswish: MobileNetV3's); `fused` says whether act was one of them (else f ran with
// kNone and the caller applies act in a pass of its own: 9 activations × every tile shape would be 9×
// the code).
template <class Fn>
bool with_simple_activation(Activation act, Fn&& f) {
  switch (act) {
    case Activation::kRelu: f(std::integral_constant<Activation, Activation::kRelu>{}); return true;
    case Activation::kRelu6: f(std::integral_constant<Activation, Activation::kRelu6>{}); return true;
    case Activation::kHardswish: f(std::integral_constant<Activation, Activation::kHardswish>{}); return true;
    case Activation::kNone: f(std::integral_constant<Activation, Activation::kNone>{}); return true;
    default: f(std::integral_constant<Activation, Activation::kNone>{}); return false;
  }
}

template <class V>
struct ConvF32 {
  using F = typename V::F;
  static constexpr int W = V::kWidth;

  // ---- depthwise -----------------------------------------------------------------------------
  // The plane is copied once, zero-padded (rows wp floats apart, input (i, j) at (ph + i, pw + j)),
  // so every tap of every output vector is one unmasked load at a fixed offset (on AVX-512,
  // dw_plane_in_place below reads most planes itself instead). Square 3 × 3 and 5 ×
  // 5 windows at stride 1 or 2 run dw_plane_reuse below (at stride 2 on rows split into even and
  // odd columns by the copy itself: a split copy made after the padded one ran 64 channels 112² →
  // 56² 0.18 ms instead of 0.14, as the two no longer fitted L1). Other windows run dw_plane: stride
  // 1 a plain load per tap, stride 2 load_even (the even of 2W floats). Its block is R output rows ×
  // NV vectors of one output row each (R · NV ≤ 4 independent FMA chains; rows of 7 or 14 outputs
  // take 4 or 2 rows at once, as one vector each would leave a chain of kh·kw dependent FMAs alone).

  template <int S, int R, int NV, Activation A>
  static void dw_block(const float* pad, int64_t wp, const WindowGeometry& g, const float* wk, float bias,
                       int64_t r, int64_t q, int last, float* y) {
    F acc[R][NV];
    unroll<R>([&](auto i) { unroll<NV>([&](auto v) { acc[i.value][v.value] = V::set1(bias); }); });
    for (int64_t i = 0; i < g.kh; ++i) {
      const float* row = pad + (r * g.sh + i * g.dh) * wp + q * S;
      for (int64_t j = 0; j < g.kw; ++j) {
        const F wt = V::broadcast(wk + i * g.kw + j);
        const float* p = row + j * g.dw;
        unroll<R>([&](auto rr) {
          const float* pr = p + rr.value * g.sh * wp;
          unroll<NV>([&](auto v) {
            const F xv = S == 1 ? V::load(pr + v.value * W) : V::load_even(pr + 2 * v.value * W);
            acc[rr.value][v.value] = V::fmadd(xv, wt, acc[rr.value][v.value]);
          });
        });
      }
    }
    unroll<R>([&](auto rr) {
      float* yr = y + (r + rr.value) * g.ow + q;
      unroll<NV>([&](auto v) {
        const F out = activate_vec<V, A>(acc[rr.value][v.value]);
        if (v.value + 1 < NV || last == W) V::store(yr + v.value * W, out);
        else V::store_first(yr + v.value * W, out, last);
      });
    });
  }

  // Output rows [r0, r1) in blocks of R rows (r1 − r0 a multiple of R), each row in blocks of up
  // to 4 / R vectors, the last one `last` lanes.
  template <int S, int R, Activation A>
  static void dw_rows(const float* pad, int64_t wp, const WindowGeometry& g, const float* wk, float bias,
                      int64_t r0, int64_t r1, float* y) {
    constexpr int kMaxNv = 4 / R;
    for (int64_t r = r0; r < r1; r += R) {
      for (int64_t q = 0; q < g.ow; q += kMaxNv * W) {
        const int64_t left = g.ow - q;
        const int nv = static_cast<int>(min_i64(kMaxNv, (left + W - 1) / W));
        const int last = static_cast<int>(min_i64(W, left - (nv - 1) * W));
        switch (nv) {
          case 4: if constexpr (kMaxNv >= 4) dw_block<S, R, 4, A>(pad, wp, g, wk, bias, r, q, last, y); break;
          case 3: if constexpr (kMaxNv >= 3) dw_block<S, R, 3, A>(pad, wp, g, wk, bias, r, q, last, y); break;
          case 2: if constexpr (kMaxNv >= 2) dw_block<S, R, 2, A>(pad, wp, g, wk, bias, r, q, last, y); break;
          default: dw_block<S, R, 1, A>(pad, wp, g, wk, bias, r, q, last, y); break;
        }
      }
    }
  }

  template <int S, Activation A>
  static void dw_plane(const float* pad, int64_t wp, const WindowGeometry& g, const float* wk, float bias,
                       float* y) {
    const int64_t vectors = (g.ow + W - 1) / W;
    int64_t r = 0;
    if (vectors == 1) {
      r = g.oh / 4 * 4;
      dw_rows<S, 4, A>(pad, wp, g, wk, bias, 0, r, y);
    }
    if (vectors <= 3) {
      const int64_t r2 = r + (g.oh - r) / 2 * 2;
      dw_rows<S, 2, A>(pad, wp, g, wk, bias, r, r2, y);
      r = r2;
    }
    dw_rows<S, 1, A>(pad, wp, g, wk, bias, r, g.oh, y);
  }

  // Stride S of 1 or 2 both ways, dilation 1, K × K taps: a block of R output rows × NV vectors
  // loads each of its S·(R − 1) + K input rows' K shifted vectors once and adds it into every output
  // row it reaches (up to K of them at stride 1), the K² weights held in registers. One load per
  // tap, as dw_block does, left the loads the limit (3.1 cycles per 512-bit FMA at stride 1 on Zen
  // 4; 6.5 at stride 2, whose taps each loaded two vectors and picked their even lanes). At stride
  // 2 the padded rows are stored split (split_rows): the even columns, then from wp / 2 on the odd
  // ones, so that tap j of an output vector is a plain load of half j % 2 at offset j / 2.
  static constexpr int kReuseRows = V::kRegs >= 32 ? 4 : 2;
  static constexpr int kReuseVectors = 2;

  template <int S, int K, int R, int NV, Activation A>
  [[gnu::always_inline]] static void dw_block_reuse(const float* pad, int64_t wp, const F* wt, F bias, int64_t ow,
                                                    int64_t r, int64_t q, int last, float* y) {
    F acc[R][NV];
#pragma GCC unroll 8
    for (int rr = 0; rr < R; ++rr)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[rr][v] = bias;
    // Plain loops unrolled by the compiler: nested unroll<> lambdas stopped being inlined here, and
    // the weights were then read from memory at every FMA.
#pragma GCC unroll 16
    for (int t = 0; t < S * (R - 1) + K; ++t) {
      const float* row = pad + (S * r + t) * wp + q;
#pragma GCC unroll 5
      for (int j = 0; j < K; ++j) {
        const float* tap = S == 1 ? row + j : row + (j % 2) * (wp / 2) + j / 2;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
          const F xv = V::load_held(tap + v * W);
#pragma GCC unroll 8
          for (int rr = 0; rr < R; ++rr) {
            const int i = t - S * rr;  // the tap row input row t is to output row rr
            if (i >= 0 && i < K) acc[rr][v] = V::fmadd(xv, wt[i * K + j], acc[rr][v]);
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int rr = 0; rr < R; ++rr) {
      float* yr = y + (r + rr) * ow + q;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const F out = activate_vec<V, A>(acc[rr][v]);
        if (v + 1 < NV || last == W) V::store(yr + v * W, out);
        else V::store_first(yr + v * W, out, last);
      }
    }
  }

  template <int S, int K, Activation A>
  static void dw_plane_reuse(const float* pad, int64_t wp, const WindowGeometry& g, const float* wk, float bias,
                             float* y) {
    F wt[K * K];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; ++t) wt[t] = V::broadcast(wk + t);
    const F b = V::set1(bias);
    const auto rows = [&](auto rows_const, int64_t r) {
      constexpr int R = decltype(rows_const)::value;
      for (int64_t q = 0; q < g.ow; q += kReuseVectors * W) {
        const int64_t left = g.ow - q;
        const int nv = static_cast<int>(min_i64(kReuseVectors, (left + W - 1) / W));
        const int last = static_cast<int>(min_i64(W, left - (nv - 1) * W));
        with_count<kReuseVectors>(nv, [&](auto nv_const) {
          dw_block_reuse<S, K, R, decltype(nv_const)::value, A>(pad, wp, wt, b, g.ow, r, q, last, y);
        });
      }
    };
    int64_t r = 0;
    for (; r + kReuseRows <= g.oh; r += kReuseRows) rows(Const<kReuseRows>{}, r);
    with_count<kReuseRows - 1>(g.oh - r, [&](auto left) { rows(left, r); });
  }

  // Where masked loads cost a plain load (V::kMaskedLoads: AVX-512), stride S (1 or 2) both ways,
  // dilation 1, K × K taps (3 or 5) may read the plane x itself (h × w), not a padded copy: a block of
  // R output rows × NV vectors loads each of its S·(R − 1) + K input rows once, at stride 1 as K
  // shifted vectors per output vector, at stride 2 as ⌈K / 2⌉ pairs of vectors (2W floats from the
  // window's columns 0, 2, 4), whose even and odd lanes are taps 0 and 1, 2 and 3, 4, split by
  // in-lane shuffles and put in order once at the store. Lanes outside the row load as zero, rows
  // outside the plane are skipped. The stride-2 split copy cost more than the taps (48 channels 112²
  // → 56²: 1.5 µs a plane against 1.0, whether the plane came from L2 or L3): 125 → 85-92 µs. On
  // AVX2, whose masked loads are slow, the copies stay (this path ran 12-25% slower at stride 2).
  template <int S, int K, int R, int NV, Activation A>
  [[gnu::always_inline]] static void dw_block_in_place(const float* x, int64_t h, int64_t w, const WindowGeometry& g,
                                                       const F* wt, F bias, int64_t r, int64_t q, int last, float* y) {
    // Stride 1: K vectors per output vector, one per tap; stride 2: pairs at the taps 0, 2, 4.
    constexpr int P = S == 1 ? K : (K + 1) / 2;
    typename V::Lanes in_row[NV][P][S];  // each vector's lanes inside the row
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
#pragma GCC unroll 5
      for (int p = 0; p < P; ++p)
#pragma GCC unroll 2
        for (int e = 0; e < S; ++e) {
          in_row[v][p][e] = lanes_in_row<V>(S * (q + v * W) - g.pw + S * p + e * W, w);
        }
    F acc[R][NV];
#pragma GCC unroll 8
    for (int rr = 0; rr < R; ++rr)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[rr][v] = bias;
#pragma GCC unroll 16
    for (int t = 0; t < S * (R - 1) + K; ++t) {
      const int64_t ih = S * r + t - g.ph;
      if (ih < 0 || ih >= h) continue;  // a padding row: its taps add zero
      const float* row = x + ih * w + S * q - g.pw;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
#pragma GCC unroll 5
        for (int p = 0; p < P; ++p) {
          F lo, hi;
          if constexpr (S == 1) {
            lo = V::load_lanes(row + v * W + p, in_row[v][p][0], V::zero());
          } else {
            lo = V::load_lanes(row + 2 * v * W + 2 * p, in_row[v][p][0], V::zero());
            hi = V::load_lanes(row + 2 * v * W + 2 * p + W, in_row[v][p][S - 1], V::zero());
          }
#pragma GCC unroll 2
          for (int e = 0; e < S; ++e) {
            const int j = S * p + e;  // the tap
            if (j >= K) continue;
            // stride 2: taps 2p and 2p + 1 are the even and odd lanes, reordered (in_pair_order)
            const F xv = S == 1 ? lo : e == 0 ? V::even_shuffled(lo, hi) : V::odd_shuffled(lo, hi);
#pragma GCC unroll 8
            for (int rr = 0; rr < R; ++rr) {
              const int i = t - S * rr;  // the tap row input row t is to output row rr
              if (i >= 0 && i < K) acc[rr][v] = V::fmadd(xv, wt[i * K + j], acc[rr][v]);
            }
          }
        }
    }
#pragma GCC unroll 8
    for (int rr = 0; rr < R; ++rr) {
      float* yr = y + (r + rr) * g.ow + q;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const F out = activate_vec<V, A>(S == 1 ? acc[rr][v] : V::in_pair_order(acc[rr][v]));
        if (v + 1 < NV || last == W) V::store(yr + v * W, out);
        else V::store_first(yr + v * W, out, last);
      }
    }
  }

  template <int S, int K, Activation A>
  static void dw_plane_in_place(const float* x, int64_t h, int64_t w, const WindowGeometry& g, const float* wk,
                                float bias, float* y) {
    // 5 × 5 blocks at stride 2 take 2 rows, so that the 25 weights and the accumulators fit 32 registers.
    // The driver below is dw_plane_reuse's, kept apart: one driver for both, taking the block as a
    // lambda, ran AVX2's 3 × 3 layers 15-45% slower (the weights no longer held in registers), and
    // still 2-4% with the lambda forced inline.
    constexpr int kRows = K == 3 || S == 1 ? kReuseRows : 2;
    F wt[K * K];
#pragma GCC unroll 25
    for (int t = 0; t < K * K; ++t) wt[t] = V::broadcast(wk + t);
    const F b = V::set1(bias);
    const auto rows = [&](auto rows_const, int64_t r) {
      constexpr int R = decltype(rows_const)::value;
      for (int64_t q = 0; q < g.ow; q += kReuseVectors * W) {
        const int64_t left = g.ow - q;
        const int nv = static_cast<int>(min_i64(kReuseVectors, (left + W - 1) / W));
        const int last = static_cast<int>(min_i64(W, left - (nv - 1) * W));
        with_count<kReuseVectors>(nv, [&](auto nv_const) {
          dw_block_in_place<S, K, R, decltype(nv_const)::value, A>(x, h, w, g, wt, b, r, q, last, y);
        });
      }
    };
    int64_t r = 0;
    for (; r + kRows <= g.oh; r += kRows) rows(Const<kRows>{}, r);
    with_count<kRows - 1>(g.oh - r, [&](auto left) { rows(left, r); });
  }

  // Column strides other than 1 and 2: output by output over the padded plane.
  static void dw_plane_strided(const float* pad, int64_t wp, const WindowGeometry& g, const float* wk, float bias,
                               float* y) {
    for (int64_t r = 0; r < g.oh; ++r)
      for (int64_t q = 0; q < g.ow; ++q) {
        float acc = bias;
        for (int64_t i = 0; i < g.kh; ++i)
          for (int64_t j = 0; j < g.kw; ++j)
            acc += wk[i * g.kw + j] * pad[(r * g.sh + i * g.dh) * wp + q * g.sw + j * g.dw];
        y[r * g.ow + q] = acc;
      }
  }

  // Rows of w floats from x to the padded plane's interior (its zeros stay from the first plane).
  static void pad_rows(const float* x, int64_t h, int64_t w, float* dst, int64_t wp) {
    for (int64_t i = 0; i < h; ++i) {
      const float* s = x + i * w;
      float* d = dst + i * wp;
      int64_t j = 0;
      for (; j + W <= w; j += W) V::store(d + j, V::load(s + j));
      // The last vector whole: its lanes past the row are the padding's zeros (the row has 32 floats to
      // spare), and a masked store stalled the taps' loads that followed it.
      if (j < w) V::store(d + j, V::load_first(s + j, static_cast<int>(w - j)));
    }
  }

  // Rows of w floats from x into split padded rows (dw_block_reuse at stride 2): padded column p =
  // pw + c of input column c goes to dst[p / 2] when p is even, else to dst[wp / 2 + p / 2]. The
  // padding's zeros stay from the first plane, as pad_rows leaves them. A half's wp / 2 floats (wp =
  // the window's columns + 32) hold its ⌈columns / 2⌉ and the W − 1 lanes a last vector reads past.
  static void split_rows(const float* x, int64_t h, int64_t w, int64_t pw, float* dst, int64_t wp) {
    float* halves[2] = {dst, dst + wp / 2};
    float* even_to = halves[pw % 2];       // input columns c ≡ 0 (mod 2)
    float* odd_to = halves[(pw + 1) % 2];  // c ≡ 1
    for (int64_t i = 0; i < h; ++i) {
      const float* s = x + i * w;
      const int64_t d = i * wp;
      int64_t c = 0;
      for (; c + 2 * W <= w; c += 2 * W) {
        const F lo = V::load(s + c), hi = V::load(s + c + W);
        V::store(even_to + d + (pw + c) / 2, V::even(lo, hi));
        V::store(odd_to + d + (pw + c + 1) / 2, V::odd(lo, hi));
      }
      if (c < w) {  // the row's last n < 2W floats by masked loads (a copy through memory stalled its loads)
        const int n = static_cast<int>(w - c);
        const F lo = V::load_first(s + c, n < W ? n : W), hi = V::load_first(s + c + W, n > W ? n - W : 0);
        // stored whole, as in pad_rows: the lanes past the row are zeros, the padding's value, and a half
        // has W floats to spare
        V::store(even_to + d + (pw + c) / 2, V::even(lo, hi));
        V::store(odd_to + d + (pw + c + 1) / 2, V::odd(lo, hi));
      }
    }
  }

  // Output rows that fill at most half a vector (7 × 7 outputs on AVX-512) run with vectors along W
  // channels instead (one output plane per input plane): the group's images transposed to
  // pixel-major once and copied into a zero-padded plane of W-channel pixels, every tap of an output
  // pixel one load and one FMA with that tap's weights of the W channels, the outputs transposed back.
  // Along output rows, 7 of 16 lanes did work: 576 channels 14² stride 2 ran 46.7 µs against
  // onnxruntime's 25.7, 960 channels 7² 48.6 against 28.6.
  template <Activation A>
  static void dw_channels(const float* x, int64_t planes, int64_t h, int64_t w, const WindowGeometry& g,
                          const float* wk, const float* bias, float* y, float* scratch) {
    const int64_t hp = depthwise_window_rows(g, h), wq = depthwise_window_cols(g, w);
    const int64_t taps = g.kh * g.kw, plane = g.oh * g.ow;
    float* pad = scratch;             // hp × wq pixels of W channels
    float* image = pad + hp * wq * W;  // h × w pixels of W channels
    float* wt = image + h * w * W;    // taps × W
    float* out = wt + taps * W;       // plane × W
    std::fill(pad, pad + hp * wq * W, 0.0f);
    for (int64_t c0 = 0; c0 < planes; c0 += W) {
      const int64_t nc = min_i64(W, planes - c0);
      if (nc < W) {  // lanes past the last channel: zero weights and bias, their outputs dropped
        std::fill(wt, wt + taps * W, 0.0f);
        std::fill(image, image + h * w * W, 0.0f);
      }
      transpose<V>(x + c0 * h * w, h * w, image, W, nc, h * w);
      for (int64_t i = 0; i < h; ++i)
        std::memcpy(pad + ((g.ph + i) * wq + g.pw) * W, image + i * w * W, static_cast<size_t>(w * W) * sizeof(float));
      transpose<V>(wk + c0 * taps, taps, wt, W, nc, taps);
      float b[W] = {};
      for (int64_t c = 0; c < nc && bias != nullptr; ++c) b[c] = bias[c0 + c];
      const F bv = V::load(b);
      // T: the taps as a compile-time count (3 × 3, and 5 × 5 where 32 registers hold them: their
      // weights and offsets in registers, a load per FMA), or 0 for any kernel (weights loaded per
      // tap, rows and columns as two loops: a division per tap for the offsets had 1152 channels 7²
      // of 5 × 5 at 193 µs, against 30 for 3 × 3, on Zen 4).
      const auto pixels = [&](auto tc) {
        constexpr int T = decltype(tc)::value;
        F wv[T > 0 ? T : 1];
        int64_t off[T > 0 ? T : 1];
        unroll<T>([&](auto t) {
          wv[t.value] = V::load(wt + t.value * W);
          off[t.value] = (t.value / g.kw * g.dh * wq + t.value % g.kw * g.dw) * W;
        });
        for (int64_t r = 0; r < g.oh; ++r)
          for (int64_t q = 0; q < g.ow; ++q) {
            const float* at = pad + (r * g.sh * wq + q * g.sw) * W;
            F acc = bv;
            if constexpr (T > 0) {
              unroll<T>([&](auto t) { acc = V::fmadd(V::load(at + off[t.value]), wv[t.value], acc); });
            } else {
              for (int64_t i = 0; i < g.kh; ++i) {
                const float* row = at + i * g.dh * wq * W;
                const float* wr = wt + i * g.kw * W;
                for (int64_t j = 0; j < g.kw; ++j) acc = V::fmadd(V::load(row + j * g.dw * W), V::load(wr + j * W), acc);
              }
            }
            V::store(out + (r * g.ow + q) * W, activate_vec<V, A>(acc));
          }
      };
      if (taps == 9 && g.kw == 3) pixels(Const<9>{});
      else if (V::kRegs >= 32 && taps == 25 && g.kw == 5) pixels(Const<V::kRegs >= 32 ? 25 : 0>{});
      else pixels(Const<0>{});
      transpose<V>(out, W, y + c0 * plane, plane, plane, nc);
    }
  }

  static void depthwise_planes(const float* x, int64_t planes, int64_t h, int64_t w, const WindowGeometry& g,
                               const float* wk, const float* bias, int64_t m, Activation act, float* y,
                               float* scratch) {
    static_assert(W <= 16, "depthwise_scratch_floats sizes the channel-vector path for 16 lanes");
    if (m == 1 && 2 * g.ow <= W) {
      const bool fused = with_simple_activation(
          act, [&](auto a) { dw_channels<decltype(a)::value>(x, planes, h, w, g, wk, bias, y, scratch); });
      if (!fused) finish_rows<V>(y, planes * g.oh * g.ow, nullptr, act);
      return;
    }
    const int64_t taps = g.kh * g.kw, plane = g.oh * g.ow;
    // dw_plane_reuse's cases: square 3 × 3 or 5 × 5 taps, undilated, stride 1 or 2 both ways.
    const int64_t reuse_stride = g.sh == g.sw && g.sh <= 2 && g.dh == 1 && g.dw == 1 && g.kh == g.kw &&
                                         (g.kh == 3 || g.kh == 5)
                                     ? g.sh
                                     : 0;
    // dw_plane_in_place (no padded plane): stride 2, and stride 1 for 3 × 3 on rows of 3 vectors or more
    // (AVX-512, 32 ch 112² 197 → 129 µs, 144 ch 56² 219 → 141; 192 ch 28² 55 → 54-55, 480 ch 14² 44 → 48,
    // and 5 × 5 5-8% slower at 28² and 56²).
    const bool in_place = V::kMaskedLoads && (reuse_stride == 2 || (reuse_stride == 1 && g.kh == 3 && g.ow >= 3 * W));
    const int64_t wp = depthwise_padded_cols(g, w);
    float* pad = scratch;
    // Zeros once per call: each plane overwrites the same interior (14 × 14 and 7 × 7 planes spent
    // more on filling the padding than on their taps).
    if (!in_place) std::fill(pad, pad + depthwise_scratch_floats(g, h, w), 0.0f);
    for (int64_t c = 0; c < planes; ++c) {
      const float* xc = x + c * h * w;
      if (!in_place) {
        if (reuse_stride == 2) split_rows(xc, h, w, g.pw, pad + g.ph * wp, wp);
        else pad_rows(xc, h, w, pad + g.ph * wp + g.pw, wp);
      }
      for (int64_t o = c * m; o < (c + 1) * m; ++o) {
        const float b = bias != nullptr ? bias[o] : 0.0f;
        float* yo = y + o * plane;
        const bool fused = with_simple_activation(act, [&](auto a) {
          constexpr Activation A = decltype(a)::value;
          if constexpr (V::kMaskedLoads) {
            const float* wo = wk + o * taps;
            if (in_place && reuse_stride == 1) return dw_plane_in_place<1, 3, A>(xc, h, w, g, wo, b, yo);
            if (in_place) {
              return g.kh == 3 ? dw_plane_in_place<2, 3, A>(xc, h, w, g, wo, b, yo)
                               : dw_plane_in_place<2, 5, A>(xc, h, w, g, wo, b, yo);
            }
          }
          if (reuse_stride == 1 && g.kh == 3) dw_plane_reuse<1, 3, A>(pad, wp, g, wk + o * taps, b, yo);
          else if (reuse_stride == 1) dw_plane_reuse<1, 5, A>(pad, wp, g, wk + o * taps, b, yo);
          else if (reuse_stride == 2 && g.kh == 3) dw_plane_reuse<2, 3, A>(pad, wp, g, wk + o * taps, b, yo);
          else if (reuse_stride == 2) dw_plane_reuse<2, 5, A>(pad, wp, g, wk + o * taps, b, yo);
          else if (g.sw == 1) dw_plane<1, A>(pad, wp, g, wk + o * taps, b, yo);
          else if (g.sw == 2) dw_plane<2, A>(pad, wp, g, wk + o * taps, b, yo);
          else dw_plane_strided(pad, wp, g, wk + o * taps, b, yo);
        });
        if (g.sw > 2 || !fused) finish_rows<V>(yo, plane, nullptr, act);
      }
    }
  }

  // ---- dense product on pixel rows -----------------------------------------------------------
  // Register tile: kMr weight rows (broadcast from the panel's column, kMr consecutive floats) × kNv
  // vectors of pixels (loaded from x's row k): AVX-512 and NEON 8 × 3 (24 accumulators, 3 inputs, 1
  // broadcast of 32 registers), AVX2 4 × 3 (12 + 3 + 1 of 16). kMr divides the panel's 16 rows.
  static constexpr int kMr = V::kRegs >= 32 ? 8 : 4;
  static constexpr int kNv = 3;
  static constexpr int64_t kNr = kNv * W;
  static constexpr int64_t kPanelRows = 16;
  // Most k per pass: the kc × kNr block of x a pixel tile reads stays in L2 (384 KiB of it) while
  // every row tile passes over it; the output tile is added to between passes, which are as even as
  // can be. On AVX-512, blocks that fit L1 (16 KiB, 168 k) took 4-14 passes on ResNet-18's 3 × 3
  // layers, which run 3-5% faster in one (56 × 56 64 → 64: 0.92 → 0.95× onnxruntime; 28 × 28 0.89 →
  // 0.92×). AVX2's tiles (24 pixels) run faster from L1, 12 KiB a pass (128 k): on Zen 3, 1 × 1 480 →
  // 112 at 14² 360 → 324 µs, 672 → 112 511 → 451, 3 × 3 stride 2 64 → 128 at 56² 1,665 → 1,394,
  // 128 → 256 at 28² 1,652 → 1,481 (Model.profile minima, call by call).
  static constexpr int64_t kMaxKc = (V::kRegs >= 32 ? 384 : 12) * 1024 / (kNr * 4);
  // Sparse tiles (their input loaded once per FMA, no reuse across rows) are as wide as the registers
  // allow, as each step's entry costs a load of its own: AVX-512 and NEON 4 rows × 4 vectors, AVX2 2 ×
  // 4. Their passes keep the input in 16 KiB, every FMA loading it: 2:4 3 × 3 at 14² and 28² ran 842
  // and 828 µs so, 917 and 964 with 64 KiB.
  static constexpr int kSparseMr = V::kRegs >= 32 ? 4 : 2;
  static constexpr int kSparseNv = 4;
  static_assert(kPanelRows % kMr == 0 && kPanelRows % kSparseMr == 0, "row tiles stay within a panel");
  static constexpr int64_t kSparseNr = kSparseNv * W;
  static constexpr int64_t kMaxKcSparse = 16 * 1024 / (kSparseNr * 4);
  static constexpr int64_t kCvBlock = 64;  // pixels per block of the channel-vector path below

  // Rows [0, rows) (rows ≤ MR) × NV vectors of pixels, the last one `last` lanes when kMask, over
  // steps s < kn of panels P (ConvPanels: float values when dense, ConvEntry when sparse): wp points
  // at the panel's step s0 and the tile's first row; x at the tile's first pixel, the input row of
  // column k at x + off[k] (kOff) or x + k · ldx for dense steps (x and off advanced to s0 by the
  // caller), x + at · ldx for a sparse entry; y at the output's (row, first pixel). `first`: y is
  // stored, else added to; `final`: bias, res and A applied. fetch (null: none): lines of the next
  // panel prefetched a step apart. A dense step loads its input row once for MR rows; a sparse
  // step loads each row's own (N:M rows share no columns): NV + 1 loads per NV FMAs, the entry's
  // value and row in one 8-byte load.
  // Never inlined: inlined into gemm_rows, the partial tiles' accumulators were spilled to the stack
  // on every k (3 × 3 128 → 128 at 28 × 28: 1,054 → 960 µs).
  template <class P, int NV, bool kMask, bool kOff, Activation A>
  [[gnu::noinline]] static void gemm_tile(const P* wp, int64_t kn, const float* x, int64_t ldx, const int64_t* off,
                                          float* y, int64_t ldy, int rows, int last, bool first, bool final,
                                          const float* bias, const float* res, const P* fetch) {
    constexpr bool kSparse = std::is_same_v<P, ConvEntry>;
    constexpr int MR = kSparse ? kSparseMr : kMr;
    F acc[MR][NV];
    unroll<MR>([&](auto i) { unroll<NV>([&](auto v) { acc[i.value][v.value] = V::zero(); }); });
    const auto load_x = [&](const float* xk, auto v) {
      return kMask && v.value + 1 == NV ? V::load_first(xk + v.value * W, last) : V::load(xk + v.value * W);
    };
    for (int64_t k = 0; k < kn; ++k) {
      const P* wk = wp + k * kPanelRows;
      if (fetch != nullptr) {
        unroll<sizeof(P) / 4>([&](auto line) { __builtin_prefetch(fetch + k * kPanelRows + line.value * 64 / sizeof(P)); });
      }
      if constexpr (kSparse) {
        unroll<MR>([&](auto i) {
          uint64_t e;  // value in the low 32 bits, at in the high (ConvEntry, little-endian)
          std::memcpy(&e, wk + i.value, sizeof e);
          const float* xk = x + static_cast<int64_t>(static_cast<int32_t>(e >> 32)) * ldx;
          const F b = V::broadcast_bits(e);
          unroll<NV>([&](auto v) { acc[i.value][v.value] = V::fmadd(b, load_x(xk, v), acc[i.value][v.value]); });
        });
      } else {
        const float* xk = kOff ? x + off[k] : x + k * ldx;
        F xv[NV];
        unroll<NV>([&](auto v) { xv[v.value] = load_x(xk, v); });
        unroll<MR>([&](auto i) {
          const F b = V::broadcast(wk + i.value);
          unroll<NV>([&](auto v) { acc[i.value][v.value] = V::fmadd(b, xv[v.value], acc[i.value][v.value]); });
        });
      }
    }
    unroll<MR>([&](auto i) {
      if (i.value >= rows) return;
      float* yr = y + i.value * ldy;
      const float* rr = res != nullptr ? res + i.value * ldy : nullptr;
      unroll<NV>([&](auto v) {
        const bool part = kMask && v.value + 1 == NV;
        float* p = yr + v.value * W;
        F s = acc[i.value][v.value];
        if (!first) s = V::add(s, part ? V::load_first(p, last) : V::load(p));
        if (final) {
          if (bias != nullptr) s = V::add(s, V::broadcast(bias + i.value));
          if (rr != nullptr) s = V::add(s, part ? V::load_first(rr + v.value * W, last) : V::load(rr + v.value * W));
          s = activate_vec<V, A>(s);
        }
        if (part) V::store_first(p, s, last);
        else V::store(p, s);
      });
    });
  }

  // Pixels [q0, q0 + np) of every row, summed in buf (rows × ldb, channel-major), into y: for wide
  // pixels the runs of each padded row that are output pixels; bias, residual and A applied.
  template <Activation A>
  static void store_sums(const float* buf, int64_t ldb, int64_t rows, int64_t q0, int64_t np, const ConvGemmArgs& a) {
    struct Run {
      int64_t src, dst, n;
    } runs[kCvBlock + 2];
    int n_runs = 0;
    if (a.wide_cols == 0) runs[n_runs++] = {0, q0, np};
    for (int64_t q = q0; a.wide_cols > 0 && q < q0 + np;) {
      const int64_t j = q % a.wide_cols, end = min_i64(q0 + np, q - j + a.wide_cols);
      if (j < a.ow) runs[n_runs++] = {q - q0, q / a.wide_cols * a.ow + j, min_i64(end, q - j + a.ow) - q};
      q = end;
    }
    for (int64_t r = 0; r < rows; ++r) {
      const F b = a.bias != nullptr ? V::broadcast(a.bias + r) : V::zero();
      for (int u = 0; u < n_runs; ++u) {
        const float* src = buf + r * ldb + runs[u].src;
        float* dst = a.y + r * a.ldy + runs[u].dst;
        const float* res = a.res != nullptr ? a.res + r * a.ldy + runs[u].dst : nullptr;
        for (int64_t i = 0; i < runs[u].n; i += W) {
          const int n = static_cast<int>(min_i64(W, runs[u].n - i));
          F v = V::add(n == W ? V::load(src + i) : V::load_first(src + i, n), b);
          if (res != nullptr) v = V::add(v, n == W ? V::load(res + i) : V::load_first(res + i, n));
          v = activate_vec<V, A>(v);
          if (n == W) V::store(dst + i, v);
          else V::store_first(dst + i, v, n);
        }
      }
    }
  }

  // The first output pixel at or after position q of [p0, p1): q itself, or with wide pixels the
  // output pixel of wide position q (the next row's first where q lies past its row's outputs).
  static int64_t output_pixel(const ConvGemmArgs& a, int64_t q) {
    return a.wide_cols > 0 ? q / a.wide_cols * a.ow + min_i64(q % a.wide_cols, a.ow) : q;
  }

  // Columns per pass (kMaxKc, sparse kMaxKcSparse: the steps that span it), passes as even as can be.
  template <class P>
  static int64_t pass_columns(const ConvPanels& w) {
    const int64_t span = std::is_same_v<P, ConvEntry> ? kMaxKcSparse : kMaxKc;
    const int64_t max_kc = w.cols > 0 ? std::max<int64_t>(1, span * w.steps / w.cols) : 1;
    const int64_t passes = (w.steps + max_kc - 1) / max_kc;
    return passes > 1 ? (w.steps + passes - 1) / passes : std::max<int64_t>(w.steps, 1);
  }

  // Whether wide pixels run as tiles along each output row instead, stored in y as they are summed:
  // products of few steps in one pass, where whole rows of vectors hold no more lanes than a padded
  // row (112 outputs in rows of 113). The wide tiles' round trip through scratch (store_sums) is
  // paid once per pixel tile, so it weighs most where the steps are few: the 3-channel stems (1
  // thread, minima) ran 3 → 32 3 × 3 at 112² 296 → 257 µs, 3 → 64 659-675 → 601-603, 3 → 64 7 × 7 2,424-2,557
  // → 2,332-2,383 (AVX2: 2,627-2,814 → 2,386-2,391). With 288 steps and more, a row's partial tiles
  // (112 = 48 + 48 + 16) cost more than the round trip: AVX2 32 → 32 3 × 3 at 56² ran 779 → 813-825 µs.
  static constexpr int64_t kRowTiledMaxSteps = 160;
  template <class P>
  static bool row_tiled(const ConvPanels& w, const ConvGemmArgs& a) {
    return a.wide_cols > 0 && w.steps <= kRowTiledMaxSteps && pass_columns<P>(w) >= w.steps &&
           (a.ow + W - 1) / W * W <= a.wide_cols;
  }

  // Pixel tiles of NR outermost, then passes of up to kMaxKc columns, then row tiles. Wide outputs
  // sum in the scratch tile (raw sums, ld NR) and store_sums moves them out after the last pass,
  // unless by_rows (row_tiled): then tiles run along each output row's pixels, stored in y directly.
  template <class P, Activation A>
  static void gemm_rows(const P* panels, const ConvPanels& w, int64_t rows, const ConvGemmArgs& a, bool by_rows,
                        Activation scatter_act) {
    constexpr bool kSparse = std::is_same_v<P, ConvEntry>;
    constexpr int MR = kSparse ? kSparseMr : kMr, NV_MAX = kSparse ? kSparseNv : kNv;
    constexpr int64_t NR = NV_MAX * W;
    const bool wide = a.wide_cols > 0 && !by_rows;
    const int64_t steps = w.steps, kc = pass_columns<P>(w);
    // np pixels from input position px (wide or plain) into y's pixel py (or the scratch tile).
    const auto pixel_tile = [&](int64_t px, int64_t py, int64_t np, bool first_tile) {
      const int nv = static_cast<int>((np + W - 1) / W);
      const int last = static_cast<int>(np - (nv - 1) * W);
      const bool mask = last < W;
      for (int64_t k0 = 0; k0 == 0 || k0 < steps; k0 += kc) {  // one pass even when steps == 0: it stores bias
        const int64_t kn = min_i64(kc, steps - k0);
        const bool first = k0 == 0, final = !wide && k0 + kn >= steps;
        for (int64_t r0 = 0; r0 < rows; r0 += MR) {
          // No weights or inputs when steps is 0: both may be null then.
          const P* wp = kn == 0 ? nullptr : panels + (r0 / kPanelRows * steps + k0) * kPanelRows + r0 % kPanelRows;
          const bool dense_at_k0 = !kSparse && a.offsets == nullptr;
          const float* xt = kn == 0 ? nullptr : dense_at_k0 ? a.x + k0 * a.ldx + px : a.x + px;
          const int64_t* off = !kSparse && a.offsets != nullptr ? a.offsets + k0 : nullptr;
          float* yt = wide ? a.scratch + r0 * NR : a.y + r0 * a.ldy + py;
          const int64_t ldy = wide ? NR : a.ldy;
          const int nr = static_cast<int>(min_i64(MR, rows - r0));
          const float* bt = a.bias != nullptr ? a.bias + r0 : nullptr;
          const float* rt = a.res != nullptr && !wide ? a.res + r0 * a.ldy + py : nullptr;
          // The first pixel tile's first row tile of a panel prefetches the next panel (or the next
          // pass's first): the weight, evicted from L3 by the other layers between runs, jumps to
          // the next panel every kc columns, too soon for the hardware prefetcher (ResNet-18's
          // 2.4 MB 14 × 14 layers ran 1.2 ms in the model against 1.0 alone).
          const P* fetch = kn == 0 || !first_tile || r0 % kPanelRows != 0 ? nullptr
                           : r0 + kPanelRows < rows                       ? wp + kPanelRows * steps
                           : k0 + kc < steps                              ? panels + (k0 + kc) * kPanelRows
                                                                          : nullptr;
          const auto tile = [&](auto nvc, auto maskc, auto offc) {
            gemm_tile<P, decltype(nvc)::value, decltype(maskc)::value, decltype(offc)::value, A>(
                wp, kn, xt, a.ldx, off, yt, ldy, nr, last, first, final, bt, rt, fetch);
          };
          const auto with_mask = [&](auto nvc) {
            const auto with_off = [&](auto maskc) {
              if (off != nullptr) tile(nvc, maskc, std::true_type{});
              else tile(nvc, maskc, std::false_type{});
            };
            if (mask) with_off(std::true_type{});
            else with_off(std::false_type{});
          };
          with_count<NV_MAX>(nv, with_mask);
        }
      }
    };
    if (by_rows) {
      // The output pixels whose wide positions lie in [p0, p1), a run of each output row at a time.
      const int64_t q0 = output_pixel(a, a.p0), q1 = output_pixel(a, a.p1);
      for (int64_t q = q0; q < q1;) {
        const int64_t i = q / a.ow, end = min_i64(q1, (i + 1) * a.ow), shift = i * (a.wide_cols - a.ow);
        for (int64_t p = q; p < end; p += NR) pixel_tile(p + shift, p, min_i64(NR, end - p), p == q0);
        q = end;
      }
      return;
    }
    for (int64_t p0 = a.p0; p0 < a.p1; p0 += NR) {
      const int64_t np = min_i64(NR, a.p1 - p0);
      pixel_tile(p0, p0, np, p0 == a.p0);
      if (wide) {
        with_activation(scatter_act, [&](auto s) { store_sums<decltype(s)::value>(a.scratch, NR, rows, p0, np, a); });
      }
    }
  }

  // ---- few pixels: vectors along channels -------------------------------------------------
  // Up to 64 pixels the tiles above leave lanes idle (49 pixels fill 64 lanes) and stream the weight
  // once per 48 pixels. Here vectors run along a panel's rows (kCvPanels panels: AVX-512 4 × 16
  // rows, 6 pixels broadcast; AVX2 16 rows × 6; NEON 16 × 6), the weight read as whole vectors once
  // per block of up to kCvBlock pixels; the sums go pixel-major into scratch, are transposed and
  // stored as above (store_sums). AVX-512 took 2 panels × 12 pixels before: 12 broadcasts per 24
  // FMAs against 6 now (3 × 3 512 → 512 at 7 × 7: 0.89× onnxruntime → 0.91×).
  static constexpr int kCvPanels = V::kRegs >= 32 && W >= 16 ? 4 : 1;
  static constexpr int kPv = static_cast<int>(kPanelRows / W);  // vectors per panel column
  static constexpr int kCvCols = (V::kRegs >= 32 ? 24 : 12) / (kCvPanels * kPv);
  // k per pass: the block's kc × 64 inputs (32 KiB) stay in L1; the weight slice streams by.
  static constexpr int64_t kCvKc = 128;
  static_assert(kCvPanels * kPanelRows <= 64 && kCvKc <= 128 && kCvBlock == 64 && kNr <= 2 * kCvBlock &&
                    kSparseNr <= 2 * kCvBlock,
                "conv_gemm_scratch_floats sizes the scratch for these");

  // fetch (null: none): a panel of the next row group's weights, prefetched a line per k (each of
  // a block's first kCvPanels tiles takes one panel: all four from the first tile ran ResNet-18's 7 × 7
  // layers 15% slower in the model). Never inlined, as gemm_tile.
  template <int P, int NB, bool kOff>
  [[gnu::noinline]] static void cv_tile(const float* wp, int64_t panel_stride, int64_t kn, const float* x, int64_t ldx,
                      const int64_t* off, float* t, int64_t ldt, bool first, const float* fetch) {
    constexpr int RV = P * kPv;
    F acc[NB][RV];
    unroll<NB>([&](auto j) { unroll<RV>([&](auto v) { acc[j.value][v.value] = V::zero(); }); });
    for (int64_t k = 0; k < kn; ++k) {
      if (fetch != nullptr) {
        __builtin_prefetch(fetch + k * kPanelRows);
      }
      F wv[RV];
      unroll<RV>([&](auto v) {
        wv[v.value] = V::load(wp + v.value / kPv * panel_stride + k * kPanelRows + v.value % kPv * W);
      });
      const float* xk = kOff ? x + off[k] : x + k * ldx;
      unroll<NB>([&](auto j) {
        const F b = V::broadcast(xk + j.value);
        unroll<RV>([&](auto v) { acc[j.value][v.value] = V::fmadd(wv[v.value], b, acc[j.value][v.value]); });
      });
    }
    unroll<NB>([&](auto j) {
      unroll<RV>([&](auto v) {
        float* p = t + j.value * ldt + v.value * W;
        V::store(p, first ? acc[j.value][v.value] : V::add(V::load(p), acc[j.value][v.value]));
      });
    });
  }

  static void copy_floats(const float* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + W <= n; i += W) V::store(dst + i, V::load(src + i));
    if (i < n) V::store_first(dst + i, V::load_first(src + i, static_cast<int>(n - i)), static_cast<int>(n - i));
  }

  // Wide pixels (a direct convolution's rows with offsets) are packed per pass into a compact block
  // of the output pixels only (kc rows of kCvBlock floats): the wide ones past each row's end were
  // an eighth to a quarter of the work at 14 × 14 and 7 × 7; the block's pixels are then y's own.
  static void cv_rows(const float* panels, int64_t rows, int64_t cols, const ConvGemmArgs& args) {
    constexpr int64_t kGroup = kCvPanels * kPanelRows;
    const int64_t ldt = (rows + kGroup - 1) / kGroup * kGroup;
    float* t = args.scratch;                  // pixel-major sums: t[p · ldt + r]
    float* sums = args.scratch + kCvBlock * ldt;  // channel-major: sums[r · kCvBlock + p]
    float* packed = args.scratch + 2 * kCvBlock * ldt;  // packed inputs: packed[k · kCvBlock + p]
    const bool pack = args.wide_cols > 0;
    ConvGemmArgs a = args;
    if (pack) {  // the output pixels whose wide positions lie in [p0, p1)
      a.p0 = output_pixel(args, args.p0);
      a.p1 = output_pixel(args, args.p1);
      a.wide_cols = 0;
      if (a.p1 <= a.p0) return;
    }
    const int64_t n = a.p1 - a.p0, blocks = (n + kCvBlock - 1) / kCvBlock;
    const int64_t block = (n + blocks - 1) / blocks;  // evened out: 196 pixels in four blocks of 49
    for (int64_t p0 = a.p0; p0 < a.p1; p0 += block) {
      const int64_t np = min_i64(block, a.p1 - p0);
      for (int64_t k0 = 0; k0 == 0 || k0 < cols; k0 += kCvKc) {
        const int64_t kn = min_i64(kCvKc, cols - k0);
        if (pack) {
          for (int64_t k = 0; k < kn; ++k) {
            const float* src = a.x + a.offsets[k0 + k];
            for (int64_t p = p0; p < p0 + np;) {  // runs of one output row each
              const int64_t i = p / a.ow, j = p % a.ow, len = min_i64(a.ow - j, p0 + np - p);
              copy_floats(src + i * args.wide_cols + j, packed + k * kCvBlock + (p - p0), len);
              p += len;
            }
          }
        }
        for (int64_t r0 = 0; r0 < rows; r0 += kGroup) {
          const float* wp = panels + (r0 / kPanelRows * cols + k0) * kPanelRows;
          // The weights of the next row group (or of the next pass's first), which the first tile
          // prefetches: a weight streamed from DRAM (ResNet-18's 9.4 MB 7 × 7 layers, evicted by
          // the others between runs) jumps every kc columns to the next panel, too soon for the
          // hardware prefetcher.
          const float* ahead = r0 + kGroup < rows  ? wp + kGroup * cols
                               : k0 + kCvKc < cols ? panels + (k0 + kCvKc) * kPanelRows
                                                   : nullptr;
          const int panels_here = static_cast<int>(min_i64(kCvPanels, (rows - r0 + kPanelRows - 1) / kPanelRows));
          for (int64_t pb = 0; pb < np; pb += kCvCols) {
            // No inputs when cols is 0 (the pass only stores bias and residual): x may be null then.
            const float* xt = kn == 0    ? nullptr
                              : pack     ? packed + pb
                              : a.offsets != nullptr ? a.x + p0 + pb
                                                     : a.x + k0 * a.ldx + p0 + pb;
            const int64_t* off = a.offsets != nullptr && !pack ? a.offsets + k0 : nullptr;
            const int64_t ldx = pack ? kCvBlock : a.ldx;
            float* tt = t + pb * ldt + r0;
            const int nb = static_cast<int>(min_i64(kCvCols, np - pb));
            const auto run = [&](auto pc) {
              constexpr int P = decltype(pc)::value;
              with_count<kCvCols>(nb, [&](auto nbc) {
                const int64_t q = pb / kCvCols;  // tile q prefetches the next group's panel q
                const float* fetch = ahead != nullptr && q < kCvPanels ? ahead + q * cols * kPanelRows : nullptr;
                if (off != nullptr) {
                  cv_tile<P, decltype(nbc)::value, true>(wp, cols * kPanelRows, kn, xt, ldx, off, tt, ldt, k0 == 0, fetch);
                } else {
                  cv_tile<P, decltype(nbc)::value, false>(wp, cols * kPanelRows, kn, xt, ldx, off, tt, ldt, k0 == 0, fetch);
                }
              });
            };
            switch (panels_here) {
              case 4: if constexpr (kCvPanels >= 4) run(Const<4>{}); break;
              case 3: if constexpr (kCvPanels >= 3) run(Const<3>{}); break;
              case 2: if constexpr (kCvPanels >= 2) run(Const<2>{}); break;
              default: run(Const<1>{}); break;
            }
          }
        }
      }
      transpose<V>(t, ldt, sums, kCvBlock, np, rows);
      with_activation(a.act, [&](auto s) { store_sums<decltype(s)::value>(sums, kCvBlock, rows, p0, np, a); });
    }
  }

  template <class P>
  static void pixel_rows(const P* panels, const ConvPanels& w, int64_t rows, const ConvGemmArgs& a) {
    const bool by_rows = row_tiled<P>(w, a);
    if (a.wide_cols > 0 && !by_rows) return gemm_rows<P, Activation::kNone>(panels, w, rows, a, false, a.act);
    const bool fused = with_simple_activation(a.act, [&](auto s) {
      gemm_rows<P, decltype(s)::value>(panels, w, rows, a, by_rows, Activation::kNone);
    });
    if (!fused) {
      const int64_t q0 = output_pixel(a, a.p0), q1 = output_pixel(a, a.p1);
      for (int64_t r = 0; r < rows; ++r) finish_rows<V>(a.y + r * a.ldy + q0, q1 - q0, nullptr, a.act);
    }
  }

  static void conv_gemm(const ConvPanels& w, int64_t rows, const ConvGemmArgs& a) {
    if (rows == 0 || a.p1 <= a.p0) return;
    if (w.entries != nullptr) return pixel_rows(w.entries, w, rows, a);
    // Channel vectors up to 64 pixels. Pixel tiles beat them from 14 × 14 on (3 × 3 256 → 256 at 14 ×
    // 14: 0.84× onnxruntime against 0.81×, its input no longer packed per pass) once their partial
    // tiles were compiled apart (gemm_tile); at 7 × 7 they ran 0.74× against 0.88×.
    if (a.scratch != nullptr && a.p1 - a.p0 <= 64) return cv_rows(w.values, rows, w.cols, a);
    pixel_rows(w.values, w, rows, a);
  }
};

}  // namespace
}  // namespace sparsert
