// A model as data: named values (inputs, constants, intermediates) and nodes that compute them.
// The importer (Python) or an application builds a Graph; Model compiles and runs it; the model
// file stores it. Every operator name, its inputs and attributes are listed in cpp/src/graph/ops.def.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sparsert/export.hpp"
#include "sparsert/tensor.hpp"
#include "sparsert/weight.hpp"

namespace sparsert {

/// Operator attributes: named integer and floating-point lists (a scalar is a list of one).
struct SPARSERT_API Attrs {
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, std::vector<double>> floats;

  bool has(const std::string& name) const { return ints.count(name) != 0 || floats.count(name) != 0; }
  /// The list `name`; throws InvalidArgument (naming `where`) when absent.
  const std::vector<int64_t>& int_list(const std::string& name, const std::string& where) const;
  /// The scalar `name`, or `fallback` when absent; throws when present with other than one entry.
  int64_t int_or(const std::string& name, int64_t fallback, const std::string& where) const;
  double float_or(const std::string& name, double fallback, const std::string& where) const;
};

/// The codes that integer attributes hold, by table: "activation" (act of linear, conv2d and
/// depthwise_conv2d: Activation, sparsert/format.hpp), "unary" (kind of unary), "binary" (kind of
/// binary) and "dtype" (dtype of cast: DType, sparsert/tensor.hpp). Each table lists (spelling, code)
/// in code order, spelled by the enumeration's to_string; the Python importer builds its nodes from
/// these. Model files store the codes, so a code keeps its meaning forever. Thread-safe; no throws
/// but std::bad_alloc.
SPARSERT_API std::map<std::string, std::vector<std::pair<std::string, int64_t>>> attribute_codes();

/// Where a value comes from.
enum class ValueKind : uint8_t { kInput = 0, kConstant = 1, kNode = 2 };

/// A tensor of the graph. Inputs have a shape whose dim 0 may be -1: the batch, free at run time
/// (every input with -1 there takes the same batch). Constants hold their data. Node outputs get
/// their shapes when the model is planned for concrete input shapes.
struct SPARSERT_API ValueDef {
  std::string name;
  ValueKind kind = ValueKind::kNode;
  DType dtype = DType::kF32;
  Shape shape;                             // inputs and constants
  std::shared_ptr<const Tensor> constant;  // constants only
};

/// One operator application: `op` reads values `inputs` (indices into Graph::values) and writes
/// value `output`. Matrix-multiplying operators (linear, conv2d) hold their packed weights here.
struct SPARSERT_API NodeDef {
  std::string op;
  std::string name;  // the source layer or operator, for messages and summaries
  std::vector<int> inputs;
  int output = -1;
  Attrs attrs;
  std::vector<std::shared_ptr<const Weight>> weights;
};

/// A graph under construction. Values are appended in order; a node may only read values added
/// before its output, so the node list is already in execution order.
class SPARSERT_API Graph {
 public:
  /// Each returns the new value's index; names must be unique (InvalidArgument otherwise).
  int add_input(const std::string& name, DType dtype, const Shape& shape);
  int add_constant(const std::string& name, std::shared_ptr<const Tensor> data);
  int add_node(NodeDef node, const std::string& output_name);
  void set_outputs(const std::vector<int>& outputs);

  const std::vector<ValueDef>& values() const { return values_; }
  const std::vector<NodeDef>& nodes() const { return nodes_; }
  const std::vector<int>& inputs() const { return inputs_; }
  const std::vector<int>& outputs() const { return outputs_; }
  /// Index of the value called `name`, or -1.
  int find(const std::string& name) const;

 private:
  int add_value(ValueDef value);

  std::vector<ValueDef> values_;
  std::vector<NodeDef> nodes_;
  std::vector<int> inputs_;
  std::vector<int> outputs_;
  std::map<std::string, int> by_name_;
};

}  // namespace sparsert
