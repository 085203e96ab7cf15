// The CUDA kernels against the host references (tests/cpp/test_formats_gpu.cpp checks those against
// the double product on any CPU): tiled CSR and dense fp32 against the double product, the 2:4
// mma.sp kernel against its decoded weight — which is what proves the metadata layout on hardware.
// Outputs are poisoned (NaN) and carry a guard band past each row, so an unwritten element or a
// write past `rows` fails. Without a CUDA device every test reports skipped, never passed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <sstream>

#include "kernels/cuda/device_array.hpp"
#include "oracle.hpp"

namespace sparsert::test {
namespace {

using cuda::DeviceArray;

constexpr uint32_t kPoison = 0xffffffffu;  // a NaN; cudaMemset(0xff) writes it

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::device_count(&why) == 0) GTEST_SKIP() << "no CUDA device: " << why;
  }
};

// Output buffer of batch rows of ldy = rows + 3 floats, all poisoned.
struct Output {
  Output(int64_t batch, int64_t rows) : batch(batch), rows(rows), ldy(rows + 3), y(batch * (rows + 3)) {
    if (y.size() > 0) SPARSERT_CUDA_CHECK(cudaMemset(y.data(), 0xff, y.bytes()));
  }
  // Downloads, checks the guard band is untouched, returns the batch × rows result (dense, row-major).
  std::vector<float> result(const std::string& where) const {
    SPARSERT_CUDA_CHECK(cudaDeviceSynchronize());
    const auto all = y.download();
    std::vector<float> out(static_cast<size_t>(batch * rows));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t r = 0; r < ldy; ++r) {
        const float v = all[b * ldy + r];
        if (r < rows) {
          out[b * rows + r] = v;
        } else {
          uint32_t bits;
          std::memcpy(&bits, &v, sizeof bits);
          EXPECT_EQ(bits, kPoison) << where << ": wrote past rows at batch " << b << " row " << r;
        }
      }
    return out;
  }
  int64_t batch, rows, ldy;
  DeviceArray<float> y;
};

// Input: batch rows of ldx = cols + 5 floats; the 5 floats past cols are NaN, which must never be read.
struct Input {
  Input(int64_t batch, int64_t cols, uint32_t seed) : ldx(cols + 5) {
    auto x = random_vector(batch * ldx, seed);
    dense.resize(static_cast<size_t>(batch * cols));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t c = 0; c < ldx; ++c) {
        if (c < cols) dense[b * cols + c] = x[b * ldx + c];
        else x[b * ldx + c] = std::nanf("");
      }
    device = DeviceArray<float>(x);
  }
  int64_t ldx;
  std::vector<float> dense;  // batch × cols, for the oracle
  DeviceArray<float> device;
};

template <class A, class B>
std::string first_bad(const A& y, const B& ref, const std::vector<double>& magnitude, double tol) {
  for (size_t i = 0; i < ref.size(); ++i) {
    const double bound = tol * (std::abs(double(ref[i])) + magnitude[i] + 1e-30);
    if (!(std::abs(double(y[i]) - double(ref[i])) <= bound)) {
      std::ostringstream s;
      s << "first bad index " << i << ": got " << y[i] << ", expected " << ref[i];
      return s.str();
    }
  }
  return "no single element out of tolerance";
}

std::string where(const char* kernel, int64_t rows, int64_t cols, int64_t batch, double density, uint32_t seed,
                  const std::string& extra = "") {
  std::ostringstream s;
  s << kernel << " shape (" << rows << ", " << cols << ") batch " << batch << " density " << density << " seed "
    << seed << (extra.empty() ? "" : " ") << extra;
  return s.str();
}

TEST_F(Cuda, TcsrMatchesDoubleProductForEveryVariant) {
  uint32_t seed = 7000;
  for (int64_t rows : {1, 17, 67, 300})
    for (int64_t cols : {1, 5, 70, 1000})
      for (double density : {0.05, 0.3, 0.5, 0.95, 1.0})
        for (int64_t batch : {1, 2, 5, 16, 33, 64, 130}) {
          ++seed;
          const int64_t col_tile = seed % 3 == 0 ? 64 : kTcsrMaxColTile;  // a third with many column tiles
          const auto w = random_weight(rows, cols, density, {}, seed);
          const TcsrMatrix host = tcsr_pack(w.data(), rows, cols, col_tile);
          const auto dev = cuda::upload(host);
          const Input in(batch, cols, seed + 1);
          const auto ref = dense_product(w, rows, cols, in.dense, batch, nullptr, Activation::kNone);
          const auto mag = dense_magnitude(w, rows, cols, in.dense, batch, nullptr);
          for (cuda::TcsrVariant v :
               {cuda::TcsrVariant::kAuto, cuda::TcsrVariant::kWarpPerRow, cuda::TcsrVariant::kLanesPerBatch}) {
            if (v == cuda::TcsrVariant::kWarpPerRow && batch > 32) continue;
            const std::string at =
                where("spmm_tcsr_f32_sm80", rows, cols, batch, density, seed,
                      std::string(to_string(v)) + " col_tile " + std::to_string(col_tile));
            DeviceArray<unsigned char> workspace(cuda::spmm_tcsr_f32_sm80_workspace_bytes(cols, batch, v));
            Output out(batch, rows);
            ASSERT_EQ(cuda::spmm_tcsr_f32_sm80(dev.view, in.device.data(), in.ldx, batch, out.y.data(), out.ldy,
                                               workspace.data(), workspace.size(), nullptr, v),
                      cudaSuccess)
                << at;
            const auto y = out.result(at);
            const double err = relative_error(y, ref, mag);
            ASSERT_LE(err, kTolF32VsF64) << at << ": " << first_bad(y, ref, mag, kTolF32VsF64);
          }
        }
}

TEST_F(Cuda, TcsrAgreesWithTheHostReference) {
  // The host reference reads the layout as the kernels do; at one larger shape the two should agree
  // to float rounding (different summation order only).
  const int64_t rows = 513, cols = 2048, batch = 24;
  const uint32_t seed = 42;
  const auto w = random_weight(rows, cols, 0.1, {}, seed);
  const TcsrMatrix host = tcsr_pack(w.data(), rows, cols, 512);
  const auto dev = cuda::upload(host);
  const Input in(batch, cols, seed + 1);
  std::vector<float> x_rows(static_cast<size_t>(batch * in.ldx), 0.0f);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t c = 0; c < cols; ++c) x_rows[b * in.ldx + c] = in.dense[b * cols + c];
  std::vector<float> ref(static_cast<size_t>(batch * rows));
  spmm_tcsr_f32_ref(host, x_rows.data(), in.ldx, batch, ref.data(), rows);
  const auto mag = dense_magnitude(w, rows, cols, in.dense, batch, nullptr);
  DeviceArray<unsigned char> workspace(cuda::spmm_tcsr_f32_sm80_workspace_bytes(cols, batch));
  Output out(batch, rows);
  ASSERT_EQ(cuda::spmm_tcsr_f32_sm80(dev.view, in.device.data(), in.ldx, batch, out.y.data(), out.ldy,
                                     workspace.data(), workspace.size(), nullptr),
            cudaSuccess);
  const auto y = out.result("tcsr vs host reference");
  EXPECT_LE(relative_error(y, ref, mag), kTolF32VsRef) << first_bad(y, ref, mag, kTolF32VsRef);
}

TEST_F(Cuda, TcsrRejectsBrokenPreconditionsWithoutLaunching) {
  const std::vector<float> w(4 * 8, 1.0f);
  const auto dev = cuda::upload(tcsr_pack(w.data(), 4, 8));
  DeviceArray<float> x(8 * 40), y(4 * 40);
  // batch 40 needs a workspace; none given.
  EXPECT_EQ(cuda::spmm_tcsr_f32_sm80(dev.view, x.data(), 8, 40, y.data(), 4, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
  // warp-per-row holds at most 32 sums a lane.
  DeviceArray<unsigned char> ws(cuda::spmm_tcsr_f32_sm80_workspace_bytes(8, 40));
  EXPECT_EQ(cuda::spmm_tcsr_f32_sm80(dev.view, x.data(), 8, 40, y.data(), 4, ws.data(), ws.size(), nullptr,
                                     cuda::TcsrVariant::kWarpPerRow),
            cudaErrorInvalidValue);
  // ldx below cols.
  EXPECT_EQ(cuda::spmm_tcsr_f32_sm80(dev.view, x.data(), 7, 1, y.data(), 4, nullptr, 0, nullptr),
            cudaErrorInvalidValue);
}

TEST_F(Cuda, DenseMatchesDoubleProduct) {
  uint32_t seed = 8000;
  for (int64_t rows : {1, 17, 64, 301})
    for (int64_t cols : {1, 6, 64, 1001})  // 6 and 1001: the scalar loads; 64: the float4 loads
      for (int64_t batch : {1, 3, 8, 16, 17, 64, 65, 200}) {
        ++seed;
        const auto w = random_weight(rows, cols, 1.0, {}, seed);
        const DeviceArray<float> wd(w);
        const Input in(batch, cols, seed + 1);
        // ldx = cols + 5 is odd-sized; redo the float4 path with an aligned copy when cols allows it.
        for (bool aligned : {false, true}) {
          if (aligned && cols % 4 != 0) continue;
          const int64_t ldx = aligned ? cols : in.ldx;
          DeviceArray<float> xa;
          const float* x = in.device.data();
          if (aligned) {
            xa = DeviceArray<float>(in.dense);
            x = xa.data();
          }
          const std::string at = where("spmm_dense_f32_sm80", rows, cols, batch, 1.0, seed,
                                       aligned ? "ldx = cols" : "ldx = cols + 5");
          Output out(batch, rows);
          ASSERT_EQ(cuda::spmm_dense_f32_sm80(wd.data(), rows, cols, cols, x, ldx, batch, out.y.data(), out.ldy,
                                              nullptr),
                    cudaSuccess)
              << at;
          const auto y = out.result(at);
          const auto ref = dense_product(w, rows, cols, in.dense, batch, nullptr, Activation::kNone);
          const auto mag = dense_magnitude(w, rows, cols, in.dense, batch, nullptr);
          ASSERT_LE(relative_error(y, ref, mag), kTolF32VsF64) << at << ": " << first_bad(y, ref, mag, kTolF32VsF64);
        }
      }
}

// fp32 accumulation of products of 16-bit operands: each product is exact in fp32, so the error is
// the fp32 summation's; 1e-4 (vs 1e-5 for the fp32 kernels) leaves room for how the tensor cores align
// and round their partial sums, and is still four orders below what a wrong metadata layout gives.
constexpr double kTolHalfOperandsF32Acc = 1e-4;

TEST_F(Cuda, Nm24Sm80MatchesDecodedWeight) {
  uint32_t seed = 9000;
  for (Half16 type : {Half16::kF16, Half16::kBF16})
    for (int64_t rows : {1, 16, 17, 70})
      for (int64_t cols : {3, 16, 33, 256})
        for (double density : {0.5, 1.0})  // of the kept 2:4 slots
          for (int64_t batch : {1, 7, 8, 9, 40}) {
            ++seed;
            const auto w = random_weight(rows, cols, density, {"nm", 2, 4, 1, 1}, seed);
            const Nm24MmaMatrix host = nm24_mma_pack(w.data(), rows, cols, type);
            std::vector<float> decoded(w.size());
            nm24_mma_to_dense(host, decoded.data());
            const auto dev = cuda::upload(host);
            Input in(batch, cols, seed + 1);
            std::vector<float> xr = in.dense;  // the operands the tensor cores see
            for (auto& v : xr) v = half16_to_float(float_to_half16(v, type), type);
            const auto ref = dense_product(decoded, rows, cols, xr, batch, nullptr, Activation::kNone);
            const auto mag = dense_magnitude(decoded, rows, cols, xr, batch, nullptr);
            const std::string at = where(type == Half16::kF16 ? "spmm_nm24_f16_sm80" : "spmm_nm24_bf16_sm80", rows,
                                         cols, batch, density, seed);
            Output out(batch, rows);
            const auto run = type == Half16::kF16 ? cuda::spmm_nm24_f16_sm80 : cuda::spmm_nm24_bf16_sm80;
            ASSERT_EQ(run(dev.view, in.device.data(), in.ldx, batch, out.y.data(), out.ldy, nullptr), cudaSuccess)
                << at;
            const auto y = out.result(at);
            ASSERT_LE(relative_error(y, ref, mag), kTolHalfOperandsF32Acc)
                << at << ": " << first_bad(y, ref, mag, kTolHalfOperandsF32Acc)
                << " (a wrong metadata layout gives errors of order 1)";
          }
}

TEST_F(Cuda, CheckMacroNamesCallFileAndMessage) {
  try {
    SPARSERT_CUDA_CHECK(cudaSetDevice(-1));
    FAIL() << "cudaSetDevice(-1) passed";
  } catch (const cuda::CudaError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.code(), cudaErrorInvalidDevice) << what;
    EXPECT_NE(what.find("cuda call cudaSetDevice(-1) at test_spmm_cuda.cpp:"), std::string::npos) << what;
    EXPECT_NE(what.find(cudaGetErrorName(e.code())), std::string::npos) << what;
  }
  cudaGetLastError();
}

// The macro itself needs no device: any expression of type cudaError_t goes through it.
TEST(CudaCheck, ThrowsNamingCallFileLineAndMessage) {
  const int line = __LINE__ + 2;
  try {
    SPARSERT_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL() << "cudaErrorInvalidValue passed the check";
  } catch (const cuda::CudaError& e) {
    EXPECT_EQ(e.code(), cudaErrorInvalidValue);
    EXPECT_EQ(std::string(e.what()), "cuda call cudaErrorInvalidValue at test_spmm_cuda.cpp:" + std::to_string(line) +
                                         ": " + cudaGetErrorString(cudaErrorInvalidValue) + " (cudaErrorInvalidValue)");
  }
  EXPECT_NO_THROW(SPARSERT_CUDA_CHECK(cudaSuccess));
}

}  // namespace
}  // namespace sparsert::test
