#include "formats/common.hpp"

#include <cstdio>

namespace sparsert::detail {

std::string format_double(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace sparsert::detail
