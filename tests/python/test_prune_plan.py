"""sparsert.prune.plan on the digits MLP and CNN: a plan reaches its target by the cost model, the
loaded model packs each layer as the plan said, harder targets cost more importance, an
unreachable target names the best reachable one. How close the predicted time comes to timed runs is
bench/prune.py's check: timings belong in benchmarks, not in tests on a shared host.

Targets are set from the best speed-up reachable on the machine running the test (its cost model is
calibrated there), never as absolute numbers."""

from __future__ import annotations

import importlib
import re

import pytest
import torch

import sparsert
import sparsert.prune as prune
from prune_models import cnn, digits, trained_mlp
from sparsert import select
from sparsert.prune.plan import PATTERNS

BATCH = 32
THREADS = 1


@pytest.fixture(autouse=True)
def measured_once_per_model(monkeypatch):
    """A model is compiled and measured once however often a test plans it: the properties checked
    are the search's (a target a little past the best reachable is out of reach, harder targets
    remove more), and on a busy host the measured fixed cost moves from call to call."""
    module = importlib.import_module("sparsert.prune.plan")
    measure, seen = module._compile_and_measure, {}

    def once(model, inputs, threads):
        if id(model) not in seen:
            seen[id(model)] = (model, measure(model, inputs, threads))  # the model held: its id stays its own
        return seen[id(model)][1]

    monkeypatch.setattr(module, "_compile_and_measure", once)


@pytest.fixture(scope="module")
def example():
    return digits()[2][:BATCH]


def untrained_cnn():
    torch.manual_seed(0)
    return cnn().eval()


MODELS = {"mlp": trained_mlp, "cnn": untrained_cnn}


def best_reachable(model, example, **kwargs) -> float:
    """The best speed-up the planner can reach, as its error for an unreachable target names it."""
    with pytest.raises(prune.TargetOutOfReach, match="out of reach") as error:
        prune.plan(model, example, target_speedup=1e6, num_threads=THREADS, **kwargs)
    named = float(re.search(r"speed-up ≤ ([0-9.]+)x", str(error.value))[1])
    assert error.value.reachable_speedup == pytest.approx(named, abs=0.005)  # the message and the attribute agree
    return error.value.reachable_speedup


def best_reachable_or_skip(model, example) -> float:
    """best_reachable, the test skipped where that is 1×: the cost model calibrated on this machine
    predicts no pattern faster than dense on these layers, so no target above 1× exists to plan for
    (a calibration timed while the host was busy once priced CSR 2-4× too high: bench/NOTES.md,
    nineteenth session)."""
    best = best_reachable(model, example)
    if best <= 1.0:
        pytest.skip("no pattern is predicted to pay on this machine: the best reachable speed-up is 1x")
    return best


def target_between(model, example, share, **kwargs) -> float:
    """A target ``share`` of the way from 1× to the best reachable speed-up."""
    return 1.0 + share * (best_reachable(model, example, **kwargs) - 1.0)


@pytest.mark.parametrize("kind, patterns", [
    ("mlp", PATTERNS),
    ("mlp", ("2:4", "4:8", "dense")),
    ("mlp", ("bsr4x4", "bsr16x1", "dense")),
    ("cnn", PATTERNS),
])
def test_plan_meets_its_target_and_the_loaded_model_packs_it_so(kind, patterns, example):
    model = MODELS[kind]()
    best = best_reachable(model, example, patterns=patterns)
    if best <= 1.0:  # on this machine no such pattern beats dense on these layers (N:M on small ones)
        assert not prune.plan(model, example, target_speedup=1.0, patterns=patterns, num_threads=THREADS).masks
        pytest.skip(f"none of {patterns} is predicted to pay on this machine: the plan keeps every layer dense")
    target = 1.0 + 0.6 * (best - 1.0)
    plan = prune.plan(model, example, target_speedup=target, patterns=patterns, num_threads=THREADS)
    assert plan.speedup >= target * (1 - 1e-9), str(plan)
    assert plan.predicted_us <= plan.target_us * (1 + 1e-9)
    assert set(plan.masks) == {p.name for p in plan.layers if p.pattern != "dense"} != set()
    assert all(p.name in str(plan) for p in plan.layers)

    prune.apply(model, plan)
    assert prune.current_masks(model).keys() == plan.masks.keys()
    prune.remove(model)
    # The plan is the cost model's; "auto" also times close calls (and every convolution) on the
    # layers themselves and may take another format, only where it measured fastest, a sparse one
    # MEASURED_MARGIN faster than dense.
    loaded = {c.layer: c for c in sparsert.load(model, example_inputs=(example,), num_threads=THREADS,
                                                 formats="predicted").plan}
    for c in sparsert.load(model, example_inputs=(example,), num_threads=THREADS).plan:
        if c.format != loaded[c.layer].format:
            m = c.measured_us
            assert m, c
            allowed = [t for f, t in m.items() if f == "dense" or t * select.MEASURED_MARGIN < m["dense"]]
            assert m[c.format] == min(allowed), c
    for p in plan.layers:
        choice = loaded[p.name[:-len(".weight")]]
        weight = dict(model.named_parameters())[p.name].detach()
        rows = weight.reshape(weight.shape[0], -1)
        nnz = round(choice.structure.density * choice.structure.shape[0] * choice.structure.shape[1])
        # The importer drops rows left all zero, and the reader's matching inputs: never more non-zeros.
        assert nnz <= int((rows != 0).sum()), p
        if p.pattern == "dense":
            assert choice.structure.density >= 0.99, (p, choice.structure)
        if choice.structure.shape != tuple(rows.shape):
            continue
        # The same mask, analysed the same way, at the same rows: the runtime packs what the plan
        # predicted. (CSC, whose time depends on the input's zeros that pruning shifts, is far from
        # competitive at 32 rows, so those shifts do not move the choice.)
        assert choice.format == p.format, (p, choice.format, choice.times_us)
        # ... and prices it as the plan did: the whole-model prediction is this plus the measured
        # fixed cost, and bench/prune.py holds it to 25% of timed runs (a timing bound, which a unit
        # test on a shared host cannot hold).
        assert choice.times_us[choice.format] == pytest.approx(p.predicted_us, rel=1e-9), (p, choice.times_us)
        assert nnz == int((rows != 0).sum())
        n_m = re.fullmatch(r"(\d+):(\d+)", p.pattern)
        if n_m:
            n, m = int(n_m[1]), int(n_m[2])
            assert choice.structure.nm is not None and choice.structure.nm[0] * m <= n * choice.structure.nm[1], p
        block = re.fullmatch(r"bsr(\d+)x(\d+)", p.pattern)
        if block and rows.shape[0] % int(block[1]) == 0 and rows.shape[1] % int(block[2]) == 0:
            assert choice.structure.bsr_fill[(int(block[1]), int(block[2]))] == pytest.approx(1.0), p


def test_harder_targets_never_remove_less_importance(example):
    model = trained_mlp()
    best = best_reachable_or_skip(model, example)
    removed, speedups = [], []
    for share in (0.0, 0.2, 0.4, 0.6, 0.8, 0.95):
        target = 1.0 + share * (best - 1.0)
        plan = prune.plan(model, example, target_speedup=target, num_threads=THREADS)
        assert plan.speedup >= target * (1 - 1e-9)
        removed.append(plan.importance_removed)
        speedups.append(plan.speedup)
    assert removed == sorted(removed), (removed, speedups)
    assert removed[0] == 0.0 and removed[-1] > 0.0
    # The same bound as a latency in seconds gives the same plan.
    latency = prune.plan(model, example, target_latency=plan.target_us * 1e-6, num_threads=THREADS)
    assert [(p.pattern, p.density) for p in latency.layers] == [(p.pattern, p.density) for p in plan.layers]


def test_an_unreachable_target_names_the_best_reachable_speedup(example):
    model = trained_mlp()
    best = best_reachable_or_skip(model, example)
    # The number named is the boundary: a little below it plans, a little above it does not.
    assert prune.plan(model, example, target_speedup=best * 0.99, num_threads=THREADS).speedup >= best * 0.99
    with pytest.raises(ValueError, match=r"target speed-up .* is out of reach.*expected a target speed-up ≤"):
        prune.plan(model, example, target_speedup=best * 1.02, num_threads=THREADS)


def test_importance_removed_is_the_criterion_score_of_the_dropped_weights(example):
    model = trained_mlp()
    scores = prune.wanda(model, [example])
    criterion = lambda m: prune.wanda(m, [example])  # noqa: E731
    target = target_between(model, example, 0.5, criterion=criterion)
    plan = prune.plan(model, example, target_speedup=target, criterion=criterion, num_threads=THREADS)
    for p in plan.layers:
        if p.pattern == "dense":
            assert p.importance_removed == 0.0 and p.name not in plan.masks
            continue
        mask = plan.masks[p.name]
        assert mask.float().mean().item() == pytest.approx(p.density, abs=0.01)
        assert p.importance_removed == pytest.approx(scores[p.name][~mask].double().sum().item())
    assert plan.importance_total == pytest.approx(sum(s.double().sum().item() for s in scores.values()))


def test_plan_leaves_the_model_as_it_was(example):
    model = trained_mlp()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune.plan(model, example, target_speedup=1.0, num_threads=THREADS)
    assert model.training and not prune.current_masks(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of them"),
    ({"target_speedup": 2, "target_latency": 1e-3}, "exactly one of them"),
    ({"target_speedup": 0}, "expected > 0"),
    ({"target_speedup": 2, "patterns": ("3x3",)}, "pattern '3x3'"),
    ({"target_speedup": 2, "patterns": ("4:2",)}, "pattern '4:2'"),
    ({"target_speedup": 2, "densities": (1.5,)}, "density 1.5"),
    ({"target_speedup": 2, "criterion": "l2"}, "criterion 'l2'"),
    ({"target_speedup": 2, "criterion": "taylor"}, "needs calibration"),
])
def test_bad_arguments_are_named(kwargs, message, example):
    with pytest.raises(ValueError, match=message):
        prune.plan(trained_mlp(), example, num_threads=THREADS, **kwargs)
