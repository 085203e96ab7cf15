// libFuzzer harness of the model-file reader (cpp/src/io/model_file.hpp has the layout): each input
// is a model file whose header size and checksum are rewritten to match its bytes, so that mutations
// reach the field validation instead of stopping at the checksum. A file that loads is then run
// once at batch 2 on small inputs of its declared dtypes and shapes.
//
// Expected answers are sparsert::Error: ModelFileError and InvalidArgument name what is wrong. A
// file may also validly ask for more memory than the fuzzer has (a reshape to 10^12 elements): its
// run would die in ASan's operator new, which reports out of memory instead of throwing, so a model
// whose values take more than kMaxRunBytes at this batch is loaded and planned but not run.
// Anything else (a crash, a sanitizer report, another exception) is a finding.
//
//   build: cmake -DSPARSERT_FUZZ=ON with clang and -fsanitize=address,undefined,fuzzer-no-link
//   run:   fuzz_model_file -max_total_time=60 corpus_copy/ tests/fuzz/corpus/
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#include "graph/op.hpp"
#include "sparsert/sparsert.hpp"

namespace {

constexpr size_t kHeaderBytes = 32;
constexpr int64_t kBatch = 2;
constexpr int64_t kMaxInputElements = 1 << 16;  // larger declared inputs are loaded but not run
constexpr int64_t kMaxRunBytes = 256 << 20;     // all values of one run together

uint64_t fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Bytes of every value of a run at kBatch, from the shapes the planner infers (Model::output_types
// has checked that each fits in int64 and that every node accepts them).
int64_t run_bytes(const sparsert::Model& model) {
  const auto& graph = model.graph();
  const auto& values = graph.values();
  std::vector<sparsert::TensorDesc> descs(values.size());
  int64_t total = 0;
  auto add = [&](const sparsert::TensorDesc& d) { total += sparsert::numel(d.shape) * sparsert::dtype_size(d.dtype); };
  for (size_t v = 0; v < values.size(); ++v) {
    if (values[v].kind == sparsert::ValueKind::kNode) continue;
    descs[v] = {values[v].dtype, values[v].shape};
    if (!descs[v].shape.empty() && descs[v].shape[0] < 0) descs[v].shape[0] = kBatch;
    add(descs[v]);
  }
  std::vector<sparsert::TensorDesc> in;
  for (const auto& node : graph.nodes()) {
    in.clear();
    for (int v : node.inputs) in.push_back(descs[static_cast<size_t>(v)]);
    descs[static_cast<size_t>(node.output)] = sparsert::make_op(node, graph)->infer(in, kBatch);
    add(descs[static_cast<size_t>(node.output)]);
  }
  return total;
}

void run_once(const sparsert::Model& model) {
  const auto& graph = model.graph();
  std::vector<std::vector<unsigned char>> storage;
  std::vector<sparsert::TensorView> inputs;
  for (int v : graph.inputs()) {
    const auto& decl = graph.values()[static_cast<size_t>(v)];
    sparsert::Shape shape = decl.shape;
    int64_t n = 1;
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] < 0 && d > 0) return;  // a free size past dim 0: not what models declare
      if (shape[d] < 0) shape[d] = kBatch;
      if (shape[d] > kMaxInputElements || (n *= shape[d]) > kMaxInputElements) return;
    }
    // Small non-negative values: valid indices of any embedding or gather of size ≥ 2, 0/1 for bool.
    std::vector<unsigned char> bytes(static_cast<size_t>(n * sparsert::dtype_size(decl.dtype)));
    for (int64_t i = 0; i < n; ++i) {
      switch (decl.dtype) {
        case sparsert::DType::kF32: {
          const float x = 0.25f * static_cast<float>(i % 7) - 0.5f;
          std::memcpy(bytes.data() + i * 4, &x, 4);
          break;
        }
        case sparsert::DType::kI64: {
          const int64_t x = i % 2;
          std::memcpy(bytes.data() + i * 8, &x, 8);
          break;
        }
        case sparsert::DType::kBool: bytes[static_cast<size_t>(i)] = static_cast<unsigned char>(i % 2); break;
      }
    }
    inputs.push_back({decl.dtype, shape, bytes.data()});
    storage.push_back(std::move(bytes));  // moving a vector keeps its data pointer
  }
  model.output_types(kBatch);  // throws for shapes a node refuses or sizes past 2^48 bytes
  if (run_bytes(model) > kMaxRunBytes) return;
  model.run(inputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<unsigned char> bytes(data, data + size);
  if (size >= kHeaderBytes) {
    const uint64_t n = size, checksum = fnv1a(bytes.data() + kHeaderBytes, size - kHeaderBytes);
    std::memcpy(bytes.data() + 16, &n, 8);
    std::memcpy(bytes.data() + 24, &checksum, 8);
  }
  try {
    const sparsert::Model model = sparsert::Model::load_buffer(bytes.data(), bytes.size(), sparsert::ModelOptions{1});
    run_once(model);
  } catch (const sparsert::Error&) {
  } catch (const std::bad_alloc&) {
  }
  return 0;
}
