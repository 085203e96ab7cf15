// pybind11 module sparsert._core: array conversion, GIL release and error mapping; no logic.
// Inputs arrive as C-contiguous float32 arrays (python/sparsert/_convert.py converts and checks
// dtypes and shapes with messages in the caller's terms); this layer only re-checks sizes.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

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

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "sparsert C++ core: weight formats and fused linear kernels";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
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

  m.def("linear", &linear_py, py::arg("w"), py::arg("x"), py::arg("bias"), py::arg("activation"),
        py::arg("num_threads"), "y = act(x @ W.T + bias) for a 2-D float32 x; see sparsert.linear.");
  m.def("linear_kernel_name", &linear_kernel_name, py::arg("w"), py::arg("batch"));
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  m.def("physical_core_count", &physical_core_count);
  m.def("available_isas", &available_isas);
}
