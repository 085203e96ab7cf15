#include "io/model_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <type_traits>

#include "sparsert/bsr.hpp"
#include "sparsert/csc.hpp"
#include "sparsert/csr.hpp"
#include "sparsert/dense.hpp"
#include "sparsert/error.hpp"
#include "sparsert/model.hpp"
#include "sparsert/nm.hpp"

namespace sparsert {

namespace {

constexpr char kMagic[8] = {'S', 'P', 'R', 'T', 'M', 'O', 'D', 'L'};
constexpr size_t kHeaderBytes = 32;
constexpr size_t kArrayAlign = 64;
constexpr int64_t kMaxWeightDim = int64_t{1} << 31;

static_assert(std::numeric_limits<float>::is_iec559, "the model file stores IEEE-754 floats");

uint64_t fnv1a(const unsigned char* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

class Writer {
 public:
  template <class T>
  void put(T v) {
    static_assert(std::is_arithmetic_v<T>);
    const auto* p = reinterpret_cast<const unsigned char*>(&v);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void shape(const Shape& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    for (int64_t d : s) put<int64_t>(d);
  }
  void array(const void* data, size_t n) {
    put<uint64_t>(n);
    bytes_.resize((bytes_.size() + kArrayAlign - 1) / kArrayAlign * kArrayAlign, 0);
    const auto* p = static_cast<const unsigned char*>(data);
    bytes_.insert(bytes_.end(), p, p + n);
  }
  std::vector<unsigned char>& bytes() { return bytes_; }

 private:
  std::vector<unsigned char> bytes_ = std::vector<unsigned char>(kHeaderBytes, 0);
};

// Reads fields from a whole model file held in memory. Arrays are used in place: `keep_alive` keeps
// the 64-byte aligned bytes valid (a mapping of the file, or an aligned copy).
class Reader {
 public:
  Reader(const unsigned char* bytes, size_t size, std::string action, std::shared_ptr<const void> keep_alive)
      : bytes_(bytes), size_(size), action_(std::move(action)), keep_alive_(std::move(keep_alive)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFileError(action_ + ": " + what + " (at byte " + std::to_string(at_) + ")");
  }
  void need(size_t n, const char* field) {
    if (n > size_ - at_) fail(std::string("the file ends inside ") + field + " (truncated or corrupted)");
  }
  template <class T>
  T get(const char* field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_ + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  // A count of items each at least `min_item_bytes` long: bounded by what the file can still hold.
  uint32_t count(const char* field, size_t min_item_bytes) {
    const uint32_t n = get<uint32_t>(field);
    if (static_cast<uint64_t>(n) * min_item_bytes > size_ - at_) {
      fail(std::string(field) + " is " + std::to_string(n) + ", more than the rest of the file can hold");
    }
    return n;
  }
  std::string str(const char* field) {
    const uint32_t n = count(field, 1);
    std::string s(reinterpret_cast<const char*>(bytes_ + at_), n);
    at_ += n;
    return s;
  }
  Shape shape(const char* field) {
    const uint32_t rank = count(field, sizeof(int64_t));
    Shape s(rank);
    for (auto& d : s) {
      d = get<int64_t>(field);
      if (d < -1) fail(std::string(field) + " has a dim of " + std::to_string(d) + " (expected ≥ -1)");
    }
    return s;
  }
  // An array of T with exactly `expected` elements when expected ≥ 0, read in place.
  template <class T>
  SharedArray<T> array(const char* field, int64_t expected = -1) {
    const uint64_t n = get<uint64_t>(field);
    at_ = std::min(size_, (at_ + kArrayAlign - 1) / kArrayAlign * kArrayAlign);
    if (n % sizeof(T) != 0) fail(std::string(field) + " has " + std::to_string(n) + " bytes (expected a multiple of " + std::to_string(sizeof(T)) + ")");
    need(n, field);
    if (expected >= 0 && n / sizeof(T) != static_cast<uint64_t>(expected)) {
      fail(std::string(field) + " has " + std::to_string(n / sizeof(T)) + " elements (expected " + std::to_string(expected) + ")");
    }
    SharedArray<T> out(reinterpret_cast<const T*>(bytes_ + at_), n / sizeof(T), keep_alive_);
    at_ += n;
    return out;
  }
  // The index array of a compressed format: u8 width (16 or 32), then the array at that width.
  IndexArray indices(const char* field) {
    const uint8_t bits = get<uint8_t>(field);
    if (bits == 16) return array<uint16_t>(field);
    if (bits == 32) return array<uint32_t>(field);
    fail(std::string(field) + " has index width " + std::to_string(bits) + " (expected 16 or 32)");
  }
  bool done() const { return at_ == size_; }
  uint64_t remaining() const { return size_ - at_; }

 private:
  const unsigned char* bytes_;
  size_t size_;
  std::string action_;  // "loading 'net.sprt'": what failed, in messages
  std::shared_ptr<const void> keep_alive_;
  size_t at_ = kHeaderBytes;
};

template <class T>
void put_array(Writer& w, const T* data, int64_t n) {
  w.array(data, static_cast<size_t>(n) * sizeof(T));
}

void put_indices(Writer& w, const IndexArray& idx) {
  w.put<uint8_t>(static_cast<uint8_t>(idx.bits));
  if (idx.bits == 16) put_array(w, idx.u16.data(), static_cast<int64_t>(idx.size()));
  else put_array(w, idx.u32.data(), static_cast<int64_t>(idx.size()));
}

void write_weight(Writer& w, const Weight& weight) {
  w.put<uint8_t>(static_cast<uint8_t>(weight.format()));
  w.put<int64_t>(weight.rows());
  w.put<int64_t>(weight.cols());
  switch (weight.format()) {
    case Format::kDense: {
      const auto& d = static_cast<const DenseMatrix&>(weight);
      put_array(w, d.panels(), d.panel_count() * DenseMatrix::kPanelRows * d.cols());
      break;
    }
    case Format::kCsr: {
      const auto& c = static_cast<const CsrMatrix&>(weight);
      put_array(w, c.row_ptr(), c.rows() + 1);
      put_indices(w, c.col_idx());
      put_array(w, c.values(), c.nnz());
      break;
    }
    case Format::kBsr: {
      const auto& b = static_cast<const BsrMatrix&>(weight);
      w.put<int32_t>(b.block_rows());
      w.put<int32_t>(b.block_cols());
      put_array(w, b.row_ptr(), b.block_row_count() + 1);
      put_indices(w, b.block_col());
      put_array(w, b.values(), b.nblocks() * b.block_rows() * b.block_cols());
      break;
    }
    case Format::kCsc: {
      const auto& c = static_cast<const CscMatrix&>(weight);
      put_array(w, c.col_ptr(), c.cols() + 1);
      put_indices(w, c.row_idx());
      put_array(w, c.values(), c.nnz());
      break;
    }
    case Format::kNM: {
      const auto& m = static_cast<const NmMatrix&>(weight);
      w.put<int32_t>(m.n());
      w.put<int32_t>(m.m());
      put_array(w, m.values(), m.rows() * m.groups() * m.n());
      put_array(w, m.meta(), m.rows() * m.words_per_row());
      break;
    }
  }
}

std::shared_ptr<const Weight> read_weight(Reader& r) {
  const uint8_t format = r.get<uint8_t>("weight format");
  const int64_t rows = r.get<int64_t>("weight rows"), cols = r.get<int64_t>("weight cols");
  // Below 2^31 each: columns are addressed by u32 indices, and the format classes multiply two
  // dims (and a block or group size) in int64.
  if (rows < 0 || cols < 0 || rows >= kMaxWeightDim || cols >= kMaxWeightDim) {
    r.fail("a weight has shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ") (expected each dim in [0, 2^31))");
  }
  try {
    switch (format) {
      case static_cast<uint8_t>(Format::kDense):
        return DenseMatrix::from_parts(rows, cols, r.array<float>("dense panels"));
      case static_cast<uint8_t>(Format::kCsr): {
        auto ptr = r.array<int64_t>("csr row_ptr", rows + 1);
        auto idx = r.indices("csr col_idx");
        auto val = r.array<float>("csr values");
        return CsrMatrix::from_parts(rows, cols, std::move(ptr), std::move(idx), std::move(val));
      }
      case static_cast<uint8_t>(Format::kBsr): {
        const int32_t br = r.get<int32_t>("bsr block_rows"), bc = r.get<int32_t>("bsr block_cols");
        auto ptr = r.array<int64_t>("bsr row_ptr");
        auto idx = r.indices("bsr block_col");
        auto val = r.array<float>("bsr values");
        return BsrMatrix::from_parts(rows, cols, br, bc, std::move(ptr), std::move(idx), std::move(val));
      }
      case static_cast<uint8_t>(Format::kNM): {
        const int32_t n = r.get<int32_t>("nm n"), m = r.get<int32_t>("nm m");
        auto val = r.array<float>("nm values");
        auto meta = r.array<uint32_t>("nm meta");
        return NmMatrix::from_parts(rows, cols, n, m, std::move(val), std::move(meta));
      }
      case static_cast<uint8_t>(Format::kCsc): {
        auto ptr = r.array<int64_t>("csc col_ptr", cols + 1);
        auto idx = r.indices("csc row_idx");
        auto val = r.array<float>("csc values");
        return CscMatrix::from_parts(rows, cols, std::move(ptr), std::move(idx), std::move(val));
      }
      default:
        r.fail("unknown weight format " + std::to_string(format) + " (expected 0 to 4)");
    }
  } catch (const ModelFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    r.fail(e.what());
  }
}

}  // namespace

void write_model_file(const Graph& graph, const std::string& path) {
  Writer w;
  const auto& values = graph.values();
  w.put<uint32_t>(static_cast<uint32_t>(values.size()));
  for (const auto& v : values) {
    w.str(v.name);
    w.put<uint8_t>(static_cast<uint8_t>(v.kind));
    w.put<uint8_t>(static_cast<uint8_t>(v.dtype));
    w.shape(v.shape);
    if (v.kind == ValueKind::kConstant) w.array(v.constant->data(), static_cast<size_t>(v.constant->nbytes()));
  }
  for (const auto* list : {&graph.inputs(), &graph.outputs()}) {
    w.put<uint32_t>(static_cast<uint32_t>(list->size()));
    for (int v : *list) w.put<int32_t>(v);
  }
  w.put<uint32_t>(static_cast<uint32_t>(graph.nodes().size()));
  for (const auto& n : graph.nodes()) {
    w.str(n.op);
    w.str(n.name);
    w.put<uint32_t>(static_cast<uint32_t>(n.inputs.size()));
    for (int v : n.inputs) w.put<int32_t>(v);
    w.put<uint32_t>(static_cast<uint32_t>(n.attrs.ints.size()));
    for (const auto& [name, list] : n.attrs.ints) {
      w.str(name);
      w.put<uint32_t>(static_cast<uint32_t>(list.size()));
      for (int64_t x : list) w.put<int64_t>(x);
    }
    w.put<uint32_t>(static_cast<uint32_t>(n.attrs.floats.size()));
    for (const auto& [name, list] : n.attrs.floats) {
      w.str(name);
      w.put<uint32_t>(static_cast<uint32_t>(list.size()));
      for (double x : list) w.put<double>(x);
    }
    w.put<uint32_t>(static_cast<uint32_t>(n.weights.size()));
    for (const auto& weight : n.weights) write_weight(w, *weight);
  }

  auto& bytes = w.bytes();
  std::memcpy(bytes.data(), kMagic, sizeof(kMagic));
  const uint32_t version = kModelFileVersion, reserved = 0;
  const uint64_t size = bytes.size(), checksum = fnv1a(bytes.data() + kHeaderBytes, bytes.size() - kHeaderBytes);
  std::memcpy(bytes.data() + 8, &version, 4);
  std::memcpy(bytes.data() + 12, &reserved, 4);
  std::memcpy(bytes.data() + 16, &size, 8);
  std::memcpy(bytes.data() + 24, &checksum, 8);

  // Written beside the target, then renamed over it: a model loaded from the old file keeps its mapping
  // (truncating a mapped file in place would crash it), and no reader sees a half-written file.
  const std::string partial = path + ".partial-" + std::to_string(::getpid());
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("saving '" + path + "': cannot open '" + partial + "' for writing");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::remove(partial.c_str());
      throw Error("saving '" + path + "': writing failed (disk full?)");
    }
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    std::remove(partial.c_str());
    throw Error("saving '" + path + "': cannot replace the file (" + reason + ")");
  }
}

namespace {

// The whole reader: `bytes` holds a model file's `n` bytes, 64-byte aligned and kept valid by
// `keep_alive` (the weights and constants read them in place); `action` ("loading 'net.sprt'") opens
// every message.
Graph parse_model(const unsigned char* bytes, size_t n, const std::string& action, std::shared_ptr<const void> keep_alive) {
  auto header_fail = [&](const std::string& what) { throw ModelFileError(action + ": " + what); };
  if (n < kHeaderBytes) {
    header_fail("the file has " + std::to_string(n) + " bytes, fewer than the 32-byte header (truncated or not a sparsert model)");
  }
  if (std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0) header_fail("not a sparsert model file (the magic bytes differ from \"SPRTMODL\")");
  uint32_t version;
  uint64_t size, checksum;
  std::memcpy(&version, bytes + 8, 4);
  std::memcpy(&size, bytes + 16, 8);
  std::memcpy(&checksum, bytes + 24, 8);
  if (version != kModelFileVersion) {
    header_fail("format version " + std::to_string(version) + " (this sparsert reads version " +
                std::to_string(kModelFileVersion) +
                (version > kModelFileVersion ? "; upgrade sparsert)" : "; save or convert the model again with this sparsert)"));
  }
  if (size != n) {
    header_fail("the file has " + std::to_string(n) + " bytes but its header says " + std::to_string(size) +
                (n < size ? " (truncated)" : " (trailing data)"));
  }
  if (fnv1a(bytes + kHeaderBytes, n - kHeaderBytes) != checksum) {
    header_fail("the checksum does not match (the file is corrupted)");
  }

  Reader r(bytes, n, action, std::move(keep_alive));
  struct PendingValue {
    std::string name;
    ValueKind kind;
    DType dtype;
    Shape shape;
    std::shared_ptr<const Tensor> constant;
  };
  std::vector<PendingValue> values(r.count("value count", 10));
  for (auto& v : values) {
    v.name = r.str("value name");
    const uint8_t kind = r.get<uint8_t>("value kind"), dtype = r.get<uint8_t>("value dtype");
    if (kind > 2) r.fail("value '" + v.name + "' has kind " + std::to_string(kind) + " (expected 0 to 2)");
    if (dtype > 2) {
      r.fail("value '" + v.name + "' has dtype " + std::to_string(dtype) + " (expected 0 for f32, 1 for i64 or 2 for bool)");
    }
    v.kind = static_cast<ValueKind>(kind);
    v.dtype = static_cast<DType>(dtype);
    v.shape = r.shape("value shape");
    if (v.kind == ValueKind::kConstant) {
      // Bound the size by the bytes left before allocating anything.
      uint64_t elements = 1;
      for (int64_t d : v.shape) {
        if (d < 0) r.fail("constant '" + v.name + "' has shape " + shape_string(v.shape));
        if (d != 0 && elements > r.remaining() / static_cast<uint64_t>(d)) {
          r.fail("constant '" + v.name + "' has shape " + shape_string(v.shape) + ", larger than the file");
        }
        elements *= static_cast<uint64_t>(d);
      }
      auto data = r.array<unsigned char>("constant data", static_cast<int64_t>(elements) * dtype_size(v.dtype));
      if (v.dtype == DType::kBool) {
        for (size_t i = 0; i < data.size(); ++i) {
          if (data[i] > 1) {
            r.fail("bool constant '" + v.name + "' holds " + std::to_string(data[i]) + " at element " + std::to_string(i) +
                   " (expected 0 or 1)");
          }
        }
      }
      auto t = std::make_shared<const Tensor>(v.dtype, v.shape, std::move(data));
      v.constant = std::move(t);
    }
  }
  auto index_list = [&](const char* field) {
    std::vector<int> out(r.count(field, 4));
    for (int& v : out) {
      v = r.get<int32_t>(field);
      if (v < 0 || v >= static_cast<int>(values.size())) r.fail(std::string(field) + " names value " + std::to_string(v));
    }
    return out;
  };
  const auto inputs = index_list("input index");
  const auto outputs = index_list("output index");

  std::vector<NodeDef> nodes(r.count("node count", 16));
  for (auto& n : nodes) {
    n.op = r.str("node op");
    n.name = r.str("node name");
    n.inputs = index_list("node input index");
    const uint32_t nints = r.count("int attribute count", 8);
    for (uint32_t i = 0; i < nints; ++i) {
      const std::string name = r.str("attribute name");
      std::vector<int64_t> list(r.count("attribute length", 8));
      for (auto& x : list) x = r.get<int64_t>("attribute value");
      n.attrs.ints[name] = std::move(list);
    }
    const uint32_t nfloats = r.count("float attribute count", 8);
    for (uint32_t i = 0; i < nfloats; ++i) {
      const std::string name = r.str("attribute name");
      std::vector<double> list(r.count("attribute length", 8));
      for (auto& x : list) x = r.get<double>("attribute value");
      n.attrs.floats[name] = std::move(list);
    }
    const uint32_t nweights = r.count("weight count", 17);
    for (uint32_t i = 0; i < nweights; ++i) n.weights.push_back(read_weight(r));
  }
  if (!r.done()) r.fail("unread bytes after the last node");

  // Replay into a Graph, which re-validates names and value order.
  Graph graph;
  size_t next_node = 0;
  try {
    for (size_t v = 0; v < values.size(); ++v) {
      auto& pv = values[v];
      if (pv.kind == ValueKind::kInput) {
        graph.add_input(pv.name, pv.dtype, pv.shape);
      } else if (pv.kind == ValueKind::kConstant) {
        graph.add_constant(pv.name, pv.constant);
      } else {
        if (next_node >= nodes.size()) r.fail("value '" + pv.name + "' is computed by no node");
        graph.add_node(std::move(nodes[next_node++]), pv.name);
      }
    }
    if (next_node != nodes.size()) r.fail("more nodes than computed values");
    if (graph.inputs() != inputs) r.fail("the input list does not match the input values");
    graph.set_outputs(outputs);
  } catch (const ModelFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw ModelFileError(action + ": " + e.what());
  }
  return graph;
}

}  // namespace

Graph read_model_file(const std::string& path) {
  const std::string action = "loading '" + path + "'";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ModelFileError(action + ": cannot open the file (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ModelFileError(action + ": not a regular file");
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return parse_model(nullptr, 0, action, nullptr);
  }
  // Mapped, not read: the weights are used in place, so loading costs page faults rather than copies.
  // MAP_PRIVATE and read-only; write_model_file replaces files by renaming, so saving over a loaded
  // model's file leaves the mapped one intact.
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapped == MAP_FAILED) throw ModelFileError(action + ": cannot map the file (" + std::strerror(errno) + ")");
  std::shared_ptr<const void> mapping(mapped, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  return parse_model(static_cast<const unsigned char*>(mapped), size, action, std::move(mapping));
}

namespace {

std::string buffer_action(size_t size) { return "loading a model from memory (" + std::to_string(size) + " bytes)"; }

void check_buffer(const void* data, size_t size) {
  if (data == nullptr && size > 0) {
    throw InvalidArgument(buffer_action(size) + ": the data pointer is null (expected " + std::to_string(size) + " readable bytes)");
  }
}

}  // namespace

Graph read_model_buffer(const void* data, size_t size) {
  check_buffer(data, size);
  auto copy = std::make_shared<AlignedVector<unsigned char>>(static_cast<const unsigned char*>(data),
                                                             static_cast<const unsigned char*>(data) + size);
  const unsigned char* bytes = copy->data();
  return parse_model(bytes, size, buffer_action(size), std::move(copy));
}

Graph read_model_buffer_in_place(const void* data, size_t size) {
  check_buffer(data, size);
  if (reinterpret_cast<uintptr_t>(data) % kArrayAlign != 0) return read_model_buffer(data, size);
  // The caller keeps the bytes alive: nothing to own.
  return parse_model(static_cast<const unsigned char*>(data), size, buffer_action(size), std::shared_ptr<const void>(data, [](const void*) {}));
}

// Model's loaders: errors of a well-formed file that only compiling the graph finds (an unknown
// operator, bad attributes) are errors of the file too.
Model Model::load(const std::string& path, ModelOptions options) {
  try {
    return Model(read_model_file(path), options);
  } catch (const ModelFileError&) {
    throw;
  } catch (const InvalidArgument& e) {
    throw ModelFileError("loading '" + path + "': " + e.what());
  }
}

namespace {

Model compile_buffer(Graph graph, size_t size, ModelOptions options) {
  try {
    return Model(std::move(graph), options);
  } catch (const InvalidArgument& e) {
    throw ModelFileError(buffer_action(size) + ": " + e.what());
  }
}

}  // namespace

Model Model::load_buffer(const void* data, size_t size, ModelOptions options) {
  return compile_buffer(read_model_buffer(data, size), size, options);  // a null pointer stays an InvalidArgument
}

Model Model::load_buffer_in_place(const void* data, size_t size, ModelOptions options) {
  return compile_buffer(read_model_buffer_in_place(data, size), size, options);
}

void Model::save(const std::string& path) const { write_model_file(graph(), path); }

}  // namespace sparsert
