// The "ops_nn.cpp" section of ops.def: linear, with packed weights, and the direct-loop pooling
// operators. Attribute rules, output shapes and values follow PyTorch (torch.nn.functional of the
// same names); images are NCHW, or CHW unbatched. The convolutions are in ops_conv.cpp.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "graph/ops_nn_util.hpp"
#include "kernels/tensor_kernels.hpp"
#include "runtime/run_spmm.hpp"

namespace sparsert {
namespace {

using nn_ops::ConvWindow;
using nn_ops::for_planes;
using nn_ops::Image;
using nn_ops::kernel_for;
using nn_ops::NnOp;
using nn_ops::Pair;
using nn_ops::scratch;
using nn_ops::valid_run;

// ---------------------------------------------------------------------------------------------
// linear: y = act(x · Wᵀ + bias) over every leading dim of x.

class Linear final : public NnOp {
 public:
  explicit Linear(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 2, "x [, bias]");
    if (node.weights.size() != 1) {
      fail("has " + std::to_string(node.weights.size()) + " packed weights (expected 1, of shape (out, in))");
    }
    act_ = act_attr();
  }

  // x's last dim; rows (every other dim of x) are independent.
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const override {
    return input == 0 && axis == static_cast<int64_t>(inputs[0].shape.size()) - 1;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 2, "x [, bias]");
    const Weight& w = *node_.weights[0];
    const TensorDesc& x = inputs[0];
    expect_f32(x, "x");
    if (x.shape.empty() || x.shape.back() != w.cols()) {
      fail("input x has shape " + shape_string(x.shape) + " but the weight has shape " +
           shape_string({w.rows(), w.cols()}) + " (expected x's last dim to be " + std::to_string(w.cols()) + ")");
    }
    if (inputs.size() == 2) check_bias(inputs[1], w.rows(), {w.rows(), w.cols()});
    Shape out = x.shape;
    out.back() = w.rows();
    return {DType::kF32, out};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out, const RunContext& ctx) const override {
    const Weight& w = *node_.weights[0];
    const int64_t batch = leading(inputs[0].shape);
    const float* bias = inputs.size() == 2 ? static_cast<const float*>(inputs[1].data) : nullptr;
    run_spmm(kernel_for(w, batch, ctx), w, static_cast<const float*>(inputs[0].data), batch, bias,
             static_cast<float*>(out), act_, ctx.threads);
  }

  std::string kernel_name(const std::vector<TensorDesc>& inputs, const RunContext& ctx) const override {
    const bool known = !inputs.empty() && !inputs[0].shape.empty();
    return kernel_for(*node_.weights[0], known ? leading(inputs[0].shape) : 1, ctx).name;
  }

 private:
  // Rows of x: the product of its leading dims (1 for a 1-D x).
  static int64_t leading(const Shape& s) {
    int64_t n = 1;
    for (size_t i = 0; i + 1 < s.size(); ++i) n *= s[i];
    return n;
  }

  Activation act_;
};

// ---------------------------------------------------------------------------------------------
// Pooling: direct loops over (n, c) planes, vectorised along output rows.

class MaxPool2d final : public NnOp {
 public:
  explicit MaxPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    const Pair one{1, 1}, zero{0, 0};
    win_.kernel = pair_attr("kernel", nullptr, 1);
    win_.stride = stride_or_kernel(win_.kernel);
    win_.padding = pair_attr("padding", &zero, 0);
    win_.dilation = pair_attr("dilation", &one, 1);
    ceil_mode_ = bool_attr("ceil_mode", false);
    check_pool_padding(win_.kernel, win_.padding);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    return {DType::kF32, im.shape_with(im.c, out_dim(inputs[0].shape, im.h, 0), out_dim(inputs[0].shape, im.w, 1))};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const ConvWindow win = win_;
    const int64_t h = im.h, w = im.w, sw = win.stride[1];
    const int64_t planes = im.n * im.c;
    const TensorKernels& tk = tensor_kernels(ctx.reference_kernels);

    const WindowGeometry g{win.kernel[0], win.kernel[1], win.stride[0], sw, win.padding[0], win.padding[1],
                           win.dilation[0], win.dilation[1], oh, ow};
    for_planes(planes, planes * oh * ow * win.kernel[0] * win.kernel[1], ctx.threads, [&](int64_t begin, int64_t end) {
      float* pool_scratch = scratch(0, max_pool_scratch_floats(g, h, w));
      for (int64_t plane = begin; plane < end; ++plane) {
        tk.max_pool_plane(x + plane * h * w, h, w, g, y + plane * oh * ow, pool_scratch);
      }
    });
  }

 private:
  Pair stride_or_kernel(const Pair& kernel) const {
    // PyTorch's default stride is the kernel; an empty list means the same.
    if (node_.attrs.has("stride") && node_.attrs.int_list("stride", where()).empty()) return kernel;
    return pair_attr("stride", &kernel, 1);
  }
  int64_t out_dim(const Shape& x, int64_t in, int d) const {
    return pool_out(x, in, win_.kernel[d], win_.stride[d], win_.padding[d], win_.dilation[d], ceil_mode_,
                    d == 0 ? "height" : "width");
  }

  ConvWindow win_;
  bool ceil_mode_ = false;
};

class AvgPool2d final : public NnOp {
 public:
  explicit AvgPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    const Pair zero{0, 0};
    kernel_ = pair_attr("kernel", nullptr, 1);
    if (node_.attrs.has("stride") && node_.attrs.int_list("stride", where()).empty()) stride_ = kernel_;
    else stride_ = pair_attr("stride", &kernel_, 1);
    padding_ = pair_attr("padding", &zero, 0);
    ceil_mode_ = bool_attr("ceil_mode", false);
    count_include_pad_ = bool_attr("count_include_pad", true);
    divisor_ = int_attr("divisor", 0, 0, std::numeric_limits<int64_t>::max(), "≥ 0; 0 = the window size");
    check_pool_padding(kernel_, padding_);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    const Shape& s = inputs[0].shape;
    return {DType::kF32,
            im.shape_with(im.c, pool_out(s, im.h, kernel_[0], stride_[0], padding_[0], 1, ceil_mode_, "height"),
                          pool_out(s, im.w, kernel_[1], stride_[1], padding_[1], 1, ceil_mode_, "width"))};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc& out_desc, void* out,
           const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const Shape& os = out_desc.shape;
    const int64_t oh = os[os.size() - 2], ow = os[os.size() - 1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const int64_t h = im.h, w = im.w, kh = kernel_[0], kw = kernel_[1], sh = stride_[0], sw = stride_[1];
    const int64_t ph = padding_[0], pw = padding_[1];
    const int64_t planes = im.n * im.c;
    const bool include = count_include_pad_;
    const int64_t divisor = divisor_;
    // Column sums of the window's rows, laid out with pw zeros before the input columns and zeros
    // after, long enough for the last window: out[t] sums sums[t·sw + j] for j < kw.
    const int64_t span = std::max((ow - 1) * sw + kw, pw + w);

    for_planes(planes, planes * (oh * ow * kw + oh * kh * w), ctx.threads, [&](int64_t begin, int64_t end) {
      float* sums = scratch(0, span);
      float* acc = scratch(1, ow);
      // Per output column: the window's size including padding (clipped at W + pw, as PyTorch) and
      // its count of real inputs. A window without real inputs sums to exactly 0, and PyTorch gives
      // 0 there: a count of 1 keeps 0 / 0 away and the division loops free of branches.
      float* cols_pad = scratch(2, 2 * ow);
      float* cols_real = cols_pad + ow;
      for (int64_t t = 0; t < ow; ++t) {
        const int64_t start = t * sw - pw, stop = std::min(start + kw, w + pw);
        cols_pad[t] = static_cast<float>(stop - start);
        cols_real[t] = static_cast<float>(std::max<int64_t>(1, std::min(stop, w) - std::max<int64_t>(start, 0)));
      }
      std::fill(sums, sums + span, 0.0f);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xc = x + plane * h * w;
        for (int64_t r = 0; r < oh; ++r) {
          float* __restrict__ yr = y + (plane * oh + r) * ow;
          const int64_t start = r * sh - ph, stop = std::min(start + kh, h + ph);
          const int64_t rows_pad = stop - start;
          const int64_t h0 = std::max<int64_t>(start, 0), h1 = std::min(stop, h);
          if (h0 >= h1) {
            std::fill(yr, yr + ow, 0.0f);
            continue;
          }
          float* __restrict__ s = sums + pw;
          std::copy(xc + h0 * w, xc + h0 * w + w, s);
          for (int64_t ih = h0 + 1; ih < h1; ++ih) {
            const float* __restrict__ xr = xc + ih * w;
            for (int64_t t = 0; t < w; ++t) s[t] += xr[t];
          }
          std::fill(acc, acc + ow, 0.0f);
          for (int64_t j = 0; j < kw; ++j) {
            const float* __restrict__ sj = sums + j;
            if (sw == 1) {
              for (int64_t t = 0; t < ow; ++t) acc[t] += sj[t];
            } else {
              for (int64_t t = 0; t < ow; ++t) acc[t] += sj[t * sw];
            }
          }
          if (divisor != 0) {
            const float d = static_cast<float>(divisor);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / d;
          } else if (include) {
            const float rp = static_cast<float>(rows_pad);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / (rp * cols_pad[t]);
          } else {
            const float rr = static_cast<float>(h1 - h0);
            for (int64_t t = 0; t < ow; ++t) yr[t] = acc[t] / (rr * cols_real[t]);
          }
        }
      }
    });
  }

 private:
  Pair kernel_, stride_, padding_;
  bool ceil_mode_ = false;
  bool count_include_pad_ = true;
  int64_t divisor_ = 0;
};

class AdaptiveAvgPool2d final : public NnOp {
 public:
  explicit AdaptiveAvgPool2d(const NodeDef& node) : NnOp(node) {
    check_count(node.inputs.size(), 1, 1, "x");
    expect_no_weights();
    out_ = pair_attr("output_size", nullptr, 1);
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    check_count(inputs.size(), 1, 1, "x");
    const Image im = image(inputs[0]);
    return {DType::kF32, im.shape_with(im.c, out_[0], out_[1])};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out, const RunContext& ctx) const override {
    const Image im = image(inputs[0].dtype, inputs[0].shape);
    const int64_t h = im.h, w = im.w, oh = out_[0], ow = out_[1];
    const float* x = static_cast<const float*>(inputs[0].data);
    float* y = static_cast<float*>(out);
    const int64_t planes = im.n * im.c;
    // PyTorch's windows: [⌊i·in/out⌋, ⌈(i+1)·in/out⌉), overlapping when out does not divide in.
    auto start = [](int64_t i, int64_t in, int64_t n) { return i * in / n; };
    auto stop = [](int64_t i, int64_t in, int64_t n) { return ((i + 1) * in + n - 1) / n; };

    if (oh == 1 && ow == 1) {
      // Global pooling (a classifier's head): each plane's mean in 8 partial sums, which the compiler
      // keeps in vector lanes. Rows of 7 through the general loops below cost MobileNetV2's 960
      // planes of 7 × 7 35 µs, against onnxruntime's 7.
      const int64_t hw = h * w;
      for_planes(planes, planes * hw, ctx.threads, [&](int64_t begin, int64_t end) {
        for (int64_t plane = begin; plane < end; ++plane) {
          const float* xc = x + plane * hw;
          float part[8] = {};
          int64_t i = 0;
          for (; i + 8 <= hw; i += 8)
            for (int k = 0; k < 8; ++k) part[k] += xc[i + k];
          float acc = ((part[0] + part[4]) + (part[1] + part[5])) + ((part[2] + part[6]) + (part[3] + part[7]));
          for (; i < hw; ++i) acc += xc[i];
          y[plane] = acc / static_cast<float>(hw);
        }
      });
      return;
    }
    for_planes(planes, planes * (h * w + oh * w), ctx.threads, [&](int64_t begin, int64_t end) {
      float* sums = scratch(0, w);
      for (int64_t plane = begin; plane < end; ++plane) {
        const float* xc = x + plane * h * w;
        for (int64_t r = 0; r < oh; ++r) {
          const int64_t h0 = start(r, h, oh), h1 = stop(r, h, oh);
          float* __restrict__ s = sums;
          std::copy(xc + h0 * w, xc + h0 * w + w, s);
          for (int64_t ih = h0 + 1; ih < h1; ++ih) {
            const float* __restrict__ xr = xc + ih * w;
            for (int64_t t = 0; t < w; ++t) s[t] += xr[t];
          }
          float* yr = y + (plane * oh + r) * ow;
          for (int64_t t = 0; t < ow; ++t) {
            const int64_t w0 = start(t, w, ow), w1 = stop(t, w, ow);
            float acc = 0.0f;
            for (int64_t iw = w0; iw < w1; ++iw) acc += s[iw];
            yr[t] = acc / static_cast<float>((h1 - h0) * (w1 - w0));
          }
        }
      }
    });
  }

 private:
  Pair out_;
};

}  // namespace

std::unique_ptr<Op> make_linear(const NodeDef& node, const Graph&) { return std::make_unique<Linear>(node); }
std::unique_ptr<Op> make_max_pool2d(const NodeDef& node, const Graph&) { return std::make_unique<MaxPool2d>(node); }
std::unique_ptr<Op> make_avg_pool2d(const NodeDef& node, const Graph&) { return std::make_unique<AvgPool2d>(node); }
std::unique_ptr<Op> make_adaptive_avg_pool2d(const NodeDef& node, const Graph&) {
  return std::make_unique<AdaptiveAvgPool2d>(node);
}

}  // namespace sparsert
