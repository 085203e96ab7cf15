// Classifies a batch with sparsert's C++ API (sparsert/sparsert.hpp): loads a model, reads its
// inputs from a raw float32 file, runs, prints each item's top-5 classes and the latency of a run.
//
//   classify_cpp model.sprt inputs.f32 [repeats]
//
// Input file, output lines and latency as in the C example (cpp/examples/c/classify.c), which this
// one matches line for line: `item <i>: <class>=<score> ...`, best first, lower class first on ties,
// scores with 9 significant digits; the latency is the median of `repeats` runs (default 20) after
// one warm-up run, which plans the shapes of this batch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include <sparsert/sparsert.hpp>

namespace {

std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  const std::streamoff bytes = in.tellg();
  if (bytes % static_cast<std::streamoff>(sizeof(float)) != 0) {
    throw std::runtime_error("'" + path + "' has " + std::to_string(bytes) + " bytes (expected a multiple of 4: float32 values)");
  }
  std::vector<float> data(static_cast<size_t>(bytes) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), bytes);
  if (!in) throw std::runtime_error("reading '" + path + "' failed");
  return data;
}

void print_top5(int64_t item, const float* scores, int64_t classes) {
  std::vector<int64_t> order(static_cast<size_t>(classes));
  std::iota(order.begin(), order.end(), 0);
  const auto k = std::min<int64_t>(classes, 5);
  // Best first; a stable sort keeps the lower class first on ties.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
  std::printf("item %lld:", static_cast<long long>(item));
  for (int64_t j = 0; j < k; ++j) std::printf(" %lld=%.9g", static_cast<long long>(order[j]), double(scores[order[j]]));
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s model.sprt inputs.f32 [repeats]\n", argv[0]);
    return 2;
  }
  const int repeats = argc == 4 ? std::atoi(argv[3]) : 20;
  if (repeats < 1) {
    std::fprintf(stderr, "classify_cpp: repeats is %s (expected a count >= 1)\n", argv[3]);
    return 2;
  }
  try {
    const sparsert::Model model = sparsert::Model::load(argv[1]);
    const auto& graph = model.graph();
    if (graph.inputs().size() != 1) throw std::runtime_error("the model has " + std::to_string(graph.inputs().size()) + " inputs (expected 1)");
    const auto& input = graph.values()[static_cast<size_t>(graph.inputs()[0])];
    if (input.dtype != sparsert::DType::kF32 || input.shape.empty() || input.shape[0] != -1) {
      throw std::runtime_error("input '" + input.name + "' is " + sparsert::to_string(input.dtype) +
                               sparsert::shape_string(input.shape) + " (expected f32 with a free batch)");
    }
    const int64_t item_size = sparsert::numel(sparsert::Shape(input.shape.begin() + 1, input.shape.end()));
    const std::vector<float> x = read_floats(argv[2]);
    if (item_size == 0 || x.size() % static_cast<size_t>(item_size) != 0) {
      throw std::runtime_error(std::string("'") + argv[2] + "' holds " + std::to_string(x.size()) +
                               " floats (expected whole items of " + std::to_string(item_size) + ")");
    }
    sparsert::Shape shape = input.shape;
    shape[0] = static_cast<int64_t>(x.size()) / item_size;
    const std::vector<sparsert::TensorView> inputs = {{sparsert::DType::kF32, shape, x.data()}};

    auto outputs = model.run(inputs);  // warm-up: plans this batch
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      outputs = model.run(inputs);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    const sparsert::Tensor& scores = outputs.at(0);
    if (scores.dtype() != sparsert::DType::kF32 || scores.shape().size() != 2 || scores.shape()[0] != shape[0]) {
      throw std::runtime_error("the first output is " + sparsert::shape_string(scores.shape()) + " (expected (batch, classes) f32)");
    }
    const int64_t classes = scores.shape()[1];
    for (int64_t i = 0; i < shape[0]; ++i) print_top5(i, scores.data_as<float>() + i * classes, classes);
    std::sort(seconds.begin(), seconds.end());
    std::printf("latency: %.3f ms median of %d runs at batch %lld, %d threads\n", 1e3 * seconds[seconds.size() / 2],
                repeats, static_cast<long long>(shape[0]), sparsert::get_num_threads());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "classify_cpp: %s\n", e.what());
    return 1;
  }
  return 0;
}
