"""Patterns: from scores to boolean keep-masks (:mod:`sparsert.prune.masks` puts them on a model).

Each pattern views a weight as rows, ``weight.reshape(out, -1)`` (a conv's row is its
``in × kh × kw`` inputs), and keeps the highest-scoring weights, groups or blocks. Counts are
exact: ``round(density × size)`` survive in each selection scope, ties broken by ``topk``.
Weights already masked should score lowest: the schedules in
:mod:`sparsert.prune.schedules` see to that.
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._layers import Masks, Scores, check_density, check_nm

SCOPES = ("layer", "row", "global")


def unstructured(scores: Scores, density: float, scope: str = "layer") -> Masks:
    """Keeps the top ``density`` fraction of weights by score: within each layer (``"layer"``),
    within each output row (``"row"``, as Wanda compares), or across all layers at once
    (``"global"``, which lets layer densities differ)."""
    check_density(density, "unstructured pattern")
    if scope == "layer":
        return {key: _top(s.flatten(), density).view(s.shape) for key, s in scores.items()}
    if scope == "row":
        return {key: _top_per_row(_rows(s), density).view(s.shape) for key, s in scores.items()}
    if scope == "global":
        keep = _top(torch.cat([s.flatten() for s in scores.values()]), density)
        sizes = [s.numel() for s in scores.values()]
        return {key: part.view(s.shape) for (key, s), part in zip(scores.items(), keep.split(sizes))}
    raise ValueError(f"unstructured pattern: scope {scope!r} (expected one of {', '.join(SCOPES)})")


def nm(scores: Scores, n: int = 2, m: int = 4) -> Masks:
    """N:M semi-structured: in every group of ``m`` consecutive weights of a row, keeps the ``n``
    highest-scoring (2:4, 4:8, ...). A row length that is not a multiple of ``m`` ends in a
    shorter group that keeps at most ``n``, as :class:`sparsert.NM` pads it."""
    check_nm(n, m, "nm pattern")
    masks = {}
    for key, s in scores.items():
        rows = _rows(s)
        groups = F.pad(rows, (0, -rows.shape[1] % m), value=float("-inf")).view(rows.shape[0], -1, m)
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.topk(n, dim=2).indices, True)
        masks[key] = keep.view(rows.shape[0], -1)[:, :rows.shape[1]].reshape(s.shape)
    return masks


def blocks(scores: Scores, density: float, block: Tuple[int, int] = (1, 4), scope: str = "layer") -> Masks:
    """Keeps whole ``block = (r, c)`` tiles of the row view (1×4, 4×1, 4×4, 8×1, 16×1, 1×8, ...)
    ranked by summed score; ``scope`` as for :func:`unstructured`, counted in blocks. An edge tile
    of a side that is not a multiple of the block holds fewer weights and ranks by its mean score
    times the full tile's size: by its plain sum it went first (a 10-class classifier at 4×4, 50%,
    lost classes 8 and 9 whole)."""
    if not (isinstance(block, (tuple, list)) and len(block) == 2 and all(isinstance(v, int) and v >= 1 for v in block)):
        raise ValueError(f"block pattern: block is {block!r} (expected a pair of positive ints (r, c), e.g. (1, 4))")
    r, c = block
    sums = {}
    for key, s in scores.items():
        rows = _rows(s)
        sums[key] = _tile_sums(rows, r, c) * (r * c / _tile_sums(torch.ones_like(rows), r, c))
    keep_blocks = unstructured(sums, density, scope)
    masks = {}
    for key, s in scores.items():
        rows = _rows(s)
        tiles = keep_blocks[key].repeat_interleave(r, 0).repeat_interleave(c, 1)
        masks[key] = tiles[:rows.shape[0], :rows.shape[1]].reshape(s.shape)
    return masks


def _rows(s: Tensor) -> Tensor:
    return s.reshape(s.shape[0], -1)


def _tile_sums(rows: Tensor, r: int, c: int) -> Tensor:
    """Sums over the r × c tiles of ``rows``, edge tiles zero-padded."""
    padded = F.pad(rows, (0, -rows.shape[1] % c, 0, -rows.shape[0] % r))
    return padded.view(padded.shape[0] // r, r, padded.shape[1] // c, c).sum((1, 3))


def _top(flat: Tensor, density: float) -> Tensor:
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.topk(round(density * flat.numel())).indices] = True
    return keep


def _top_per_row(rows: Tensor, density: float) -> Tensor:
    k = round(density * rows.shape[1])
    return torch.zeros_like(rows, dtype=torch.bool).scatter_(1, rows.topk(k, dim=1).indices, True)
