// Owning device memory for tests, benches and (later) the executor: cudaMalloc'd arrays, and the
// device copies of the host-packed GPU layouts. Every CUDA call goes through SPARSERT_CUDA_CHECK.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>
#include <vector>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/spmm_cuda.hpp"

namespace sparsert::cuda {

/// `size` elements of T in device memory (256-byte aligned, uninitialised); move-only, freed on
/// destruction. Throws CudaError when allocation or a copy fails.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t size) : size_(size) {
    if (size_ > 0) SPARSERT_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), size_ * sizeof(T)));
  }
  DeviceArray(const T* host, size_t size) : DeviceArray(size) { upload(host, size); }
  template <class A>
  explicit DeviceArray(const std::vector<T, A>& host) : DeviceArray(host.data(), host.size()) {}
  DeviceArray(DeviceArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (data_) cudaFree(data_);  // a destructor cannot throw; a failed free leaks nothing we can reclaim
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }

  void upload(const T* host, size_t count) {
    if (count > 0) SPARSERT_CUDA_CHECK(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> out(size_);
    if (size_ > 0) SPARSERT_CUDA_CHECK(cudaMemcpy(out.data(), data_, bytes(), cudaMemcpyDeviceToHost));
    return out;
  }

 private:
  T* data_ = nullptr;
  size_t size_ = 0;
};

/// A TcsrMatrix copied to the device; `view` (sizes and the arrays' device pointers, which moving the
/// arrays keeps) is what spmm_tcsr_f32_sm80 takes.
struct TcsrDevice {
  DeviceArray<uint32_t> seg_ptr;
  DeviceArray<uint16_t> col_idx;
  DeviceArray<float> values;
  TcsrView view;
};
TcsrDevice upload(const TcsrMatrix& m);

/// An Nm24MmaMatrix copied to the device; `view` is what spmm_nm24_*_sm80 take.
struct Nm24Device {
  DeviceArray<uint16_t> values;
  DeviceArray<uint32_t> meta;
  Nm24View view;
};
Nm24Device upload(const Nm24MmaMatrix& m);

/// Devices the runtime sees: their count, or 0 with `why` set to CUDA's message (no driver, no
/// device). Clears the error so later calls start clean. Never throws.
int device_count(std::string* why = nullptr);

}  // namespace sparsert::cuda
