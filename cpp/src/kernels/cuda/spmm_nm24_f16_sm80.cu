// 2:4 SpMM on the sparse tensor cores: y = x·Wᵀ with mma.sp m16n8k16, f16 or bf16 operands, fp32
// accumulation (layout: formats/nm24_mma.hpp, which cites the PTX ISA sections it follows; contract:
// spmm_cuda.hpp). A = the 16 × 16 weight tile (compressed 16 × 8 plus metadata), B = 16 input columns
// × 8 batch columns, D = 16 weight rows × 8 batch columns. One warp per (16-row tile, 8-column batch
// tile), K in steps of 16: per step one 8-byte load of A's registers (a warp reads its tile as one
// contiguous 256 bytes), one 4-byte metadata load, four input floats rounded to the operand type.
// Correctness first: no shared memory, no ldmatrix, one n8 tile per warp; it exists to prove the
// layout on hardware, and tuning it is left.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstring>

#include "kernels/cuda/spmm_cuda.hpp"

namespace sparsert::cuda {
namespace {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;

template <bool kBf16>
__device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
  uint32_t bits;
  if constexpr (kBf16) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
    memcpy(&bits, &h, sizeof bits);
  } else {
    const __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&bits, &h, sizeof bits);
  }
  return bits;
}

// d += A·B for one m16n8k16 tile; sparsity selector 0 (every lane of a group holds the group's word).
// ::ordered_metadata is the form PTX ISA 8.5+ documents for sm_80 and later (CUDA 12.5+); our codes
// (i0 < i1) are valid for the older plain form too.
template <bool kBf16>
__device__ __forceinline__ void mma_sp_m16n8k16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1,
                                                uint32_t e) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#if (__CUDACC_VER_MAJOR__ > 12) || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 5)
#define SPARSERT_MMA_SP "mma.sp::ordered_metadata.sync.aligned.m16n8k16.row.col.f32"
#else
#define SPARSERT_MMA_SP "mma.sp.sync.aligned.m16n8k16.row.col.f32"
#endif
  if constexpr (kBf16) {
    asm volatile(SPARSERT_MMA_SP ".bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6, %7}, {%0, %1, %2, %3}, %8, 0x0;\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(b0), "r"(b1), "r"(e));
  } else {
    asm volatile(SPARSERT_MMA_SP ".f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6, %7}, {%0, %1, %2, %3}, %8, 0x0;\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(b0), "r"(b1), "r"(e));
  }
#undef SPARSERT_MMA_SP
#else
  __trap();  // built for an architecture without sparse tensor cores; the entry point never gets here
#endif
}

template <bool kBf16>
__global__ void __launch_bounds__(kWarp * kWarpsPerBlock) nm24_mma_kernel(Nm24View w, const float* __restrict__ x,
                                                                          int64_t ldx, int64_t batch,
                                                                          float* __restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x % kWarp;
  const int64_t rt = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  if (rt >= w.row_tiles) return;  // uniform per warp: mma.sync needs the whole warp, and it all leaves
  const int g = lane >> 2, q = lane & 3;  // groupID, threadID_in_group
  const int64_t n0 = static_cast<int64_t>(blockIdx.y) * 8;
  const int64_t n = n0 + g;  // the batch column this lane feeds to B (B's column = groupID)
  const bool n_ok = n < batch;
  const float* xn = x + (n_ok ? n : 0) * ldx;
  const uint2* a_tiles = reinterpret_cast<const uint2*>(w.values) + rt * w.k_tiles * kWarp;  // 128 uint16 a tile
  const uint32_t* e_tiles = w.meta + rt * w.k_tiles * 8;

  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int64_t kt = 0; kt < w.k_tiles; ++kt) {
    const uint2 a = __ldg(a_tiles + kt * kWarp + lane);
    const uint32_t e = __ldg(e_tiles + kt * 8 + g);
    // B fragment: b0 = rows 2q, 2q+1 and b1 = rows 2q+8, 2q+9 of the 16 × 8 tile, column g;
    // B[k][n] = x[n][k]. Columns past cols read as zero: the weight's padding is zero, but 0·NaN is not.
    const int64_t k = kt * 16 + 2 * q;
    const float x0 = (n_ok && k < w.cols) ? __ldg(xn + k) : 0.0f;
    const float x1 = (n_ok && k + 1 < w.cols) ? __ldg(xn + k + 1) : 0.0f;
    const float x2 = (n_ok && k + 8 < w.cols) ? __ldg(xn + k + 8) : 0.0f;
    const float x3 = (n_ok && k + 9 < w.cols) ? __ldg(xn + k + 9) : 0.0f;
    const uint32_t b0 = pack_pair<kBf16>(x0, x1), b1 = pack_pair<kBf16>(x2, x3);
    __syncwarp();  // the loads above may diverge; mma.sp.sync.aligned needs the warp converged
    mma_sp_m16n8k16<kBf16>(d, a.x, a.y, b0, b1, e);
  }
  // D fragment: d0, d1 = row g, columns 2q, 2q+1; d2, d3 = row g + 8, the same columns.
  const int64_t r_lo = rt * 16 + g, r_hi = r_lo + 8;
  const int64_t c0 = n0 + 2 * q, c1 = c0 + 1;
  if (c0 < batch) {
    if (r_lo < w.rows) y[c0 * ldy + r_lo] = d[0];
    if (r_hi < w.rows) y[c0 * ldy + r_hi] = d[2];
  }
  if (c1 < batch) {
    if (r_lo < w.rows) y[c1 * ldy + r_lo] = d[1];
    if (r_hi < w.rows) y[c1 * ldy + r_hi] = d[3];
  }
}

cudaError_t launch(bool bf16, const Nm24View& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy,
                   cudaStream_t stream) {
  if (w.type != (bf16 ? Half16::kBF16 : Half16::kF16) || w.rows < 0 || w.cols < 0 || batch < 0 ||
      batch > int64_t{65535} * 8 || ldx < w.cols || ldy < w.rows || w.row_tiles != (w.rows + 15) / 16 ||
      w.k_tiles != (w.cols + 15) / 16 || reinterpret_cast<uintptr_t>(w.values) % 8 != 0) {
    return cudaErrorInvalidValue;
  }
  if (w.rows == 0 || batch == 0) return cudaSuccess;
  if (x == nullptr || y == nullptr || w.values == nullptr || w.meta == nullptr) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>((w.row_tiles + kWarpsPerBlock - 1) / kWarpsPerBlock),
                  static_cast<unsigned>((batch + 7) / 8));
  if (bf16) nm24_mma_kernel<true><<<grid, kWarp * kWarpsPerBlock, 0, stream>>>(w, x, ldx, batch, y, ldy);
  else nm24_mma_kernel<false><<<grid, kWarp * kWarpsPerBlock, 0, stream>>>(w, x, ldx, batch, y, ldy);
  return cudaGetLastError();
}

}  // namespace

cudaError_t spmm_nm24_f16_sm80(const Nm24View& w, const float* x, int64_t ldx, int64_t batch, float* y, int64_t ldy,
                               cudaStream_t stream) {
  return launch(false, w, x, ldx, batch, y, ldy, stream);
}

cudaError_t spmm_nm24_bf16_sm80(const Nm24View& w, const float* x, int64_t ldx, int64_t batch, float* y,
                                int64_t ldy, cudaStream_t stream) {
  return launch(true, w, x, ldx, batch, y, ldy, stream);
}

}  // namespace sparsert::cuda
