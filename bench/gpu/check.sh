#!/usr/bin/env bash
# The CUDA backend's whole check in one call on a GPU machine: configure a CUDA build, build the GPU
# tests and the timing program, run the tests (and memcheck where compute-sanitizer works), time the
# tiled CSR and 2:4 kernels against the dense fp32 kernel, print a short table last.
#
#   bash bench/gpu/check.sh --prepare   # on the machine without a GPU, before the device call (~3 min on 2 cores)
#   bash bench/gpu/check.sh             # on the GPU machine, with build/gpu-deps carried along
#
# --prepare copies GoogleTest (headers and static libraries, which the device image lacks and cannot
# download) into build/gpu-deps/gtest, and builds the three binaries into build/gpu-deps/bin as a
# fallback should the build there fail (static CUDA runtime; needs a glibc no older than this one's).
# Designed to end within ~5 minutes on the H200 machine (16 cores): build ~1-2 min, tests < 1 min,
# memcheck ≤ 2 min (MEMCHECK=0 skips it), timing ~1 min. Logs and timing.csv go to $OUT (or
# build/gpu-check). Exit status: 0 when every test passed and every timed result matched the dense one.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
deps=$root/build/gpu-deps
out=${OUT:-$root/build/gpu-check}
build=${SPARSERT_GPU_BUILD:-$root/build/gpu}
targets=(test_spmm_cuda test_formats_gpu spmm_cuda_timing)
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

if [ "${1:-}" = "--prepare" ]; then
  set -e
  gtest_lib=$(find /usr/lib /usr/local/lib -name libgtest.a 2>/dev/null | head -1)
  if [ ! -f /usr/include/gtest/gtest.h ] || [ -z "$gtest_lib" ]; then
    echo "check.sh --prepare: GoogleTest is not installed here" \
         "(expected /usr/include/gtest and libgtest.a: apt-get install libgtest-dev)" >&2
    exit 1
  fi
  rm -rf "$deps"
  mkdir -p "$deps/gtest/include" "$deps/gtest/lib" "$deps/bin"
  cp -r /usr/include/gtest "$deps/gtest/include/"
  cp "$gtest_lib" "$(dirname "$gtest_lib")/libgtest_main.a" "$deps/gtest/lib/"
  prebuilt=${PREBUILT_DIR:-$root/build/gpu-prebuilt}  # PREBUILT_DIR: reuse an existing CUDA build tree
  cmake -S . -B "$prebuilt" "${generator[@]}" -DSPARSERT_CUDA=ON -DSPARSERT_TESTS=ON -DSPARSERT_BENCH=ON >/dev/null
  cmake --build "$prebuilt" --parallel "${JOBS:-2}" --target "${targets[@]}"
  cp "$prebuilt/tests/cpp/test_spmm_cuda" "$prebuilt/tests/cpp/test_formats_gpu" "$prebuilt/spmm_cuda_timing" \
     "$deps/bin/"
  du -sh "$deps"
  echo "carry build/gpu-deps with the device call"
  exit 0
fi

mkdir -p "$out"
t0=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader 2>&1 | head -4
nvcc --version 2>&1 | tail -1
cmake --version | head -1

step "configure and build (CUDA, $(nproc) jobs)"
gtest_args=()
[ -d "$deps/gtest" ] && gtest_args=(-DGTEST_ROOT="$deps/gtest")
built=0
if cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DSPARSERT_CUDA=ON -DSPARSERT_TESTS=ON \
      -DSPARSERT_BENCH=ON "${gtest_args[@]}" >"$out/configure.log" 2>&1 &&
   cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]}" >"$out/build.log" 2>&1; then
  built=1
  bin_test=$build/tests/cpp/test_spmm_cuda
  bin_formats=$build/tests/cpp/test_formats_gpu
  bin_timing=$build/spmm_cuda_timing
  grep -E "sparsert: CUDA" "$out/configure.log"
  echo "built here"
else
  tail -n 15 "$out/configure.log" "$out/build.log" 2>/dev/null
  if [ -x "$deps/bin/test_spmm_cuda" ]; then
    echo "build failed here; falling back to the binaries check.sh --prepare built"
    bin_test=$deps/bin/test_spmm_cuda
    bin_formats=$deps/bin/test_formats_gpu
    bin_timing=$deps/bin/spmm_cuda_timing
  else
    echo "build failed and no prebuilt binaries (run check.sh --prepare before the call and carry build/gpu-deps)"
    exit 1
  fi
fi

step "tests: GPU layouts on the CPU, then the CUDA kernels"
"$bin_formats" --gtest_brief=1 >"$out/formats.log" 2>&1
formats_rc=$?
tail -n 3 "$out/formats.log"
"$bin_test" >"$out/gpu_tests.log" 2>&1
tests_rc=$?
grep -E "^\[ +(OK|FAILED|SKIPPED) +\]|Failure|Skipped|Expected|first bad|no CUDA" "$out/gpu_tests.log" | head -40
if grep -q "SKIPPED" "$out/gpu_tests.log"; then
  echo "GPU tests skipped: this machine has no usable CUDA device (see gpu_tests.log)"
  tests_rc=1
fi

memcheck="not run"
if [ "${MEMCHECK:-1}" != 0 ] && [ "$tests_rc" = 0 ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer memcheck of the GPU tests (at most 120 s)"
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 3 "$bin_test" >"$out/memcheck.log" 2>&1
  case $? in
    0) memcheck="clean" ;;
    3) memcheck="ERRORS (memcheck.log)" ;;
    124) memcheck="timed out after 120 s (partial log memcheck.log)" ;;
    *) memcheck="did not run here (memcheck.log; it needs Firecracker, not gVisor)" ;;
  esac
  grep -E "ERROR SUMMARY|Invalid|out of bounds" "$out/memcheck.log" | head -5
  echo "memcheck: $memcheck"
fi

step "timing (median of 30 launches, L2 flushed before each)"
"$bin_timing" --csv "$out/timing.csv" >"$out/timing.txt" 2>"$out/timing.err"
timing_rc=$?
tail -n 5 "$out/timing.err"

step "summary"
echo "build: $([ $built = 1 ] && echo "here" || echo "prebuilt fallback"); layout tests rc=$formats_rc;" \
     "GPU tests rc=$tests_rc; memcheck: $memcheck;" \
     "timing rc=$timing_rc (1: a sparse result disagreed with dense, or no device: timing.err);" \
     "total $(( $(date +%s) - t0 )) s; logs in $out"
cat "$out/timing.txt"
[ "$formats_rc" = 0 ] && [ "$tests_rc" = 0 ] && [ "$timing_rc" = 0 ]
