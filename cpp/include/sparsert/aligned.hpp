// 64-byte aligned storage for packed weights: one cache line, and the widest vector load (AVX-512).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace sparsert {

inline constexpr std::size_t kAlignment = 64;

template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kAlignment)));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(kAlignment)); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const noexcept { return false; }
};

/// Contiguous, 64-byte aligned array; owns its memory.
template <class T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

}  // namespace sparsert
