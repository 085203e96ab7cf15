// The one check for CUDA runtime calls in host code, and the error it throws. Entry points that
// launch kernels do not throw: they return the cudaError_t (status out, as sputnik's CudaSpmm does);
// everything around them (allocation, copies, synchronisation, device queries) goes through
// SPARSERT_CUDA_CHECK.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "sparsert/error.hpp"

namespace sparsert::cuda {

/// A CUDA runtime call failed. what(): "cuda call <call> at <file>:<line>: <CUDA's message>
/// (<error name>)"; code() is the cudaError_t.
class CudaError : public Error {
 public:
  CudaError(cudaError_t code, const std::string& message) : Error(message), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const char* file, int line);

}  // namespace sparsert::cuda

/// Evaluates `call` (a CUDA runtime call) once; throws sparsert::cuda::CudaError naming the call, the
/// file, the line and CUDA's message unless it returned cudaSuccess.
#define SPARSERT_CUDA_CHECK(call)                                                        \
  do {                                                                                   \
    const cudaError_t sparsert_cuda_status_ = (call);                                   \
    if (sparsert_cuda_status_ != cudaSuccess)                                            \
      ::sparsert::cuda::throw_cuda_error(sparsert_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)
