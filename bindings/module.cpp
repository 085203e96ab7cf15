// pybind11 module sparsert._core: array conversion, GIL release and error mapping; no logic.
// Inputs arrive as C-contiguous float32, int64 or bool arrays (python/sparsert/_convert.py converts
// and checks dtypes and shapes with messages in the caller's terms); this layer only re-checks sizes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "sparsert/sparsert.hpp"

namespace py = pybind11;
using namespace sparsert;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;

// Checks that `w` is a 2-D float32 matrix and returns (rows, cols).
std::pair<int64_t, int64_t> matrix_shape(const FloatArray& w, const char* format) {
  if (w.ndim() != 2) {
    throw InvalidArgument(std::string("building ") + format + ": weight has " + std::to_string(w.ndim()) +
                          " dims (expected 2, (out, in))");
  }
  return {w.shape(0), w.shape(1)};
}

py::array_t<float> to_numpy(const Weight& w) {
  py::array_t<float> out({w.rows(), w.cols()});
  w.to_dense(out.mutable_data());
  return out;
}

template <class T, class Cls>
Cls& common(Cls& cls) {
  return cls.def_property_readonly("shape", [](const T& w) { return py::make_tuple(w.rows(), w.cols()); })
      .def_property_readonly("nnz", &T::nnz)
      .def_property_readonly("density", &T::density)
      .def_property_readonly("nbytes", &T::nbytes)
      .def_property_readonly("format", [](const T& w) { return to_string(w.format()); })
      .def("to_dense", [](const T& w) { return to_numpy(w); }, "Returns W as a new float32 array (out, in).")
      .def("__repr__", &T::describe);
}

py::array_t<float> linear_py(const Weight& w, const FloatArray& x, const std::optional<FloatArray>& bias,
                             const std::string& activation, int num_threads) {
  if (x.ndim() != 2 || x.shape(1) != w.cols()) {
    throw InvalidArgument("linear: input has " + std::to_string(x.ndim()) + " dims and " +
                          std::to_string(x.ndim() == 2 ? x.shape(1) : -1) + " features (expected 2-D with " +
                          std::to_string(w.cols()) + ")");
  }
  if (bias && (bias->ndim() != 1 || bias->shape(0) != w.rows())) {
    throw InvalidArgument("linear: bias has " + std::to_string(bias->size()) + " values (expected " +
                          std::to_string(w.rows()) + ")");
  }
  LinearOptions options;
  options.activation = parse_activation(activation);
  options.num_threads = num_threads;
  const int64_t batch = x.shape(0);
  py::array_t<float> y({batch, w.rows()});
  const float* xp = x.data();
  const float* bp = bias ? bias->data() : nullptr;
  float* yp = y.mutable_data();
  {
    // x, bias and y stay referenced by this frame, so releasing the GIL is safe.
    py::gil_scoped_release release;
    linear(w, xp, batch, bp, yp, options);
  }
  return y;
}

// A C-contiguous float32, int64 or bool array (python/sparsert converts everything else first).
// NumPy's bool is one byte holding 0 or 1, sparsert's bool layout.
TensorView view_of(const py::array& a, const std::string& what) {
  const bool contiguous = (a.flags() & py::array::c_style) != 0;
  DType dtype;
  // Equal, not the same object: an unpickled array (Ray's object store, multiprocessing) carries a
  // dtype object of its own.
  if (a.dtype().equal(py::dtype::of<float>())) dtype = DType::kF32;
  else if (a.dtype().equal(py::dtype::of<int64_t>())) dtype = DType::kI64;
  else if (a.dtype().kind() == 'b' && a.itemsize() == 1) dtype = DType::kBool;
  else throw InvalidArgument(what + ": dtype " + std::string(py::str(a.dtype())) + " (expected float32, int64 or bool)");
  if (!contiguous) throw InvalidArgument(what + ": array is not C-contiguous");
  return {dtype, Shape(a.shape(), a.shape() + a.ndim()), a.data()};
}

// Hands a result tensor to NumPy without a copy: the array keeps the tensor alive.
py::array to_numpy(Tensor&& t) {
  auto owner = new Tensor(std::move(t));
  py::capsule free_owner(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(owner->shape().begin(), owner->shape().end());
  switch (owner->dtype()) {
    case DType::kF32: return py::array_t<float>(shape, owner->data_as<float>(), free_owner);
    case DType::kI64: return py::array_t<int64_t>(shape, owner->data_as<int64_t>(), free_owner);
    case DType::kBool: return py::array_t<bool>(shape, owner->data_as<bool>(), free_owner);
  }
  throw Error("returning a result: unknown dtype");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "sparsert C++ core: weight formats and fused linear kernels";

  // sparsert.ModelFileError: a ValueError, raised for unreadable model files.
  static py::handle model_file_error =
      PyErr_NewException("sparsert._core.ModelFileError", PyExc_ValueError, nullptr);
  m.attr("ModelFileError") = model_file_error;

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ModelFileError& e) {
      PyErr_SetString(model_file_error.ptr(), e.what());
    } catch (const InvalidArgument& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const Error& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  py::class_<Weight, std::shared_ptr<Weight>>(m, "Weight", "A packed weight matrix (any format).");

  auto dense = py::class_<DenseMatrix, Weight, std::shared_ptr<DenseMatrix>>(m, "Dense");
  dense.def(py::init([](const FloatArray& w) {
              auto [rows, cols] = matrix_shape(w, "dense");
              return std::make_shared<DenseMatrix>(w.data(), rows, cols);
            }),
            py::arg("W"));
  common<DenseMatrix>(dense);

  auto csr = py::class_<CsrMatrix, Weight, std::shared_ptr<CsrMatrix>>(m, "CSR");
  csr.def(py::init([](const FloatArray& w) {
            auto [rows, cols] = matrix_shape(w, "csr");
            return std::make_shared<CsrMatrix>(w.data(), rows, cols);
          }),
          py::arg("W"))
      .def_property_readonly("index_bits", &CsrMatrix::index_bits);
  common<CsrMatrix>(csr);

  auto csc = py::class_<CscMatrix, Weight, std::shared_ptr<CscMatrix>>(m, "CSC");
  csc.def(py::init([](const FloatArray& w) {
            auto [rows, cols] = matrix_shape(w, "csc");
            return std::make_shared<CscMatrix>(w.data(), rows, cols);
          }),
          py::arg("W"))
      .def_property_readonly("index_bits", &CscMatrix::index_bits);
  common<CscMatrix>(csc);

  auto bsr = py::class_<BsrMatrix, Weight, std::shared_ptr<BsrMatrix>>(m, "BSR");
  bsr.def(py::init([](const FloatArray& w, std::pair<int, int> block) {
            auto [rows, cols] = matrix_shape(w, "bsr");
            return std::make_shared<BsrMatrix>(w.data(), rows, cols, block.first, block.second);
          }),
          py::arg("W"), py::arg("block"))
      .def_property_readonly("block", [](const BsrMatrix& w) { return py::make_tuple(w.block_rows(), w.block_cols()); })
      .def_property_readonly("nblocks", &BsrMatrix::nblocks);
  common<BsrMatrix>(bsr);

  auto nm = py::class_<NmMatrix, Weight, std::shared_ptr<NmMatrix>>(m, "NM");
  nm.def(py::init([](const FloatArray& w, int n, int m_) {
           auto [rows, cols] = matrix_shape(w, "nm");
           return std::make_shared<NmMatrix>(w.data(), rows, cols, n, m_);
         }),
         py::arg("W"), py::arg("n"), py::arg("m"))
      .def_property_readonly("n", &NmMatrix::n)
      .def_property_readonly("m", &NmMatrix::m);
  common<NmMatrix>(nm);


  py::class_<Graph>(m, "Graph", "A model graph under construction (see sparsert/graph.hpp).")
      .def(py::init<>())
      .def("add_input",
           [](Graph& g, const std::string& name, const std::string& dtype, const Shape& shape) {
             return g.add_input(name, parse_dtype(dtype), shape);
           },
           py::arg("name"), py::arg("dtype"), py::arg("shape"))
      .def("add_constant",
           [](Graph& g, const std::string& name, const py::array& data) {
             TensorView v = view_of(data, "constant '" + name + "'");
             auto t = std::make_shared<Tensor>(v.dtype, v.shape);
             std::copy_n(static_cast<const unsigned char*>(v.data), t->nbytes(), static_cast<unsigned char*>(t->data()));
             return g.add_constant(name, std::move(t));
           },
           py::arg("name"), py::arg("data"))
      .def("add_node",
           [](Graph& g, const std::string& op, const std::string& name, const std::vector<int>& inputs,
              const std::string& output, const std::map<std::string, std::vector<int64_t>>& ints,
              const std::map<std::string, std::vector<double>>& floats,
              const std::vector<std::shared_ptr<Weight>>& weights) {
             NodeDef node;
             node.op = op;
             node.name = name;
             node.inputs = inputs;
             node.attrs.ints = ints;
             node.attrs.floats = floats;
             node.weights.assign(weights.begin(), weights.end());
             return g.add_node(std::move(node), output);
           },
           py::arg("op"), py::arg("name"), py::arg("inputs"), py::arg("output"), py::arg("ints"), py::arg("floats"),
           py::arg("weights"))
      .def("set_outputs", &Graph::set_outputs, py::arg("outputs"))
      .def("find", &Graph::find, py::arg("name"));

  py::class_<Model>(m, "Model", "A compiled model (see sparsert/model.hpp).")
      .def(py::init([](const Graph& g, int num_threads, bool reference_kernels, int64_t micro_batch) {
             return Model(g, ModelOptions{num_threads, reference_kernels, micro_batch});
           }),
           py::arg("graph"), py::arg("num_threads"), py::arg("reference_kernels"), py::arg("micro_batch") = 0)
      .def_static(
          "load",
          [](const std::string& path, int num_threads, int64_t micro_batch) {
            return Model::load(path, ModelOptions{num_threads, false, micro_batch});
          },
          py::arg("path"), py::arg("num_threads"), py::arg("micro_batch") = 0)
      .def("save", &Model::save, py::arg("path"), py::call_guard<py::gil_scoped_release>())
      .def(
          "run",
          [](const Model& model, const std::vector<py::array>& arrays) {
            std::vector<TensorView> views;
            const auto& values = model.graph().values();
            for (size_t i = 0; i < arrays.size(); ++i) {
              const std::string name = i < model.graph().inputs().size() ? values[model.graph().inputs()[i]].name
                                                                           : std::to_string(i);
              views.push_back(view_of(arrays[i], "running the model: input '" + name + "'"));
            }
            std::vector<Tensor> outputs;
            {
              // `arrays` stays referenced by this frame, so releasing the GIL is safe.
              py::gil_scoped_release release;
              outputs = model.run(views);
            }
            py::list result;
            for (auto& t : outputs) result.append(to_numpy(std::move(t)));
            return result;
          },
          py::arg("inputs"))
      .def(
          "profile",
          [](const Model& model, const std::vector<py::array>& arrays, int repeats) {
            std::vector<TensorView> views;
            for (size_t i = 0; i < arrays.size(); ++i) views.push_back(view_of(arrays[i], "profiling: input " + std::to_string(i)));
            py::gil_scoped_release release;
            return model.profile(views, repeats);
          },
          py::arg("inputs"), py::arg("repeats"))
      .def_property_readonly("num_threads", [](const Model& model) { return model.options().num_threads; })
      .def("micro_batch", &Model::micro_batch, py::arg("batch"),
           "Batch items per slice that a run of this batch takes (the batch when it runs whole).")
      .def("inputs",
           [](const Model& model) {
             py::list out;
             for (int v : model.graph().inputs()) {
               const auto& d = model.graph().values()[v];
               out.append(py::make_tuple(d.name, to_string(d.dtype), d.shape));
             }
             return out;
           })
      .def("outputs",
           [](const Model& model) {
             py::list out;
             for (int v : model.graph().outputs()) out.append(model.graph().values()[v].name);
             return out;
           })
      .def("nodes",
           [](const Model& model, int64_t batch) {
             py::list out;
             const auto info = model.node_info(batch);
             for (size_t i = 0; i < info.size(); ++i) {
               py::dict d;
               d["name"] = info[i].name;
               d["op"] = info[i].op;
               d["kernel"] = info[i].kernel;
               d["items"] = info[i].items;
               py::list weights;
               for (const auto& w : model.graph().nodes()[i].weights) weights.append(std::const_pointer_cast<Weight>(w));
               d["weights"] = weights;
               out.append(d);
             }
             return out;
           },
           py::arg("batch"));

  m.def("linear", &linear_py, py::arg("w"), py::arg("x"), py::arg("bias"), py::arg("activation"),
        py::arg("num_threads"), "y = act(x @ W.T + bias) for a 2-D float32 x; see sparsert.linear.");
  m.def(
      "codes",
      [] {
        py::dict tables;
        for (const auto& [table, codes] : attribute_codes()) {
          py::dict by_name;  // in code order
          for (const auto& [name, code] : codes) by_name[py::str(name)] = code;
          tables[py::str(table)] = by_name;
        }
        return tables;
      },
      "The codes node attributes hold, {table: {spelling: code}} for \"activation\", \"unary\", "
      "\"binary\" and \"dtype\" (sparsert/graph.hpp's attribute_codes).");
  m.def("linear_kernel_name", &linear_kernel_name, py::arg("w"), py::arg("batch"));
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("physical_core_count", &physical_core_count);
  m.def("available_isas", &available_isas);
}
