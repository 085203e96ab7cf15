// Scalar reference for N:M weights, any supported pattern.
#include "kernels/epilogue.hpp"
#include "kernels/kernel.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {

void spmm_nm_f32_ref(const Weight& weight, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  const auto& w = static_cast<const NmMatrix&>(weight);
  const int n = w.n(), m = w.m();
  for (int64_t r = unit_begin; r < unit_end; ++r) {
    const float* v = w.values() + r * w.groups() * n;
    for (int64_t b = 0; b < a.batch; ++b) {
      float acc = 0.0f;
      for (int64_t g = 0; g < w.groups(); ++g)
        for (int i = 0; i < n; ++i) acc += v[g * n + i] * a.x[(g * m + w.position(r, g, i)) * a.ldx + b];
      a.y[a.transposed_y ? r * a.ldy + b : b * a.ldy + r] = epilogue(acc, a.bias, r, a.act);
    }
  }
}

}  // namespace sparsert
