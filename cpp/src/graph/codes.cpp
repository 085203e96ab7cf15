// The spellings of the codes that node attributes hold (ops.hpp's kinds), and attribute_codes()
// (sparsert/graph.hpp), which lists every table for the importer. Apart from the registry in ops.cpp
// so that an operator naming its kind in a message links without every other operator.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "graph/ops.hpp"
#include "sparsert/format.hpp"
#include "sparsert/graph.hpp"
#include "sparsert/tensor.hpp"

namespace sparsert {

const char* to_string(UnaryKind kind) {
  switch (kind) {
    case UnaryKind::kRelu: return "relu";
    case UnaryKind::kRelu6: return "relu6";
    case UnaryKind::kGeluErf: return "gelu";
    case UnaryKind::kGeluTanh: return "gelu_tanh";
    case UnaryKind::kSilu: return "silu";
    case UnaryKind::kSigmoid: return "sigmoid";
    case UnaryKind::kTanh: return "tanh";
    case UnaryKind::kHardswish: return "hardswish";
    case UnaryKind::kHardsigmoid: return "hardsigmoid";
    case UnaryKind::kNeg: return "neg";
    case UnaryKind::kExp: return "exp";
    case UnaryKind::kSqrt: return "sqrt";
    case UnaryKind::kRsqrt: return "rsqrt";
    case UnaryKind::kErf: return "erf";
    case UnaryKind::kAbs: return "abs";
  }
  return "?";
}

const char* to_string(BinaryKind kind) {
  switch (kind) {
    case BinaryKind::kAdd: return "add";
    case BinaryKind::kSub: return "sub";
    case BinaryKind::kMul: return "mul";
    case BinaryKind::kDiv: return "div";
    case BinaryKind::kMaximum: return "maximum";
    case BinaryKind::kMinimum: return "minimum";
    case BinaryKind::kPow: return "pow";
    case BinaryKind::kEq: return "eq";
    case BinaryKind::kNe: return "ne";
    case BinaryKind::kLt: return "lt";
    case BinaryKind::kLe: return "le";
    case BinaryKind::kGt: return "gt";
    case BinaryKind::kGe: return "ge";
    case BinaryKind::kAnd: return "and";
    case BinaryKind::kOr: return "or";
    case BinaryKind::kXor: return "xor";
  }
  return "?";
}

namespace {

// (spelling, code) for every code of E from 0 to `last`, each spelled by E's to_string.
template <class E>
std::vector<std::pair<std::string, int64_t>> codes_of(E last) {
  std::vector<std::pair<std::string, int64_t>> codes;
  for (int64_t c = 0; c <= static_cast<int64_t>(last); ++c) codes.emplace_back(to_string(static_cast<E>(c)), c);
  return codes;
}

}  // namespace

std::map<std::string, std::vector<std::pair<std::string, int64_t>>> attribute_codes() {
  return {{"activation", codes_of(kLastActivation)},
          {"unary", codes_of(kLastUnaryKind)},
          {"binary", codes_of(kLastBinaryKind)},
          {"dtype", codes_of(kLastDType)}};
}

}  // namespace sparsert
