// Uses only the installed public headers: builds a CSR weight and checks one linear() call.
#include <cmath>
#include <cstdio>

#include <sparsert/sparsert.hpp>

int main() {
  // W = [[1, 0, 2], [0, 0, 0], [0, 3, 0]], x = [1, 2, 3], bias = [0.5, -1, 0]: y = relu(Wx + b).
  const float w[9] = {1, 0, 2, 0, 0, 0, 0, 3, 0};
  const float x[3] = {1, 2, 3}, bias[3] = {0.5f, -1.0f, 0.0f}, expected[3] = {7.5f, 0.0f, 6.0f};
  sparsert::CsrMatrix m(w, 3, 3);
  float y[3];
  sparsert::LinearOptions options;
  options.activation = sparsert::Activation::kRelu;
  sparsert::linear(m, x, 1, bias, y, options);
  for (int i = 0; i < 3; ++i) {
    if (std::fabs(y[i] - expected[i]) > 1e-6f) {
      std::fprintf(stderr, "y[%d] = %g (expected %g)\n", i, y[i], expected[i]);
      return 1;
    }
  }
  std::printf("ok: %s, kernel %s\n", sparsert::available_isas().c_str(), sparsert::linear_kernel_name(m, 1).c_str());
  return 0;
}
