// Exceptions thrown at the public API edge. Inner code asserts what the edge validated.
#pragma once

#include <stdexcept>
#include <string>

#include "sparsert/export.hpp"

namespace sparsert {

/// Base of every exception sparsert throws. The message follows
/// `<action>: <what was found> (expected <rule>)`.
class SPARSERT_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// A caller passed an argument that violates a documented rule (shape, parameter, pattern).
class SPARSERT_API InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message) : Error(message) {}
};

}  // namespace sparsert

namespace sparsert {

/// A model file is truncated, corrupted, of another format version, or names something unknown.
class SPARSERT_API ModelFileError : public InvalidArgument {
 public:
  explicit ModelFileError(const std::string& message) : InvalidArgument(message) {}
};

}  // namespace sparsert
