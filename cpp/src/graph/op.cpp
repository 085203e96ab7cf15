// Helpers shared by the operators (op.hpp). Kept apart from the registry in ops.cpp so that one
// operator links without every other.
#include "graph/op.hpp"

namespace sparsert {

void Op::expect_inputs(const std::vector<TensorDesc>& inputs, size_t lo, size_t hi) const {
  if (inputs.size() < lo || inputs.size() > hi) {
    fail("got " + std::to_string(inputs.size()) + " inputs (expected " +
         (lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi)) + ")");
  }
}

int64_t normalize_axis(int64_t d, int64_t rank, const std::string& where) {
  const int64_t r = rank == 0 ? 1 : rank;  // a 0-d tensor accepts axis 0 and -1, as torch does
  if (d < -r || d >= r) {
    throw InvalidArgument(where + ": axis " + std::to_string(d) + " is out of range for rank " + std::to_string(rank) +
                          " (expected " + std::to_string(-r) + " to " + std::to_string(r - 1) + ")");
  }
  return d < 0 ? d + r : d;
}

Shape resolve_sizes(const Attrs& attrs, const std::string& name, int64_t batch, const std::string& where) {
  const auto& coef = attrs.int_list(name + "_coef", where);
  const auto& constant = attrs.int_list(name + "_const", where);
  if (coef.size() != constant.size()) {
    throw InvalidArgument(where + ": " + name + "_coef has " + std::to_string(coef.size()) + " entries but " + name +
                          "_const has " + std::to_string(constant.size()) + " (expected equal)");
  }
  // Attributes come from model files: a size past 2^48 (more elements than any memory holds) is
  // refused here, before it overflows the products that operators form from sizes.
  constexpr int64_t kMaxSize = int64_t{1} << 48;
  Shape out(coef.size());
  for (size_t i = 0; i < coef.size(); ++i) {
    int64_t scaled = 0;
    if (__builtin_mul_overflow(coef[i], batch, &scaled) || __builtin_add_overflow(scaled, constant[i], &out[i]) ||
        out[i] > kMaxSize) {
      throw InvalidArgument(where + ": size " + std::to_string(i) + " is " + std::to_string(coef[i]) + " · batch " +
                            std::to_string(batch) + " + " + std::to_string(constant[i]) + " (expected at most 2^48)");
    }
  }
  return out;
}

}  // namespace sparsert
