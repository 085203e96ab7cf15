// Helpers of the tensor-operator tests (test_ops_tensor.cpp, test_ops_mask.cpp): operators built
// from their factories without a graph, random and literal tensors, naive index arithmetic for the
// references, a runner that checks 1 and 2 threads agree bit for bit, and message checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "graph/ops.hpp"

namespace sparsert::test {

using Ints = std::map<std::string, std::vector<int64_t>>;
using Floats = std::map<std::string, std::vector<double>>;
using Factory = std::unique_ptr<Op> (*)(const NodeDef&, const Graph&);

constexpr double kTol = 1e-5;
constexpr int64_t kI64Max = std::numeric_limits<int64_t>::max();

/// An operator with the NodeDef it refers to (an Op keeps a reference to its node).
struct Built {
  std::unique_ptr<NodeDef> node;
  std::unique_ptr<Op> op;
};

inline Built build(Factory factory, const std::string& op, Ints ints = {}, Floats floats = {}) {
  static const Graph kEmpty;
  Built b;
  b.node = std::make_unique<NodeDef>();
  b.node->op = op;
  b.node->name = "t." + op;
  b.node->attrs.ints = std::move(ints);
  b.node->attrs.floats = std::move(floats);
  b.op = factory(*b.node, kEmpty);
  return b;
}

inline std::string str(const Shape& s) { return shape_string(s); }

// A tensor of `dtype` filled with draws of `distribution` (seeded: the same tensor every run).
template <class T, class Distribution>
Tensor random_tensor(DType dtype, const Shape& shape, uint32_t seed, Distribution distribution) {
  Tensor t(dtype, shape);
  std::mt19937 rng(seed);
  T* p = t.data_as<T>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = distribution(rng);
  return t;
}

inline Tensor random_f32(const Shape& shape, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  return random_tensor<float>(DType::kF32, shape, seed, std::normal_distribution<float>(offset, scale));
}

inline Tensor random_i64(const Shape& shape, uint32_t seed, int64_t lo, int64_t hi) {
  return random_tensor<int64_t>(DType::kI64, shape, seed, std::uniform_int_distribution<int64_t>(lo, hi));
}

inline Tensor f32_values(const Shape& shape, const std::vector<float>& v) {
  Tensor t(DType::kF32, shape);
  std::memcpy(t.data(), v.data(), v.size() * sizeof(float));
  return t;
}

inline Tensor i64_values(const Shape& shape, const std::vector<int64_t>& v) {
  Tensor t(DType::kI64, shape);
  std::memcpy(t.data(), v.data(), v.size() * sizeof(int64_t));
  return t;
}

inline std::vector<double> to_f64(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.data_as<float>()[i];
  return v;
}

inline std::vector<int64_t> unravel(int64_t flat, const Shape& shape) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

/// Flat index in `in` of the element that out-index `idx` reads when `in` broadcasts to it.
inline int64_t broadcast_index(const std::vector<int64_t>& idx, const Shape& in) {
  const size_t lead = idx.size() - in.size();
  int64_t flat = 0;
  for (size_t d = 0; d < in.size(); ++d) flat = flat * in[d] + (in[d] == 1 ? 0 : idx[lead + d]);
  return flat;
}

/// Runs `op` on `inputs` with 1 thread and with 2; checks the two outputs agree bit for bit and
/// returns the first. The output starts as all-ones bits, so an element never written shows.
inline Tensor run(const Op& op, const std::vector<const Tensor*>& inputs, int64_t batch = 1) {
  std::vector<TensorDesc> descs;
  std::vector<TensorView> views;
  for (const Tensor* t : inputs) {
    descs.push_back({t->dtype(), t->shape()});
    views.push_back(t->view());
  }
  const TensorDesc d = op.infer(descs, batch);
  Tensor first;
  for (int threads : {1, 2}) {
    Tensor out(d.dtype, d.shape);
    if (out.nbytes() > 0) std::memset(out.data(), 0xff, static_cast<size_t>(out.nbytes()));
    RunContext ctx;
    ctx.threads = threads;
    op.run(views, d, out.data(), ctx);
    if (threads == 1) {
      first = std::move(out);
    } else if (out.nbytes() > 0) {
      EXPECT_EQ(std::memcmp(first.data(), out.data(), static_cast<size_t>(out.nbytes())), 0)
          << "1 and 2 threads differ";
    }
  }
  return first;
}

/// Every element within kTol of the reference, relative to |ref| + mag (mag: the size of the terms
/// that cancelled, where there are any); NaN matches NaN and an infinity itself.
inline void expect_close(const Tensor& got, const std::vector<double>& ref, const std::string& what,
                  const std::vector<double>& mag = {}) {
  ASSERT_EQ(got.dtype(), DType::kF32) << what;
  ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << what;
  const float* g = got.data_as<float>();
  for (size_t i = 0; i < ref.size(); ++i) {
    const double y = g[i], r = ref[i];
    const double m = mag.empty() ? 0.0 : mag[i];
    const bool ok = std::isnan(r)   ? std::isnan(y)
                    : std::isinf(r) ? y == r
                                    : std::abs(y - r) <= kTol * (std::abs(r) + m);
    if (!ok) {
      ADD_FAILURE() << what << ": first bad index " << i << " of " << ref.size() << ": got " << y << ", expected " << r;
      return;
    }
  }
}

inline void expect_equal_bits(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what << ": got " << str(got.shape()) << ", expected " << str(want.shape());
  if (got.nbytes() > 0) EXPECT_EQ(std::memcmp(got.data(), want.data(), static_cast<size_t>(got.nbytes())), 0) << what;
}

/// Calls f, expecting InvalidArgument whose message contains every fragment.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments) {
      EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg << "\nmissing: " << frag;
    }
    return;
  }
  ADD_FAILURE() << "no InvalidArgument; expected one containing '" << fragments.at(0) << "'";
}

inline std::vector<TensorDesc> descs(const std::vector<Shape>& shapes, DType dtype = DType::kF32) {
  std::vector<TensorDesc> d;
  for (const auto& s : shapes) d.push_back({dtype, s});
  return d;
}

/// Bools drawn with probability `p_true`, one byte each (0 or 1).
inline Tensor random_bool(const Shape& shape, uint32_t seed, double p_true = 0.5) {
  Tensor t(DType::kBool, shape);
  std::mt19937 rng(seed);
  std::bernoulli_distribution d(p_true);
  uint8_t* p = t.data_as<uint8_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng) ? 1 : 0;
  return t;
}

inline Tensor bool_values(const Shape& shape, const std::vector<uint8_t>& v) {
  Tensor t(DType::kBool, shape);
  std::memcpy(t.data(), v.data(), v.size());
  return t;
}

/// NumPy broadcast of two shapes (they must broadcast).
inline Shape broadcast_ref(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    const int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace sparsert::test
