// The TensorKernels on AVX-512: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/tensor_kernels.hpp"
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

TensorKernels tensor_f32_avx512() {
  return {"tensor_f32_avx512", Isa::kAvx512, &TensorF32<Avx512>::gemm, &TensorF32<Avx512>::exp_shifted_sum,
          &transpose<Avx512>, &TensorF32<Avx512>::max_into, &TensorF32<Avx512>::copy_strided,
          &TensorF32<Avx512>::layer_norm_row};
}

}  // namespace sparsert
