// Runs one chosen spmm kernel over a whole problem: packs the input into the layout of
// kernels/kernel.hpp (or takes it packed), splits weight units among threads by stored non-zeros,
// calls the kernel.
#pragma once

#include <cstdint>

#include "kernels/registry.hpp"

namespace sparsert {

/// y = act(x · Wᵀ + bias) with kernel `k` (which must match w's format and fit the batch).
/// x: batch × w.cols() row-major; y: batch × w.rows() row-major. threads ≥ 1.
void run_spmm(const KernelInfo& k, const Weight& w, const float* x, int64_t batch, const float* bias, float* y,
              Activation act, int threads);

/// Options of run_spmm_packed for callers with their own layouts (conv2d), kernels/kernel.hpp.
struct PackedLayout {
  int64_t ldy_t = 0;         // > 0: transposed output, y[r · ldy_t + b] for b < batch
  int64_t column_block = 0;  // overlapping input rows: the kernel's column blocks (0: one block)
};

/// The same on an input already in the packed layout of kernels/kernel.hpp: x_packed[k * ldx + b]
/// for k < w.padded_cols() (rows k ≥ w.cols() zero); ldx == 1 when batch == 1, else a multiple of
/// kBatchPad with x_packed 64-byte aligned, or 1 for overlapping rows (CSR weights only). Lanes in
/// [batch, round up(batch, kBatchPad)) are read but never stored, so they need not be zero. For
/// callers that build the packed input directly (conv2d), saving run_spmm's transpose.
/// y: batch × w.rows() row-major unless layout.ldy_t > 0. threads ≥ 1.
void run_spmm_packed(const KernelInfo& k, const Weight& w, const float* x_packed, int64_t ldx, int64_t batch,
                     const float* bias, float* y, Activation act, int threads, const PackedLayout& layout = {});

}  // namespace sparsert
