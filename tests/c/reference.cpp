// The C++ oracle of test_c_api.c (see reference.h).
#include "reference.h"

#include <cstdio>
#include <cstring>
#include <exception>

#include "graphs_testing.hpp"

extern "C" {

int reference_save_model(const char* path) {
  try {
    sparsert::Model(sparsert::test::mixed_dtype_graph()).save(path);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reference_save_model: %s\n", e.what());
    return 1;
  }
}

void reference_inputs(int64_t batch, uint32_t seed, float* x, uint8_t* keep) {
  const auto in = sparsert::test::mixed_inputs(batch, seed);
  std::memcpy(x, in.x.data(), in.x.size() * sizeof(float));
  std::memcpy(keep, in.keep.data(), in.keep.size());
}

int64_t reference_run(const char* path, const float* x, const uint8_t* keep, int64_t batch, size_t index, void* out,
                      size_t capacity) {
  try {
    const sparsert::Model model = sparsert::Model::load(path);
    const auto outputs = model.run({sparsert::TensorView{sparsert::DType::kF32, {batch, 20}, x},
                                    sparsert::TensorView{sparsert::DType::kBool, {batch, 20}, keep}});
    const auto& t = outputs.at(index);
    if (static_cast<size_t>(t.nbytes()) > capacity) return -1;
    if (t.nbytes() > 0) std::memcpy(out, t.data(), static_cast<size_t>(t.nbytes()));
    return t.nbytes();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reference_run: %s\n", e.what());
    return -1;
  }
}

}  // extern "C"
