"""What the toolkit prunes and how it reads a weight, whether or not a mask is already on it.

Scores and masks are keyed by the weight's qualified name, as in ``model.state_dict()`` before
pruning (``"fc1.weight"``); :func:`torch.nn.utils.prune` renames the parameter to
``weight_orig`` and adds a ``weight_mask`` buffer, and the helpers here see through that.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

Scores = Dict[str, Tensor]
Masks = Dict[str, Tensor]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layers(model: nn.Module) -> Dict[str, nn.Module]:
    """``{"<module>.weight": module}`` for every Linear and Conv layer, in module order."""
    return {_join(name, "weight"): m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def split(key: str) -> Tuple[str, str]:
    """``"a.b.weight"`` → ``("a.b", "weight")``; a top-level ``"weight"`` → ``("", "weight")``."""
    module, _, tensor = key.rpartition(".")
    return module, tensor


def owner(model: nn.Module, key: str, action: str) -> Tuple[nn.Module, str]:
    """The module holding the weight ``key`` and the tensor's name in it."""
    module_name, tensor = split(key)
    try:
        module = model.get_submodule(module_name)
    except AttributeError:
        raise ValueError(f"{action}: no module '{module_name}' for '{key}' in {type(model).__name__}") from None
    if not hasattr(module, tensor):
        raise ValueError(f"{action}: module '{module_name}' has no tensor '{tensor}' (for '{key}')")
    return module, tensor


def effective_weight(module: nn.Module, name: str = "weight") -> Tensor:
    """The weight as the forward pass uses it: ``orig * mask`` when masked, computed afresh
    because ``module.weight`` is only refreshed by the next forward after an optimizer step."""
    mask = getattr(module, name + "_mask", None)
    if mask is None:
        return getattr(module, name)
    return getattr(module, name + "_orig") * mask


def leaf_parameter(module: nn.Module, name: str = "weight") -> nn.Parameter:
    """The leaf parameter gradients land on: ``weight_orig`` when masked, else ``weight``.

    Its gradient is ``mask * ∂L/∂w``, so products with the effective weight (zero where masked)
    equal those with ``∂L/∂w``."""
    return getattr(module, name + "_orig", None) if hasattr(module, name + "_mask") else getattr(module, name)


def pruning_hooks(module: nn.Module) -> list:
    """The torch.nn.utils.prune reparametrizations on ``module`` (one per masked tensor)."""
    return [h for h in module._forward_pre_hooks.values() if isinstance(h, torch_prune.BasePruningMethod)]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for calibration passes (no dropout, BatchNorm statistics left alone), restoring
    each submodule's own flag afterwards."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag


def check_density(density: float, action: str) -> None:
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"{action}: density {density!r} (expected 0 ≤ density ≤ 1, the fraction kept)")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def zeros_like_weights(model: nn.Module) -> Scores:
    return {key: torch.zeros_like(effective_weight(m)) for key, m in layers(model).items()}
