/* The C++ side of the C API test (reference.cpp): writes the test model with the C++ graph API and
 * runs it with the C++ Model, so that test_c_api.c can compare the C API's results bit for bit. */
#ifndef SPARSERT_TESTS_C_REFERENCE_H_
#define SPARSERT_TESTS_C_REFERENCE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Saves mixed_dtype_graph (tests/cpp/graphs_testing.hpp) to `path`; 0 on success. */
int reference_save_model(const char* path);

/* Fills x (batch × 20 floats) and keep (batch × 20 bytes) with the inputs of seed `seed`. */
void reference_inputs(int64_t batch, uint32_t seed, float* x, uint8_t* keep);

/* Loads `path` with sparsert::Model::load, runs it on x and keep (batch × 20 each) and copies output
 * `index` into `out` (capacity bytes). Returns the output's byte count, or -1 on any error (printed
 * to stderr) or when it does not fit. */
int64_t reference_run(const char* path, const float* x, const uint8_t* keep, int64_t batch, size_t index, void* out,
                      size_t capacity);

#ifdef __cplusplus
}
#endif

#endif
