#!/usr/bin/env python3
"""Linear-layer kernels: every sparsert format and its automatic choice against torch, onnxruntime and
DeepSparse, side by side, with each time's distance from the machine's physical floor.

For each weight shape W (out, in), sparsity pattern, batch and thread count, times y = x @ W.T + b with
sparsert's Dense, CSR, BSR (at the pattern's block shape, else 4x4) and, on N:M weights, NM formats,
and the format sparsert's selector picks for that weight, batch and thread count ("auto"); torch
F.linear on the zero-filled W, torch CSR (int32 indices: `mv` at batch 1, `addmm`), torch BSR 4x4
`addmm` (block patterns); onnxruntime dense (optional, in a block of its own); DeepSparse 1.8 (with
--deepsparse, in its own process: bench/deepsparse/). Every output is checked against F.linear
first; a wrong one is marked FAIL, not timed, and makes the exit status 1.

    python bench/kernels.py --quick                                   # smoke pass, ~15 s
    python bench/kernels.py --threads 1,2 --markdown bench/results/kernels.md --plot bench/results/kernels.png
    python bench/kernels.py --preset blocks --deepsparse ~/.cache/sparsert/deepsparse-venv/bin/python

See bench/README.md for the columns, the presets and the method.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shlex
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

import sparsert
from sparsert import cost, select
from sparsert._timing import Timing, time_blocks

import baselines
import machine

SHAPES = "768x768,3072x768,768x3072,4096x4096"
PRESETS = {
    # the CI smoke pass
    "quick": dict(shapes="768x768", densities="2:4", batches="8", min_time=0.05),
    # ~4-5 min per thread count without DeepSparse
    "default": dict(shapes=SHAPES, densities="1.0,2:4,0.5,0.3,0.1,0.05,bsr4x4:0.1", batches="1,8,64", min_time=0.3),
    # the block targets: 4x4, 8x1 and 16x1 blocks at 10%
    "blocks": dict(shapes=SHAPES, densities="bsr4x4:0.1,bsr8x1:0.1,bsr16x1:0.1", batches="1,8,64", min_time=0.3),
    # the large-batch targets (DeepSparse's strength)
    "batch256": dict(shapes="768x3072,4096x4096", densities="1.0,2:4,0.1,0.05,bsr4x4:0.1", batches="256", min_time=0.3),
    # "no cliff anywhere" between batch 1 and 64
    "midbatch": dict(shapes="768x3072,4096x4096", densities="0.1", batches="2,4,16,32", min_time=0.3),
}
MAX_REL_ERR = 1e-4  # fp32 kernels summing up to 4096 products in another order land near 1e-6
TORCH_BSR_BLOCK = (4, 4)  # MKL, behind torch's CPU BSR, takes square blocks only
SEED = 0

warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message=r"Sparse BSR tensor support is in beta state")
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
    """`0.1` unstructured, `2:4` N:M, `bsr4x4:0.1` 4x4 blocks at density 0.1."""
    try:
        if token.startswith("bsr"):
            spec, density = token.split(":")
            pattern = Pattern("block", float(density), block=sparsert.formats.parse(spec).block)
        elif ":" in token:
            n, m = (int(v) for v in token.split(":"))
            pattern = Pattern("nm", n / m, n=n, m=m)
        else:
            pattern = Pattern("u", float(token))
    except ValueError:
        raise SystemExit(f"kernels.py: density {token!r} not understood (expected e.g. 0.1, 2:4 or bsr4x4:0.1)")
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


# --- one weight, one case ------------------------------------------------------------------------

@dataclass
class Weights:
    """One pruned weight in every form the tools take."""

    w: np.ndarray
    dense: torch.Tensor
    nnz: int
    torch_csr: torch.Tensor
    torch_bsr: Optional[torch.Tensor]
    sr: Dict[str, sparsert.formats.Weight]
    bsr_block: Tuple[int, int]
    floor_bytes: int  # the weight at its cheapest encoding
    floor_encoding: str
    onnx: Optional[bytes] = None
    bias: Optional[torch.Tensor] = None


def build_weights(w: np.ndarray, pattern: Pattern, want_onnx: bool) -> Weights:
    dense = torch.from_numpy(w)
    csr = dense.to_sparse_csr()
    # int32 indices: as fast as or faster than int64 in every anchor case
    csr_i32 = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(),
                                      size=csr.shape)
    out_f, in_f = w.shape
    torch_bsr = None
    if pattern.kind == "block" and out_f % 4 == 0 and in_f % 4 == 0:
        torch_bsr = dense.to_sparse_bsr(TORCH_BSR_BLOCK)
    block = pattern.block if pattern.kind == "block" else (4, 4)
    sr: Dict[str, sparsert.formats.Weight] = {
        "dense": sparsert.Dense(w),
        "csr": sparsert.CSR(w),
        "bsr": sparsert.BSR(w, block=block),
    }
    if pattern.kind == "nm":
        sr["nm"] = sparsert.NM(w, n=pattern.n, m=pattern.m)
    nbytes, encoding = machine.weight_bytes(
        w, blocks=[(4, 4)] + ([pattern.block] if pattern.kind == "block" else []),
        nm=[(2, 4)] + ([(pattern.n, pattern.m)] if pattern.kind == "nm" else []))
    bias = torch.randn(out_f, generator=torch.Generator().manual_seed(SEED + 1))
    wts = Weights(w, dense, int(np.count_nonzero(w)), csr_i32, torch_bsr, sr, block,
                  nbytes, encoding, bias=bias)
    if want_onnx:
        wts.onnx = baselines.linear_onnx(w, bias.numpy())
    return wts


def make_input(batch: int, in_f: int) -> torch.Tensor:
    """x for a case: the same for every tool and both processes (seeded by the batch)."""
    return torch.randn(batch, in_f, generator=torch.Generator().manual_seed(SEED + batch))


@dataclass
class Result:
    shape: Tuple[int, int]
    pattern: Pattern
    batch: int
    threads: int
    nnz: int
    bsr_block: Tuple[int, int]
    bsr_fill: float  # values sparsert's BSR stores / true non-zeros
    timings: Dict[str, Timing]
    errors: Dict[str, float]
    failed: List[str]
    torch_csr_form: str
    kernels: Dict[str, str]
    auto_format: str
    floor: machine.Floor
    floor_encoding: str
    notes: List[str] = field(default_factory=list)
    deepsparse: Optional[dict] = None  # the runner's record, merged after the sweep

    @property
    def key(self) -> str:
        return f"{self.shape[0]}x{self.shape[1]}|{self.pattern.label}|b{self.batch}|t{self.threads}"


_COST_MODELS: Dict[int, cost.CostModel] = {}


def auto_format(wts: Weights, batch: int, threads: int) -> str:
    """The format sparsert's selector picks for this weight at `batch` rows and `threads` threads: the
    rule `sparsert.load` applies to a linear layer (select.choose on the calibrated cost model, close
    calls timed on this weight)."""
    if threads not in _COST_MODELS:
        _COST_MODELS[threads] = cost.calibrate(threads)
    return select.choose("auto", wts.w, batch, _COST_MODELS[threads])[0].format


def run_case(wts: Weights, pattern: Pattern, batch: int, threads: int, min_time: float, lim: machine.Limits,
             ort_session) -> Result:
    torch.set_num_threads(threads)
    sparsert.set_num_threads(threads)
    out_f, in_f = wts.dense.shape
    x = make_input(batch, in_f)
    b = wts.bias
    xt = x.T.contiguous()  # sparse tools get x already as (in, batch), their fastest layout
    x1 = x[0].contiguous()
    b_col = b[:, None]
    ref = F.linear(x, wts.dense, b)

    # name -> (callable, its output as (batch, out) for the check); each inner dict is one timing block
    main: Dict[str, Tuple[Callable[[], object], Callable[[object], torch.Tensor]]] = {
        "torch_dense": (lambda: F.linear(x, wts.dense, b), lambda y: y),
        "torch_csr_addmm_i32": (lambda: torch.addmm(b_col, wts.torch_csr, xt), lambda y: y.T),
    }
    if batch == 1:
        main["torch_csr_mv_i32"] = (lambda: torch.mv(wts.torch_csr, x1) + b, lambda y: y[None, :])
    if wts.torch_bsr is not None:
        main["torch_bsr"] = (lambda: torch.addmm(b_col, wts.torch_bsr, xt), lambda y: y.T)
    for fmt, sw in wts.sr.items():
        main[f"sr_{fmt}"] = ((lambda sw=sw: sparsert.linear(x, sw, b)), lambda y: y)
    fmt = auto_format(wts, batch, threads)
    same = {"dense": "dense", "csr": "csr", f"bsr{wts.bsr_block[0]}x{wts.bsr_block[1]}": "bsr",
            f"nm{pattern.n}:{pattern.m}": "nm" if "nm" in wts.sr else None}.get(fmt)
    auto_weight = None
    if same is None:  # a format no other column times: pack and time it on its own
        auto_weight = sparsert.formats.pack(wts.w, fmt)
        main["sr_auto"] = (lambda: sparsert.linear(x, auto_weight, b), lambda y: y)
    ort_block: Dict[str, Tuple[Callable[[], object], Callable[[object], torch.Tensor]]] = {}
    if ort_session is not None:
        ort_block["ort_dense"] = (baselines.ort_call(ort_session, x.numpy()), torch.from_numpy)

    errors: Dict[str, float] = {}
    failed: List[str] = []
    # At 2+ threads each runtime's idle workers spin after a call and take a core from the next tool's:
    # sparsert's calls get a block of their own then (models.py).
    sr_block = {name: main.pop(name) for name in list(main) if name.startswith("sr_")} if threads > 1 else {}
    blocks: List[Dict[str, Callable[[], object]]] = []
    for block in (main, sr_block, ort_block):
        timed: Dict[str, Callable[[], object]] = {}
        for name, (fn, as_rows) in block.items():
            try:
                errors[name] = baselines.rel_err(as_rows(fn()), ref)
            except Exception as exc:  # a crash is reported like a wrong answer, the sweep goes on
                print(f"  {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                errors[name] = float("nan")
            if errors[name] <= MAX_REL_ERR:
                timed[name] = fn
            else:
                failed.append(name)
        blocks.append(timed)
    timings = time_blocks(blocks, min_time=min_time)
    if same is not None:  # the auto choice is a format timed above: its figures are the auto column's
        if f"sr_{same}" in timings:
            timings["sr_auto"] = timings[f"sr_{same}"]
        else:
            failed.append("sr_auto")
            errors["sr_auto"] = errors[f"sr_{same}"]
    forms = [n for n in ("torch_csr_addmm_i32", "torch_csr_mv_i32") if n in timings]
    best = min(forms, key=lambda n: timings[n].median, default="")
    if best:
        timings["torch_csr"] = timings[best]
    kernels = {f: sparsert.kernel_name(sw, batch) for f, sw in wts.sr.items()}
    if auto_weight is not None:
        kernels["auto"] = sparsert.kernel_name(auto_weight, batch)
    floor = machine.linear_floor(lim, wts.floor_bytes, wts.nnz, out_f, in_f, batch)
    return Result((out_f, in_f), pattern, batch, threads, wts.nnz, wts.bsr_block,
                  wts.sr["bsr"].nnz / max(wts.nnz, 1), timings, errors, failed, best.replace("torch_csr_", ""),
                  kernels, fmt, floor, wts.floor_encoding)


# --- figures derived from one result -------------------------------------------------------------

DENSE_TOOLS = ("torch_dense", "ort_dense")
SPARSE_TOOLS = ("torch_csr", "torch_bsr", "deepsparse")
TOOL_NAMES = {"torch_dense": "torch dense", "ort_dense": "ORT dense", "torch_csr": "torch CSR",
              "torch_bsr": "torch BSR", "deepsparse": "DeepSparse", "sr_auto": "sparsert auto",
              "sr_dense": "sparsert Dense", "sr_csr": "sparsert CSR", "sr_bsr": "sparsert BSR",
              "sr_nm": "sparsert NM"}


def deepsparse_seconds(r: Result) -> Optional[float]:
    """DeepSparse's time carried over to this process: torch dense here ÷ DeepSparse's speed-up over
    torch dense in its own process (absolute times of two processes are not comparable; ratios are)."""
    ds = r.deepsparse
    if not ds or "speedup_vs_torch_dense" not in ds or "torch_dense" not in r.timings:
        return None
    return r.timings["torch_dense"].median / ds["speedup_vs_torch_dense"]


def seconds(r: Result) -> Dict[str, float]:
    """Median seconds of every tool of the case, DeepSparse's carried over (`deepsparse_seconds`)."""
    out = {name: t.median for name, t in r.timings.items()}
    ds = deepsparse_seconds(r)
    if ds is not None:
        out["deepsparse"] = ds
    return out


def best_of(r: Result, names) -> Tuple[str, float]:
    secs = seconds(r)
    present = [n for n in names if n in secs]
    if not present:
        return "", math.nan
    name = min(present, key=secs.get)
    return name, secs[name]


def derived(r: Result) -> dict:
    """Speed-ups vs best dense and vs best existing sparse tool, and ×floor, of every tool."""
    secs = seconds(r)
    dense_name, dense_s = best_of(r, DENSE_TOOLS)
    sparse_name, sparse_s = best_of(r, SPARSE_TOOLS)
    out = {"best_dense": dense_name, "best_dense_s": dense_s, "best_sparse": sparse_name, "best_sparse_s": sparse_s,
           "vs_best_dense": {}, "vs_best_sparse": {}, "x_floor": {}}
    for name, s in secs.items():
        out["vs_best_dense"][name] = dense_s / s
        out["vs_best_sparse"][name] = sparse_s / s if sparse_name else math.nan
        out["x_floor"][name] = r.floor.ratio(s)
    if r.deepsparse and "timings_s" in r.deepsparse:  # DeepSparse's ×floor from its own time
        out["x_floor"]["deepsparse"] = r.floor.ratio(r.deepsparse["timings_s"]["deepsparse"]["median"])
    return out


# --- output --------------------------------------------------------------------------------------

COLUMNS = ["shape", "config", "batch", "thr", "nnz", "floor µs", "torch dense", "ORT dense", "torch CSR",
           "torch BSR4x4", "DeepSparse", "sr Dense", "sr CSR", "sr BSR", "sr NM", "sr auto", "auto format",
           "auto vs sparse", "check"]
WIDTHS = [10, 12, 5, 3, 10, 14, 21, 21, 27, 21, 24, 21, 21, 27, 21, 21, 12, 23, 5]


def fmt_us(seconds_: float) -> str:
    us = seconds_ * 1e6
    return f"{us:.1f}" if us < 100 else f"{us:,.0f}"


def cells(r: Result, ort_note: Optional[str], ds_wanted: bool) -> List[str]:
    d = derived(r)
    secs = seconds(r)

    def tool(name: str, suffix: str = "") -> str:
        if name in r.failed or (name == "torch_csr" and not r.torch_csr_form):
            return "FAIL"
        if name not in secs:
            return "-"
        return f"{fmt_us(secs[name])} · {d['vs_best_dense'][name]:.2f}x · {d['x_floor'][name]:.1f}F{suffix}"

    ds = r.deepsparse
    if not ds_wanted:
        ds_cell = "-"
    elif ds is None:
        ds_cell = "(pending)"
    elif "timings_s" in ds:
        ds_cell = (f"{fmt_us(ds['timings_s']['deepsparse']['median'])} · {ds['speedup_vs_torch_dense']:.2f}x td"
                   f" · {d['x_floor']['deepsparse']:.1f}F")
    else:
        ds_cell = "FAIL" if "differs" in ds.get("error", "") else "error"
    auto_vs = "-"
    if d["best_sparse"] and "sr_auto" in secs:
        auto_vs = f"{d['vs_best_sparse']['sr_auto']:.2f}x ({TOOL_NAMES[d['best_sparse']]})"
    bsr_suffix = f" {r.bsr_block[0]}x{r.bsr_block[1]}" + (f" fill {r.bsr_fill:.1f}" if r.bsr_fill > 1.005 else "")
    return [
        f"{r.shape[0]}x{r.shape[1]}", r.pattern.label, str(r.batch), str(r.threads), f"{r.nnz:,}",
        f"{fmt_us(r.floor.seconds)} {r.floor.bound}",
        tool("torch_dense"), tool("ort_dense") if ort_note is None else "-",
        tool("torch_csr", f" {r.torch_csr_form}"), tool("torch_bsr"), ds_cell,
        tool("sr_dense"), tool("sr_csr"), tool("sr_bsr", bsr_suffix), tool("sr_nm"), tool("sr_auto"),
        r.auto_format, auto_vs,
        "FAIL" if failures(r) else "ok",
    ]


def failures(r: Result) -> List[str]:
    """Tools whose output was wrong or raised (DeepSparse: wrong output only)."""
    out = list(r.failed)
    if r.deepsparse and "differs" in r.deepsparse.get("error", ""):
        out.append("deepsparse")
    return out


def text_row(values: List[str]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, WIDTHS)).rstrip()


def header_lines(args: argparse.Namespace, lims: Dict[int, machine.Limits], ort_note: Optional[str],
                 ds_version: Optional[str]) -> List[str]:
    cpus = os.cpu_count()
    lines = [
        f"date: {datetime.date.today().isoformat()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
        f"cpu: {machine.cpu_model()} ({cpus} logical CPUs, L3 {next(iter(lims.values())).l3_bytes / 2**20:.0f} MiB); "
        f"threads: {args.threads}",
        f"torch {torch.__version__}; sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}; "
        + (f"onnxruntime {baselines.ort_version()}" if ort_note is None else ort_note)
        + (f"; {ds_version}" if ds_version else "; DeepSparse not run (--deepsparse PYTHON runs it)"),
    ]
    lines += ["machine " + machine.summary(lim) for lim in lims.values()]
    lines += [
        f"min-time {args.min_time} s per tool and case; medians",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
    ]
    return lines


def table_lines(results: List[Result], ort_note: Optional[str], ds_wanted: bool) -> List[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r, ort_note, ds_wanted)) + " |" for r in results]
    return lines


def write_markdown(path: str, head: List[str], results: List[Result], ort_note: Optional[str],
                   ds_wanted: bool) -> None:
    kernels = sorted({k for r in results for k in r.kernels.values()})
    lines = ["# sparsert kernels vs torch, onnxruntime and DeepSparse", ""] + [f"- {h}" for h in head] + [
        f"- sparsert kernels used: {', '.join(kernels)}",
        "",
        "Cells: median µs · speed-up vs best dense (the faster of torch dense and ORT dense) · ×floor; "
        "DeepSparse: µs in its own process · speed-up vs torch dense there (td) · ×floor. "
        "Columns: see bench/README.md.",
        "",
    ] + table_lines(results, ort_note, ds_wanted)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def jsonl_record(r: Result) -> dict:
    d = derived(r)
    return {
        "shape": list(r.shape), "config": r.pattern.label, "pattern": r.pattern.kind, "density": r.pattern.density,
        "batch": r.batch, "threads": r.threads, "nnz": r.nnz,
        "bsr_block": list(r.bsr_block), "bsr_fill": r.bsr_fill, "kernels": r.kernels, "auto_format": r.auto_format,
        "failed": failures(r), "torch_csr_form": r.torch_csr_form, "rel_err": r.errors,
        "floor": {"seconds": r.floor.seconds, "bound": r.floor.bound, "bytes": r.floor.nbytes,
                  "flops": r.floor.flops, "weight_encoding": r.floor_encoding},
        "timings_s": {n: {"median": t.median, "p10": t.p10, "p90": t.p90, "calls": t.calls}
                      for n, t in r.timings.items()},
        "deepsparse": r.deepsparse,
        "best_dense": d["best_dense"], "best_sparse": d["best_sparse"],
        "vs_best_dense": d["vs_best_dense"], "vs_best_sparse": d["vs_best_sparse"], "x_floor": d["x_floor"],
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
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="a named grid (default: 'default'); options given explicitly still win: "
                   + "; ".join(f"{k}: {v['shapes']} / {v['densities']} / batch {v['batches']}" for k, v in PRESETS.items()))
    p.add_argument("--quick", action="store_true", help="the same as --preset quick (CI's smoke pass)")
    p.add_argument("--shapes", help=f"W shapes OUTxIN (default {PRESETS['default']['shapes']})")
    p.add_argument("--densities", help="patterns: 0.1 = unstructured magnitude, 2:4 = N:M, "
                   f"bsr4x4:0.1 / bsr8x1:0.1 / bsr16x1:0.1 = blocks by L1 norm (default {PRESETS['default']['densities']})")
    p.add_argument("--batches", help=f"batch sizes (default {PRESETS['default']['batches']})")
    p.add_argument("--threads", default="1", help="thread counts for every tool alike (default 1)")
    p.add_argument("--min-time", type=float,
                   help=f"seconds of timed calls per tool and case (default {PRESETS['default']['min_time']})")
    baselines.add_tool_options(
        p, "where the ONNX graphs and inputs for DeepSparse go (kept); default a temporary folder, removed")
    p.add_argument("--markdown", metavar="PATH", help="also write the table as markdown")
    p.add_argument("--jsonl", metavar="PATH", help="also write every case (p10/p90, errors, kernels, floors) as JSON lines")
    p.add_argument("--plot", metavar="PATH.png", help="also draw speed-up vs density per tool, batch 1 and 64 "
                   "(needs matplotlib: pip install \".[bench]\")")
    args = p.parse_args(argv)
    preset = "quick" if args.quick else (args.preset or "default")
    for key, value in PRESETS[preset].items():
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
    if args.plot:
        import plot  # fail now, not after the sweep, when matplotlib is missing

        plot.require_matplotlib()

    ort_note = "onnxruntime left out (--no-ort)" if args.no_ort else baselines.ort_missing()
    ds_job = baselines.DeepSparseJob(args.deepsparse, "kernels", args.deepsparse_workdir) if args.deepsparse else None
    if os.getloadavg()[0] > 0.5:
        print("kernels.py: warning: the host is busy (1-min load > 0.5); with 2 cores, other work "
              "skews every time and ruins 2-thread rows", file=sys.stderr)
    lims = {t: machine.limits(t, refresh=args.refresh_machine, quick=preset == "quick") for t in threads}
    head = header_lines(args, lims, ort_note, ds_job.version if ds_job else None)
    for line in head:
        print(line)
    print()
    print(text_row(COLUMNS))
    results: List[Result] = []
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    for si, (out_f, in_f) in enumerate(shapes):
        for pi, pattern in enumerate(patterns):
            wts = build_weights(pruned_weight(out_f, in_f, pattern, rng), pattern,
                                want_onnx=ort_note is None or ds_job is not None)
            sessions = {t: baselines.ort_session(wts.onnx, t) for t in threads} if ort_note is None else {}
            onnx_name = ds_job.save(f"w{si}_{pi}.onnx", wts.onnx) if ds_job else ""
            for batch in batches:
                x_name = ds_job.save(f"x{si}_{pi}_b{batch}.npy", make_input(batch, in_f).numpy()) if ds_job else ""
                for t in threads:
                    r = run_case(wts, pattern, batch, t, args.min_time, lims[t], sessions.get(t))
                    results.append(r)
                    if ds_job:
                        ds_job.add(r.key, onnx=onnx_name, x=x_name, batch=batch, threads=t)
                    print(text_row(cells(r, ort_note, ds_job is not None)), flush=True)
            del wts, sessions
    print(f"\n{len(results)} cases in {time.perf_counter() - start:.0f} s")
    if ds_job:
        records = ds_job.run(args.min_time, 3, MAX_REL_ERR)
        ds_job.close()
        for r in results:
            r.deepsparse = records.get(r.key, {"error": "no result from the runner"})
        print("\nWith DeepSparse merged:\n")
        print(text_row(COLUMNS))
        for r in results:
            print(text_row(cells(r, ort_note, True)))
    failed = [r for r in results if failures(r)]
    print(f"\n{len(results)} cases; {len(failed)} FAIL (relative error > {MAX_REL_ERR:g} against F.linear, "
          "or an exception)")
    for r in failed:
        errs = ", ".join(f"{n} {r.errors.get(n, (r.deepsparse or {}).get('rel_err', math.nan)):.2e}" for n in failures(r))
        print(f"  FAIL {r.shape[0]}x{r.shape[1]} {r.pattern.label} batch {r.batch} threads {r.threads}: {errs}")
    print("sparsert kernels used: " + ", ".join(sorted({k for r in results for k in r.kernels.values()})))
    if args.markdown:
        write_markdown(args.markdown, head, results, ort_note, ds_job is not None)
    records = [jsonl_record(r) for r in results]
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for rec in records:
                f.write(json.dumps(rec) + "\n")
    if args.plot:
        import plot

        plot.plot_kernels(records, args.plot, title=f"{machine.cpu_model()}, {datetime.date.today().isoformat()}")
        print(f"plot: {args.plot}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
