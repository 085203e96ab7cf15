// Dense fp32 baseline on CUDA cores: y = x·Wᵀ, W rows × cols row-major (contract: spmm_cuda.hpp).
// Batch ≤ 16: one warp per weight row streams W once with 16-byte loads and keeps one partial sum per
// batch column (the memory-bound GEMV; W is read exactly once). Larger batches: output tiles of
// kBm batch rows × kBn weight rows through shared memory, 4 × 4 outputs per thread, K in steps of 16.
// No tensor cores on purpose: it is the like-for-like baseline of the fp32 tiled-CSR kernels.
#include <cuda_runtime.h>

#include "kernels/cuda/spmm_cuda.hpp"

namespace sparsert::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kGemvThreads = 256;
constexpr int kGemvMaxBatch = 16;

template <int kBatch, bool kVec>
__global__ void __launch_bounds__(kGemvThreads) dense_gemv(const float* __restrict__ w, int64_t rows, int64_t cols,
                                                           int64_t ldw, const float* __restrict__ x, int64_t ldx,
                                                           int64_t batch, float* __restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x % kWarp;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (kGemvThreads / kWarp) + threadIdx.x / kWarp;
  if (r >= rows) return;
  float acc[kBatch];
#pragma unroll
  for (int b = 0; b < kBatch; ++b) acc[b] = 0.0f;
  const float* wr = w + r * ldw;
  if constexpr (kVec) {
    for (int64_t k = 4 * lane; k < cols; k += 4 * kWarp) {  // cols % 4 == 0: whole float4s
      const float4 wv = __ldg(reinterpret_cast<const float4*>(wr + k));
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        if (b < batch) {
          const float4 xv = __ldg(reinterpret_cast<const float4*>(x + b * ldx + k));
          acc[b] += wv.x * xv.x + wv.y * xv.y + wv.z * xv.z + wv.w * xv.w;
        }
      }
    }
  } else {
    for (int64_t k = lane; k < cols; k += kWarp) {
      const float wv = __ldg(wr + k);
#pragma unroll
      for (int b = 0; b < kBatch; ++b)
        if (b < batch) acc[b] += wv * __ldg(x + b * ldx + k);
    }
  }
#pragma unroll
  for (int b = 0; b < kBatch; ++b)
#pragma unroll
    for (int offset = kWarp / 2; offset > 0; offset /= 2) acc[b] += __shfl_xor_sync(0xffffffffu, acc[b], offset);
#pragma unroll
  for (int b = 0; b < kBatch; ++b)
    if (b == lane && b < batch) y[b * ldy + r] = acc[b];
}

constexpr int kBk = 16;

// Loads a (tile_rows × kBk) slab of a row-major matrix (rows `limit`, K = cols) into shared memory
// transposed, s[k][row], zero outside the matrix. vec: cols, ld multiples of 4 and base 16-byte aligned.
template <int kTileRows, int kThreads>
__device__ void load_slab(float (*s)[kTileRows + 4], const float* __restrict__ a, int64_t ld, int64_t row0,
                          int64_t limit, int64_t k0, int64_t cols, bool vec) {
  for (int i = threadIdx.x; i < kTileRows * kBk / 4; i += kThreads) {
    const int row = i / (kBk / 4), kq = (i % (kBk / 4)) * 4;
    const int64_t m = row0 + row, k = k0 + kq;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (m < limit) {
      const float* p = a + m * ld + k;
      if (vec) {
        if (k < cols) v = __ldg(reinterpret_cast<const float4*>(p));
      } else {
        if (k < cols) v.x = __ldg(p);
        if (k + 1 < cols) v.y = __ldg(p + 1);
        if (k + 2 < cols) v.z = __ldg(p + 2);
        if (k + 3 < cols) v.w = __ldg(p + 3);
      }
    }
    s[kq + 0][row] = v.x;
    s[kq + 1][row] = v.y;
    s[kq + 2][row] = v.z;
    s[kq + 3][row] = v.w;
  }
}

template <int kBm, int kBn>
__global__ void __launch_bounds__((kBm / 4) * (kBn / 4)) dense_tiled(const float* __restrict__ w, int64_t rows,
                                                                     int64_t cols, int64_t ldw,
                                                                     const float* __restrict__ x, int64_t ldx,
                                                                     int64_t batch, float* __restrict__ y,
                                                                     int64_t ldy, bool vec) {
  constexpr int kThreads = (kBm / 4) * (kBn / 4);
  // +4 floats a row keeps each row 16-byte aligned for the float4 reads below.
  __shared__ __align__(16) float xs[kBk][kBm + 4];
  __shared__ __align__(16) float ws[kBk][kBn + 4];
  const int tm = threadIdx.x / (kBn / 4), tn = threadIdx.x % (kBn / 4);
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kBm, n0 = static_cast<int64_t>(blockIdx.x) * kBn;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < cols; k0 += kBk) {
    load_slab<kBm, kThreads>(xs, x, ldx, m0, batch, k0, cols, vec);
    load_slab<kBn, kThreads>(ws, w, ldw, n0, rows, k0, cols, vec);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kBk; ++k) {
      const float4 a = *reinterpret_cast<const float4*>(&xs[k][tm * 4]);
      const float4 b = *reinterpret_cast<const float4*>(&ws[k][tn * 4]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += av[i] * bv[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + tm * 4 + i;
    if (m >= batch) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tn * 4 + j;
      if (n < rows) y[m * ldy + n] = acc[i][j];
    }
  }
}

template <int kBatch>
void launch_gemv(bool vec, const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t ldx,
                 int64_t batch, float* y, int64_t ldy, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((rows + kGemvThreads / kWarp - 1) / (kGemvThreads / kWarp)));
  if (vec) dense_gemv<kBatch, true><<<grid, kGemvThreads, 0, stream>>>(w, rows, cols, ldw, x, ldx, batch, y, ldy);
  else dense_gemv<kBatch, false><<<grid, kGemvThreads, 0, stream>>>(w, rows, cols, ldw, x, ldx, batch, y, ldy);
}

template <int kBm, int kBn>
void launch_tiled(bool vec, const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t ldx,
                  int64_t batch, float* y, int64_t ldy, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((rows + kBn - 1) / kBn), static_cast<unsigned>((batch + kBm - 1) / kBm));
  dense_tiled<kBm, kBn><<<grid, (kBm / 4) * (kBn / 4), 0, stream>>>(w, rows, cols, ldw, x, ldx, batch, y, ldy, vec);
}

}  // namespace

cudaError_t spmm_dense_f32_sm80(const float* w, int64_t rows, int64_t cols, int64_t ldw, const float* x, int64_t ldx,
                                int64_t batch, float* y, int64_t ldy, cudaStream_t stream) {
  if (rows < 0 || cols < 0 || batch < 0 || batch > int64_t{65535} * 64 || ldw < cols || ldx < cols || ldy < rows) {
    return cudaErrorInvalidValue;
  }
  if (rows == 0 || batch == 0) return cudaSuccess;
  if (w == nullptr || x == nullptr || y == nullptr) return cudaErrorInvalidValue;
  if (cols == 0) return cudaMemset2DAsync(y, sizeof(float) * ldy, 0, sizeof(float) * rows, batch, stream);
  const bool vec = cols % 4 == 0 && ldw % 4 == 0 && ldx % 4 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(x) % 16 == 0;
  // Batch ≤ 16: W streamed once by the GEMV (memory-bound: its time is W's bytes over bandwidth, and
  // a 32- or 64-row tile would compute mostly padding). Up to 64: 32-row tiles, twice the blocks of
  // 64-row ones, as a 4096-row weight gives only 64 column tiles to spread over ~130 SMs.
  if (batch <= 1) launch_gemv<1>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  else if (batch <= 4) launch_gemv<4>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  else if (batch <= 8) launch_gemv<8>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  else if (batch <= kGemvMaxBatch) launch_gemv<kGemvMaxBatch>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  else if (batch <= 64) launch_tiled<32, 64>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  else launch_tiled<64, 64>(vec, w, rows, cols, ldw, x, ldx, batch, y, ldy, stream);
  return cudaGetLastError();
}

}  // namespace sparsert::cuda
