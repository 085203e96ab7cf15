#include "sparsert/graph.hpp"

#include <cstring>
#include <utility>

#include "sparsert/error.hpp"

namespace sparsert {

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kI64: return "i64";
    case DType::kBool: return "bool";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  std::string choices;
  for (int d = 0; d <= static_cast<int>(kLastDType); ++d) {
    const char* spelling = to_string(static_cast<DType>(d));
    if (name == spelling) return static_cast<DType>(d);
    choices += std::string(d == 0 ? "" : d == static_cast<int>(kLastDType) ? " or " : ", ") + spelling;
  }
  throw InvalidArgument("parsing dtype: unknown name '" + name + "' (expected " + choices + ")");
}

int64_t numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_string(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) {
    if (d < 0) throw InvalidArgument("creating a tensor: shape " + shape_string(shape_) + " has a negative dim");
  }
  storage_.assign(static_cast<size_t>(nbytes()), 0);
}

Tensor::Tensor(DType dtype, Shape shape, SharedArray<unsigned char> bytes)
    : dtype_(dtype), shape_(std::move(shape)), bytes_(std::move(bytes)), shared_(true) {
  for (int64_t d : shape_) {
    if (d < 0) throw InvalidArgument("creating a tensor: shape " + shape_string(shape_) + " has a negative dim");
  }
  if (static_cast<int64_t>(bytes_.size()) != nbytes()) {
    throw InvalidArgument("creating a tensor of shape " + shape_string(shape_) + ": " + std::to_string(bytes_.size()) +
                          " bytes given (expected " + std::to_string(nbytes()) + ")");
  }
}

void* Tensor::data() {
  if (shared_) {
    storage_.assign(bytes_.begin(), bytes_.end());
    bytes_ = {};
    shared_ = false;
  }
  return storage_.data();
}

const std::vector<int64_t>& Attrs::int_list(const std::string& name, const std::string& where) const {
  auto it = ints.find(name);
  if (it == ints.end()) throw InvalidArgument(where + ": missing integer attribute '" + name + "'");
  return it->second;
}

int64_t Attrs::int_or(const std::string& name, int64_t fallback, const std::string& where) const {
  auto it = ints.find(name);
  if (it == ints.end()) return fallback;
  if (it->second.size() != 1) {
    throw InvalidArgument(where + ": attribute '" + name + "' has " + std::to_string(it->second.size()) +
                          " values (expected 1)");
  }
  return it->second[0];
}

double Attrs::float_or(const std::string& name, double fallback, const std::string& where) const {
  auto it = floats.find(name);
  if (it == floats.end()) return fallback;
  if (it->second.size() != 1) {
    throw InvalidArgument(where + ": attribute '" + name + "' has " + std::to_string(it->second.size()) +
                          " values (expected 1)");
  }
  return it->second[0];
}

int Graph::add_value(ValueDef value) {
  if (value.name.empty()) throw InvalidArgument("building a graph: a value has an empty name");
  if (by_name_.count(value.name)) {
    throw InvalidArgument("building a graph: value name '" + value.name + "' is used twice (expected unique names)");
  }
  const int index = static_cast<int>(values_.size());
  by_name_.emplace(value.name, index);
  values_.push_back(std::move(value));
  return index;
}

int Graph::add_input(const std::string& name, DType dtype, const Shape& shape) {
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0 && !(i == 0 && shape[i] == -1)) {
      throw InvalidArgument("building a graph: input '" + name + "' has shape " + shape_string(shape) +
                            " (expected sizes ≥ 0, or -1 in dim 0 for a free batch)");
    }
  }
  ValueDef v;
  v.name = name;
  v.kind = ValueKind::kInput;
  v.dtype = dtype;
  v.shape = shape;
  const int index = add_value(std::move(v));
  inputs_.push_back(index);
  return index;
}

int Graph::add_constant(const std::string& name, std::shared_ptr<const Tensor> data) {
  if (!data) throw InvalidArgument("building a graph: constant '" + name + "' has no data");
  ValueDef v;
  v.name = name;
  v.kind = ValueKind::kConstant;
  v.dtype = data->dtype();
  v.shape = data->shape();
  v.constant = std::move(data);
  return add_value(std::move(v));
}

int Graph::add_node(NodeDef node, const std::string& output_name) {
  const int next = static_cast<int>(values_.size());
  for (int in : node.inputs) {
    if (in < 0 || in >= next) {
      throw InvalidArgument("building a graph: node '" + node.name + "' (" + node.op + ") reads value " +
                            std::to_string(in) + " (expected an index below " + std::to_string(next) + ")");
    }
  }
  for (const auto& w : node.weights) {
    if (!w) throw InvalidArgument("building a graph: node '" + node.name + "' has a null weight");
  }
  ValueDef v;
  v.name = output_name;
  v.kind = ValueKind::kNode;
  const int index = add_value(std::move(v));
  node.output = index;
  nodes_.push_back(std::move(node));
  return index;
}

void Graph::set_outputs(const std::vector<int>& outputs) {
  for (int o : outputs) {
    if (o < 0 || o >= static_cast<int>(values_.size())) {
      throw InvalidArgument("building a graph: output index " + std::to_string(o) + " is out of range (expected below " +
                            std::to_string(values_.size()) + ")");
    }
  }
  outputs_ = outputs;
}

int Graph::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

}  // namespace sparsert
