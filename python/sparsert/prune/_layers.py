"""What the toolkit prunes and how it reads a weight, whether or not a mask is already on it.

Scores and masks are keyed by the weight's qualified name, as in ``model.state_dict()`` before
pruning (``"fc1.weight"``); :func:`torch.nn.utils.prune` renames the parameter to
``weight_orig`` and adds a ``weight_mask`` buffer, and the helpers here see through that.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

Scores = Dict[str, Tensor]
Masks = Dict[str, Tensor]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def layers(model: nn.Module) -> Dict[str, nn.Module]:
    """``{"<module>.weight": module}`` for every Linear and Conv layer, in module order."""
    return {qualified(name, "weight"): m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def select_layers(model: nn.Module, names: Optional[Iterable[str]], kinds: Tuple[type, ...],
                  action: str) -> Dict[str, nn.Module]:
    """The :func:`layers` of the given kinds, restricted to ``names`` when given, in module order.
    Raises ValueError for a name that is not such a layer's weight."""
    found = {key: m for key, m in layers(model).items() if isinstance(m, kinds)}
    if names is None:
        return found
    wanted = set(names)
    unknown = sorted(wanted - set(found))
    if unknown:
        raise ValueError(f"{action}: {unknown} are not {' or '.join(k.__name__ for k in kinds)} weights of the model "
                         f"(expected names among {list(found)})")
    return {key: m for key, m in found.items() if key in wanted}


def qualified(module_name: str, tensor: str) -> str:
    """``("a.b", "weight")`` → ``"a.b.weight"``; the model itself (``""``) → ``"weight"``."""
    return f"{module_name}.{tensor}" if module_name else tensor


def owner(model: nn.Module, key: str, action: str) -> Tuple[nn.Module, str]:
    """The module holding the weight ``key`` and the tensor's name in it."""
    module_name, _, tensor = key.rpartition(".")
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
    return getattr(module, name + "_orig" if hasattr(module, name + "_mask") else name)


def zeros_like_weights(model: nn.Module) -> Scores:
    """Zero tensors shaped like each weight of :func:`layers`, to accumulate scores in."""
    return {key: torch.zeros_like(effective_weight(m)) for key, m in layers(model).items()}


def pruning_hooks(module: nn.Module) -> List[torch_prune.BasePruningMethod]:
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


def calibrate(model: nn.Module, inputs: Iterable[Tensor], hooks: Dict[nn.Module, Callable], action: str,
              forward_hook: bool = False) -> None:
    """Runs ``inputs`` through ``model`` in eval mode without gradients, with ``hooks`` attached
    as forward pre-hooks (they see inputs) or forward hooks (they see outputs), removed after."""
    handles = [m.register_forward_hook(h) if forward_hook else m.register_forward_pre_hook(h)
               for m, h in hooks.items()]
    count = 0
    try:
        with eval_mode(model), torch.no_grad():
            for x in inputs:
                model(x)
                count += 1
    finally:
        for handle in handles:
            handle.remove()
    if count == 0:
        raise ValueError(f"{action}: no calibration inputs (expected at least one batch)")


def grouped(t: Tensor, dim: int, group_size: int, action: str) -> Tensor:
    """``t`` as ``(groups, rest)``: row ``g`` holds indices ``g·group_size … (g+1)·group_size − 1``
    along ``dim`` with everything else. Raises ValueError when ``group_size`` does not divide it."""
    size = t.shape[dim]
    if group_size < 1 or size % group_size:
        raise ValueError(f"{action}: group_size {group_size} does not divide dim {dim} of size {size} "
                         f"(expected a divisor, e.g. head_dim)")
    return t.movedim(dim, 0).reshape(size // group_size, -1)


def check_density(density: float, action: str) -> None:
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"{action}: density {density!r} (expected 0 ≤ density ≤ 1, the fraction kept)")


def check_nm(n: int, m: int, action: str) -> None:
    if not (isinstance(n, int) and isinstance(m, int) and 1 <= n < m):
        raise ValueError(f"{action}: n={n!r}, m={m!r} (expected ints with 1 ≤ n < m, e.g. 2:4)")

