#!/usr/bin/env python3
"""Linear-layer kernels: every sparsert format against torch dense and torch CSR, side by side.

For each weight shape W (out, in), sparsity pattern, batch and thread count, times
y = x @ W.T + b with torch.nn.functional.linear on the zero-filled dense W, torch's CSR matmul,
and sparsert's Dense, CSR, BSR 4x4 and (on N:M weights) NM formats, interleaved in one process
(sparsert._timing, the anchors' method), and prints median times and speed-ups over torch dense.
Every output is checked against F.linear first; a wrong one is marked FAIL and not timed.

    python bench/kernels.py --quick                                   # smoke pass, ~10 s
    python bench/kernels.py --threads 1,2 --markdown bench/results/kernels.md

See bench/README.md for the columns and the method.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import sparsert
from sparsert._timing import Timing, time_interleaved

FULL = dict(shapes="768x768,3072x768,768x3072,4096x4096", densities="1.0,2:4,0.3,0.1,0.05,b4x4:0.1",
            batches="1,8,64", min_time=0.3)
QUICK = dict(shapes="768x768", densities="2:4", batches="8", min_time=0.05)
MAX_REL_ERR = 1e-4  # fp32 kernels summing up to 4096 products in another order land near 1e-6
BSR_BLOCK = (4, 4)
SEED = 0

warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message=r"Sparse invariant checks are implicitly disabled")


# --- weights -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pattern:
    """A pruning pattern: "u" unstructured at `density`, "nm" N:M, or "block" r x c blocks."""

    kind: str
    density: float
    n: int = 0
    m: int = 0
    block: Tuple[int, int] = (0, 0)

    @property
    def label(self) -> str:
        if self.kind == "nm":
            return f"nm{self.n}:{self.m}"
        if self.kind == "block":
            return f"b{self.block[0]}x{self.block[1]}_{self.density}"
        return f"u{self.density}"


def parse_pattern(token: str) -> Pattern:
    """`0.1` unstructured, `2:4` N:M, `b4x4:0.1` 4x4 blocks at density 0.1."""
    try:
        if token.startswith("b"):
            shape, density = token[1:].split(":")
            r, c = (int(v) for v in shape.split("x"))
            pattern = Pattern("block", float(density), block=(r, c))
        elif ":" in token:
            n, m = (int(v) for v in token.split(":"))
            pattern = Pattern("nm", n / m, n=n, m=m)
        else:
            pattern = Pattern("u", float(token))
    except ValueError:
        raise SystemExit(f"kernels.py: density {token!r} not understood (expected e.g. 0.1, 2:4 or b4x4:0.1)")
    if not 0 < pattern.density <= 1:
        raise SystemExit(f"kernels.py: density {token!r} is {pattern.density:g} (expected 0 < density <= 1)")
    return pattern


def check_fits(out_f: int, in_f: int, pattern: Pattern) -> None:
    """Exit with a message when `pattern` cannot tile a W of this shape."""
    r, c = pattern.block if pattern.kind == "block" else (1, pattern.m or 1)
    if out_f % r or in_f % c:
        raise SystemExit(f"kernels.py: shape {out_f}x{in_f} does not fit pattern {pattern.label} "
                         f"(expected out % {r} == 0 and in % {c} == 0)")


def pruned_weight(out_f: int, in_f: int, pattern: Pattern, rng: np.random.Generator) -> np.ndarray:
    """Random normal (out, in) fp32 weight, magnitude-pruned to `pattern`."""
    w = rng.standard_normal((out_f, in_f), dtype=np.float32)
    if pattern.kind == "u":
        keep = round(pattern.density * w.size)
        if keep < w.size:  # zero all but the `keep` largest |w|
            flat = w.reshape(-1)
            flat[np.argpartition(np.abs(flat), w.size - keep)[: w.size - keep]] = 0
    elif pattern.kind == "nm":  # keep the n largest |w| of every m consecutive inputs
        n, m = pattern.n, pattern.m
        groups = w.reshape(out_f, in_f // m, m)
        drop = np.argsort(np.abs(groups), axis=-1)[..., : m - n]
        np.put_along_axis(groups, drop, 0, axis=-1)
    else:  # keep the blocks with the largest L1 norm
        r, c = pattern.block
        blocks = w.reshape(out_f // r, r, in_f // c, c)
        norms = np.abs(blocks).sum(axis=(1, 3)).reshape(-1)
        keep = round(pattern.density * norms.size)
        mask = np.zeros(norms.size, dtype=bool)
        mask[np.argpartition(norms, norms.size - keep)[norms.size - keep:]] = True
        blocks *= mask.reshape(out_f // r, 1, in_f // c, 1)
    return w


# --- one case ------------------------------------------------------------------------------------

@dataclass
class Weights:
    """One pruned weight in every form the tools take."""

    dense: torch.Tensor
    nnz: int
    torch_csr: torch.Tensor
    sr: Dict[str, sparsert.formats.Weight]


def build_weights(w: np.ndarray, pattern: Pattern) -> Weights:
    dense = torch.from_numpy(w)
    csr = dense.to_sparse_csr()
    # int32 indices: as fast as or faster than int64 in every anchor case
    csr_i32 = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(),
                                      size=csr.shape)
    sr: Dict[str, sparsert.formats.Weight] = {
        "dense": sparsert.Dense(w),
        "csr": sparsert.CSR(w),
        "bsr": sparsert.BSR(w, block=BSR_BLOCK),
    }
    if pattern.kind == "nm":
        sr["nm"] = sparsert.NM(w, n=pattern.n, m=pattern.m)
    return Weights(dense, int(np.count_nonzero(w)), csr_i32, sr)


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    y64, ref64 = y.double(), ref.double()
    return float(torch.linalg.vector_norm(y64 - ref64) / torch.linalg.vector_norm(ref64))


@dataclass
class Result:
    shape: Tuple[int, int]
    pattern: Pattern
    batch: int
    threads: int
    nnz: int
    bsr_fill: float  # values BSR stores / true non-zeros
    timings: Dict[str, Timing]
    errors: Dict[str, float]
    failed: List[str]
    torch_csr_form: str
    kernels: Dict[str, str]


def run_case(wts: Weights, pattern: Pattern, batch: int, threads: int, min_time: float) -> Result:
    torch.set_num_threads(threads)
    sparsert.set_num_threads(threads)
    out_f, in_f = wts.dense.shape
    gen = torch.Generator().manual_seed(SEED + batch)
    x = torch.randn(batch, in_f, generator=gen)
    b = torch.randn(out_f, generator=gen)
    xt = x.T.contiguous()  # sparse tools get x already as (in, batch), their fastest layout
    x1 = x[0].contiguous()
    b_col = b[:, None]
    ref = F.linear(x, wts.dense, b)

    # name -> (callable, its output as (batch, out) for the check)
    tools: Dict[str, Tuple[Callable[[], object], Callable[[object], torch.Tensor]]] = {
        "torch_dense": (lambda: F.linear(x, wts.dense, b), lambda y: y),
        "torch_csr_addmm_i32": (lambda: torch.addmm(b_col, wts.torch_csr, xt), lambda y: y.T),
    }
    if batch == 1:
        tools["torch_csr_mv_i32"] = (lambda: torch.mv(wts.torch_csr, x1) + b, lambda y: y[None, :])
    for fmt, sw in wts.sr.items():
        tools[f"sr_{fmt}"] = ((lambda sw=sw: sparsert.linear(x, sw, b)), lambda y: y)

    errors: Dict[str, float] = {}
    failed: List[str] = []
    timed: Dict[str, Callable[[], object]] = {}
    for name, (fn, as_rows) in tools.items():
        try:
            errors[name] = rel_err(as_rows(fn()), ref)
        except Exception as exc:  # a crash is reported like a wrong answer, the sweep goes on
            print(f"  {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            errors[name] = float("nan")
        if errors[name] <= MAX_REL_ERR:
            timed[name] = fn
        else:
            failed.append(name)
    timings = time_interleaved(timed, min_time=min_time)

    forms = [n for n in ("torch_csr_addmm_i32", "torch_csr_mv_i32") if n in timings]
    best = min(forms, key=lambda n: timings[n].median, default="")
    if best:
        timings["torch_csr"] = timings[best]
    kernels = {fmt: sparsert.kernel_name(sw, batch) for fmt, sw in wts.sr.items()}
    return Result((out_f, in_f), pattern, batch, threads, wts.nnz, wts.sr["bsr"].nnz / max(wts.nnz, 1),
                  timings, errors, failed, best.replace("torch_csr_", ""), kernels)


# --- output --------------------------------------------------------------------------------------

COLUMNS = ["shape", "config", "batch", "thr", "nnz", "torch dense µs", "torch CSR µs (form)",
           "sr Dense µs", "sr CSR µs", "sr BSR4x4 µs", "BSR fill", "sr NM µs", "sr CSR kernel", "check"]
WIDTHS = [10, 9, 5, 3, 10, 14, 27, 18, 18, 18, 8, 18, 24, 5]


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def cells(r: Result) -> List[str]:
    t = r.timings
    base = t.get("torch_dense")

    def timed(name: str, suffix: str = "") -> str:
        if name in r.failed or (name == "torch_csr" and not r.torch_csr_form):
            return "FAIL"
        if name not in t:
            return "-"
        speedup = f" ({base.median / t[name].median:.2f}x)" if base else ""
        return fmt_us(t[name].median) + speedup + suffix

    return [
        f"{r.shape[0]}x{r.shape[1]}", r.pattern.label, str(r.batch), str(r.threads), f"{r.nnz:,}",
        fmt_us(base.median) if base else "FAIL",
        timed("torch_csr", f" {r.torch_csr_form}"),
        timed("sr_dense"), timed("sr_csr"), timed("sr_bsr"), f"{r.bsr_fill:.2f}", timed("sr_nm"),
        r.kernels["csr"],
        "FAIL" if r.failed else "ok",
    ]


def text_row(values: List[str]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, WIDTHS)).rstrip()


def header_lines(args: argparse.Namespace) -> List[str]:
    model, cpus = "unknown", 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                cpus += line.startswith("processor")
    except OSError:
        model = platform.processor() or "unknown"
    return [
        f"date: {datetime.date.today().isoformat()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
        f"cpu: {model} ({cpus or os.cpu_count()} logical CPUs); threads: {args.threads}",
        f"torch {torch.__version__}; sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}",
        f"min-time {args.min_time} s per tool and case; medians",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
    ]


def write_markdown(path: str, head: List[str], results: List[Result]) -> None:
    kernels = sorted({k for r in results for k in r.kernels.values()})
    lines = ["# sparsert kernels vs torch", ""] + [f"- {h}" for h in head] + [
        f"- sparsert kernels used: {', '.join(kernels)}",
        "",
        "Cells: median µs (speed-up vs torch dense). Columns: see bench/README.md.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in results]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def jsonl_record(r: Result) -> dict:
    return {
        "shape": list(r.shape), "config": r.pattern.label, "batch": r.batch, "threads": r.threads,
        "nnz": r.nnz, "bsr_fill": r.bsr_fill, "kernels": r.kernels, "failed": r.failed,
        "torch_csr_form": r.torch_csr_form,
        "rel_err": r.errors,
        "timings_s": {n: {"median": t.median, "p10": t.p10, "p90": t.p90, "calls": t.calls}
                      for n, t in r.timings.items()},
    }


# --- main ----------------------------------------------------------------------------------------

def parse_list(text: str, convert: Callable[[str], object], what: str) -> list:
    try:
        return [convert(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"kernels.py: --{what} {text!r} not understood (expected a comma-separated list)")


def parse_shape(token: str) -> Tuple[int, int]:
    out_f, in_f = (int(v) for v in token.lower().split("x"))  # ValueError also for a wrong count
    if out_f < 1 or in_f < 1:
        raise ValueError(token)
    return out_f, in_f


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", help=f"W shapes OUTxIN (default {FULL['shapes']})")
    p.add_argument("--densities", help="patterns: 0.1 = unstructured magnitude, 2:4 = N:M, "
                   f"b4x4:0.1 = 4x4 blocks by L1 norm (default {FULL['densities']})")
    p.add_argument("--batches", help=f"batch sizes (default {FULL['batches']})")
    p.add_argument("--threads", default="1", help="thread counts for torch and sparsert alike (default 1)")
    p.add_argument("--min-time", type=float,
                   help=f"seconds of timed calls per tool and case (default {FULL['min_time']})")
    p.add_argument("--quick", action="store_true",
                   help=f"smoke pass: {QUICK['shapes']}, {QUICK['densities']}, batch {QUICK['batches']}, "
                   f"min-time {QUICK['min_time']} (explicit options still win)")
    p.add_argument("--markdown", metavar="PATH", help="also write the table as markdown")
    p.add_argument("--jsonl", metavar="PATH", help="also write every case (p10/p90, errors, kernels) as JSON lines")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    shapes = parse_list(args.shapes, parse_shape, "shapes")
    patterns = [parse_pattern(t.strip()) for t in args.densities.split(",") if t.strip()]
    batches = parse_list(args.batches, int, "batches")
    threads = parse_list(args.threads, int, "threads")
    if args.min_time <= 0 or min(batches + threads) < 1:
        raise SystemExit("kernels.py: --min-time, --batches and --threads must be positive")

    for out_f, in_f in shapes:
        for pattern in patterns:
            check_fits(out_f, in_f, pattern)
    head = header_lines(args)
    if os.getloadavg()[0] > 0.5:
        print("kernels.py: warning: the host is busy (1-min load > 0.5); with 2 cores, other work "
              "skews every time and ruins 2-thread rows", file=sys.stderr)
    for line in head:
        print(line)
    print()
    print(text_row(COLUMNS))
    results: List[Result] = []
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    for out_f, in_f in shapes:
        for pattern in patterns:
            wts = build_weights(pruned_weight(out_f, in_f, pattern, rng), pattern)
            for batch in batches:
                for t in threads:
                    r = run_case(wts, pattern, batch, t, args.min_time)
                    results.append(r)
                    print(text_row(cells(r)), flush=True)
            del wts
    failed = [r for r in results if r.failed]
    print(f"\n{len(results)} cases in {time.perf_counter() - start:.0f} s; "
          f"{len(failed)} FAIL (relative error > {MAX_REL_ERR:g} against F.linear, or an exception)")
    for r in failed:
        errs = ", ".join(f"{n} {r.errors[n]:.2e}" for n in r.failed)
        print(f"  FAIL {r.shape[0]}x{r.shape[1]} {r.pattern.label} batch {r.batch} threads {r.threads}: {errs}")
    print("sparsert kernels used: " + ", ".join(sorted({k for r in results for k in r.kernels.values()})))
    if args.markdown:
        write_markdown(args.markdown, head, results)
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for r in results:
                f.write(json.dumps(jsonl_record(r)) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
