// Factories of every operator in ops.def, and the enumerations their "kind" attributes use.
// The integer values are stored in model files: append, never renumber. The importer reads them,
// with their spellings, through attribute_codes() (sparsert/graph.hpp).
#pragma once

#include <memory>

#include "graph/op.hpp"
#include "sparsert/format.hpp"

namespace sparsert {

// Spelled by to_string below (codes.cpp), as the importer and PyTorch name them; kGeluErf is "gelu".
enum class UnaryKind : int64_t {
  kRelu = 0, kRelu6 = 1, kGeluErf = 2, kGeluTanh = 3, kSilu = 4, kSigmoid = 5, kTanh = 6,
  kHardswish = 7, kHardsigmoid = 8, kNeg = 9, kExp = 10, kSqrt = 11, kRsqrt = 12, kErf = 13, kAbs = 14,
};
inline constexpr UnaryKind kLastUnaryKind = UnaryKind::kAbs;

// Spelled by to_string below (codes.cpp): "add", ..., "maximum", ..., "eq", ..., "and", "or", "xor".
// kEq to kGe compare two f32, two i64 or two bool and give bool; kAnd, kOr, kXor take two bool.
enum class BinaryKind : int64_t {
  kAdd = 0, kSub = 1, kMul = 2, kDiv = 3, kMaximum = 4, kMinimum = 5, kPow = 6,
  kEq = 7, kNe = 8, kLt = 9, kLe = 10, kGt = 11, kGe = 12, kAnd = 13, kOr = 14, kXor = 15,
};
inline constexpr BinaryKind kLastBinaryKind = BinaryKind::kXor;

const char* to_string(UnaryKind kind);
const char* to_string(BinaryKind kind);

/// The epilogue activation that computes unary `kind`, or Activation::kNone when none does: the one
/// place that relates the two enumerations. Every Activation but kNone is one unary kind of the same
/// spelling (relu is UnaryKind 0 and Activation 1): model files store both numberings, so they stay
/// two and this maps them. The unary operator computes these kinds with the epilogue's activate(),
/// so a unary node and the activation fused into the layer before it give the same bits.
constexpr Activation epilogue_activation(UnaryKind kind) {
  switch (kind) {
    case UnaryKind::kRelu: return Activation::kRelu;
    case UnaryKind::kRelu6: return Activation::kRelu6;
    case UnaryKind::kGeluErf: return Activation::kGeluErf;
    case UnaryKind::kGeluTanh: return Activation::kGeluTanh;
    case UnaryKind::kSilu: return Activation::kSilu;
    case UnaryKind::kSigmoid: return Activation::kSigmoid;
    case UnaryKind::kTanh: return Activation::kTanh;
    case UnaryKind::kHardswish: return Activation::kHardswish;
    default: return Activation::kNone;
  }
}
// A new Activation needs its unary kind above (tests/cpp/test_ops_tensor.cpp checks the pairs).
static_assert(kLastActivation == Activation::kHardswish, "map the new Activation in epilogue_activation");

#define SPARSERT_OP(name, factory) std::unique_ptr<Op> factory(const NodeDef& node, const Graph& graph);
#include "graph/ops.def"
#undef SPARSERT_OP

}  // namespace sparsert
