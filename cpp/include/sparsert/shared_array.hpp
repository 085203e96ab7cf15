// Read-only arrays of packed weights and constants: owned, or borrowed from a mapped model file so
// that loading a model does not copy its weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <utility>

#include "sparsert/aligned.hpp"

namespace sparsert {

/// An immutable array that either owns its elements or reads them from memory that `keep_alive`
/// keeps valid (a mapped file). Copies share the elements.
template <class T>
class SharedArray {
 public:
  SharedArray() = default;
  SharedArray(AlignedVector<T> owned) {  // NOLINT: implicit, the common way to build one
    auto v = std::make_shared<const AlignedVector<T>>(std::move(owned));
    data_ = v->data();
    size_ = v->size();
    keep_alive_ = std::move(v);
  }
  SharedArray(std::initializer_list<T> items) : SharedArray(AlignedVector<T>(items)) {}
  /// Borrows `size` elements at `data`, valid while `keep_alive` lives.
  SharedArray(const T* data, std::size_t size, std::shared_ptr<const void> keep_alive)
      : keep_alive_(std::move(keep_alive)), data_(data), size_(size) {}

  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](std::size_t i) const { return data_[i]; }
  const T& back() const { return data_[size_ - 1]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  std::shared_ptr<const void> keep_alive_;
  const T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// The row or column indices of a compressed format (CSR, CSC, BSR), 16-bit where the indexed
/// dimension allows it (≤ 65536), 32-bit otherwise; `bits` says which array holds them.
struct IndexArray {
  SharedArray<uint16_t> u16;
  SharedArray<uint32_t> u32;
  int bits = 32;

  IndexArray() = default;
  IndexArray(SharedArray<uint16_t> indices) : u16(std::move(indices)), bits(16) {}  // NOLINT: implicit
  IndexArray(SharedArray<uint32_t> indices) : u32(std::move(indices)), bits(32) {}  // NOLINT: implicit
  IndexArray(AlignedVector<uint32_t> indices) : IndexArray(SharedArray<uint32_t>(std::move(indices))) {}  // NOLINT
  IndexArray(std::initializer_list<uint32_t> indices) : IndexArray(AlignedVector<uint32_t>(indices)) {}

  std::size_t size() const { return bits == 16 ? u16.size() : u32.size(); }
  uint32_t operator[](std::size_t i) const { return bits == 16 ? u16[i] : u32[i]; }
  int64_t nbytes() const { return static_cast<int64_t>(size()) * (bits / 8); }
  /// The same indices at `to_bits` (16 or 32): this array when it has that width, else a copy.
  /// Narrowing assumes every index fits in 16 bits (checked by the caller).
  IndexArray with_bits(int to_bits) const {
    if (to_bits == bits) return *this;
    if (to_bits == 16) {
      AlignedVector<uint16_t> out(u32.begin(), u32.end());
      return IndexArray(SharedArray<uint16_t>(std::move(out)));
    }
    return IndexArray(AlignedVector<uint32_t>(u16.begin(), u16.end()));
  }
};

}  // namespace sparsert
