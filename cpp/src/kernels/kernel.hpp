// The signature every spmm kernel shares, and the packed-input convention it relies on.
//
// A kernel computes y[b, r] = act(Σ_k W[r, k] · x[k, b] + bias[r]) for the rows of weight units
// [unit_begin, unit_end) (rows; block rows for BSR) and every batch column b < batch.
// Input layout ("packed input"), one for all kernels:
//   x[k * ldx + b] for k < w.padded_cols(), b < ldx; entries with k ≥ w.cols() are zero.
//   batch == 1: ldx == 1 (x is the input vector, zero-padded to padded_cols()).
//   batch ≥ 2: ldx is a multiple of kBatchPad, lanes b ≥ batch are zero, x is 64-byte aligned,
//              so a tiled kernel may compute any lanes below ldx in whole kBatchPad-wide steps (its
//              widest tile, kernels.def's tile field, is narrowed at the last columns of ldx).
//   CSR only, batch ≥ 2, ldx == 1: overlapping rows, row k's lanes at x[k + b] (direct convolution:
//              a column index is a tap's offset in the image, graph/ops_conv.cpp); x is readable up to
//              padded_cols() + batch + kOverlapSlack floats, and lanes b ≥ batch are not stored.
//              column_block > 0: the kernel may sum the columns in blocks of that many.
//   Dense SIMD kernels only (reads_rows), batch > the kernel's tile, ld_rows > 0: x is the unpacked
//              input instead, x[b * ld_rows + k] for k < w.cols(), b < batch (ldx unused): they copy
//              it into their own tiles, which saves a transpose into the packed layout before the call.
// Output: y[b * ldy + r] for r < w.rows(); padded rows (BSR) are computed but never stored.
//   CSR and N:M only (writes_transposed), batch ≥ 2, transposed_y: y[r * ldy + b] for b < batch
//              instead (a convolution's channel-major output, each row's bias and activation
//              applied along its lanes).
// Kernels never allocate, throw or log; linear() validated everything before the call.
#pragma once

#include <cstdint>

#include "sparsert/format.hpp"
#include "sparsert/weight.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#define SPARSERT_ARCH_X86 1
#else
#define SPARSERT_ARCH_X86 0
#endif
#if defined(__aarch64__) || defined(_M_ARM64)
#define SPARSERT_ARCH_ARM64 1
#else
#define SPARSERT_ARCH_ARM64 0
#endif

namespace sparsert {

inline constexpr int64_t kBatchPad = 16;
// Floats past row padded_cols() - 1 + batch that a CSR kernel may read from overlapping rows (a
// whole last tile of vectors).
inline constexpr int64_t kOverlapSlack = 64;

// Whether packed input rows ldx floats apart fold onto a quarter of the L1 sets or fewer: a stride of
// an even number of 64-byte lines maps rows to every second set or fewer, so a block of input rows
// that fits in L1 by size still evicts itself. Two lines (ldx 32) keep half the sets, which a kernel's
// block of input rows fits in, and padding it would make packing a batch of 32 half as dear again.
inline bool ldx_folds_l1(int64_t ldx) { return ldx >= 4 * kBatchPad && (ldx / kBatchPad) % 2 == 0; }

// The leading dimension callers pack a batch ≥ 2 with: whole kBatchPad tiles, one more when that
// count would fold (ldx_folds_l1), e.g. 16 for batch ≤ 16, 32 for 32, 80 for 64.
inline int64_t packed_ldx(int64_t batch) {
  const int64_t ldx = (batch + kBatchPad - 1) / kBatchPad * kBatchPad;
  return ldx_folds_l1(ldx) ? ldx + kBatchPad : ldx;
}

struct SpmmArgs {
  const float* x;
  int64_t ldx;
  int64_t batch;
  float* y;
  int64_t ldy;
  const float* bias;  // w.rows() floats, or null
  Activation act;
  bool transposed_y = false;
  int64_t column_block = 0;  // overlapping rows: columns per block, as the caller knows its window (0: one)
  int64_t ld_rows = 0;       // > 0: x is the unpacked input, rows ld_rows floats apart (reads_rows)
};

// Whether the batched kernels of a format store transposed_y (their rows' lanes are a run of y's row).
inline bool writes_transposed(Format f) { return f == Format::kCsr || f == Format::kNM; }

using SpmmFn = void (*)(const Weight& w, const SpmmArgs& args, int64_t unit_begin, int64_t unit_end);

enum class Isa { kRef, kAvx2, kAvx512, kNeon };
const char* to_string(Isa isa);

// Whether a format's batched kernels on an ISA take the unpacked input (SpmmArgs::ld_rows) at
// batches above their tile. The reference kernel keeps the packed input, so the tests compare the two.
inline bool reads_rows(Format f, Isa isa) { return f == Format::kDense && isa != Isa::kRef; }

#define SPARSERT_KERNEL(op, format, dtype, isa, tile, name) \
  void name(const Weight& w, const SpmmArgs& args, int64_t unit_begin, int64_t unit_end);
#include "kernels/kernels.def"
#undef SPARSERT_KERNEL

}  // namespace sparsert
