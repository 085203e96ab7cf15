"""Schedules: when to prune and how much, around the caller's own training.

Training stays the caller's: the schedules call ``train_step(step)`` (one optimizer step; the
index lets a learning-rate schedule follow) or ``fine_tune(round)``, and own nothing else, so
the optimizer, data and device are the caller's too. Masked weights stay zero while training
(torch.nn.utils.prune masks them in every forward) and, as each schedule prunes further,
weights already masked rank below all others and stay pruned.

``score`` is a criterion applied to the model as it is at pruning time, e.g.
``prune.magnitude`` or ``lambda m: prune.taylor(m, batches, F.cross_entropy)``; ``pattern``
takes scores and a density, e.g. ``prune.unstructured`` or
``functools.partial(prune.blocks, block=(4, 1))``.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, Optional, Tuple

import torch
from torch import Tensor, nn

from ._layers import Masks, Scores, check_density, owner, pruning_hooks
from .masks import apply, current_masks
from .patterns import unstructured

ScoreFn = Callable[[nn.Module], Scores]
Pattern = Callable[[Scores, float], Masks]
TrainStep = Callable[[int], None]


def one_shot(model: nn.Module, scores: Scores, density: float, pattern: Pattern = unstructured) -> Masks:
    """Prunes ``model`` once, in place, to ``density`` of the scored weights by ``pattern``.
    Weights already masked get score −inf first, so the new mask contains the old one.
    Returns the masks now on the scored weights."""
    ranked = {}
    for key, s in scores.items():
        module, tensor = owner(model, key, "one-shot pruning")
        old = getattr(module, tensor + "_mask", None)
        ranked[key] = s if old is None else s.masked_fill(~old.bool(), float("-inf"))
    apply(model, pattern(ranked, density))
    now = current_masks(model)
    return {key: now[key] for key in scores}


def cubic_density(step: int, final_density: float, initial_density: float = 1.0, start: int = 0,
                  prunes: int = 10, interval: int = 1) -> float:
    """The gradual schedule of Zhu & Gupta (2017), ``s_t = s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³``
    for sparsity ``s = 1 − density``, written for density (the same cubic): ``initial_density``
    up to ``start`` = t0, ``final_density`` from ``start + prunes·interval`` on (n = ``prunes``,
    Δt = ``interval``). It prunes fast first, while many redundant weights remain, and slowly
    near the end."""
    if step <= start:
        return initial_density
    progress = min((step - start) / (prunes * interval), 1.0)
    return final_density + (initial_density - final_density) * (1.0 - progress) ** 3


def gradual(model: nn.Module, train_step: TrainStep, score: ScoreFn, final_density: float, steps: int,
            start: int = 0, prunes: int = 10, interval: int = 1, initial_density: float = 1.0,
            pattern: Pattern = unstructured) -> Masks:
    """Gradual pruning: ``train_step(t)`` for ``t`` in ``range(steps)``, pruning to
    :func:`cubic_density` at ``t = start + k·interval`` for ``k = 0 … prunes``, each time just
    before that step, so the last ``steps − start − prunes·interval`` steps recover at the final
    density. Returns the final masks. Raises ValueError when the last pruning would not happen
    before ``steps``."""
    check_density(final_density, "gradual pruning")
    check_density(initial_density, "gradual pruning")
    last = start + prunes * interval
    if prunes < 1 or interval < 1 or last >= steps:
        raise ValueError(f"gradual pruning: last pruning at step {last} of {steps} (expected prunes ≥ 1, "
                         f"interval ≥ 1 and start + prunes·interval < steps)")
    for t in range(steps):
        if start <= t <= last and (t - start) % interval == 0:
            density = cubic_density(t, final_density, initial_density, start, prunes, interval)
            if density < 1.0:
                one_shot(model, score(model), density, pattern)
        train_step(t)
    return current_masks(model)


def iterative(model: nn.Module, fine_tune: Callable[[int], None], score: ScoreFn, final_density: float,
              rounds: int, pattern: Pattern = unstructured) -> Masks:
    """Iterative pruning (Han et al. 2015): ``rounds`` times, prune then ``fine_tune(round)``.
    Round ``r`` (from 1) prunes to ``final_density ** (r / rounds)``, removing the same fraction
    of the surviving weights each round. Returns the final masks."""
    check_density(final_density, "iterative pruning")
    if rounds < 1:
        raise ValueError(f"iterative pruning: rounds={rounds} (expected ≥ 1)")
    for r in range(1, rounds + 1):
        one_shot(model, score(model), final_density ** (r / rounds), pattern)
        fine_tune(r - 1)
    return current_masks(model)


class Rewind:
    """A snapshot of a model's parameters and buffers, restored after pruning: rewinding
    (Frankle et al. 2019, 2020) resets the surviving weights to their values at an early
    training step, while masked weights stay zero.

    Snapshots are taken by name, through pruning (``weight`` and ``weight_orig`` are the same
    tensor to it); the model's shapes must not change in between. Copies live on the tensors'
    devices."""

    def __init__(self, model: nn.Module) -> None:
        self._model = model
        self._state: Optional[Dict[Tuple[str, str], Tensor]] = None

    def record(self) -> None:
        """Takes the snapshot (replacing an earlier one)."""
        state = {}
        for name, module in self._model.named_modules():
            tensors = itertools.chain(module.named_parameters(recurse=False), module.named_buffers(recurse=False))
            for tensor_name, tensor in tensors:
                if tensor_name.endswith("_mask"):
                    continue
                base = tensor_name[:-len("_orig")] if tensor_name.endswith("_orig") else tensor_name
                state[(name, base if hasattr(module, base + "_mask") else tensor_name)] = tensor.detach().clone()
        self._state = state

    def restore(self) -> None:
        """Copies the snapshot back into the model; masked weights read zero, survivors read
        exactly their recorded values. Raises RuntimeError before :meth:`record`."""
        if self._state is None:
            raise RuntimeError("rewinding: nothing recorded (expected record() first)")
        with torch.no_grad():
            for (name, tensor_name), value in self._state.items():
                module = self._model.get_submodule(name)
                masked = hasattr(module, tensor_name + "_mask")
                getattr(module, tensor_name + "_orig" if masked else tensor_name).copy_(value)
            # module.weight is only recomputed in the next forward; refresh it for readers before that.
            for module in self._model.modules():
                for hook in pruning_hooks(module):
                    setattr(module, hook._tensor_name, hook.apply_mask(module))


def lottery_ticket(model: nn.Module, train_step: TrainStep, steps: int, rewind_step: int, score: ScoreFn,
                   density: float, rounds: int = 1, pattern: Pattern = unstructured) -> Masks:
    """Lottery ticket with rewinding (Frankle & Carbin 2019; Frankle et al. 2020): train
    ``steps`` steps recording the weights just before step ``rewind_step`` (k); then, ``rounds``
    times, prune to ``density ** (r / rounds)``, rewind the survivors to their step-k values and
    retrain steps k … ``steps − 1``. ``rewind_step=0`` rewinds to the initialization. The
    optimizer state is the caller's: momentum is not rewound. Returns the final masks."""
    check_density(density, "lottery ticket")
    if not 0 <= rewind_step < steps or rounds < 1:
        raise ValueError(f"lottery ticket: rewind_step={rewind_step}, steps={steps}, rounds={rounds} "
                         f"(expected 0 ≤ rewind_step < steps and rounds ≥ 1)")
    rewind = Rewind(model)
    for t in range(steps):
        if t == rewind_step:
            rewind.record()
        train_step(t)
    for r in range(1, rounds + 1):
        one_shot(model, score(model), density ** (r / rounds), pattern)
        rewind.restore()
        for t in range(rewind_step, steps):
            train_step(t)
    return current_masks(model)
