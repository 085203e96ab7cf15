// A small model with every dtype at its edges, built with the C++ graph API: the C API test's model
// (tests/c/reference.cpp) and the concurrency test's (test_model_threads.cpp).
//
//   x (f32, (batch, 20)), keep (bool, (batch, 20))
//   h = relu(fc1(x) + bias)            linear, csr, 37 outputs     -> output "h"     (f32, (batch, 37))
//   y = fc2(h)                         linear, nm 2:4, 20 outputs
//   p = softmax(where(keep, y, x))                                 -> output "p"     (f32, (batch, 20))
//   q = cast(h, i64)                                               -> output "q"     (i64, (batch, 37))
//   outputs in the order p, h, q
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sparsert/sparsert.hpp"

namespace sparsert::test {

inline std::vector<float> pruned_weights(int64_t rows, int64_t cols, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> unit;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = unit(rng) < density ? normal(rng) : 0.0f;
  return w;
}

/// The two sparse layers the small test graphs start with, on x (batch, 20): h = relu(fc1(x) + bias)
/// (csr, 37 outputs, value "h") and y = fc2(h) (nm 2:4, 20 outputs, value "y"). Returns {h, y}.
inline std::pair<int, int> add_sparse_layers(Graph& g, int x) {
  auto w1 = pruned_weights(37, 20, 0.3, 1), w2 = pruned_weights(20, 37, 1.0, 2);
  for (size_t i = 0; i < w2.size(); ++i)
    if ((i % 37) % 4 >= 2) w2[i] = 0.0f;  // 2 of every 4 kept (row length 37: the last group is partial)
  auto bias = std::make_shared<Tensor>(DType::kF32, Shape{37});
  for (int i = 0; i < 37; ++i) bias->data_as<float>()[i] = 0.1f * static_cast<float>(i % 5) - 0.2f;
  const int b1 = g.add_constant("fc1.bias", bias);

  NodeDef fc1{"linear", "fc1", {x, b1}, -1, {}, {std::make_shared<CsrMatrix>(w1.data(), 37, 20)}};
  fc1.attrs.ints["act"] = {static_cast<int64_t>(Activation::kRelu)};
  const int h = g.add_node(fc1, "h");
  const int y = g.add_node(NodeDef{"linear", "fc2", {h}, -1, {}, {std::make_shared<NmMatrix>(w2.data(), 20, 37, 2, 4)}}, "y");
  return {h, y};
}

inline Graph mixed_dtype_graph() {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 20});
  const int keep = g.add_input("keep", DType::kBool, {-1, 20});
  const auto [h, y] = add_sparse_layers(g, x);
  const int r = g.add_node(NodeDef{"where", "mix", {keep, y, x}, -1, {}, {}}, "r");
  NodeDef soft{"softmax", "softmax", {r}, -1, {}, {}};
  soft.attrs.ints["axis"] = {-1};
  const int p = g.add_node(soft, "p");
  NodeDef cast{"cast", "to_i64", {h}, -1, {}, {}};
  cast.attrs.ints["dtype"] = {static_cast<int64_t>(DType::kI64)};
  const int q = g.add_node(cast, "q");
  g.set_outputs({p, h, q});
  return g;
}

/// Inputs of mixed_dtype_graph for `batch` items: x normal (scaled so that the i64 cast is not all
/// zeros), keep about half ones.
struct MixedInputs {
  std::vector<float> x;
  std::vector<uint8_t> keep;
};

inline MixedInputs mixed_inputs(int64_t batch, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  MixedInputs in;
  in.x.resize(static_cast<size_t>(batch * 20));
  in.keep.resize(static_cast<size_t>(batch * 20));
  for (auto& v : in.x) v = normal(rng);
  for (auto& k : in.keep) k = static_cast<uint8_t>(rng() & 1u);
  return in;
}

}  // namespace sparsert::test
