// Bias and activation, applied to each output value before it is stored.
// Internal linkage on purpose: this header is compiled into TUs with different ISA flags, and a
// shared inline symbol could let the linker keep an AVX-512 copy for the portable path.
#pragma once

#include <cmath>

#include "sparsert/format.hpp"

namespace sparsert {
namespace {

inline float activate(float v, Activation act) {
  switch (act) {
    case Activation::kNone: return v;
    // Written so that NaN passes through, as torch.relu does.
    case Activation::kRelu: return v < 0.0f ? 0.0f : v;
    case Activation::kRelu6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    // ½ v (1 + erf(v/√2)) and ½ v (1 + tanh(u)), written without the 1 + ... that cancels for v < 0.
    case Activation::kGeluErf: return 0.5f * v * std::erfc(v * -0.70710678118654752f);
    case Activation::kGeluTanh: {
      const float two_u = 1.5957691216057308f * (v + 0.044715f * v * v * v);
      return v / (1.0f + std::exp(-two_u));
    }
    case Activation::kSilu: return v / (1.0f + std::exp(-v));
    case Activation::kSigmoid: return 1.0f / (1.0f + std::exp(-v));
    case Activation::kTanh: return std::tanh(v);
    // torch's order: x · min(max(x + 3, 0), 6) / 6.
    case Activation::kHardswish: return v * activate(v + 3.0f, Activation::kRelu6) / 6.0f;
  }
  return v;
}

inline float epilogue(float acc, const float* bias, int64_t row, Activation act) {
  return activate(bias ? acc + bias[row] : acc, act);
}

}  // namespace
}  // namespace sparsert
