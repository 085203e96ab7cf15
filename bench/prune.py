#!/usr/bin/env python3
"""Pruning that pays, on real data: scikit-learn's digits (1797 8×8 images shipped with it, no download).

Trains a small MLP (64-512-512-10) and a small CNN ((3×3 conv → batch norm → ReLU) × 2 with 8 and 16
channels → linear), then prunes each with every criterion of sparsert.prune × pattern (unstructured
and 4×4 blocks at 50/80/90/95% sparsity, 2:4) and reports test accuracy one-shot and after a short
fine-tune (masks held), and the measured speed-up of the sparsert-loaded pruned model over the
original dense model in torch eager (batch 32, 1 thread, timed side by side, outputs checked first).
Then it plans each model with sparsert.prune.plan (the MLP for 3×, the CNN for 1.15×), carries the
plan out, fine-tunes and measures it the same way: the MLP's plan must measure ≥ 2.5× over torch eager,
and each plan's predicted time must be within 25% of the measured (PASS/FAIL; exit status 1 on FAIL).
--quick is CI's smoke pass on any host: it reports both without gating on them, and a plan target
this host's cost model puts out of reach is planned at 95% of the best it reaches, and said so; only
wrong outputs and plans that fail for another reason fail it. Most of the CNN's time is im2col and layout, which
pruning does not shorten (the plan measures it as a fixed cost): 3× is out of its reach, and its
plan's speed is reported, not gated.

    python bench/prune.py --quick        # ~40 s: magnitude and random at 90% and 2:4, the plans
    python bench/prune.py --markdown bench/results/prune_digits.md --svg bench/results/prune_digits.svg

The MLP's hidden layers are 512 wide so that its matrix products, not torch's per-module dispatch,
set its eager time at batch 32: the 128-64 MLP of the tests runs twice as fast under sparsert
before any pruning, which would flatter every row. The grid prunes every layer but the classifier
to the same density (see hidden_layers); the planner decides for every layer. Wanda and SparseGPT
are defined on Linear layers only, so they are run on the MLP; SparseGPT makes unstructured and
N:M masks only.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import math
import os
import platform
import shlex
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import sparsert
import sparsert.prune as prune
from sparsert._timing import time_interleaved

warnings.filterwarnings("ignore", message=r".*were assigned during export.*")

BATCH = 32
THREADS = 1
MAX_REL_ERR = 1e-3
# The speed-up asked of the planner, over the dense sparsert model. The CNN's best reachable is
# 1.2-1.4x (it moves with the host's load, which the measured im2col time carries).
PLAN_TARGETS = {"mlp": 3.0, "cnn": 1.15}
PLAN_FLOOR = 2.5  # the least the MLP's plan must measure over torch eager
REACHABLE_SHARE = 0.95  # --quick plans an unreachable target at this share of the best reachable
PREDICTION_TOLERANCE = 0.25  # how far a plan's predicted time may be from the measured, either way
DENSITIES = (0.5, 0.2, 0.1, 0.05)  # kept: 50/80/90/95% sparsity


# --- data and models (the essentials of tests/python/prune_models.py) ---------------------------

def digits() -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)``: 64 features in [0, 1], a fixed 1347 / 450 split."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1347], y[:1347], x[1347:], y[1347:]


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 64, 10))


MODELS = {"mlp": (mlp, "MLP 64-512-512-10"), "cnn": (cnn, "CNN conv8-conv16-linear")}


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float, seed: int = 0) -> nn.Module:
    """``steps`` Adam steps on shuffled batches of 64; masks put on by sparsert.prune stay applied."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    order = torch.randperm(len(x), generator=g)
    for step in range(steps):
        start = (step * 64) % len(x)
        if start + 64 > len(x):
            order, start = torch.randperm(len(x), generator=g), 0
        batch = order[start:start + 64]
        optimizer.zero_grad()
        F.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    return model.eval()


# --- pruning -------------------------------------------------------------------------------------

Calibration = List[Tuple[Tensor, Tensor]]
SCORES: Dict[str, Callable[[nn.Module, Calibration], Dict[str, Tensor]]] = {
    "magnitude": lambda m, cal: prune.magnitude(m),
    "random": lambda m, cal: prune.random(m, torch.Generator().manual_seed(0)),
    "taylor": lambda m, cal: prune.taylor(m, cal, F.cross_entropy),
    "fisher": lambda m, cal: prune.fisher(m, cal, F.cross_entropy),
    "wanda": lambda m, cal: prune.wanda(m, [x for x, _ in cal]),
}
CRITERIA = (*SCORES, "sparsegpt")  # SparseGPT prunes and reconstructs in one step: see prune_with
LINEAR_ONLY = ("wanda", "sparsegpt")
PATTERNS = {
    "unstructured": prune.unstructured,
    "2:4": lambda scores, density: prune.nm(scores, 2, 4),
    "bsr4x4": lambda scores, density: prune.blocks(scores, density, (4, 4)),
}


def configs(model_name: str, criteria: List[str], patterns: List[str], densities: Tuple[float, ...]):
    for criterion in criteria:
        if model_name != "mlp" and criterion in LINEAR_ONLY:
            continue
        for pattern in patterns:
            if criterion == "sparsegpt" and pattern.startswith("bsr"):
                continue
            for density in [0.5] if pattern == "2:4" else densities:
                yield criterion, pattern, density


def hidden_layers(model: nn.Module) -> List[str]:
    """The weights pruned: every Linear and Conv2d but the classifier. Criteria at convergence drop
    whole classes from it (Taylor and Fisher at 90% kept no weight for 5 of the 10), and pruning
    papers keep it dense too."""
    return [f"{name}.weight" for name, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))][:-1]


def prune_with(model: nn.Module, criterion: str, pattern: str, density: float, calibration: Calibration) -> None:
    hidden = hidden_layers(model)
    if criterion == "sparsegpt":
        linears = [key for key in hidden if isinstance(model.get_submodule(key[:-len(".weight")]), nn.Linear)]
        prune.sparsegpt(model, [x for x, _ in calibration], density, nm=(2, 4) if pattern == "2:4" else None,
                        layers_to_prune=linears)
    else:
        scores = SCORES[criterion](model, calibration)
        prune.one_shot(model, {key: scores[key] for key in hidden}, density, PATTERNS[pattern])


# --- measuring -----------------------------------------------------------------------------------

def eager(model: nn.Module, x: Tensor) -> Callable[[], Tensor]:
    def call() -> Tensor:
        with torch.no_grad():
            return model(x)
    return call


def compile_checked(model: nn.Module, x: Tensor) -> sparsert.Model:
    """The sparsert model of ``model`` at batch ``x``, its output checked against torch eager."""
    compiled = sparsert.load(model, example_inputs=(x,), num_threads=THREADS)
    with torch.no_grad():
        ref = model(x).double()
    err = float((compiled.run(x).double() - ref).norm() / ref.norm().clamp_min(1e-30))
    if not err < MAX_REL_ERR:
        raise RuntimeError(f"sparsert output differs from torch eager: relative error {err:.1e} (expected < {MAX_REL_ERR})")
    return compiled


@dataclass
class Row:
    model: str
    criterion: str
    pattern: str
    density: float
    acc_one_shot: float
    acc_tuned: float
    torch_us: float
    sparsert_us: float
    formats: str

    @property
    def speedup(self) -> float:
        return self.torch_us / self.sparsert_us


def measure_row(name: str, criterion: str, pattern: str, density: float, trained: nn.Module,
                data, calibration: Calibration, args) -> Row:
    x_train, y_train, x_test, y_test = data
    x = x_test[:BATCH]
    model = copy.deepcopy(trained)
    if criterion != "dense":
        prune_with(model, criterion, pattern, density, calibration)
    acc_one_shot = accuracy(model, x_test, y_test)
    if criterion != "dense":
        train(model, x_train, y_train, args.fine_tune_steps, lr=1e-3, seed=1)
    prune.remove(model)
    acc_tuned = accuracy(model, x_test, y_test)
    compiled = compile_checked(model, x)
    t = time_interleaved({"torch": eager(trained, x), "sparsert": lambda: compiled.run(x)}, min_time=args.min_time)
    formats = "/".join(sorted({c.format for c in compiled.plan}))
    return Row(name, criterion, pattern, density, acc_one_shot, acc_tuned, t["torch"].median * 1e6,
               t["sparsert"].median * 1e6, formats)


@dataclass
class PlanResult:
    model: str
    target: float  # the speed-up planned for
    plan: Optional[prune.Plan]
    error: str
    acc: float = 0.0
    torch_us: float = 0.0
    dense_us: float = 0.0  # sparsert, the dense model
    planned_us: float = 0.0  # sparsert, the pruned model
    planned_low_us: float = 0.0  # its least disturbed time, for the prediction (see measure_plan)
    unreachable: bool = False  # no plan, only because this host cannot reach the target

    @property
    def speedup(self) -> float:
        return self.torch_us / self.planned_us if self.planned_us else 0.0


def measure_plan(name: str, trained: nn.Module, data, args) -> PlanResult:
    """Plans ``trained`` for its PLAN_TARGETS speed-up, prunes, fine-tunes and times it beside torch
    eager and the dense sparsert model. The smoke pass (--quick) exercises planning and loading on
    any host: a target this host's cost model puts out of reach is planned at REACHABLE_SHARE of the
    best it can reach instead, and the report says so."""
    x_train, y_train, x_test, y_test = data
    x = x_test[:BATCH]
    model = copy.deepcopy(trained)
    target = PLAN_TARGETS[name]
    try:
        plan = prune.plan(model, x, target_speedup=target, num_threads=THREADS)
    except prune.TargetOutOfReach as e:
        if not args.quick:
            return PlanResult(name, target, None, str(e), unreachable=True)
        target = REACHABLE_SHARE * e.reachable_speedup
        try:
            plan = prune.plan(model, x, target_speedup=target, num_threads=THREADS)
        except prune.TargetOutOfReach as again:  # the fixed cost is measured anew and moves with the load
            return PlanResult(name, target, None, str(again), unreachable=True)
    except ValueError as e:
        return PlanResult(name, target, None, str(e))
    prune.apply(model, plan)
    train(model, x_train, y_train, args.fine_tune_steps, lr=1e-3, seed=1)
    prune.remove(model)
    planned, dense = compile_checked(model, x), compile_checked(trained, x)
    t = time_interleaved({"torch": eager(trained, x), "dense": lambda: dense.run(x), "plan": lambda: planned.run(x)},
                         min_time=max(args.min_time, 0.5))
    # The prediction is an absolute time, which drifts on a shared host as ratios do not: it is held
    # against the lowest lower decile of five windows half a second apart, the undisturbed machine
    # the plan's cost model was calibrated on (three back-to-back windows were once all inside one
    # neighbour's burst: 154 µs against the usual 97).
    low = math.inf
    for window in range(5):
        if window:
            time.sleep(0.5)
        low = min(low, time_interleaved({"plan": lambda: planned.run(x)}, min_time=0.2)["plan"].p10)
    return PlanResult(name, target, plan, "", accuracy(model, x_test, y_test), t["torch"].median * 1e6,
                      t["dense"].median * 1e6, t["plan"].median * 1e6, low * 1e6)


# --- the plot ------------------------------------------------------------------------------------

COLOURS = {"magnitude": "#1f77b4", "random": "#7f7f7f", "taylor": "#2ca02c", "fisher": "#d62728",
           "wanda": "#9467bd", "sparsegpt": "#ff7f0e"}
DASHES = {"unstructured": "", "bsr4x4": "6,3", "2:4": ""}


def svg_plot(rows: List[Row], plans: List[PlanResult], dense: Dict[str, Row]) -> str:
    """Fine-tuned accuracy against measured speed-up over torch eager: one panel per model, one
    line per criterion and pattern through its densities, 2:4 as a diamond, the dense sparsert model
    as a black square and the 3× plan as a star."""
    models = [m for m in MODELS if any(r.model == m for r in rows)]
    panel_w, panel_h, left, top, gap = 400, 300, 56, 40, 70
    width, height = left + len(models) * (panel_w + gap) + 150, top + panel_h + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for index, name in enumerate(models):
        mine = [r for r in rows if r.model == name] + [dense[name]]
        plan = next((p for p in plans if p.model == name and p.plan is not None), None)
        speeds = [r.speedup for r in mine] + ([plan.speedup] if plan else [])
        accs = [r.acc_tuned for r in mine] + ([plan.acc] if plan else [])
        x_max = max(1.0, max(speeds) * 1.08)
        y_min = min(0.9, int(min(accs) * 10) / 10)
        x0 = left + index * (panel_w + gap)

        def px(v: float) -> float:
            return x0 + v / x_max * panel_w

        def py(v: float) -> float:
            return top + (1.0 - v) / (1.0 - y_min) * panel_h

        out.append(f'<text x="{x0 + panel_w / 2}" y="{top - 14}" text-anchor="middle" font-size="13">'
                   f'{MODELS[name][1]}</text>')
        step = 0.5 if x_max <= 4 else 1.0
        v = 0.0
        while v <= x_max + 1e-9:
            out.append(f'<line x1="{px(v):.1f}" y1="{top}" x2="{px(v):.1f}" y2="{top + panel_h}" stroke="#eee"/>')
            out.append(f'<text x="{px(v):.1f}" y="{top + panel_h + 14}" text-anchor="middle">{v:g}</text>')
            v += step
        v, y_step = y_min, 0.02 if 1.0 - y_min <= 0.2 else 0.1
        while v <= 1.0 + 1e-9:
            out.append(f'<line x1="{x0}" y1="{py(v):.1f}" x2="{x0 + panel_w}" y2="{py(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.0%}</text>')
            v += y_step
        out.append(f'<line x1="{px(1):.1f}" y1="{top}" x2="{px(1):.1f}" y2="{top + panel_h}" stroke="#bbb" stroke-dasharray="2,2"/>')
        out.append(f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" stroke="#333"/>')
        out.append(f'<text x="{x0 + panel_w / 2}" y="{top + panel_h + 32}" text-anchor="middle">'
                   f'measured speed-up over the dense model in torch eager (batch {BATCH}, {THREADS} thread)</text>')
        out.append(f'<text transform="translate({x0 - 40},{top + panel_h / 2}) rotate(-90)" text-anchor="middle">'
                   f'test accuracy after fine-tuning</text>')
        for criterion in COLOURS:
            for pattern in PATTERNS:
                series = sorted((r for r in mine if r.criterion == criterion and r.pattern == pattern),
                                key=lambda r: -r.density)
                if not series:
                    continue
                colour = COLOURS[criterion]
                if pattern == "2:4":
                    for r in series:
                        x, y = px(r.speedup), py(r.acc_tuned)
                        out.append(f'<path d="M{x:.1f},{y - 5:.1f} L{x + 5:.1f},{y:.1f} L{x:.1f},{y + 5:.1f} '
                                   f'L{x - 5:.1f},{y:.1f} Z" fill="{colour}"><title>{criterion} 2:4</title></path>')
                    continue
                points = " ".join(f"{px(r.speedup):.1f},{py(r.acc_tuned):.1f}" for r in series)
                dash = f' stroke-dasharray="{DASHES[pattern]}"' if DASHES[pattern] else ""
                out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>')
                for r in series:
                    out.append(f'<circle cx="{px(r.speedup):.1f}" cy="{py(r.acc_tuned):.1f}" r="2.5" fill="{colour}">'
                               f'<title>{criterion} {pattern} {1 - r.density:.0%} sparse</title></circle>')
        d = dense[name]
        out.append(f'<rect x="{px(d.speedup) - 4:.1f}" y="{py(d.acc_tuned) - 4:.1f}" width="8" height="8" fill="black">'
                   f'<title>dense, sparsert</title></rect>')
        if plan:
            out.append(_star(px(plan.speedup), py(plan.acc), f"<title>plan for {plan.target:.3g}x</title>"))
    lx, ly = left + len(models) * (panel_w + gap) - gap + 20, top
    shown = [c for c in COLOURS if any(r.criterion == c for r in rows)]
    for i, (criterion, colour) in enumerate((c, COLOURS[c]) for c in shown):
        out.append(f'<line x1="{lx}" y1="{ly + i * 16}" x2="{lx + 22}" y2="{ly + i * 16}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 28}" y="{ly + i * 16 + 4}">{criterion}</text>')
    ly += len(shown) * 16 + 10
    legend = [(f'<line x1="{lx}" y1="{{y}}" x2="{lx + 22}" y2="{{y}}" stroke="black" stroke-width="1.5"/>', "unstructured"),
              (f'<line x1="{lx}" y1="{{y}}" x2="{lx + 22}" y2="{{y}}" stroke="black" stroke-width="1.5" stroke-dasharray="6,3"/>', "block 4×4"),
              (f'<path d="M{lx + 11},{{y5m}} L{lx + 16},{{y}} L{lx + 11},{{y5p}} L{lx + 6},{{y}} Z" fill="black"/>', "2:4"),
              (f'<rect x="{lx + 7}" y="{{y4m}}" width="8" height="8" fill="black"/>', "dense"),
              (None, "plan")]
    for i, (shape, label) in enumerate(legend):
        y = ly + i * 16
        out.append(shape.format(y=y, y5m=y - 5, y5p=y + 5, y4m=y - 4) if shape else _star(lx + 11, y, ""))
        out.append(f'<text x="{lx + 28}" y="{y + 4}">{label}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _star(x: float, y: float, inner: str) -> str:
    corners = [(r * math.cos(math.pi * (k / 5 - 0.5)), r * math.sin(math.pi * (k / 5 - 0.5)))
               for k, r in zip(range(10), [7, 3] * 5)]
    points = " ".join(f"{x + dx:.1f},{y + dy:.1f}" for dx, dy in corners)
    return f'<polygon points="{points}" fill="gold" stroke="black">{inner}</polygon>'


# --- the run -------------------------------------------------------------------------------------

def run(args) -> int:
    torch.set_num_threads(THREADS)
    sparsert.set_num_threads(THREADS)
    started = time.time()
    load = os.getloadavg()[0]
    data = digits()
    x_train, y_train, x_test, y_test = data
    calibration = list(zip(x_train[:512].split(128), y_train[:512].split(128)))
    rows: List[Row] = []
    dense: Dict[str, Row] = {}
    plans: List[PlanResult] = []
    for name in args.models:
        torch.manual_seed(0)
        trained = train(MODELS[name][0](), x_train, y_train, args.train_steps, lr=1e-3)
        dense[name] = measure_row(name, "dense", "dense", 1.0, trained, data, calibration, args)
        print(_line(dense[name]), flush=True)
        for criterion, pattern, density in configs(name, args.criteria, args.patterns, args.densities):
            rows.append(measure_row(name, criterion, pattern, density, trained, data, calibration, args))
            print(_line(rows[-1]), flush=True)
        plans.append(measure_plan(name, trained, data, args))

    verdicts, failed = [], False
    for p in plans:
        asked = PLAN_TARGETS[p.model]
        title = f"- {MODELS[p.model][1]}, plan for {asked:g}x" + (
            "" if p.target == asked else f" (out of reach on this host: planned for {p.target:.2f}x, "
                                         f"{REACHABLE_SHARE:.0%} of the best reachable)") + ":"
        if p.plan is None:
            # A plan that cannot be built fails even the smoke pass, unless only this host's speed stopped it.
            gated = not (args.quick and p.unreachable)
            failed |= gated
            verdicts.append(f"{title} {_verdict(False, gated)}: {p.error}")
            continue
        # --quick is CI's smoke pass on a shared host: speeds and predictions are judged by the full run.
        speed_ok = p.speedup >= PLAN_FLOOR
        error = (p.plan.predicted_us - p.planned_low_us) / p.planned_low_us
        predicted_ok = abs(error) <= PREDICTION_TOLERANCE
        speed = (f"{_verdict(speed_ok, p.model == 'mlp' and not args.quick)}: measured {p.speedup:.2f}x over torch eager"
                 + (f" (≥ {PLAN_FLOOR}x required)" if p.model == "mlp" else "")
                 + f", {p.dense_us / p.planned_us:.2f}x over the dense sparsert model")
        prediction = (f"{_verdict(predicted_ok, not args.quick)}: predicted {p.plan.predicted_us:.0f} µs "
                      f"({p.plan.speedup:.2f}x), measured {p.planned_low_us:.0f} µs (least disturbed; {error:+.0%}, "
                      f"within ±{PREDICTION_TOLERANCE:.0%} required)")
        failed |= not args.quick and (not predicted_ok or p.model == "mlp" and not speed_ok)
        verdicts.append(f"{title} speed {speed}; prediction {prediction}; accuracy {p.acc:.1%}")

    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    header = ("model", "criterion", "pattern", "sparsity", "acc one-shot", "acc fine-tuned", "torch eager µs",
              "sparsert µs", "speed-up", "formats")
    lines = [
        "# sparsert.prune on digits: accuracy and measured speed-up", "",
        f"- date: {datetime.date.today()}; host load (1-min average) at start: {load:.2f}",
        f"- cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs); torch {torch.__version__}; "
        f"sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}",
        f"- batch {BATCH}, {THREADS} thread; fine-tune {args.fine_tune_steps} Adam steps (lr 1e-3, batch 64); "
        f"min-time {args.min_time} s per tool and row, medians; {len(rows) + len(dense)} rows in {time.time() - started:.0f} s",
        f"- command: {command}", "",
    ] + verdicts + ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in list(dense.values()) + rows]
    for p in plans:
        if p.plan is not None:
            lines += ["", f"{MODELS[p.model][1]}, plan for {p.target:.3g}x (magnitude scores):", "", "```",
                      str(p.plan), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    for path, content in ((args.markdown, text), (args.svg, svg_plot(rows, plans, dense) if args.svg else None)):
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
    return 1 if failed else 0


def _verdict(ok: bool, gated: bool) -> str:
    return "PASS" if ok else "FAIL" if gated else "not gated"


def _cells(r: Row) -> List[str]:
    return [r.model, r.criterion, r.pattern, f"{1 - r.density:.0%}", f"{r.acc_one_shot:.1%}", f"{r.acc_tuned:.1%}",
            f"{r.torch_us:,.0f}", f"{r.sparsert_us:,.0f}", f"{r.speedup:.2f}x", r.formats]


def _line(r: Row) -> str:
    return " | ".join(_cells(r))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--criteria", default=",".join(CRITERIA), help="comma-separated: " + ", ".join(CRITERIA))
    p.add_argument("--patterns", default=",".join(PATTERNS), help="comma-separated: " + ", ".join(PATTERNS))
    p.add_argument("--densities", default=",".join(map(str, DENSITIES)), help="fractions kept")
    p.add_argument("--train-steps", type=int, default=600, help="Adam steps of the initial training")
    p.add_argument("--fine-tune-steps", type=int, default=300)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds of timed calls per tool and row")
    p.add_argument("--quick", action="store_true", help="magnitude, random; unstructured 90%%, 2:4; short runs")
    p.add_argument("--markdown", help="also write the report here")
    p.add_argument("--svg", help="also write the plot here")
    args = p.parse_args()
    if args.quick:
        args.criteria, args.patterns, args.densities = "magnitude,random", "unstructured,2:4", "0.1"
        args.train_steps, args.fine_tune_steps, args.min_time = 300, 50, 0.1
    args.models = args.models.split(",")
    args.criteria = args.criteria.split(",")
    args.patterns = args.patterns.split(",")
    args.densities = tuple(float(v) for v in args.densities.split(","))
    unknown = ([m for m in args.models if m not in MODELS] + [c for c in args.criteria if c not in CRITERIA]
               + [q for q in args.patterns if q not in PATTERNS])
    if unknown:
        p.error(f"unknown models/criteria/patterns {unknown}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
