#include "kernels/registry.hpp"

#include <cstdlib>
#include <cstring>

#include "sparsert/error.hpp"
#include "kernels/tensor_kernels.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {

#define SPARSERT_FORMAT_dense Format::kDense
#define SPARSERT_FORMAT_csr Format::kCsr
#define SPARSERT_FORMAT_bsr Format::kBsr
#define SPARSERT_FORMAT_nm Format::kNM
#define SPARSERT_FORMAT_csc Format::kCsc
#define SPARSERT_ISA_ref Isa::kRef
#define SPARSERT_ISA_avx2 Isa::kAvx2
#define SPARSERT_ISA_avx512 Isa::kAvx512
#define SPARSERT_ISA_neon Isa::kNeon

const char* to_string(Isa isa) {
  switch (isa) {
    case Isa::kRef: return "ref";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "?";
}

const std::vector<KernelInfo>& all_kernels() {
  static const std::vector<KernelInfo> list = {
#define SPARSERT_KERNEL(op, format, dtype, isa, tile, name) \
  KernelInfo{#name, SPARSERT_FORMAT_##format, SPARSERT_ISA_##isa, tile, &name},
#include "kernels/kernels.def"
#undef SPARSERT_KERNEL
  };
  return list;
}

namespace {

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::kRef: return true;
#if SPARSERT_ARCH_X86
    // libgcc's checks include the OS's XSAVE support for the wider registers.
    case Isa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
#endif
#if SPARSERT_ARCH_ARM64
    case Isa::kNeon: return true;  // Advanced SIMD is mandatory on AArch64.
#endif
    default: return false;
  }
}

// Rank for the SPARSERT_MAX_ISA cap: on x86 ref < avx2 < avx512, on arm ref < neon.
int isa_rank(Isa isa) {
  switch (isa) {
    case Isa::kRef: return 0;
    case Isa::kAvx2: return 1;
    case Isa::kNeon: return 1;
    case Isa::kAvx512: return 2;
  }
  return 0;
}

int max_rank_from_env() {
  const char* cap = std::getenv("SPARSERT_MAX_ISA");
  if (cap == nullptr || *cap == '\0') return 99;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512, Isa::kNeon}) {
    if (std::strcmp(cap, to_string(isa)) == 0) return isa_rank(isa);
  }
  throw InvalidArgument(std::string("reading SPARSERT_MAX_ISA: unknown value '") + cap +
                        "' (expected ref, avx2, avx512 or neon)");
}

}  // namespace

bool isa_available(Isa isa) {
  static const int max_rank = max_rank_from_env();
  return cpu_has(isa) && isa_rank(isa) <= max_rank;
}

GatherChoice gather_choice() {
  static const GatherChoice choice = [] {
    const char* env = std::getenv("SPARSERT_GATHER");
    if (env == nullptr || *env == '\0') return GatherChoice::kMeasure;
    if (std::strcmp(env, "native") == 0) return GatherChoice::kNative;
    if (std::strcmp(env, "loads") == 0) return GatherChoice::kLoads;
    throw InvalidArgument(std::string("reading SPARSERT_GATHER: unknown value '") + env +
                          "' (expected native or loads)");
  }();
  return choice;
}

bool tile_fits(int tile, int64_t batch) {
  if (tile == 0) return true;
  if (tile == 1) return batch == 1;
  return batch >= 2;
}

const KernelInfo& select_kernel(const Weight& w, int64_t batch) {
  gather_choice();  // a bad SPARSERT_GATHER throws here, on the caller's thread, not in a kernel's worker
  for (const KernelInfo& k : all_kernels()) {
    if (k.format == w.format() && isa_available(k.isa) && tile_fits(k.tile, batch)) return k;
  }
  return reference_kernel(w.format());  // unreachable: every format has a tile-0 reference
}

const std::vector<TensorKernels>& all_tensor_kernels() {
  static const std::vector<TensorKernels> list = {
#if SPARSERT_ARCH_X86
      kTensorF32Avx512, kTensorF32Avx2,
#endif
#if SPARSERT_ARCH_ARM64
      kTensorF32Neon,
#endif
      kTensorF32Ref};
  return list;
}

const TensorKernels& tensor_kernels(bool reference) {
  static const TensorKernels& best = *[] {
    for (const TensorKernels& t : all_tensor_kernels())
      if (isa_available(t.isa)) return &t;
    return &all_tensor_kernels().back();
  }();
  return reference ? all_tensor_kernels().back() : best;
}

const KernelInfo& reference_kernel(Format format) {
  for (const KernelInfo& k : all_kernels()) {
    if (k.format == format && k.isa == Isa::kRef) return k;
  }
  throw Error(std::string("selecting kernel: no reference kernel for format ") + to_string(format));
}

}  // namespace sparsert
