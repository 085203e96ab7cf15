// The weight formats and activations sparsert knows, with their one spelling each.
#pragma once

#include <string>

#include "sparsert/export.hpp"

namespace sparsert {

/// Storage format of a weight matrix. Spellings: "dense", "csr", "bsr", "nm", "csc". The values are
/// stored in model files: append, never renumber.
enum class Format { kDense, kCsr, kBsr, kNM, kCsc };

/// Element-wise function applied in a kernel's epilogue after the bias.
/// Spellings: "none", "relu", "relu6", "gelu" (erf form), "gelu_tanh", "silu", "sigmoid", "tanh",
/// "hardswish" (x · relu6(x + 3) / 6).
/// The values are stored in model files (a node's "act"): append, never renumber. Each one but kNone
/// is also a kind of the unary operator, numbered differently there (cpp/src/graph/ops.hpp maps them).
enum class Activation { kNone, kRelu, kRelu6, kGeluErf, kGeluTanh, kSilu, kSigmoid, kTanh, kHardswish };
/// Every value from 0 to this one is an Activation.
inline constexpr Activation kLastActivation = Activation::kHardswish;

SPARSERT_API const char* to_string(Format format);
SPARSERT_API const char* to_string(Activation activation);

/// Parses a spelling above; throws InvalidArgument listing the choices when unknown.
SPARSERT_API Format parse_format(const std::string& name);
SPARSERT_API Activation parse_activation(const std::string& name);

}  // namespace sparsert
