// CSR × vector on AVX-512 (kernels/simd/spmm_csr_f32.hpp): 16 non-zeros per FMA, their inputs gathered
// by vgatherdps (Avx512) or assembled from scalar loads (Avx512LoadGather), whichever this CPU runs
// faster; 32-bit-index rows go scalar. Bias and activation are applied vectorised.
// Preconditions (kernels/kernel.hpp): batch == 1, ldx == 1, x zero-padded to padded_cols(); units are rows.
#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/spmm_csr_f32.hpp"
#include "kernels/registry.hpp"

namespace sparsert {
namespace {

// Nanoseconds for `rounds` passes of V::gather over idx (16 at a time) into an accumulator.
template <class V>
double time_gathers(const float* x, const std::vector<uint16_t>& idx, int rounds, float& sink) {
  const auto t0 = std::chrono::steady_clock::now();
  typename V::F acc = V::zero();
  for (int r = 0; r < rounds; ++r)
    for (size_t i = 0; i + 16 <= idx.size(); i += 16) acc = V::add(acc, V::gather(x, idx.data() + i));
  const auto t1 = std::chrono::steady_clock::now();
  sink += V::sum(acc);
  return std::chrono::duration<double, std::nano>(t1 - t0).count();
}

// Whether vgatherdps beats scalar loads on this CPU. It differs by vendor and generation (Zen 4
// microcodes it: 1.65x slower than the loads in batch-1 CSR; Intel cores are reported to run it at
// about a load per lane), so it is measured once: a few thousand gathers from an L1-resident vector,
// best of five alternating rounds (~0.1 ms).
bool native_gather_is_faster() {
  std::vector<float> x(2048, 1.0f);
  std::vector<uint16_t> idx(4096);
  uint32_t state = 12345;
  for (auto& i : idx) i = static_cast<uint16_t>((state = state * 1664525u + 1013904223u) >> 21);  // < 2048
  double native = 1e30, loads = 1e30;
  float sink = 0.0f;
  for (int round = 0; round < 5; ++round) {
    native = std::min(native, time_gathers<Avx512>(x.data(), idx, 4, sink));
    loads = std::min(loads, time_gathers<Avx512LoadGather>(x.data(), idx, 4, sink));
  }
  return native < loads && sink == sink;  // sink: the timed sums are used, so the loops stay
}

}  // namespace

void spmm_csr_f32_avx512_1(const Weight& w, const SpmmArgs& a, int64_t unit_begin, int64_t unit_end) {
  static const bool native = [] {
    const GatherChoice choice = gather_choice();
    return choice == GatherChoice::kMeasure ? native_gather_is_faster() : choice == GatherChoice::kNative;
  }();
  if (native) spmm_csr_batch1<Avx512>(w, a, unit_begin, unit_end);
  else spmm_csr_batch1<Avx512LoadGather>(w, a, unit_begin, unit_end);
}

}  // namespace sparsert
