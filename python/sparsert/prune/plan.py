"""Hardware-aware planning: a pattern and density per layer that reaches a target speed-up (or
latency) on this machine while removing the least importance.

    p = prune.plan(model, x, target_speedup=3)     # x: an example input at the batch to serve
    print(p)                                        # per layer: pattern, density, format, µs, importance
    prune.apply(model, p)                           # then fine-tune, prune.remove, sparsert.load

The model is compiled once with :func:`sparsert.load` to learn the rows each weight multiplies and
to measure, with :meth:`sparsert.Model.profile` and timed runs, what no option changes (a fixed
cost): the call itself, the operators without weights, and each convolution's time beyond the cost
model's price of it as compiled (what the fits miss on its shape). For every weight the runtime
would pack (Linear, non-depthwise Conv2d as ``(out, in·kh·kw)``) and every pattern × density, the
keep-mask is built from the criterion's scores with :mod:`sparsert.prune.patterns`; its predicted
time is the runtime's own choice for that mask, the fastest format by the calibrated cost model
(:func:`sparsert.select.fastest`), and its importance removed is the sum of the scores it drops. A
multiple-choice knapsack over the layers, solved on the Pareto front of (time, importance removed),
then picks one option per layer; scores are compared across layers, as global magnitude pruning does.

Layers are predicted one by one, so rows a mask leaves all zero are counted as if kept. The importer
removes them with the next layer's matching inputs (for an N:M reader, in whole groups of M, so it
keeps its pattern): that layer then runs a little faster than planned.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import cost, formats, select
from .._linear import get_num_threads
from .._model import load
from .._timing import summarize
from ._layers import Masks, Scores, check_density, effective_weight, eval_mode, layers, qualified
from .criteria import fisher, magnitude, random, taylor, wanda
from .patterns import blocks, nm, unstructured

PATTERNS = ("unstructured", "2:4", "4:8", "bsr4x4", "bsr8x1", "bsr16x1", "bsr1x4", "dense")
DENSITIES = (1.0, 0.5, 0.3, 0.2, 0.1, 0.05)
CRITERIA = ("magnitude", "random", "taylor", "fisher", "wanda")
# Partial plans the search keeps per layer: beyond this, one per 1/FRONT_POINTS of the time range
# (a front this large needs many layers with many options; digits and bench models stay exact).
FRONT_POINTS = 20000
_WEIGHT_OPS = ("linear", "conv2d")  # operators that carry packed weights (depthwise runs from a constant)
# One call of a weight in the compiled model: (conv group, rows it multiplies, zero fraction of its input,
# the convolution's shape or None for a linear layer).
Use = Tuple[int, int, float, Optional[cost.ConvShape]]


class TargetOutOfReach(ValueError):
    """:func:`plan`'s target is beyond every combination of the options on this machine;
    ``reachable_speedup`` is the best that is not (the fastest plan's speed-up over dense)."""

    def __init__(self, message: str, reachable_speedup: float):
        super().__init__(message)
        self.reachable_speedup = reachable_speedup


@dataclass(frozen=True)
class LayerPlan:
    """One weight's share of a :class:`Plan`."""

    name: str  # the weight, as in the state dict: "fc1.weight"
    pattern: str  # "dense", "unstructured", "2:4", "bsr4x4", ...
    density: float  # fraction of the weights kept
    format: str  # what the runtime packs that mask as ("bsr8x1"; "a/b" when its uses differ)
    predicted_us: float  # per model call, at the example's rows
    dense_us: float  # the same, left dense
    importance_removed: float  # sum of the criterion's scores of the weights dropped


@dataclass
class Plan:
    """A pattern and density per layer, the keep-masks that carry it out (pruned layers only;
    ``prune.apply(model, plan)`` puts them on), and the predicted times behind it. ``print(plan)``
    shows the table."""

    layers: List[LayerPlan]
    masks: Masks
    fixed_us: float  # measured µs per call of what no option changes (the call, other operators, conv overheads)
    target_us: float
    importance_total: float  # sum of every planned weight's score, for scale
    threads: int

    @property
    def predicted_us(self) -> float:
        """Predicted µs per call of the whole pruned model."""
        return self.fixed_us + sum(p.predicted_us for p in self.layers)

    @property
    def dense_us(self) -> float:
        """Predicted µs per call of the model with every layer dense."""
        return self.fixed_us + sum(p.dense_us for p in self.layers)

    @property
    def speedup(self) -> float:
        """Predicted speed-up over the dense model, both run by sparsert."""
        return self.dense_us / self.predicted_us

    @property
    def importance_removed(self) -> float:
        return sum(p.importance_removed for p in self.layers)

    def __str__(self) -> str:
        width = max([len("layer")] + [len(p.name) for p in self.layers])
        header = (f"{'layer':<{width}}  {'pattern':<12} {'density':>7}  {'format':<10} {'pred µs':>9} "
                  f"{'dense µs':>9}  importance removed")
        lines = [header, "-" * len(header)]
        for p in self.layers:
            lines.append(f"{p.name:<{width}}  {p.pattern:<12} {p.density:>7.3f}  {p.format:<10} "
                         f"{p.predicted_us:>9.1f} {p.dense_us:>9.1f}  {p.importance_removed:.4g}")
        lines.append(f"{'work no option changes (measured)':<{width + 32}} {self.fixed_us:>9.1f} {self.fixed_us:>9.1f}")
        share = self.importance_removed / self.importance_total if self.importance_total > 0 else 0.0
        lines.append(f"{'total':<{width + 32}} {self.predicted_us:>9.1f} {self.dense_us:>9.1f}  "
                     f"{self.importance_removed:.4g} of {self.importance_total:.4g} ({share:.1%})")
        lines.append(f"predicted speed-up {self.speedup:.2f}x over the dense model (target {self.dense_us / self.target_us:.2f}x, "
                     f"≤ {self.target_us:.1f} µs), {self.threads} thread{'s' if self.threads > 1 else ''}")
        return "\n".join(lines)


Criterion = Union[str, Callable[[nn.Module], Scores]]


def plan(model: nn.Module, example_inputs, *, target_speedup: Optional[float] = None,
         target_latency: Optional[float] = None, criterion: Criterion = "magnitude",
         patterns: Sequence[str] = PATTERNS, densities: Sequence[float] = DENSITIES,
         num_threads: Optional[int] = None, calibration: Optional[Iterable] = None) -> Plan:
    """Plans the pruning of ``model`` for its example inputs (a tensor or a tuple, at the batch it
    will serve) on this machine, leaving the model as it is.

    Give exactly one of ``target_speedup`` (over the dense model's predicted time, both under
    sparsert) and ``target_latency`` (seconds per call). ``criterion``: ``"magnitude"``,
    ``"random"`` (seeded), ``"wanda"`` (``calibration``: input tensors, or ``(inputs, targets)``
    pairs), ``"taylor"`` or ``"fisher"`` (``calibration``: ``(inputs, targets)`` pairs, scored with
    cross-entropy), or any ``model -> scores`` callable such as
    ``lambda m: prune.taylor(m, batches, my_loss)``. A weight the criterion does not score stays
    dense. ``patterns``: ``"dense"``, ``"unstructured"``, ``"N:M"`` (at density N/M), ``"bsr<r>x<c>"`` (r × c blocks, as formats spells them)
    (r output rows by c inputs); unstructured and block patterns are tried at every density below 1
    of ``densities``. ``num_threads``: as for :func:`sparsert.load` (default: sparsert's).

    Raises ValueError for bad arguments, and :class:`TargetOutOfReach` (a ValueError) for a target
    that no combination of the options reaches, naming and carrying the best reachable speed-up."""
    action = "planning the pruning"
    if (target_speedup is None) == (target_latency is None):
        raise ValueError(f"{action}: target_speedup={target_speedup!r}, target_latency={target_latency!r} "
                         f"(expected exactly one of them)")
    if target_speedup is not None and not target_speedup > 0:
        raise ValueError(f"{action}: target_speedup={target_speedup!r} (expected > 0, e.g. 3 for 3x)")
    if target_latency is not None and not target_latency > 0:
        raise ValueError(f"{action}: target_latency={target_latency!r} (expected > 0 seconds per call)")
    maskers = {p: _masker(p, action) for p in patterns}
    for d in densities:
        check_density(d, action)
    threads = num_threads or get_num_threads()
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)

    uses, fixed_us = _compile_and_measure(model, inputs, threads)
    scores = _scores(model, criterion, calibration, action)
    cost_model = cost.calibrate(threads)
    modules = layers(model)

    names, options, dense = [], [], []
    for key, layer_uses in uses.items():
        module = modules[key]
        groups = getattr(module, "groups", 1)
        present = (effective_weight(module).detach() != 0).reshape(module.weight.shape[0], -1).cpu().numpy()
        dense_option = _Option("dense", 1.0, *_predict(cost_model, present, layer_uses, groups), 0.0)
        layer_options = [dense_option] if "dense" in maskers or key not in scores else []
        if key in scores:
            layer_options += _options(key, scores[key], present, maskers, densities, cost_model, layer_uses, groups)
        if not layer_options:
            raise ValueError(f"{action}: no option for '{key}' (patterns {list(patterns)}, densities {list(densities)})")
        names.append(key)
        options.append(layer_options)
        dense.append(dense_option.us)

    dense_total = fixed_us + sum(dense)
    target_us = dense_total / target_speedup if target_speedup is not None else target_latency * 1e6
    chosen = _cheapest_within([[(o.us, o.importance) for o in layer] for layer in options], target_us - fixed_us)
    if chosen is None:
        fastest = fixed_us + sum(min(o.us for o in layer) for layer in options)
        asked = f"target speed-up {target_speedup:.2f}x" if target_speedup is not None else f"target latency {target_us:.1f} µs"
        raise TargetOutOfReach(f"{action}: {asked} is out of reach: the fastest plan takes {fastest:.1f} µs of the "
                               f"dense {dense_total:.1f} µs (expected a target speed-up ≤ {dense_total / fastest:.2f}x, "
                               f"the best reachable with patterns {list(patterns)} and densities {list(densities)})",
                               dense_total / fastest)

    planned, masks = [], {}
    for key, layer_options, index, dense_us in zip(names, options, chosen, dense):
        o = layer_options[index]
        planned.append(LayerPlan(key, o.pattern, o.density, o.format, o.us, dense_us, o.importance))
        if o.pattern != "dense":  # rebuilt rather than kept for every option: masks of big layers add up
            make, _ = maskers[o.pattern]
            masks[key] = make({key: scores[key]}, o.density)[key]
    total = sum(float(scores[key].double().sum()) for key in names if key in scores)
    return Plan(planned, masks, fixed_us, target_us, total, threads)


@dataclass
class _Option:
    pattern: str
    density: float
    us: float
    format: str
    importance: float


def _masker(pattern: str, action: str) -> Optional[Tuple[Callable[[Scores, float], Masks], Optional[float]]]:
    """``(scores, density) -> masks`` for a pattern's spelling and the density it fixes (N:M), or
    None for "dense"."""
    if pattern == "dense":
        return None
    if pattern == "unstructured":
        return unstructured, None
    found = re.fullmatch(r"(\d+):(\d+)", pattern)
    if found:
        n, m = int(found[1]), int(found[2])
        if not 1 <= n < m:
            raise ValueError(f"{action}: pattern {pattern!r} (expected N:M with 1 ≤ N < M, e.g. 2:4)")
        return (lambda s, _d: nm(s, n, m)), n / m
    try:
        block = formats.parse(pattern).block
    except ValueError:
        block = None
    if block is not None and min(block) >= 1:
        return (lambda s, d: blocks(s, d, block)), None
    raise ValueError(f"{action}: pattern {pattern!r} (expected one of 'dense', 'unstructured', 'N:M' such as '2:4', "
                     f"'bsr<r>x<c>' such as 'bsr4x4')")


def _options(key: str, s: Tensor, present: np.ndarray, maskers: dict, densities: Sequence[float],
             cost_model: cost.CostModel, uses: List[Use], groups: int) -> List[_Option]:
    out = []
    for pattern, masker in maskers.items():
        if masker is None:
            continue
        make, fixed_density = masker
        for d in [fixed_density] if fixed_density is not None else [d for d in densities if d < 1.0]:
            mask = make({key: s}, d)[key]
            keep = mask.reshape(mask.shape[0], -1).cpu().numpy()
            us, fmt = _predict(cost_model, keep & present, uses, groups)
            removed = float(s.detach().double()[~mask].sum())
            out.append(_Option(pattern, d, us, fmt, removed))
    return out


def _predict(cost_model: cost.CostModel, keep: np.ndarray, uses: List[Use], groups: int) -> Tuple[float, str]:
    """Predicted µs of a weight with non-zeros at ``keep`` (its row view) over all its uses, in the
    format the runtime would pick; and that format."""
    per = keep.shape[0] // groups
    total, formats = 0.0, []
    for group, rows, zero_fraction, conv in uses:
        structure = select.analyse(keep[group * per:(group + 1) * per], zero_fraction, conv)
        fmt, times = select.fastest(cost_model, structure, rows)
        total += times[fmt]
        if fmt not in formats:
            formats.append(fmt)
    return total, "/".join(formats)


def _cheapest_within(options: List[List[Tuple[float, float]]], budget: float) -> Optional[List[int]]:
    """One ``(time, importance)`` option per layer minimising the total importance with total time
    ≤ ``budget`` (a multiple-choice knapsack); the option indices, or None when even the fastest
    options exceed it.

    Layer by layer, keeps the Pareto front of partial plans (none both slower than another and
    removing more), which is exact. Should a front outgrow ``FRONT_POINTS``, it keeps the plan that
    removes least per time interval, and the fastest: still real plans with exact times, so a plan
    found always fits. The front does not depend on the budget, so a smaller budget never finds a
    plan that removes less. Of plans removing the same, the faster wins."""
    time, removed = np.zeros(1), np.zeros(1)
    steps = []  # per layer: (index into the previous front, option index) of each point of the front
    for layer in options:
        t = np.array([o[0] for o in layer])
        v = np.array([o[1] for o in layer])
        cand_t = (time[:, None] + t[None, :]).ravel()
        cand_v = (removed[:, None] + v[None, :]).ravel()
        order = np.lexsort((cand_v, cand_t))
        cand_t, cand_v = cand_t[order], cand_v[order]
        keep = np.ones(len(order), dtype=bool)
        keep[1:] = cand_v[1:] < np.minimum.accumulate(cand_v)[:-1]
        kept = np.flatnonzero(keep)
        if len(kept) > FRONT_POINTS:
            span = cand_t[kept[-1]] - cand_t[kept[0]]
            cell = np.minimum(((cand_t[kept] - cand_t[kept[0]]) / span * FRONT_POINTS).astype(np.int64), FRONT_POINTS - 1)
            last_of_cell = np.append(cell[1:] != cell[:-1], True)  # importance falls along the front
            last_of_cell[0] = True
            kept = kept[last_of_cell]
        steps.append((order[kept] // len(layer), order[kept] % len(layer)))
        time, removed = cand_t[kept], cand_v[kept]
    fits = np.flatnonzero(time <= budget * (1 + 1e-12))  # the all-dense plan at 1x, summed in another order
    if len(fits) == 0:
        return None
    point, chosen = int(fits[-1]), []
    for parent, option in reversed(steps):
        chosen.append(int(option[point]))
        point = int(parent[point])
    return chosen[::-1]


def _compile_and_measure(model: nn.Module, inputs: tuple, threads: int) -> Tuple[Dict[str, List[Use]], float]:
    """``{weight name: [use, ...]}`` for every weight the compiled model packs that is a layer of
    the model, and the measured µs per call of the work no option changes: the call itself, the
    operators without a planned weight, and what each planned convolution does besides its matrix
    product. The input zero fractions are the dense model's: pruning changes them a little, and the
    plan does not chase that."""
    with eval_mode(model):  # export switches the model to eval; the caller's flags come back after
        compiled = load(model, example_inputs=inputs, num_threads=threads)
    modules = layers(model)
    uses: Dict[str, List[Use]] = {}
    product_us: Dict[str, float] = {}  # planned node -> the cost model's µs for the formats it was compiled in
    for choice in compiled.plan:
        found = re.fullmatch(r"(.*)\[group (\d+)\]", choice.layer)
        node, group = (found[1], int(found[2])) if found else (choice.layer, 0)
        key = qualified(node, "weight")
        if key in modules:
            structure = choice.structure
            uses.setdefault(key, []).append((group, choice.rows, structure.input_zero_fraction, structure.conv))
            product_us[node] = product_us.get(node, 0.0) + choice.times_us[choice.format]
    # Per operator and for whole calls, the lower decile of single runs over a window of at least
    # 0.07 s (not a count of runs: a small model's 200 runs take 12 ms, which one burst covers), in
    # three windows a pause apart, keeping the least disturbed: on a shared host a neighbour's bursts
    # double a median and can hold a whole window up, and the cost model the rest is priced by is
    # calibrated on lower deciles too. Arrays, not tensors: converting torch tensors is the caller's
    # choice.
    arrays = tuple(a.detach().cpu().numpy() if isinstance(a, Tensor) else a for a in inputs)
    names = [(p["name"], p["op"]) for p in compiled.profile(*arrays, repeats=1)]

    def fixed_in(window: Tuple[List[float], float]) -> float:
        operators, call = window
        # The call itself, outside every operator: argument checks, the outputs, the binding (3 of
        # the digits MLP's 16 µs).
        fixed = max(call - sum(operators), 0.0)
        for (name, op), measured in zip(names, operators):
            if name not in product_us or op not in _WEIGHT_OPS:
                fixed += measured
            elif op == "conv2d":
                # The cost model prices a convolution from fits to other shapes (cost.conv_features);
                # what it misses on this one, the copies and calls of small images mostly, depends on
                # the shapes more than on the weight's sparsity (before convolutions were priced
                # whole, that was 80% of the digits CNN's time: 146 µs predicted, 461 µs measured).
                # Never below zero: were the layer priced above the measured whole, options cheaper
                # than the compiled one would go below zero.
                fixed += max(measured - product_us[name], 0.0)
        return fixed

    windows = []
    for i in range(3):
        if i:
            time.sleep(0.05)  # a neighbour's burst that spans one window may be over by the next
        windows.append(fixed_in(_undisturbed_runs(compiled, arrays)))
    return uses, min(windows)


def _undisturbed_runs(compiled, arrays: tuple, min_seconds: float = 0.07) -> Tuple[List[float], float]:
    """Over one window of at least ``min_seconds`` (and 10 runs), the lower decile of each operator's
    profiled time and of whole calls, in µs: the statistic the cost model is calibrated with."""
    runs, calls, start = [], [], time.perf_counter()
    while len(runs) < 10 or time.perf_counter() - start < min_seconds:
        runs.append(compiled.profile(*arrays, repeats=1))
        begin = time.perf_counter()
        compiled.run(*arrays)
        calls.append(time.perf_counter() - begin)
    operators = [summarize([q["seconds"] for q in samples]).p10 * 1e6 for samples in zip(*runs)]
    return operators, summarize(calls).p10 * 1e6


def _scores(model: nn.Module, criterion: Criterion, calibration: Optional[Iterable], action: str) -> Scores:
    if callable(criterion):
        return criterion(model)
    if criterion == "magnitude":
        return magnitude(model)
    if criterion == "random":
        return random(model, torch.Generator().manual_seed(0))
    if criterion not in CRITERIA:
        raise ValueError(f"{action}: criterion {criterion!r} (expected one of {', '.join(CRITERIA)}, "
                         f"or a callable from the model to scores)")
    if calibration is None:
        raise ValueError(f"{action}: criterion {criterion!r} needs calibration= batches (expected "
                         f"{'input tensors or ' if criterion == 'wanda' else ''}(inputs, targets) pairs)")
    batches = list(calibration)
    if criterion == "wanda":
        return wanda(model, [b[0] if isinstance(b, (tuple, list)) else b for b in batches])
    return (taylor if criterion == "taylor" else fisher)(model, batches, F.cross_entropy)
