#!/usr/bin/env bash
# Cross-builds sparsert for aarch64 and checks every NEON kernel against the scalar references
# under qemu-user. GoogleTest has no aarch64 cross package, so the library is configured with
# SPARSERT_TESTS=OFF and the check is the self-contained tests/cpp/cross_check.cpp, compiled here.
# Needs g++-aarch64-linux-gnu and qemu-user (Debian); exits 0 with "skipped: ..." without them.
# Usage, from the repository root: bash .ci/cross_aarch64.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "skipped: $tool not found (install g++-aarch64-linux-gnu and qemu-user)"
    exit 0
  fi
done

sysroot=/usr/aarch64-linux-gnu
build=build/aarch64
start=$SECONDS

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release \
  -DSPARSERT_TESTS=OFF \
  -DSPARSERT_CUDA=OFF  # the CUDA kernels are x86-64 host builds here; the check is the NEON path
cmake --build "$build" --target sparsert

# The check reaches into cpp/src (registry, run_spmm) and links the static library, which
# defines SPARSERT_STATIC_DEFINE for its users.
aarch64-linux-gnu-g++ -std=c++17 -O2 -Wall -Wextra -Werror \
  -DSPARSERT_STATIC_DEFINE -Icpp/include -I"$build/cpp/include" -Icpp/src \
  tests/cpp/cross_check.cpp "$build/cpp/libsparsert.a" -lpthread \
  -o "$build/cross_check"

qemu-aarch64 -L "$sysroot" "$build/cross_check"
echo "cross_aarch64: done in $((SECONDS - start)) s"
