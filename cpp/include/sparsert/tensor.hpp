// Tensors that cross the model API: a dtype, a shape and row-major contiguous data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsert/shared_array.hpp"
#include "sparsert/export.hpp"

namespace sparsert {

/// Element types a model's tensors may have: activations and weights are f32; token ids and other
/// indices are i64; masks are bool, one byte per element holding 0 or 1 (as numpy's and torch's
/// bool). Spellings: "f32", "i64", "bool". The values are stored in model files: append only.
enum class DType : uint8_t { kF32 = 0, kI64 = 1, kBool = 2 };
/// Every value from 0 to this one is a DType.
inline constexpr DType kLastDType = DType::kBool;

SPARSERT_API const char* to_string(DType dtype);
/// Parses a spelling above; throws InvalidArgument listing the choices when unknown.
SPARSERT_API DType parse_dtype(const std::string& name);
/// Bytes per element: 4, 8 or 1.
inline int64_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kI64: return 8;
    case DType::kBool: return 1;
  }
  return 0;
}

using Shape = std::vector<int64_t>;

/// Product of the dimensions (1 for a 0-d shape).
SPARSERT_API int64_t numel(const Shape& shape);
/// "(2, 3, 4)"; "()" for a 0-d shape.
SPARSERT_API std::string shape_string(const Shape& shape);

/// A non-owning view of row-major contiguous memory. The caller keeps `data` alive while it is used.
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;
};

/// A 64-byte aligned, row-major tensor that owns its data, or reads shared bytes in place (a constant
/// of a mapped model file) until written: the first non-const data() copies them.
class SPARSERT_API Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Shape shape);  // zero-filled
  /// Over `bytes` (numel × dtype size of them; throws InvalidArgument otherwise), without copying.
  Tensor(DType dtype, Shape shape, SharedArray<unsigned char> bytes);

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return sparsert::numel(shape_); }
  int64_t nbytes() const { return numel() * dtype_size(dtype_); }
  void* data();
  const void* data() const { return shared_ ? bytes_.data() : storage_.data(); }
  template <class T>
  T* data_as() { return static_cast<T*>(data()); }
  template <class T>
  const T* data_as() const { return static_cast<const T*>(data()); }
  TensorView view() const { return {dtype_, shape_, data()}; }

 private:
  DType dtype_ = DType::kF32;
  Shape shape_;
  AlignedVector<unsigned char> storage_;
  SharedArray<unsigned char> bytes_;  // read in place while shared_
  bool shared_ = false;
};

}  // namespace sparsert
