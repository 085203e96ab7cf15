"""Importance criteria: from a model (and, where the method needs them, calibration data and a
loss) to ``{weight name: score}``, one score per weight, higher meaning keep.

Every function scores the weights of the model's ``nn.Linear`` and ``nn.Conv*`` layers unless
it says otherwise, reads masked weights as the forward pass does (pruned entries score as
zero weights), and runs calibration passes in eval mode, restoring the mode afterwards. Feed
the scores to a pattern in :mod:`sparsert.prune.patterns` to get masks.

``batches`` are ``(inputs, targets)`` pairs with ``loss_fn(model(inputs), targets)`` a scalar;
``inputs`` are plain input tensors, for criteria that need only activations.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple, Type

import torch
from torch import Tensor, nn

from ._layers import Scores, calibrate, effective_weight, eval_mode, layers, leaf_parameter, zeros_like_weights

LossFn = Callable[[Tensor, Tensor], Tensor]


def magnitude(model: nn.Module) -> Scores:
    """``|w|``. Threshold it per layer or globally with the pattern's ``scope``."""
    return {key: effective_weight(m).detach().abs() for key, m in layers(model).items()}


def random(model: nn.Module, generator: Optional[torch.Generator] = None) -> Scores:
    """Uniform random scores: the baseline every other criterion must beat. Drawn on the CPU
    from ``generator`` when given, for repeatable masks, then moved to each weight's device."""
    return {key: torch.rand(m.weight.shape, generator=generator).to(m.weight.device)
            for key, m in layers(model).items()}


def taylor(model: nn.Module, batches: Iterable[Tuple[Tensor, Tensor]], loss_fn: LossFn) -> Scores:
    """First-order Taylor sensitivity ``mean_b |w · ∂L_b/∂w|`` over calibration batches
    (Molchanov et al. 2017/2019): the loss change when ``w`` is set to zero, to first order.

    The absolute value is taken per batch: near convergence the mean gradient is close to zero
    and would cancel what each batch says."""
    found = layers(model)
    scores = zeros_like_weights(model)
    count = 0
    for grads in _gradients(model, batches, loss_fn):
        for key, m in found.items():
            scores[key] += (effective_weight(m).detach() * grads[key]).abs()
        count += 1
    return _mean(scores, count, "taylor")


def fisher(model: nn.Module, batches: Iterable[Tuple[Tensor, Tensor]], loss_fn: LossFn) -> Scores:
    """Optimal Brain Damage saliency ``½ w² H_jj`` (LeCun et al. 1990) with the Hessian diagonal
    approximated by the empirical Fisher ``mean_b (∂L_b/∂w)²`` over calibration batches."""
    fisher_diag = zeros_like_weights(model)
    count = 0
    for grads in _gradients(model, batches, loss_fn):
        for key in fisher_diag:
            fisher_diag[key] += grads[key].square()
        count += 1
    fisher_diag = _mean(fisher_diag, count, "fisher")
    return {key: 0.5 * effective_weight(m).detach().square() * fisher_diag[key] for key, m in layers(model).items()}


def wanda(model: nn.Module, inputs: Iterable[Tensor]) -> Scores:
    """Activation-aware magnitude ``|w_ij| · ‖x_j‖₂`` (Sun et al. 2023, "Wanda"), with the norm of
    each input feature taken over every calibration row reaching the layer.

    Scores ``nn.Linear`` layers only (the method is defined on matrix products); inputs of more
    than 2 dims are flattened to rows of ``in_features``. The paper compares scores within each
    output row: use ``unstructured(..., scope="row")``."""
    linears = {key: m for key, m in layers(model).items() if isinstance(m, nn.Linear)}
    sq_norms = {key: torch.zeros(m.in_features, device=m.weight.device) for key, m in linears.items()}

    def hook(key: str):
        def record(module: nn.Module, args: tuple) -> None:
            sq_norms[key] += args[0].detach().reshape(-1, module.in_features).float().square().sum(0)
        return record

    calibrate(model, inputs, {m: hook(key) for key, m in linears.items()}, "wanda")
    return {key: effective_weight(m).detach().abs() * sq_norms[key].sqrt().to(m.weight.dtype)
            for key, m in linears.items()}


def apoz(model: nn.Module, inputs: Iterable[Tensor], activations: Tuple[Type[nn.Module], ...] = (nn.ReLU,),
         dim: int = 1) -> Dict[str, Tensor]:
    """Average percentage of zeros (Hu et al. 2016): for every activation module (``nn.ReLU`` by
    default; a functional ``relu`` in ``forward`` is invisible), the fraction of its outputs
    that are zero per unit along ``dim`` (features of ``(N, F)``, channels of ``(N, C, H, W)``).

    Returns ``{activation module name: fraction per unit}``, a per-neuron or per-channel score
    for :func:`sparsert.prune.structured.prune_units` where lower means more useful: keep
    ``1 - apoz`` with :func:`~sparsert.prune.structured.keep_top`."""
    acts = {name: m for name, m in model.named_modules() if isinstance(m, activations)}
    zeros: Dict[str, Tensor] = {}
    counts: Dict[str, int] = {}

    def hook(name: str):
        def record(module: nn.Module, args: tuple, out: Tensor) -> None:
            per_unit = (out.detach() == 0).movedim(dim, 0).reshape(out.shape[dim], -1)
            zeros[name] = zeros.get(name, 0) + per_unit.sum(1, dtype=torch.float64)
            counts[name] = counts.get(name, 0) + per_unit.shape[1]
        return record

    calibrate(model, inputs, {m: hook(name) for name, m in acts.items()}, "apoz", forward_hook=True)
    return {name: (zeros[name] / counts[name]).float() for name in zeros}


class Movement:
    """Movement scores (Sanh et al. 2020) learned during fine-tuning: ``S = −Σ_t w_t · ∂L/∂w_t``,
    large for weights moving away from zero.

    Create it before fine-tuning and call :meth:`update` in the training step, after
    ``loss.backward()`` and before ``optimizer.step()``::

        movement = Movement(model)
        for x, y in loader:
            loss_fn(model(x), y).backward()
            movement.update()
            optimizer.step(); optimizer.zero_grad()
        masks = unstructured(movement.scores(), density=0.2)

    Not thread-safe; scores live on the weights' devices."""

    def __init__(self, model: nn.Module) -> None:
        self._layers = layers(model)
        self._scores = zeros_like_weights(model)

    def update(self) -> None:
        """Accumulates ``−w · ∂L/∂w`` from the gradients now on the weights."""
        for key, m in self._layers.items():
            grad = leaf_parameter(m).grad
            if grad is None:
                raise RuntimeError(f"movement update: '{key}' has no gradient (expected a call after loss.backward())")
            self._scores[key] -= effective_weight(m).detach() * grad

    def scores(self) -> Scores:
        """A copy of the scores accumulated so far."""
        return {key: s.clone() for key, s in self._scores.items()}


def _gradients(model: nn.Module, batches: Iterable[Tuple[Tensor, Tensor]], loss_fn: LossFn) -> Iterator[Scores]:
    """``{weight name: ∂L_b/∂w}`` per batch, by autograd.grad so the model's ``.grad`` is untouched."""
    found = layers(model)
    params = [leaf_parameter(m) for m in found.values()]
    with eval_mode(model):
        for inputs, targets in batches:
            grads = torch.autograd.grad(loss_fn(model(inputs), targets), params, allow_unused=True)
            yield {key: torch.zeros_like(p) if g is None else g for key, p, g in zip(found, params, grads)}


def _mean(sums: Scores, count: int, action: str) -> Scores:
    if count == 0:
        raise ValueError(f"{action}: no calibration batches (expected at least one (inputs, targets) pair)")
    return {key: s / count for key, s in sums.items()}
