// 64-byte aligned storage for packed weights: one cache line, and the widest vector load (AVX-512).
#pragma once

#include <cstddef>
#include <vector>

#include "sparsert/export.hpp"

namespace sparsert {

inline constexpr std::size_t kAlignment = 64;

/// Memory for AlignedVector: kAlignment-aligned; from kHugePageBytes / 2 on, whole huge pages,
/// marked for the OS to back with huge pages where it has them (Linux's transparent huge pages). A
/// kernel that reads weights or planes of a few MB, evicted by the rest of the model between calls,
/// misses the TLB on every 4 KiB page: a 2:4 3 × 3 256 → 256 convolution at 14² ran 1,303 µs from
/// cold caches on 4 KiB pages, 1,010 on 2 MiB ones (862 warm).
inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
SPARSERT_API void* aligned_allocate(std::size_t bytes);
/// Frees what aligned_allocate(bytes) returned, given the same bytes.
SPARSERT_API void aligned_free(void* p, std::size_t bytes) noexcept;

template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(aligned_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { aligned_free(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

/// Contiguous, 64-byte aligned array; owns its memory.
template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace sparsert
