// sparsert-bench: what a model file costs on a device: file size, load time, first-run latency,
// steady-state p50/p90/p99 latency and peak resident memory, at one or more thread counts, and the
// same for the dense version of the model with the ratios pruned/dense. Public C++ API only.
//
//   sparsert-bench model.sprt [--dense dense.sprt] [--threads 1,2] [--batch N] [--runs N | --seconds S]
//                  [--repeat N] [--seed N] [--json]
//
// One process per measurement: peak RSS only ever grows within a process, and a second load of the
// same file would find the allocator's free lists and the first load's pages, so every (model,
// thread count) pair is measured in a child forked from this driver, which itself never loads a
// model (its resident set at the fork, a few MiB, is the child's baseline and is reported). fork()
// rather than spawning the binary again: no path to this executable is needed, and it works the same
// under qemu-user (CI's aarch64 check), where a spawned aarch64 binary would need binfmt_misc. The
// child hands back a fixed-size record through a pipe. --repeat N runs N children per pair, pruned and
// dense alternating, and reports medians (load time and first run are one sample per process).
//
// In each child: load (wall time of Model::load), build inputs, one first run (wall time: planning
// for this batch, first touch of buffers), 2 untimed warm-up runs, then the steady-state runs, each
// timed alone (std::chrono::steady_clock): exactly --runs N, or as many as fill --seconds S (default
// 2 s, at least 10 and at most 100000 runs). Percentiles interpolate linearly between the closest
// ranks (as numpy and Python's statistics.quantiles(method="inclusive")). Peak RSS is
// getrusage(RUSAGE_SELF).ru_maxrss, taken after the first and after the last run; on Linux VmHWM of
// /proc/self/status too (the same figure, read from the kernel's per-process high-water mark).
//
// Inputs: fresh random data, the same for every process (std::mt19937_64 seeded by --seed, default
// 0): f32 standard normal; i64 uniform in [0, 2) (ids valid for any embedding table of two or more
// rows; a model file states no id limits); bool 0 or 1. Every input whose dim 0 is -1 gets --batch
// (default 1) there. Outputs are checked for NaN and infinity after the first and the last run.
//
// Exit status: 0 when every measurement succeeded and every output was finite; 1 when a model failed
// to load or run or produced a non-finite output; 2 for a bad command line.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <sparsert/sparsert.hpp>

namespace {

constexpr int kWarmupRuns = 2;
constexpr int kMinTimedRuns = 10;  // with --seconds: enough for a p90, and a p99 that is at least a maximum
// At most this many timed runs (--runs, or --seconds' cap): the samples (8 bytes each) live in this
// process and count in its peak RSS, at most 0.8 MiB so (a 1 µs model reaches the cap in 0.1 s).
constexpr int kMaxTimedRuns = 100000;
constexpr double kMiB = 1024.0 * 1024.0;

struct Options {
  std::string model;
  std::string dense;
  std::vector<int> threads;
  int64_t batch = 1;
  int runs = 0;          // > 0: exactly this many steady-state runs
  double seconds = 2.0;  // else: runs for this long (at least kMinTimedRuns)
  uint64_t seed = 0;
  int repeat = 1;  // processes per (model, thread count); figures are medians over them
  bool json = false;
};

// What one child reports: plain data, written whole through a pipe to the parent (the same binary).
struct Measurement {
  int ok = 0;
  double load_s = 0, first_run_s = 0, p50_s = 0, p90_s = 0, p99_s = 0, mean_s = 0, min_s = 0;
  int64_t runs = 0;
  double baseline_rss_mib = 0;    // VmRSS before loading (Linux), else 0
  double rss_after_load_mib = 0;  // VmRSS after Model::load (Linux), else 0
  double peak_rss_mib = 0;        // getrusage ru_maxrss after the last run
  double peak_rss_first_run_mib = 0;  // the same after the first run (steady-state runs should add nothing)
  double vmhwm_mib = -1;          // VmHWM (Linux), else -1
  int64_t output_values = 0;
  int64_t nonfinite_outputs = 0;
  char error[1024] = {0};
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr,
               "sparsert-bench: %s\n"
               "usage: sparsert-bench model.sprt [--dense dense.sprt] [--threads 1,2] [--batch N] "
               "[--runs N | --seconds S] [--repeat N] [--seed N] [--json]\n",
               message.c_str());
  std::exit(2);
}

long long parse_integer(const std::string& text, const std::string& option, long long lowest, long long highest) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lowest || v > highest) {
    usage_error(option + " is '" + text + "' (expected an integer from " + std::to_string(lowest) + " to " +
                std::to_string(highest) + ")");
  }
  return v;
}

std::vector<int> parse_threads(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 1024) {
      usage_error("--threads is '" + text + "' (expected a comma-separated list of thread counts from 1 to 1024, e.g. 1,2)");
    }
    if (std::find(out.begin(), out.end(), static_cast<int>(v)) == out.end()) out.push_back(static_cast<int>(v));
    start = comma + 1;
  }
  return out;
}

Options parse_args(int argc, char** argv) {
  Options o;
  std::string threads;
  bool seconds_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--dense") {
      o.dense = value();
    } else if (a == "--threads") {
      threads = value();
    } else if (a == "--batch") {
      o.batch = parse_integer(value(), a, 1, int64_t{1} << 40);
    } else if (a == "--runs") {
      o.runs = static_cast<int>(parse_integer(value(), a, 1, kMaxTimedRuns));
    } else if (a == "--seconds") {
      const std::string v = value();
      char* end = nullptr;
      o.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !(o.seconds > 0) || !std::isfinite(o.seconds)) {
        usage_error("--seconds is '" + v + "' (expected a positive number of seconds)");
      }
      seconds_given = true;
    } else if (a == "--repeat") {
      o.repeat = static_cast<int>(parse_integer(value(), a, 1, 100));
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(parse_integer(value(), a, 0, std::numeric_limits<long long>::max()));
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "-h" || a == "--help") {
      std::printf(
          "usage: sparsert-bench model.sprt [--dense dense.sprt] [--threads 1,2] [--batch N] [--runs N | --seconds S] "
          "[--repeat N] [--seed N] [--json]\n"
          "Reports file size, load time, first-run latency, steady-state p50/p90/p99 and peak RSS per thread count,\n"
          "each measured in a fresh process; with --dense also for the dense model and the ratios pruned/dense.\n"
          "  --threads   thread counts (default 1 and the physical cores)\n"
          "  --batch     dim 0 of the inputs that declare a free batch (default 1)\n"
          "  --runs      exactly N timed steady-state runs (at most %d)\n"
          "  --seconds   timed steady-state runs for S seconds, at least %d and at most %d (default 2)\n"
          "  --repeat    N processes per model and thread count, each figure the median over them (peak RSS:\n"
          "              the largest; runs: the sum) (default 1)\n"
          "  --seed      seed of the random inputs (default 0)\n"
          "  --json      one JSON object instead of the table\n",
          kMaxTimedRuns, kMinTimedRuns, kMaxTimedRuns);
      std::exit(0);
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (o.model.empty()) {
      o.model = a;
    } else {
      usage_error("a second model path '" + a + "' (expected one, and the dense one after --dense)");
    }
  }
  if (o.model.empty()) usage_error("no model file given");
  if (o.runs > 0 && seconds_given) usage_error("--runs and --seconds both given (expected one of them)");
  if (threads.empty()) {
    o.threads = {1};
    const int cores = sparsert::physical_core_count();  // reads sysfs only; starts no thread
    if (cores > 1) o.threads.push_back(cores);
  } else {
    o.threads = parse_threads(threads);
  }
  return o;
}

// A field of /proc/self/status in MiB ("VmRSS", "VmHWM"), or -1 where there is none.
double proc_status_mib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0) return std::strtod(line.c_str() + key.size(), nullptr) / 1024.0;  // kB
  }
  return -1;
}

double max_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
#ifdef __APPLE__
  return static_cast<double>(usage.ru_maxrss) / kMiB;  // bytes on macOS
#else
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux and the BSDs
#endif
}

// Linear interpolation between the closest ranks of sorted `v` (numpy's default, R's type 7).
double quantile(const std::vector<double>& v, double q) {
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

struct Inputs {
  std::vector<std::vector<unsigned char>> storage;
  std::vector<sparsert::TensorView> views;
};

Inputs make_inputs(const sparsert::Graph& graph, int64_t batch, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> bit(0, 1);
  Inputs in;
  for (int index : graph.inputs()) {
    const sparsert::ValueDef& v = graph.values()[static_cast<size_t>(index)];
    sparsert::Shape shape = v.shape;
    if (!shape.empty() && shape[0] == -1) shape[0] = batch;
    const int64_t n = sparsert::numel(shape);
    std::vector<unsigned char> bytes(static_cast<size_t>(n * sparsert::dtype_size(v.dtype)));
    for (int64_t i = 0; i < n; ++i) {
      switch (v.dtype) {
        case sparsert::DType::kF32: reinterpret_cast<float*>(bytes.data())[i] = normal(rng); break;
        case sparsert::DType::kI64: reinterpret_cast<int64_t*>(bytes.data())[i] = bit(rng); break;
        case sparsert::DType::kBool: bytes[static_cast<size_t>(i)] = static_cast<unsigned char>(bit(rng)); break;
      }
    }
    in.storage.push_back(std::move(bytes));
    in.views.push_back({v.dtype, shape, nullptr});
  }
  for (size_t i = 0; i < in.views.size(); ++i) in.views[i].data = in.storage[i].data();  // storage no longer moves
  return in;
}

// Non-finite f32 values among `outputs` (i64 and bool outputs are always finite).
int64_t count_nonfinite(const std::vector<sparsert::Tensor>& outputs, int64_t* values) {
  int64_t bad = 0;
  *values = 0;
  for (const sparsert::Tensor& t : outputs) {
    *values += t.numel();
    if (t.dtype() != sparsert::DType::kF32) continue;
    const float* p = t.data_as<float>();
    for (int64_t i = 0; i < t.numel(); ++i) bad += std::isfinite(p[i]) ? 0 : 1;
  }
  return bad;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The whole measurement of one model at one thread count; runs in a fresh child process.
Measurement measure(const std::string& path, int threads, const Options& o) {
  Measurement m;
  std::vector<double> seconds;  // reserved before the baseline: only the pages it fills count
  seconds.reserve(static_cast<size_t>(o.runs > 0 ? o.runs : kMaxTimedRuns));
  m.baseline_rss_mib = proc_status_mib("VmRSS");
  sparsert::ModelOptions options;
  options.num_threads = threads;
  auto start = Clock::now();
  const sparsert::Model model = sparsert::Model::load(path, options);
  m.load_s = since(start);
  m.rss_after_load_mib = proc_status_mib("VmRSS");

  const Inputs inputs = make_inputs(model.graph(), o.batch, o.seed);
  start = Clock::now();
  std::vector<sparsert::Tensor> outputs = model.run(inputs.views);
  m.first_run_s = since(start);
  m.peak_rss_first_run_mib = max_rss_mib();
  int64_t values = 0;
  m.nonfinite_outputs = count_nonfinite(outputs, &values);

  for (int i = 0; i < kWarmupRuns; ++i) outputs = model.run(inputs.views);
  const auto steady = Clock::now();
  while (o.runs > 0 ? static_cast<int>(seconds.size()) < o.runs
                    : static_cast<int>(seconds.size()) < kMaxTimedRuns &&
                          (since(steady) < o.seconds || static_cast<int>(seconds.size()) < kMinTimedRuns)) {
    start = Clock::now();
    outputs = model.run(inputs.views);
    seconds.push_back(since(start));
  }
  m.nonfinite_outputs += count_nonfinite(outputs, &values);
  m.output_values = values;
  m.peak_rss_mib = max_rss_mib();
  m.vmhwm_mib = proc_status_mib("VmHWM");

  m.runs = static_cast<int64_t>(seconds.size());
  double sum = 0;
  for (double s : seconds) sum += s;
  m.mean_s = sum / static_cast<double>(seconds.size());
  std::sort(seconds.begin(), seconds.end());
  m.min_s = seconds.front();
  m.p50_s = quantile(seconds, 0.50);
  m.p90_s = quantile(seconds, 0.90);
  m.p99_s = quantile(seconds, 0.99);
  m.ok = 1;
  return m;
}

void copy_error(Measurement& m, const std::string& text) {
  std::snprintf(m.error, sizeof(m.error), "%s", text.c_str());
}

// Forks a child that measures `path` at `threads` and returns its record; an error record when the
// child fails, dies or hands back a short record.
Measurement measure_in_child(const std::string& path, int threads, const Options& o) {
  Measurement m;
  int fds[2];
  if (pipe(fds) != 0) {
    copy_error(m, std::string("creating a pipe: ") + std::strerror(errno));
    return m;
  }
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = fork();
  if (pid < 0) {
    copy_error(m, std::string("forking the measurement process: ") + std::strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return m;
  }
  if (pid == 0) {
    close(fds[0]);
    Measurement r;
    try {
      r = measure(path, threads, o);
    } catch (const std::exception& e) {
      copy_error(r, e.what());
    }
    const char* p = reinterpret_cast<const char*>(&r);
    size_t left = sizeof(r);
    while (left > 0) {
      const ssize_t n = write(fds[1], p, left);
      if (n <= 0) _exit(3);
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(r.ok ? 0 : 1);  // no atexit handlers, no second flush of the parent's buffers
  }
  close(fds[1]);
  char* p = reinterpret_cast<char*>(&m);
  size_t got = 0;
  while (got < sizeof(m)) {
    const ssize_t n = read(fds[0], p + got, sizeof(m) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got != sizeof(m)) {
    m = Measurement();
    if (WIFSIGNALED(status)) {
      copy_error(m, "the measurement process died of signal " + std::to_string(WTERMSIG(status)) + " (" +
                        strsignal(WTERMSIG(status)) + ")");
    } else {
      copy_error(m, "the measurement process exited with status " + std::to_string(WEXITSTATUS(status)) +
                        " before reporting");
    }
  }
  m.error[sizeof(m.error) - 1] = '\0';
  return m;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return quantile(v, 0.5);
}

// --repeat N: the records of N fresh processes in one; times are medians over them, peak RSS the
// largest, runs and non-finite outputs summed. The first failure is the result.
Measurement combine(const std::vector<Measurement>& all) {
  for (const Measurement& x : all) {
    if (!x.ok) return x;
  }
  if (all.size() == 1) return all[0];
  Measurement m = all[0];
  auto med = [&](double Measurement::*field) {
    std::vector<double> v;
    for (const Measurement& x : all) v.push_back(x.*field);
    return median(v);
  };
  for (double Measurement::*f : {&Measurement::load_s, &Measurement::first_run_s, &Measurement::p50_s, &Measurement::p90_s,
                                 &Measurement::p99_s, &Measurement::mean_s, &Measurement::min_s,
                                 &Measurement::baseline_rss_mib, &Measurement::rss_after_load_mib}) {
    m.*f = med(f);
  }
  m.runs = 0;
  m.nonfinite_outputs = 0;
  for (const Measurement& x : all) {
    m.runs += x.runs;
    m.nonfinite_outputs += x.nonfinite_outputs;
    m.peak_rss_mib = std::max(m.peak_rss_mib, x.peak_rss_mib);
    m.peak_rss_first_run_mib = std::max(m.peak_rss_first_run_mib, x.peak_rss_first_run_mib);
    m.vmhwm_mib = std::max(m.vmhwm_mib, x.vmhwm_mib);
  }
  return m;
}

struct ModelRun {
  std::string role;  // "pruned" or "dense" (the first model is "model" without --dense)
  std::string path;
  int64_t file_bytes = 0;
  std::vector<Measurement> per_threads;  // one per Options::threads entry
};

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 10, "model name") == 0 || line.compare(0, 9, "Processor") == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = colon + 1;
        while (b < line.size() && line[b] == ' ') ++b;
        return line.substr(b);
      }
    }
  }
  return "unknown";
}

std::string machine_name() {
  utsname u{};
  return uname(&u) == 0 ? std::string(u.machine) : std::string("unknown");
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string num(double v, int digits = 6) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*g", digits, v);
  return buf;
}

double ratio(double a, double b) { return b > 0 ? a / b : NAN; }

// The ratios pruned/dense at one thread count, in the order of kRatioNames.
const char* const kRatioNames[] = {"file_size", "load", "first_run", "p50", "p90", "p99", "peak_rss"};
std::vector<double> ratios(const ModelRun& pruned, const ModelRun& dense, size_t t) {
  const Measurement& a = pruned.per_threads[t];
  const Measurement& b = dense.per_threads[t];
  return {ratio(static_cast<double>(pruned.file_bytes), static_cast<double>(dense.file_bytes)),
          ratio(a.load_s, b.load_s), ratio(a.first_run_s, b.first_run_s), ratio(a.p50_s, b.p50_s),
          ratio(a.p90_s, b.p90_s), ratio(a.p99_s, b.p99_s), ratio(a.peak_rss_mib, b.peak_rss_mib)};
}

std::string steady_rule(const Options& o) {
  if (o.runs > 0) return std::to_string(o.runs) + " runs";
  return num(o.seconds) + " s, at least " + std::to_string(kMinTimedRuns) + " runs";
}

void print_json(const Options& o, const std::vector<ModelRun>& models) {
  std::printf("{\"program\": \"sparsert-bench\", \"machine\": %s, \"cpu\": %s, \"isas\": %s, \"physical_cores\": %d, "
              "\"batch\": %lld, \"seed\": %llu, \"steady_state\": %s, \"warmup_runs\": %d, \"repeat\": %d, \"threads\": [",
              json_string(machine_name()).c_str(), json_string(cpu_name()).c_str(),
              json_string(sparsert::available_isas()).c_str(), sparsert::physical_core_count(),
              static_cast<long long>(o.batch), static_cast<unsigned long long>(o.seed), json_string(steady_rule(o)).c_str(),
              kWarmupRuns, o.repeat);
  for (size_t t = 0; t < o.threads.size(); ++t) std::printf("%s%d", t ? ", " : "", o.threads[t]);
  std::printf("],\n \"models\": [");
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelRun& r = models[i];
    std::printf("%s\n  {\"role\": %s, \"path\": %s, \"file_bytes\": %lld, \"file_mib\": %s, \"results\": [", i ? "," : "",
                json_string(r.role).c_str(), json_string(r.path).c_str(), static_cast<long long>(r.file_bytes),
                num(static_cast<double>(r.file_bytes) / kMiB).c_str());
    for (size_t t = 0; t < r.per_threads.size(); ++t) {
      const Measurement& m = r.per_threads[t];
      std::printf("%s\n    {\"threads\": %d, \"ok\": %s", t ? "," : "", o.threads[t], m.ok ? "true" : "false");
      if (m.ok) {
        std::printf(", \"load_ms\": %s, \"first_run_ms\": %s, \"p50_ms\": %s, \"p90_ms\": %s, \"p99_ms\": %s, "
                    "\"mean_ms\": %s, \"min_ms\": %s, \"runs\": %lld, \"peak_rss_mib\": %s, \"peak_rss_first_run_mib\": %s, "
                    "\"vmhwm_mib\": %s, "
                    "\"baseline_rss_mib\": %s, \"rss_after_load_mib\": %s, \"output_values\": %lld, "
                    "\"nonfinite_outputs\": %lld",
                    num(m.load_s * 1e3).c_str(), num(m.first_run_s * 1e3).c_str(), num(m.p50_s * 1e3).c_str(),
                    num(m.p90_s * 1e3).c_str(), num(m.p99_s * 1e3).c_str(), num(m.mean_s * 1e3).c_str(),
                    num(m.min_s * 1e3).c_str(), static_cast<long long>(m.runs), num(m.peak_rss_mib).c_str(),
                    num(m.peak_rss_first_run_mib).c_str(),
                    m.vmhwm_mib < 0 ? "null" : num(m.vmhwm_mib).c_str(),
                    m.baseline_rss_mib < 0 ? "null" : num(m.baseline_rss_mib).c_str(),
                    m.rss_after_load_mib < 0 ? "null" : num(m.rss_after_load_mib).c_str(),
                    static_cast<long long>(m.output_values), static_cast<long long>(m.nonfinite_outputs));
      } else {
        std::printf(", \"error\": %s", json_string(m.error).c_str());
      }
      std::printf("}");
    }
    std::printf("]}");
  }
  std::printf("]");
  if (models.size() == 2) {
    std::printf(",\n \"ratios\": [");
    for (size_t t = 0; t < o.threads.size(); ++t) {
      const std::vector<double> r = ratios(models[0], models[1], t);
      std::printf("%s\n  {\"threads\": %d", t ? "," : "", o.threads[t]);
      for (size_t k = 0; k < r.size(); ++k) std::printf(", \"%s\": %s", kRatioNames[k], num(r[k], 4).c_str());
      std::printf("}");
    }
    std::printf("]");
  }
  std::printf("}\n");
}

void print_table(const Options& o, const std::vector<ModelRun>& models) {
  std::printf("sparsert-bench: batch %lld; %s (%s), ISAs %s, %d physical cores; steady state: %s after the first "
              "run and %d warm-up runs; %d process(es) per model and thread count%s\n",
              static_cast<long long>(o.batch), cpu_name().c_str(), machine_name().c_str(),
              sparsert::available_isas().c_str(), sparsert::physical_core_count(), steady_rule(o).c_str(), kWarmupRuns,
              o.repeat, o.repeat > 1 ? " (medians; peak RSS the largest)" : "");
  for (const ModelRun& r : models) {
    std::printf("%-6s %s: %.3f MiB (%lld bytes)\n", r.role.c_str(), r.path.c_str(),
                static_cast<double>(r.file_bytes) / kMiB, static_cast<long long>(r.file_bytes));
  }
  std::printf("\n%-13s %7s %9s %9s %10s %9s %9s %9s %13s %6s\n", "model", "threads", "file MiB", "load ms", "first ms",
              "p50 ms", "p90 ms", "p99 ms", "peak RSS MiB", "runs");
  for (size_t t = 0; t < o.threads.size(); ++t) {
    for (const ModelRun& r : models) {
      const Measurement& m = r.per_threads[t];
      if (!m.ok) {
        std::printf("%-13s %7d  error: %s\n", r.role.c_str(), o.threads[t], m.error);
        continue;
      }
      std::printf("%-13s %7d %9.3f %9.3f %10.3f %9.3f %9.3f %9.3f %13.1f %6lld\n", r.role.c_str(), o.threads[t],
                  static_cast<double>(r.file_bytes) / kMiB, m.load_s * 1e3, m.first_run_s * 1e3, m.p50_s * 1e3,
                  m.p90_s * 1e3, m.p99_s * 1e3, m.peak_rss_mib, static_cast<long long>(m.runs));
    }
    if (models.size() == 2 && models[0].per_threads[t].ok && models[1].per_threads[t].ok) {
      const std::vector<double> q = ratios(models[0], models[1], t);
      std::printf("%-13s %7d %9.3f %9.3f %10.3f %9.3f %9.3f %9.3f %13.3f\n", "pruned/dense", o.threads[t], q[0], q[1],
                  q[2], q[3], q[4], q[5], q[6]);
    }
  }
  for (const ModelRun& r : models) {
    for (size_t t = 0; t < o.threads.size(); ++t) {
      const Measurement& m = r.per_threads[t];
      if (m.ok) {
        std::printf("%s, %d thread(s): baseline RSS %.1f MiB, after load %.1f MiB, VmHWM %.1f MiB; %lld output values, "
                    "%lld not finite\n",
                    r.role.c_str(), o.threads[t], m.baseline_rss_mib, m.rss_after_load_mib, m.vmhwm_mib,
                    static_cast<long long>(m.output_values), static_cast<long long>(m.nonfinite_outputs));
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_args(argc, argv);
  std::vector<ModelRun> models;
  models.push_back({o.dense.empty() ? "model" : "pruned", o.model, 0, {}});
  if (!o.dense.empty()) models.push_back({"dense", o.dense, 0, {}});
  for (ModelRun& r : models) {
    struct stat st {};
    const bool found = stat(r.path.c_str(), &st) == 0;
    if (!found || !S_ISREG(st.st_mode)) {
      std::fprintf(stderr, "sparsert-bench: loading '%s': %s (expected a .sprt model file)\n", r.path.c_str(),
                   found ? "not a regular file" : std::strerror(errno));
      return 1;
    }
    r.file_bytes = static_cast<int64_t>(st.st_size);
  }
  // Thread count outermost, pruned and dense alternating at each: drift of the host hits both alike.
  for (size_t t = 0; t < o.threads.size(); ++t) {
    std::vector<std::vector<Measurement>> runs(models.size());
    for (int i = 0; i < o.repeat; ++i) {  // pruned, dense, pruned, dense, ...
      for (size_t k = 0; k < models.size(); ++k) runs[k].push_back(measure_in_child(models[k].path, o.threads[t], o));
    }
    for (size_t k = 0; k < models.size(); ++k) models[k].per_threads.push_back(combine(runs[k]));
  }
  if (o.json) {
    print_json(o, models);
  } else {
    print_table(o, models);
  }
  int status = 0;
  for (const ModelRun& r : models) {
    for (size_t t = 0; t < o.threads.size(); ++t) {
      const Measurement& m = r.per_threads[t];
      if (!m.ok) {
        std::fprintf(stderr, "sparsert-bench: %s at %d thread(s): %s\n", r.path.c_str(), o.threads[t], m.error);
        status = 1;
      } else if (m.nonfinite_outputs > 0) {
        std::fprintf(stderr, "sparsert-bench: %s at %d thread(s): %lld of %lld output values are NaN or infinite\n",
                     r.path.c_str(), o.threads[t], static_cast<long long>(m.nonfinite_outputs),
                     static_cast<long long>(m.output_values));
        status = 1;
      }
    }
  }
  return status;
}
