// Tiled-CSR SpMM on CUDA cores, fp32: y = x·Wᵀ (layout: formats/tcsr.hpp; contract: spmm_cuda.hpp).
// Every segment is a whole number of 4-entry groups, so values come in as float4 and indices as
// ushort4, and an input column is tile base + 16-bit local index. For batch > 1 the input is first
// transposed into the workspace (xt[k·ldt + b], ldt = round_up(batch, 4)) so the batch values of one
// non-zero's column are one contiguous, 16-byte aligned run.
#include <cuda_runtime.h>

#include "kernels/cuda/spmm_cuda.hpp"

namespace sparsert::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kBlockThreads = 256;
constexpr int kWarpsPerBlock = kBlockThreads / kWarp;
constexpr int64_t kMaxTransposeBatch = 65535 * 32;  // the transpose's grid.y limit, in batch columns
static_assert(kTcsrVec == 4, "the kernels load 4 entries as one float4 and one ushort4");

int64_t round_up4(int64_t v) { return (v + 3) / 4 * 4; }

// x (batch × cols, row stride ldx) → xt (cols × ldt), zeros in the padding lanes batch..ldt-1 so a
// float4 that straddles them adds zeros. 32 × 32 tiles through shared memory (+1 column: the
// transposed read walks a column, which would otherwise hit one bank 32 times).
__global__ void transpose_kernel(const float* __restrict__ x, int64_t ldx, int64_t batch, int64_t cols,
                                 float* __restrict__ xt, int64_t ldt) {
  __shared__ float tile[32][33];
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * 32, b0 = static_cast<int64_t>(blockIdx.y) * 32;
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int64_t b = b0 + i, c = c0 + threadIdx.x;
    tile[i][threadIdx.x] = (b < batch && c < cols) ? x[b * ldx + c] : 0.0f;
  }
  __syncthreads();
  for (int i = threadIdx.y; i < 32; i += blockDim.y) {
    const int64_t c = c0 + i, b = b0 + threadIdx.x;
    if (c < cols && b < ldt) xt[c * ldt + b] = tile[threadIdx.x][i];
  }
}

// One warp per weight row. Lane l takes the row's 4-entry groups l, l + 32, ... of each segment and
// keeps a partial sum per batch column (4·kVecs of them, read as kVecs float4s of xt's row); a
// butterfly leaves every sum in every lane and lane b stores batch column b. kVecs == 0: batch 1,
// x read directly (ldt = 1). Rows are independent, so a warp past the last row simply returns.
template <int kVecs>
__global__ void __launch_bounds__(kBlockThreads) tcsr_warp_per_row(TcsrView w, const float* __restrict__ xt,
                                                                   int64_t ldt, int64_t batch, float* __restrict__ y,
                                                                   int64_t ldy) {
  constexpr int kSums = kVecs == 0 ? 1 : 4 * kVecs;
  static_assert(kSums <= kWarp, "lane b stores batch column b");
  const int lane = threadIdx.x % kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (r >= w.rows) return;
  const int vecs = static_cast<int>(ldt / 4);  // float4s an xt row holds (kVecs may exceed it)
  float acc[kSums];
#pragma unroll
  for (int i = 0; i < kSums; ++i) acc[i] = 0.0f;

  for (int64_t t = 0; t < w.col_tiles; ++t) {
    const int64_t s = r * w.col_tiles + t;
    const uint32_t end = __ldg(w.seg_ptr + s + 1);
    const float* xtile = xt + t * w.col_tile * ldt;
    for (uint32_t e = __ldg(w.seg_ptr + s) + kTcsrVec * lane; e < end; e += kTcsrVec * kWarp) {
      const float4 v = __ldg(reinterpret_cast<const float4*>(w.values + e));
      const ushort4 c = __ldg(reinterpret_cast<const ushort4*>(w.col_idx + e));
      if constexpr (kVecs == 0) {
        acc[0] += v.x * __ldg(xtile + c.x);
        acc[0] += v.y * __ldg(xtile + c.y);
        acc[0] += v.z * __ldg(xtile + c.z);
        acc[0] += v.w * __ldg(xtile + c.w);
      } else {
        const float vs[4] = {v.x, v.y, v.z, v.w};
        const int64_t cs[4] = {c.x, c.y, c.z, c.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float4* xrow = reinterpret_cast<const float4*>(xtile + cs[j] * ldt);
#pragma unroll
          for (int q = 0; q < kVecs; ++q) {
            if (q < vecs) {
              const float4 xv = __ldg(xrow + q);
              acc[4 * q + 0] += vs[j] * xv.x;
              acc[4 * q + 1] += vs[j] * xv.y;
              acc[4 * q + 2] += vs[j] * xv.z;
              acc[4 * q + 3] += vs[j] * xv.w;
            }
          }
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kSums; ++i)
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], offset);
#pragma unroll
  for (int i = 0; i < kSums; ++i)
    if (i == lane && i < batch) y[i * ldy + r] = acc[i];
}

// kLanesPerRow lanes share a weight row, each holding 4 batch columns (one float4 of xt per
// non-zero), and walk the row's entries in sequence: every lane of the row reads the same float4 of
// values and ushort4 of indices (one broadcast). A block covers kBlockRows rows × kBlockBatch batch
// columns; the sums go through shared memory so y's rows are stored as contiguous runs of
// kBlockRows floats instead of one float per lane.
template <int kLanesPerRow>
__global__ void __launch_bounds__(kBlockThreads) tcsr_lanes_per_batch(TcsrView w, const float* __restrict__ xt,
                                                                      int64_t ldt, int64_t batch,
                                                                      float* __restrict__ y, int64_t ldy) {
  static_assert(kWarp % kLanesPerRow == 0, "a warp holds whole rows");
  constexpr int kRowsPerWarp = kWarp / kLanesPerRow;
  constexpr int kBlockRows = kWarpsPerBlock * kRowsPerWarp;
  constexpr int kBlockBatch = 4 * kLanesPerRow;
  // Slot j·kLanesPerRow + sub holds batch column 4·sub + j: for a fixed j the lanes of a row write
  // consecutive slots, kBlockRows + 1 (odd) words apart, so they hit distinct banks.
  __shared__ float sums[kBlockBatch][kBlockRows + 1];

  const int lane = threadIdx.x % kWarp;
  const int row_in_block = (threadIdx.x / kWarp) * kRowsPerWarp + lane / kLanesPerRow;
  const int sub = lane % kLanesPerRow;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kBlockRows;
  const int64_t b0 = static_cast<int64_t>(blockIdx.y) * kBlockBatch;
  const int64_t r = r0 + row_in_block;
  const int64_t b = b0 + 4 * sub;  // a multiple of 4, as ldt is: the float4 is wholly in or out
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (r < w.rows && b < ldt) {
    for (int64_t t = 0; t < w.col_tiles; ++t) {
      const int64_t s = r * w.col_tiles + t;
      const uint32_t end = __ldg(w.seg_ptr + s + 1);
      const float* xtile = xt + t * w.col_tile * ldt + b;
      for (uint32_t e = __ldg(w.seg_ptr + s); e < end; e += kTcsrVec) {
        const float4 v = __ldg(reinterpret_cast<const float4*>(w.values + e));
        const ushort4 c = __ldg(reinterpret_cast<const ushort4*>(w.col_idx + e));
        const float4 x0 = __ldg(reinterpret_cast<const float4*>(xtile + c.x * ldt));
        const float4 x1 = __ldg(reinterpret_cast<const float4*>(xtile + c.y * ldt));
        const float4 x2 = __ldg(reinterpret_cast<const float4*>(xtile + c.z * ldt));
        const float4 x3 = __ldg(reinterpret_cast<const float4*>(xtile + c.w * ldt));
        acc.x += v.x * x0.x; acc.y += v.x * x0.y; acc.z += v.x * x0.z; acc.w += v.x * x0.w;
        acc.x += v.y * x1.x; acc.y += v.y * x1.y; acc.z += v.y * x1.z; acc.w += v.y * x1.w;
        acc.x += v.z * x2.x; acc.y += v.z * x2.y; acc.z += v.z * x2.z; acc.w += v.z * x2.w;
        acc.x += v.w * x3.x; acc.y += v.w * x3.y; acc.z += v.w * x3.z; acc.w += v.w * x3.w;
      }
    }
  }
  sums[0 * kLanesPerRow + sub][row_in_block] = acc.x;
  sums[1 * kLanesPerRow + sub][row_in_block] = acc.y;
  sums[2 * kLanesPerRow + sub][row_in_block] = acc.z;
  sums[3 * kLanesPerRow + sub][row_in_block] = acc.w;
  __syncthreads();
  for (int i = threadIdx.x; i < kBlockBatch * kBlockRows; i += kBlockThreads) {
    const int bi = i / kBlockRows, ri = i % kBlockRows;
    const int64_t bb = b0 + bi, rr = r0 + ri;
    if (bb < batch && rr < w.rows) y[bb * ldy + rr] = sums[(bi % 4) * kLanesPerRow + bi / 4][ri];
  }
}

// The per-shape choice. Batch ≤ 32: a row's sums fit one warp's registers (≤ 32 per lane) and the
// warp splits the row's non-zeros, so even batch 1 keeps 32 lanes busy on a row (a lanes-per-batch
// warp would leave most lanes idle or, at batch 1, read x as scalars). Above 32 the per-lane sums and
// the 5-step butterfly per sum grow with the batch while lanes-per-batch stays at 4 sums a lane; 16
// lanes a row up to batch 64, 32 lanes beyond. Reasoned, not measured: bench/gpu/check.sh times both
// variants at batch 16 and 64 so the threshold can be set from numbers.
TcsrVariant resolve(int64_t batch, TcsrVariant v) {
  if (v != TcsrVariant::kAuto) return v;
  return batch <= 32 ? TcsrVariant::kWarpPerRow : TcsrVariant::kLanesPerBatch;
}

template <class Kernel>
void launch_rows(Kernel kernel, dim3 grid, const TcsrView& w, const float* xt, int64_t ldt, int64_t batch, float* y,
                 int64_t ldy, cudaStream_t stream) {
  kernel<<<grid, kBlockThreads, 0, stream>>>(w, xt, ldt, batch, y, ldy);
}

}  // namespace

size_t spmm_tcsr_f32_sm80_workspace_bytes(int64_t cols, int64_t batch, TcsrVariant variant) {
  if (cols <= 0 || batch <= 0) return 0;
  if (batch == 1 && resolve(batch, variant) == TcsrVariant::kWarpPerRow) return 0;
  return sizeof(float) * static_cast<size_t>(cols) * static_cast<size_t>(round_up4(batch));
}

cudaError_t spmm_tcsr_f32_sm80(const TcsrView& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy,
                               void* workspace, size_t workspace_bytes, cudaStream_t stream, TcsrVariant variant) {
  const TcsrVariant v = resolve(batch, variant);
  const size_t need = spmm_tcsr_f32_sm80_workspace_bytes(w.cols, batch, variant);
  if (batch < 0 || batch > kMaxTransposeBatch || w.rows < 0 || w.cols < 0 || ldx < w.cols || ldy < w.rows ||
      w.col_tile < 1 || w.col_tile > kTcsrMaxColTile || w.col_tiles != (w.cols + w.col_tile - 1) / w.col_tile ||
      (v == TcsrVariant::kWarpPerRow && batch > 32) || workspace_bytes < need ||
      (need > 0 && (workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 16 != 0)) ||
      reinterpret_cast<uintptr_t>(w.values) % 16 != 0 || reinterpret_cast<uintptr_t>(w.col_idx) % 8 != 0) {
    return cudaErrorInvalidValue;
  }
  if (batch == 0 || w.rows == 0) return cudaSuccess;
  if (x == nullptr || y == nullptr || w.seg_ptr == nullptr) return cudaErrorInvalidValue;
  if (w.cols == 0) {  // no columns: every sum is empty
    return cudaMemset2DAsync(y, sizeof(float) * ldy, 0, sizeof(float) * w.rows, batch, stream);
  }

  const float* xt = x;
  int64_t ldt = 1;
  if (need > 0) {
    ldt = round_up4(batch);
    float* t = static_cast<float*>(workspace);
    const dim3 grid(static_cast<unsigned>((w.cols + 31) / 32), static_cast<unsigned>((ldt + 31) / 32));
    transpose_kernel<<<grid, dim3(32, 8), 0, stream>>>(x, ldx, batch, w.cols, t, ldt);
    xt = t;
  }

  if (v == TcsrVariant::kWarpPerRow) {
    const dim3 grid(static_cast<unsigned>((w.rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
    if (ldt == 1) launch_rows(tcsr_warp_per_row<0>, grid, w, xt, ldt, batch, y, ldy, stream);
    else if (batch <= 4) launch_rows(tcsr_warp_per_row<1>, grid, w, xt, ldt, batch, y, ldy, stream);
    else if (batch <= 8) launch_rows(tcsr_warp_per_row<2>, grid, w, xt, ldt, batch, y, ldy, stream);
    else if (batch <= 16) launch_rows(tcsr_warp_per_row<4>, grid, w, xt, ldt, batch, y, ldy, stream);
    else launch_rows(tcsr_warp_per_row<8>, grid, w, xt, ldt, batch, y, ldy, stream);
  } else {
    // Lanes a row: 8 up to batch 32 (only when forced), 16 up to 64, 32 beyond; see resolve().
    const int lanes = batch <= 32 ? 8 : (batch <= 64 ? 16 : 32);
    const int block_rows = kWarpsPerBlock * (kWarp / lanes), block_batch = 4 * lanes;
    const dim3 grid(static_cast<unsigned>((w.rows + block_rows - 1) / block_rows),
                    static_cast<unsigned>((batch + block_batch - 1) / block_batch));
    if (lanes == 8) launch_rows(tcsr_lanes_per_batch<8>, grid, w, xt, ldt, batch, y, ldy, stream);
    else if (lanes == 16) launch_rows(tcsr_lanes_per_batch<16>, grid, w, xt, ldt, batch, y, ldy, stream);
    else launch_rows(tcsr_lanes_per_batch<32>, grid, w, xt, ldt, batch, y, ldy, stream);
  }
  return cudaGetLastError();
}

}  // namespace sparsert::cuda
