// The interface every graph operator implements, and helpers they share. Operators are created
// once per node when a Model is compiled (validating attributes then), asked for their output
// shape whenever the model is planned for new input shapes, and run many times, possibly from
// several threads at once (run() is const and keeps per-call state on the stack or in
// thread_local scratch that only grows).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsert/error.hpp"
#include "sparsert/graph.hpp"
#include "sparsert/tensor.hpp"

namespace sparsert {

struct TensorDesc {
  DType dtype = DType::kF32;
  Shape shape;
};

struct RunContext {
  int threads = 1;               // ≥ 1
  bool reference_kernels = false;  // run weights with the scalar reference kernels
};

class Op {
 public:
  /// `node` is owned by the Model's Graph and outlives the op.
  explicit Op(const NodeDef& node) : node_(node) {}
  virtual ~Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  /// Output dtype and shape for inputs of these dtypes and shapes; `batch` is the run's batch
  /// (dim 0 of the inputs declared with a free batch). Throws InvalidArgument via fail().
  virtual TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t batch) const = 0;
  /// Computes the output into `out` (numel(out_desc.shape) elements, contiguous, not aliasing any
  /// input). `inputs` have the descs infer() accepted. May throw InvalidArgument for data-dependent
  /// errors (e.g. an embedding index out of range); never reads or writes out of bounds.
  virtual void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
                   const RunContext& ctx) const = 0;
  /// Whether the output is input 0's bytes as they are (a reshape): the planner then gives the
  /// output input 0's storage and skips run(), unless the output is a graph output.
  virtual bool is_view() const { return false; }
  /// Whether an output element combines elements of input `input` at different indices of `axis`
  /// (a softmax's axis, a product's inner dimension, a convolution's channels), for inputs of these
  /// descs. The batch must not lie in such an axis for the graph to run in micro-batches (model.cpp).
  virtual bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const {
    (void)inputs, (void)input, (void)axis;
    return false;
  }
  /// The items a micro-batch should hold, at least, for this op to run at its rate (model.cpp), given
  /// its inputs at one item: 1 unless one item leaves its kernel too little work.
  virtual int64_t min_items(const std::vector<TensorDesc>& item_inputs) const {
    (void)item_inputs;
    return 1;
  }
  /// The kernel a matrix-multiplying op runs for this input (for summaries); "" for others.
  virtual std::string kernel_name(const std::vector<TensorDesc>& inputs, const RunContext& ctx) const {
    (void)inputs, (void)ctx;
    return "";
  }

 protected:
  /// "node 'layer1.0.conv1' (conv2d)": the prefix of every message about this node.
  std::string where() const { return "node '" + node_.name + "' (" + node_.op + ")"; }
  /// Throws InvalidArgument("<where>: <what>").
  [[noreturn]] void fail(const std::string& what) const { throw InvalidArgument(where() + ": " + what); }
  /// Checks the input count is in [lo, hi]; fails naming both counts otherwise.
  void expect_inputs(const std::vector<TensorDesc>& inputs, size_t lo, size_t hi) const;

  const NodeDef& node_;
};

/// Creates the operator for `node` (the list is in ops.def); throws InvalidArgument naming the node
/// for an unknown operator or invalid attributes.
std::unique_ptr<Op> make_op(const NodeDef& node, const Graph& graph);

/// "[1, 2, 3]": an attribute's values in a message.
inline std::string list_string(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

/// Dimension `d` of a rank-`rank` tensor with Python-style negative indexing; throws via `op` if out of range.
int64_t normalize_axis(int64_t d, int64_t rank, const std::string& where);

/// Sizes given as coef · batch + constant per dimension (attributes `<name>_coef`, `<name>_const`),
/// so that a size that depends on the batch survives a change of batch. -1 (with coef 0) is kept.
Shape resolve_sizes(const Attrs& attrs, const std::string& name, int64_t batch, const std::string& where);

}  // namespace sparsert
