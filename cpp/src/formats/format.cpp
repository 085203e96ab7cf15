#include "sparsert/format.hpp"

#include <string>

#include "sparsert/error.hpp"

namespace sparsert {

const char* to_string(Format format) {
  switch (format) {
    case Format::kDense: return "dense";
    case Format::kCsr: return "csr";
    case Format::kBsr: return "bsr";
    case Format::kNM: return "nm";
    case Format::kCsc: return "csc";
  }
  return "?";
}

const char* to_string(Activation activation) {
  switch (activation) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kRelu6: return "relu6";
    case Activation::kGeluErf: return "gelu";
    case Activation::kGeluTanh: return "gelu_tanh";
    case Activation::kSilu: return "silu";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kTanh: return "tanh";
    case Activation::kHardswish: return "hardswish";
  }
  return "?";
}

Format parse_format(const std::string& name) {
  for (Format f : {Format::kDense, Format::kCsr, Format::kBsr, Format::kNM, Format::kCsc}) {
    if (name == to_string(f)) return f;
  }
  throw InvalidArgument("parsing format: unknown name '" + name + "' (expected dense, csr, bsr, nm or csc)");
}

Activation parse_activation(const std::string& name) {
  std::string choices;
  for (int a = 0; a <= static_cast<int>(kLastActivation); ++a) {
    const char* spelling = to_string(static_cast<Activation>(a));
    if (name == spelling) return static_cast<Activation>(a);
    choices += std::string(a == 0 ? "" : a == static_cast<int>(kLastActivation) ? " or " : ", ") + spelling;
  }
  throw InvalidArgument("parsing activation: unknown name '" + name + "' (expected " + choices + ")");
}

}  // namespace sparsert
