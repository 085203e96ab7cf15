#!/usr/bin/env python3
"""torchvision classifiers at full size, dense weights: sparsert against onnxruntime and torch eager.

The promise "never slower than the best dense runtime" checked on real architectures, not the
look-alikes of bench/model_zoo.py: each model is torchvision's own (`weights=None`, randomly
initialised with norm statistics randomised, nothing downloaded), in eval mode, on one fixed 224 × 224
input. sparsert compiles it
with `sparsert.load(model, example_inputs=...)`; onnxruntime runs the same weights exported to ONNX
(TorchScript exporter); every output is checked against torch eager first (‖y − ref‖/‖ref‖ below
1e-3, or the case fails and the exit status is 1). Times are medians of interleaved rounds in one
process (sparsert._timing.time_blocks), one block per tool at 2+ threads, as in bench/models.py.

    python bench/vision.py --quick                                  # mobilenet_v3_small, short timing
    python bench/vision.py --markdown bench/results/vision_zen4_t1.md
    python bench/vision.py --models mnasnet1_0,efficientnet_b0 --batch 1 --threads 1

Needs torchvision (the `test` extra) and onnxruntime for the comparison.
"""

from __future__ import annotations

import argparse
import io
import datetime
import math
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "python"))

import coverage_zoo  # noqa: E402  before torchvision: it lets torchvision import beside the CPU torch
import torch  # noqa: E402

import sparsert  # noqa: E402
from sparsert._timing import time_blocks  # noqa: E402

import baselines  # noqa: E402
import machine  # noqa: E402

warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
warnings.filterwarnings("ignore", message=r".*legacy TorchScript-based ONNX export.*")

MAX_REL_ERR = 1e-3
DEFAULT_MODELS = ("mobilenet_v3_small,mobilenet_v3_large,mobilenet_v2,efficientnet_b0,mnasnet1_0,shufflenet_v2_x1_0,"
                  "squeezenet1_1,regnet_y_400mf,resnet18,resnet50,googlenet,densenet121")
ONNX_OPSET = 17


def onnx_bytes(model: torch.nn.Module, x: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=ONNX_OPSET)
    return buf.getvalue()


def run_model(name: str, batch: int, threads: int, min_time: float, with_ort: bool) -> dict:
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    # Running statistics and affine parameters away from 0 and 1: freshly initialised, some models
    # (googlenet) compute all-zero features and the check would compare biases only.
    coverage_zoo.randomise_norms(model)
    x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    torch.set_num_threads(threads)
    with torch.no_grad():
        ref = model(x)
    if not ref.any():  # vit_b_16's head starts at zero: every tool would match it with anything
        raise ValueError(f"{name}: torch's output is all zeros for this input, so no output could be checked")
    compiled = sparsert.load(model, example_inputs=(x,), num_threads=threads)

    def eager():
        with torch.no_grad():
            return model(x)

    calls = {"torch": eager, "sparsert": lambda: compiled.run(x)}
    errors, timed = {}, {}

    def failed(tool: str, exc: Exception) -> None:  # reported like a wrong answer; the sweep goes on
        print(f"  {name} {tool}: {type(exc).__name__}: {exc}", file=sys.stderr)
        errors[tool] = math.nan

    if with_ort:
        try:
            calls["ort"] = baselines.ort_call(baselines.ort_session(onnx_bytes(model, x), threads), x.numpy())
        except Exception as exc:
            failed("ort", exc)
    for tool, fn in calls.items():
        try:
            errors[tool] = baselines.rel_err(fn(), ref)
        except Exception as exc:
            failed(tool, exc)
        if errors[tool] < MAX_REL_ERR:
            timed[tool] = fn
    # At 2+ threads a runtime's idle workers spin after its call and take a core from the next tool's.
    blocks = [timed] if threads == 1 else [{t: f} for t, f in timed.items()]
    times = {t: v.median for t, v in time_blocks(blocks, min_time=min_time).items()} if timed else {}
    return {"name": name, "errors": errors, "times": times}


def cells(r: dict) -> list:
    t, e = r["times"], r["errors"]
    dense = [k for k in ("ort", "torch") if k in t]
    best = min(dense, key=t.get) if dense else ""
    ratio = t[best] / t["sparsert"] if best and "sparsert" in t else math.nan
    ms = lambda k: f"{t[k] * 1e3:.2f}" if k in t else ("FAIL" if k in e else "—")  # noqa: E731
    bad = [k for k, v in e.items() if not v < MAX_REL_ERR]
    return [r["name"], ms("sparsert"), ms("ort"), ms("torch"), f"{ratio:.2f} ({best})" if best else "—",
            f"{e.get('sparsert', math.nan):.1e}", "FAIL " + ",".join(bad) if bad else "ok"]


HEADER = ["model", "sparsert ms", "ORT ms", "torch ms", "× best dense", "sparsert rel err", "check"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated torchvision.models names")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of calls per tool and model")
    p.add_argument("--quick", action="store_true", help="mobilenet_v3_small, min-time 0.1")
    p.add_argument("--no-ort", action="store_true", help="leave onnxruntime out")
    p.add_argument("--markdown", help="also write the table here")
    args = p.parse_args()
    if args.quick:
        args.models, args.min_time = "mobilenet_v3_small", 0.1
    if args.batch < 1 or args.threads < 1 or args.min_time <= 0:
        p.error("--batch, --threads and --min-time must be positive")
    try:
        import torchvision
    except ImportError:
        p.error("needs torchvision (pip install 'sparsert[test]')")
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if not callable(getattr(torchvision.models, m, None))]
    if unknown:
        p.error(f"not in torchvision.models: {', '.join(unknown)}")
    ort_note = "onnxruntime left out (--no-ort)" if args.no_ort else baselines.ort_missing()
    sparsert.set_num_threads(args.threads)
    head = [f"date: {datetime.date.today()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
            f"cpu: {machine.cpu_model()} ({os.cpu_count()} logical CPUs); torch {torch.__version__}, "
            f"torchvision {torchvision.__version__}; sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}; "
            + (ort_note or f"onnxruntime {baselines.ort_version()}"),
            f"batch {args.batch}, {args.threads} thread(s); medians of interleaved rounds, min-time {args.min_time} s "
            "a tool; × best dense: the faster of ORT and torch eager over sparsert (above 1: sparsert faster)",
            "command: python " + " ".join(shlex.quote(a) for a in sys.argv)]
    print("\n".join(head) + "\n\n" + " | ".join(HEADER), flush=True)
    rows, started = [], time.time()
    for name in names:
        r = run_model(name, args.batch, args.threads, args.min_time, ort_note is None)
        rows.append(r)
        print(" | ".join(cells(r)), flush=True)
    failed = [r["name"] for r in rows if any(not v < MAX_REL_ERR for v in r["errors"].values())]
    text = "\n".join(["# torchvision classifiers, dense: sparsert vs onnxruntime and torch eager", ""]
                     + [f"- {h}" for h in head]
                     + [f"- {len(rows)} models in {time.time() - started:.0f} s; {len(failed)} FAIL", "",
                        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
                     + ["| " + " | ".join(cells(r)) + " |" for r in rows]) + "\n"
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(text)
    for name in failed:
        print(f"FAIL {name}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
