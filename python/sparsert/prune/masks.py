"""Masks on a model: :func:`apply` attaches keep-masks with
:func:`torch.nn.utils.prune.custom_from_mask`, so a pruned model is an ordinary PyTorch model that
fine-tunes with masked weights held at zero; :func:`remove` bakes the masks (and L0 gates) into
plain weights; :func:`current_masks` reads them back."""

from __future__ import annotations

from typing import Any, Mapping, Union

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils import prune as torch_prune

from ._layers import Masks, effective_weight, owner, pruning_hooks, qualified
from .regularizers import HardConcreteGate


def apply(model: nn.Module, masks: Union[Masks, Any]) -> None:
    """Masks each named weight in place with ``torch.nn.utils.prune.custom_from_mask``; a mask on
    a weight that already has one multiplies into it. ``masks``: ``{weight name: bool mask}``, or anything
    whose ``masks`` attribute is one (a :class:`~sparsert.prune.plan.Plan`). Raises ValueError for an unknown
    name or a shape that differs from the weight's, TypeError for another kind of ``masks``."""
    masks = getattr(masks, "masks", masks)
    if not isinstance(masks, Mapping):
        raise TypeError(f"applying masks: got {type(masks).__name__} (expected a dict of weight name -> bool mask, "
                        f"or a sparsert.prune.Plan)")
    for key, mask in masks.items():
        module, tensor = owner(model, key, "applying masks")
        current = effective_weight(module, tensor)
        if mask.shape != current.shape:
            raise ValueError(f"applying masks: mask for '{key}' has shape {tuple(mask.shape)} "
                             f"(expected {tuple(current.shape)}, the weight's)")
        torch_prune.custom_from_mask(module, tensor, mask.to(current.device))


def remove(model: nn.Module) -> None:
    """Bakes every pruning mask into its weight (``torch.nn.utils.prune.remove``) and every
    :class:`~sparsert.prune.regularizers.HardConcreteGate` into its weight at the gate's
    deterministic value, leaving plain parameters with zeros where units were pruned."""
    for module in list(model.modules()):
        for hook in pruning_hooks(module):
            torch_prune.remove(module, hook._tensor_name)
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                gates = list(module.parametrizations[name])
                if all(isinstance(g, HardConcreteGate) for g in gates):
                    for g in gates:
                        g.eval()
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)


def current_masks(model: nn.Module) -> Masks:
    """``{weight name: bool mask}`` for every tensor of ``model`` that carries a pruning mask."""
    found = {}
    for name, module in model.named_modules():
        for hook in pruning_hooks(module):
            tensor = hook._tensor_name
            found[qualified(name, tensor)] = getattr(module, tensor + "_mask").bool()
    return found
