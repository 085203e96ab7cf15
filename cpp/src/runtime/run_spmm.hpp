// Runs one chosen spmm kernel over a whole problem: packs the input into the layout of
// kernels/kernel.hpp, splits weight units among threads by stored non-zeros, calls the kernel.
#pragma once

#include <cstdint>

#include "kernels/registry.hpp"

namespace sparsert {

/// y = act(x · Wᵀ + bias) with kernel `k` (which must match w's format and fit the batch).
/// x: batch × w.cols() row-major; y: batch × w.rows() row-major. threads ≥ 1.
void run_spmm(const KernelInfo& k, const Weight& w, const float* x, int64_t batch, const float* bias, float* y,
              Activation act, int threads);

}  // namespace sparsert
