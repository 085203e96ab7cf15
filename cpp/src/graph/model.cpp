// Model: compiles a Graph into one Op per node, plans shapes and buffers per set of input shapes,
// and runs the nodes in order.
//
// Memory plan: every value a node computes lives in one arena at a planned offset, except graph
// outputs, which are written straight into the returned tensors. Offsets come from a first-fit
// allocator over the node order: a value's block is taken when its node runs and given back after
// its last reader, so buffers are reused by liveness. A view node's output (a reshape, Op::is_view)
// that is not a graph output is no buffer of its own: it reads its input's storage (the root of a
// chain of views), which then lives until the view's last reader, and the node does not run.
// Plans are cached per input-shape set; arenas (with the per-node input views of the plan they last
// served) are pooled, so concurrent runs each get their own and a steady-state run allocates only
// its outputs.
//
// Micro-batches: a batch whose intermediates would overflow the caches runs as consecutive slices
// of dim 0, each through the plan for its size, writing its rows of the outputs, when the graph is
// batch-major at these shapes (batch_major below). BERT-style encoders at batch 32 (4096 tokens) ran
// 1.25× faster in slices of one or two sequences: every operator's data then stays in L2/L3. The
// graph's tail may then run once at the whole batch (Tail below): the nodes from the first one after
// which, at the whole batch, everything they read and compute fits in one micro-batch's arena, when
// they hold weights. A classifier's head (pooled features into linear layers) so reads its weights
// once per run instead of once per slice: MobileNetV2-style at batch 32 in slices of 2 streamed its
// two 5 MB linear weights 16 times.
#include "sparsert/model.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "graph/op.hpp"
#include "sparsert/linear.hpp"

namespace sparsert {

namespace {

constexpr int64_t kBufferAlign = 64;

int64_t align_up(int64_t n) { return (n + kBufferAlign - 1) / kBufferAlign * kBufferAlign; }

// Where a value's batch items lie (Impl::batch_major): along `axis`, of size hi · batch · lo there.
struct Items {
  int64_t axis = -1;  // -1: no items (the value is the same at every batch)
  int64_t hi = 1, lo = 1;
};

// Nodes [first_node, end) of a micro-batched run, run after the slices at the whole batch, in an
// arena of their own: the values they read from the slices (`crossing`, storage roots, item-major in
// dim 0) are written there by each slice at its items' rows.
struct Tail {
  int first_node = -1;         // -1: no tail
  std::vector<int> crossing;   // values computed before first_node and read from it on
  std::vector<int64_t> offset; // per value: byte offset in the tail's arena, or -1
  int64_t arena_bytes = 0;
};

struct Plan {
  std::vector<TensorDesc> descs;  // per value
  std::vector<int64_t> offset;    // per value: arena byte offset, or -1 when not in the arena
  int64_t arena_bytes = 0;
  bool batch_major = false;      // whether it may run in micro-batches (Impl::batch_major)
  int64_t item_arena_bytes = 0;  // arena_bytes of the plan for one batch item
  int64_t min_items = 1;         // the most any node asks a micro-batch to hold (Op::min_items)
  Tail tail;                     // for micro-batched runs
};

// Micro-batches keep their intermediates within about this many bytes (of the shared L3), and hold
// at least one item per thread and the items any node asks for (Op::min_items; at most
// kMaxMinItems): ResNet-18's 7 × 7 layers take Winograd from 4 images, and at batch 32 slices of 4
// ran 268 ms against 319 in slices of 2.
constexpr int64_t kMicroBatchBytes = 8 << 20;
constexpr int64_t kMaxMinItems = 8;

// First-fit allocation of byte ranges; freed ranges merge with their neighbours.
class ArenaAllocator {
 public:
  int64_t allocate(int64_t bytes) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes) {
        const int64_t offset = it->first;
        const int64_t rest = it->second - bytes;
        free_.erase(it);
        if (rest > 0) free_.emplace(offset + bytes, rest);
        return offset;
      }
    }
    // Grow: extend a free range that ends at the top, if there is one.
    int64_t offset = top_;
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == top_) {
        offset = last->first;
        free_.erase(last);
      }
    }
    top_ = offset + bytes;
    return offset;
  }
  void release(int64_t offset, int64_t bytes) {
    auto it = free_.emplace(offset, bytes).first;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  int64_t top() const { return top_; }

 private:
  std::map<int64_t, int64_t> free_;  // offset -> size
  int64_t top_ = 0;
};

// Scratch of one run: the buffer of a plan's intermediates, and each node's input views, whose
// dtypes and shapes are set once per plan (or tail) so that a run only fills in the data pointers.
struct Arena {
  AlignedVector<unsigned char> bytes;
  const void* views_plan = nullptr;
  std::vector<std::vector<TensorView>> views;  // per node
};

}  // namespace

struct Model::Impl {
  Graph graph;
  ModelOptions options;
  std::vector<std::unique_ptr<Op>> ops;     // one per node
  std::vector<int> last_reader;             // per value: index of the last node reading it or a view of it, or -1
  std::vector<int> producer;                // per value: index of the node computing it, or -1
  std::vector<int> view_of;                 // per value: the value whose storage it reads (a view's root), or -1
  std::vector<bool> is_output;              // per value
  std::vector<int> input_slot;              // per value: its index among the graph inputs, or -1
  std::vector<int> output_slot;             // per value: its index in unique_outputs, or -1
  std::vector<int> unique_outputs;          // graph outputs, each value once

  mutable std::mutex mutex;  // guards plans and arenas
  // Few shapes per model in practice: a list compared in place builds no key on the hot path.
  mutable std::vector<std::pair<std::vector<Shape>, std::shared_ptr<const Plan>>> plans;
  mutable std::vector<std::unique_ptr<Arena>> arenas;

  Impl(Graph g, ModelOptions o) : graph(std::move(g)), options(o) {
    const auto& values = graph.values();
    if (graph.outputs().empty()) throw InvalidArgument("compiling a model: the graph has no outputs");
    last_reader.assign(values.size(), -1);
    producer.assign(values.size(), -1);
    is_output.assign(values.size(), false);
    input_slot.assign(values.size(), -1);
    output_slot.assign(values.size(), -1);
    for (size_t i = 0; i < graph.inputs().size(); ++i) input_slot[graph.inputs()[i]] = static_cast<int>(i);
    for (int o : graph.outputs()) {
      is_output[o] = true;
      if (output_slot[o] >= 0) continue;
      output_slot[o] = static_cast<int>(unique_outputs.size());
      unique_outputs.push_back(o);
    }
    view_of.assign(values.size(), -1);
    const auto& nodes = graph.nodes();
    for (size_t i = 0; i < nodes.size(); ++i) {
      ops.push_back(make_op(nodes[i], graph));
      for (int in : nodes[i].inputs) last_reader[storage(in)] = static_cast<int>(i);
      const int out = nodes[i].output;
      producer[out] = static_cast<int>(i);
      if (ops.back()->is_view() && !is_output[out]) view_of[out] = storage(nodes[i].inputs[0]);
    }
  }

  // The value whose bytes v reads: v itself, or the root of the views it is.
  int storage(int v) const { return view_of[v] >= 0 ? view_of[v] : v; }

  int threads() const { return options.num_threads > 0 ? options.num_threads : get_num_threads(); }
  RunContext context() const { return RunContext{threads(), options.reference_kernels}; }

  // Element counts, byte sizes and arena offsets are int64 products and sums of dims: a node whose
  // shape (from attributes of a damaged or hostile model file, say) has more bytes than any memory
  // is refused here for every operator, before any of them overflows. Zero dims count as 1, so that
  // partial products (the elements after an axis) stay bounded as well.
  static void check_size(const NodeDef& node, const TensorDesc& d) {
    constexpr int64_t kMaxBytes = int64_t{1} << 48;
    int64_t bytes = dtype_size(d.dtype);
    for (int64_t dim : d.shape) {
      if (dim < 0 || (dim > 1 && bytes > kMaxBytes / dim)) {
        throw InvalidArgument("planning the model: node '" + node.name + "' (" + node.op + ") gives shape " +
                              shape_string(d.shape) + " (expected dims ≥ 0 and at most 2^48 bytes)");
      }
      bytes *= std::max<int64_t>(dim, 1);
    }
  }

  // Shapes of every value for these input shapes; batch = dim 0 of the free-batch inputs.
  std::vector<TensorDesc> infer(const std::vector<Shape>& input_shapes, int64_t batch) const {
    const auto& values = graph.values();
    std::vector<TensorDesc> descs(values.size());
    for (size_t i = 0; i < graph.inputs().size(); ++i) {
      const int v = graph.inputs()[i];
      descs[v] = {values[v].dtype, input_shapes[i]};
    }
    for (size_t v = 0; v < values.size(); ++v) {
      if (values[v].kind == ValueKind::kConstant) descs[v] = {values[v].dtype, values[v].shape};
    }
    const auto& nodes = graph.nodes();
    std::vector<TensorDesc> in;
    for (size_t i = 0; i < nodes.size(); ++i) {
      in.clear();
      for (int v : nodes[i].inputs) in.push_back(descs[v]);
      descs[nodes[i].output] = ops[i]->infer(in, batch);
      check_size(nodes[i], descs[nodes[i].output]);
    }
    return descs;
  }

  static int64_t block_bytes(const TensorDesc& d) {
    return align_up(std::max<int64_t>(numel(d.shape) * dtype_size(d.dtype), 1));
  }

  // Arena offsets (into `offset`, per value) for the `live` values, taken first, and the outputs of
  // nodes [first, end), each block given back after its last reader; returns the arena's bytes.
  int64_t allocate(const std::vector<TensorDesc>& descs, size_t first, const std::vector<int>& live,
                   std::vector<int64_t>& offset) const {
    offset.assign(descs.size(), -1);
    ArenaAllocator arena;
    for (int v : live) offset[v] = arena.allocate(block_bytes(descs[v]));
    const auto& nodes = graph.nodes();
    for (size_t i = first; i < nodes.size(); ++i) {
      const int out = nodes[i].output;
      if (!is_output[out] && view_of[out] < 0) {  // a view has no storage: its reads count as its root's
        offset[out] = arena.allocate(block_bytes(descs[out]));
      }
      // Give back the blocks whose last reader is this node (and outputs nobody reads).
      auto release = [&](int v) {
        if (offset[v] < 0 || last_reader[v] > static_cast<int>(i)) return;
        arena.release(offset[v], block_bytes(descs[v]));
      };
      std::vector<int> done;
      for (int v : nodes[i].inputs) done.push_back(storage(v));
      std::sort(done.begin(), done.end());
      done.erase(std::unique(done.begin(), done.end()), done.end());
      for (int v : done) {
        if (graph.values()[v].kind == ValueKind::kNode && last_reader[v] == static_cast<int>(i)) release(v);
      }
      if (last_reader[out] < 0) release(out);
    }
    return arena.top();
  }

  std::shared_ptr<const Plan> make_plan(const std::vector<Shape>& input_shapes, int64_t batch) const {
    auto plan = std::make_shared<Plan>();
    plan->descs = infer(input_shapes, batch);
    plan->arena_bytes = allocate(plan->descs, 0, {}, plan->offset);
    const auto& nodes = graph.nodes();
    if (batch > 1) {
      std::vector<Shape> one = input_shapes;
      for (size_t i = 0; i < one.size(); ++i)
        if (batch_input(i)) one[i][0] = 1;
      std::shared_ptr<const Plan> item;
      try {
        item = make_plan(one, 1);
      } catch (const InvalidArgument&) {  // a size fixed to this batch in some attribute
        item = nullptr;
      }
      std::vector<Items> items;
      if (item != nullptr && batch_major(plan->descs, item->descs, batch, items)) {
        plan->batch_major = true;
        plan->item_arena_bytes = item->arena_bytes;
        std::vector<TensorDesc> in;
        for (size_t i = 0; i < nodes.size(); ++i) {
          in.clear();
          for (int v : nodes[i].inputs) in.push_back(item->descs[v]);
          plan->min_items = std::max(plan->min_items, std::min(kMaxMinItems, ops[i]->min_items(in)));
        }
        plan_tail(*plan, items, batch);
      }
    }
    return plan;
  }

  // The tail of a micro-batched run of `plan` (Tail): the longest run of last nodes, holding weights,
  // whose values at the whole batch (those they compute, and the crossing ones they read) fit in the
  // arena of a micro-batch of this batch.
  void plan_tail(Plan& plan, const std::vector<Items>& items, int64_t batch) const {
    const int64_t budget = plan.item_arena_bytes * micro_batch(plan, batch, threads());
    const auto& nodes = graph.nodes();
    const auto& values = graph.values();
    std::vector<bool> crossing(values.size(), false);
    int64_t bytes = 0;    // an upper bound of the tail's arena: its values, none reusing another's block
    int not_item_major = 0;  // crossing values whose items are not whole blocks of dim 0
    bool weights = false;
    for (int first = static_cast<int>(nodes.size()) - 1; first > 0; --first) {
      const NodeDef& node = nodes[static_cast<size_t>(first)];
      const int out = node.output;
      if (crossing[out]) {  // computed here: no longer read from the slices
        crossing[out] = false;
        if (items[out].axis != 0 || items[out].hi != 1) --not_item_major;
      } else if (!is_output[out] && view_of[out] < 0) {
        bytes += block_bytes(plan.descs[out]);
      }
      for (int v : node.inputs) {
        v = storage(v);
        if (values[v].kind != ValueKind::kNode || is_output[v] || crossing[v] || producer[v] >= first) continue;
        crossing[v] = true;
        bytes += block_bytes(plan.descs[v]);
        if (items[v].axis != 0 || items[v].hi != 1) ++not_item_major;
      }
      weights = weights || !node.weights.empty();
      if (bytes > budget) break;
      if (weights && not_item_major == 0) plan.tail.first_node = first;
    }
    Tail& tail = plan.tail;
    if (tail.first_node < 0) return;
    const size_t first = static_cast<size_t>(tail.first_node);
    for (size_t i = first; i < nodes.size(); ++i) {
      for (int v : nodes[i].inputs) {
        v = storage(v);
        if (values[v].kind == ValueKind::kNode && !is_output[v] && producer[v] < tail.first_node) tail.crossing.push_back(v);
      }
    }
    std::sort(tail.crossing.begin(), tail.crossing.end());
    tail.crossing.erase(std::unique(tail.crossing.begin(), tail.crossing.end()), tail.crossing.end());
    tail.arena_bytes = allocate(plan.descs, first, tail.crossing, tail.offset);
  }

  bool batch_input(size_t i) const {
    const Shape& s = graph.values()[graph.inputs()[i]].shape;
    return !s.empty() && s[0] < 0;
  }

  // Whether slices of dim 0 may run on their own, items [b0, b0 + n) of every output computed from
  // the same items of the batch inputs alone. Followed per value: the axis its items lie in, of size
  // hi · batch · lo there (item-major within it when hi = 1), and at batch 1 (`one`) hi · lo. Past
  // a reshape (same bytes) the items are found again from their byte stride; past any other node
  // from the only axis whose size grew with the batch, the other sizes the same. No node may mix
  // an axis holding items (Op::mixes_axis), and every output the nodes compute must hold them in
  // dim 0 with hi = 1, so that an item's output rows are one block.
  // `items` gets each value's.
  bool batch_major(const std::vector<TensorDesc>& descs, const std::vector<TensorDesc>& one, int64_t batch,
                   std::vector<Items>& items) const {
    items.assign(descs.size(), Items{});
    for (size_t i = 0; i < graph.inputs().size(); ++i)
      if (batch_input(i)) items[graph.inputs()[i]] = {0, 1, 1};
    const auto& nodes = graph.nodes();
    std::vector<TensorDesc> in;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const int out = nodes[i].output;
      const Shape &s = descs[out].shape, &s1 = one[out].shape;
      if (numel(s) == 0) return false;
      in.clear();
      for (int v : nodes[i].inputs) in.push_back(descs[v]);
      Items from;  // the items of the inputs that hold them, which must agree
      int from_input = -1;
      for (size_t j = 0; j < in.size(); ++j) {
        const Items& it = items[nodes[i].inputs[j]];
        if (it.axis < 0) continue;
        if (ops[i]->mixes_axis(in, j, it.axis)) return false;
        if (from_input >= 0 && (it.hi != from.hi || it.lo != from.lo)) return false;
        from = it;
        if (from_input < 0) from_input = static_cast<int>(j);
      }
      if (from_input < 0 && s == s1) continue;
      // A node that reads nothing yet grows with the batch (an arange of batch length) computes
      // positions, not copies of one item: in a slice they would restart at the slice's first item.
      if (nodes[i].inputs.empty()) return false;
      Items& to = items[out];
      if (ops[i]->is_view() && from_input == 0) {
        // Item b's bytes: blocks of `inner` elements at b · inner + k · batch · inner.
        const Shape& x = in[0].shape;
        int64_t inner = from.lo;
        for (size_t d = static_cast<size_t>(from.axis) + 1; d < x.size(); ++d) inner *= x[d];
        int64_t after = 1;  // elements per index of axis a
        for (int64_t a = static_cast<int64_t>(s.size()) - 1; a >= 0 && to.axis < 0; --a) {
          const int64_t size = s[static_cast<size_t>(a)];
          if (inner % after == 0 && after * size % (inner * batch) == 0) {
            to = {a, after * size / (inner * batch), inner / after};
          }
          after *= size;
        }
        if (to.axis < 0) return false;  // the items straddle dims
        continue;
      }
      int64_t grew = -1;
      for (size_t d = 0; d < s.size() && s.size() == s1.size(); ++d) {
        if (s[d] == s1[d]) continue;
        if (grew >= 0 || s[d] != s1[d] * batch) return false;
        grew = static_cast<int64_t>(d);
      }
      if (grew < 0) return false;
      // From the batch alone (an expand to batch rows): copies of one item, along a dim of 1.
      if (from_input < 0) from = {grew, 1, 1};
      if (s1[static_cast<size_t>(grew)] != from.hi * from.lo) return false;
      to = {grew, from.hi, from.lo};
    }
    for (int o : unique_outputs) {
      if (graph.values()[o].kind != ValueKind::kNode) continue;
      if (items[o].axis != 0 || items[o].hi != 1) return false;
    }
    return true;
  }

  // Refuses a run that needs more than options.max_memory_bytes (or this machine's memory) for its
  // intermediates and outputs: the sizes are sane (check_size) but may not fit, and an allocation
  // past physical memory would not fail cleanly (overcommit), the process would be killed instead.
  void check_memory(int64_t needed, int64_t batch) const {
    int64_t limit = options.max_memory_bytes;
    const bool machine = limit <= 0;
    if (machine) limit = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<int64_t>(::sysconf(_SC_PAGESIZE));
    if (limit <= 0 || needed <= limit) return;
    auto mib = [](int64_t b) { return b < (1 << 20) ? std::to_string(b) + " bytes" : std::to_string(b >> 20) + " MiB"; };
    throw InvalidArgument("running the model at batch " + std::to_string(batch) + ": its intermediate values and outputs need " +
                          mib(needed) + ", more than " + (machine ? "this machine's memory (" : "max_memory_bytes (") +
                          mib(limit) + ")");
  }

  // Items per micro-batch for a run of `batch` on `plan`: all of them unless the plan may be split.
  int64_t micro_batch(const Plan& plan, int64_t batch, int threads) const {
    if (!plan.batch_major) return batch;
    if (options.micro_batch > 0) return std::min(options.micro_batch, batch);
    if (plan.arena_bytes <= kMicroBatchBytes) return batch;
    const int64_t fit = kMicroBatchBytes / std::max<int64_t>(plan.item_arena_bytes, 1);
    return std::clamp<int64_t>(std::max<int64_t>({threads, fit, plan.min_items}), 1, batch);
  }

  // The graph inputs' declared shapes, a free dim 0 set to `batch`.
  std::vector<Shape> declared_shapes(int64_t batch) const {
    std::vector<Shape> shapes;
    for (size_t i = 0; i < graph.inputs().size(); ++i) {
      shapes.push_back(graph.values()[graph.inputs()[i]].shape);
      if (batch_input(i)) shapes.back()[0] = batch;
    }
    return shapes;
  }

  // Validates the inputs against the graph's declarations; returns the batch.
  int64_t check_inputs(const std::vector<TensorView>& inputs) const {
    const auto& values = graph.values();
    if (inputs.size() != graph.inputs().size()) {
      throw InvalidArgument("running the model: got " + std::to_string(inputs.size()) + " inputs (expected " +
                            std::to_string(graph.inputs().size()) + ")");
    }
    int64_t batch = -1;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const ValueDef& decl = values[graph.inputs()[i]];
      const TensorView& in = inputs[i];
      auto declared = [&] {
        Shape s = decl.shape;
        std::string text = "(";
        for (size_t d = 0; d < s.size(); ++d) text += (d ? ", " : "") + (s[d] < 0 ? std::string("batch") : std::to_string(s[d]));
        return text + (s.size() == 1 ? ",)" : ")");
      };
      if (in.dtype != decl.dtype) {
        throw InvalidArgument("running the model: input '" + decl.name + "' has dtype " + to_string(in.dtype) +
                              " (expected " + to_string(decl.dtype) + ")");
      }
      bool ok = in.shape.size() == decl.shape.size();
      for (size_t d = 0; ok && d < in.shape.size(); ++d) {
        ok = in.shape[d] >= 0 && (decl.shape[d] < 0 || in.shape[d] == decl.shape[d]);
      }
      if (!ok) {
        throw InvalidArgument("running the model: input '" + decl.name + "' has shape " + shape_string(in.shape) +
                              " (expected " + declared() + ")");
      }
      if (batch_input(i)) {
        if (batch >= 0 && in.shape[0] != batch) {
          throw InvalidArgument("running the model: input '" + decl.name + "' has batch " + std::to_string(in.shape[0]) +
                                " but an earlier input has " + std::to_string(batch) + " (expected one batch)");
        }
        batch = in.shape[0];
      }
      if (in.data == nullptr && numel(in.shape) > 0) {
        throw InvalidArgument("running the model: input '" + decl.name + "' has no data");
      }
    }
    return batch < 0 ? 1 : batch;
  }

  // The plan for the graph inputs' declared shapes at `batch` (micro_batch, node_info: no data).
  std::shared_ptr<const Plan> declared_plan(int64_t batch) const {
    std::vector<TensorView> inputs;
    for (const Shape& s : declared_shapes(batch)) inputs.push_back({DType::kF32, s, nullptr});
    return plan_for(inputs, batch);
  }

  std::shared_ptr<const Plan> plan_for(const std::vector<TensorView>& inputs, int64_t batch) const {
    auto same_shapes = [&](const std::vector<Shape>& shapes) {
      for (size_t i = 0; i < inputs.size(); ++i)
        if (shapes[i] != inputs[i].shape) return false;
      return true;
    };
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (const auto& [shapes, plan] : plans)
        if (same_shapes(shapes)) return plan;
    }
    std::vector<Shape> shapes;
    for (const auto& in : inputs) shapes.push_back(in.shape);
    auto plan = make_plan(shapes, batch);
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [known, existing] : plans)
      if (same_shapes(known)) return existing;  // another thread planned it meanwhile
    plans.emplace_back(std::move(shapes), plan);
    return plan;
  }

  // An arena from the pool, given back however the run ends.
  struct ArenaLease {
    const Impl& m;
    std::unique_ptr<Arena> arena;
    explicit ArenaLease(const Impl& impl) : m(impl), arena(impl.take_arena()) {}
    ~ArenaLease() { m.give_arena(std::move(arena)); }
  };

  // The buffers and node range of one pass over a plan: all of it, a slice's head, or the tail.
  struct Pass {
    const Plan& plan;
    const std::vector<int64_t>& offset;  // per value: byte offset in arena
    size_t first, end;                   // nodes [first, end)
    const void* key;                     // identifies the views (the plan, or its tail)
    int64_t arena_bytes;
    // Per value, where a slice writes a crossing value (its rows of the tail's), else null; may be null.
    const std::vector<unsigned char*>* crossing;
  };

  // Runs the nodes of `pass`, the graph outputs computed by nodes written to out_data (by output
  // slot); adds each node's seconds to node_seconds when given.
  void run_nodes(const Pass& pass, Arena& arena, const std::vector<TensorView>& inputs,
                 const std::vector<unsigned char*>& out_data, std::vector<double>* node_seconds) const {
    const Plan& plan = pass.plan;
    if (static_cast<int64_t>(arena.bytes.size()) < pass.arena_bytes) arena.bytes.resize(pass.arena_bytes);
    const auto& nodes = graph.nodes();
    if (arena.views_plan != pass.key) {  // plans live as long as the model, so the pointer identifies one
      arena.views.resize(nodes.size());
      for (size_t i = 0; i < nodes.size(); ++i) {
        arena.views[i].clear();
        for (int v : nodes[i].inputs) arena.views[i].push_back({plan.descs[v].dtype, plan.descs[v].shape, nullptr});
      }
      arena.views_plan = pass.key;
    }
    unsigned char* base = arena.bytes.data();
    const auto& values = graph.values();
    auto data_of = [&](int v) -> void* {
      v = storage(v);
      if (values[v].kind == ValueKind::kInput) return const_cast<void*>(inputs[input_slot[v]].data);
      if (values[v].kind == ValueKind::kConstant) return const_cast<void*>(values[v].constant->data());
      if (output_slot[v] >= 0) return out_data[output_slot[v]];
      if (pass.crossing != nullptr && (*pass.crossing)[v] != nullptr) return (*pass.crossing)[v];
      return base + pass.offset[v];
    };

    const RunContext ctx = context();
    for (size_t i = pass.first; i < pass.end; ++i) {
      std::vector<TensorView>& in = arena.views[i];
      for (size_t j = 0; j < in.size(); ++j) in[j].data = data_of(nodes[i].inputs[j]);
      const int out = nodes[i].output;
      if (view_of[out] >= 0) continue;
      if (node_seconds == nullptr) {
        ops[i]->run(in, plan.descs[out], data_of(out), ctx);
      } else {
        const auto start = std::chrono::steady_clock::now();
        ops[i]->run(in, plan.descs[out], data_of(out), ctx);
        (*node_seconds)[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    }
  }

  std::unique_ptr<Arena> take_arena() const {
    std::lock_guard<std::mutex> lock(mutex);
    if (arenas.empty()) return std::make_unique<Arena>();
    auto arena = std::move(arenas.back());
    arenas.pop_back();
    return arena;
  }
  void give_arena(std::unique_ptr<Arena> arena) const {
    std::lock_guard<std::mutex> lock(mutex);
    arenas.push_back(std::move(arena));
  }
};

Model::Model(Graph graph, ModelOptions options) : impl_(std::make_unique<Impl>(std::move(graph), options)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const Graph& Model::graph() const { return impl_->graph; }
const ModelOptions& Model::options() const { return impl_->options; }

std::vector<Tensor> Model::run(const std::vector<TensorView>& inputs) const { return execute(inputs, nullptr); }

std::vector<double> Model::profile(const std::vector<TensorView>& inputs, int repeats) const {
  if (repeats < 1) throw InvalidArgument("profiling the model: repeats " + std::to_string(repeats) + " (expected ≥ 1)");
  const size_t n = impl_->graph.nodes().size();
  std::vector<std::vector<double>> samples(n);
  std::vector<double> once(n);
  execute(inputs, &once);  // plans and warms up
  for (int r = 0; r < repeats; ++r) {
    execute(inputs, &once);
    for (size_t i = 0; i < n; ++i) samples[i].push_back(once[i]);
  }
  std::vector<double> median(n);
  for (size_t i = 0; i < n; ++i) {
    auto& v = samples[i];
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    median[i] = v[v.size() / 2];
  }
  return median;
}

std::vector<Tensor> Model::execute(const std::vector<TensorView>& inputs, std::vector<double>* node_seconds) const {
  const Impl& m = *impl_;
  const int64_t batch = m.check_inputs(inputs);
  const auto plan = m.plan_for(inputs, batch);
  const auto& values = m.graph.values();
  const int64_t micro = m.micro_batch(*plan, batch, m.context().threads);
  const Tail& tail = plan->tail;
  const size_t node_count = m.graph.nodes().size();
  const size_t tail_first = micro < batch && tail.first_node >= 0 ? static_cast<size_t>(tail.first_node) : node_count;
  int64_t needed = micro >= batch ? plan->arena_bytes : plan->item_arena_bytes * micro;  // a micro-batch's arena
  if (tail_first < node_count) needed += tail.arena_bytes;
  for (int o : m.unique_outputs) needed += numel(plan->descs[o].shape) * dtype_size(plan->descs[o].dtype);
  m.check_memory(needed, batch);
  std::vector<Tensor> outputs;
  outputs.reserve(m.unique_outputs.size());
  for (int o : m.unique_outputs) outputs.emplace_back(plan->descs[o].dtype, plan->descs[o].shape);
  std::vector<unsigned char*> out_data;
  for (Tensor& t : outputs) out_data.push_back(static_cast<unsigned char*>(t.data()));
  if (node_seconds != nullptr) node_seconds->assign(m.graph.nodes().size(), 0.0);

  Impl::ArenaLease lease(m);
  if (micro >= batch) {
    m.run_nodes({*plan, plan->offset, 0, node_count, plan.get(), plan->arena_bytes, nullptr}, *lease.arena, inputs,
                out_data, node_seconds);
  } else {
    Impl::ArenaLease tail_lease(m);
    if (tail_first < node_count && static_cast<int64_t>(tail_lease.arena->bytes.size()) < tail.arena_bytes) {
      tail_lease.arena->bytes.resize(tail.arena_bytes);
    }
    std::vector<unsigned char*> crossing(values.size(), nullptr);
    // Items [b0, b0 + n): the batch inputs' and the outputs' rows of them (batch_major), and the
    // crossing values' rows in the tail's arena.
    std::vector<TensorView> part = inputs;
    std::vector<unsigned char*> part_out(out_data.size());
    for (int64_t b0 = 0; b0 < batch; b0 += micro) {
      const int64_t n = std::min(micro, batch - b0);
      for (size_t i = 0; i < inputs.size(); ++i) {
        if (!m.batch_input(i)) continue;
        const int64_t item = numel(inputs[i].shape) / batch * dtype_size(inputs[i].dtype);
        part[i].shape[0] = n;
        part[i].data = static_cast<const unsigned char*>(inputs[i].data) + b0 * item;
      }
      for (size_t slot = 0; slot < outputs.size(); ++slot)
        part_out[slot] = out_data[slot] + b0 * (outputs[slot].nbytes() / batch);
      if (tail_first < node_count) {
        for (int v : tail.crossing) {
          const TensorDesc& d = plan->descs[v];
          crossing[v] = tail_lease.arena->bytes.data() + tail.offset[v] + b0 * (numel(d.shape) / batch * dtype_size(d.dtype));
        }
      }
      const auto slice = m.plan_for(part, n);
      m.run_nodes({*slice, slice->offset, 0, tail_first, slice.get(), slice->arena_bytes, &crossing}, *lease.arena, part,
                  part_out, node_seconds);
    }
    if (tail_first < node_count) {
      m.run_nodes({*plan, tail.offset, tail_first, node_count, &tail, tail.arena_bytes, nullptr}, *tail_lease.arena,
                  inputs, out_data, node_seconds);
    }
  }

  // Outputs that no node computes (a graph input or constant returned as is) are copied.
  for (size_t slot = 0; slot < m.unique_outputs.size(); ++slot) {
    const int v = m.unique_outputs[slot];
    if (values[v].kind == ValueKind::kNode) continue;
    const void* src = values[v].kind == ValueKind::kInput ? inputs[m.input_slot[v]].data : values[v].constant->data();
    std::copy_n(static_cast<const unsigned char*>(src), outputs[slot].nbytes(), out_data[slot]);
  }
  // A graph output listed twice gets two tensors.
  std::vector<Tensor> result;
  std::vector<int> moved_to(outputs.size(), -1);
  for (int o : m.graph.outputs()) {
    const int slot = m.output_slot[o];
    if (moved_to[slot] >= 0) {
      result.push_back(result[moved_to[slot]]);
    } else {
      moved_to[slot] = static_cast<int>(result.size());
      result.push_back(std::move(outputs[slot]));
    }
  }
  return result;
}

int64_t Model::micro_batch(int64_t batch) const {
  const Impl& m = *impl_;
  return m.micro_batch(*m.declared_plan(batch), batch, m.context().threads);
}

std::vector<TensorType> Model::output_types(int64_t batch) const {
  const Impl& m = *impl_;
  if (batch < 0) throw InvalidArgument("inferring output shapes: batch " + std::to_string(batch) + " (expected ≥ 0)");
  const auto descs = m.infer(m.declared_shapes(batch), batch);
  std::vector<TensorType> types;
  for (int o : m.graph.outputs()) types.push_back({descs[o].dtype, descs[o].shape});
  return types;
}

std::vector<NodeInfo> Model::node_info(int64_t batch) const {
  const Impl& m = *impl_;
  const auto whole = m.infer(m.declared_shapes(batch), batch);
  const RunContext ctx = m.context();
  const auto& nodes = m.graph.nodes();
  // A micro-batched run's nodes before its tail run at the micro-batch.
  int64_t micro = batch;
  size_t tail_first = nodes.size();
  std::vector<TensorDesc> sliced;
  if (batch > 1) {
    const auto plan = m.declared_plan(batch);
    micro = m.micro_batch(*plan, batch, ctx.threads);
    if (micro < batch) {
      sliced = m.infer(m.declared_shapes(micro), micro);
      if (plan->tail.first_node >= 0) tail_first = static_cast<size_t>(plan->tail.first_node);
    }
  }
  std::vector<NodeInfo> info;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const bool in_slice = micro < batch && i < tail_first;
    const auto& descs = in_slice ? sliced : whole;
    std::vector<TensorDesc> in;
    for (int v : nodes[i].inputs) in.push_back(descs[v]);
    NodeInfo n{nodes[i].name, nodes[i].op, m.ops[i]->kernel_name(in, ctx), {}, in_slice ? micro : batch};
    for (const auto& w : nodes[i].weights) n.weights.push_back(w->describe());
    info.push_back(std::move(n));
  }
  return info;
}

}  // namespace sparsert
