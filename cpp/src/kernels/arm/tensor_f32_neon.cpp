// The TensorKernels on NEON: the shared bodies of kernels/simd/tensor_f32.hpp.
#include "kernels/arm/vec_neon.hpp"
#include "kernels/simd/tensor_f32.hpp"

namespace sparsert {

constexpr TensorKernels kTensorF32Neon = tensor_f32_kernels<Neon>("tensor_f32_neon", Isa::kNeon);

}  // namespace sparsert
