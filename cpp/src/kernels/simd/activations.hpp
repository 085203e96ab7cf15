// The epilogue's activations over a vector type V (x86/vec_*.hpp, arm/vec_neon.hpp), so that
// finish_rows applies every one of them a vector at a time. One value at a time through std::erf,
// GELU took ~4 of the 5.8 ms of a BERT FFN-1 product at 128 rows (393k outputs).
//
// exp and tanh come from range reduction plus polynomials, erf from a rational function, all fitted
// for this file (float64 weighted least squares iterated toward the minimax error; fit errors 2e-9
// and 4e-9 relative, 5e-8 absolute). Each result is within a few float ulps of the float64 function,
// or, in the tails and where GELU's 1 + erf cancels, far below the kernels' tolerance
// (`ActivationMath` in tests/cpp/test_kernels.cpp measures both). NaN stays NaN, as in epilogue.hpp's
// scalar definitions, which the reference kernels keep.
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "sparsert/format.hpp"

namespace sparsert {
namespace {

template <class V>
struct VecMath {
  using F = typename V::F;

  static F one() { return V::set1(1.0f); }

  // c[0] + x·(c[1] + x·(c[2] + ...)).
  template <size_t N>
  static F poly(F x, const float (&c)[N]) {
    F acc = V::set1(c[N - 1]);
    for (size_t i = N - 1; i-- > 0;) acc = V::fmadd(acc, x, V::set1(c[i]));
    return acc;
  }

  // e^x = 2^n · e^r with n = round(x / ln 2), |r| ≤ ln 2 / 2 (ln 2 split in two so that n · ln 2
  // loses nothing), e^r a degree-6 polynomial. With V::scalef, x is clamped to [-110, 100], beyond
  // which e^x is 0 or ∞ all the same, and scalef's own overflow and underflow give the tails: on Zen 4
  // SiLU alone ran 5.5 → 4.3 ns a 16-lane vector. Without it, x is clamped to [-87.33, 88.37], where
  // 2^n stays a normal float, and blends give 0 / ∞ beyond. Either way ∞ · e^-∞ is NaN as in the
  // scalar epilogue.
  static F exp(F x) {
    static constexpr float kExpR[] = {1.000000001f, 1.000000036f, 4.999999209e-1f, 1.666642053e-1f,
                                      4.166822580e-2f, 8.374786781e-3f, 1.383672959e-3f};
    const F lo = V::set1(V::kScalef ? -110.0f : -87.33f), hi = V::set1(V::kScalef ? 100.0f : 88.37f);
    const F xc = V::min(hi, V::max(lo, x));  // max/min keep a NaN in the second operand
    const F n = V::round(V::mul(xc, V::set1(1.44269504f)));
    F r = V::fmadd(n, V::set1(-0.693147182f), xc);
    r = V::fmadd(n, V::set1(1.90465421e-9f), r);
    if constexpr (V::kScalef) {
      return V::scalef(poly(r, kExpR), n);
    } else {
      const F e = V::mul(poly(r, kExpR), V::pow2(n));
      return V::blend_lt(x, lo, V::zero(), V::blend_lt(hi, x, V::set1(HUGE_VALF), e));
    }
  }

  // 1 / (1 + e^-x).
  static F sigmoid(F x) { return V::div(one(), V::add(one(), exp(V::sub(V::zero(), x)))); }

  // |x| < 0.625: x · P(x²), which keeps small x's relative accuracy; above, 1 − 2 / (e^2|x| + 1)
  // with x's sign.
  static F tanh(F x) {
    static constexpr float kTanhOverX[] = {9.999999961e-1f, -3.333326063e-1f, 1.333112984e-1f,
                                           -5.372125019e-2f, 2.059156973e-2f, -5.660632635e-3f};
    const F ax = V::abs(x);
    const F small = V::mul(x, poly(V::mul(x, x), kTanhOverX));
    const F e = exp(V::add(ax, ax));
    const F large = V::copysign(V::sub(one(), V::div(V::set1(2.0f), V::add(e, one()))), x);
    return V::blend_lt(ax, V::set1(0.625f), small, large);
  }

  // x · Φ(x), Φ the normal CDF = ½ (1 + erf(x / √2)), with erf(x / √2) = x · P(x²) / Q(x²) on x
  // clamped to ±4√2 (where erf is 1 to float precision) and the quotient clamped to [-1, 1]. P and Q
  // were fitted for this file (float64 weighted least squares iterated toward the minimax absolute
  // error, 5e-8); evaluated in float, erf is within 4e-7 and the result within 2e-7 · |x| of the
  // float64 function. 1 + erf cancels for negative x, as in torch's own CPU GELU: the error is
  // |x| · ulp-sized there, not relative. The erfc form (an exp and a degree-10 polynomial behind a
  // division) kept the negative tail relative too, but cost 3× as much, ~0.45 ms of a BERT FFN-1
  // product at 128 rows.
  static F gelu_erf(F x) {
    static constexpr float kP[] = {7.978842147e-1f, 7.563895997e-2f, 9.268884482e-3f, 3.794336126e-4f,
                                   6.873477368e-6f, -4.397884837e-8f, 2.123164350e-10f};
    static constexpr float kQ[] = {1.0f, 2.614632077e-1f, 3.019933960e-2f, 1.943825786e-3f, 6.862320029e-5f};
    const F bound = V::set1(5.656854249f);
    const F xc = V::min(bound, V::max(V::sub(V::zero(), bound), x));  // max/min keep a NaN in x
    const F u = V::mul(xc, xc);
    const F erf = V::min(one(), V::max(V::set1(-1.0f), V::div(V::mul(xc, poly(u, kP)), poly(u, kQ))));
    const F half_x = V::mul(V::set1(0.5f), x);
    return V::fmadd(half_x, erf, half_x);
  }

  // ½ x (1 + tanh(u)) = x · sigmoid(2u), u = √(2/π) (x + 0.044715 x³): exact in the tails, where
  // 1 + tanh would cancel.
  static F gelu_tanh(F x) {
    const F two_u = V::mul(x, V::fmadd(V::mul(x, x), V::set1(0.0713548162f), V::set1(1.59576912f)));
    return V::div(x, V::add(one(), exp(V::sub(V::zero(), two_u))));
  }
};

template <Activation A>
using ActivationConst = std::integral_constant<Activation, A>;

// act(v), with act fixed at compile time so that a loop over outputs carries no switch.
template <class V, Activation A>
typename V::F activate_vec(typename V::F v) {
  using M = VecMath<V>;
  if constexpr (A == Activation::kNone) return v;
  else if constexpr (A == Activation::kRelu) return V::max(V::zero(), v);  // max(0, NaN) = NaN
  else if constexpr (A == Activation::kRelu6) return V::min(V::set1(6.0f), V::max(V::zero(), v));
  else if constexpr (A == Activation::kGeluErf) return M::gelu_erf(v);
  else if constexpr (A == Activation::kGeluTanh) return M::gelu_tanh(v);
  else if constexpr (A == Activation::kSilu) return V::div(v, V::add(M::one(), M::exp(V::sub(V::zero(), v))));
  else if constexpr (A == Activation::kSigmoid) return M::sigmoid(v);
  else if constexpr (A == Activation::kTanh) return M::tanh(v);
  else {  // hardswish, x · relu6(x + 3) · (1 / 6): within an ulp of torch's division by 6, which
    // took 11 of the 25 µs hardswish added to a 32-channel 112² depthwise on Zen 4 (Model.profile
    // minima: 108 µs without, 133 dividing, 122 multiplying; MobileNetV2-style dense, per-node minima
    // of 6 processes in turns, summed: 3937 → 3864 µs)
    const typename V::F relu6 = V::min(V::set1(6.0f), V::max(V::zero(), V::add(v, V::set1(3.0f))));
    return V::mul(V::mul(v, relu6), V::set1(1.0f / 6.0f));
  }
}

// fn(ActivationConst<act>{}): the runtime activation as a compile-time one.
template <class Fn>
void with_activation(Activation act, Fn&& fn) {
  switch (act) {
    case Activation::kNone: return fn(ActivationConst<Activation::kNone>{});
    case Activation::kRelu: return fn(ActivationConst<Activation::kRelu>{});
    case Activation::kRelu6: return fn(ActivationConst<Activation::kRelu6>{});
    case Activation::kGeluErf: return fn(ActivationConst<Activation::kGeluErf>{});
    case Activation::kGeluTanh: return fn(ActivationConst<Activation::kGeluTanh>{});
    case Activation::kSilu: return fn(ActivationConst<Activation::kSilu>{});
    case Activation::kSigmoid: return fn(ActivationConst<Activation::kSigmoid>{});
    case Activation::kTanh: return fn(ActivationConst<Activation::kTanh>{});
    case Activation::kHardswish: return fn(ActivationConst<Activation::kHardswish>{});
  }
}

}  // namespace
}  // namespace sparsert
