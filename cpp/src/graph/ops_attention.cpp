// Activation × activation products (ops.def, section ops_attention.cpp): matmul with
// torch.matmul's semantics, and scaled dot-product attention, on the ISA's TensorKernels. Operands
// are row-major and contiguous (sdpa_rows reads its heads as column runs of token rows); batch dims
// broadcast as in NumPy. Both thread over batch × row blocks through the shared ThreadPool and give
// the same bits for any thread count (each output row is computed by one thread, in one order).
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "graph/ops.hpp"
#include "graph/ops_tensor_util.hpp"
#include "kernels/tensor_kernels.hpp"

namespace sparsert {
namespace {

using tensor_ops::Dims;
using tensor_ops::TensorOp;

// A product of fewer multiply-adds than this runs on one thread: ~30 µs of work, where waking a
// second thread stops paying for itself.
constexpr int64_t kThreadMacs = int64_t{1} << 17;

// Row blocks split among threads are multiples of the GEMMs' register tile height (simd/tensor_f32.hpp).
constexpr int64_t kTileRows = 6;

// Attention takes query rows in blocks of this many: the block's scores (48 × S) and Kᵀ stay in
// L2 for S up to a few thousand, and Kᵀ is built once per block. A multiple of kTileRows, so that
// at most one GEMM tile of each head is short (BERT's 12 × 128² × 64 on Zen 4: 568 → 549 µs
// against blocks of 32).
constexpr int64_t kSdpaRows = 48;

/// Offset, in elements, of batch entry `index` (row-major over `batch`) of an operand whose batch
/// dims read with `strides` (0 where broadcast).
int64_t batch_offset(int64_t index, const Dims& batch, const Dims& strides) {
  int64_t off = 0;
  for (size_t d = batch.size(); d-- > 0;) {
    off += index % batch[d] * strides[d];
    index /= batch[d];
  }
  return off;
}

/// Strides of an operand's batch dims `own` broadcast to `batch`, in elements of matrices of
/// `matrix` elements each (0 where broadcast).
Dims batch_strides(const Dims& own, const Dims& batch, int64_t matrix) {
  Dims s = tensor_ops::broadcast_strides(own, batch);
  for (size_t d = 0; d < s.size(); ++d) s[d] *= matrix;
  return s;
}

/// True when `small` (aligned on the right) broadcasts to `big` without changing it.
bool broadcasts_to(const Shape& small, const Shape& big) {
  if (small.size() > big.size()) return false;
  for (size_t i = 0; i < small.size(); ++i) {
    const int64_t s = small[small.size() - 1 - i], b = big[big.size() - 1 - i];
    if (s != b && s != 1) return false;
  }
  return true;
}

// --- matmul ----------------------------------------------------------------------------------

class MatmulOp final : public TensorOp {
 public:
  using TensorOp::TensorOp;

  // The inner dimension: a's last, b's second last (its only one when 1-D).
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const override {
    const int64_t rank = static_cast<int64_t>(inputs[input].shape.size());
    return axis == (input == 0 ? rank - 1 : std::max<int64_t>(rank - 2, 0));
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 2, 2);
    expect_dtype(inputs, 0, DType::kF32, "a");
    expect_dtype(inputs, 1, DType::kF32, "b");
    const Plan p = plan(inputs[0].shape, inputs[1].shape);
    Shape out = tensor_ops::to_shape(p.batch);
    if (inputs[0].shape.size() > 1) out.push_back(p.m);
    if (inputs[1].shape.size() > 1) out.push_back(p.n);
    return {DType::kF32, out};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out,
           const RunContext& ctx) const override {
    const Plan p = plan(inputs[0].shape, inputs[1].shape);
    const float* a = static_cast<const float*>(inputs[0].data);
    const float* b = static_cast<const float*>(inputs[1].data);
    float* c = static_cast<float*>(out);
    int64_t batch = 1;
    for (size_t d = 0; d < p.batch.size(); ++d) batch *= p.batch[d];
    if (batch == 0 || p.m == 0 || p.n == 0) return;
    const Dims sa = batch_strides(p.a_batch, p.batch, p.m * p.k), sb = batch_strides(p.b_batch, p.batch, p.k * p.n);
    int64_t rows = p.m;
    bool b_shared = true;  // one B for every batch entry: the batches of A stack into one tall A
    for (size_t d = 0; d < sb.size(); ++d) b_shared = b_shared && sb[d] == 0;
    if (b_shared) {
      rows *= batch;
      batch = 1;
    }
    // Work items: batch entries × blocks of rows, enough blocks for every thread when the batch is small.
    const int threads = batch * rows * p.k * p.n >= kThreadMacs ? ctx.threads : 1;
    int64_t block = rows;
    if (batch < threads) {
      const int64_t per = (rows + threads - 1) / threads;
      block = std::max(kTileRows, (per + kTileRows - 1) / kTileRows * kTileRows);
    }
    const int64_t blocks = (rows + block - 1) / block;
    tensor_ops::parallel_for(threads, batch * blocks, 1, [&](int64_t s, int64_t e) {
      for (int64_t item = s; item < e; ++item) {
        const int64_t bi = item / blocks, r0 = item % blocks * block, nr = std::min(block, rows - r0);
        const float* ab = a + (b_shared ? 0 : batch_offset(bi, p.batch, sa)) + r0 * p.k;
        const float* bb = b + (b_shared ? 0 : batch_offset(bi, p.batch, sb));
        tensor_kernels().gemm(ab, p.k, bb, p.n, c + bi * rows * p.n + r0 * p.n, p.n, nr, p.k, p.n);
      }
    });
  }

 private:
  struct Plan {
    Dims a_batch, b_batch, batch;  // each operand's batch dims and their broadcast
    int64_t m = 0, k = 0, n = 0;
  };

  // torch.matmul: a 1-D a is a row (1, k) and a 1-D b a column (k, 1), the added dim absent from
  // the result; the dims before the last two are batch dims and broadcast.
  Plan plan(const Shape& a, const Shape& b) const {
    if (a.empty() || b.empty()) {
      fail("input shapes " + shape_string(a) + " and " + shape_string(b) +
           " include a 0-d tensor (expected rank ≥ 1 for both)");
    }
    Plan p;
    p.m = a.size() == 1 ? 1 : a[a.size() - 2];
    p.k = a.back();
    const int64_t kb = b.size() == 1 ? b[0] : b[b.size() - 2];
    p.n = b.size() == 1 ? 1 : b.back();
    if (kb != p.k) {
      fail("input shapes " + shape_string(a) + " and " + shape_string(b) +
           " cannot be multiplied (expected a's last dim " + std::to_string(p.k) + " to equal b's " +
           (b.size() == 1 ? "only" : "second-to-last") + " dim " + std::to_string(kb) + ")");
    }
    p.a_batch = tensor_ops::leading_dims(a, a.size() < 2 ? 0 : a.size() - 2);
    p.b_batch = tensor_ops::leading_dims(b, b.size() < 2 ? 0 : b.size() - 2);
    if (!tensor_ops::broadcast_shapes(p.a_batch, p.b_batch, &p.batch)) {
      fail("input shapes " + shape_string(a) + " and " + shape_string(b) +
           " have batch dims that do not broadcast (expected, aligned from the last, equal sizes or 1)");
    }
    return p;
  }
};

// --- scaled dot-product attention ------------------------------------------------------------

// Per block of query rows: scores = Q·Kᵀ (one GEMM against a transposed copy of K), scaled, plus
// the mask, causal keys j > i dropped, a stable softmax per row (subtract the max), then P·V (a
// second GEMM). A row with every score -inf gives zeros:
// torch's math and flash CPU paths (torch ≥ 2.5, _safe_softmax) do so rather than NaN.
//
// sdpa_rows is the same attention on token-major operands, as linear layers write them: q (..., L,
// Wq), k (..., S, Wk), v (..., S, Wv), head h of q being columns [cq + h·E, cq + (h + 1)·E) of each
// row (k and v alike, v's heads Ev wide), and the output (..., L, H·Ev). The heads are one more batch
// dim, after the others; the mask broadcasts to (..., H, L, S). The importer rewrites the reshape,
// permute and slice copies around an sdpa into it (BERT-2 at 128 tokens: ~90 µs a layer).
class SdpaOp final : public TensorOp {
 public:
  SdpaOp(const NodeDef& node, bool token_rows)
      : TensorOp(node),
        causal_(flag("is_causal", false)),
        has_scale_(node.attrs.floats.count("scale") != 0),
        scale_(node.attrs.float_or("scale", 0.0, where())) {
    if (!token_rows) return;
    heads_ = required_int("heads");
    const auto& dims = node.attrs.int_list("head_dims", where());
    const auto& columns = node.attrs.int_list("columns", where());
    if (heads_ < 1) fail("attribute 'heads' is " + std::to_string(heads_) + " (expected ≥ 1)");
    if (dims.size() != 2 || dims[0] < 1 || dims[1] < 1) {
      fail("attribute 'head_dims' " + list_string(dims) + " (expected [E, Ev], both ≥ 1)");
    }
    if (columns.size() != 3 || *std::min_element(columns.begin(), columns.end()) < 0) {
      fail("attribute 'columns' " + list_string(columns) + " (expected q's, k's and v's first column, each ≥ 0)");
    }
    head_e_ = dims[0];
    head_ev_ = dims[1];
    for (int i = 0; i < 3; ++i) columns_[i] = columns[static_cast<size_t>(i)];
  }

  // Each of q, k, v and the mask is (..., positions, features): the last two dims meet.
  bool mixes_axis(const std::vector<TensorDesc>& inputs, size_t input, int64_t axis) const override {
    return axis >= static_cast<int64_t>(inputs[input].shape.size()) - 2;
  }

  TensorDesc infer(const std::vector<TensorDesc>& inputs, int64_t) const override {
    expect_inputs(inputs, 3, 4);
    const char* roles[] = {"q", "k", "v", "mask"};
    for (size_t i = 0; i < inputs.size(); ++i) expect_dtype(inputs, i, DType::kF32, roles[i]);
    const Plan p = plan(inputs[0].shape, inputs[1].shape, inputs[2].shape);
    Shape out = tensor_ops::to_shape(p.batch);
    out.push_back(p.l);
    if (inputs.size() == 4) {
      if (causal_) fail("is_causal is 1 and a mask is given (expected one or the other, as torch)");
      Shape scores = out;  // (..., [H,] L, S)
      if (heads_ > 0) scores.insert(scores.end() - 1, heads_);
      scores.push_back(p.s);
      if (!broadcasts_to(inputs[3].shape, scores)) {
        fail("mask of shape " + shape_string(inputs[3].shape) + " does not broadcast to the scores " +
             shape_string(scores) + " (expected, aligned from the last dim, equal sizes or 1)");
      }
    }
    out.push_back(heads_ > 0 ? heads_ * p.ev : p.ev);  // sdpa_rows: the heads side by side
    return {DType::kF32, out};
  }

  void run(const std::vector<TensorView>& inputs, const TensorDesc&, void* out,
           const RunContext& ctx) const override {
    Plan p = plan(inputs[0].shape, inputs[1].shape, inputs[2].shape);
    int64_t batch = 1;
    for (size_t d = 0; d < p.batch.size(); ++d) batch *= p.batch[d];
    float* o = static_cast<float*>(out);
    if (batch == 0 || p.l == 0 || p.ev == 0) return;
    if (p.s == 0) {  // attention over no keys: an empty weighted sum
      std::fill(o, o + batch * p.l * p.ev * std::max<int64_t>(heads_, 1), 0.0f);
      return;
    }
    const float* q = static_cast<const float*>(inputs[0].data) + columns_[0];
    const float* k = static_cast<const float*>(inputs[1].data) + columns_[1];
    const float* v = static_cast<const float*>(inputs[2].data) + columns_[2];
    const float* mask = inputs.size() == 4 ? static_cast<const float*>(inputs[3].data) : nullptr;
    // Rows of q, k, v and the output are ld* floats apart; each operand's matrices as batch_strides
    // gives them, the heads (token rows: the last batch dim) a head's columns apart.
    const int64_t ldq = p.ld[0], ldk = p.ld[1], ldv = p.ld[2], ldo = heads_ > 0 ? heads_ * p.ev : p.ev;
    Dims sq = batch_strides(p.q_batch, p.batch, p.l * ldq), sk = batch_strides(p.k_batch, p.batch, p.s * ldk),
         sv = batch_strides(p.v_batch, p.batch, p.s * ldv), so = batch_strides(p.batch, p.batch, p.l * ldo);
    if (heads_ > 0) {
      p.batch.push_back(heads_);
      batch *= heads_;
      sq.push_back(p.e);
      sk.push_back(p.e);
      sv.push_back(p.ev);
      so.push_back(p.ev);
    }
    // The mask broadcasts over (batch..., L, S): its strides over all of those dims.
    Dims full(p.batch);
    full.push_back(p.l);
    full.push_back(p.s);
    const Dims sm = mask ? tensor_ops::broadcast_strides(inputs[3].shape, full) : Dims(full.size(), 0);
    const int64_t ml = sm[full.size() - 2], ms = sm[full.size() - 1];
    Dims smb(p.batch.size());
    for (size_t d = 0; d < p.batch.size(); ++d) smb[d] = sm[d];
    const float scale = has_scale_ ? static_cast<float>(scale_) : static_cast<float>(1.0 / std::sqrt(double(p.e)));
    const int threads = batch * p.l * p.s * (p.e + p.ev) >= kThreadMacs ? ctx.threads : 1;
    // Work items: batch entries × blocks of query rows; smaller blocks when the batch alone would
    // leave a thread idle.
    int64_t block = std::min(p.l, kSdpaRows);
    if (batch < threads) {
      const int64_t per = (p.l + threads - 1) / threads;
      block = std::min(block, std::max(kTileRows, (per + kTileRows - 1) / kTileRows * kTileRows));
    }
    const int64_t blocks = (p.l + block - 1) / block;

    tensor_ops::parallel_for(threads, batch * blocks, 1, [&](int64_t s0, int64_t s1) {
      // Scratch per thread, grown once: Kᵀ (E × S) and the block's scores (block × S).
      thread_local std::vector<float> scratch;
      const size_t need = static_cast<size_t>(p.e * p.s + block * p.s);
      if (scratch.size() < need) scratch.resize(need);
      float* kt = scratch.data();
      float* sc = kt + p.e * p.s;
      const float* transposed = nullptr;  // the K that kt holds; neighbouring blocks share it
      for (int64_t item = s0; item < s1; ++item) {
        const int64_t bi = item / blocks, i0 = item % blocks * block, rows = std::min(block, p.l - i0);
        const float* kb = k + batch_offset(bi, p.batch, sk);
        if (kb != transposed) {
          tensor_kernels().transpose(kb, ldk, kt, p.s, p.s, p.e);
          transposed = kb;
        }
        tensor_kernels().gemm(q + batch_offset(bi, p.batch, sq) + i0 * ldq, ldq, kt, p.s, sc, p.s, rows, p.e, p.s);
        const float* mb = mask ? mask + batch_offset(bi, p.batch, smb) : nullptr;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = i0 + r;
          float* si = sc + r * p.s;
          // tril(ones(L, S)) with diagonal 0: query i sees keys 0..i, whatever S is.
          const int64_t keys = causal_ ? std::min(p.s, i + 1) : p.s;
          // ms is 1 or 0: the mask is contiguous, its last dim broadcast or not
          assert(mb == nullptr || ms == 0 || ms == 1);
          const float mx = tensor_kernels().softmax_row(si, si, keys, scale, mb ? mb + i * ml : nullptr, ms);
          // every key masked out: zeros
          std::fill(si + (mx == -std::numeric_limits<float>::infinity() ? 0 : keys), si + p.s, 0.0f);
        }
        tensor_kernels().gemm(sc, p.s, v + batch_offset(bi, p.batch, sv), ldv, o + batch_offset(bi, p.batch, so) + i0 * ldo,
                              ldo, rows, p.s, p.ev);
      }
    });
  }

 private:
  struct Plan {
    Dims q_batch, k_batch, v_batch, batch;  // each operand's batch dims and their broadcast (heads not among them)
    int64_t l = 0, s = 0, e = 0, ev = 0;
    int64_t ld[3] = {0, 0, 0};  // q's, k's and v's rows: floats apart
  };

  Plan plan(const Shape& q, const Shape& k, const Shape& v) const {
    const Shape* shapes[] = {&q, &k, &v};
    const char* roles[] = {"q", "k", "v"};
    for (size_t i = 0; i < 3; ++i) {
      if (shapes[i]->size() < 2) {
        fail(std::string("input ") + std::to_string(i) + " (" + roles[i] + ") has shape " + shape_string(*shapes[i]) +
             " (expected at least 2 dims)");
      }
    }
    Plan p;
    p.l = q[q.size() - 2];
    p.s = k[k.size() - 2];
    for (size_t i = 0; i < 3; ++i) p.ld[i] = shapes[i]->back();
    auto shapes_string = [&] { return "q " + shape_string(q) + ", k " + shape_string(k) + ", v " + shape_string(v); };
    if (heads_ > 0) {
      p.e = head_e_;
      p.ev = head_ev_;
      for (size_t i = 0; i < 3; ++i) {
        const int64_t head = i == 2 ? p.ev : p.e;
        if (columns_[i] > p.ld[i] || heads_ > (p.ld[i] - columns_[i]) / head) {  // no product that overflows
          fail(shapes_string() + ": " + roles[i] + "'s " + std::to_string(heads_) + " heads of " + std::to_string(head) +
               " columns from column " + std::to_string(columns_[i]) + " (expected within its " +
               std::to_string(p.ld[i]) + " columns)");
        }
      }
    } else {
      p.e = q.back();
      p.ev = v.back();
    }
    if (heads_ == 0 && k.back() != p.e) {
      fail(shapes_string() + ": k's last dim " + std::to_string(k.back()) + " differs from q's " + std::to_string(p.e) +
           " (expected equal embedding sizes)");
    }
    if (v[v.size() - 2] != p.s) {
      fail(shapes_string() + ": v has " + std::to_string(v[v.size() - 2]) + " rows and k " + std::to_string(p.s) +
           " (expected one value per key)");
    }
    p.q_batch = tensor_ops::leading_dims(q, q.size() - 2);
    p.k_batch = tensor_ops::leading_dims(k, k.size() - 2);
    p.v_batch = tensor_ops::leading_dims(v, v.size() - 2);
    if (!tensor_ops::broadcast_shapes(p.q_batch, p.k_batch, &p.batch) ||
        !tensor_ops::broadcast_shapes(p.batch, p.v_batch, &p.batch)) {
      fail(shapes_string() + ": batch dims do not broadcast (expected, aligned from the last, equal sizes or 1)");
    }
    return p;
  }

  bool causal_;
  bool has_scale_;
  double scale_;
  int64_t heads_ = 0;  // sdpa_rows: the heads of each token row; 0 for sdpa
  int64_t head_e_ = 0, head_ev_ = 0;
  int64_t columns_[3] = {0, 0, 0};  // sdpa_rows: q's, k's and v's first column
};

}  // namespace

std::unique_ptr<Op> make_matmul(const NodeDef& node, const Graph&) { return std::make_unique<MatmulOp>(node); }
std::unique_ptr<Op> make_sdpa(const NodeDef& node, const Graph&) { return std::make_unique<SdpaOp>(node, false); }
std::unique_ptr<Op> make_sdpa_rows(const NodeDef& node, const Graph&) { return std::make_unique<SdpaOp>(node, true); }

}  // namespace sparsert
