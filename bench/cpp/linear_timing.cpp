// One linear layer through sparsert::linear, timed in C++ (no Python front end in the figure): for
// comparing kernel builds against each other, e.g. this checkout against an earlier commit built
// the same way, run alternately. Weights are N(0,1), seed 0, pruned to the format's pattern.
//
//   cmake -S . -B build/bench -DSPARSERT_BENCH=ON -DSPARSERT_TESTS=OFF && cmake --build build/bench
//   build/bench/linear_timing ROWS COLS BATCH dense|csr|csr:SPAN|nm|bsrRxC [THREADS] [CALLS] [ACT]
//
// csr keeps the entries with |w| ≥ 1.645 (~10% dense); csr:SPAN keeps min(COLS / 10, SPAN) entries a
// row at random columns below SPAN, so SPAN sets how many input rows the kernel touches (its cache
// footprint) at a given count of non-zeros; nm keeps 2 of every 4 (random positions), bsrRxC (e.g.
// bsr4x4) a random 10% of the R × C blocks.
// ACT (none, relu, gelu, gelu_tanh, ...: parse_activation's names) adds a bias and that activation,
// as a layer of a model runs them: the epilogue's cost is then the difference from ACT none.
// Prints the median and minimum of CALLS calls (default 30; ~1000 for a minimum that survives a
// noisy host) and the useful GFLOP/s (2 · stored · batch / min).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "sparsert/sparsert.hpp"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s ROWS COLS BATCH dense|csr|nm|bsrRxC [THREADS] [CALLS] [ACT]\n", argv[0]);
    return 2;
  }
  const int64_t rows = std::atoll(argv[1]), cols = std::atoll(argv[2]), batch = std::atoll(argv[3]);
  const std::string format = argv[4];
  sparsert::LinearOptions options;
  options.num_threads = argc > 5 ? std::atoi(argv[5]) : 1;
  const int calls = argc > 6 ? std::max(1, std::atoi(argv[6])) : 30;
  if (argc > 7) {
    try {
      options.activation = sparsert::parse_activation(argv[7]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ACT: %s\n", e.what());
      return 2;
    }
  }
  std::mt19937 rng(0);
  std::normal_distribution<float> normal;
  std::vector<float> w(rows * cols), x(batch * cols), y(batch * rows);
  for (auto& v : w) v = normal(rng);
  for (auto& v : x) v = normal(rng);
  std::unique_ptr<sparsert::Weight> weight;
  if (format == "dense") {
    weight = std::make_unique<sparsert::DenseMatrix>(w.data(), rows, cols);
  } else if (format == "csr") {
    for (auto& v : w) v = std::abs(v) < 1.645f ? 0.0f : v;
    weight = std::make_unique<sparsert::CsrMatrix>(w.data(), rows, cols);
  } else if (int64_t span = 0; std::sscanf(format.c_str(), "csr:%ld", &span) == 1 && span >= 1 && span <= cols) {
    std::vector<int64_t> order(static_cast<size_t>(span));
    for (int64_t r = 0; r < rows; ++r) {
      std::iota(order.begin(), order.end(), int64_t{0});
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<float> kept(static_cast<size_t>(cols), 0.0f);
      for (int64_t i = 0; i < std::min(cols / 10, span); ++i) kept[order[i]] = w[r * cols + order[i]];
      std::copy(kept.begin(), kept.end(), w.begin() + r * cols);
    }
    weight = std::make_unique<sparsert::CsrMatrix>(w.data(), rows, cols);
  } else if (format == "nm") {
    // Random positions, as magnitude pruning leaves them: a fixed pattern reads the input regularly.
    std::uniform_int_distribution<int> pair(0, 5);
    constexpr int kKeep[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t g = r * cols; g < (r + 1) * cols; g += 4) {
        const int* keep = kKeep[pair(rng)];
        for (int64_t j = 0; j < 4 && g + j < (r + 1) * cols; ++j) w[g + j] = j == keep[0] || j == keep[1] ? w[g + j] : 0.0f;
      }
    }
    weight = std::make_unique<sparsert::NmMatrix>(w.data(), rows, cols, 2, 4);
  } else if (int br = 0, bc = 0; std::sscanf(format.c_str(), "bsr%dx%d", &br, &bc) == 2) {
    std::uniform_real_distribution<float> keep;  // whole blocks, 10% of them
    for (int64_t r0 = 0; r0 < rows; r0 += br)
      for (int64_t c0 = 0; c0 < cols; c0 += bc)
        if (keep(rng) >= 0.1f)
          for (int64_t r = r0; r < std::min<int64_t>(r0 + br, rows); ++r)
            for (int64_t c = c0; c < std::min<int64_t>(c0 + bc, cols); ++c) w[r * cols + c] = 0.0f;
    weight = std::make_unique<sparsert::BsrMatrix>(w.data(), rows, cols, br, bc);
  } else {
    std::fprintf(stderr, "format '%s' (expected dense, csr, csr:SPAN with 1 ≤ SPAN ≤ COLS, nm or bsrRxC)\n",
                 format.c_str());
    return 2;
  }
  std::printf("%s kernel %s\n", weight->describe().c_str(), sparsert::linear_kernel_name(*weight, batch).c_str());
  std::vector<float> bias(static_cast<size_t>(rows));
  for (auto& v : bias) v = normal(rng);
  const float* b = argc > 7 ? bias.data() : nullptr;
  sparsert::linear(*weight, x.data(), batch, b, y.data(), options);  // warm-up
  std::vector<double> seconds;
  for (int call = 0; call < calls; ++call) {
    const auto t0 = std::chrono::steady_clock::now();
    sparsert::linear(*weight, x.data(), batch, b, y.data(), options);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  const double flops = 2.0 * static_cast<double>(weight->nnz()) * static_cast<double>(batch);
  std::printf("median %.1f us  min %.1f us  %.1f GFLOP/s (useful, at min)\n", seconds[seconds.size() / 2] * 1e6,
              seconds[0] * 1e6, flops / seconds[0] * 1e-9);
  return 0;
}
