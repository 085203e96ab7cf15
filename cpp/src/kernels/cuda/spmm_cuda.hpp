// CUDA entry points: y = x·Wᵀ on the GPU for the tiled CSR (CUDA cores, fp32), 2:4 weights (sparse
// tensor cores, mma.sp, f16/bf16 operands, fp32 accumulation) and dense weights (the baseline, fp32).
// Internal (cpp/src): the public headers pull in no CUDA. Built only when CMake found a CUDA compiler
// (target sparsert_cuda, SPARSERT_HAVE_CUDA); the graph executor does not call these yet.
//
// Conventions shared by every entry point (after sputnik's CudaSpmm):
//   - x, y, workspace and the weight arrays are device memory the caller owns; x is batch rows of ldx
//     floats (row-major, the layout of an activation tensor), y is batch rows of ldy floats; only the
//     first cols floats of each x row are read and only the first rows floats of each y row are written.
//   - Work is enqueued on `stream` and not waited for; the return value is cudaErrorInvalidValue
//     when a documented precondition fails (nothing is launched), else the launch status
//     (cudaGetLastError after the launches). Errors of the kernel's execution surface at the next
//     synchronising call, as with any CUDA launch.
//   - Entry points never allocate, throw or log. Calls on different streams need distinct y and
//     workspace buffers; weights and x may be shared.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "formats/nm24_mma.hpp"
#include "formats/tcsr.hpp"

namespace sparsert::cuda {

/// Device copy of a TcsrMatrix (formats/tcsr.hpp specifies the arrays). Non-owning; values must be
/// 16-byte and col_idx 8-byte aligned (cudaMalloc's 256-byte alignment satisfies both).
struct TcsrView {
  int64_t rows = 0, cols = 0, col_tile = 0, col_tiles = 0;
  const uint32_t* seg_ptr = nullptr;  // rows·col_tiles + 1
  const uint16_t* col_idx = nullptr;  // seg_ptr[rows·col_tiles] entries
  const float* values = nullptr;      // as many
};

/// The two tiled-CSR kernels; kAuto picks by batch (the rule and its reason are in spmm_tcsr_f32_sm80.cu).
enum class TcsrVariant {
  kAuto,
  kWarpPerRow,     // one warp per weight row, lanes split its non-zeros; batch ≤ 32
  kLanesPerBatch,  // lanes split the batch (4 columns each), a row's non-zeros in sequence; any batch
};
const char* to_string(TcsrVariant v);

/// Bytes of workspace spmm_tcsr_f32_sm80 needs: the input transposed (cols × round_up(batch, 4)
/// floats, so a non-zero's batch values are one contiguous run) unless batch is 1 and the variant
/// resolves to kWarpPerRow, which reads x directly; 0 then.
size_t spmm_tcsr_f32_sm80_workspace_bytes(int64_t cols, int64_t batch, TcsrVariant variant = TcsrVariant::kAuto);

/// y[b·ldy + r] = Σ_k x[b·ldx + k]·W[r, k] for b < batch, r < w.rows (fp32, CUDA cores).
/// Preconditions: batch ≥ 0, ldx ≥ w.cols, ldy ≥ w.rows, batch ≤ 2,097,120 (the transpose's grid);
/// kWarpPerRow only for batch ≤ 32; workspace ≥ spmm_tcsr_f32_sm80_workspace_bytes(w.cols, batch,
/// variant) bytes and 16-byte aligned (null allowed when that is 0); w's arrays aligned as TcsrView says.
cudaError_t spmm_tcsr_f32_sm80(const TcsrView& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy,
                               void* workspace, size_t workspace_bytes, cudaStream_t stream,
                               TcsrVariant variant = TcsrVariant::kAuto);

/// The dense baseline: y[b·ldy + r] = Σ_k x[b·ldx + k]·w[r·ldw + k] for b < batch, r < rows (fp32,
/// CUDA cores, no tensor cores: the like-for-like baseline of the tiled CSR). Batch ≤ 16: one warp
/// per weight row streaming W once (memory-bound GEMV); larger: 32×64 or 64×64 output tiles through
/// shared memory. Preconditions: ldw ≥ cols, ldx ≥ cols, ldy ≥ rows, batch ≤ 4,194,240.
/// 16-byte vector loads are used when cols, ldw and ldx are multiples of 4 and w, x 16-byte aligned.
cudaError_t spmm_dense_f32_sm80(const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t ldx,
                                int64_t batch, float* y, int64_t ldy, cudaStream_t stream);

/// Device copy of an Nm24MmaMatrix (formats/nm24_mma.hpp specifies the arrays). Non-owning; values
/// 8-byte aligned.
struct Nm24View {
  int64_t rows = 0, cols = 0, row_tiles = 0, k_tiles = 0;
  Half16 type = Half16::kF16;
  const uint16_t* values = nullptr;  // row_tiles·k_tiles·128
  const uint32_t* meta = nullptr;    // row_tiles·k_tiles·8
};

/// y[b·ldy + r] = Σ_k half(x[b·ldx + k])·W[r, k] on the sparse tensor cores (mma.sp m16n8k16, f16 or
/// bf16 operands as w.type says, x rounded to it on load, fp32 accumulation). One warp per 16 weight
/// rows × 8 batch columns: a correctness-first kernel that proves the layout; it is not tuned.
/// Preconditions: w.type matches the function, ldx ≥ w.cols, ldy ≥ w.rows, batch ≤ 524,280.
cudaError_t spmm_nm24_f16_sm80(const Nm24View& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy,
                               cudaStream_t stream);
cudaError_t spmm_nm24_bf16_sm80(const Nm24View& w, const float* x, int64_t ldx, int64_t batch, float* y,
                                int64_t ldy, cudaStream_t stream);

}  // namespace sparsert::cuda
