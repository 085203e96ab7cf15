// A compiled model: a Graph with one operator implementation per node, ready to run on inputs of
// any batch size. Planning (shapes, buffer offsets) happens on the first run of each new set of
// input shapes and is cached; a steady-state run does not allocate beyond its output tensors.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "sparsert/export.hpp"
#include "sparsert/graph.hpp"
#include "sparsert/tensor.hpp"

namespace sparsert {

struct ModelOptions {
  /// Threads for run(); 0 takes the value of set_num_threads() at each call.
  int num_threads = 0;
  /// Run every weight with the scalar reference kernels (a graph-level oracle for tests).
  bool reference_kernels = false;
  /// Batch items per micro-batch, when the graph may run in slices of dim 0 (model.cpp): 0 picks as
  /// many as keep a slice's intermediates within the caches; n > 0 runs at most n at a time. The
  /// graph's last nodes may then run once at the whole batch (NodeInfo::items says which).
  int64_t micro_batch = 0;
  /// Bytes a run may take for its intermediate values and outputs: a run that would need more throws
  /// InvalidArgument before allocating (a damaged or hostile model file asking for terabytes, or too
  /// large a batch). 0 takes this machine's physical memory.
  int64_t max_memory_bytes = 0;
};

/// A tensor's dtype and shape without its data (Model::output_types).
struct TensorType {
  DType dtype = DType::kF32;
  Shape shape;
};

/// Per-node facts for summaries: what ran and with which kernel on the last planned shape.
struct NodeInfo {
  std::string name;
  std::string op;
  std::string kernel;  // empty for operators without a weight
  std::vector<std::string> weights;  // Weight::describe() of each packed weight
  /// Batch items each run of the node holds: the micro-batch's before a micro-batched run's tail,
  /// else the whole batch (the kernel is the one chosen for them).
  int64_t items = 0;
};

class SPARSERT_API Model {
 public:
  /// Compiles `graph`; throws InvalidArgument naming the node for an unknown operator, a missing
  /// attribute or an input of the wrong kind.
  explicit Model(Graph graph, ModelOptions options = {});
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  /// Reads a model file written by save(), mapped rather than copied (weights are used in place);
  /// throws ModelFileError naming what is wrong (truncated, corrupted, another format version, an
  /// unknown operator). The file must not be changed in place while the model lives; save() replaces
  /// files by renaming, which is safe.
  static Model load(const std::string& path, ModelOptions options = {});
  /// Reads a model file's `size` bytes at `data` (a model linked into the binary, or read by the
  /// caller); checks and messages as load(), naming the source "a model from memory (N bytes)". The
  /// bytes are copied once, only read during the call, and need no alignment. Throws InvalidArgument for null
  /// data with size > 0, ModelFileError for anything wrong in the bytes.
  static Model load_buffer(const void* data, size_t size, ModelOptions options = {});
  /// As load_buffer, without the copy: the model reads the weights at `data` in place when `data` is
  /// 64-byte aligned (else it copies them, as load_buffer). The caller keeps the bytes alive and
  /// unchanged for the model's lifetime (a model linked into the binary, or a mapping of its own).
  static Model load_buffer_in_place(const void* data, size_t size, ModelOptions options = {});
  /// Writes the whole model (graph, packed weights, constants) to one file (layout:
  /// cpp/src/io/model_file.hpp); throws Error when the file cannot be written.
  void save(const std::string& path) const;

  /// Runs the graph. `inputs` match graph().inputs() in order, dtype and shape (dim 0 free where
  /// the input declares -1). Returns the outputs in graph().outputs() order. Safe to call from
  /// several threads at once. Throws InvalidArgument naming the input and both shapes on mismatch.
  std::vector<Tensor> run(const std::vector<TensorView>& inputs) const;

  /// Runs the graph `repeats` times after one warm-up run and returns each node's median time in
  /// seconds, in node order (what model summaries compare with predictions).
  std::vector<double> profile(const std::vector<TensorView>& inputs, int repeats) const;

  /// Dtype and shape of each output, in graph().outputs() order, that run() returns when the
  /// free-batch inputs have dim 0 = `batch` (the shapes are inferred, nothing runs). Throws
  /// InvalidArgument for batch < 0 or when an operator refuses the shapes at this batch. Safe to
  /// call from several threads at once, and during runs.
  std::vector<TensorType> output_types(int64_t batch) const;

  const Graph& graph() const;
  const ModelOptions& options() const;
  std::vector<NodeInfo> node_info(int64_t batch) const;
  /// Batch items per micro-batch that a run of this batch takes (ModelOptions::micro_batch); the
  /// batch itself when it runs whole.
  int64_t micro_batch(int64_t batch) const;

 private:
  std::vector<Tensor> execute(const std::vector<TensorView>& inputs, std::vector<double>* node_seconds) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparsert
