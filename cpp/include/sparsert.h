/* sparsert's C API: load a model file (.sprt, written by sparsert.Model.save or Model::save), ask
 * for its inputs and outputs, run it on caller memory, read the outputs.
 *
 *   sparsert_model* model;
 *   if (sparsert_model_load("net.sprt", 0, &model) != SPARSERT_STATUS_OK) {
 *     fprintf(stderr, "%s\n", sparsert_last_error());
 *   }
 *   int64_t shape[2] = {batch, 784};
 *   sparsert_tensor x = {SPARSERT_DTYPE_F32, 2, shape, pixels};
 *   sparsert_result* result;
 *   sparsert_model_run(model, &x, 1, &result);
 *   sparsert_tensor y;
 *   sparsert_result_output(result, 0, &y);   (y.data: y.shape[0] × y.shape[1] floats)
 *   sparsert_result_free(result);
 *   sparsert_model_free(model);
 *
 * Errors. Every function that can fail returns a sparsert_status; on failure it leaves its output
 * arguments unchanged and sets this thread's last-error message (sparsert_last_error), which is the
 * message of the C++ exception (what Python shows) or, for an argument only C can get wrong (a NULL
 * pointer, an index out of range), a message of the same shape: `<action>: <what was found>
 * (expected <rule>)`. No C++ exception crosses this API; out of memory is a status too.
 *
 * Memory. Handles (sparsert_model, sparsert_result) are opaque, created by this library and freed
 * by its free functions. Inputs stay the caller's: the library reads them during
 * sparsert_model_run only. Outputs are the library's: each run returns a sparsert_result that owns
 * its output tensors until sparsert_result_free, independently of the model (a result may outlive
 * its model). Strings and shapes returned by queries belong to the handle they came from.
 *
 * Threads. One model may run from several threads at once (sparsert_model_run and the queries
 * are safe to call concurrently on one model); sparsert_model_free must not race with any other
 * call on that model. A result is read-only and may be read from any thread; free it once.
 *
 * Element types: f32 (4 bytes), i64 (8 bytes), bool (1 byte holding 0 or 1). Tensors are
 * row-major and contiguous; the data of an input is aligned to its element size.
 */
#ifndef SPARSERT_H_
#define SPARSERT_H_

#include <stddef.h>
#include <stdint.h>

#include "sparsert/export.hpp" /* SPARSERT_API: plain preprocessor, C-compatible */

#ifdef __cplusplus
extern "C" {
#endif

/* What a call returned. The values are stable: append only. */
typedef enum sparsert_status {
  SPARSERT_STATUS_OK = 0,
  /* An argument breaks a documented rule: a NULL pointer, an index out of range, inputs of the
   * wrong count, dtype or shape (sparsert::InvalidArgument in C++). */
  SPARSERT_STATUS_INVALID_ARGUMENT = 1,
  /* The model file is missing, unreadable, truncated, corrupted, of another format version, or
   * names an operator this library does not have (sparsert::ModelFileError). */
  SPARSERT_STATUS_MODEL_FILE_ERROR = 2,
  /* An allocation failed (std::bad_alloc). */
  SPARSERT_STATUS_OUT_OF_MEMORY = 3,
  /* Any other failure; the message says what. */
  SPARSERT_STATUS_RUNTIME_ERROR = 4
} sparsert_status;

/* Element types; the codes are those of sparsert::DType and of the model file. */
typedef enum sparsert_dtype {
  SPARSERT_DTYPE_F32 = 0,
  SPARSERT_DTYPE_I64 = 1,
  SPARSERT_DTYPE_BOOL = 2
} sparsert_dtype;

typedef struct sparsert_model sparsert_model;
typedef struct sparsert_result sparsert_result;

/* A tensor in memory: `rank` dims at `shape`, `data` holding product(shape) elements of `dtype`
 * (row-major, contiguous). An input describes caller memory; an output (sparsert_result_output)
 * describes memory owned by its result. */
typedef struct sparsert_tensor {
  sparsert_dtype dtype;
  size_t rank;
  const int64_t* shape; /* rank dims; may be NULL when rank is 0 */
  const void* data;     /* may be NULL when an element count is 0 */
} sparsert_tensor;

/* A model input or output as declared, before any run. */
typedef struct sparsert_value_info {
  const char* name;     /* NUL-terminated, owned by the model */
  sparsert_dtype dtype;
  int32_t rank;         /* -1 for an output whose dtype and shape this model only knows once it
                           runs (a model that accepts only some batches, not 1 and 2); then shape
                           is NULL and dtype means nothing: a result tells both */
  const int64_t* shape; /* rank dims, owned by the model. -1 marks the free batch: dim 0 of an
                           input declared so, and each output dim that depends on it (for
                           batch-major models, dim 0 equal to the batch) */
} sparsert_value_info;

/* ---- Errors and library facts ------------------------------------------------------------ */

/* The message of the last call on this thread that failed; "" when none has. The string is valid
 * until the next failing call on this thread; successful calls leave it as it was. Never NULL. */
SPARSERT_API const char* sparsert_last_error(void);

/* A constant name for a status: "ok", "invalid argument", "model file error", "out of memory",
 * "runtime error", or "unknown status" for any other value. */
SPARSERT_API const char* sparsert_status_string(sparsert_status status);

/* The library version, e.g. "0.1.0" (a constant string). */
SPARSERT_API const char* sparsert_version(void);

/* Sets the process-wide default thread count of runs, used by models loaded with num_threads 0 at
 * each of their runs (as sparsert::set_num_threads); n <= 0 restores the default: one thread per
 * physical core. Thread-safe. */
SPARSERT_API void sparsert_set_num_threads(int n);
/* The thread count that models loaded with num_threads 0 use now (at least 1). Thread-safe. */
SPARSERT_API int sparsert_get_num_threads(void);

/* ---- Models ------------------------------------------------------------------------------ */

/* Loads the model file at `path` (a NUL-terminated file name). num_threads: threads of each run,
 * or 0 to follow sparsert_set_num_threads at each run; must be >= 0. On success *model is a new
 * handle, freed with sparsert_model_free. The file is mapped and its weights used in place (no copy);
 * it must not be changed in place while the model lives (saving a model replaces files by renaming).
 * Errors: INVALID_ARGUMENT (path or model NULL, num_threads < 0); MODEL_FILE_ERROR (the file is
 * missing or unreadable, "loading 'net.sprt': cannot open the file"; truncated, corrupted, another
 * version, an unknown operator: the message names the field or operator); OUT_OF_MEMORY. */
SPARSERT_API sparsert_status sparsert_model_load(const char* path, int num_threads, sparsert_model** model);

/* Loads a model from `size` bytes at `data`: a whole model file's content, e.g. linked into the
 * binary. The bytes are copied once and only read during this call: they need no alignment and
 * may be freed after it returns. num_threads and *model as for
 * sparsert_model_load; messages name the source "a model from memory (N bytes)".
 * Errors: INVALID_ARGUMENT (data NULL with size > 0, model NULL, num_threads < 0);
 * MODEL_FILE_ERROR (as for sparsert_model_load); OUT_OF_MEMORY. */
SPARSERT_API sparsert_status sparsert_model_load_buffer(const void* data, size_t size, int num_threads,
                                                        sparsert_model** model);

/* As sparsert_model_load_buffer, without the copy: when `data` is 64-byte aligned the model reads
 * its weights there in place, and the caller keeps the bytes alive and unchanged until
 * sparsert_model_free (a model linked into the binary with 64-byte alignment, or a mapping of the
 * caller's own). Unaligned bytes are copied, as by sparsert_model_load_buffer. */
SPARSERT_API sparsert_status sparsert_model_load_buffer_in_place(const void* data, size_t size, int num_threads,
                                                                 sparsert_model** model);

/* Frees a model and everything its queries returned; NULL is ignored. Results of its runs stay
 * valid. Must not run concurrently with any other call on this model. */
SPARSERT_API void sparsert_model_free(sparsert_model* model);

/* Number of inputs (*count), in the order sparsert_model_run takes them.
 * Errors: INVALID_ARGUMENT (model or count NULL). */
SPARSERT_API sparsert_status sparsert_model_input_count(const sparsert_model* model, size_t* count);

/* Input `index` as declared: name, dtype, rank, shape (-1 in dim 0: the free batch, which all
 * such inputs of one run share). The pointers in *info live as long as the model.
 * Errors: INVALID_ARGUMENT (model or info NULL, index >= the input count). */
SPARSERT_API sparsert_status sparsert_model_input(const sparsert_model* model, size_t index, sparsert_value_info* info);

/* Number of outputs (*count), in the order of a result's tensors. An output listed twice by the
 * model counts twice. Errors: INVALID_ARGUMENT (model or count NULL). */
SPARSERT_API sparsert_status sparsert_model_output_count(const sparsert_model* model, size_t* count);

/* Output `index` as far as it is known before a run: name, dtype, rank and shape, -1 in each dim
 * that depends on the batch (see sparsert_value_info). The pointers in *info live as long as the
 * model. The shapes of a run's outputs are in its result.
 * Errors: INVALID_ARGUMENT (model or info NULL, index >= the output count). */
SPARSERT_API sparsert_status sparsert_model_output(const sparsert_model* model, size_t index, sparsert_value_info* info);

/* ---- Running ----------------------------------------------------------------------------- */

/* Runs the model on `input_count` tensors at `inputs`, one per model input in order, each matching
 * its input's dtype and shape (dim 0 free where declared -1, the same in all such inputs). Each
 * input's data holds product(shape) × element size bytes, aligned to the element size, and is
 * only read, during this call. On success *result is a new result holding the outputs; free it
 * with sparsert_result_free. Thread-safe: several threads may run one model at once.
 * Errors: INVALID_ARGUMENT (model or result NULL; inputs NULL with input_count > 0; a wrong input
 * count; an input of an unknown dtype code, another dtype, rank or shape, a negative dim, a NULL
 * shape with rank > 0 or NULL data with elements: the message names the input, what it has and
 * what is expected, e.g. "running the model: input 'x' has shape (4, 3) (expected (batch, 20))");
 * OUT_OF_MEMORY; RUNTIME_ERROR. */
SPARSERT_API sparsert_status sparsert_model_run(const sparsert_model* model, const sparsert_tensor* inputs,
                                                size_t input_count, sparsert_result** result);

/* Number of output tensors in a result (*count; the model's output count).
 * Errors: INVALID_ARGUMENT (result or count NULL). */
SPARSERT_API sparsert_status sparsert_result_count(const sparsert_result* result, size_t* count);

/* Output `index` of a run: *tensor's shape and data point into the result (64-byte aligned data)
 * and stay valid until sparsert_result_free. Errors: INVALID_ARGUMENT (result or tensor NULL,
 * index >= the output count). */
SPARSERT_API sparsert_status sparsert_result_output(const sparsert_result* result, size_t index, sparsert_tensor* tensor);

/* Frees a result and its tensors; NULL is ignored. */
SPARSERT_API void sparsert_result_free(sparsert_result* result);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SPARSERT_H_ */
