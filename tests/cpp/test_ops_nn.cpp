// The operators of the ops_nn.cpp and ops_conv.cpp sections of ops.def (linear, conv2d, depthwise_conv2d,
// max_pool2d, avg_pool2d, adaptive_avg_pool2d), each created by its factory and checked against naive
// double-precision loops written here with PyTorch's definitions, over every weight format, both
// kernel modes and 1 and 2 threads; then the messages of invalid attributes and input shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "kernels/registry.hpp"
#include "kernels/tensor_kernels.hpp"
#include "oracle.hpp"

namespace sparsert::test {
namespace {

using Factory = std::unique_ptr<Op> (*)(const NodeDef&, const Graph&);
using Ints = std::map<std::string, std::vector<int64_t>>;

constexpr Format kFormats[] = {Format::kDense, Format::kCsr, Format::kBsr, Format::kNM};
constexpr double kTol = 1e-5;  // ‖y − ref‖ / ‖ref‖ for fp32 against the double loops
const RunContext kContexts[] = {{1, false}, {2, false}, {1, true}, {2, true}};

std::string context_string(const RunContext& ctx) {
  return "threads " + std::to_string(ctx.threads) + (ctx.reference_kernels ? " reference kernels" : " best kernels");
}

/// A weight pattern each format accepts: 2×4 blocks for BSR, 2:4 for N:M, about half the entries.
Pattern pattern_for(Format f) {
  if (f == Format::kBsr) return {"block", 2, 4, 2, 4};
  if (f == Format::kNM) return {"nm", 2, 4, 1, 1};
  return {};
}
double density_for(Format f) { return f == Format::kDense ? 1.0 : f == Format::kNM ? 0.8 : 0.5; }

std::shared_ptr<const Tensor> f32_tensor(const Shape& shape, const std::vector<float>& v) {
  auto t = std::make_shared<Tensor>(DType::kF32, shape);
  std::copy(v.begin(), v.end(), t->data_as<float>());  // std::copy: an empty tensor has no data pointer
  return t;
}

/// A graph of one node `op` (named "layer") reading input x, then `constants` in order.
struct OneNode {
  Graph graph;
  std::unique_ptr<Op> op;
};

std::unique_ptr<OneNode> one_node(Factory factory, const std::string& op, const Shape& x_shape, const Ints& ints,
                                  std::vector<std::shared_ptr<const Weight>> weights = {},
                                  const std::vector<std::shared_ptr<const Tensor>>& constants = {}) {
  auto c = std::make_unique<OneNode>();
  NodeDef node;
  node.op = op;
  node.name = "layer";
  node.inputs.push_back(c->graph.add_input("x", DType::kF32, x_shape));
  for (size_t i = 0; i < constants.size(); ++i) {
    node.inputs.push_back(c->graph.add_constant("c" + std::to_string(i), constants[i]));
  }
  node.attrs.ints = ints;
  node.weights = std::move(weights);
  c->graph.add_node(std::move(node), "y");
  c->op = factory(c->graph.nodes().back(), c->graph);
  return c;
}

/// infer() then run() on `inputs`; the output starts as NaN so that an element never written fails.
Tensor run_op(const Op& op, const std::vector<const Tensor*>& inputs, const RunContext& ctx) {
  std::vector<TensorDesc> descs;
  std::vector<TensorView> views;
  for (const Tensor* t : inputs) {
    descs.push_back({t->dtype(), t->shape()});
    views.push_back(t->view());
  }
  const TensorDesc out = op.infer(descs, 1);
  Tensor y(out.dtype, out.shape);
  std::fill(y.data_as<float>(), y.data_as<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
  op.run(views, out, y.data(), ctx);
  return y;
}

/// Checks shape, then ‖y − ref‖ ≤ kTol · ‖ref‖ (equal NaNs and infinities count as equal), printing
/// the first element beyond kTol of the largest |ref|.
void expect_close(const Tensor& y, const Shape& shape, const std::vector<double>& ref, const std::string& what) {
  ASSERT_EQ(shape_string(y.shape()), shape_string(shape)) << what;
  ASSERT_EQ(static_cast<size_t>(y.numel()), ref.size()) << what;
  const float* v = y.data_as<float>();
  double num = 0, den = 0, big = 0;
  int64_t bad = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i], g = v[i];
    if (std::isnan(r) || std::isnan(g) || std::isinf(r) || std::isinf(g)) {
      const bool same = (std::isnan(r) && std::isnan(g)) || r == g;
      if (!same && bad < 0) bad = static_cast<int64_t>(i);
      if (!same) num = std::numeric_limits<double>::infinity();
      continue;
    }
    num += (g - r) * (g - r);
    den += r * r;
    big = std::max(big, std::abs(r));
  }
  if (bad < 0) {
    for (size_t i = 0; i < ref.size(); ++i) {
      if (std::isfinite(ref[i]) && std::abs(double(v[i]) - ref[i]) > kTol * big + 1e-30) {
        bad = static_cast<int64_t>(i);
        break;
      }
    }
  }
  const double err = num == 0 ? 0.0 : std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
  std::ostringstream first;
  if (bad >= 0) first << "; first bad index " << bad << ": got " << v[bad] << ", expected " << ref[bad];
  EXPECT_LE(err, kTol) << what << first.str();
}

double activate_ref(double v, Activation act) { return act == Activation::kRelu ? (v < 0 ? 0 : v) : v; }

/// The message of the InvalidArgument `f` throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_error(const std::string& message, const std::vector<std::string>& parts) {
  for (const std::string& p : parts) EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' not in: " << message;
}

/// x as a tensor of `shape` filled with seeded normal values.
Tensor random_tensor(const Shape& shape, uint32_t seed) {
  Tensor t(DType::kF32, shape);
  const std::vector<float> v = random_vector(t.numel(), seed);
  std::copy(v.begin(), v.end(), t.data_as<float>());
  return t;
}

// ---------------------------------------------------------------------------------------------
// linear

TEST(Linear, MatchesOracle) {
  const int64_t in = 21, out = 9;  // 21 columns: BSR 2×4 and N:M 2:4 both pad to 24
  const std::vector<Shape> x_shapes = {{in}, {1, in}, {3, in}, {2, 3, in}, {0, in}, {40, in}};
  for (Format f : kFormats) {
    const std::vector<float> wd = random_weight(out, in, density_for(f), pattern_for(f), 11);
    std::shared_ptr<const Weight> w = make_weight(f, wd, out, in, pattern_for(f));
    const std::vector<float> bias = random_vector(out, 12);
    for (const Shape& xs : x_shapes) {
      const Tensor x = random_tensor(xs, 13);
      const int64_t batch = x.numel() / in;
      Shape ys = xs;
      ys.back() = out;
      for (bool has_bias : {false, true}) {
        for (Activation act : {Activation::kNone, Activation::kRelu}) {
          Ints ints = {{"act", {static_cast<int64_t>(act)}}};
          auto node = one_node(make_linear, "linear", xs, ints, {w},
                               has_bias ? std::vector<std::shared_ptr<const Tensor>>{f32_tensor({out}, bias)}
                                        : std::vector<std::shared_ptr<const Tensor>>{});
          const Tensor b = *f32_tensor({out}, bias);
          const std::vector<float> xv(x.data_as<float>(), x.data_as<float>() + x.numel());
          const std::vector<double> ref =
              dense_product(wd, out, in, xv, batch, has_bias ? bias.data() : nullptr, act);
          for (const RunContext& ctx : kContexts) {
            std::vector<const Tensor*> ins = {&x};
            if (has_bias) ins.push_back(&b);
            expect_close(run_op(*node->op, ins, ctx), ys, ref,
                         std::string("linear ") + to_string(f) + " x " + shape_string(xs) +
                             (has_bias ? " bias " : " no bias ") + to_string(act) + " " + context_string(ctx));
          }
        }
      }
    }
  }
}

TEST(Linear, KernelNameFollowsBatchAndMode) {
  const std::vector<float> wd = random_weight(8, 16, 0.5, {}, 1);
  std::shared_ptr<const Weight> w = std::make_shared<CsrMatrix>(wd.data(), 8, 16);
  auto node = one_node(make_linear, "linear", {4, 16}, {}, {w});
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {4, 16}}}, {1, false}), select_kernel(*w, 4).name);
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {16}}}, {1, false}), select_kernel(*w, 1).name);
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {2, 3, 16}}}, {1, true}), std::string("spmm_csr_f32_ref"));
}

TEST(Linear, Errors) {
  const std::vector<float> wd = random_weight(4, 6, 1.0, {}, 1);
  std::shared_ptr<const Weight> w = std::make_shared<DenseMatrix>(wd.data(), 4, 6);
  auto node = one_node(make_linear, "linear", {2, 6}, {}, {w});
  const Op& op = *node->op;
  expect_error(error_of([&] { op.infer({{DType::kF32, {2, 5}}}, 1); }),
               {"node 'layer' (linear)", "(2, 5)", "(4, 6)", "expected x's last dim to be 6"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {}}}, 1); }), {"shape ()", "(4, 6)"});
  expect_error(error_of([&] { op.infer({{DType::kI64, {2, 6}}}, 1); }), {"dtype i64", "expected f32"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {2, 6}}, {DType::kF32, {5}}}, 1); }),
               {"bias has shape (5,)", "expected bias (4,)"});
  expect_error(error_of([&] { op.infer({}, 1); }), {"got 0 inputs", "expected 1 to 2"});
  expect_error(error_of([&] { one_node(make_linear, "linear", {2, 6}, {{"act", {42}}}, {w}); }),
               {"attribute 'act' is 42", "expected an Activation", "1 relu"});
  expect_error(error_of([&] { one_node(make_linear, "linear", {2, 6}, {}, {w, w}); }),
               {"has 2 packed weights", "expected 1"});
}

// ---------------------------------------------------------------------------------------------
// conv2d

struct ConvSpec {
  int64_t n, c, h, w, oc, kh, kw, sh, sw, ph, pw, dh, dw, groups;
  int64_t oh() const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
  int64_t ow() const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
  std::string str() const {
    std::ostringstream s;
    s << "x (" << n << ", " << c << ", " << h << ", " << w << ") oc " << oc << " kernel " << kh << "x" << kw
      << " stride " << sh << "x" << sw << " padding " << ph << "x" << pw << " dilation " << dh << "x" << dw
      << " groups " << groups;
    return s.str();
  }
  Ints ints(Activation act) const {
    return {{"kernel", {kh, kw}}, {"stride", {sh, sw}},   {"padding", {ph, pw}},
            {"dilation", {dh, dw}}, {"groups", {groups}}, {"act", {static_cast<int64_t>(act)}}};
  }
};

/// PyTorch's conv2d in double: wt is (oc, c / groups, kh, kw).
std::vector<double> conv_ref(const ConvSpec& s, const float* x, const std::vector<float>& wt, const float* bias,
                             Activation act) {
  const int64_t cg = s.c / s.groups, ocg = s.oc / s.groups, oh = s.oh(), ow = s.ow();
  std::vector<double> y(static_cast<size_t>(s.n * s.oc * oh * ow));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t o = 0; o < s.oc; ++o)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t q = 0; q < ow; ++q) {
          double acc = bias ? bias[o] : 0.0;
          const int64_t g = o / ocg;
          for (int64_t c = 0; c < cg; ++c)
            for (int64_t i = 0; i < s.kh; ++i)
              for (int64_t j = 0; j < s.kw; ++j) {
                const int64_t ih = r * s.sh - s.ph + i * s.dh, iw = q * s.sw - s.pw + j * s.dw;
                if (ih < 0 || ih >= s.h || iw < 0 || iw >= s.w) continue;
                acc += double{wt[((o * cg + c) * s.kh + i) * s.kw + j]} *
                       x[((n * s.c + g * cg + c) * s.h + ih) * s.w + iw];
              }
          y[((n * s.oc + o) * oh + r) * ow + q] = activate_ref(acc, act);
        }
  return y;
}

/// The weights of every group in format f, and the whole (oc, c / groups, kh, kw) tensor they form.
std::vector<std::shared_ptr<const Weight>> conv_weights(const ConvSpec& s, Format f, uint32_t seed,
                                                        std::vector<float>& full) {
  const int64_t ocg = s.oc / s.groups, kg = s.c / s.groups * s.kh * s.kw;
  std::vector<std::shared_ptr<const Weight>> out;
  full.clear();
  for (int64_t g = 0; g < s.groups; ++g) {
    const std::vector<float> wg = random_weight(ocg, kg, density_for(f), pattern_for(f), seed + g);
    out.push_back(make_weight(f, wg, ocg, kg, pattern_for(f)));
    full.insert(full.end(), wg.begin(), wg.end());  // rows of group g follow those of g − 1
  }
  return out;
}

const ConvSpec kConvSpecs[] = {
    // n  c   h   w  oc kh kw sh sw ph pw dh dw groups
    {1, 3, 11, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // odd sizes, same padding
    {3, 4, 9, 10, 6, 3, 3, 2, 2, 1, 1, 1, 1, 2},    // batch 3, stride 2, groups 2
    {1, 4, 12, 12, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1},   // dilation 2
    {1, 6, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6},     // groups = C
    {2, 8, 8, 8, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1},    // 1×1 read in place (H·W = 64)
    {1, 5, 7, 9, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1},     // 1×1 with H·W = 63: packed with padding
    {2, 8, 1, 1, 4, 1, 1, 1, 1, 0, 0, 1, 1, 2},     // 1×1 on one pixel: a plain vector
    {1, 4, 9, 9, 6, 1, 1, 2, 2, 0, 0, 1, 1, 1},     // 1×1, stride 2
    {1, 3, 23, 21, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1},   // 7×7 stem
    {1, 16, 37, 29, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1}, // several chunks of pixels, the last one ragged
    {1, 8, 16, 37, 12, 1, 1, 1, 1, 0, 0, 1, 1, 2},  // 1×1 read in place in several chunks
    {2, 4, 3, 3, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},     // one output pixel: batch-1 kernels
    {1, 2, 10, 7, 3, 3, 1, 2, 1, 1, 0, 1, 1, 1},    // 3×1 kernel, unequal strides and padding
    {1, 3, 40, 40, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // CSR direct: several chunks, one ending mid-row
    {1, 4, 21, 19, 6, 3, 3, 2, 3, 2, 1, 2, 1, 1},   // stride 2×3 with dilation 2×1: phases unused
    {1, 300, 5, 6, 40, 3, 3, 1, 1, 1, 1, 1, 1, 1},  // CSR direct: channels in 3 column blocks
    // Dense conv_gemm's paths: wide pixels in pixel tiles (≥ 256) or packed for channel vectors
    // (cols ≥ 256), im2col-free stride 2, 1×1 in place by pixel tiles and by channel vectors.
    {3, 5, 7, 9, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},     // batch 3, odd channels, 7×9
    {1, 17, 20, 19, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1},   // stride 2, 17 channels
    {1, 3, 30, 31, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1},   // 930 wide pixels: pixel tiles, ragged tail
    {1, 40, 9, 7, 33, 3, 3, 1, 1, 1, 1, 1, 1, 1},    // 360 columns, 63 pixels: channel vectors, 33 rows
    {2, 30, 14, 14, 20, 3, 3, 2, 2, 0, 0, 1, 1, 1},  // stride 2, no padding, channel vectors
    {1, 5, 17, 17, 9, 1, 1, 1, 1, 0, 0, 1, 1, 1},    // 1×1 on 289 pixels: pixel tiles, masked tail
    {3, 260, 4, 5, 20, 1, 1, 1, 1, 0, 0, 1, 1, 1},   // 1×1 on 20 pixels: channel vectors in place
    {1, 300, 30, 31, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1},  // 1×1 on 930 pixels: im2col copies runs from 3 chunks
    {2, 10, 24, 23, 13, 1, 1, 1, 1, 0, 0, 1, 1, 1},  // 1×1 on 552 pixels: N:M on lockstep panels, a padded group
    // N:M on aligned plane copies (rows of 16 floats wasting under a quarter of the lanes): stride 2
    // (2 column shifts), dilation 2, unequal strides, 1×1 at stride 2, groups over a batch.
    {1, 6, 20, 62, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1},   // 31 outputs a row, 32 phase columns
    {1, 5, 9, 60, 7, 3, 3, 1, 1, 2, 2, 2, 2, 1},     // dilation 2: shifts 0, 2, 4
    {1, 4, 11, 58, 6, 3, 3, 1, 2, 1, 1, 1, 1, 1},    // stride 1×2
    {1, 8, 6, 62, 12, 1, 1, 2, 2, 0, 0, 1, 1, 1},    // 1×1, stride 2: one phase of four
    {2, 8, 7, 30, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2},     // groups 2, batch 2
    // Dense 3 × 3 at stride 1 from 16 tiles of 4 × 4 outputs: Winograd, ragged tiles and channel blocks.
    {2, 17, 13, 11, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1},  // 2 images of 4 × 3 tiles, the last row and column partial
    {1, 33, 18, 18, 7, 3, 3, 1, 1, 0, 0, 1, 1, 1},   // unpadded: 16 × 16 outputs, 3 channel blocks
    {1, 8, 14, 15, 16, 3, 3, 1, 1, 2, 2, 1, 1, 1},   // padding 2: 16 × 17 outputs
};

TEST(Conv2d, MatchesOracle) {
  uint32_t seed = 100;
  for (const ConvSpec& s : kConvSpecs) {
    const Shape xs = {s.n, s.c, s.h, s.w};
    const Tensor x = random_tensor(xs, ++seed);
    const std::vector<float> bias = random_vector(s.oc, ++seed);
    const Tensor b = *f32_tensor({s.oc}, bias);
    for (Format f : kFormats) {
      std::vector<float> full;
      const auto weights = conv_weights(s, f, ++seed, full);
      for (bool has_bias : {false, true}) {
        for (Activation act : {Activation::kNone, Activation::kRelu}) {
          auto node = one_node(make_conv2d, "conv2d", xs, s.ints(act), weights,
                               has_bias ? std::vector<std::shared_ptr<const Tensor>>{f32_tensor({s.oc}, bias)}
                                        : std::vector<std::shared_ptr<const Tensor>>{});
          const std::vector<double> ref = conv_ref(s, x.data_as<float>(), full, has_bias ? bias.data() : nullptr, act);
          for (const RunContext& ctx : kContexts) {
            std::vector<const Tensor*> ins = {&x};
            if (has_bias) ins.push_back(&b);
            expect_close(run_op(*node->op, ins, ctx), {s.n, s.oc, s.oh(), s.ow()}, ref,
                         "conv2d " + s.str() + " " + to_string(f) + (has_bias ? " bias " : " no bias ") +
                             to_string(act) + " " + context_string(ctx));
          }
        }
      }
    }
  }
}

// CSR convolutions keep a plan per input size (DirectPlan): sizes in turn on one node, each checked.
// Winograd over several blocks of tiles (their transformed inputs outgrow one block), batch 2.
TEST(Conv2d, WinogradTileBlocks) {
  const ConvSpec s = {2, 300, 30, 26, 20, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  std::vector<float> full;
  const auto weights = conv_weights(s, Format::kDense, 31, full);
  const Tensor x = random_tensor({s.n, s.c, s.h, s.w}, 32);
  const std::vector<float> bias = random_vector(s.oc, 33);
  auto node = one_node(make_conv2d, "conv2d", {s.n, s.c, s.h, s.w}, s.ints(Activation::kRelu), weights,
                       {f32_tensor({s.oc}, bias)});
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {s.n, s.c, s.h, s.w}}}, {1, false}),
            std::string(tensor_kernels().name) + ".winograd");
  const std::vector<double> ref = conv_ref(s, x.data_as<float>(), full, bias.data(), Activation::kRelu);
  const Tensor b = *f32_tensor({s.oc}, bias);
  for (const RunContext& ctx : kContexts) {
    expect_close(run_op(*node->op, {&x, &b}, ctx), {s.n, s.oc, s.oh(), s.ow()}, ref,
                 "conv2d winograd blocks " + s.str() + " " + context_string(ctx));
  }
}

// Winograd wants 16 tiles of 4 × 4 outputs in a product: a micro-batch of 7 × 7 images holds 4.
TEST(Conv2d, MinItemsCoverWinogradsTiles) {
  const ConvSpec s = {1, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1};
  for (Format f : {Format::kDense, Format::kCsr}) {
    std::vector<float> full;
    auto node = one_node(make_conv2d, "conv2d", {1, s.c, s.h, s.w}, s.ints(Activation::kNone), conv_weights(s, f, 3, full));
    const int64_t dense = f == Format::kDense;
    EXPECT_EQ(node->op->min_items({{DType::kF32, {1, s.c, 7, 7}}}), dense ? 4 : 1);    // 4 tiles an image
    EXPECT_EQ(node->op->min_items({{DType::kF32, {1, s.c, 14, 14}}}), 1);             // 16
    EXPECT_EQ(node->op->min_items({{DType::kF32, {1, s.c, 3, 3}}}), dense ? 16 : 1);  // 1
  }
}

TEST(Conv2d, InputSizesInTurn) {
  std::vector<float> full;
  const ConvSpec base = {2, 5, 9, 11, 7, 3, 3, 2, 1, 1, 1, 1, 1, 1};
  const auto weights = conv_weights(base, Format::kCsr, 5, full);
  auto node = one_node(make_conv2d, "conv2d", {base.n, base.c, base.h, base.w}, base.ints(Activation::kNone), weights);
  uint32_t seed = 60;
  for (auto [h, w] : {std::pair<int64_t, int64_t>{9, 11}, {9, 6}, {16, 6}, {9, 11}, {3, 3}}) {
    ConvSpec s = base;
    s.h = h;
    s.w = w;
    const Tensor x = random_tensor({s.n, s.c, s.h, s.w}, ++seed);
    const std::vector<double> ref = conv_ref(s, x.data_as<float>(), full, nullptr, Activation::kNone);
    for (const RunContext& ctx : kContexts) {
      expect_close(run_op(*node->op, {&x}, ctx), {s.n, s.oc, s.oh(), s.ow()}, ref,
                   "conv2d " + s.str() + " " + context_string(ctx));
    }
  }
}

// residual = 1: y = act(conv(x) + bias + residual), on each path (direct CSR, im2col, 1×1 in place,
// a one-pixel output) and with an activation that is not ReLU; a residual of another shape is refused.
TEST(Conv2d, ResidualAddsBeforeActivation) {
  const ConvSpec specs[] = {
      {2, 8, 9, 10, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1},  // direct for CSR, im2col otherwise
      {2, 8, 8, 8, 16, 1, 1, 1, 1, 0, 0, 1, 1, 1},   // 1×1 read in place
      {1, 6, 9, 9, 10, 3, 3, 2, 2, 1, 1, 1, 1, 2},   // stride 2, groups 2
      {2, 4, 3, 3, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},    // one output pixel
  };
  uint32_t seed = 900;
  for (const ConvSpec& s : specs) {
    const Shape ys = {s.n, s.oc, s.oh(), s.ow()};
    const Tensor x = random_tensor({s.n, s.c, s.h, s.w}, ++seed);
    const Tensor res = random_tensor(ys, ++seed);
    const std::vector<float> bias = random_vector(s.oc, ++seed);
    for (Format f : kFormats) {
      std::vector<float> full;
      const auto weights = conv_weights(s, f, ++seed, full);
      for (bool has_bias : {false, true}) {
        for (Activation act : {Activation::kRelu, Activation::kSilu}) {
          Ints ints = s.ints(act);
          ints["residual"] = {1};
          std::vector<std::shared_ptr<const Tensor>> constants;
          if (has_bias) constants.push_back(f32_tensor({s.oc}, bias));
          constants.push_back(f32_tensor(ys, std::vector<float>(res.data_as<float>(), res.data_as<float>() + res.numel())));
          auto node = one_node(make_conv2d, "conv2d", {s.n, s.c, s.h, s.w}, ints, weights, constants);
          std::vector<double> ref = conv_ref(s, x.data_as<float>(), full, has_bias ? bias.data() : nullptr,
                                             Activation::kNone);
          for (size_t i = 0; i < ref.size(); ++i) ref[i] = activate_f64(ref[i] + res.data_as<float>()[i], act);
          const std::vector<const Tensor*> ins = has_bias ? std::vector<const Tensor*>{&x, constants[0].get(), &res}
                                                          : std::vector<const Tensor*>{&x, &res};
          for (const RunContext& ctx : kContexts) {
            expect_close(run_op(*node->op, ins, ctx), ys, ref,
                         "conv2d residual " + s.str() + " " + to_string(f) + (has_bias ? " bias " : " no bias ") +
                             to_string(act) + " " + context_string(ctx));
          }
        }
      }
    }
  }
  const ConvSpec s = specs[0];
  std::vector<float> full;
  const auto weights = conv_weights(s, Format::kCsr, 5, full);
  Ints ints = s.ints(Activation::kRelu);
  ints["residual"] = {1};
  expect_error(error_of([&] { one_node(make_conv2d, "conv2d", {s.n, s.c, s.h, s.w}, ints, weights); }),
               {"got 1 inputs", "x [, bias], residual"});
  const Shape ys = {s.n, s.oc, s.oh(), s.ow()};
  auto node = one_node(make_conv2d, "conv2d", {s.n, s.c, s.h, s.w}, ints, weights,
                       {f32_tensor(ys, std::vector<float>(static_cast<size_t>(s.n * s.oc * s.oh() * s.ow())))});
  const Op& op = *node->op;
  expect_error(error_of([&] { op.infer({{DType::kF32, {s.n, s.c, s.h, s.w}}, {DType::kF32, {s.n, s.oc, s.oh(), 1}}}, 1); }),
               {"input residual has shape (2, 12, 9, 1)", "expected the output's shape (2, 12, 9, 10)"});
}

TEST(Conv2d, UnbatchedAndUnalignedInputs) {
  // A 1×1 convolution reads its input in place only when aligned; an offset copy takes the packed path.
  const ConvSpec s = {1, 8, 4, 8, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  std::vector<float> full;
  const auto weights = conv_weights(s, Format::kCsr, 7, full);
  const Tensor x = random_tensor({s.c, s.h, s.w}, 8);
  const std::vector<double> ref = conv_ref(s, x.data_as<float>(), full, nullptr, Activation::kNone);
  auto node = one_node(make_conv2d, "conv2d", {s.c, s.h, s.w}, s.ints(Activation::kNone), weights);
  expect_close(run_op(*node->op, {&x}, {1, false}), {s.oc, s.oh(), s.ow()}, ref, "unbatched 1x1");

  std::vector<float> shifted(static_cast<size_t>(x.numel() + 1));
  std::memcpy(shifted.data() + 1, x.data(), static_cast<size_t>(x.nbytes()));
  const TensorView view{DType::kF32, {1, s.c, s.h, s.w}, shifted.data() + 1};
  const TensorDesc out = node->op->infer({{DType::kF32, view.shape}}, 1);
  Tensor y(DType::kF32, out.shape);
  node->op->run({view}, out, y.data(), {2, false});
  expect_close(y, {1, s.oc, s.oh(), s.ow()}, ref, "unaligned 1x1");
}

TEST(Conv2d, KernelName) {
  const ConvSpec s = {1, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2};
  std::vector<float> full;
  const auto weights = conv_weights(s, Format::kNM, 3, full);
  auto node = one_node(make_conv2d, "conv2d", {1, 4, 6, 6}, s.ints(Activation::kNone), weights);
  // 36 output pixels: conv_gemm on lockstep panels; 9 (under kMinPixelRows): the spmm kernels.
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {1, 4, 6, 6}}}, {1, false}),
            std::string(tensor_kernels().name) + ".conv_gemm_nm");
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {1, 4, 6, 6}}}, {1, true}), std::string("tensor_f32_ref.conv_gemm_nm"));
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {1, 4, 3, 3}}}, {1, false}), select_kernel(*weights[0], 9).name);
  EXPECT_EQ(node->op->kernel_name({{DType::kF32, {1, 4, 3, 3}}}, {1, true}), std::string("spmm_nm_f32_ref"));

  // 1 × 1: lockstep panels from kMinPointwiseNmPixels (512) output pixels, the spmm kernels below.
  const ConvSpec p = {1, 8, 24, 24, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  const auto pw = conv_weights(p, Format::kNM, 4, full);
  auto pointwise = one_node(make_conv2d, "conv2d", {1, 8, 24, 24}, p.ints(Activation::kNone), pw);
  EXPECT_EQ(pointwise->op->kernel_name({{DType::kF32, {1, 8, 24, 24}}}, {1, false}),
            std::string(tensor_kernels().name) + ".conv_gemm_nm");
  EXPECT_EQ(pointwise->op->kernel_name({{DType::kF32, {1, 8, 22, 23}}}, {1, false}),
            select_kernel(*pw[0], 256).name);
}

TEST(Conv2d, Errors) {
  const ConvSpec s = {1, 6, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2};
  std::vector<float> full;
  const auto weights = conv_weights(s, Format::kDense, 3, full);
  auto node = one_node(make_conv2d, "conv2d", {1, 6, 8, 8}, s.ints(Activation::kNone), weights);
  const Op& op = *node->op;
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 4, 8, 8}}}, 1); }),
               {"node 'layer' (conv2d)", "x has shape (1, 4, 8, 8)", "weight has shape (4, 3, 3, 3)", "groups 2",
                "expected x's channel dim to be 6"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {6, 8}}}, 1); }),
               {"shape (6, 8)", "expected 4 dims (N, C, H, W)"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 1, 6, 8, 8}}}, 1); }), {"shape (1, 1, 6, 8, 8)"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 6, 0, 8}}}, 1); }), {"expected non-zero C, H and W"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 6, 8, 8}}, {DType::kF32, {3}}}, 1); }),
               {"bias has shape (3,)", "expected bias (4,)"});
  // 3×3 on a 1-pixel-high input without padding: too small.
  auto unpadded = one_node(make_conv2d, "conv2d", {1, 6, 1, 8},
                           {{"kernel", {3, 3}}, {"groups", {2}}}, weights);
  expect_error(error_of([&] { unpadded->op->infer({{DType::kF32, {1, 6, 1, 8}}}, 1); }),
               {"shape (1, 6, 1, 8)", "height 1", "expected at least the dilated kernel size 3"});

  auto make = [&](const Ints& ints, std::vector<std::shared_ptr<const Weight>> w) {
    return error_of([&] { one_node(make_conv2d, "conv2d", {1, 6, 8, 8}, ints, std::move(w)); });
  };
  expect_error(make({{"kernel", {3, 3}}, {"stride", {0, 1}}, {"groups", {2}}}, weights),
               {"attribute 'stride' is [0, 1]", "expected values from 1 to 1048576"});
  expect_error(make({{"kernel", {3}}, {"groups", {2}}}, weights),
               {"attribute 'kernel' is [3]", "expected 2 values"});
  expect_error(make({{"kernel", {3, 3}}, {"padding", {-1, 0}}, {"groups", {2}}}, weights),
               {"attribute 'padding' is [-1, 0]", "expected values from 0 to 1048576"});
  expect_error(make({{"groups", {2}}}, weights), {"missing integer attribute 'kernel'"});
  expect_error(make({{"kernel", {3, 3}}, {"groups", {3}}}, weights),
               {"has 2 packed weights", "groups = 3"});
  expect_error(make({{"kernel", {3, 3}}, {"groups", {0}}}, weights), {"attribute 'groups' is 0", "expected ≥ 1"});
  expect_error(make({{"kernel", {2, 2}}, {"groups", {2}}}, weights),
               {"weight 0 has shape (2, 27)", "multiple of kernel 2×2 = 4"});
  expect_error(make({{"kernel", {3, 3}}, {"groups", {2}}, {"act", {-1}}}, weights), {"attribute 'act' is -1"});
  std::vector<float> other_full;
  const ConvSpec t = {1, 6, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2};
  const auto other = conv_weights(t, Format::kDense, 4, other_full);
  expect_error(make({{"kernel", {3, 3}}, {"groups", {2}}}, {weights[0], other[1]}),
               {"weight 1 has shape (3, 27) but weight 0 has (2, 27)"});
}

// ---------------------------------------------------------------------------------------------
// depthwise_conv2d

struct DepthwiseSpec {
  int64_t n, c, m, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  ConvSpec conv() const { return {n, c, h, w, c * m, kh, kw, sh, sw, ph, pw, dh, dw, c}; }
};

const DepthwiseSpec kDepthwiseSpecs[] = {
    // n  c  m   h   w kh kw sh sw ph pw dh dw
    {1, 4, 1, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1},
    {3, 3, 2, 10, 9, 3, 3, 2, 2, 1, 1, 1, 1},  // multiplier 2, batch 3, stride 2
    {1, 5, 1, 12, 12, 5, 5, 1, 1, 4, 4, 2, 2},  // dilation 2
    {2, 4, 1, 14, 15, 7, 7, 2, 2, 3, 3, 1, 1},  // 7×7
    {1, 2, 3, 6, 5, 1, 1, 1, 1, 0, 0, 1, 1},    // 1×1, multiplier 3
    {1, 3, 1, 7, 8, 3, 2, 1, 2, 0, 1, 1, 1},    // 3×2, unequal strides and padding
    {2, 8, 1, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1},  // enough work for two threads
    {3, 17, 1, 7, 9, 3, 3, 2, 2, 0, 0, 1, 1},   // batch 3, odd channels, stride 2 unpadded
    {1, 5, 2, 40, 37, 3, 3, 1, 1, 1, 1, 1, 1},  // rows of several vectors, multiplier 2
    {2, 3, 1, 11, 13, 3, 3, 3, 3, 1, 1, 1, 1},  // stride 3: the scalar loop
};

TEST(DepthwiseConv2d, MatchesOracle) {
  uint32_t seed = 200;
  for (const DepthwiseSpec& d : kDepthwiseSpecs) {
    const ConvSpec s = d.conv();
    const Shape xs = {s.n, s.c, s.h, s.w}, ws = {s.oc, 1, s.kh, s.kw};
    const Tensor x = random_tensor(xs, ++seed);
    const std::vector<float> wt = random_vector(numel(ws), ++seed), bias = random_vector(s.oc, ++seed);
    const Tensor wtt = *f32_tensor(ws, wt), b = *f32_tensor({s.oc}, bias);
    for (bool has_bias : {false, true}) {
      for (Activation act : {Activation::kNone, Activation::kRelu}) {
        Ints ints = s.ints(act);
        ints.erase("groups");
        std::vector<std::shared_ptr<const Tensor>> constants = {f32_tensor(ws, wt)};
        if (has_bias) constants.push_back(f32_tensor({s.oc}, bias));
        auto node = one_node(make_depthwise_conv2d, "depthwise_conv2d", xs, ints, {}, constants);
        const std::vector<double> ref = conv_ref(s, x.data_as<float>(), wt, has_bias ? bias.data() : nullptr, act);
        for (const RunContext& ctx : kContexts) {
          std::vector<const Tensor*> ins = {&x, &wtt};
          if (has_bias) ins.push_back(&b);
          expect_close(run_op(*node->op, ins, ctx), {s.n, s.oc, s.oh(), s.ow()}, ref,
                       "depthwise " + s.str() + (has_bias ? " bias " : " no bias ") + to_string(act) + " " +
                           context_string(ctx));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The convolution loops of every TensorKernels set this CPU runs, against double loops: conv_gemm's
// pixel tiles and channel vectors, with and without wide pixels (rows at offsets, a padded row's tail
// dropped; in wide tiles, or along each output row), on dense and lockstep-sparse panels, and
// depthwise_planes over strides, padding, dilation and multipliers.

std::vector<const TensorKernels*> runnable_tensor_kernels() {
  std::vector<const TensorKernels*> out;
  for (const TensorKernels& t : all_tensor_kernels())
    if (isa_available(t.isa)) out.push_back(&t);
  return out;
}

TEST(ConvKernels, GemmMatchesOracle) {
  struct Case {
    int64_t rows, cols, p0, p1, wide_cols, ow;  // wide_cols 0: plain rows ldx apart
  };
  const Case cases[] = {
      {5, 7, 0, 20, 0, 0},     {33, 7, 0, 100, 0, 0},   {40, 300, 0, 100, 0, 0}, {17, 19, 3, 300, 0, 0},
      {33, 300, 0, 61, 0, 0},  {20, 260, 0, 43, 9, 7},  {33, 30, 11, 358, 9, 7}, {48, 290, 5, 200, 16, 14},
      {7, 12, 0, 300, 30, 28}, {16, 0, 0, 37, 0, 0},
      // Few steps on rows that whole vectors fill (row-tiled): a stem's 112 outputs of rows of 113, 45
      // in rows of 50 (a masked vector), a share of the rows starting and ending in the dropped tails.
      {40, 27, 5, 1100, 113, 112}, {17, 100, 200, 900, 50, 45}, {9, 20, 48, 297, 50, 45},
  };
  uint32_t seed = 3000;
  for (const TensorKernels* tk : runnable_tensor_kernels()) {
    for (const Case& c : cases)
    for (bool sparse : {false, true}) {
      const int64_t ldx = c.p1 + 5;
      std::vector<int64_t> offsets(static_cast<size_t>(c.cols));
      for (int64_t k = 0; k < c.cols; ++k) offsets[static_cast<size_t>(k)] = k * 13 + k % 3;
      const int64_t x_len = c.wide_cols > 0 ? c.cols * 13 + c.p1 + 64 : c.cols * ldx;
      const std::vector<float> x = random_vector(x_len, ++seed);
      std::vector<float> wv = random_vector(c.rows * c.cols, ++seed);
      const std::vector<float> bias = random_vector(c.rows, ++seed);
      const DenseMatrix w(wv.data(), c.rows, c.cols);
      // Sparse: each row keeps 3 of every 7 columns, at its own positions, as lockstep panels whose
      // entries hold their input row's offset (ldx 1) where the dense product looks it up.
      const int64_t steps = sparse ? c.cols / 7 * 3 + std::min<int64_t>(c.cols % 7, 3) : c.cols;
      AlignedVector<ConvEntry> entries(static_cast<size_t>((c.rows + 15) / 16 * 16 * steps), ConvEntry{0.0f, 0});
      if (sparse) {
        std::mt19937 rng(++seed);
        for (int64_t r = 0; r < c.rows; ++r) {
          int64_t s = 0;
          for (int64_t g = 0; g < c.cols; g += 7) {
            std::vector<int64_t> pick;
            for (int64_t k = g; k < std::min(c.cols, g + 7); ++k) pick.push_back(k);
            std::shuffle(pick.begin(), pick.end(), rng);
            pick.resize(std::min<size_t>(pick.size(), 3));
            std::sort(pick.begin(), pick.end());
            for (int64_t k = g; k < std::min(c.cols, g + 7); ++k)
              if (std::find(pick.begin(), pick.end(), k) == pick.end()) wv[static_cast<size_t>(r * c.cols + k)] = 0.0f;
            for (int64_t k : pick) {
              const size_t e = static_cast<size_t>((r / 16 * steps + s++) * 16 + r % 16);
              const int64_t at = c.wide_cols > 0 ? offsets[static_cast<size_t>(k)] : k;
              entries[e] = {wv[static_cast<size_t>(r * c.cols + k)], static_cast<int32_t>(at)};
            }
          }
        }
      }
      const ConvPanels panels = sparse ? ConvPanels{nullptr, entries.data(), steps, c.cols}
                                       : ConvPanels{w.panels(), nullptr, c.cols, c.cols};
      // Output pixel of product pixel p, or -1 where a wide row's tail drops it.
      const auto out_pixel = [&](int64_t p) -> int64_t {
        if (c.wide_cols == 0) return p;
        return p % c.wide_cols < c.ow ? p / c.wide_cols * c.ow + p % c.wide_cols : -1;
      };
      const int64_t ldy = c.wide_cols > 0 ? (c.p1 / c.wide_cols + 1) * c.ow : c.p1;
      const std::vector<float> res = random_vector(c.rows * ldy, ++seed);
      AlignedVector<float> scratch(static_cast<size_t>(conv_gemm_scratch_floats(c.rows)));
      for (Activation act : {Activation::kNone, Activation::kRelu6, Activation::kSilu}) {
        for (int variant = 0; variant < 3; ++variant) {  // bias and residual; neither; no scratch
          const bool extras = variant == 0;
          std::vector<float> y(static_cast<size_t>(c.rows * ldy), std::numeric_limits<float>::quiet_NaN());
          const bool by_offset = c.wide_cols > 0;
          const ConvGemmArgs a{x.data(), sparse && by_offset ? 1 : ldx, by_offset && !sparse ? offsets.data() : nullptr, c.p0, c.p1, c.wide_cols, c.ow,
                               extras ? bias.data() : nullptr, extras ? res.data() : nullptr, y.data(), ldy, act,
                               variant == 2 && c.wide_cols == 0 ? nullptr : scratch.data()};
          tk->conv_gemm(panels, c.rows, a);
          std::vector<double> ref(y.size(), std::numeric_limits<double>::quiet_NaN());
          for (int64_t r = 0; r < c.rows; ++r)
            for (int64_t p = c.p0; p < c.p1; ++p) {
              const int64_t o = out_pixel(p);
              if (o < 0) continue;
              double acc = extras ? double{bias[static_cast<size_t>(r)]} + res[static_cast<size_t>(r * ldy + o)] : 0.0;
              for (int64_t k = 0; k < c.cols; ++k) {
                const int64_t xi = c.wide_cols > 0 ? offsets[static_cast<size_t>(k)] + p : k * ldx + p;
                acc += double{wv[static_cast<size_t>(r * c.cols + k)]} * x[static_cast<size_t>(xi)];
              }
              ref[static_cast<size_t>(r * ldy + o)] = activate_f64(acc, act);
            }
          Tensor got(DType::kF32, {c.rows, ldy});
          std::copy(y.begin(), y.end(), got.data_as<float>());
          std::ostringstream what;
          what << tk->name << (sparse ? " sparse" : " dense") << " conv_gemm rows " << c.rows << " cols " << c.cols << " pixels [" << c.p0 << ", " << c.p1
               << ") wide " << c.wide_cols << "/" << c.ow << " " << to_string(act) << " variant " << variant;
          expect_close(got, {c.rows, ldy}, ref, what.str());
        }
      }
    }
  }
}

// Winograd's transforms against double loops: tiles in partial groups of 16, several channel blocks,
// strides between ξ's products and rows that no vector divides, outputs clipped at the edges.
TEST(ConvKernels, WinogradMatchesOracle) {
  struct Case {
    int64_t blocks, th, tw, rows, oh, ow;  // tiles th × tw, outputs oh × ow of them
  };
  const Case cases[] = {{1, 1, 5, 3, 4, 19}, {3, 4, 4, 19, 15, 14}, {2, 5, 8, 1, 20, 32}, {1, 2, 3, 17, 6, 9}};
  constexpr int64_t kB = kWinogradBlock, kA = kWinogradAlpha, kM = kWinogradTile;
  uint32_t seed = 5000;
  for (const TensorKernels* tk : runnable_tensor_kernels()) {
    for (const Case& c : cases) {
      const int64_t count = c.th * c.tw, hp = c.th * kM + 2, wp = c.tw * kM + 2, block_stride = hp * wp * kB + 16;
      const int64_t ldv = count + 3, xi_v = c.blocks * kB * ldv + 7, xi_m = c.rows * ldv + 5;
      std::vector<WinogradTile> tiles;
      for (int64_t i = 0; i < c.th; ++i)
        for (int64_t j = 0; j < c.tw; ++j) {
          tiles.push_back({(i * kM * wp + j * kM) * kB, i * kM * c.ow + j * kM,
                           static_cast<int32_t>(std::min(kM, c.oh - i * kM)), static_cast<int32_t>(std::min(kM, c.ow - j * kM))});
        }
      const std::vector<float> image = random_vector(c.blocks * block_stride, ++seed);
      std::vector<float> v(static_cast<size_t>(kA * kA * xi_v), std::numeric_limits<float>::quiet_NaN());
      tk->winograd_input({image.data(), wp, block_stride, c.blocks, tiles.data(), count, v.data(), ldv, xi_v});
      std::vector<double> v_ref(v.size(), std::numeric_limits<double>::quiet_NaN());
      for (int64_t t = 0; t < count; ++t)
        for (int64_t ch = 0; ch < c.blocks * kB; ++ch)
          for (int a = 0; a < kA; ++a)
            for (int b = 0; b < kA; ++b) {
              double acc = 0.0;
              for (int r = 0; r < kA; ++r)
                for (int q = 0; q < kA; ++q) {
                  acc += double{kWinogradBT[a][r]} * kWinogradBT[b][q] *
                         image[static_cast<size_t>(ch / kB * block_stride + tiles[static_cast<size_t>(t)].in +
                                                   (r * wp + q) * kB + ch % kB)];
                }
              v_ref[static_cast<size_t>((a * kA + b) * xi_v + ch * ldv + t)] = acc;
            }
      Tensor got_v(DType::kF32, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), got_v.data_as<float>());
      std::ostringstream what;
      what << tk->name << " winograd_input blocks " << c.blocks << " tiles " << c.th << "x" << c.tw;
      expect_close(got_v, {static_cast<int64_t>(v.size())}, v_ref, what.str());

      const std::vector<float> m = random_vector(kA * kA * xi_m, ++seed), bias = random_vector(c.rows, ++seed);
      for (Activation act : {Activation::kNone, Activation::kRelu6, Activation::kSilu}) {
        for (bool has_bias : {true, false}) {
          const int64_t ldy = c.oh * c.ow + 3;
          Tensor y(DType::kF32, {c.rows, ldy});
          std::fill(y.data_as<float>(), y.data_as<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
          tk->winograd_output({m.data(), ldv, xi_m, c.rows, tiles.data(), count, has_bias ? bias.data() : nullptr, act,
                               y.data_as<float>(), ldy, c.ow});
          std::vector<double> ref(static_cast<size_t>(y.numel()), std::numeric_limits<double>::quiet_NaN());
          for (int64_t r = 0; r < c.rows; ++r)
            for (int64_t t = 0; t < count; ++t) {
              const WinogradTile& tile = tiles[static_cast<size_t>(t)];
              for (int a = 0; a < tile.rows; ++a)
                for (int b = 0; b < tile.cols; ++b) {
                  double acc = has_bias ? bias[static_cast<size_t>(r)] : 0.0;
                  for (int i = 0; i < kA; ++i)
                    for (int j = 0; j < kA; ++j) {
                      acc += double{kWinogradAT[a][i]} * kWinogradAT[b][j] *
                             m[static_cast<size_t>((i * kA + j) * xi_m + r * ldv + t)];
                    }
                  ref[static_cast<size_t>(r * ldy + tile.out + a * c.ow + b)] = activate_f64(acc, act);
                }
            }
          std::ostringstream out_what;
          out_what << tk->name << " winograd_output rows " << c.rows << " tiles " << c.th << "x" << c.tw << " outputs "
                   << c.oh << "x" << c.ow << " " << to_string(act) << (has_bias ? " bias" : " no bias");
          expect_close(y, {c.rows, ldy}, ref, out_what.str());
        }
      }
    }
  }
}

TEST(ConvKernels, DepthwiseMatchesOracle) {
  // planes, m, h, w, then the geometry without its output size
  struct Case {
    int64_t planes, m, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  };
  const Case cases[] = {
      {3, 1, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1},   {2, 2, 7, 9, 3, 3, 2, 2, 1, 1, 1, 1},
      {1, 1, 17, 5, 3, 3, 2, 2, 0, 0, 1, 1},  {2, 1, 9, 7, 5, 5, 1, 1, 4, 4, 2, 2},
      {1, 3, 8, 8, 3, 3, 3, 3, 1, 1, 1, 1},   {2, 1, 40, 37, 3, 3, 1, 1, 1, 1, 1, 1},
      {1, 1, 1, 33, 1, 3, 1, 1, 0, 1, 1, 1},  {2, 1, 56, 70, 3, 3, 2, 2, 1, 1, 1, 1},
      {1, 1, 14, 14, 7, 7, 1, 2, 3, 3, 1, 1},
      // Stride 1, 3 × 3 and 5 × 5 (rows loaded once for several output rows): output rows not a
      // multiple of the row block, a partial last vector, no padding, two outputs per plane.
      {3, 1, 23, 21, 5, 5, 1, 1, 2, 2, 1, 1},  {2, 2, 11, 38, 3, 3, 1, 1, 0, 0, 1, 1},
      {1, 1, 6, 50, 3, 3, 1, 1, 1, 1, 1, 1},   {2, 1, 9, 16, 5, 5, 1, 1, 1, 1, 1, 1},
      // Stride 2 likewise (rows split into even and odd columns): odd and even widths, padding
      // even and odd, 5 × 5.
      {2, 1, 21, 45, 5, 5, 2, 2, 2, 2, 1, 1},  {3, 1, 19, 37, 3, 3, 2, 2, 0, 0, 1, 1},
      {1, 2, 10, 100, 3, 3, 2, 2, 1, 1, 1, 1}, {1, 1, 12, 66, 5, 5, 2, 2, 1, 1, 1, 1},
      // On AVX-512 the plane itself, its lanes outside the rows masked: padding wider than the taps
      // reach (outputs of padding alone), widths under a vector, several vector blocks to a row; at
      // stride 1 (3 × 3, rows of 48 outputs and more) with padding 2 and none.
      {2, 2, 9, 11, 3, 3, 2, 2, 3, 4, 1, 1},   {1, 2, 13, 5, 5, 5, 2, 2, 2, 2, 1, 1},
      {2, 1, 7, 151, 3, 3, 2, 2, 1, 1, 1, 1},  {1, 1, 6, 97, 5, 5, 2, 2, 4, 5, 1, 1},
      {2, 2, 9, 61, 3, 3, 1, 1, 2, 2, 1, 1},   {1, 1, 7, 50, 3, 3, 1, 1, 0, 0, 1, 1},
      // Outputs a vector's half wide or narrower (vectors along channels): whole groups and a last
      // partial one at 16, 8 and 4 lanes.
      {37, 1, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1}, {20, 1, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1},
      {19, 1, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1},   {9, 1, 4, 4, 3, 3, 2, 2, 1, 1, 1, 1},
      // and their kernels: 5 × 5 at stride 1 and 2 (taps held in registers where 32 are), 7 × 7,
      // and windows neither square nor undilated (any taps, rows and columns looped).
      {21, 1, 7, 7, 5, 5, 1, 1, 2, 2, 1, 1},   {18, 1, 14, 14, 5, 5, 2, 2, 2, 2, 1, 1},
      {17, 1, 7, 7, 7, 7, 1, 1, 3, 3, 1, 1},   {5, 1, 7, 6, 3, 5, 1, 1, 1, 2, 2, 1},
      {6, 1, 8, 6, 2, 3, 1, 1, 1, 2, 1, 2},
  };
  uint32_t seed = 4000;
  for (const TensorKernels* tk : runnable_tensor_kernels()) {
    for (const Case& c : cases) {
      WindowGeometry g{c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.dh, c.dw, 0, 0};
      g.oh = (c.h + 2 * c.ph - c.dh * (c.kh - 1) - 1) / c.sh + 1;
      g.ow = (c.w + 2 * c.pw - c.dw * (c.kw - 1) - 1) / c.sw + 1;
      const int64_t outs = c.planes * c.m;
      const std::vector<float> x = random_vector(c.planes * c.h * c.w, ++seed);
      const std::vector<float> wk = random_vector(outs * c.kh * c.kw, ++seed), bias = random_vector(outs, ++seed);
      AlignedVector<float> scratch(static_cast<size_t>(depthwise_scratch_floats(g, c.h, c.w)));
      for (Activation act : {Activation::kNone, Activation::kRelu6, Activation::kSilu}) {
        for (bool has_bias : {true, false}) {
          Tensor y(DType::kF32, {outs, g.oh, g.ow});
          std::fill(y.data_as<float>(), y.data_as<float>() + y.numel(), std::numeric_limits<float>::quiet_NaN());
          tk->depthwise_planes(x.data(), c.planes, c.h, c.w, g, wk.data(), has_bias ? bias.data() : nullptr, c.m, act,
                               y.data_as<float>(), scratch.data());
          std::vector<double> ref(static_cast<size_t>(y.numel()));
          for (int64_t o = 0; o < outs; ++o)
            for (int64_t r = 0; r < g.oh; ++r)
              for (int64_t q = 0; q < g.ow; ++q) {
                double acc = has_bias ? bias[static_cast<size_t>(o)] : 0.0;
                for (int64_t i = 0; i < c.kh; ++i)
                  for (int64_t j = 0; j < c.kw; ++j) {
                    const int64_t ih = r * c.sh - c.ph + i * c.dh, iw = q * c.sw - c.pw + j * c.dw;
                    if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                    acc += double{wk[static_cast<size_t>((o * c.kh + i) * c.kw + j)]} *
                           x[static_cast<size_t>((o / c.m * c.h + ih) * c.w + iw)];
                  }
                ref[static_cast<size_t>((o * g.oh + r) * g.ow + q)] = activate_f64(acc, act);
              }
          std::ostringstream what;
          what << tk->name << " depthwise planes " << c.planes << " m " << c.m << " " << c.h << "x" << c.w << " kernel "
               << c.kh << "x" << c.kw << " stride " << c.sh << "x" << c.sw << " padding " << c.ph << "x" << c.pw
               << " dilation " << c.dh << "x" << c.dw << " " << to_string(act) << (has_bias ? " bias" : " no bias");
          expect_close(y, {outs, g.oh, g.ow}, ref, what.str());
        }
      }
    }
  }
}

TEST(DepthwiseConv2d, Errors) {
  const Ints ints = {{"kernel", {3, 3}}, {"padding", {1, 1}}};
  const std::vector<float> wt(4 * 9, 0.5f);
  auto node = one_node(make_depthwise_conv2d, "depthwise_conv2d", {1, 4, 5, 5}, ints, {}, {f32_tensor({4, 1, 3, 3}, wt)});
  const Op& op = *node->op;
  const TensorDesc w = {DType::kF32, {4, 1, 3, 3}};
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 3, 5, 5}}, w}, 1); }),
               {"node 'layer' (depthwise_conv2d)", "x has shape (1, 3, 5, 5)", "weight has shape (4, 1, 3, 3)",
                "multiple of x's 3 channels"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {5, 5}}, w}, 1); }), {"shape (5, 5)", "expected 4 dims"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 4, 5, 5}}, {DType::kF32, {4, 1, 3, 2}}}, 1); }),
               {"weight has shape (4, 1, 3, 2)", "expected (C·m, 1, 3, 3)"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 4, 5, 5}}, w, {DType::kF32, {2}}}, 1); }),
               {"bias has shape (2,)", "expected bias (4,)"});
  expect_error(error_of([&] { op.infer({{DType::kF32, {1, 4, 5, 5}}}, 1); }), {"got 1 inputs", "expected 2 to 3"});
  // A constant weight of the wrong shape fails at compile time.
  expect_error(error_of([&] {
                 one_node(make_depthwise_conv2d, "depthwise_conv2d", {1, 4, 5, 5}, ints, {},
                          {f32_tensor({4, 2, 3, 3}, std::vector<float>(72))});
               }),
               {"weight has shape (4, 2, 3, 3)"});
  expect_error(error_of([&] {
                 one_node(make_depthwise_conv2d, "depthwise_conv2d", {1, 4, 5, 5},
                          {{"kernel", {3, 3}}, {"dilation", {0, 1}}}, {}, {f32_tensor({4, 1, 3, 3}, wt)});
               }),
               {"attribute 'dilation' is [0, 1]"});
}

// ---------------------------------------------------------------------------------------------
// Pooling

struct PoolSpec {
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw;
  bool ceil_mode;
  static int64_t out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    const int64_t num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    int64_t o = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (ceil_mode && (o - 1) * s >= in + p) --o;
    return o;
  }
  int64_t oh() const { return out(h, kh, sh, ph, dh, ceil_mode); }
  int64_t ow() const { return out(w, kw, sw, pw, dw, ceil_mode); }
  std::string str() const {
    std::ostringstream s;
    s << "x (" << n << ", " << c << ", " << h << ", " << w << ") kernel " << kh << "x" << kw << " stride " << sh << "x"
      << sw << " padding " << ph << "x" << pw << " dilation " << dh << "x" << dw << " ceil_mode " << ceil_mode;
    return s.str();
  }
};

std::vector<double> max_pool_ref(const PoolSpec& s, const float* x) {
  std::vector<double> y;
  for (int64_t p = 0; p < s.n * s.c; ++p) {
    const std::vector<float> plane =
        max_pool_plane_oracle(x + p * s.h * s.w, s.h, s.w, s.kh, s.kw, s.sh, s.sw, s.ph, s.pw, s.dh, s.dw, s.oh(), s.ow());
    y.insert(y.end(), plane.begin(), plane.end());
  }
  return y;
}

/// PyTorch's avg_pool2d: the window is clipped at H + padding for its size (count_include_pad), at
/// the input for its count of real elements; a window with no real element gives 0.
std::vector<double> avg_pool_ref(const PoolSpec& s, const float* x, bool count_include_pad, int64_t divisor) {
  const int64_t oh = s.oh(), ow = s.ow();
  std::vector<double> y(static_cast<size_t>(s.n * s.c * oh * ow));
  for (int64_t p = 0; p < s.n * s.c; ++p)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t q = 0; q < ow; ++q) {
        int64_t h0 = r * s.sh - s.ph, w0 = q * s.sw - s.pw;
        int64_t h1 = std::min(h0 + s.kh, s.h + s.ph), w1 = std::min(w0 + s.kw, s.w + s.pw);
        const int64_t pool = (h1 - h0) * (w1 - w0);
        h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
        h1 = std::min(h1, s.h), w1 = std::min(w1, s.w);
        double& out = y[(p * oh + r) * ow + q];
        if (h0 >= h1 || w0 >= w1) {
          out = 0;
          continue;
        }
        double sum = 0;
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) sum += x[(p * s.h + ih) * s.w + iw];
        out = sum / double(divisor ? divisor : count_include_pad ? pool : (h1 - h0) * (w1 - w0));
      }
  return y;
}

const PoolSpec kMaxPoolSpecs[] = {
    // n  c   h   w kh kw sh sw ph pw dh dw ceil
    {1, 3, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, false},
    {2, 2, 10, 10, 3, 3, 2, 2, 1, 1, 1, 1, true},
    {1, 2, 11, 9, 2, 2, 2, 2, 0, 0, 1, 1, true},   // odd sizes: ceil_mode adds a partial window
    {1, 3, 12, 13, 3, 3, 1, 1, 1, 1, 2, 2, false},  // dilation 2
    {2, 3, 9, 8, 3, 2, 2, 1, 1, 0, 2, 1, true},     // unequal everything
    {1, 1, 2, 5, 2, 2, 3, 3, 1, 1, 3, 3, false},    // dilated windows that can fall in the padding only
    {2, 16, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, true},  // enough work for two threads
};

Ints pool_ints(const PoolSpec& s) {
  return {{"kernel", {s.kh, s.kw}}, {"stride", {s.sh, s.sw}}, {"padding", {s.ph, s.pw}},
          {"dilation", {s.dh, s.dw}}, {"ceil_mode", {s.ceil_mode ? 1 : 0}}};
}

TEST(MaxPool2d, MatchesOracle) {
  uint32_t seed = 300;
  for (const PoolSpec& s : kMaxPoolSpecs) {
    const Shape xs = {s.n, s.c, s.h, s.w};
    const Tensor x = random_tensor(xs, ++seed);
    auto node = one_node(make_max_pool2d, "max_pool2d", xs, pool_ints(s));
    const std::vector<double> ref = max_pool_ref(s, x.data_as<float>());
    for (const RunContext& ctx : kContexts) {
      expect_close(run_op(*node->op, {&x}, ctx), {s.n, s.c, s.oh(), s.ow()}, ref,
                   "max_pool2d " + s.str() + " " + context_string(ctx));
    }
  }
}

TEST(MaxPool2d, DefaultStrideUnbatchedAndNan) {
  const PoolSpec s = {1, 2, 6, 7, 2, 3, 2, 3, 0, 0, 1, 1, false};  // stride defaults to the kernel
  Tensor x = random_tensor({s.c, s.h, s.w}, 5);
  x.data_as<float>()[8] = std::numeric_limits<float>::quiet_NaN();  // (0, 1, 1): window (0, 0)
  x.data_as<float>()[3] = std::numeric_limits<float>::infinity();   // (0, 0, 3): window (0, 1)
  const std::vector<double> ref = max_pool_ref(s, x.data_as<float>());
  ASSERT_TRUE(std::isnan(ref[0]));
  auto node = one_node(make_max_pool2d, "max_pool2d", {s.c, s.h, s.w}, {{"kernel", {2, 3}}});
  expect_close(run_op(*node->op, {&x}, {1, false}), {s.c, s.oh(), s.ow()}, ref, "max_pool2d nan/inf");
}

TEST(MaxPool2d, Errors) {
  auto make = [](const Ints& ints) { return error_of([&] { one_node(make_max_pool2d, "max_pool2d", {1, 1, 8, 8}, ints); }); };
  expect_error(make({{"kernel", {3, 3}}, {"padding", {2, 1}}}),
               {"node 'layer' (max_pool2d)", "attribute 'padding' is [2, 1]", "at most half the kernel 3×3, [1, 1]"});
  expect_error(make({{"kernel", {0, 3}}}), {"attribute 'kernel' is [0, 3]", "expected values from 1 to 1048576"});
  // A damaged file's kernel of 2^32 × 2^32 would overflow the kernel area.
  expect_error(make({{"kernel", {int64_t{1} << 32, int64_t{1} << 32}}}),
               {"attribute 'kernel' is [4294967296, 4294967296]", "expected values from 1 to 1048576"});
  expect_error(make({{"kernel", {2, 2}}, {"ceil_mode", {2}}}), {"attribute 'ceil_mode' is 2", "expected 0 or 1"});
  expect_error(make({{"kernel", {2, 2}}, {"stride", {1, 1, 1}}}), {"attribute 'stride' is [1, 1, 1]"});
  // As torch's pool2d_shape_check: half the kernel, not of the dilated window (which spans 4 here).
  expect_error(make({{"kernel", {2, 2}}, {"dilation", {3, 3}}, {"padding", {2, 1}}}),
               {"attribute 'padding' is [2, 1]", "[1, 1]"});
  EXPECT_EQ(make({{"kernel", {2, 2}}, {"dilation", {3, 3}}, {"padding", {1, 1}}}), "(no error)");
  auto node = one_node(make_max_pool2d, "max_pool2d", {1, 1, 8, 8}, {{"kernel", {5, 5}}});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {1, 1, 3, 8}}}, 1); }),
               {"x has shape (1, 1, 3, 8)", "height 3 gives output size 0", "expected ≥ 1"});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {8}}}, 1); }), {"x has shape (8,)", "expected 4 dims"});
  expect_error(error_of([&] { node->op->infer({{DType::kI64, {1, 1, 8, 8}}}, 1); }), {"dtype i64"});
}

const PoolSpec kAvgPoolSpecs[] = {
    // n  c   h   w kh kw sh sw ph pw dh dw ceil
    {1, 3, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, false},
    {2, 2, 10, 10, 3, 3, 2, 2, 1, 1, 1, 1, true},
    {1, 2, 7, 7, 2, 2, 2, 2, 1, 1, 1, 1, true},     // the last window passes the right padding
    {1, 2, 5, 6, 3, 2, 1, 2, 1, 1, 1, 1, false},    // unequal kernel and strides
    {1, 1, 8, 9, 4, 4, 3, 3, 2, 2, 1, 1, true},
    {2, 16, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, true},  // enough work for two threads
};

TEST(AvgPool2d, MatchesOracle) {
  uint32_t seed = 400;
  for (const PoolSpec& s : kAvgPoolSpecs) {
    const Shape xs = {s.n, s.c, s.h, s.w};
    const Tensor x = random_tensor(xs, ++seed);
    for (bool include : {true, false}) {
      for (int64_t divisor : {0, 5}) {
        Ints ints = pool_ints(s);
        ints.erase("dilation");
        ints["count_include_pad"] = {include ? 1 : 0};
        if (divisor) ints["divisor"] = {divisor};
        auto node = one_node(make_avg_pool2d, "avg_pool2d", xs, ints);
        const std::vector<double> ref = avg_pool_ref(s, x.data_as<float>(), include, divisor);
        for (const RunContext& ctx : kContexts) {
          expect_close(run_op(*node->op, {&x}, ctx), {s.n, s.c, s.oh(), s.ow()}, ref,
                       "avg_pool2d " + s.str() + " count_include_pad " + std::to_string(include) + " divisor " +
                           std::to_string(divisor) + " " + context_string(ctx));
        }
      }
    }
  }
}

TEST(AvgPool2d, Errors) {
  auto make = [](const Ints& ints) { return error_of([&] { one_node(make_avg_pool2d, "avg_pool2d", {1, 1, 8, 8}, ints); }); };
  expect_error(make({{"kernel", {2, 2}}, {"padding", {0, 2}}}),
               {"node 'layer' (avg_pool2d)", "attribute 'padding' is [0, 2]", "at most half"});
  expect_error(make({{"kernel", {2, 2}}, {"divisor", {-3}}}), {"attribute 'divisor' is -3", "expected ≥ 0"});
  expect_error(make({{"kernel", {2, 2}}, {"count_include_pad", {5}}}), {"attribute 'count_include_pad' is 5"});
  expect_error(make({}), {"missing integer attribute 'kernel'"});
  auto node = one_node(make_avg_pool2d, "avg_pool2d", {1, 1, 8, 8}, {{"kernel", {3, 3}}});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {1, 1, 8, 2}}}, 1); }),
               {"x has shape (1, 1, 8, 2)", "width 2 gives output size 0"});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {1, 1, 8, 8}}, {DType::kF32, {1}}}, 1); }),
               {"got 2 inputs", "expected 1"});
}

std::vector<double> adaptive_ref(const float* x, int64_t planes, int64_t h, int64_t w, int64_t oh, int64_t ow) {
  std::vector<double> y(static_cast<size_t>(planes * oh * ow));
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t q = 0; q < ow; ++q) {
        const int64_t h0 = static_cast<int64_t>(std::floor(double(r * h) / oh));
        const int64_t h1 = static_cast<int64_t>(std::ceil(double((r + 1) * h) / oh));
        const int64_t w0 = static_cast<int64_t>(std::floor(double(q * w) / ow));
        const int64_t w1 = static_cast<int64_t>(std::ceil(double((q + 1) * w) / ow));
        double sum = 0;
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) sum += x[(p * h + i) * w + j];
        y[(p * oh + r) * ow + q] = sum / double((h1 - h0) * (w1 - w0));
      }
  return y;
}

TEST(AdaptiveAvgPool2d, MatchesOracle) {
  struct Spec {
    int64_t n, c, h, w, oh, ow;
  };
  const Spec specs[] = {
      {1, 3, 7, 7, 1, 1},     // global average (partial sums of 8 and a tail)
      {2, 40, 3, 5, 1, 1},    {1, 1, 1, 1, 1, 1},  {1, 300, 14, 14, 1, 1},  // the same, and on two threads
      {2, 2, 10, 9, 3, 4},    // outputs that do not divide the input: overlapping windows
      {1, 2, 5, 6, 7, 8},     // outputs larger than the input
      {1, 4, 6, 6, 6, 6},     // identity
      {2, 16, 33, 31, 5, 7},  // enough work for two threads
  };
  uint32_t seed = 500;
  for (const Spec& s : specs) {
    const Shape xs = {s.n, s.c, s.h, s.w};
    const Tensor x = random_tensor(xs, ++seed);
    auto node = one_node(make_adaptive_avg_pool2d, "adaptive_avg_pool2d", xs, {{"output_size", {s.oh, s.ow}}});
    const std::vector<double> ref = adaptive_ref(x.data_as<float>(), s.n * s.c, s.h, s.w, s.oh, s.ow);
    for (const RunContext& ctx : kContexts) {
      std::ostringstream what;
      what << "adaptive_avg_pool2d " << shape_string(xs) << " to " << s.oh << "x" << s.ow << " "
           << context_string(ctx);
      expect_close(run_op(*node->op, {&x}, ctx), {s.n, s.c, s.oh, s.ow}, ref, what.str());
    }
  }
}

TEST(AdaptiveAvgPool2d, Errors) {
  auto make = [](const Ints& ints) {
    return error_of([&] { one_node(make_adaptive_avg_pool2d, "adaptive_avg_pool2d", {1, 1, 8, 8}, ints); });
  };
  expect_error(make({{"output_size", {0, 2}}}),
               {"node 'layer' (adaptive_avg_pool2d)", "attribute 'output_size' is [0, 2]", "expected values from 1 to 1048576"});
  expect_error(make({}), {"missing integer attribute 'output_size'"});
  auto node = one_node(make_adaptive_avg_pool2d, "adaptive_avg_pool2d", {1, 1, 8, 8}, {{"output_size", {2, 2}}});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {1, 0, 8, 8}}}, 1); }),
               {"x has shape (1, 0, 8, 8)", "expected non-zero C, H and W"});
  expect_error(error_of([&] { node->op->infer({{DType::kF32, {1, 1, 1, 8, 8}}}, 1); }), {"(1, 1, 1, 8, 8)"});
}

}  // namespace
}  // namespace sparsert::test
