// The TensorKernels on AVX-512: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/x86/vec_avx512.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

constexpr TensorKernels kTensorF32Avx512 = tensor_f32_kernels<Avx512>("tensor_f32_avx512", Isa::kAvx512);

}  // namespace sparsert
