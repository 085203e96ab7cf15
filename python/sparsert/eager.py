"""`sparsert.sparsify`: the pruned layers of a PyTorch model on sparsert's kernels, the rest in PyTorch.

    import sparsert
    model = sparsert.sparsify(pruned_model, example_inputs=(x,))   # in place; returns the model
    y = model(x)                                                   # still an nn.Module
    print(sparsert.eager.summary(model))                           # format and reason per layer

`sparsert.load` compiles a whole model into sparsert's graph executor (no torch at run time, fastest
end to end) but refuses operators it does not know. `sparsify` works on every model torch runs: it
swaps each pruned `nn.Linear`, non-depthwise `nn.Conv2d` and Hugging Face `Conv1D` for a module
that calls the custom operator ``torch.ops.sparsert.linear``, whose fake implementation lets
`torch.export.export` and `torch.compile` trace through it. Everything else stays PyTorch.

What it does not replace, and why:
- `nn.MultiheadAttention`'s in/out projections: its forward (`F.multi_head_attention_forward`) and
  its fused fast path read `in_proj_weight` and `out_proj.weight` as tensors and never call
  `out_proj`; sparsifying them would mean re-implementing attention, so MHA stays torch (fast path
  intact). The feed-forward `linear1`/`linear2` of `nn.TransformerEncoderLayer` are replaced; their
  `weight` is then a meta tensor, which turns the layer's fused fast path down (it runs its
  ordinary forward, through the replaced layers).
- Depthwise convolutions, weights that are not float32 on the CPU, and layers whose chosen format is
  dense (the never-slower rule: `select.eligible` takes a sparse format only when predicted at least
  `select.CHOICE_MARGIN` faster than dense). `summary` lists each with its reason.

The choice is `sparsert.load`'s rule for a linear layer (`select.choose`, `cost.calibrate`), which
prices the kernels alone: a convolution here is `F.unfold` and that kernel, so it is priced as its
matrix product at batch × output pixels rows, not as `sparsert.load`'s conv2d operator. A call
through this path costs ~3 µs more around its kernel than torch's own `nn.Linear` call does (input
check, operator dispatch, NumPy views; 64×64 at 90%, batch 1, 1 thread: nn.Linear 4.1 µs,
SparseLinear 6.9 µs, the kernel alone 2.0 µs), so a layer whose kernel takes a few µs can come out
slower than in torch; `formats={"name": "torch"}` keeps such a layer in PyTorch. Convolutions also
pay `F.unfold` and two transposes in torch around the kernel.

Lifetime: the packed weight lives on the replacing module. The operator receives an integer handle
into a registry of weak references (a torch.export graph stores the integer as a constant; an opaque
object type is still private API in torch 2.13), so it never owns or frees a weight. A program
exported from a sparsified model runs in the same process while the model is alive; it is not a
deployable artifact (that is `sparsert.load` and `.sprt`).
"""

from __future__ import annotations

import itertools
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import _core, cost, select

__all__ = ["SparseConv2d", "SparseLinear", "sparsify", "summary"]

FormatsArg = Union[str, Mapping[str, str], None]
# An eager-only value of formats=: leave the layer to PyTorch.
TORCH = "torch"


# ---------------------------------------------------------------------------------------------
# The operator and the registry of packed weights it reads.

class _Packed:
    """A packed weight, the layer it came from and its thread count; held by the modules that use it.
    Immutable once built, so copies of a module share it."""

    __slots__ = ("weight", "layer", "threads", "__weakref__")

    def __init__(self, weight: Any, layer: str, threads: int):
        self.weight, self.layer, self.threads = weight, layer, threads

    def __deepcopy__(self, memo: dict) -> "_Packed":
        return self


# handle → weak reference to its _Packed; the entry goes when the last module holding it does.
_REGISTRY: dict[int, weakref.ref] = {}
_HANDLES = itertools.count(1)


def _register(packed: _Packed) -> int:
    handle = next(_HANDLES)  # atomic under the GIL
    _REGISTRY[handle] = weakref.ref(packed, lambda _, h=handle: _REGISTRY.pop(h, None))
    return handle


def _lookup(handle: int) -> _Packed:
    ref = _REGISTRY.get(handle)
    packed = ref() if ref is not None else None
    if packed is None:
        raise RuntimeError(
            f"running sparsert::linear: handle {handle} names no live sparsified layer (expected the model "
            f"returned by sparsert.sparsify to be alive in this process; an exported program keeps only the "
            f"handle, not the weight)"
        )
    return packed


def _linear_cpu(x: torch.Tensor, handle: int, out_features: int, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``x @ W.T + bias`` for x of shape (..., in), W the packed weight behind `handle`."""
    packed = _lookup(handle)
    rows, cols = packed.weight.shape
    if (x.dtype != torch.float32 or x.dim() == 0 or x.shape[-1] != cols or rows != out_features
            or bias is not None and (bias.dtype != torch.float32 or tuple(bias.shape) != (rows,))):
        got = "no bias" if bias is None else f"bias {bias.dtype} {tuple(bias.shape)}"
        raise ValueError(
            f"running sparsert::linear for layer '{packed.layer}': x is {x.dtype} {tuple(x.shape)}, out_features "
            f"{out_features}, {got} (expected float32 x (..., {cols}), out_features {rows}, float32 bias ({rows},))"
        )
    if x.requires_grad:  # autograd is below this kernel, but a tensor keeps its flag and .numpy() refuses it
        x = x.detach()
    matrix = x.dim() == 2  # no reshapes either way: each is ~0.5 µs of a small layer's call
    # Strided arrays are fine: the binding copies what is not C-contiguous.
    x2 = (x if matrix else x.reshape(-1, cols)).numpy()
    b = None if bias is None else (bias.detach() if bias.requires_grad else bias).numpy()
    y = torch.from_numpy(_core.linear(packed.weight, x2, b, "none", packed.threads))  # GIL released inside
    return y if matrix else y.view(*x.shape[:-1], rows)


# torch.library.Library rather than torch.library.custom_op: the same operator, dispatched in 1.7 µs
# instead of 6.7 µs per call (64×64 layer at batch 1, 1 thread: 5.0 vs 10.0 µs, the body alone 3.3 µs).
_LIB = torch.library.Library("sparsert", "DEF")
_LIB.define("linear(Tensor x, int handle, int out_features, Tensor? bias) -> Tensor")
_LIB.impl("linear", _linear_cpu, "CPU")


@torch.library.register_fake("sparsert::linear", lib=_LIB)
def _linear_fake(x: torch.Tensor, handle: int, out_features: int, bias: Optional[torch.Tensor]) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], out_features))


# ---------------------------------------------------------------------------------------------
# The modules that replace torch's layers.

def _bad_input(x: Any, action: str, layer: str, expected_shape: str) -> None:
    """Raises the error for input a layer's kernels cannot take (float32 on the CPU only), naming the layer."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{action}: input is a {type(x).__name__} (expected a torch.Tensor)")
    if x.dtype != torch.float32:
        raise TypeError(
            f"{action}: input has dtype {x.dtype} (expected torch.float32: the packed weight is float32; "
            f"convert with .float(), or keep the layer in PyTorch with formats={{'{layer}': 'torch'}})"
        )
    if x.device.type != "cpu":
        raise ValueError(f"{action}: input is on {x.device} (expected a CPU tensor: sparsert's kernels run on the CPU)")
    raise ValueError(f"{action}: input has shape {tuple(x.shape)} (expected {expected_shape})")


class SparseLinear(nn.Module):
    """``y = x @ W.T + bias`` on a sparsert packed weight (replaces an `nn.Linear` or a Hugging Face
    `Conv1D`). Input float32 of shape (..., in) on the CPU; other dtypes or devices raise an error
    naming the layer. Inference only: backward through it passes no gradient (torch warns).

    The module holds no dense weight: `weight` is a meta tensor of the replaced layer's weight shape
    (`Conv1D` keeps (in, out)), `dense_weight()` rebuilds the values, and the state dict holds the
    bias only. Thread-safe as the kernels are; the packed weight is never modified."""

    def __init__(self, layer: str, packed: Any, choice: select.Choice, bias: Optional[torch.Tensor],
                 num_threads: int, kind: str = "Linear"):
        super().__init__()
        self.out_features, self.in_features = packed.shape
        self.layer, self.kind, self.choice = layer, kind, choice
        self.format = choice.format
        self._action = f"running layer '{layer}' (sparsert {self.format})"
        self._packed = _Packed(packed, layer, num_threads)  # owns the weight; the registry only points at it
        self._handle = _register(self._packed)
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), requires_grad=False)

    @property
    def packed(self) -> Any:
        """The sparsert weight (a `sparsert.formats` object)."""
        return self._packed.weight

    @property
    def weight(self) -> torch.Tensor:
        shape = (self.in_features, self.out_features) if self.kind == "Conv1D" else (self.out_features, self.in_features)
        return torch.empty(shape, dtype=torch.float32, device="meta")

    def dense_weight(self) -> torch.Tensor:
        """The weight as a dense (out, in) float32 tensor (a fresh copy)."""
        return torch.from_numpy(self._packed.weight.to_dense())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One condition on the common path (~1 µs of a small layer's call); the error says which part failed.
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.is_cpu and x.dim()
                and x.shape[-1] == self.in_features):
            _bad_input(x, self._action, self.layer, f"(..., {self.in_features})")
        return torch.ops.sparsert.linear(x, self._handle, self.out_features, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"format={self.format}, density={self.choice.structure.density:.3f}")


class SparseConv2d(nn.Module):
    """An `nn.Conv2d` as im2col (`F.unfold`) then sparsert's linear per group, reshaped back.

    Input float32 (N, C, H, W) or (C, H, W) on the CPU; output contiguous NCHW, as the convolution's.
    Padding modes other than zeros and padding="same" pad explicitly first. `weight` is a meta tensor
    of the convolution's weight shape; the state dict holds the bias only. Inference only, as SparseLinear."""

    def __init__(self, layer: str, conv: nn.Conv2d, packed: list, choices: list[select.Choice], num_threads: int):
        super().__init__()
        self.layer, self.kind, self.choices = layer, "Conv2d", choices
        self.format = ",".join(sorted({c.format for c in choices}))
        self._action = f"running layer '{layer}' (sparsert {self.format})"
        self.in_channels, self.out_channels, self.groups = conv.in_channels, conv.out_channels, conv.groups
        self.kernel_size, self.stride, self.dilation = tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.dilation)
        self.padding_mode = conv.padding_mode
        kh, kw = self.kernel_size
        dh, dw = self.dilation
        if isinstance(conv.padding, str):  # "valid" or "same" (stride 1); torch puts the odd pixel after
            total = (0, 0) if conv.padding == "valid" else (dh * (kh - 1), dw * (kw - 1))
            self._pad = (total[1] // 2, total[1] - total[1] // 2, total[0] // 2, total[0] - total[0] // 2)
        else:
            ph, pw = conv.padding
            self._pad = (pw, pw, ph, ph)  # F.pad order: left, right, top, bottom
        self.padding = conv.padding
        self._packed = [_Packed(p, f"{layer}[group {g}]" if len(packed) > 1 else layer, num_threads)
                        for g, p in enumerate(packed)]
        self._handles = [_register(p) for p in self._packed]
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().float().clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        kh, kw = self.kernel_size
        return torch.empty((self.out_channels, self.in_channels // self.groups, kh, kw), device="meta")

    def dense_weight(self) -> torch.Tensor:
        """The weight as a dense (out, in/groups, kh, kw) float32 tensor (a fresh copy)."""
        mats = [torch.from_numpy(p.weight.to_dense()) for p in self._packed]
        return torch.cat(mats).reshape(self.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (isinstance(x, torch.Tensor) and x.dtype == torch.float32 and x.is_cpu and x.dim() in (3, 4)
                and x.shape[-3] == self.in_channels):
            _bad_input(x, self._action, self.layer, f"(N, {self.in_channels}, H, W) or ({self.in_channels}, H, W)")
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        if any(self._pad):
            x = F.pad(x, self._pad, mode="constant" if self.padding_mode == "zeros" else self.padding_mode)
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
        # (N, C·kh·kw, L) with channel-major rows: group g's inputs are one contiguous block of rows,
        # in the order of its (OC/groups, C/groups·kh·kw) weight matrix.
        cols = F.unfold(x, self.kernel_size, dilation=self.dilation, stride=self.stride).transpose(1, 2)
        per_in, per_out = cols.shape[-1] // self.groups, self.out_channels // self.groups
        outs = []
        for g, handle in enumerate(self._handles):
            part = cols if self.groups == 1 else cols[..., g * per_in:(g + 1) * per_in]
            bias = self.bias if self.bias is None or self.groups == 1 else self.bias[g * per_out:(g + 1) * per_out]
            outs.append(torch.ops.sparsert.linear(part, handle, per_out, bias))
        y = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (N, L, OC)
        y = y.transpose(1, 2).reshape(n, self.out_channels, oh, ow)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, format={self.format}")


# ---------------------------------------------------------------------------------------------
# sparsify

@dataclass
class LayerPlan:
    """What sparsify decided for one layer: its format, or "torch" when it stays a torch module."""

    layer: str
    kind: str  # "Linear", "Conv2d", "Conv1D", "MultiheadAttention"
    shape: tuple  # the weight's (out, in), per group for a grouped conv
    rows: int  # rows each weight multiplies (batch, or batch × output pixels), from the example or 1
    format: str  # a format spelling, or "torch"
    reason: str
    choices: list = field(default_factory=list)  # select.Choice per weight (group), when one was made


def _kind(module: nn.Module) -> Optional[str]:
    """The kind of layer sparsify can replace, or None. Subclasses count only when they keep the base
    class's forward (e.g. MHA's NonDynamicallyQuantizableLinear; not LoRA-style wrappers)."""
    if isinstance(module, nn.Linear) and type(module).forward is nn.Linear.forward:
        return "Linear"
    if (isinstance(module, nn.Conv2d) and type(module).forward is nn.Conv2d.forward
            and type(module)._conv_forward is nn.Conv2d._conv_forward):
        return "Conv2d"
    # Hugging Face's GPT-2 style Conv1D (transformers.pytorch_utils): y = x @ weight + bias with
    # weight (in, out). Recognised by name, so transformers is never imported here.
    if type(module).__name__ == "Conv1D" and isinstance(getattr(module, "weight", None), torch.Tensor):
        w, b = module.weight, getattr(module, "bias", None)
        if w.dim() == 2 and (b is None or (isinstance(b, torch.Tensor) and tuple(b.shape) == (w.shape[1],))):
            return "Conv1D"
    return None


def _remove_prune_hooks(model: nn.Module) -> None:
    """Makes every torch.nn.utils.prune reparametrisation permanent: `weight` becomes the effective
    weight_orig · weight_mask as a plain parameter, and the forward pre-hook goes."""
    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, torch.nn.utils.prune.BasePruningMethod):
                names = [h._tensor_name for h in hook] if isinstance(hook, torch.nn.utils.prune.PruningContainer) \
                    else [hook._tensor_name]
                for name in dict.fromkeys(names):
                    torch.nn.utils.prune.remove(module, name)


def _record_rows(model: nn.Module, candidates: dict[str, tuple[nn.Module, str]],
                 example_inputs: Any) -> tuple[dict[str, int], dict[str, float]]:
    """Runs the model once on the example; per layer the rows its weight multiplies (the most over
    its calls) and, for linear layers, the fraction of zeros in its input (what CSC skips)."""
    rows: dict[str, int] = {}
    zeros: dict[str, float] = {}

    def hook_for(name: str, kind: str):
        def hook(module, args, kwargs, output):
            x = args[0] if args else next(iter(kwargs.values()), None)
            if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor) or not x.numel():
                return
            if kind == "Conv2d":
                n = 1 if output.dim() == 3 else output.shape[0]
                r = n * output.shape[-2] * output.shape[-1]
            else:
                r = x.numel() // x.shape[-1]
                zeros[name] = max(zeros.get(name, 0.0), float((x == 0).float().mean()))
            rows[name] = max(rows.get(name, 0), int(r))
        return hook

    handles = [m.register_forward_hook(hook_for(name, kind), with_kwargs=True)
               for name, (m, kind) in candidates.items()]
    # In eval mode: batch norm must not update its running statistics, and dropout's zeros are not
    # the input zeros inference sees.
    training = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            if isinstance(example_inputs, Mapping):
                model(**example_inputs)
            elif isinstance(example_inputs, tuple):
                model(*example_inputs)
            else:
                model(example_inputs)
    finally:
        for h in handles:
            h.remove()
        for m, flag in training.items():
            m.training = flag
    return rows, zeros


def _matrices(module: nn.Module, kind: str) -> list[np.ndarray]:
    """The weight as sparsert's (out, in) float32 matrices: one per group for a convolution."""
    w = module.weight.detach()
    if kind == "Conv1D":
        w = w.t()
    if kind == "Conv2d":
        per = w.shape[0] // module.groups
        return [np.ascontiguousarray(w[g * per:(g + 1) * per].reshape(per, -1).numpy()) for g in range(module.groups)]
    return [np.ascontiguousarray(w.numpy())]


def _why_not(module: nn.Module, kind: str) -> Optional[str]:
    """Why a layer of a replaceable kind must stay in PyTorch, or None."""
    w = module.weight
    if isinstance(w, nn.parameter.UninitializedParameter):
        return "lazy weight not initialised yet (run the model once before sparsify)"
    if w.dtype != torch.float32 or w.device.type != "cpu":
        return f"weight is {w.dtype} on {w.device} (sparsert runs float32 on the CPU)"
    if w.numel() == 0:
        return "empty weight"
    if kind == "Conv2d" and module.groups > 1 and module.groups == module.in_channels and w.shape[1] == 1:
        return "depthwise convolution (no weight matrix to sparsify)"
    return None


def sparsify(model: nn.Module, example_inputs: Any = None, *, formats: FormatsArg = None,
             num_threads: Optional[int] = None) -> nn.Module:
    """Replaces, in place, each pruned `nn.Linear`, non-depthwise `nn.Conv2d` and Hugging Face
    `Conv1D` of `model` whose best format is sparse by a module that runs sparsert's kernels through
    the custom operator ``torch.ops.sparsert.linear``; everything else stays PyTorch. Returns `model`
    (or the replacement, when `model` itself is such a layer).

    `torch.nn.utils.prune` reparametrisations are made permanent first, in every module: layers read
    as weight_orig · weight_mask and no module keeps the hook.
    `example_inputs`: a tensor, a tuple of positional arguments or a dict of keyword arguments; the
    model runs once on it (without gradients) to record the rows each layer multiplies (batch, or
    batch × output pixels for a convolution) and the zeros in each linear layer's input. Without it
    every layer is priced at 1 row. The choice is `sparsert.load`'s for a linear layer: `select.choose`
    with the cost model of `cost.calibrate(num_threads)` (a convolution as its matrix product).
    `formats`: None or "auto" (the cost model's choice, close calls timed on the layer's weight; a
    layer whose choice is dense stays the torch module), "predicted" (the cost model's alone), one
    format for every replaceable layer ("dense", "csr", "csc", "bsr", "bsr4x4", "nm", "nm2:4", …),
    or a dict {layer name: format}; "torch" keeps a layer in PyTorch.
    `num_threads`: threads of the kernels (default: sparsert.get_num_threads() at each call).

    Replaced layers take float32 CPU input and raise naming the layer otherwise (TypeError for a
    dtype, ValueError for a shape or device). The model is then for inference: backward through a
    replaced layer passes no gradient (torch warns), and packed weights do not pickle.
    Raises ValueError for formats= naming layers it cannot replace or a format that cannot hold a
    layer's weight, TypeError for a `model` that is not an nn.Module.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"sparsify: model is a {type(model).__name__} (expected a torch.nn.Module)")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"sparsify: num_threads is {num_threads!r} (expected a positive int, or None for the default)")
    if not (formats is None or isinstance(formats, (str, Mapping))):
        raise TypeError(f"sparsify: formats is a {type(formats).__name__} (expected None, a format name or a dict)")

    _remove_prune_hooks(model)
    inside_mha = {id(m) for mha in model.modules() if isinstance(mha, nn.MultiheadAttention) for m in mha.modules()}
    plans: list[LayerPlan] = []
    candidates: dict[str, tuple[nn.Module, str]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.MultiheadAttention):
            shape = () if module.in_proj_weight is None else tuple(module.in_proj_weight.shape)
            plans.append(LayerPlan(name, "MultiheadAttention", shape, 0, TORCH,
                                   "its forward reads the projection weights directly"))
            continue
        kind = _kind(module)
        if kind is None or id(module) in inside_mha:
            continue
        why = _why_not(module, kind)
        if why is not None:
            plans.append(LayerPlan(name, kind, tuple(module.weight.shape), 0, TORCH, why))
            continue
        candidates[name] = (module, kind)

    if isinstance(formats, Mapping):
        unknown = sorted(set(formats) - set(candidates))
        if unknown:
            raise ValueError(f"sparsify: formats= names layers {unknown} that sparsify cannot replace "
                             f"(expected some of {sorted(candidates)})")
    rows, zeros = _record_rows(model, candidates, example_inputs) if example_inputs is not None else ({}, {})
    cost_model = cost.calibrate(num_threads or _core.get_num_threads())

    replaced: dict[int, nn.Module] = {}
    for name, (module, kind) in candidates.items():
        forced = formats.get(name) if isinstance(formats, Mapping) else formats
        mats = _matrices(module, kind)
        shape = tuple(m.shape for m in mats) if len(mats) > 1 else mats[0].shape
        r = rows.get(name, 1)
        if forced == TORCH:
            plans.append(LayerPlan(name, kind, shape, r, TORCH, "kept in PyTorch by formats="))
            continue
        spelling = select.group_spelling(forced, len(mats))
        picked = [select.choose(name if len(mats) == 1 else f"{name}[group {g}]", w, r, cost_model, spelling,
                                zeros.get(name, 0.0)) for g, w in enumerate(mats)]
        choices = [c for c, _ in picked]
        if select.automatic(forced) and any(c.format == "dense" for c in choices):
            # The never-slower rule is select.eligible's: dense was chosen (for some group of a
            # convolution), so the layer keeps torch's dense path.
            reason = next(c.reason for c in choices if c.format == "dense")
            plans.append(LayerPlan(name, kind, shape, r, TORCH, f"dense chosen: {reason}", choices))
            continue
        threads = num_threads or 0
        if kind == "Conv2d":
            new: nn.Module = SparseConv2d(name, module, [p for _, p in picked], choices, threads)
        else:
            new = SparseLinear(name, picked[0][1], choices[0], module.bias, threads, kind)
        replaced[id(module)] = new
        plans.append(LayerPlan(name, kind, shape, r, new.format, choices[0].reason if len(choices) == 1
                               else "; ".join(c.reason for c in choices), choices))

    for parent in list(model.modules()):  # every parent and slot (named_children skips repeats): a shared
        for child_name, child in list(parent._modules.items()):  # layer is replaced wherever it appears
            if id(child) in replaced:
                setattr(parent, child_name, replaced[id(child)])
    result = replaced.get(id(model), model)
    order = {name: i for i, (name, _) in enumerate(model.named_modules(remove_duplicate=False))}
    plans.sort(key=lambda p: order.get(p.layer, len(order)))
    result.__dict__["_sparsert_plan"] = plans
    return result


def summary(model: nn.Module) -> str:
    """A table of the layers the last `sparsify(model)` looked at: name, kind, weight shape, density,
    rows priced, the format (or "torch" for a layer left to PyTorch), the predicted speed-up over
    dense, and the reason. Raises ValueError for a model sparsify has not seen."""
    plans: Optional[list[LayerPlan]] = model.__dict__.get("_sparsert_plan")
    if plans is None:
        raise ValueError(f"summary: this {type(model).__name__} has not been through sparsert.sparsify "
                         f"(expected the module sparsify returned)")
    header = f"{'layer':<32} {'kind':<18} {'weight':<14} {'density':>8} {'rows':>6} {'format':<10} {'vs dense':>8}  reason"
    lines = [header, "-" * len(header)]
    for p in plans:
        grouped = bool(p.shape) and isinstance(p.shape[0], tuple)  # one (out, in) per group
        first = p.shape[0] if grouped else p.shape
        weight = ("x".join(str(d) for d in first) if p.shape else "-") + (f" ×{len(p.shape)}" if grouped else "")
        if p.choices:
            nnz = sum(c.structure.density * math.prod(c.structure.shape) for c in p.choices)
            density = f"{nnz / sum(math.prod(c.structure.shape) for c in p.choices):.3f}"
            total = sum(c.times_us["dense"] for c in p.choices)
            chosen = sum(c.times_us.get(c.format, c.times_us["dense"]) for c in p.choices)
            speedup = f"{total / chosen:.2f}x" if p.format != TORCH else "1.00x"
        else:
            density, speedup = "-", "-"
        lines.append(f"{p.layer[:32]:<32} {p.kind:<18} {weight:<14} {density:>8} {p.rows:>6} {p.format:<10} "
                     f"{speedup:>8}  {p.reason}")
    replaced = sum(p.format != TORCH for p in plans)
    lines.append(f"{replaced} of {len(plans)} layers on sparsert's kernels; the rest run in PyTorch")
    return "\n".join(lines)
