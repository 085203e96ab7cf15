/* Classifies a batch with sparsert's C API (sparsert.h): loads a model, reads its inputs from a raw
 * float32 file, runs, prints each item's top-5 classes and the latency of a run.
 *
 *   classify_c model.sprt inputs.f32 [repeats]
 *
 * The model takes one f32 input of shape (batch, d1, ..., dk); the file holds whole items of
 * d1 × ... × dk floats each, in this machine's byte order (numpy's x.astype(np.float32).tofile()).
 * The first output holds (batch, classes) scores. Each item prints as
 * `item <i>: <class>=<score> ...`, best first (the lower class first on ties), scores with 9
 * significant digits, which is enough to tell any two floats apart. The latency is the median of
 * `repeats` runs (default 20) after one warm-up run, which plans the shapes of this batch. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c99 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sparsert.h>

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Prints a failed call's status and message; returns 1 for main's exit status. */
static int report(const char* call, sparsert_status status) {
  fprintf(stderr, "classify_c: %s: %s: %s\n", call, sparsert_status_string(status), sparsert_last_error());
  return 1;
}

/* The file's floats, *count of them; NULL (with a message) when it cannot be read whole. */
static float* read_floats(const char* path, size_t* count) {
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "classify_c: cannot open '%s'\n", path);
    return NULL;
  }
  fseek(f, 0, SEEK_END);
  const long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  if (bytes < 0 || bytes % (long)sizeof(float) != 0) {
    fprintf(stderr, "classify_c: '%s' has %ld bytes (expected a multiple of 4: float32 values)\n", path, bytes);
    fclose(f);
    return NULL;
  }
  *count = (size_t)bytes / sizeof(float);
  float* data = malloc(*count > 0 ? *count * sizeof(float) : 1);
  if (data == NULL || fread(data, sizeof(float), *count, f) != *count) {
    fprintf(stderr, "classify_c: reading '%s' failed\n", path);
    free(data);
    data = NULL;
  }
  fclose(f);
  return data;
}

/* Prints item i's top-5 of `classes` scores. */
static void print_top5(int64_t item, const float* scores, int64_t classes) {
  int64_t best[5];
  const int64_t k = classes < 5 ? classes : 5;
  for (int64_t j = 0; j < k; ++j) {
    int64_t pick = -1;
    for (int64_t c = 0; c < classes; ++c) {
      int taken = 0;
      for (int64_t t = 0; t < j; ++t) taken |= best[t] == c;
      if (!taken && (pick < 0 || scores[c] > scores[pick])) pick = c;
    }
    best[j] = pick;
  }
  printf("item %lld:", (long long)item);
  for (int64_t j = 0; j < k; ++j) printf(" %lld=%.9g", (long long)best[j], (double)scores[best[j]]);
  printf("\n");
}

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s model.sprt inputs.f32 [repeats]\n", argv[0]);
    return 2;
  }
  const int repeats = argc == 4 ? atoi(argv[3]) : 20;
  if (repeats < 1) {
    fprintf(stderr, "classify_c: repeats is %s (expected a count >= 1)\n", argv[3]);
    return 2;
  }

  sparsert_model* model = NULL;
  sparsert_status status = sparsert_model_load(argv[1], 0, &model);
  if (status != SPARSERT_STATUS_OK) return report("loading the model", status);

  /* One f32 input whose dims after the batch give the item size. */
  size_t input_count = 0;
  sparsert_value_info input;
  sparsert_model_input_count(model, &input_count);
  if (input_count != 1 || sparsert_model_input(model, 0, &input) != SPARSERT_STATUS_OK ||
      input.dtype != SPARSERT_DTYPE_F32 || input.rank < 1 || input.shape[0] != -1) {
    fprintf(stderr, "classify_c: the model has %zu inputs (expected one f32 input with a free batch)\n", input_count);
    sparsert_model_free(model);
    return 1;
  }
  int64_t item_size = 1;
  for (int32_t d = 1; d < input.rank; ++d) item_size *= input.shape[d];

  size_t count = 0;
  float* x = read_floats(argv[2], &count);
  if (x == NULL || item_size == 0 || count % (size_t)item_size != 0) {
    if (x != NULL) {
      fprintf(stderr, "classify_c: '%s' holds %zu floats (expected whole items of %lld)\n", argv[2], count,
              (long long)item_size);
    }
    free(x);
    sparsert_model_free(model);
    return 1;
  }
  int64_t shape[8];
  if (input.rank > 8) {
    fprintf(stderr, "classify_c: input rank %d (this example takes at most 8)\n", (int)input.rank);
    free(x);
    sparsert_model_free(model);
    return 1;
  }
  memcpy(shape, input.shape, (size_t)input.rank * sizeof(int64_t));
  shape[0] = (int64_t)(count / (size_t)item_size);
  const sparsert_tensor tensor = {SPARSERT_DTYPE_F32, (size_t)input.rank, shape, x};

  /* A warm-up run plans this batch; then the timed runs. */
  double* seconds = malloc((size_t)repeats * sizeof(double));
  sparsert_result* result = NULL;
  status = sparsert_model_run(model, &tensor, 1, &result);
  for (int r = 0; status == SPARSERT_STATUS_OK && seconds != NULL && r < repeats; ++r) {
    sparsert_result_free(result);
    result = NULL;
    const double start = now_seconds();
    status = sparsert_model_run(model, &tensor, 1, &result);
    seconds[r] = now_seconds() - start;
  }
  int exit_code = 0;
  sparsert_tensor scores;
  if (seconds == NULL) {
    fprintf(stderr, "classify_c: out of memory\n");
    exit_code = 1;
  } else if (status != SPARSERT_STATUS_OK) {
    exit_code = report("running the model", status);
  } else if (sparsert_result_output(result, 0, &scores) != SPARSERT_STATUS_OK || scores.dtype != SPARSERT_DTYPE_F32 ||
             scores.rank != 2 || scores.shape[0] != shape[0]) {
    fprintf(stderr, "classify_c: the first output is not (batch, classes) f32 scores\n");
    exit_code = 1;
  } else {
    for (int64_t i = 0; i < shape[0]; ++i) print_top5(i, (const float*)scores.data + i * scores.shape[1], scores.shape[1]);
    qsort(seconds, (size_t)repeats, sizeof(double), compare_doubles);
    printf("latency: %.3f ms median of %d runs at batch %lld, %d threads\n", 1e3 * seconds[repeats / 2], repeats,
           (long long)shape[0], sparsert_get_num_threads());
  }
  sparsert_result_free(result);
  free(seconds);
  free(x);
  sparsert_model_free(model);
  return exit_code;
}
