#!/usr/bin/env python3
"""This machine's limits, measured, and the physical floor of a layer or model computed from them.

The floor ("×floor", F: a measured time ÷ the floor, 1.0F = at the physical limit) is the perf
anchors' (RESULTS.md, "Method"): max(memory floor, compute floor), where
- memory floor = bytes that must move ÷ bandwidth: the weight at its cheapest encoding (unstructured:
  CSR with 16-bit column indices, 6 B per non-zero + 4 B row pointers; N:M: 4 B per kept value + its
  position, 2 bits for 2:4; r×c blocks: 4·r·c B per block + a 2 B block index + 4 B block-row
  pointers; never more than dense 4 B per value), plus x, y and bias at 4 B per value. The bandwidth
  is the L3 figure when those bytes fit in 3/4 of the L3 (24 MiB of this machine's 32: in a hot loop
  they stay there), else the DRAM figure;
- compute floor = 2·nnz·rows FLOP at the measured fp32 matmul peak.
Whole models (anchors' end-to-end section): the weights at their cheapest encodings ÷ bandwidth (L3
when they fit), and the sparse FLOPs (+ the dense attention matmuls) ÷ peak.

Bandwidth and peak are measured, not taken from a datasheet: streaming reads, copies and triads of
256 MiB arrays (DRAM) and of 2 MiB arrays (L3-resident; beyond the 512 KiB L2) with torch at T threads
and numpy (one thread); torch.mm on square fp32 matrices of 1024, 2048 and 4096, and sparsert's own
dense kernel on the same sizes (torch's BLAS need not use the CPU's widest vectors: on the AMD Zen 5
host torch.mm ran 117 GFLOP/s on one thread, sparsert's AVX-512 kernel about twice that), best of a
few. The best test of each kind is used. They are cached per CPU and thread count in the user's cache directory
(`$SPARSERT_CACHE_DIR`, else `$XDG_CACHE_HOME/sparsert`, else `~/.cache/sparsert`); `--refresh` (or
`limits(t, refresh=True)`) measures again, which takes about 15 s per thread count.

    python bench/machine.py --threads 1,2            # print the limits (measures what is not cached)
    python bench/machine.py --threads 1,2 --refresh  # measure again
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

_VERSION = 2  # bump when the measurement changes, so old caches are not read
DRAM_BYTES = 256 << 20  # per array: 8x the 32 MiB L3
L3_BYTES = 2 << 20  # per array: 4x the 512 KiB L2, well inside the L3
MM_SIZES = (1024, 2048, 4096)
L3_FIT = 0.75  # the anchors' rule: ≤ 24 MiB of a 32 MiB L3 counts as L3-resident
BUSY_LOAD = 0.5  # 1-min load average above which a 2-core host's figures are skewed by other work


@dataclass
class Limits:
    """Measured limits at one thread count. Bandwidths in GB/s (1e9 B/s), peak in GFLOP/s."""

    threads: int
    dram_gbs: float
    l3_gbs: float
    peak_gflops: float
    l3_bytes: int  # size of the last-level cache (0 when unknown: the L3 figure is then never used)
    tests: Dict[str, float] = field(default_factory=dict)  # every test's figure, for the record
    host_load: float = 0.0  # 1-min load average when measured: above ~0.5 on 2 cores the figures are low
    measured: str = ""
    quick: bool = False  # a rough figure from a smoke pass, not cached

    def bandwidth(self, nbytes: float) -> Tuple[float, str]:
        """(GB/s, "L3" or "DRAM") for a working set of `nbytes`."""
        if self.l3_bytes and nbytes <= L3_FIT * self.l3_bytes:
            return self.l3_gbs, "L3"
        return self.dram_gbs, "DRAM"


# --- measuring -----------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def l3_size() -> int:
    """Bytes of the last-level (level-3) cache from sysfs, else sysconf; 0 when neither says."""
    root = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(root.glob("index*")) if root.is_dir() else []:
        try:
            if (index / "level").read_text().strip() == "3":
                text = (index / "size").read_text().strip().upper()
                scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
                return int(text.rstrip("KMG")) * scale
        except (OSError, ValueError):
            continue
    try:
        return max(int(os.sysconf("SC_LEVEL3_CACHE_SIZE")), 0)
    except (ValueError, OSError, AttributeError):
        return 0


def _per_call(fn, calls: int, repeats: int) -> float:
    """Median over `repeats` of the mean time of `calls` back-to-back calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def _bandwidth_tests(nbytes: int, calls: int) -> Dict[str, float]:
    """GB/s of each streaming test on arrays of `nbytes`, STREAM counting (copy moves 2 arrays, triad 3;
    the write-allocate traffic is not counted)."""
    import torch

    n = nbytes // 4
    a, b, c = (torch.full((n,), v, dtype=torch.float32) for v in (1.0, 2.0, 3.0))
    an, bn = a.numpy(), b.numpy()
    tests = {
        "torch_read_sum": (lambda: a.sum(), 1),
        "torch_copy": (lambda: b.copy_(a), 2),
        "torch_triad": (lambda: torch.add(b, c, alpha=3.0, out=a), 3),
        # numpy is single-threaded; its copy most likely uses non-temporal stores, and at one thread
        # it was the fastest DRAM test in the anchors (24.8 GB/s against torch's 16.5)
        "numpy_copy": (lambda: np.copyto(bn, an), 2),
    }
    return {name: arrays * nbytes / _per_call(fn, calls, 5) / 1e9 for name, (fn, arrays) in tests.items()}


def _peak_tests(sizes: Sequence[int], threads: int) -> Dict[str, float]:
    import torch

    import sparsert

    out = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        c = torch.empty(n, n)
        torch.mm(a, b, out=c)  # warm-up: thread pool, packing buffers
        best = min(_timed(lambda: torch.mm(a, b, out=c)) for _ in range(3 if n < 4096 else 2))
        out[f"torch_mm_{n}"] = 2.0 * n ** 3 / best / 1e9
        w = sparsert.formats.pack(b.numpy(), "dense")
        x = a.numpy()
        sparsert._core.linear(w, x, None, "none", threads)  # warm-up
        best = min(_timed(lambda: sparsert._core.linear(w, x, None, "none", threads)) for _ in range(3 if n < 4096 else 2))
        out[f"sparsert_dense_{n}"] = 2.0 * n ** 3 / best / 1e9
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(threads: int, quick: bool = False) -> Limits:
    """Measure this machine's limits at `threads` torch threads (about 15 s; `quick`: about 2 s, with
    smaller arrays and matrices, a rougher figure for smoke passes)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    load = os.getloadavg()[0]
    try:
        dram = _bandwidth_tests(DRAM_BYTES // 2 if quick else DRAM_BYTES, 2 if quick else 3)
        l3 = _bandwidth_tests(L3_BYTES, 50 if quick else 200)
        peak = _peak_tests(MM_SIZES[:1] if quick else MM_SIZES, threads)
    finally:
        torch.set_num_threads(before)
    tests = {f"dram_{k}": v for k, v in dram.items()}
    tests.update({f"l3_{k}": v for k, v in l3.items()})
    tests.update(peak)
    return Limits(threads, max(dram.values()), max(l3.values()), max(peak.values()), l3_size(), tests,
                  load, time.strftime("%Y-%m-%d %H:%M"), quick)


def cache_path() -> Path:
    root = os.environ.get("SPARSERT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sparsert")
    return Path(root) / f"machine-{platform.machine()}-v{_VERSION}.json"


def limits(threads: int, refresh: bool = False, quick: bool = False) -> Limits:
    """This machine's limits at `threads` threads: from the cache, or measured (and cached) when the
    cache lacks them, was written on another CPU, was measured on a busy host while this one is now
    idle, or `refresh` is set. With `quick`, a missing entry is estimated in about 2 s and not cached
    (smoke passes)."""
    path = cache_path()
    cache: dict = {}
    try:
        cache = json.loads(path.read_text())
        if cache.get("cpu") != cpu_model():
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entry = cache.get("threads", {}).get(str(threads))
    if entry is not None and not refresh:
        try:
            cached = Limits(**entry)
            # a figure taken beside other work is low; measure it again once the host is idle
            if not (cached.host_load > BUSY_LOAD >= os.getloadavg()[0]):
                return cached
        except TypeError:
            pass  # a damaged entry is measured again
    result = measure(threads, quick=quick and not refresh)
    if result.quick:
        return result
    cache.setdefault("threads", {})[str(threads)] = asdict(result)
    cache["cpu"] = cpu_model()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    tmp.replace(path)
    return result


# --- floors --------------------------------------------------------------------------------------

def weight_bytes(w: np.ndarray, blocks: Iterable[Tuple[int, int]] = ((4, 4),),
                 nm: Iterable[Tuple[int, int]] = ((2, 4),)) -> Tuple[int, str]:
    """(bytes, encoding) of the weight `w` (out, in; any trailing dims are flattened into in) at its
    cheapest encoding among dense, CSR with 16-bit column indices (when in ≤ 65536), each N:M pattern
    of `nm` that `w` satisfies, and BSR at each block shape of `blocks` (blocks that hold any non-zero
    are stored whole, so an unstructured weight pays the fill)."""
    w = np.asarray(w).reshape(w.shape[0], -1)
    rows, cols = w.shape
    nz = w != 0
    nnz = int(nz.sum())
    options = {"dense": 4 * rows * cols}
    if cols <= 1 << 16:
        options["csr16"] = 6 * nnz + 4 * (rows + 1)
    for n, m in nm:
        pad = (-cols) % m
        groups = np.pad(nz, ((0, 0), (0, pad))).reshape(rows, -1, m).sum(axis=2)
        if int(groups.max(initial=0)) <= n:
            kept = rows * groups.shape[1] * n
            options[f"nm{n}:{m}"] = 4 * kept + math.ceil(kept * math.ceil(math.log2(m)) / 8)
    for r, c in blocks:
        padded = np.pad(nz, ((0, (-rows) % r), (0, (-cols) % c)))
        nblocks = int(padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c).any(axis=(1, 3)).sum())
        options[f"bsr{r}x{c}"] = nblocks * (4 * r * c + 2) + 4 * (padded.shape[0] // r + 1)
    best = min(options, key=options.get)
    return options[best], best


@dataclass
class Floor:
    seconds: float
    bound: str  # "L3", "DRAM" (memory-bound at that bandwidth) or "peak" (compute-bound)
    nbytes: int
    flops: float

    def ratio(self, seconds: float) -> float:
        """×floor of a measured time."""
        return seconds / self.seconds if self.seconds > 0 else math.inf


def floor(lim: Limits, nbytes: float, flops: float) -> Floor:
    """max(nbytes ÷ bandwidth (L3 when nbytes fits in it), flops ÷ peak)."""
    gbs, where = lim.bandwidth(nbytes)
    memory = nbytes / (gbs * 1e9)
    compute = flops / (lim.peak_gflops * 1e9)
    return Floor(max(memory, compute), where if memory >= compute else "peak", int(nbytes), flops)


def linear_floor(lim: Limits, w_bytes: int, nnz: int, out_f: int, in_f: int, batch: int) -> Floor:
    """Floor of y = x·Wᵀ + b for a weight of `w_bytes` at its cheapest encoding (`weight_bytes`)."""
    io = 4 * (batch * in_f + batch * out_f + out_f)
    return floor(lim, w_bytes + io, 2.0 * nnz * batch)


# --- command line --------------------------------------------------------------------------------

def describe(lims: Sequence[Limits]) -> List[str]:
    """Markdown table of the limits, one column per thread count."""
    head = "| metric | " + " | ".join(f"{l.threads} thread{'s' if l.threads > 1 else ''}" for l in lims) + " |"
    lines = [head, "|---|" + "---|" * len(lims)]
    names = sorted({k for l in lims for k in l.tests}, key=lambda k: (k.split("_")[0], k))
    for name in names:
        unit = "GFLOP/s" if name.startswith(("torch_mm", "sparsert_dense")) else "GB/s"
        lines.append(f"| {name} {unit} | " + " | ".join(f"{l.tests.get(name, math.nan):.1f}" for l in lims) + " |")
    lines.append("| **DRAM GB/s** (best test) | " + " | ".join(f"{l.dram_gbs:.1f}" for l in lims) + " |")
    lines.append("| **L3 GB/s** (best test) | " + " | ".join(f"{l.l3_gbs:.1f}" for l in lims) + " |")
    lines.append("| **fp32 peak GFLOP/s** (best size) | " + " | ".join(f"{l.peak_gflops:.1f}" for l in lims) + " |")
    return lines


def summary(lim: Limits) -> str:
    """One line for a bench header."""
    how = "quick estimate, not cached" if lim.quick else f"measured {lim.measured}, host load {lim.host_load:.2f}"
    return (f"{lim.threads}T: DRAM {lim.dram_gbs:.1f} GB/s, L3 {lim.l3_gbs:.1f} GB/s "
            f"(used up to {L3_FIT * lim.l3_bytes / 2**20:.0f} MiB), fp32 peak {lim.peak_gflops:.1f} GFLOP/s ({how})")


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    p.add_argument("--refresh", action="store_true", help="measure again even when cached")
    args = p.parse_args(argv)
    try:
        threads = [int(v) for v in args.threads.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"machine.py: --threads {args.threads!r} not understood (expected e.g. 1,2)")
    if not threads or min(threads) < 1:
        raise SystemExit(f"machine.py: --threads {args.threads!r} (expected positive thread counts)")
    if os.getloadavg()[0] > BUSY_LOAD:
        print("machine.py: warning: the host is busy (1-min load > 0.5): figures measured now come out low, "
              "and every floor computed from them too", file=sys.stderr)
    lims = [limits(t, refresh=args.refresh) for t in threads]
    print(f"cpu: {cpu_model()}; L3 {lims[0].l3_bytes / 2**20:.0f} MiB; cache {cache_path()}")
    for lim in lims:
        print(summary(lim))
    print("\n".join(describe(lims)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
