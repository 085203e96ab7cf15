#!/usr/bin/env bash
# Cross-builds sparsert for aarch64 and checks every NEON kernel against the scalar references
# under qemu-user. GoogleTest has no aarch64 cross package, so the library is configured with
# SPARSERT_TESTS=OFF and the check is the self-contained tests/cpp/cross_check.cpp, compiled here.
# Then sparsert-bench (cpp/tools), built for aarch64, runs under qemu on a small .sprt pair that the
# host's Python writes (the file format is little-endian on both): correctness only, it must exit 0
# and report every field with finite outputs; timings under emulation are no figures.
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
build=${SPARSERT_AARCH64_BUILD:-build/aarch64}
start=$SECONDS

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release \
  -DSPARSERT_TESTS=OFF \
  -DSPARSERT_CUDA=OFF  # the CUDA kernels are x86-64 host builds here; the check is the NEON path
cmake --build "$build" --target sparsert sparsert-bench

# The check reaches into cpp/src (registry, run_spmm) and links the static library, which
# defines SPARSERT_STATIC_DEFINE for its users.
aarch64-linux-gnu-g++ -std=c++17 -O2 -Wall -Wextra -Werror \
  -DSPARSERT_STATIC_DEFINE -Icpp/include -I"$build/cpp/include" -Icpp/src \
  tests/cpp/cross_check.cpp "$build/cpp/libsparsert.a" -lpthread \
  -o "$build/cross_check"

qemu-aarch64 -L "$sysroot" "$build/cross_check"

# sparsert-bench under qemu. The files come from the host's sparsert (CI installs this checkout
# first); without it importable this part is skipped, saying so.
if python3 -c "import sparsert, torch" 2>/dev/null; then
  python3 - "$build" <<'PY'
import sys
import torch
import sparsert

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 10)).eval()
x = torch.randn(2, 64)
sparsert.load(net, example_inputs=(x,), formats="dense").save(f"{sys.argv[1]}/edge_dense.sprt")
with torch.no_grad():
    for m in (net[0], net[2]):
        m.weight.mul_(m.weight.abs() >= m.weight.abs().flatten().kthvalue(int(0.9 * m.weight.numel())).values)
sparsert.load(net, example_inputs=(x,), formats="csr").save(f"{sys.argv[1]}/edge_csr.sprt")
PY
  qemu-aarch64 -L "$sysroot" "$build/cpp/tools/sparsert-bench" "$build/edge_csr.sprt" --dense "$build/edge_dense.sprt" \
    --threads 1,2 --batch 3 --runs 3 --json >"$build/edge_bench.json"
  python3 - "$build/edge_bench.json" <<'PY'
import json, math, sys
report = json.load(open(sys.argv[1]))
fields = ["load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "runs", "peak_rss_mib", "output_values",
          "nonfinite_outputs"]
assert report["machine"] == "aarch64" and "neon" in report["isas"], (report["machine"], report["isas"])
for m in report["models"]:
    for r in m["results"]:
        assert r["ok"] and all(r.get(k) is not None for k in fields), r
        assert r["nonfinite_outputs"] == 0 and r["output_values"] == 3 * 10 and r["runs"] == 3, r
assert all(q[k] is not None and math.isfinite(q[k]) for q in report["ratios"] for k in q), report["ratios"]
print(f"sparsert-bench under qemu: ok ({report['isas']}; {len(report['models'])} files x {len(report['threads'])} "
      "thread counts, every field present, outputs finite)")
PY
else
  echo "sparsert-bench under qemu: skipped (python3 cannot import sparsert and torch to write the .sprt files)"
fi
echo "cross_aarch64: done in $((SECONDS - start)) s"
