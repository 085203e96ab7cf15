"""Regularizers that make weights prunable during training: each returns a penalty to add to
the loss, ``loss = task_loss + λ · penalty``.

- :func:`l1_penalty` drives single weights to zero (then prune unstructured by magnitude);
- :func:`group_lasso_penalty` drives whole rows, output channels or heads to zero together
  (then remove them with :mod:`sparsert.prune.structured`);
- :class:`HardConcreteGate` with :func:`add_l0_gates` and :func:`l0_penalty` learns which
  weights or units to keep, by a differentiable surrogate of their count (L0).
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ._layers import PRUNABLE, effective_weight, grouped, layers, select_layers

GATE_GRANULARITIES = ("weight", "unit")


def l1_penalty(model: nn.Module) -> Tensor:
    """``Σ |w|`` over the weights of the model's Linear and Conv layers (biases excluded)."""
    return sum(effective_weight(m).abs().sum() for m in layers(model).values())


def group_lasso_penalty(weight: Tensor, dim: int = 0, group_size: int = 1) -> Tensor:
    """Group lasso ``Σ_g √|g| · ‖w_g‖₂`` (Yuan & Lin 2006) over groups of ``group_size``
    consecutive indices along ``dim``: ``dim=0, group_size=1`` groups a layer's rows (neurons,
    output channels); ``group_size=head_dim`` groups the rows of a q/k/v projection by head, and
    ``dim=1`` groups an output projection's inputs. The ``√|g|`` factor keeps large groups
    from being favoured. Raises ValueError when ``group_size`` does not divide the dimension."""
    groups = grouped(weight, dim, group_size, "group lasso")
    return math.sqrt(groups.shape[1]) * groups.norm(dim=1).sum()


class HardConcreteGate(nn.Module):
    """L0 gates (Louizos, Welling & Kingma 2018) as a parametrization: ``forward(x) = x · z``.

    ``z ∈ [0, 1]`` is a hard-concrete sample, a stretched binary-concrete variable clipped so
    that exact zeros and ones have positive probability, with one learned ``log_alpha`` per gate.
    Training samples ``z`` (the reparametrization trick carries gradients to ``log_alpha``);
    eval uses the deterministic ``clamp(sigmoid(log_alpha)·(ζ−γ)+γ, 0, 1)``. The gate's ``shape``
    lines up with the leading dims of the tensor it gates: a weight's shape gives one gate per
    weight, ``(out,)`` one per row or channel, shared by the weight and the bias."""

    def __init__(self, shape: Tuple[int, ...], initial_keep: float = 0.9, temperature: float = 2 / 3,
                 stretch: Tuple[float, float] = (-0.1, 1.1)) -> None:
        super().__init__()
        if not 0.0 < initial_keep < 1.0:
            raise ValueError(f"hard-concrete gate: initial_keep {initial_keep!r} (expected 0 < initial_keep < 1)")
        self.log_alpha = nn.Parameter(torch.full(tuple(shape), math.log(initial_keep / (1 - initial_keep))))
        self.temperature = temperature
        self.gamma, self.zeta = stretch

    def gate(self) -> Tensor:
        """A sample of ``z`` in training mode, its deterministic value in eval mode."""
        if self.training:
            # Clamped away from 0 and 1 so both logarithms stay finite.
            u = torch.rand_like(self.log_alpha).clamp(1e-6, 1 - 1e-6)
            s = torch.sigmoid((u.log() - (-u).log1p() + self.log_alpha) / self.temperature)
        else:
            s = torch.sigmoid(self.log_alpha)
        return (s * (self.zeta - self.gamma) + self.gamma).clamp(0.0, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        z = self.gate()
        return x * z.view(z.shape + (1,) * (x.dim() - z.dim()))

    def expected_l0(self) -> Tensor:
        """``Σ P(z ≠ 0) = Σ sigmoid(log_alpha − β·log(−γ/ζ))``: the expected number of open gates."""
        return torch.sigmoid(self.log_alpha - self.temperature * math.log(-self.gamma / self.zeta)).sum()


def add_l0_gates(model: nn.Module, granularity: str = "weight", initial_keep: float = 0.9,
                 layers_to_gate: Optional[Iterable[str]] = None) -> Dict[str, HardConcreteGate]:
    """Registers a :class:`HardConcreteGate` on the weight of every Linear and Conv layer (or
    those named in ``layers_to_gate``, as ``"fc1.weight"``): one gate per weight
    (``"weight"``), or one per output unit (``"unit"``) gating its row and its bias, so that a
    closed gate silences the unit for :func:`sparsert.prune.structured.prune_units`.

    Returns ``{weight name: gate}``. Train with :func:`l0_penalty` added to the loss, then
    :func:`sparsert.prune.remove` bakes the gates into the weights. Raises ValueError on a weight
    that already carries a pruning mask (call :func:`sparsert.prune.remove` first)."""
    if granularity not in GATE_GRANULARITIES:
        raise ValueError(f"adding l0 gates: granularity {granularity!r} "
                         f"(expected one of {', '.join(GATE_GRANULARITIES)})")
    gates = {}
    for key, m in select_layers(model, layers_to_gate, PRUNABLE, "adding l0 gates").items():
        if hasattr(m, "weight_mask"):
            raise ValueError(f"adding l0 gates: '{key}' carries a pruning mask "
                             f"(expected none; call sparsert.prune.remove first)")
        shape = m.weight.shape if granularity == "weight" else m.weight.shape[:1]
        gates[key] = HardConcreteGate(shape, initial_keep).to(m.weight.device)
        parametrize.register_parametrization(m, "weight", gates[key])
        if granularity == "unit" and m.bias is not None:
            parametrize.register_parametrization(m, "bias", gates[key])
    return gates


def l0_penalty(model: nn.Module) -> Tensor:
    """``Σ`` expected L0 of every :class:`HardConcreteGate` in ``model`` (a shared gate once)."""
    return sum(g.expected_l0() for g in model.modules() if isinstance(g, HardConcreteGate))
