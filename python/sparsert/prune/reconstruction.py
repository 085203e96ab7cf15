"""One-shot layer-wise reconstruction in the Optimal Brain Surgeon family, after SparseGPT
(Frantar & Alistarh 2023): prune each Linear layer to a density or to N:M without retraining,
and update its remaining weights so that the layer's outputs on calibration data change as
little as possible.

For one row ``w`` of a layer with calibration inputs ``X`` (rows = samples), the error
``‖X(w − ŵ)‖²`` has Hessian ``H = 2XᵀX``, the same for every row. OBS removes weight ``j``
at cost ``w_j² / [H⁻¹]_jj`` and corrects the others by ``−(w_j / [H⁻¹]_jj) · H⁻¹_{:,j}``. Taking
the columns left to right, each step's inverse Hessian (that of the columns not yet
processed) is read off one upper Cholesky factor ``U`` of ``H⁻¹``: row ``j`` of ``U`` is
``H_j⁻¹[j, j:] / √[H_j⁻¹]_jj``. So the cost is ``w_j² / U_jj²`` and the correction is
``−(w_j / U_jj) · U[j, j:]``, one factorization for all rows. Columns go in blocks:
corrections stay inside the block until it is done, then reach later columns in one matrix
product; the mask is chosen per block from the weights as updated so far.
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch
from torch import Tensor, nn

from ._layers import Masks, calibrate, check_density, check_nm, select_layers
from .masks import apply


def sparsegpt_layer(weight: Tensor, hessian: Tensor, density: float = 0.5, nm: Optional[Tuple[int, int]] = None,
                    block_size: int = 128, damping: float = 0.01) -> Tuple[Tensor, Tensor]:
    """Prunes one ``(out, in)`` weight given ``hessian = XᵀX`` ``(in, in)`` of its inputs.

    Keeps ``density`` of each block of ``block_size`` columns (rounded), or, with ``nm=(n, m)``,
    ``n`` of every ``m`` consecutive inputs of each row (``density`` is then ignored).
    ``damping`` adds that fraction of the mean diagonal to the diagonal, so that rank-deficient
    calibration data (fewer samples than inputs) still inverts. Weights of inputs that are
    always zero in the calibration data (zero diagonal of ``hessian``) are removed as well, so a
    layer can end below ``density``. Returns ``(new weight, keep mask)``, the weight zero
    wherever the mask is False; computes in float32 and returns the weight's dtype."""
    check_density(density, "sparsegpt")
    if nm is not None:
        n, m = nm
        check_nm(n, m, "sparsegpt")
        block_size = -(-block_size // m) * m  # whole groups per block, so a group never spans two
    w = weight.detach().float().clone()
    h = hessian.detach().float().clone()
    if h.shape != (w.shape[1], w.shape[1]):
        raise ValueError(f"sparsegpt: hessian has shape {tuple(h.shape)} (expected {(w.shape[1], w.shape[1])} "
                         f"for weight {tuple(w.shape)})")
    # An input that is always zero has no curvature: its weights do nothing, drop them.
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h.diagonal().add_(damping * h.diagonal().mean())
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)

    cols = w.shape[1]
    pruned = torch.zeros_like(w, dtype=torch.bool)
    for start in range(0, cols, block_size):
        end = min(start + block_size, cols)
        block = w[:, start:end].clone()
        u_block = u[start:end, start:end]
        diag = u_block.diagonal()
        errors = torch.zeros_like(block)
        block_pruned = torch.zeros_like(block, dtype=torch.bool)
        if nm is None:
            saliency = (block.square() / diag.square()).flatten()
            count = saliency.numel() - round(density * saliency.numel())  # keeps as many as the patterns do
            block_pruned.view(-1)[saliency.topk(count, largest=False).indices] = True
        for j in range(end - start):
            if nm is not None and j % m == 0:
                group = block[:, j:j + m].square() / diag[j:j + m].square()
                count = max(group.shape[1] - n, 0)
                block_pruned[:, j:j + m].scatter_(1, group.topk(count, dim=1, largest=False).indices, True)
            column = block[:, j]
            kept = torch.where(block_pruned[:, j], torch.zeros_like(column), column)
            error = (column - kept) / diag[j]
            block[:, j:] -= error[:, None] * u_block[j, j:][None, :]
            block[:, j] = kept  # already equal up to rounding; exact zeros for the mask
            errors[:, j] = error
        w[:, start:end] = block
        w[:, end:] -= errors @ u[start:end, end:]
        pruned[:, start:end] = block_pruned
    # Dead columns were zeroed above and receive no corrections (H⁻¹ has no entries linking them).
    return w.to(weight.dtype), ~pruned & ~dead[None, :]


def sparsegpt(model: nn.Module, inputs: Iterable[Tensor], density: float = 0.5, nm: Optional[Tuple[int, int]] = None,
              layers_to_prune: Optional[Iterable[str]] = None, block_size: int = 128, damping: float = 0.01) -> Masks:
    """Prunes every ``nn.Linear`` of ``model`` (or those named in ``layers_to_prune``, as
    ``"fc1.weight"``) in place with :func:`sparsegpt_layer`, then masks it with
    :func:`sparsert.prune.apply`. Returns the masks.

    Layers go in module order, each calibrated on ``inputs`` run through the model as pruned so
    far, so later layers compensate for earlier ones. ``inputs`` is iterated once per layer.
    Expects unmasked layers: raises ValueError on one that already carries a mask, since the
    reconstruction may move weights that the old mask would then hide."""
    inputs = list(inputs)
    if not inputs:
        raise ValueError("sparsegpt: no calibration inputs (expected at least one batch)")
    masks = {}
    for key, layer in select_layers(model, layers_to_prune, (nn.Linear,), "sparsegpt").items():
        if hasattr(layer, "weight_mask"):
            raise ValueError(f"sparsegpt: '{key}' already carries a mask (expected an unpruned layer)")
        hessian = _input_hessian(model, layer, inputs)
        new_weight, keep = sparsegpt_layer(layer.weight, hessian, density, nm, block_size, damping)
        with torch.no_grad():
            layer.weight.copy_(new_weight)
        apply(model, {key: keep})
        masks[key] = keep
    return masks


def _input_hessian(model: nn.Module, layer: nn.Linear, inputs: list) -> Tensor:
    """``XᵀX`` of the rows reaching ``layer`` when ``inputs`` run through ``model``."""
    hessian = torch.zeros(layer.in_features, layer.in_features, device=layer.weight.device)

    def record(module: nn.Module, args: tuple) -> None:
        x = args[0].detach().reshape(-1, layer.in_features).float()
        hessian.addmm_(x.T, x)

    calibrate(model, inputs, {layer: record}, "sparsegpt")
    return hessian
