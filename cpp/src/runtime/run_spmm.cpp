#include "runtime/run_spmm.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

#include "kernels/tensor_kernels.hpp"
#include "runtime/thread_pool.hpp"
#include "sparsert/aligned.hpp"

namespace sparsert {

namespace {

// Below this many multiply-adds per thread, waking another thread costs more than it saves
// (a wake-up is a few µs; 32K FMAs take ~5 µs on one AVX2 core).
constexpr int64_t kMinFmaPerThread = 32 * 1024;
// A batch-1 CSR non-zero counts as this many multiply-adds: its input is gathered (~1 cycle each on
// Zen 4, 16K of them ~5 µs, as 32K vector multiply-adds). 768² at 10% (59K) on Zen 4: 15.2 µs on one
// thread, 7.9-11.2 on two (linear_timing min); 512×768 10.1 → 5.9-8.3.
constexpr int64_t kGatheredFmas = 2;
// Per-unit cost, in non-zeros, of the row loop and epilogue: keeps empty rows from being free.
constexpr int64_t kUnitOverhead = 8;

// Packs x (batch × cols, row-major) into x_packed[k * ldx + b] for k in [k_begin, k_end),
// zero-filling lanes past batch and rows past cols.
void pack_input(const float* x, int64_t batch, int64_t cols, int64_t ldx, float* x_packed, int64_t k_begin,
                int64_t k_end) {
  const int64_t k_stored = std::min(k_end, cols);
  if (k_begin < k_stored)
    tensor_kernels().transpose(x + k_begin, cols, x_packed + k_begin * ldx, ldx, batch, k_stored - k_begin);
  for (int64_t k = k_begin; k < k_end; ++k) {
    const int64_t from = k < cols ? batch : 0;
    std::memset(x_packed + k * ldx + from, 0, sizeof(float) * (ldx - from));
  }
}

// First unit u with work(u) ≥ target, where work(u) = batch·nnz_before(u) + overhead·u.
int64_t split_point(const Weight& w, int64_t batch, int64_t target) {
  int64_t lo = 0, hi = w.row_units();
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (batch * w.nnz_before(mid) + kUnitOverhead * batch * mid < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Threads worth waking for batch · nnz multiply-adds over w's units.
int useful_threads(const Weight& w, int64_t batch, int threads) {
  const int64_t units = w.row_units();
  const int64_t per_nonzero = batch == 1 && w.format() == Format::kCsr ? kGatheredFmas : 1;
  const int64_t fma = per_nonzero * batch * std::max<int64_t>(w.nnz_before(units), 1);
  const int64_t useful = std::max<int64_t>(1, fma / kMinFmaPerThread);
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({threads, units, useful})));
}

// The kernel over w's units, split between threads by their share of the work.
void run_units(const KernelInfo& k, const Weight& w, const SpmmArgs& args, int threads) {
  const int64_t units = w.row_units();
  const int nthreads = useful_threads(w, args.batch, threads);
  const int64_t total = args.batch * (w.nnz_before(units) + kUnitOverhead * units);
  auto part = [&](int t) {
    const int64_t begin = t == 0 ? 0 : split_point(w, args.batch, total * t / nthreads);
    const int64_t end = t == nthreads - 1 ? units : split_point(w, args.batch, total * (t + 1) / nthreads);
    if (begin < end) k.fn(w, args, begin, end);
  };
  ThreadPool::instance().run(nthreads, std::cref(part));  // by reference: std::function then does not allocate
}

}  // namespace

void run_spmm_packed(const KernelInfo& k, const Weight& w, const float* x_packed, int64_t ldx, int64_t batch,
                     const float* bias, float* y, Activation act, int threads, const PackedLayout& layout) {
  const int64_t units = w.row_units();
  if (batch == 0 || units == 0) return;
  // A transposed output of one column one float apart is the plain output vector.
  const int64_t ldy_t = batch == 1 && layout.ldy_t == 1 ? 0 : layout.ldy_t;
  // One column into a transposed output: the batch-1 kernel writes it as a vector, transposed after.
  const bool one_column = batch == 1 && ldy_t > 0;
  // A transposed output the kernels do not store themselves (only batched CSR and N:M kernels do):
  // batch × rows into a buffer, transposed into y after the call.
  const bool transpose_after = ldy_t > 0 && (one_column || !writes_transposed(w.format()));
  thread_local AlignedVector<float> rows_first;
  if (transpose_after && static_cast<int64_t>(rows_first.size()) < batch * w.rows()) {
    rows_first.resize(batch * w.rows());
  }
  float* const out = transpose_after ? rows_first.data() : y;
  if (one_column) {
    thread_local AlignedVector<float> column;
    const int64_t kp = w.padded_cols();
    if (static_cast<int64_t>(column.size()) < kp) column.resize(kp);
    for (int64_t c = 0; c < kp; ++c) column[c] = x_packed[c * ldx];  // rows ≥ cols are zero already
    run_spmm_packed(k, w, column.data(), 1, 1, bias, out, act, threads);
  } else {
    SpmmArgs args{x_packed, ldx, batch, out, w.rows(), bias, act};
    args.column_block = layout.column_block;
    if (ldy_t > 0 && !transpose_after) {
      args.ldy = ldy_t;
      args.transposed_y = true;
    }
    run_units(k, w, args, threads);
  }
  if (transpose_after) tensor_kernels().transpose(rows_first.data(), w.rows(), y, ldy_t, batch, w.rows());
}

void run_spmm(const KernelInfo& k, const Weight& w, const float* x, int64_t batch, const float* bias, float* y,
              Activation act, int threads) {
  if (batch == 0 || w.row_units() == 0) return;

  // The packed input lives per calling thread and only grows, so steady-state calls do not allocate.
  thread_local AlignedVector<float> packed;
  const int64_t kp = w.padded_cols();
  if (batch == 1) {
    if (kp == w.cols()) return run_spmm_packed(k, w, x, 1, 1, bias, y, act, threads);
    if (static_cast<int64_t>(packed.size()) < kp) packed.resize(kp);
    std::copy(x, x + w.cols(), packed.begin());
    std::fill(packed.begin() + w.cols(), packed.begin() + kp, 0.0f);
    return run_spmm_packed(k, w, packed.data(), 1, 1, bias, y, act, threads);
  }
  if (reads_rows(k.format, k.isa) && batch > k.tile) {  // the kernel tiles the rows itself
    SpmmArgs args{x, 0, batch, y, w.rows(), bias, act};
    args.ld_rows = w.cols();
    return run_units(k, w, args, threads);
  }
  const int64_t ldx = packed_ldx(batch);
  if (static_cast<int64_t>(packed.size()) < kp * ldx) packed.resize(kp * ldx);
  float* dst = packed.data();
  const int nthreads = useful_threads(w, batch, threads);
  auto pack = [&](int t) { pack_input(x, batch, w.cols(), ldx, dst, kp * t / nthreads, kp * (t + 1) / nthreads); };
  ThreadPool::instance().run(nthreads, std::cref(pack));
  run_spmm_packed(k, w, dst, ldx, batch, bias, y, act, threads);
}

}  // namespace sparsert
