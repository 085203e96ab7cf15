// y = act(x · Wᵀ + bias) for every weight format: the one kernel entry point of the core.
#pragma once

#include <cstdint>
#include <string>

#include "sparsert/export.hpp"
#include "sparsert/format.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

struct LinearOptions {
  Activation activation = Activation::kNone;
  /// Threads for this call; 0 takes the value of set_num_threads().
  int num_threads = 0;
};

/// Computes y = act(x · Wᵀ + bias).
/// x: batch × w.cols() floats, row-major, contiguous; y: batch × w.rows() floats, row-major,
/// written entirely; bias: w.rows() floats or null. The caller owns all three; x and y must not
/// overlap. Stored weight entries take part in IEEE arithmetic (NaN/Inf in x propagate through
/// them); pruned entries are absent, so they do not. Safe to call from several threads at once.
/// Throws InvalidArgument for a negative batch or null pointers with non-empty sizes.
SPARSERT_API void linear(const Weight& w, const float* x, int64_t batch, const float* bias, float* y,
                         const LinearOptions& options = {});

/// Name of the kernel linear() runs for this weight and batch, e.g. "spmm_csr_f32_avx2_32".
SPARSERT_API std::string linear_kernel_name(const Weight& w, int64_t batch);

/// Sets the default thread count for linear(); n ≤ 0 restores the default (physical cores).
SPARSERT_API void set_num_threads(int n);
SPARSERT_API int get_num_threads();
/// Physical cores of this machine (hyper-threads not counted), at least 1.
SPARSERT_API int physical_core_count();

/// Instruction sets usable on this CPU, best first, e.g. "avx2 ref" ("neon ref" on aarch64).
/// The environment variable SPARSERT_MAX_ISA (ref, avx2, avx512, neon) caps the choice.
SPARSERT_API std::string available_isas();

}  // namespace sparsert
