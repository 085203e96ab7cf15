"""Structured pruning that really removes units: output neurons or channels of a layer, with
the layers downstream adjusted to the new width, and attention heads. The result is a smaller
ordinary model; units that are kept compute exactly what they computed before.

Choose units with :func:`group_scores` (per-weight scores summed per row, channel or head) or
:func:`sparsert.prune.criteria.apoz`, then :func:`keep_top`. Parameters are replaced by new,
smaller ones: build the optimizer after pruning. Removing a unit drops its contribution
downstream, so the model's outputs are unchanged only when removed units output zero (dead
ReLUs, rows zeroed by a regularizer).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._layers import check_density, grouped, pruning_hooks

# Modules that act on each unit separately: they pass a unit pruning through unchanged.
UNITWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh,
            nn.Hardswish, nn.Hardsigmoid, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Identity,
            nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
            nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def group_scores(scores: Tensor, dim: int = 0, group_size: int = 1) -> Tensor:
    """Sums per-weight ``scores`` over groups of ``group_size`` consecutive indices along ``dim``:
    ``dim=0`` gives one score per output neuron or channel, ``group_size=head_dim`` one per head
    of a q/k/v projection. Raises ValueError when ``group_size`` does not divide the dimension."""
    return grouped(scores, dim, group_size, "group scores").sum(1)


def keep_top(unit_scores: Tensor, density: float) -> Tensor:
    """Indices, ascending, of the ``round(density × units)`` highest-scoring units (at least one)."""
    check_density(density, "keep_top")
    k = max(1, round(density * unit_scores.numel()))
    return unit_scores.topk(k).indices.sort().values


def prune_units(chain: Sequence[nn.Module], keep: Union[Tensor, Sequence[int]]) -> None:
    """Keeps only the output units ``keep`` of ``chain[0]`` (an ``nn.Linear`` or ``nn.Conv*``)
    and narrows everything up to the consumer ``chain[-1]`` (Linear or Conv) to match, in place.

    The modules between may be BatchNorm (its statistics are cut too), unit-wise activations,
    dropout and pooling, and one ``nn.Flatten`` (conv channels feeding a Linear: each channel's
    ``in_features / channels`` consecutive features go with it). Slicing an ``nn.Sequential``
    gives such a chain: ``prune_units(model[0:4], keep)`` for conv → bn → relu → conv.
    Raises ValueError for other modules in between, grouped convs, or masked weights."""
    if len(chain) < 2:
        raise ValueError(f"pruning units: chain of {len(chain)} module(s) "
                         f"(expected a producer first and its consumer last)")
    producer, consumer = chain[0], chain[-1]
    for end, module in (("first", producer), ("last", consumer)):
        if not isinstance(module, (nn.Linear,) + CONVS):
            raise ValueError(f"pruning units: {end} module is {type(module).__name__} (expected Linear or Conv)")
    units = producer.weight.shape[0]
    keep = _indices(keep, units, "pruning units")
    spread = 1  # consumer inputs per producer unit, > 1 after a Flatten
    batchnorms = []
    for module in chain[1:-1]:
        if isinstance(module, BATCHNORMS):
            batchnorms.append(module)
        elif isinstance(module, nn.Flatten):
            if module.start_dim != 1:
                raise ValueError(f"pruning units: Flatten(start_dim={module.start_dim}) (expected start_dim=1)")
            consumer_inputs = consumer.weight.shape[1]
            if not isinstance(consumer, nn.Linear) or consumer_inputs % units:
                raise ValueError(f"pruning units: Flatten of {units} channels feeds {type(consumer).__name__} with "
                                 f"{consumer_inputs} inputs (expected a Linear with a multiple of {units})")
            spread = consumer_inputs // units
        elif not isinstance(module, UNITWISE):
            raise ValueError(f"pruning units: {type(module).__name__} between producer and consumer "
                             f"(expected BatchNorm, Flatten or a unit-wise module)")
    if consumer.weight.shape[1] != units * spread:
        raise ValueError(f"pruning units: consumer {type(consumer).__name__} takes {consumer.weight.shape[1]} inputs "
                         f"(expected {units * spread} from {units} units)")
    for layer in (producer, consumer):
        _check_narrowable(layer, "pruning units")
    # Everything checked: no error can leave the chain half narrowed from here on.
    _narrow(producer, 0, keep)
    for bn in batchnorms:
        _narrow_batchnorm(bn, keep)
    _narrow(consumer, 1, (keep[:, None] * spread + torch.arange(spread)).flatten())


def prune_heads(q: nn.Linear, k: nn.Linear, v: nn.Linear, o: nn.Linear, num_heads: int,
                keep: Union[Tensor, Sequence[int]]) -> None:
    """Keeps only heads ``keep`` of an attention block given as four projections, in place: the
    heads' rows of ``q``, ``k``, ``v`` and their input columns of the output projection ``o``.
    The caller's module must then use ``len(keep)`` heads of the same head dim. Raises
    ValueError when the projections' widths do not split into ``num_heads`` equal heads."""
    width = q.out_features
    if width % num_heads or k.out_features != width or v.out_features != width or o.in_features != width:
        raise ValueError(f"pruning heads: q, k, v give {q.out_features}, {k.out_features}, {v.out_features} outputs, "
                         f"o takes {o.in_features} (expected equal widths divisible by num_heads={num_heads})")
    for layer in (q, k, v, o):
        _check_narrowable(layer, "pruning heads")
    head_dim = width // num_heads
    keep = _indices(keep, num_heads, "pruning heads")
    rows = (keep[:, None] * head_dim + torch.arange(head_dim)).flatten()
    for projection in (q, k, v):
        _narrow(projection, 0, rows)
    _narrow(o, 1, rows)


def prune_mha(mha: nn.MultiheadAttention, keep: Union[Tensor, Sequence[int]]) -> "PrunedMultiheadAttention":
    """A :class:`PrunedMultiheadAttention` computing what ``mha`` computes with only heads
    ``keep``; ``mha`` is left as it was. ``nn.MultiheadAttention`` ties its inner width to
    ``embed_dim`` and cannot hold fewer heads, hence the new module. Raises ValueError for
    ``add_bias_kv`` or ``add_zero_attn``, which it does not support."""
    if mha.bias_k is not None or mha.add_zero_attn:
        raise ValueError("pruning heads: MultiheadAttention with add_bias_kv or add_zero_attn (expected neither)")
    _check_narrowable(mha.out_proj, "pruning heads")
    if mha._qkv_same_embed_dim:
        weights = mha.in_proj_weight.chunk(3)
    else:
        weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
    biases = mha.in_proj_bias.chunk(3) if mha.in_proj_bias is not None else (None,) * 3
    q, k, v = (_linear(w, b) for w, b in zip(weights, biases))
    o = _linear(mha.out_proj.weight, mha.out_proj.bias)
    keep = _indices(keep, mha.num_heads, "pruning heads")
    prune_heads(q, k, v, o, mha.num_heads, keep)
    return PrunedMultiheadAttention(q, k, v, o, len(keep), dropout=mha.dropout, batch_first=mha.batch_first)


class PrunedMultiheadAttention(nn.Module):
    """Multi-head attention whose q/k/v projections are ``embed → num_heads·head_dim`` Linears,
    narrower than ``embed_dim`` after heads were removed; the output projection maps back.

    ``forward`` takes the arguments of ``nn.MultiheadAttention.forward`` and returns
    ``(output, weights or None)`` the same way: batched or unbatched inputs, ``batch_first``,
    bool (True = masked) or additive float ``attn_mask`` of shape ``(L, S)`` or
    ``(N·num_heads, L, S)`` and ``key_padding_mask`` of shape ``(N, S)``, ``is_causal`` used when
    no ``attn_mask`` is given, and attention dropout in training mode."""

    # nn.TransformerEncoderLayer reads these in its fast-path check; these values send it to
    # the ordinary path, which calls forward().
    in_proj_bias = None
    _qkv_same_embed_dim = False

    def __init__(self, q_proj: nn.Linear, k_proj: nn.Linear, v_proj: nn.Linear, out_proj: nn.Linear, num_heads: int,
                 dropout: float = 0.0, batch_first: bool = False) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = q_proj, k_proj, v_proj, out_proj
        self.num_heads = num_heads
        self.head_dim = q_proj.out_features // num_heads
        self.dropout = dropout
        self.batch_first = batch_first

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Optional[Tensor] = None,
                need_weights: bool = True, attn_mask: Optional[Tensor] = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            key_padding_mask = key_padding_mask.unsqueeze(0) if key_padding_mask is not None else None
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        # (L, N, E) from here on, as nn.MultiheadAttention works internally.
        length, batch, _ = query.shape
        source = key.shape[0]

        def heads(x: Tensor, n: int) -> Tensor:  # (n, N, H·d) → (N, H, n, d)
            return x.reshape(n, batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

        q = heads(self.q_proj(query), length)
        k = heads(self.k_proj(key), source)
        v = heads(self.v_proj(value), source)
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if attn_mask is None and is_causal:
            attn_mask = torch.ones(length, source, dtype=torch.bool, device=query.device).triu(1)
        if attn_mask is not None:
            mask = _additive(attn_mask, logits.dtype)
            logits = logits + (mask.view(batch, self.num_heads, length, source) if mask.dim() == 3 else mask)
        if key_padding_mask is not None:
            logits = logits + _additive(key_padding_mask, logits.dtype)[:, None, None, :]
        weights = F.dropout(logits.softmax(-1), self.dropout, self.training)
        out = (weights @ v).permute(2, 0, 1, 3).reshape(length, batch, self.num_heads * self.head_dim)
        out = self.out_proj(out)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        return out, (weights.squeeze(0) if unbatched else weights)


def _linear(weight: Tensor, bias: Optional[Tensor]) -> nn.Linear:
    """A new nn.Linear holding copies of ``weight`` and ``bias``."""
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device,
                       dtype=weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            linear.bias.copy_(bias)
    return linear


def _additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool mask (True = may not attend) as 0 / −inf; a float mask as it is."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
    return mask.to(dtype)


def _indices(keep: Union[Tensor, Sequence[int]], units: int, action: str) -> Tensor:
    keep = torch.as_tensor(keep, dtype=torch.long).flatten().cpu()
    if keep.numel() == 0 or keep.min() < 0 or keep.max() >= units or keep.unique().numel() != keep.numel():
        raise ValueError(f"{action}: keep {keep.tolist()} (expected distinct indices in [0, {units}), at least one)")
    return keep.sort().values


def _check_narrowable(layer: nn.Module, action: str) -> None:
    if pruning_hooks(layer):
        raise ValueError(f"{action}: {type(layer).__name__} carries a pruning mask "
                         f"(expected none; call sparsert.prune.remove first)")
    if isinstance(layer, CONVS) and layer.groups != 1:
        raise ValueError(f"{action}: {type(layer).__name__} with groups={layer.groups} (expected groups=1)")


def _narrow(layer: nn.Module, dim: int, index: Tensor) -> None:
    """Keeps ``index`` along ``dim`` of a Linear's or Conv's weight: 0 = outputs (with the bias),
    1 = inputs."""
    index = index.to(layer.weight.device)
    layer.weight = nn.Parameter(layer.weight.detach().index_select(dim, index).clone(),
                                requires_grad=layer.weight.requires_grad)
    if dim == 0 and layer.bias is not None:
        layer.bias = nn.Parameter(layer.bias.detach()[index].clone(), requires_grad=layer.bias.requires_grad)
    attr = ("out_features", "in_features") if isinstance(layer, nn.Linear) else ("out_channels", "in_channels")
    setattr(layer, attr[dim], index.numel())


def _narrow_batchnorm(bn: nn.Module, index: Tensor) -> None:
    for name in ("weight", "bias"):
        p = getattr(bn, name)
        if p is not None:
            setattr(bn, name, nn.Parameter(p.detach()[index].clone(), requires_grad=p.requires_grad))
    for name in ("running_mean", "running_var"):
        buffer = getattr(bn, name)
        if buffer is not None:
            setattr(bn, name, buffer[index].clone())
    bn.num_features = index.numel()
