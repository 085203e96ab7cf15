#!/usr/bin/env python3
"""Whole models: sparsert.load(model).run(x) against torch eager, torch eager with CSR weights,
onnxruntime and DeepSparse on the same pruned weights, with each time's distance from the floor.

Four architectures (bench/model_zoo.py: an MLP 784-2048-2048-10, ResNet-18, a MobileNetV2-style net,
a 2-layer BERT-base-sized encoder at sequence 128), pruned as the issue's end-to-end targets say
(`g90`: N(0,1) weights, global magnitude pruning to 90%, so every layer really is ~90% sparse) or
layer by layer (`u80`/`u90`/`u95`, `2:4`, `bsr4x4_90`), at batch 1 and 32, 1 and 2 threads. torch eager
runs the zero-filled dense weights; "torch CSR" the same model with every Linear computing
`torch.addmm` (batch × tokens > 1) or `torch.mv` on an int32-index CSR weight (models without
convolutions only: torch has no sparse convolution); sparsert the formats its cost model picks
for that batch and thread count; onnxruntime (optional) the model exported to ONNX, in a block of its
own; DeepSparse 1.8 (with --deepsparse) the same ONNX graph in its own process. Outputs are checked
against torch eager first; a wrong one fails the case and makes the exit status 1.

    python bench/models.py --quick                                  # mlp g90, batch 1, 1 thread
    python bench/models.py --markdown bench/results/models.md       # the default grid
    python bench/models.py --models bert2 --configs g90 --batches 1,32 --deepsparse ~/.cache/sparsert/deepsparse-venv/bin/python
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

import sparsert
from sparsert._timing import Timing, time_blocks

import baselines
import machine
import model_zoo
from model_zoo import CONFIGS, MODELS

warnings.filterwarnings("ignore", message=r".*were assigned during export.*")
warnings.filterwarnings("ignore", message=r"Sparse CSR tensor support is in beta state")
warnings.filterwarnings("ignore", message=r"Sparse invariant checks are implicitly disabled")
warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")

MAX_REL_ERR = 1e-3
DEFAULT_CONFIGS = "dense,g90,2:4,bsr4x4_90"
ONNX_OPSET = 14  # the first with scaled_dot_product_attention in the TorchScript exporter; DeepSparse 1.8 reads it


# --- torch eager with CSR weights ----------------------------------------------------------------

class CsrLinear(nn.Module):
    """A Linear whose weight is an int32-index CSR tensor: `torch.mv` for one row, else
    `torch.addmm(b, W, xᵀ)` (the forms the anchors found fastest; F.linear with a CSR weight is ~5x slower)."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        csr = lin.weight.detach().to_sparse_csr()
        self.w = torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(),
                                         size=csr.shape)
        self.b = lin.bias.detach() if lin.bias is not None else torch.zeros(lin.out_features)
        self.out_features = lin.out_features

    def forward(self, x):
        x2 = x.reshape(-1, x.shape[-1])
        if x2.shape[0] == 1:
            y = (torch.mv(self.w, x2[0]) + self.b)[None]
        else:
            y = torch.addmm(self.b[:, None], self.w, x2.t().contiguous()).t()
        return y.reshape(*x.shape[:-1], self.out_features)


def with_csr_linears(model: nn.Module) -> Optional[nn.Module]:
    """A copy of `model` with every Linear swapped for CsrLinear; None when it has convolutions."""
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return None
    out = copy.deepcopy(model)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, CsrLinear(child))
    return out.eval()


# --- floor ---------------------------------------------------------------------------------------

@dataclass
class ModelCost:
    weight_bytes: int  # every Linear/Conv weight at its cheapest encoding, plus biases
    encodings: Dict[str, int]  # encoding -> layers
    flops: float  # sparse FLOPs (2·nnz·rows per layer) + the attention matmuls, per call


def model_cost(model: nn.Module, x: torch.Tensor) -> ModelCost:
    """The floor's inputs for one call at x's batch: weights at their cheapest encodings (machine.weight_bytes,
    embeddings, norms and batch-norm statistics left out as the anchors did) and FLOPs counted by hooks."""
    nbytes, encodings, flops = 0, {}, [0.0]
    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            b, enc = machine.weight_bytes(m.weight.detach().numpy())
            nbytes += b + (4 * m.weight.shape[0] if m.bias is not None else 0)
            encodings[enc] = encodings.get(enc, 0) + 1
            nnz = int(torch.count_nonzero(m.weight))
            if isinstance(m, nn.Linear):
                hooks.append(m.register_forward_hook(
                    lambda mod, inp, out, nnz=nnz: flops.__setitem__(0, flops[0] + 2.0 * nnz * (inp[0].numel() // mod.in_features))))
            else:
                hooks.append(m.register_forward_hook(
                    lambda mod, inp, out, nnz=nnz: flops.__setitem__(0, flops[0] + 2.0 * nnz * out.shape[0] * out.shape[2] * out.shape[3])))
        elif isinstance(m, model_zoo.Encoder):  # q·kᵀ and p·v: 2 · (2·b·s·s·d), dense
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out: flops.__setitem__(0, flops[0] + 4.0 * inp[0].shape[0] * inp[0].shape[1] ** 2 * inp[0].shape[2])))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return ModelCost(nbytes, encodings, flops[0])


# --- one case ------------------------------------------------------------------------------------

@dataclass
class Row:
    model: str
    config: str
    batch: int
    threads: int
    floor: machine.Floor
    cost: ModelCost
    timings: Dict[str, Timing] = field(default_factory=dict)
    errors: Dict[str, float] = field(default_factory=dict)
    failed: List[str] = field(default_factory=list)
    formats: str = ""
    deepsparse: Optional[dict] = None

    @property
    def key(self) -> str:
        return f"{self.model}|{self.config}|b{self.batch}|t{self.threads}"


def run_case(row: Row, model: nn.Module, csr_model: Optional[nn.Module], x: torch.Tensor, ort_session,
             min_time: float) -> None:
    torch.set_num_threads(row.threads)
    with torch.no_grad():
        ref = model(x)
    compiled = sparsert.load(model, example_inputs=(x,), num_threads=row.threads)
    row.formats = "/".join(sorted({c.format for c in compiled.plan}))

    def eager(m):
        def call():
            with torch.no_grad():
                return m(x)
        return call

    main: Dict[str, Callable[[], object]] = {"torch_eager": eager(model), "sparsert": lambda: compiled.run(x)}
    if csr_model is not None:
        main["torch_csr"] = eager(csr_model)
    ort_block: Dict[str, Callable[[], object]] = {}
    if ort_session is not None:
        ort_block["ort"] = baselines.ort_call(ort_session, x.numpy())
    # At 2+ threads each runtime's idle workers spin after a call and take a core from the next tool's
    # (profile_model.py --interleave-eager: ResNet-18 batch 1 15.0 ms instead of 8.0): one block each.
    sr_block = {"sparsert": main.pop("sparsert")} if row.threads > 1 else {}
    blocks = []
    for block in (main, sr_block, ort_block):
        timed = {}
        for name, fn in block.items():
            try:
                row.errors[name] = baselines.rel_err(fn(), ref)
            except Exception as exc:  # reported like a wrong answer; the grid goes on
                print(f"  {row.key} {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                row.errors[name] = float("nan")
            if row.errors[name] < MAX_REL_ERR:
                timed[name] = fn
            else:
                row.failed.append(name)
        blocks.append(timed)
    if any(blocks):
        row.timings = time_blocks(blocks, min_time=min_time)


# --- figures and output --------------------------------------------------------------------------

TOOLS = ["torch_eager", "torch_csr", "ort", "deepsparse", "sparsert"]
NAMES = {"torch_eager": "torch eager", "torch_csr": "torch CSR", "ort": "ORT", "deepsparse": "DeepSparse",
         "sparsert": "sparsert"}


def seconds(row: Row) -> Dict[str, float]:
    """Median seconds per tool; DeepSparse's carried over from its process by its ratio to torch eager there."""
    out = {n: t.median for n, t in row.timings.items()}
    ds = row.deepsparse
    if ds and "speedup_vs_torch_dense" in ds and "torch_eager" in out:
        out["deepsparse"] = out["torch_eager"] / ds["speedup_vs_torch_dense"]
    return out


def derived(row: Row) -> dict:
    secs = seconds(row)

    def best(names):
        present = [n for n in names if n in secs]
        return (min(present, key=secs.get), secs[min(present, key=secs.get)]) if present else ("", math.nan)

    dense_name, dense_s = best(("torch_eager", "ort"))
    sparse_name, sparse_s = best(("torch_csr", "deepsparse"))
    x_floor = {n: row.floor.ratio(s) for n, s in secs.items()}
    if row.deepsparse and "timings_s" in row.deepsparse:
        x_floor["deepsparse"] = row.floor.ratio(row.deepsparse["timings_s"]["deepsparse"]["median"])
    eager = secs.get("torch_eager", math.nan)
    return {"best_dense": dense_name, "best_dense_s": dense_s, "best_sparse": sparse_name, "best_sparse_s": sparse_s,
            "vs_eager": {n: eager / s for n, s in secs.items()}, "x_floor": x_floor,
            "sparsert_vs_best_dense": dense_s / secs["sparsert"] if "sparsert" in secs else math.nan,
            "sparsert_vs_best_sparse": sparse_s / secs["sparsert"] if "sparsert" in secs and sparse_name else math.nan}


HEADER = ["model", "pruning", "batch", "thr", "floor ms", "torch eager", "torch CSR", "ORT", "DeepSparse",
          "sparsert", "vs best dense", "vs best sparse", "formats", "check"]


def fmt_ms(s: float) -> str:
    ms = s * 1e3
    return f"{ms:.3f}" if ms < 1 else f"{ms:,.2f}"


def cells(row: Row, ort_note: Optional[str], ds_wanted: bool) -> List[str]:
    d = derived(row)
    secs = seconds(row)

    def tool(name: str) -> str:
        if name in row.failed:
            return "FAIL"
        if name == "deepsparse":
            ds = row.deepsparse
            if not ds_wanted:
                return "-"
            if ds is None:
                return "(pending)"
            if "timings_s" not in ds:
                return "FAIL" if "differs" in ds.get("error", "") else "error"
            return (f"{fmt_ms(ds['timings_s']['deepsparse']['median'])} · {ds['speedup_vs_torch_dense']:.2f}x td"
                    f" · {d['x_floor']['deepsparse']:.1f}F")
        if name not in secs:
            return "-"
        return f"{fmt_ms(secs[name])} · {d['vs_eager'][name]:.2f}x · {d['x_floor'][name]:.1f}F"

    vs_dense = f"{d['sparsert_vs_best_dense']:.2f}x ({NAMES[d['best_dense']]})" if d["best_dense"] and "sparsert" in secs else "-"
    vs_sparse = f"{d['sparsert_vs_best_sparse']:.2f}x ({NAMES[d['best_sparse']]})" if d["best_sparse"] and "sparsert" in secs else "-"
    return [row.model, row.config, str(row.batch), str(row.threads), f"{fmt_ms(row.floor.seconds)} {row.floor.bound}",
            tool("torch_eager"), tool("torch_csr"), tool("ort") if ort_note is None else "-", tool("deepsparse"),
            tool("sparsert"), vs_dense, vs_sparse, row.formats, "FAIL" if failures(row) else "ok"]


def failures(row: Row) -> List[str]:
    out = list(row.failed)
    if row.deepsparse and "differs" in row.deepsparse.get("error", ""):
        out.append("deepsparse")
    return out


def jsonl_record(row: Row) -> dict:
    d = derived(row)
    return {"model": row.model, "config": row.config, "batch": row.batch, "threads": row.threads,
            "formats": row.formats, "failed": failures(row), "rel_err": row.errors,
            "floor": {"seconds": row.floor.seconds, "bound": row.floor.bound, "bytes": row.floor.nbytes,
                      "flops": row.floor.flops, "weight_encodings": row.cost.encodings},
            "timings_s": {n: {"median": t.median, "p10": t.p10, "p90": t.p90, "calls": t.calls}
                          for n, t in row.timings.items()},
            "deepsparse": row.deepsparse, **d}


def header_lines(args, lims: Dict[int, machine.Limits], ort_note: Optional[str], ds_version: Optional[str]) -> List[str]:
    return [
        f"date: {datetime.date.today()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
        f"cpu: {machine.cpu_model()} ({os.cpu_count()} logical CPUs); torch {torch.__version__}; "
        f"sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}; "
        + (f"onnxruntime {baselines.ort_version()}" if ort_note is None else ort_note)
        + (f"; {ds_version}" if ds_version else "; DeepSparse not run (--deepsparse PYTHON runs it)"),
    ] + ["machine " + machine.summary(lim) for lim in lims.values()] + [
        f"min-time {args.min_time} s per tool and case; medians",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
    ]


def text_line(values: List[str]) -> str:
    return " | ".join(values)


# --- main ----------------------------------------------------------------------------------------

def export_onnx(model: nn.Module, x: torch.Tensor, path: str) -> None:
    """The model as ONNX with a dynamic batch, by the TorchScript exporter (the dynamo one needs
    onnxscript, which the anchors deliberately did not install)."""
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=ONNX_OPSET, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def run(args) -> int:
    ort_note = "onnxruntime left out (--no-ort)" if args.no_ort else baselines.ort_missing()
    ds_job = baselines.DeepSparseJob(args.deepsparse, "models", args.deepsparse_workdir) if args.deepsparse else None
    if os.getloadavg()[0] > 0.5:
        print("models.py: warning: the host is busy (1-min load > 0.5); with 2 cores, other work "
              "skews every time and ruins 2-thread rows", file=sys.stderr)
    lims = {t: machine.limits(t, refresh=args.refresh_machine, quick=args.quick) for t in args.threads}
    head = header_lines(args, lims, ort_note, ds_job.version if ds_job else None)
    print("\n".join(head) + "\n")
    print(text_line(HEADER))
    scratch = tempfile.mkdtemp(prefix="sparsert-models-") if ort_note is None and ds_job is None else None
    rows: List[Row] = []
    started = time.time()
    try:
        for name in args.models:
            for config in args.configs:
                model = model_zoo.build(name, config)
                csr_model = with_csr_linears(model)
                onnx_path = state_name = ""
                if ort_note is None or ds_job:
                    onnx_name = f"{name}_{config.replace(':', '-')}.onnx"
                    onnx_path = ds_job.path(onnx_name) if ds_job else os.path.join(scratch, onnx_name)
                    export_onnx(model, model_zoo.make_input(name, 1), onnx_path)
                    if ds_job:
                        state_name = ds_job.save(f"{name}_{config.replace(':', '-')}.pt", model.state_dict())
                sessions: Dict[int, object] = {}
                for batch in args.batches:
                    x = model_zoo.make_input(name, batch)
                    mc = model_cost(model, x)
                    x_name = ds_job.save(f"{name}_{config.replace(':', '-')}_b{batch}.npy", x.numpy()) if ds_job else ""
                    for threads in args.threads:
                        row = Row(name, config, batch, threads, machine.floor(lims[threads], mc.weight_bytes, mc.flops), mc)
                        if ort_note is None and threads not in sessions:
                            sessions[threads] = baselines.ort_session(onnx_path, threads)
                        run_case(row, model, csr_model, x, sessions.get(threads), args.min_time)
                        rows.append(row)
                        if ds_job:
                            ds_job.add(row.key, onnx=os.path.basename(onnx_path), state_dict=state_name, x=x_name,
                                       model=name, batch=batch, threads=threads)
                        print(text_line(cells(row, ort_note, ds_job is not None)), flush=True)
                del sessions, model, csr_model
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    elapsed = time.time() - started
    if ds_job:
        records = ds_job.run(args.min_time, 3, MAX_REL_ERR)
        ds_job.close()
        for row in rows:
            row.deepsparse = records.get(row.key, {"error": "no result from the runner"})
    failed = [r for r in rows if failures(r)]
    lines = ["# sparsert models vs torch, onnxruntime and DeepSparse", ""] + [f"- {h}" for h in head] + [
        f"- {len(rows)} cases in {elapsed:.0f} s (DeepSparse's process not counted); {len(failed)} FAIL", "",
        "Cells: median ms · speed-up vs torch eager (dense) · ×floor; DeepSparse: ms in its own process · "
        "speed-up vs torch eager there (td) · ×floor. Columns: see bench/README.md.", "",
        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
    ] + ["| " + " | ".join(cells(r, ort_note, ds_job is not None)) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    for r in failed:
        print(f"FAIL {r.key}: " + ", ".join(f"{n} {r.errors.get(n, math.nan):.1e}" for n in failures(r)))
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(text)
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            for r in rows:
                f.write(json.dumps(jsonl_record(r)) + "\n")
    return 1 if failed else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--configs", default=DEFAULT_CONFIGS,
                   help=f"comma-separated prunings (default {DEFAULT_CONFIGS}): " + ", ".join(CONFIGS))
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--quick", action="store_true", help="mlp, g90, batch 1, 1 thread, min-time 0.05")
    baselines.add_tool_options(
        p, "where the ONNX graphs, state dicts and inputs for DeepSparse go (kept); default a temporary folder")
    p.add_argument("--markdown", help="also write the table here")
    p.add_argument("--jsonl", help="also write every case (p10/p90, errors, floors) as JSON lines")
    args = p.parse_args()
    if args.quick:
        args.models, args.configs, args.batches, args.threads, args.min_time = "mlp", "g90", "1", "1", 0.05
    args.models = [v for v in args.models.split(",") if v]
    args.configs = [v for v in args.configs.split(",") if v]
    try:
        args.batches = [int(v) for v in args.batches.split(",")]
        args.threads = [int(v) for v in args.threads.split(",")]
    except ValueError:
        p.error(f"--batches {args.batches!r} / --threads {args.threads!r} not understood (expected e.g. 1,32)")
    unknown = [m for m in args.models if m not in MODELS] + [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown models/configs {unknown} (expected models from {', '.join(MODELS)}, "
                f"prunings from {', '.join(CONFIGS)})")
    if args.min_time <= 0 or min(args.batches + args.threads) < 1:
        p.error("--min-time, --batches and --threads must be positive")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
