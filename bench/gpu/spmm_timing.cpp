// Times the CUDA kernels against the dense fp32 baseline: tiled CSR (both variants) at several
// densities and the 2:4 mma.sp kernel, per weight shape and batch M, and prints one table.
// Method (/work/.library/device/METHOD.md's): each launch timed alone with CUDA events after a
// 256 MB memset has evicted the L2 (a layer's weights are not cache-resident in a real model), after
// 3 warm-up launches; the median of --reps. Each sparse result is checked against the dense kernel on
// the same (masked) weight, and the error printed. Usage:
//   spmm_cuda_timing [--shapes 4096x4096,11008x4096] [--batches 1,16,64,256]
//                    [--densities 0.5,0.3,0.1,0.05] [--reps 30] [--csv FILE]
// A shape is rows x cols of W (out × in features; y = x·Wᵀ, x is M × cols).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/device_array.hpp"

using namespace sparsert;
using namespace sparsert::cuda;

namespace {

struct Options {
  std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {11008, 4096}};
  std::vector<int64_t> batches = {1, 16, 64, 256};
  std::vector<double> densities = {0.5, 0.3, 0.1, 0.05};
  int reps = 30;
  std::string csv;
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t next = s.find(sep, at);
    out.push_back(s.substr(at, next == std::string::npos ? std::string::npos : next - at));
    if (next == std::string::npos) break;
    at = next + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "--shapes") {
      o.shapes.clear();
      for (const auto& s : split(v, ',')) {
        const auto rc = split(s, 'x');
        if (rc.size() != 2) {
          std::fprintf(stderr, "spmm_cuda_timing: shape '%s' is not ROWSxCOLS\n", s.c_str());
          std::exit(2);
        }
        o.shapes.push_back({std::stoll(rc[0]), std::stoll(rc[1])});
      }
    } else if (a == "--batches") {
      o.batches.clear();
      for (const auto& s : split(v, ',')) o.batches.push_back(std::stoll(s));
    } else if (a == "--densities") {
      o.densities.clear();
      for (const auto& s : split(v, ',')) o.densities.push_back(std::stod(s));
    } else if (a == "--reps") {
      o.reps = std::max(1, std::atoi(v.c_str()));
    } else if (a == "--csv") {
      o.csv = v;
    } else {
      std::fprintf(stderr, "spmm_cuda_timing: unknown option '%s' (expected --shapes, --batches, --densities, "
                           "--reps or --csv)\n", a.c_str());
      std::exit(2);
    }
    ++i;
  }
  return o;
}

// xorshift64*: fast enough for 45M-element weights, fixed seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }  // [0, 1)
};

class Timer {
 public:
  explicit Timer(int reps) : reps_(reps), flush_(size_t{256} << 20) {
    start_.resize(reps);
    stop_.resize(reps);
    for (int i = 0; i < reps; ++i) {
      SPARSERT_CUDA_CHECK(cudaEventCreate(&start_[i]));
      SPARSERT_CUDA_CHECK(cudaEventCreate(&stop_[i]));
    }
  }
  ~Timer() {
    for (int i = 0; i < reps_; ++i) {
      cudaEventDestroy(start_[i]);
      cudaEventDestroy(stop_[i]);
    }
  }
  // Median microseconds of `launch` (which returns the entry point's cudaError_t), L2 flushed before each.
  template <class F>
  double median_us(F launch) {
    for (int i = 0; i < 3; ++i) SPARSERT_CUDA_CHECK(launch());
    SPARSERT_CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < reps_; ++i) {
      SPARSERT_CUDA_CHECK(cudaMemsetAsync(flush_.data(), i & 0xff, flush_.bytes(), nullptr));
      SPARSERT_CUDA_CHECK(cudaEventRecord(start_[i], nullptr));
      SPARSERT_CUDA_CHECK(launch());
      SPARSERT_CUDA_CHECK(cudaEventRecord(stop_[i], nullptr));
    }
    SPARSERT_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<float> ms(reps_);
    for (int i = 0; i < reps_; ++i) SPARSERT_CUDA_CHECK(cudaEventElapsedTime(&ms[i], start_[i], stop_[i]));
    std::sort(ms.begin(), ms.end());
    return 1000.0 * ms[reps_ / 2];
  }

 private:
  int reps_;
  DeviceArray<unsigned char> flush_;
  std::vector<cudaEvent_t> start_, stop_;
};

// ‖a − b‖ / ‖b‖ over two device outputs of the same size.
double rel_diff(const DeviceArray<float>& a, const DeviceArray<float>& b) {
  const auto ha = a.download(), hb = b.download();
  double num = 0, den = 0;
  for (size_t i = 0; i < ha.size(); ++i) {
    const double d = double(ha[i]) - double(hb[i]);
    num += d * d;
    den += double(hb[i]) * double(hb[i]);
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

struct Row {
  std::string shape, kernel;
  int64_t batch;
  double density, us, dense_us, gbs, gflops, err;
  std::string note;
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::string why;
  if (device_count(&why) == 0) {
    std::fprintf(stderr, "spmm_cuda_timing: no CUDA device (%s)\n", why.c_str());
    return 1;
  }
  cudaDeviceProp prop;
  SPARSERT_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, sm_%d%d, %d SMs, L2 %d MB, %.0f GB memory\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, prop.totalGlobalMem / 1e9);

  Timer timer(opt.reps);
  std::vector<Row> rows_out;
  for (const auto& [rows, cols] : opt.shapes) {
    const std::string shape = std::to_string(rows) + "x" + std::to_string(cols);
    std::fprintf(stderr, "shape %s: generating weights\n", shape.c_str());
    Rng rng(static_cast<uint64_t>(rows * 131 + cols));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    for (auto& v : w) v = 2.0f * rng.uniform() - 1.0f;
    int64_t max_batch = *std::max_element(opt.batches.begin(), opt.batches.end());
    std::vector<float> x(static_cast<size_t>(max_batch * cols));
    for (auto& v : x) v = 2.0f * rng.uniform() - 1.0f;
    const DeviceArray<float> xd(x);
    DeviceArray<float> wd(w.size());
    DeviceArray<float> y_dense(static_cast<size_t>(max_batch * rows)), y(static_cast<size_t>(max_batch * rows));

    // Dense: one time per batch (its time does not depend on the values).
    wd.upload(w.data(), w.size());
    std::vector<double> dense_us(opt.batches.size());
    for (size_t i = 0; i < opt.batches.size(); ++i) {
      const int64_t m = opt.batches[i];
      dense_us[i] = timer.median_us([&] {
        return spmm_dense_f32_sm80(wd.data(), rows, cols, cols, xd.data(), cols, m, y_dense.data(), rows, nullptr);
      });
      const double flops = 2.0 * m * rows * cols, bytes = 4.0 * (rows * cols + m * cols + m * rows);
      rows_out.push_back({shape, "dense f32", m, 1.0, dense_us[i], dense_us[i], bytes / dense_us[i] / 1e3,
                          flops / dense_us[i] / 1e3, 0.0, ""});
    }

    for (double density : opt.densities) {
      std::vector<float> masked(w.size());
      Rng mask(static_cast<uint64_t>(density * 1e6) + 17);
      for (size_t i = 0; i < w.size(); ++i) masked[i] = mask.uniform() < density ? w[i] : 0.0f;
      const TcsrMatrix host = tcsr_pack(masked.data(), rows, cols);
      const auto dev = upload(host);
      wd.upload(masked.data(), masked.size());
      for (size_t i = 0; i < opt.batches.size(); ++i) {
        const int64_t m = opt.batches[i];
        SPARSERT_CUDA_CHECK(
            spmm_dense_f32_sm80(wd.data(), rows, cols, cols, xd.data(), cols, m, y_dense.data(), rows, nullptr));
        DeviceArray<unsigned char> ws(std::max(spmm_tcsr_f32_sm80_workspace_bytes(cols, m, TcsrVariant::kLanesPerBatch),
                                               spmm_tcsr_f32_sm80_workspace_bytes(cols, m)));
        for (TcsrVariant v : {TcsrVariant::kWarpPerRow, TcsrVariant::kLanesPerBatch}) {
          if (v == TcsrVariant::kWarpPerRow && m > 32) continue;
          const double us = timer.median_us([&] {
            return spmm_tcsr_f32_sm80(dev.view, xd.data(), cols, m, y.data(), rows, ws.data(), ws.size(), nullptr,
                                      v);
          });
          const double err = rel_diff(y, y_dense);
          const double bytes = 6.0 * host.entries() + 4.0 * host.seg_ptr.size() + 4.0 * (m * cols + m * rows);
          const bool chosen = (v == TcsrVariant::kWarpPerRow) == (m <= 32);  // what kAuto picks
          rows_out.push_back({shape, std::string("tcsr f32 ") + to_string(v), m, density, us, dense_us[i],
                              bytes / us / 1e3, 2.0 * m * host.nnz / us / 1e3, err, chosen ? "auto" : ""});
        }
      }
    }

    // 2:4 at 50%: two random positions of every group of 4, f16 operands.
    {
      std::vector<float> w24(w.size(), 0.0f);
      Rng pick(99);
      static const int kPairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c0 = 0; c0 < cols; c0 += 4) {
          const int* p = kPairs[pick.next() % 6];
          for (int j = 0; j < 2; ++j)
            if (c0 + p[j] < cols) w24[r * cols + c0 + p[j]] = w[r * cols + c0 + p[j]];
        }
      const Nm24MmaMatrix host = nm24_mma_pack(w24.data(), rows, cols, Half16::kF16);
      std::vector<float> decoded(w24.size());
      nm24_mma_to_dense(host, decoded.data());  // the f16-rounded weight, the dense kernel's reference
      const auto dev = upload(host);
      wd.upload(decoded.data(), decoded.size());
      for (size_t i = 0; i < opt.batches.size(); ++i) {
        const int64_t m = opt.batches[i];
        SPARSERT_CUDA_CHECK(
            spmm_dense_f32_sm80(wd.data(), rows, cols, cols, xd.data(), cols, m, y_dense.data(), rows, nullptr));
        const double us = timer.median_us(
            [&] { return spmm_nm24_f16_sm80(dev.view, xd.data(), cols, m, y.data(), rows, nullptr); });
        const double err = rel_diff(y, y_dense);  // includes x rounded to f16: ~1e-4 expected
        const double bytes = 1.0 * host.nbytes() + 4.0 * (m * cols + m * rows);
        rows_out.push_back({shape, "nm24 f16 mma.sp", m, 0.5, us, dense_us[i], bytes / us / 1e3,
                            2.0 * m * rows * cols / 2 / us / 1e3, err, "x in f16"});
      }
    }
  }

  if (!opt.csv.empty()) {
    if (FILE* f = std::fopen(opt.csv.c_str(), "w")) {
      std::fprintf(f, "shape,kernel,batch,density,us,dense_us,speedup,gbs,useful_gflops,rel_err,note\n");
      for (const Row& r : rows_out)
        std::fprintf(f, "%s,%s,%lld,%.3f,%.2f,%.2f,%.3f,%.1f,%.1f,%.2e,%s\n", r.shape.c_str(), r.kernel.c_str(),
                     static_cast<long long>(r.batch), r.density, r.us, r.dense_us, r.dense_us / r.us, r.gbs,
                     r.gflops, r.err, r.note.c_str());
      std::fclose(f);
    }
  }
  std::printf("\n%-11s %-26s %5s %7s %10s %10s %8s %8s %9s %9s %s\n", "shape", "kernel", "M", "density", "us",
              "dense_us", "x_dense", "GB/s", "GFLOP/s", "rel_err", "note");
  for (const Row& r : rows_out) {
    std::printf("%-11s %-26s %5lld %7.2f %10.1f %10.1f %8.2f %8.0f %9.0f %9.1e %s\n", r.shape.c_str(),
                r.kernel.c_str(), static_cast<long long>(r.batch), r.density, r.us, r.dense_us, r.dense_us / r.us,
                r.gbs, r.gflops, r.err, r.note.c_str());
  }
  std::printf("(us: median of %d launches, L2 flushed before each; GB/s: the fewest bytes the kernel must move; "
              "GFLOP/s: useful (non-zero) work; rel_err: ‖y − y_dense‖/‖y_dense‖ on the same weight)\n",
              opt.reps);
  bool bad = false;
  for (const Row& r : rows_out) bad |= !(r.err <= (r.kernel.rfind("nm24", 0) == 0 ? 1e-2 : 1e-4));
  if (bad) std::printf("MISMATCH: a sparse kernel disagrees with the dense one beyond tolerance (see rel_err)\n");
  return bad ? 1 : 0;
}
