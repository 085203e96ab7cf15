#include "sparsert/linear.hpp"

#include <atomic>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "kernels/registry.hpp"
#include "runtime/run_spmm.hpp"
#include "sparsert/error.hpp"

namespace sparsert {

namespace {

std::atomic<int> g_num_threads{0};  // 0 = physical_core_count()

int count_physical_cores() {
  // Distinct (package, core) pairs over the online CPUs; hyper-threads share a pair.
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(base + "core_id"), package(base + "physical_package_id");
    std::string c, p;
    if (!(core >> c) || !(package >> p)) return logical > 0 ? static_cast<int>(logical) : 1;
    cores.emplace(p, c);
  }
  return cores.empty() ? 1 : static_cast<int>(cores.size());
}

}  // namespace

int physical_core_count() {
  static const int count = count_physical_cores();
  return count;
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 0); }

int get_num_threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : physical_core_count();
}

std::string available_isas() {
  std::string out;
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kNeon, Isa::kRef}) {
    if (!isa_available(isa)) continue;
    if (!out.empty()) out += ' ';
    out += to_string(isa);
  }
  return out;
}

std::string linear_kernel_name(const Weight& w, int64_t batch) { return select_kernel(w, batch).name; }

void linear(const Weight& w, const float* x, int64_t batch, const float* bias, float* y, const LinearOptions& options) {
  if (batch < 0) throw InvalidArgument("linear: batch " + std::to_string(batch) + " is negative (expected ≥ 0)");
  if (x == nullptr && batch * w.cols() > 0) throw InvalidArgument("linear: input pointer is null");
  if (y == nullptr && batch * w.rows() > 0) throw InvalidArgument("linear: output pointer is null");
  if (options.num_threads < 0) {
    throw InvalidArgument("linear: num_threads " + std::to_string(options.num_threads) + " is negative (expected ≥ 0)");
  }
  const int threads = options.num_threads > 0 ? options.num_threads : get_num_threads();
  run_spmm(select_kernel(w, batch), w, x, batch, bias, y, options.activation, threads);
}

}  // namespace sparsert
