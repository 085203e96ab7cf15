// aligned_allocate / aligned_free (sparsert/aligned.hpp).
#include "sparsert/aligned.hpp"

#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace sparsert {
namespace {

bool huge(std::size_t bytes) { return bytes >= kHugePageBytes / 2; }

}  // namespace

void* aligned_allocate(std::size_t bytes) {
  if (!huge(bytes)) return ::operator new(bytes, std::align_val_t(kAlignment));
  const std::size_t size = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = ::operator new(size, std::align_val_t(kHugePageBytes));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, size, MADV_HUGEPAGE);  // advice only: without huge pages the memory is as before
#endif
  return p;
}

void aligned_free(void* p, std::size_t bytes) noexcept {
  ::operator delete(p, std::align_val_t(huge(bytes) ? kHugePageBytes : kAlignment));
}

}  // namespace sparsert
