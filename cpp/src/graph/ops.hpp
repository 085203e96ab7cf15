// Factories of every operator in ops.def, and the enumerations their "kind" attributes use.
// The integer values are stored in model files: append, never renumber.
#pragma once

#include <memory>

#include "graph/op.hpp"

namespace sparsert {

enum class UnaryKind : int64_t {
  kRelu = 0, kRelu6 = 1, kGeluErf = 2, kGeluTanh = 3, kSilu = 4, kSigmoid = 5, kTanh = 6,
  kHardswish = 7, kHardsigmoid = 8, kNeg = 9, kExp = 10, kSqrt = 11, kRsqrt = 12, kErf = 13, kAbs = 14,
};

// kEq to kGe compare two f32, two i64 or two bool and give bool; kAnd, kOr, kXor take two bool.
enum class BinaryKind : int64_t {
  kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMaximum = 4, kMinimum = 5, kPow = 6,
  kEq = 7, kNe = 8, kLt = 9, kLe = 10, kGt = 11, kGe = 12, kAnd = 13, kOr = 14, kXor = 15,
};

#define SPARSERT_OP(name, factory) std::unique_ptr<Op> factory(const NodeDef& node, const Graph& graph);
#include "graph/ops.def"
#undef SPARSERT_OP

}  // namespace sparsert
