#!/usr/bin/env bash
# Runs the C++ tests of an x86-64 build under qemu-user emulating a Haswell: AVX2 and FMA, no AVX-512
# (qemu has none, so an AVX-512 instruction stops the test with SIGILL). An AVX-512 host's own CTest
# run cannot see it when code compiled for AVX-512 runs before the CPU check: on an AVX2-only AMD host
# every model run crashed so, while CI passed on the Intel hosts. Here the CPU check answers no, so the
# AVX2 and scalar paths run, and nothing else may.
# Left out, for time under emulation (~10x slower): the kernel sweep and the two largest convolution
# oracle tests; the native CTest run covers them.
# Needs qemu-user (Debian); exits 0 with "skipped: ..." without it or on a non-x86 host.
# Usage, from the repository root: bash .ci/x86_without_avx512.sh [build dir, default build/ci]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/ci}
if [ "$(uname -m)" != x86_64 ] || ! command -v qemu-x86_64 >/dev/null 2>&1; then
  echo "x86 without AVX-512: skipped (needs an x86-64 host and qemu-x86_64 from qemu-user)"
  exit 0
fi
start=$SECONDS
# Runs one test program under the emulated Haswell; on failure shows its log's end and stops CI.
run_as_haswell() {
  local name=$1; shift
  local log="$build/$name.haswell.log"
  qemu-x86_64 -cpu Haswell "$build/tests/cpp/$name" "$@" >"$log" 2>&1 ||
    { tail -n 40 "$log"; echo "x86 without AVX-512: $name failed under qemu -cpu Haswell"; exit 1; }
}
skip="*KernelSweep*:Conv2d.MatchesOracle:ConvKernels.GemmMatchesOracle"
# Every GoogleTest program, found as tests/cpp/CMakeLists.txt finds them (one per tests/cpp/test_*.cpp).
for source in tests/cpp/test_*.cpp; do
  run_as_haswell "$(basename "$source" .cpp)" --gtest_brief=1 --gtest_filter="-$skip"
done
run_as_haswell test_c_api
run_as_haswell fuzz_corpus_replay tests/fuzz/corpus
echo "x86 without AVX-512 (qemu -cpu Haswell): C++ tests passed in $((SECONDS - start)) s"
