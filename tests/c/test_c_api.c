/* The C API (sparsert.h), compiled as C99: a model written with the C++ API loads from a path and
 * from memory, its inputs and outputs read as declared, and its runs equal the C++ Model's bit for
 * bit at several batches; every error returns its status and a last-error message naming what was
 * expected, leaves the output arguments alone, and stays on the thread that got it. */
#define _POSIX_C_SOURCE 200809L /* getpid, pthreads under -std=c99 */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sparsert.h>

#include "reference.h"

static int g_failures = 0;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                     \
    }                                                                   \
  } while (0)

/* A call expected to fail with `status` and a last error containing `text`. */
#define CHECK_FAILS(call, status, text)                                                                   \
  do {                                                                                                    \
    const sparsert_status got_ = (call);                                                                  \
    if (got_ != (status) || strstr(sparsert_last_error(), (text)) == NULL) {                              \
      fprintf(stderr, "%s:%d: %s\n  returned %s, last error \"%s\"\n  expected %s and a message containing \"%s\"\n", \
              __FILE__, __LINE__, #call, sparsert_status_string(got_), sparsert_last_error(),             \
              sparsert_status_string(status), (text));                                                    \
      ++g_failures;                                                                                       \
    }                                                                                                     \
  } while (0)

#define CHECK_OK(call)                                                                                   \
  do {                                                                                                   \
    const sparsert_status got_ = (call);                                                                 \
    if (got_ != SPARSERT_STATUS_OK) {                                                                    \
      fprintf(stderr, "%s:%d: %s returned %s: %s\n", __FILE__, __LINE__, #call, sparsert_status_string(got_), \
              sparsert_last_error());                                                                    \
      ++g_failures;                                                                                      \
    }                                                                                                    \
  } while (0)

enum { kFeatures = 20, kHidden = 37, kMaxBatch = 8 };

static char g_path[512];

static unsigned char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* bytes = malloc(*size);
  if (bytes != NULL && fread(bytes, 1, *size, f) != *size) {
    free(bytes);
    bytes = NULL;
  }
  fclose(f);
  return bytes;
}

static void expect_value(const sparsert_model* model, int input, size_t index, const char* name, sparsert_dtype dtype,
                         int64_t dim1) {
  sparsert_value_info info;
  if (input) {
    CHECK_OK(sparsert_model_input(model, index, &info));
  } else {
    CHECK_OK(sparsert_model_output(model, index, &info));
  }
  CHECK(strcmp(info.name, name) == 0);
  CHECK(info.dtype == dtype);
  CHECK(info.rank == 2);
  if (info.rank == 2) {
    CHECK(info.shape[0] == -1);
    CHECK(info.shape[1] == dim1);
  }
}

/* Runs `model` at `batch` and compares every output with the C++ Model's run of g_path. */
static void expect_same_as_cpp(const sparsert_model* model, int64_t batch, uint32_t seed) {
  static float x[kMaxBatch * kFeatures];
  static uint8_t keep[kMaxBatch * kFeatures];
  static unsigned char want[kMaxBatch * kHidden * 8];
  reference_inputs(batch, seed, x, keep);
  const int64_t shape[2] = {batch, kFeatures};
  const sparsert_tensor inputs[2] = {{SPARSERT_DTYPE_F32, 2, shape, x}, {SPARSERT_DTYPE_BOOL, 2, shape, keep}};
  sparsert_result* result = NULL;
  CHECK_OK(sparsert_model_run(model, inputs, 2, &result));
  if (result == NULL) return;
  size_t count = 0;
  CHECK_OK(sparsert_result_count(result, &count));
  CHECK(count == 3);
  const sparsert_dtype dtypes[3] = {SPARSERT_DTYPE_F32, SPARSERT_DTYPE_F32, SPARSERT_DTYPE_I64};
  const int64_t widths[3] = {kFeatures, kHidden, kHidden};
  const size_t sizes[3] = {4, 4, 8};
  for (size_t i = 0; i < count && i < 3; ++i) {
    sparsert_tensor out;
    CHECK_OK(sparsert_result_output(result, i, &out));
    CHECK(out.dtype == dtypes[i]);
    CHECK(out.rank == 2 && out.shape[0] == batch && out.shape[1] == widths[i]);
    const int64_t bytes = reference_run(g_path, x, keep, batch, i, want, sizeof(want));
    CHECK(bytes == batch * widths[i] * (int64_t)sizes[i]);
    if (bytes > 0 && memcmp(out.data, want, (size_t)bytes) != 0) {
      fprintf(stderr, "output %zu at batch %lld differs from the C++ run\n", i, (long long)batch);
      ++g_failures;
    }
  }
  sparsert_result_free(result);
}

static void test_runs_match_cpp(void) {
  sparsert_model* model = NULL;
  CHECK_OK(sparsert_model_load(g_path, 0, &model));
  if (model == NULL) return;
  size_t count = 0;
  CHECK_OK(sparsert_model_input_count(model, &count));
  CHECK(count == 2);
  expect_value(model, 1, 0, "x", SPARSERT_DTYPE_F32, kFeatures);
  expect_value(model, 1, 1, "keep", SPARSERT_DTYPE_BOOL, kFeatures);
  CHECK_OK(sparsert_model_output_count(model, &count));
  CHECK(count == 3);
  expect_value(model, 0, 0, "p", SPARSERT_DTYPE_F32, kFeatures);
  expect_value(model, 0, 1, "h", SPARSERT_DTYPE_F32, kHidden);
  expect_value(model, 0, 2, "q", SPARSERT_DTYPE_I64, kHidden);
  const int64_t batches[4] = {1, 5, 8, 1};
  for (int i = 0; i < 4; ++i) expect_same_as_cpp(model, batches[i], (uint32_t)(10 + i));

  /* A result outlives its model. */
  float x[kFeatures] = {0};
  uint8_t keep[kFeatures] = {0};
  const int64_t shape[2] = {1, kFeatures};
  const sparsert_tensor inputs[2] = {{SPARSERT_DTYPE_F32, 2, shape, x}, {SPARSERT_DTYPE_BOOL, 2, shape, keep}};
  sparsert_result* result = NULL;
  CHECK_OK(sparsert_model_run(model, inputs, 2, &result));
  sparsert_model_free(model);
  sparsert_tensor out;
  CHECK_OK(sparsert_result_output(result, 0, &out));
  const float* p = out.data;
  float sum = 0;
  for (int i = 0; i < kFeatures; ++i) sum += p[i];
  CHECK(sum > 0.999f && sum < 1.001f); /* a softmax of x where keep is 0 */
  sparsert_result_free(result);

  /* One thread per run, set process-wide. */
  sparsert_set_num_threads(1);
  CHECK(sparsert_get_num_threads() == 1);
  CHECK_OK(sparsert_model_load(g_path, 0, &model));
  expect_same_as_cpp(model, 3, 7);
  sparsert_model_free(model);
  sparsert_set_num_threads(0);
  CHECK(sparsert_get_num_threads() >= 1);
  CHECK_OK(sparsert_model_load(g_path, 2, &model));
  expect_same_as_cpp(model, 3, 7);
  sparsert_model_free(model);
}

/* The model file's bytes `offset` bytes into a new 64-byte aligned block (*block, to free), or NULL. */
static unsigned char* model_bytes_at(size_t offset, size_t* size, void** block) {
  unsigned char* bytes = read_file(g_path, size);
  *block = NULL;
  CHECK(bytes != NULL && posix_memalign(block, 64, *size + offset) == 0);
  if (bytes == NULL || *block == NULL) {
    free(bytes);
    return NULL;
  }
  memcpy((unsigned char*)*block + offset, bytes, *size);
  free(bytes);
  return (unsigned char*)*block + offset;
}

static void test_buffer_loads_match_cpp(void) {
  size_t size = 0;
  void* block = NULL;
  sparsert_model* model = NULL;
  /* At an odd address: load_buffer needs no alignment, and keeps nothing of the caller's bytes. */
  unsigned char* odd = model_bytes_at(1, &size, &block);
  if (odd == NULL) return;
  CHECK_OK(sparsert_model_load_buffer(odd, size, 0, &model));
  memset(block, 0, size + 1);
  free(block);
  if (model != NULL) expect_same_as_cpp(model, 4, 3);
  sparsert_model_free(model);

  /* 64-byte aligned: load_buffer_in_place reads the weights there, so the bytes outlive the model. */
  unsigned char* aligned = model_bytes_at(0, &size, &block);
  if (aligned == NULL) return;
  model = NULL;
  CHECK_OK(sparsert_model_load_buffer_in_place(aligned, size, 0, &model));
  if (model != NULL) expect_same_as_cpp(model, 4, 3);
  sparsert_model_free(model);
  CHECK_FAILS(sparsert_model_load_buffer_in_place(NULL, 100, 0, &model), SPARSERT_STATUS_INVALID_ARGUMENT,
              "the data pointer is null");
  free(block);
}

static void test_load_errors(void) {
  sparsert_model* const sentinel = (sparsert_model*)&g_failures; /* never dereferenced */
  sparsert_model* model = sentinel;
  char missing[600];
  snprintf(missing, sizeof(missing), "%s.missing", g_path);
  CHECK_FAILS(sparsert_model_load(missing, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR, "cannot open the file");
  CHECK(strstr(sparsert_last_error(), ".missing'") != NULL);
  CHECK(model == sentinel);
  CHECK_FAILS(sparsert_model_load(NULL, 0, &model), SPARSERT_STATUS_INVALID_ARGUMENT,
              "loading a model: the path is NULL (expected a NUL-terminated file name)");
  CHECK_FAILS(sparsert_model_load(g_path, 0, NULL), SPARSERT_STATUS_INVALID_ARGUMENT,
              "the model pointer is NULL (expected where to store the new handle)");
  CHECK_FAILS(sparsert_model_load(g_path, -1, &model), SPARSERT_STATUS_INVALID_ARGUMENT, "num_threads is -1 (expected ≥ 0");
  CHECK_FAILS(sparsert_model_load_buffer(NULL, 100, 0, &model), SPARSERT_STATUS_INVALID_ARGUMENT,
              "loading a model from memory (100 bytes): the data pointer is null (expected 100 readable bytes)");
  CHECK_FAILS(sparsert_model_load_buffer(NULL, 0, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR,
              "the file has 0 bytes, fewer than the 32-byte header");
  CHECK_FAILS(sparsert_model_load_buffer("not a model at all, but 32 bytes+", 33, 0, &model),
              SPARSERT_STATUS_MODEL_FILE_ERROR, "magic bytes differ from \"SPRTMODL\"");
  CHECK(model == sentinel);

  size_t size = 0;
  unsigned char* bytes = read_file(g_path, &size);
  CHECK(bytes != NULL && size > 64);
  if (bytes == NULL) return;
  /* Truncated, in memory and on disk. */
  CHECK_FAILS(sparsert_model_load_buffer(bytes, size - 1, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR,
              "(truncated)");
  char damaged_path[600];
  snprintf(damaged_path, sizeof(damaged_path), "%s.damaged", g_path);
  FILE* f = fopen(damaged_path, "wb");
  CHECK(f != NULL);
  if (f != NULL) {
    fwrite(bytes, 1, size / 2, f);
    fclose(f);
    CHECK_FAILS(sparsert_model_load(damaged_path, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR, "(truncated)");
    CHECK(strstr(sparsert_last_error(), ".damaged'") != NULL);
  }
  /* A flipped body byte, and another version. */
  bytes[size / 2] ^= 1;
  CHECK_FAILS(sparsert_model_load_buffer(bytes, size, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR,
              "the checksum does not match (the file is corrupted)");
  bytes[size / 2] ^= 1;
  bytes[8] = 3;
  CHECK_FAILS(sparsert_model_load_buffer(bytes, size, 0, &model), SPARSERT_STATUS_MODEL_FILE_ERROR,
              "format version 3 (this sparsert reads version 2; upgrade sparsert)");
  CHECK(strstr(sparsert_last_error(), "loading a model from memory (") == sparsert_last_error());
  CHECK(model == sentinel);
  remove(damaged_path);
  free(bytes);
}

/* Copied on the thread: its last-error string ends with the thread. */
static char g_other_thread_error[64];

static void* last_error_of_new_thread(void* arg) {
  (void)arg;
  snprintf(g_other_thread_error, sizeof(g_other_thread_error), "[%s]", sparsert_last_error());
  return NULL;
}

static void test_run_errors(void) {
  sparsert_model* model = NULL;
  CHECK_OK(sparsert_model_load(g_path, 0, &model));
  if (model == NULL) return;
  float x[3 * kFeatures] = {0};
  uint8_t keep[3 * kFeatures] = {0};
  const int64_t shape[2] = {3, kFeatures}, narrow[2] = {3, kFeatures - 1}, two[2] = {2, kFeatures};
  sparsert_tensor inputs[2] = {{SPARSERT_DTYPE_F32, 2, shape, x}, {SPARSERT_DTYPE_BOOL, 2, shape, keep}};
  sparsert_result* const sentinel = (sparsert_result*)&g_failures; /* never dereferenced */
  sparsert_result* result = sentinel;

  CHECK_FAILS(sparsert_model_run(model, inputs, 1, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: got 1 inputs (expected 2)");
  inputs[1].dtype = SPARSERT_DTYPE_F32;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'keep' has dtype f32 (expected bool)");
  inputs[1].dtype = (sparsert_dtype)7;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'keep' has dtype code 7 (expected 0 for f32, 1 for i64 or 2 for bool)");
  inputs[1].dtype = SPARSERT_DTYPE_BOOL;
  inputs[0].shape = narrow;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'x' has shape (3, 19) (expected (batch, 20))");
  inputs[0].rank = 1;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'x' has shape (3,) (expected (batch, 20))");
  inputs[0].rank = 2;
  inputs[0].shape = two;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "input 'keep' has batch 3 but an earlier input has 2 (expected one batch)");
  inputs[0].shape = NULL;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'x' has rank 2 and a NULL shape (expected 2 dims)");
  inputs[0].shape = shape;
  inputs[0].data = NULL;
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: input 'x' has no data");
  inputs[0].data = x;
  CHECK_FAILS(sparsert_model_run(model, NULL, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: inputs is NULL with input_count 2 (expected 2 tensors)");
  CHECK_FAILS(sparsert_model_run(NULL, inputs, 2, &result), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: the model is NULL");
  CHECK_FAILS(sparsert_model_run(model, inputs, 2, NULL), SPARSERT_STATUS_INVALID_ARGUMENT,
              "running the model: the result pointer is NULL");
  CHECK(result == sentinel);

  sparsert_value_info info;
  size_t count;
  CHECK_FAILS(sparsert_model_input(model, 2, &info), SPARSERT_STATUS_INVALID_ARGUMENT,
              "querying the model's inputs: index 2 (expected < 2)");
  CHECK_FAILS(sparsert_model_output(model, 3, &info), SPARSERT_STATUS_INVALID_ARGUMENT,
              "querying the model's outputs: index 3 (expected < 3)");
  CHECK_FAILS(sparsert_model_output(model, 0, NULL), SPARSERT_STATUS_INVALID_ARGUMENT, "model or info is NULL");
  CHECK_FAILS(sparsert_model_input_count(NULL, &count), SPARSERT_STATUS_INVALID_ARGUMENT, "model or count is NULL");

  /* A good run after all that: it works, and leaves the last error as it was. */
  CHECK_OK(sparsert_model_run(model, inputs, 2, &result));
  CHECK(strstr(sparsert_last_error(), "model or count is NULL") != NULL);
  sparsert_tensor out;
  CHECK_FAILS(sparsert_result_output(result, 3, &out), SPARSERT_STATUS_INVALID_ARGUMENT,
              "reading a result: index 3 (expected < 3)");
  CHECK_FAILS(sparsert_result_count(NULL, &count), SPARSERT_STATUS_INVALID_ARGUMENT, "result or count is NULL");
  sparsert_result_free(result);
  sparsert_result_free(NULL);
  sparsert_model_free(model);
  sparsert_model_free(NULL);

  /* The last error belongs to the thread that failed. */
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, last_error_of_new_thread, NULL) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(strcmp(g_other_thread_error, "[]") == 0);
  CHECK(strlen(sparsert_last_error()) > 0);
}

static void test_constants(void) {
  CHECK(strcmp(sparsert_status_string(SPARSERT_STATUS_OK), "ok") == 0);
  CHECK(strcmp(sparsert_status_string(SPARSERT_STATUS_MODEL_FILE_ERROR), "model file error") == 0);
  CHECK(strcmp(sparsert_status_string((sparsert_status)42), "unknown status") == 0);
  CHECK(strlen(sparsert_version()) >= 5);
}

int main(void) {
  const char* tmp = getenv("TMPDIR");
  snprintf(g_path, sizeof(g_path), "%s/sparsert_c_api_%ld.sprt", tmp != NULL ? tmp : "/tmp", (long)getpid());
  if (reference_save_model(g_path) != 0) return 1;
  test_constants();
  test_runs_match_cpp();
  test_buffer_loads_match_cpp();
  test_load_errors();
  test_run_errors();
  remove(g_path);
  if (g_failures > 0) {
    fprintf(stderr, "%d checks failed\n", g_failures);
    return 1;
  }
  printf("all C API checks passed (sparsert %s)\n", sparsert_version());
  return 0;
}
