// The operator registry, expanded from ops.def.
#include "graph/ops.hpp"

#include <string>

namespace sparsert {

std::unique_ptr<Op> make_op(const NodeDef& node, const Graph& graph) {
#define SPARSERT_OP(op_name, factory) \
  if (node.op == #op_name) return factory(node, graph);
#include "graph/ops.def"
#undef SPARSERT_OP
  std::string known;
#define SPARSERT_OP(op_name, factory) known += std::string(known.empty() ? "" : ", ") + #op_name;
#include "graph/ops.def"
#undef SPARSERT_OP
  throw InvalidArgument("node '" + node.name + "': unknown operator '" + node.op + "' (expected one of " + known + ")");
}

}  // namespace sparsert
