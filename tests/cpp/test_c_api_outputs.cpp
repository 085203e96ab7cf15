// What the C API says of a model's outputs before a run (sparsert_model_output), for the cases the
// C test's model does not have: no free batch (concrete shapes), a model that only accepts some
// batches (rank -1 until a run), an output listed twice; and Model::output_types, which it reads.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include <unistd.h>

#include "sparsert.h"
#include "sparsert/sparsert.hpp"

namespace sparsert {
namespace {

// Saves `graph` and loads it through the C API; the handle is freed by the caller.
sparsert_model* c_model(const Graph& graph, const std::string& name) {
  const std::string path = ::testing::TempDir() + "sparsert_c_outputs_" + name + "_" + std::to_string(::getpid()) + ".sprt";
  Model(graph).save(path);
  sparsert_model* model = nullptr;
  EXPECT_EQ(sparsert_model_load(path.c_str(), 1, &model), SPARSERT_STATUS_OK) << sparsert_last_error();
  std::remove(path.c_str());
  return model;
}

std::vector<int64_t> shape_of(const sparsert_value_info& info) {
  return info.rank < 0 ? std::vector<int64_t>{} : std::vector<int64_t>(info.shape, info.shape + info.rank);
}

NodeDef reshape(int input, std::vector<int64_t> coef, std::vector<int64_t> constant) {
  NodeDef n{"reshape", "r", {input}, -1, {}, {}};
  n.attrs.ints["shape_coef"] = std::move(coef);
  n.attrs.ints["shape_const"] = std::move(constant);
  return n;
}

TEST(CApiOutputs, FixedShapesAreConcrete) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {3, 4});
  const int y = g.add_node(reshape(x, {0, 0}, {2, 6}), "y");
  g.set_outputs({y, y});  // listed twice: two outputs
  sparsert_model* model = c_model(g, "fixed");
  ASSERT_NE(model, nullptr);
  size_t count = 0;
  ASSERT_EQ(sparsert_model_output_count(model, &count), SPARSERT_STATUS_OK);
  EXPECT_EQ(count, 2u);
  for (size_t i = 0; i < 2; ++i) {
    sparsert_value_info info;
    ASSERT_EQ(sparsert_model_output(model, i, &info), SPARSERT_STATUS_OK);
    EXPECT_STREQ(info.name, "y");
    EXPECT_EQ(info.dtype, SPARSERT_DTYPE_F32);
    EXPECT_EQ(shape_of(info), (std::vector<int64_t>{2, 6}));
  }
  sparsert_model_free(model);
}

TEST(CApiOutputs, BatchDependentDimsReadMinusOne) {
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 4});
  const int flat = g.add_node(reshape(x, {4}, {0}), "flat");  // (4 · batch,)
  g.set_outputs({flat, x});
  sparsert_model* model = c_model(g, "flat");
  ASSERT_NE(model, nullptr);
  sparsert_value_info info;
  ASSERT_EQ(sparsert_model_output(model, 0, &info), SPARSERT_STATUS_OK);
  EXPECT_EQ(shape_of(info), (std::vector<int64_t>{-1}));
  ASSERT_EQ(sparsert_model_output(model, 1, &info), SPARSERT_STATUS_OK);
  EXPECT_EQ(shape_of(info), (std::vector<int64_t>{-1, 4}));
  sparsert_model_free(model);
  EXPECT_EQ(Model(g).output_types(3)[0].shape, (Shape{12}));
}

TEST(CApiOutputs, ModelOfOneBatchKnowsItsOutputsOnlyFromARun) {
  // A reshape fixed to batch 4 (a size frozen by tracing): batches 1 and 2 are refused.
  Graph g;
  const int x = g.add_input("x", DType::kF32, {-1, 4});
  const int y = g.add_node(reshape(x, {0, 0}, {2, 8}), "y");
  g.set_outputs({y});
  sparsert_model* model = c_model(g, "one_batch");
  ASSERT_NE(model, nullptr);
  sparsert_value_info info;
  ASSERT_EQ(sparsert_model_output(model, 0, &info), SPARSERT_STATUS_OK);
  EXPECT_STREQ(info.name, "y");
  EXPECT_EQ(info.rank, -1);
  EXPECT_EQ(info.shape, nullptr);

  std::vector<float> xs(16, 1.0f);
  const int64_t shape[2] = {4, 4};
  const sparsert_tensor input = {SPARSERT_DTYPE_F32, 2, shape, xs.data()};
  sparsert_result* result = nullptr;
  ASSERT_EQ(sparsert_model_run(model, &input, 1, &result), SPARSERT_STATUS_OK) << sparsert_last_error();
  sparsert_tensor out;
  ASSERT_EQ(sparsert_result_output(result, 0, &out), SPARSERT_STATUS_OK);
  EXPECT_EQ(std::vector<int64_t>(out.shape, out.shape + out.rank), (std::vector<int64_t>{2, 8}));
  sparsert_result_free(result);

  const int64_t wrong[2] = {3, 4};
  const sparsert_tensor three = {SPARSERT_DTYPE_F32, 2, wrong, xs.data()};
  EXPECT_EQ(sparsert_model_run(model, &three, 1, &result), SPARSERT_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(sparsert_last_error()).find("cannot take shape (2, 8)"), std::string::npos) << sparsert_last_error();
  sparsert_model_free(model);

  EXPECT_THROW(Model(g).output_types(1), InvalidArgument);
  EXPECT_THROW(Model(g).output_types(-1), InvalidArgument);
  EXPECT_EQ(Model(g).output_types(4)[0].shape, (Shape{2, 8}));
}

}  // namespace
}  // namespace sparsert
