// One Model shared by several threads: N threads × M runs, each thread cycling through the batches
// in its own order, so that plans for new shapes are made concurrently and arenas go back and forth
// through the pool; every run equals a serial run of an identical model bit for bit. The same
// through one C API handle. (Model::run is documented safe to call from several threads at once.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "graphs_testing.hpp"
#include "sparsert.h"
#include "sparsert/sparsert.hpp"

namespace sparsert {
namespace {

constexpr int kThreads = 4;
constexpr int kRunsPerThread = 100;
const int64_t kBatches[] = {1, 3, 8, 17, 2};
constexpr size_t kBatchCount = sizeof(kBatches) / sizeof(kBatches[0]);

struct Case {
  int64_t batch;
  test::MixedInputs in;
  std::vector<Tensor> want;
};

std::vector<Case> serial_cases(const ModelOptions& options) {
  const Model model(test::mixed_dtype_graph(), options);
  std::vector<Case> cases;
  for (size_t i = 0; i < kBatchCount; ++i) {
    Case c{kBatches[i], test::mixed_inputs(kBatches[i], static_cast<uint32_t>(100 + i)), {}};
    c.want = model.run({TensorView{DType::kF32, {c.batch, 20}, c.in.x.data()},
                        TensorView{DType::kBool, {c.batch, 20}, c.in.keep.data()}});
    cases.push_back(std::move(c));
  }
  return cases;
}

// Whether `data` holds output `o` of case `c` exactly; describes the first difference otherwise.
std::string compare(const Case& c, size_t o, DType dtype, const Shape& shape, const void* data) {
  const Tensor& want = c.want[o];
  if (dtype != want.dtype() || shape != want.shape()) {
    return "output " + std::to_string(o) + " at batch " + std::to_string(c.batch) + ": " + to_string(dtype) +
           shape_string(shape) + " (expected " + to_string(want.dtype()) + shape_string(want.shape()) + ")";
  }
  if (std::memcmp(data, want.data(), static_cast<size_t>(want.nbytes())) != 0) {
    return "output " + std::to_string(o) + " at batch " + std::to_string(c.batch) + " differs from the serial run";
  }
  return "";
}

// Runs `run_case(thread, run)` on kThreads threads × kRunsPerThread, collecting the first failures.
template <class RunCase>
std::vector<std::string> in_threads(RunCase run_case) {
  std::vector<std::string> failures(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();  // start together: first runs plan concurrently
      for (int r = 0; r < kRunsPerThread && failures[static_cast<size_t>(t)].empty(); ++r) {
        failures[static_cast<size_t>(t)] = run_case(t, r);
      }
    });
  }
  for (auto& th : threads) th.join();
  return failures;
}

const Case& case_for(const std::vector<Case>& cases, int thread, int run) {
  return cases[static_cast<size_t>(thread * 2 + run * (thread % 2 == 0 ? 1 : 3)) % cases.size()];
}

TEST(ModelThreads, SharedModelRunsAreBitIdentical) {
  // Two kernel threads per run, and micro-batches of 2 (every batch above 2 runs in slices, each
  // slice taking an arena from the pool), as well as whole batches.
  for (const ModelOptions options : {ModelOptions{2, false, 0}, ModelOptions{2, false, 2}, ModelOptions{1, false, 0}}) {
    const auto cases = serial_cases(options);
    const Model shared(test::mixed_dtype_graph(), options);
    const auto failures = in_threads([&](int t, int r) -> std::string {
      const Case& c = case_for(cases, t, r);
      const auto got = shared.run({TensorView{DType::kF32, {c.batch, 20}, c.in.x.data()},
                                   TensorView{DType::kBool, {c.batch, 20}, c.in.keep.data()}});
      if (got.size() != c.want.size()) return "got " + std::to_string(got.size()) + " outputs";
      for (size_t o = 0; o < got.size(); ++o) {
        const std::string e = compare(c, o, got[o].dtype(), got[o].shape(), got[o].data());
        if (!e.empty()) return e;
      }
      return "";
    });
    for (int t = 0; t < kThreads; ++t)
      EXPECT_EQ(failures[static_cast<size_t>(t)], "") << "thread " << t << ", micro_batch " << options.micro_batch;
  }
}

TEST(ModelThreads, SharedCApiHandleRunsAreBitIdentical) {
  const std::string path = ::testing::TempDir() + "sparsert_threads_" + std::to_string(::getpid()) + ".sprt";
  Model(test::mixed_dtype_graph()).save(path);
  sparsert_model* model = nullptr;
  ASSERT_EQ(sparsert_model_load(path.c_str(), 2, &model), SPARSERT_STATUS_OK) << sparsert_last_error();
  std::remove(path.c_str());
  const auto cases = serial_cases(ModelOptions{2});
  const auto failures = in_threads([&](int t, int r) -> std::string {
    const Case& c = case_for(cases, t, r);
    const int64_t shape[2] = {c.batch, 20};
    const sparsert_tensor inputs[2] = {{SPARSERT_DTYPE_F32, 2, shape, c.in.x.data()},
                                       {SPARSERT_DTYPE_BOOL, 2, shape, c.in.keep.data()}};
    sparsert_result* result = nullptr;
    if (sparsert_model_run(model, inputs, 2, &result) != SPARSERT_STATUS_OK) return sparsert_last_error();
    std::string e;
    for (size_t o = 0; o < c.want.size() && e.empty(); ++o) {
      sparsert_tensor out;
      if (sparsert_result_output(result, o, &out) != SPARSERT_STATUS_OK) {
        e = sparsert_last_error();
        break;
      }
      e = compare(c, o, static_cast<DType>(out.dtype), Shape(out.shape, out.shape + out.rank), out.data);
    }
    sparsert_result_free(result);
    return e;
  });
  sparsert_model_free(model);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<size_t>(t)], "") << "thread " << t;
}

}  // namespace
}  // namespace sparsert
