// Host reference of the tiled-CSR GPU kernels: reads formats/tcsr.hpp's layout as the kernels do,
// segment by segment, in 4-entry groups (the float4/ushort4 loads), padding included, column =
// tile base + 16-bit local index. A layout bug therefore shows up here, on any CPU, against the
// double-precision dense product (tests/cpp/test_formats_gpu.cpp).
#include "formats/tcsr.hpp"

namespace sparsert {

void spmm_tcsr_f32_ref(const TcsrMatrix& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy) {
  for (int64_t b = 0; b < batch; ++b) {
    const float* xb = x + b * ldx;
    for (int64_t r = 0; r < w.rows; ++r) {
      float acc = 0.0f;
      for (int64_t t = 0; t < w.col_tiles; ++t) {
        const int64_t s = r * w.col_tiles + t;
        const float* xt = xb + t * w.col_tile;
        for (uint32_t e = w.seg_ptr[s]; e < w.seg_ptr[s + 1]; e += kTcsrVec) {
          const float* v = w.values.data() + e;
          const uint16_t* c = w.col_idx.data() + e;
          acc += v[0] * xt[c[0]];
          acc += v[1] * xt[c[1]];
          acc += v[2] * xt[c[2]];
          acc += v[3] * xt[c[3]];
        }
      }
      y[b * ldy + r] = acc;
    }
  }
}

}  // namespace sparsert
