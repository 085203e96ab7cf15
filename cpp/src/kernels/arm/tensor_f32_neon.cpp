// The TensorKernels on NEON: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/tensor_kernels.hpp"
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

TensorKernels tensor_f32_neon() {
  return {"tensor_f32_neon", Isa::kNeon, &TensorF32<Neon>::gemm, &TensorF32<Neon>::exp_shifted_sum,
          &transpose<Neon>, &TensorF32<Neon>::max_into, &TensorF32<Neon>::copy_strided,
          &TensorF32<Neon>::layer_norm_row};
}

}  // namespace sparsert
