// The core clock as the kernels see it: a chain of dependent integer adds runs one a cycle, so adds
// per second is the clock. /proc/cpuinfo's "cpu MHz" in a VM is the nominal rate (2.45 GHz on the
// bench host, which runs at ~3.2): the cycle figures in bench/NOTES.md name the clock they use.
//
//   build/bench/clock_rate
#include <chrono>
#include <cstdint>
#include <cstdio>

int main() {
  constexpr int64_t kAdds = 1'000'000'000;
  double best = 0.0;
  for (int run = 0; run < 5; ++run) {
    uint64_t v = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < kAdds; ++i) {
      v += 1;
      asm volatile("" : "+r"(v));  // keeps each add, dependent on the one before
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (v != static_cast<uint64_t>(kAdds)) return 1;
    if (kAdds / s > best) best = kAdds / s;
  }
  std::printf("%.2f GHz (dependent adds per second, best of 5)\n", best * 1e-9);
  return 0;
}
