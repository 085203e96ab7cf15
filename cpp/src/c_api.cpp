// The C API (cpp/include/sparsert.h) over Model: handles own C++ objects, every entry point
// catches every exception and turns it into a status plus this thread's last-error message.
//
// Enum arguments and fields written by C callers may hold any int. Loading such a value through the
// C++ enum type is undefined when it is out of the enum's range (UBSan's enum check), so dtype codes
// and statuses are read through memcpy into an int and checked before any conversion.
#include "sparsert.h"

#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "sparsert/error.hpp"
#include "sparsert/linear.hpp"
#include "sparsert/model.hpp"

#ifndef SPARSERT_VERSION_STRING
#error "SPARSERT_VERSION_STRING is set by cpp/CMakeLists.txt"
#endif

static_assert(static_cast<int>(sparsert::DType::kF32) == SPARSERT_DTYPE_F32 &&
                  static_cast<int>(sparsert::DType::kI64) == SPARSERT_DTYPE_I64 &&
                  static_cast<int>(sparsert::DType::kBool) == SPARSERT_DTYPE_BOOL,
              "C dtype codes are sparsert::DType's");
static_assert(sizeof(sparsert_dtype) == sizeof(int32_t) && sizeof(sparsert_status) == sizeof(int32_t),
              "enums are read as 32-bit ints (see the top of this file)");

struct sparsert_model {
  struct Value {
    std::string name;
    sparsert_dtype dtype = SPARSERT_DTYPE_F32;
    int32_t rank = -1;
    std::vector<int64_t> shape;
  };
  explicit sparsert_model(sparsert::Model m) : model(std::move(m)) {}

  sparsert::Model model;
  std::vector<Value> inputs, outputs;
};

struct sparsert_result {
  std::vector<sparsert::Tensor> tensors;
};

namespace {

using sparsert::InvalidArgument;

thread_local std::string t_last_error;
// Set when the message itself could not be stored (no memory for it).
thread_local const char* t_last_error_fallback = nullptr;

sparsert_status fail(sparsert_status status, const char* message) noexcept {
  try {
    t_last_error.assign(message);
    t_last_error_fallback = nullptr;
  } catch (...) {
    t_last_error_fallback = "out of memory (and no memory left for this call's error message)";
  }
  return status;
}

// Runs `body`, mapping every exception to a status and the last error (the C++ message as is).
template <class Body>
sparsert_status guarded(const char* action, Body&& body) noexcept {
  try {
    body();
    return SPARSERT_STATUS_OK;
  } catch (const sparsert::ModelFileError& e) {
    return fail(SPARSERT_STATUS_MODEL_FILE_ERROR, e.what());
  } catch (const sparsert::InvalidArgument& e) {
    return fail(SPARSERT_STATUS_INVALID_ARGUMENT, e.what());
  } catch (const std::bad_alloc&) {
    fail(SPARSERT_STATUS_OUT_OF_MEMORY, action);
    try {
      t_last_error += ": out of memory";
    } catch (...) {
    }
    return SPARSERT_STATUS_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    return fail(SPARSERT_STATUS_RUNTIME_ERROR, e.what());
  } catch (...) {
    fail(SPARSERT_STATUS_RUNTIME_ERROR, action);
    try {
      t_last_error += ": an exception of unknown type";
    } catch (...) {
    }
    return SPARSERT_STATUS_RUNTIME_ERROR;
  }
}

int32_t as_int(const void* enum_value) {
  int32_t code;
  std::memcpy(&code, enum_value, sizeof(code));
  return code;
}

void require(bool ok, const std::string& action, const char* what, const char* expected) {
  if (!ok) throw InvalidArgument(action + ": " + what + " (expected " + expected + ")");
}

void check_index(size_t index, size_t count, const std::string& action) {
  if (index >= count) {
    throw InvalidArgument(action + ": index " + std::to_string(index) + " (expected < " + std::to_string(count) + ")");
  }
}

// The declared inputs and outputs, as queries return them. An output's dims come from inferring
// its shape at batches 1 and 2: a dim that differs depends on the batch and reads -1.
void describe(sparsert_model& m) {
  const auto& graph = m.model.graph();
  const auto& values = graph.values();
  bool free_batch = false;
  for (int v : graph.inputs()) {
    const auto& d = values[static_cast<size_t>(v)];
    m.inputs.push_back({d.name, static_cast<sparsert_dtype>(d.dtype), static_cast<int32_t>(d.shape.size()), d.shape});
    free_batch = free_batch || (!d.shape.empty() && d.shape[0] < 0);
  }
  std::vector<sparsert::TensorType> one, two;
  try {
    one = m.model.output_types(1);
    two = free_batch ? m.model.output_types(2) : one;
  } catch (const InvalidArgument&) {  // the model refuses batch 1 or 2: known only from a run
    one.clear();
  }
  for (size_t i = 0; i < graph.outputs().size(); ++i) {
    sparsert_model::Value out;
    out.name = values[static_cast<size_t>(graph.outputs()[i])].name;
    if (!one.empty() && one[i].shape.size() == two[i].shape.size()) {
      out.dtype = static_cast<sparsert_dtype>(one[i].dtype);
      out.rank = static_cast<int32_t>(one[i].shape.size());
      out.shape = one[i].shape;
      for (size_t d = 0; d < out.shape.size(); ++d)
        if (one[i].shape[d] != two[i].shape[d]) out.shape[d] = -1;
    }
    m.outputs.push_back(std::move(out));
  }
}

void check_load(const std::string& action, int num_threads, sparsert_model** model) {
  require(model != nullptr, action, "the model pointer is NULL", "where to store the new handle");
  require(num_threads >= 0, action, ("num_threads is " + std::to_string(num_threads)).c_str(),
          "≥ 0; 0 follows sparsert_set_num_threads");
}

sparsert::ModelOptions options_with(int num_threads) {
  sparsert::ModelOptions options;
  options.num_threads = num_threads;
  return options;
}

sparsert_model* new_handle(sparsert::Model model) {
  auto handle = std::make_unique<sparsert_model>(std::move(model));
  describe(*handle);
  return handle.release();
}

}  // namespace

extern "C" {

const char* sparsert_last_error(void) {
  return t_last_error_fallback != nullptr ? t_last_error_fallback : t_last_error.c_str();
}

const char* sparsert_status_string(sparsert_status status) {
  switch (as_int(&status)) {
    case SPARSERT_STATUS_OK: return "ok";
    case SPARSERT_STATUS_INVALID_ARGUMENT: return "invalid argument";
    case SPARSERT_STATUS_MODEL_FILE_ERROR: return "model file error";
    case SPARSERT_STATUS_OUT_OF_MEMORY: return "out of memory";
    case SPARSERT_STATUS_RUNTIME_ERROR: return "runtime error";
    default: return "unknown status";
  }
}

const char* sparsert_version(void) { return SPARSERT_VERSION_STRING; }

void sparsert_set_num_threads(int n) { sparsert::set_num_threads(n); }

int sparsert_get_num_threads(void) {
  try {
    return sparsert::get_num_threads();
  } catch (...) {
    return 1;
  }
}

sparsert_status sparsert_model_load(const char* path, int num_threads, sparsert_model** model) {
  return guarded("loading a model", [&] {
    const std::string action = path != nullptr ? "loading '" + std::string(path) + "'" : "loading a model";
    require(path != nullptr, action, "the path is NULL", "a NUL-terminated file name");
    check_load(action, num_threads, model);
    *model = new_handle(sparsert::Model::load(path, options_with(num_threads)));
  });
}

sparsert_status sparsert_model_load_buffer(const void* data, size_t size, int num_threads, sparsert_model** model) {
  return guarded("loading a model from memory", [&] {
    check_load("loading a model from memory (" + std::to_string(size) + " bytes)", num_threads, model);
    *model = new_handle(sparsert::Model::load_buffer(data, size, options_with(num_threads)));  // checks data
  });
}

sparsert_status sparsert_model_load_buffer_in_place(const void* data, size_t size, int num_threads,
                                                    sparsert_model** model) {
  return guarded("loading a model from memory", [&] {
    check_load("loading a model from memory (" + std::to_string(size) + " bytes)", num_threads, model);
    *model = new_handle(sparsert::Model::load_buffer_in_place(data, size, options_with(num_threads)));  // checks data
  });
}

void sparsert_model_free(sparsert_model* model) { delete model; }

sparsert_status sparsert_model_input_count(const sparsert_model* model, size_t* count) {
  return guarded("querying the model's inputs", [&] {
    require(model != nullptr && count != nullptr, "querying the model's inputs", "model or count is NULL", "both set");
    *count = model->inputs.size();
  });
}

sparsert_status sparsert_model_output_count(const sparsert_model* model, size_t* count) {
  return guarded("querying the model's outputs", [&] {
    require(model != nullptr && count != nullptr, "querying the model's outputs", "model or count is NULL", "both set");
    *count = model->outputs.size();
  });
}

namespace {

sparsert_status query(const sparsert_model* model, size_t index, sparsert_value_info* info, bool input) {
  const char* action = input ? "querying the model's inputs" : "querying the model's outputs";
  return guarded(action, [&] {
    require(model != nullptr && info != nullptr, action, "model or info is NULL", "both set");
    const auto& list = input ? model->inputs : model->outputs;
    check_index(index, list.size(), action);
    const auto& v = list[index];
    info->name = v.name.c_str();
    info->dtype = v.dtype;
    info->rank = v.rank;
    info->shape = v.rank < 0 ? nullptr : v.shape.data();
  });
}

}  // namespace

sparsert_status sparsert_model_input(const sparsert_model* model, size_t index, sparsert_value_info* info) {
  return query(model, index, info, true);
}

sparsert_status sparsert_model_output(const sparsert_model* model, size_t index, sparsert_value_info* info) {
  return query(model, index, info, false);
}

sparsert_status sparsert_model_run(const sparsert_model* model, const sparsert_tensor* inputs, size_t input_count,
                                   sparsert_result** result) {
  const std::string action = "running the model";
  return guarded("running the model", [&] {
    require(model != nullptr, action, "the model is NULL", "a handle from sparsert_model_load");
    require(result != nullptr, action, "the result pointer is NULL", "where to store the new result");
    if (inputs == nullptr && input_count > 0) {
      throw InvalidArgument(action + ": inputs is NULL with input_count " + std::to_string(input_count) + " (expected " +
                            std::to_string(input_count) + " tensors)");
    }
    // Checked here: what a C caller can get wrong that a C++ TensorView cannot hold (an unknown
    // dtype code, a NULL shape, a byte count past int64). Model::run checks the rest.
    std::vector<sparsert::TensorView> views(input_count);
    for (size_t i = 0; i < input_count; ++i) {
      const sparsert_tensor& in = inputs[i];
      const std::string name = "input " + (i < model->inputs.size() ? "'" + model->inputs[i].name + "'" : std::to_string(i));
      const int32_t code = as_int(&in.dtype);
      if (code < SPARSERT_DTYPE_F32 || code > SPARSERT_DTYPE_BOOL) {
        throw InvalidArgument(action + ": " + name + " has dtype code " + std::to_string(code) +
                              " (expected 0 for f32, 1 for i64 or 2 for bool)");
      }
      if (in.shape == nullptr && in.rank > 0) {
        throw InvalidArgument(action + ": " + name + " has rank " + std::to_string(in.rank) + " and a NULL shape (expected " +
                              std::to_string(in.rank) + " dims)");
      }
      auto& view = views[i];
      view.dtype = static_cast<sparsert::DType>(code);
      if (in.rank > 0) view.shape.assign(in.shape, in.shape + in.rank);
      int64_t bytes = sparsert::dtype_size(view.dtype);
      for (int64_t d : view.shape) {
        if (d < 0) continue;  // Model::run names a negative dim with the expected shape
        if (d != 0 && bytes > std::numeric_limits<int64_t>::max() / d) {
          throw InvalidArgument(action + ": " + name + " has shape " + sparsert::shape_string(view.shape) +
                                " (expected fewer than 2^63 bytes)");
        }
        bytes *= d;
      }
      view.data = in.data;
    }
    auto r = std::make_unique<sparsert_result>();
    r->tensors = model->model.run(views);
    *result = r.release();
  });
}

sparsert_status sparsert_result_count(const sparsert_result* result, size_t* count) {
  return guarded("reading a result", [&] {
    require(result != nullptr && count != nullptr, "reading a result", "result or count is NULL", "both set");
    *count = result->tensors.size();
  });
}

sparsert_status sparsert_result_output(const sparsert_result* result, size_t index, sparsert_tensor* tensor) {
  return guarded("reading a result", [&] {
    require(result != nullptr && tensor != nullptr, "reading a result", "result or tensor is NULL", "both set");
    check_index(index, result->tensors.size(), "reading a result");
    const sparsert::Tensor& t = result->tensors[index];
    tensor->dtype = static_cast<sparsert_dtype>(t.dtype());
    tensor->rank = t.shape().size();
    tensor->shape = t.shape().empty() ? nullptr : t.shape().data();
    tensor->data = t.data();
  });
}

void sparsert_result_free(sparsert_result* result) { delete result; }

}  // extern "C"
