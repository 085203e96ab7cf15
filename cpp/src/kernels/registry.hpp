// The kernel list as data, and the one place that picks a kernel for a weight and batch.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernel.hpp"

namespace sparsert {

struct KernelInfo {
  const char* name;
  Format format;
  Isa isa;
  int tile;  // see kernels.def
  SpmmFn fn;
};

/// Every line of kernels.def compiled for this architecture, in list order.
const std::vector<KernelInfo>& all_kernels();

/// Whether this CPU (and the SPARSERT_MAX_ISA cap) allows kernels of `isa`.
bool isa_available(Isa isa);

/// How the AVX-512 batch-1 CSR kernel gathers its inputs: SPARSERT_GATHER=native (vgatherdps) or
/// loads (scalar loads); unset, the kernel measures both once and takes the faster. Throws
/// InvalidArgument for another value (select_kernel calls it first, on the caller's thread).
enum class GatherChoice { kMeasure, kNative, kLoads };
GatherChoice gather_choice();

/// Whether a kernel with this tile handles `batch` columns.
bool tile_fits(int tile, int64_t batch);

/// The first kernel in list order that this CPU runs, for w's format and this batch.
const KernelInfo& select_kernel(const Weight& w, int64_t batch);

/// The scalar reference kernel of a format (tile 0, runs everywhere).
const KernelInfo& reference_kernel(Format format);

}  // namespace sparsert
