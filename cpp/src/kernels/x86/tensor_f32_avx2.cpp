// The TensorKernels on AVX2: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/tensor_kernels.hpp"
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

TensorKernels tensor_f32_avx2() {
  return {"tensor_f32_avx2", Isa::kAvx2, &TensorF32<Avx2>::gemm, &TensorF32<Avx2>::exp_shifted_sum,
          &transpose<Avx2>, &TensorF32<Avx2>::max_into, &TensorF32<Avx2>::copy_strided,
          &TensorF32<Avx2>::layer_norm_row};
}

}  // namespace sparsert
