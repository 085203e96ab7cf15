// The TensorKernels on AVX2: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/x86/vec_avx2.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

constexpr TensorKernels kTensorF32Avx2 = tensor_f32_kernels<Avx2>("tensor_f32_avx2", Isa::kAvx2);

}  // namespace sparsert
