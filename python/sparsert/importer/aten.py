"""Core ATen → sparsert operators: `_HANDLERS` maps each ATen overload to the handler that emits its
IR nodes (the place to add an operator). The walk (`translate_program`) folds parameters-only
subgraphs and creation ops of fixed shape to constants (so `torch.nn.utils.prune`
reparametrisations become their effective weight), reads sizes from the shapes torch.export recorded
(affine in the free batch), follows torch's type promotion with casts, and lists every operator it
cannot translate with its source line.

torch is imported inside functions: a compiled `.sprt` model runs without it."""

from __future__ import annotations

import math
import operator
from typing import Any, Callable

import numpy as np

from .. import cost
from .ir import (BINARY_KINDS, DTYPE_CODES, UNARY_KINDS, IRGraph, IRNode, UnsupportedModelError, affine,
                 sizes_attr)

_NUMPY_DTYPES = {"f32": np.float32, "i64": np.int64, "bool": np.bool_}


def _source_of(node: Any) -> str:
    stack = node.meta.get("nn_module_stack")
    if stack:
        path = list(stack.values())[-1][0]
        if path:
            return str(path)
    return str(node.name)


def _location(node: Any) -> str:
    trace = node.meta.get("stack_trace") or ""
    lines = [ln.strip() for ln in trace.strip().splitlines() if ln.strip().startswith("File ")]
    return lines[-1] if lines else f"node {node.name}"


class _Translator:
    def __init__(self, program: Any, example_batch: int):
        import torch

        self.torch = torch
        self.program = program
        self.example_batch = example_batch
        self.constants: dict[str, np.ndarray] = {}
        self.const_tensors: dict[str, Any] = {}  # fx name -> torch tensor, for folding
        self.nodes: list[IRNode] = []
        self.inputs: list[tuple[str, str, list[int]]] = []
        self.alias: dict[str, str] = {}  # fx name -> value name (identity ops)
        self.unsupported: list[str] = []
        self.counter = 0
        # split/unbind outputs: axis, (start, end) per item, and whether the axis is dropped (unbind)
        self._multi: dict[str, tuple[int, list[tuple[int, int]], bool]] = {}
        self._multi_src: dict[str, Any] = {}
        self.sizes: set[str] = set()  # fx nodes computing sizes, not tensors
        self.casts: set[str] = set()  # cast nodes emitted by value_as, each made once
        self.outputs_of: dict[str, list[str]] = {}  # fx node → the value of each of its outputs

    # values ------------------------------------------------------------------
    def value(self, arg: Any) -> str:
        """The value name for a tensor argument (a constant scalar, or a size fixed at export, becomes a
        0-d constant)."""
        if isinstance(arg, (int, float, bool)):
            return self.scalar(float(arg))
        if arg.name in self.sizes:
            coef, const = affine(arg)
            if coef:
                raise _Unsupported(f"a tensor computed from the free batch size ({arg.name})")
            return self.scalar(float(const))
        name = self.alias.get(arg.name, arg.name)
        return name

    def scalar(self, v: float, dtype: str = "f32") -> str:
        return self.add_constant(np.array(v, dtype=_NUMPY_DTYPES[dtype]))

    def dtype_of(self, arg: Any) -> str:
        """The executor's element type of a tensor argument or Python scalar: "f32", "i64" or "bool"."""
        if isinstance(arg, bool):
            return "bool"
        if isinstance(arg, (int, float)):
            return "i64" if isinstance(arg, int) else "f32"
        val = arg.meta["val"]
        if isinstance(val, (tuple, list)):
            val = val[0]
        if _is_size(val):
            return "f32" if isinstance(val, (float, self.torch.SymFloat)) else "i64"
        return _dtype_name(val.dtype)

    def value_as(self, arg: Any, dtype: str) -> str:
        """`arg`'s value name in `dtype`, cast where torch's type promotion converts it."""
        if isinstance(arg, (int, float, bool)):
            return self.scalar(arg, dtype)
        if self.dtype_of(arg) == dtype:
            return self.value(arg)
        if self.is_const(arg):
            return self.add_constant(_to_numpy(self.const(arg)).astype(_NUMPY_DTYPES[dtype]))
        name = f"{self.value(arg)}_as_{dtype}"
        if name not in self.casts:
            self.casts.add(name)
            self.nodes.append(IRNode("cast", _source_of(arg), [self.value(arg)], name, {"dtype": [DTYPE_CODES[dtype]]}))
        return name

    def add_constant(self, array: np.ndarray, name: str | None = None) -> str:
        if name is None:
            self.counter += 1
            name = f"_const{self.counter}"
        self.constants[name] = np.ascontiguousarray(array)
        return name

    def is_const(self, arg: Any) -> bool:
        return hasattr(arg, "name") and self.alias.get(arg.name, arg.name) in self.const_tensors

    def const(self, arg: Any) -> Any:
        return self.const_tensors[self.alias.get(arg.name, arg.name)]

    def emit(self, fx: Any, op: str, inputs: list[str], ints=None, floats=None, weights=None) -> None:
        self.nodes.append(IRNode(op, _source_of(fx), inputs, fx.name, ints or {}, floats or {}, weights or []))

    def shape(self, fx: Any) -> list:
        val = fx.meta["val"]
        if isinstance(val, (tuple, list)):  # _native_batch_norm_legit_no_training, native_layer_norm, ...
            val = val[0]
        return list(val.shape)

    def rows(self, sizes: list) -> int:
        """Product of `sizes` at the example batch."""
        n = 1
        for coef, const in (affine(s) for s in sizes):
            n *= coef * self.example_batch + const
        return n

    # the walk ----------------------------------------------------------------
    def run(self) -> IRGraph:
        torch = self.torch
        ep = self.program
        sig = ep.graph_signature
        state = {**ep.state_dict, **getattr(ep, "constants", {})}
        kinds = {spec.arg.name: spec for spec in sig.input_specs}
        for fx in ep.graph.nodes:
            if fx.op == "placeholder":
                spec = kinds[fx.name]
                if spec.kind.name == "USER_INPUT":
                    val = fx.meta["val"]
                    if not isinstance(val, torch.Tensor):
                        raise UnsupportedModelError(f"input '{fx.name}' is not a tensor ({type(val).__name__})")
                    dims = [(-1 if c else k) for c, k in (affine(s) for s in val.shape)]
                    if any(d == -1 for d in dims[1:]) or (dims and dims[0] == -1 and affine(val.shape[0]) != (1, 0)):
                        raise UnsupportedModelError(f"input '{fx.name}': only dim 0 may be the free batch")
                    if val.dtype not in (torch.float32, torch.int64, torch.int32, torch.bool):
                        raise UnsupportedModelError(
                            f"input '{fx.name}' has dtype {val.dtype} (expected float32, int64 or bool)")
                    self.inputs.append((fx.name, _dtype_name(val.dtype), dims))
                else:
                    tensor = state[spec.target].detach()
                    self.const_tensors[fx.name] = tensor
            elif fx.op == "call_function":
                self.call(fx)
            elif fx.op == "output":
                outputs = [self.value(a) for a in self.flatten_outputs(fx.args[0])]
        if self.unsupported:
            listing = "\n  ".join(self.unsupported)
            raise UnsupportedModelError(
                f"the model uses {len(self.unsupported)} operator(s) sparsert cannot run:\n  {listing}\n"
                "to run it anyway, use sparsert.sparsify(model): PyTorch runs the model, sparsert its pruned Linear/Conv layers"
            )
        # Constants actually read become graph constants.
        used = {i for n in self.nodes for i in n.inputs} | set(outputs)
        for name in used:
            if name in self.const_tensors and name not in self.constants:
                self.constants[name] = _to_numpy(self.const_tensors[name])
        return IRGraph(self.inputs, self.constants, self.nodes, outputs)

    def flatten_outputs(self, out: Any) -> list:
        if isinstance(out, (tuple, list)):
            return [x for o in out for x in self.flatten_outputs(o)]
        if out is None:
            raise UnsupportedModelError("the model returns None among its outputs")
        return [out]

    def call(self, fx: Any) -> None:
        target = fx.target
        if _is_size(fx.meta.get("val")):
            # Arithmetic on sizes (batch × heads, sym_size): handlers read the sizes they need from
            # the shapes torch.export recorded, affine in the free batch (_affine).
            self.sizes.add(fx.name)
            return
        if target is operator.getitem:
            try:
                self.getitem(fx)
            except _Unsupported as e:
                self.unsupported.append(f"getitem ({e}) at {_location(fx)}")
            return
        node_args = [a for a in _flat_args(fx) if hasattr(a, "op")]
        tensor_args = [a for a in node_args if a.name not in self.sizes]
        size_args = [a for a in node_args if a.name in self.sizes]
        if all(self.is_const(a) for a in tensor_args) and self.foldable(fx) and _static(size_args) and (
                tensor_args or _static(self.shape(fx))):
            self.fold(fx)  # parameters-only subgraphs, and creation ops of fixed shape (arange(seq), a causal mask)
            return
        handler = _HANDLERS.get(_op_name(target))
        if handler is None:
            self.unsupported.append(f"{_op_name(target)} at {_location(fx)}")
            return
        try:
            handler(self, fx, *fx.args, **fx.kwargs)
        except _Unsupported as e:
            self.unsupported.append(f"{_op_name(target)} ({e}) at {_location(fx)}")

    def foldable(self, fx: Any) -> bool:
        val = fx.meta.get("val")
        tensors = val if isinstance(val, (tuple, list)) and val else [val]  # split's outputs fold as a list
        return _op_name(fx.target) not in ("sym_size.int",) and all(isinstance(v, self.torch.Tensor) for v in tensors)

    def fold(self, fx: Any) -> None:
        import torch.fx as tfx

        def concrete(a):
            return affine(a)[1] if a.name in self.sizes else self.const(a)

        args = tfx.node.map_arg(fx.args, concrete)
        kwargs = tfx.node.map_arg(fx.kwargs, concrete)
        with self.torch.no_grad():
            self.const_tensors[fx.name] = fx.target(*args, **kwargs)

    def getitem(self, fx: Any) -> None:
        src, index = fx.args
        if self.is_const(src):
            self.const_tensors[fx.name] = self.const(src)[index]
            return
        pending = self._multi.get(src.name)
        if pending is not None:  # split / unbind: item i is a slice (reshaped without the axis for unbind)
            axis, bounds, drop_axis = pending
            start, end = bounds[index]
            out = f"{fx.name}_slice" if drop_axis else fx.name
            self.nodes.append(IRNode("slice", _source_of(fx), [self.value(self._multi_src[src.name])], out,
                                     {"axis": [axis], "start": [start], "end": [end], "step": [1]}))
            if drop_axis:
                self.nodes.append(IRNode("reshape", _source_of(fx), [out], fx.name, sizes_attr("shape", self.shape(fx))))
            return
        if src.name in self.outputs_of:  # an operator with several outputs of its own (lstm, gru)
            self.alias[fx.name] = self.outputs_of[src.name][index]
            return
        if index != 0:
            raise _Unsupported(f"output {index} of {src.name}")
        self.alias[fx.name] = self.value(src)  # first output of max_pool_with_indices, native_layer_norm, ...


class _Unsupported(Exception):
    pass


def _is_size(val: Any) -> bool:
    """Whether an fx node's value is a size or scalar (SymInt, int, ...), not a tensor."""
    import torch

    return isinstance(val, (torch.SymInt, torch.SymFloat, torch.SymBool, int, float, bool))


def _dtype_name(dtype: Any) -> str:
    """The executor's element type for a torch dtype: floats compute in f32, integers in i64."""
    import torch

    if dtype == torch.bool:
        return "bool"
    return "f32" if dtype.is_floating_point else "i64"


def _static(sizes: Any) -> bool:
    """Whether every size is fixed (none depends on the free batch)."""
    return all(affine(s)[0] == 0 for s in sizes)


def _op_name(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    overload = getattr(target, "_overloadname", None)
    if hasattr(target, "_schema"):
        base = target._schema.name.split("::")[-1]
        return f"{base}.{overload}" if overload else base
    return name


def _flat_args(fx: Any) -> list:
    out = []

    def walk(a):
        if isinstance(a, (list, tuple)):
            for x in a:
                walk(x)
        elif isinstance(a, dict):
            for x in a.values():
                walk(x)
        else:
            out.append(a)

    walk(fx.args)
    walk(fx.kwargs)
    return out


def _to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        return t.to(torch.int64).contiguous().numpy()
    if t.dtype == torch.bool:
        return t.contiguous().numpy()
    return t.to(torch.float32).contiguous().numpy()


def _pair(v: Any) -> list[int]:
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    return [int(v[0]), int(v[0])] if len(v) == 1 else [int(v[0]), int(v[1])]


def _h_linear(t: _Translator, fx, x, w, b=None):
    if not t.is_const(w):
        # activation × activation: x @ w.T
        wt = f"{fx.name}_wT"
        t.nodes.append(IRNode("permute", _source_of(fx), [t.value(w)], wt, {"dims": [1, 0]}))
        inputs = [t.value(x), wt]
        if b is None:
            t.emit(fx, "matmul", inputs)
        else:
            mm = f"{fx.name}_mm"
            t.nodes.append(IRNode("matmul", _source_of(fx), inputs, mm))
            t.nodes.append(IRNode("binary", _source_of(fx), [mm, t.value(b)], fx.name, {"kind": [BINARY_KINDS["add"]]}))
        return
    weight = _to_numpy(t.const(w))
    inputs = [t.value(x)]
    if b is not None:
        if not t.is_const(b):
            raise _Unsupported("a bias computed at run time")
        inputs.append(t.add_constant(_to_numpy(t.const(b)).reshape(-1), f"{fx.name}.bias"))
    t.emit(fx, "linear", inputs, weights=[weight])
    t.nodes[-1].rows = t.rows(t.shape(fx)[:-1])


def _h_addmm(t: _Translator, fx, bias, x, w, beta=1, alpha=1):
    if beta != 1 or alpha != 1 or not t.is_const(w) or not t.is_const(bias) or t.const(bias).dim() != 1:
        raise _Unsupported("addmm other than x @ constant + constant vector")
    weight = _to_numpy(t.const(w)).T.copy()
    t.emit(fx, "linear", [t.value(x), t.add_constant(_to_numpy(t.const(bias)), f"{fx.name}.bias")], weights=[weight])
    t.nodes[-1].rows = t.rows(t.shape(fx)[:-1])


def _h_matmul(t: _Translator, fx, a, b):
    if t.is_const(b) and t.const(b).dim() == 2:
        t.emit(fx, "linear", [t.value(a)], weights=[_to_numpy(t.const(b)).T.copy()])
        t.nodes[-1].rows = t.rows(t.shape(fx)[:-1])
        return
    t.emit(fx, "matmul", [t.value(a), t.value(b)])


def _h_conv(t: _Translator, fx, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    if not t.is_const(w):
        raise _Unsupported("a convolution weight computed at run time")
    weight = _to_numpy(t.const(w))
    if weight.ndim not in (3, 4):
        raise _Unsupported(f"a {weight.ndim - 2}-d convolution (expected 1-d or 2-d)")
    if b is not None and not t.is_const(b):
        raise _Unsupported("a bias computed at run time")
    bias = None if b is None else _to_numpy(t.const(b))
    if weight.ndim == 4:
        _conv2d(t, fx, t.value(x), weight, bias, _pair(stride), padding, _pair(dilation), groups, fx.name,
                t.shape(x), t.shape(fx))
        return
    # A 1-d convolution (wav2vec2, Whisper) is a 2-d one of height 1 between two reshapes.
    in_shape, out_shape = t.shape(x), t.shape(fx)
    flat_in, flat_out = f"{fx.name}_as_2d", f"{fx.name}_2d"
    t.nodes.append(IRNode("reshape", _source_of(fx), [t.value(x)], flat_in,
                          sizes_attr("shape", [in_shape[0], in_shape[1], 1, in_shape[2]])))
    def wide(v: Any, height: int) -> list[int]:
        return [height, int(v[0] if isinstance(v, (list, tuple)) else v)]

    _conv2d(t, fx, flat_in, weight[:, :, None, :], bias, wide(stride, 1),
            padding if isinstance(padding, str) else wide(padding, 0), wide(dilation, 1), groups, flat_out,
            [in_shape[0], in_shape[1], 1, in_shape[2]], [out_shape[0], out_shape[1], 1, out_shape[2]])
    t.nodes.append(IRNode("reshape", _source_of(fx), [flat_out], fx.name, sizes_attr("shape", out_shape)))


def _conv2d(t: _Translator, fx, x: str, weight: np.ndarray, bias, stride: list[int], padding, dilation: list[int],
            groups: int, output: str, in_shape: list, out_shape: list) -> None:
    """A conv2d (or depthwise_conv2d) node computing `output` (NCHW, shape `out_shape`) from value `x`
    (shape `in_shape`)."""
    oc, cg, kh, kw = weight.shape
    if isinstance(padding, str):
        if padding == "valid":
            padding = [0, 0]
        else:  # "same" with stride 1: torch pads (d·(k-1))//2 before, the rest after; symmetric only
            total = [dilation[0] * (kh - 1), dilation[1] * (kw - 1)]
            if any(p % 2 for p in total):
                raise _Unsupported("padding='same' with an even kernel extent")
            padding = [total[0] // 2, total[1] // 2]
    attrs = {"kernel": [kh, kw], "stride": stride, "padding": _pair(padding), "dilation": dilation}
    inputs = [x]
    c_in = cg * groups
    if groups > 1 and groups == c_in and cg == 1:
        inputs.append(t.add_constant(weight, f"{output}.weight"))
        if bias is not None:
            inputs.append(t.add_constant(bias, f"{output}.bias"))
        t.nodes.append(IRNode("depthwise_conv2d", _source_of(fx), inputs, output, attrs))
        return
    if bias is not None:
        inputs.append(t.add_constant(bias, f"{output}.bias"))
    per = oc // groups
    mats = [weight[g * per:(g + 1) * per].reshape(per, -1).copy() for g in range(groups)]
    h, w, oh, ow = (t.rows([size]) for size in in_shape[-2:] + out_shape[-2:])
    conv = cost.ConvShape(t.rows(in_shape[:-3]), cg, per, (h, w), (oh, ow), (kh, kw), tuple(stride),
                          tuple(attrs["padding"]), tuple(dilation), groups)
    t.nodes.append(IRNode("conv2d", _source_of(fx), inputs, output, {**attrs, "groups": [groups]}, weights=mats,
                          rows=conv.pixels, conv=conv))


def _h_convolution(t, fx, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    if transposed:
        raise _Unsupported("transposed convolution")
    _h_conv(t, fx, x, w, b, stride, padding, dilation, groups)


def _h_batch_norm(t: _Translator, fx, x, w, b, mean, var, *rest):
    # batch_norm(x, w, b, mean, var, training, momentum, eps, cudnn) or
    # _native_batch_norm_legit_no_training(x, w, b, mean, var, momentum, eps)
    eps = rest[-2] if len(rest) == 4 else rest[-1]
    if len(rest) == 4 and rest[0]:
        raise _Unsupported("batch norm in training mode (call model.eval())")
    for a in (w, b, mean, var):
        if a is not None and not t.is_const(a):
            raise _Unsupported("batch-norm statistics computed at run time")
    var_t = t.const(var).double()
    scale = 1.0 / (var_t + eps).sqrt()
    if w is not None:
        scale = scale * t.const(w).double()
    shift = -t.const(mean).double() * scale
    if b is not None:
        shift = shift + t.const(b).double()
    rank = len(t.shape(fx))
    shape = [-1] + [1] * (rank - 2)
    s = t.add_constant(scale.float().numpy().reshape(shape), f"{fx.name}.scale")
    h = t.add_constant(shift.float().numpy().reshape(shape), f"{fx.name}.shift")
    mid = f"{fx.name}_scaled"
    t.nodes.append(IRNode("binary", _source_of(fx), [t.value(x), s], mid, {"kind": [BINARY_KINDS["mul"]]},
                          role="batch_norm_scale"))
    t.nodes.append(IRNode("binary", _source_of(fx), [mid, h], fx.name, {"kind": [BINARY_KINDS["add"]]}))


def _unary(kind: str) -> Callable:
    def handler(t: _Translator, fx, x, *args, **kwargs):
        t.emit(fx, "unary", [t.value(x)], ints={"kind": [UNARY_KINDS[kind]]})

    return handler


def _h_gelu(t: _Translator, fx, x, approximate="none"):
    kind = "gelu_tanh" if approximate == "tanh" else "gelu"
    t.emit(fx, "unary", [t.value(x)], ints={"kind": [UNARY_KINDS[kind]]})


def _h_hardtanh(t: _Translator, fx, x, lo=-1.0, hi=1.0):
    if lo == 0 and hi == 6:
        t.emit(fx, "unary", [t.value(x)], ints={"kind": [UNARY_KINDS["relu6"]]})
        return
    _h_clamp(t, fx, x, lo, hi)


def _h_clamp(t: _Translator, fx, x, lo=None, hi=None):
    cur = t.value(x)
    steps = [(k, v) for k, v in (("maximum", lo), ("minimum", hi)) if v is not None]
    if not steps:
        t.alias[fx.name] = cur
        return
    for i, (kind, bound) in enumerate(steps):
        out = fx.name if i == len(steps) - 1 else f"{fx.name}_{kind}"
        bound_value = t.value(bound) if hasattr(bound, "op") else t.scalar(float(bound))
        t.nodes.append(IRNode("binary", _source_of(fx), [cur, bound_value], out, {"kind": [BINARY_KINDS[kind]]}))
        cur = out


def _binary(kind: str, swap: bool = False) -> Callable:
    def handler(t: _Translator, fx, a, b, alpha=1, rounding_mode=None):
        if rounding_mode is not None:
            raise _Unsupported(f"division with rounding_mode={rounding_mode!r}")
        out = t.dtype_of(fx)  # torch's promoted type: operands of another type are cast to it
        if out == "bool" and kind not in ("mul", "maximum", "minimum"):
            raise _Unsupported(f"{kind} on booleans")
        bv = t.value_as(b, out)
        if alpha != 1:
            scaled = f"{fx.name}_alpha"
            t.nodes.append(IRNode("binary", _source_of(fx), [bv, t.scalar(alpha, out)], scaled,
                                  {"kind": [BINARY_KINDS["mul"]]}))
            bv = scaled
        inputs = [bv, t.value_as(a, out)] if swap else [t.value_as(a, out), bv]
        t.emit(fx, "binary", inputs, ints={"kind": [BINARY_KINDS[kind]]})
        shapes = [str(tuple(v.meta["val"].shape)) if hasattr(v, "meta") and "val" in v.meta else None for v in (a, b)]
        t.nodes[-1].same_shapes = shapes[0] is not None and shapes[0] == shapes[1]

    return handler


def _compare(kind: str) -> Callable:
    """eq, ne, lt, le, gt, ge: both operands in their common type (f32 if either is a float), a bool out."""
    def handler(t: _Translator, fx, a, b):
        kinds = {t.dtype_of(a), t.dtype_of(b)}
        common = "f32" if "f32" in kinds else "i64" if "i64" in kinds else "bool"
        t.emit(fx, "binary", [t.value_as(a, common), t.value_as(b, common)], ints={"kind": [BINARY_KINDS[kind]]})

    return handler


def _logical(kind: str) -> Callable:
    """and, or, xor of booleans (logical_* take any type as truth values; bitwise_* on integers are
    not supported)."""
    def handler(t: _Translator, fx, a, b):
        if t.dtype_of(fx) != "bool":
            raise _Unsupported(f"bitwise {kind} on integers")
        t.emit(fx, "binary", [t.value_as(a, "bool"), t.value_as(b, "bool")], ints={"kind": [BINARY_KINDS[kind]]})

    return handler


def _h_logical_not(t: _Translator, fx, x):
    if t.dtype_of(fx) != "bool":
        raise _Unsupported("bitwise not on integers")
    t.emit(fx, "binary", [t.value_as(x, "bool"), t.scalar(True, "bool")], ints={"kind": [BINARY_KINDS["xor"]]})


def _h_where(t: _Translator, fx, cond, a, b):
    out = t.dtype_of(fx)
    t.emit(fx, "where", [t.value_as(cond, "bool"), t.value_as(a, out), t.value_as(b, out)])


def _h_masked_fill(t: _Translator, fx, x, mask, value):
    out = t.dtype_of(fx)
    t.emit(fx, "where", [t.value_as(mask, "bool"), t.value_as(value, out), t.value_as(x, out)])


def _h_arange(t: _Translator, fx, *args, **kwargs):
    """arange whose length depends on the free batch (a fixed one is folded to a constant)."""
    if t.dtype_of(fx) != "i64":
        raise _Unsupported("a floating-point arange")
    plain = _op_name(fx.target) == "arange.default"
    start = 0 if plain else args[0]
    step = 1 if plain else (args[2] if len(args) > 2 else kwargs.get("step", 1))
    (start_coef, start), (step_coef, step) = affine(start), affine(step)
    if start_coef or step_coef:
        raise _Unsupported("an arange whose start or step depends on the batch")
    coef, const = affine(t.shape(fx)[0])
    t.emit(fx, "arange", [], ints={"start": [start], "step": [step], "length_coef": [coef], "length_const": [const]})


def _h_index(t: _Translator, fx, x, indices):
    """x[..., idx_0, ..., idx_k-1, ...] with the index tensors on consecutive dims."""
    used = [i for i, idx in enumerate(indices) if idx is not None]
    if used != list(range(used[0], used[-1] + 1)):
        raise _Unsupported("index tensors on dims that are not consecutive")
    if any(t.dtype_of(indices[i]) != "i64" for i in used):
        raise _Unsupported("indexing with a boolean mask (its result's shape depends on the data)")
    t.emit(fx, "index", [t.value(x)] + [t.value(indices[i]) for i in used], ints={"axis": [used[0]]})


def _h_gather(t: _Translator, fx, x, dim, index, sparse_grad=False):
    """torch.gather as `index` with the gathered dim's indices and an arange on every other dim."""
    shape = t.shape(index)
    rank = len(shape)
    dim %= rank
    indices = []
    for axis in range(rank):
        if axis == dim:
            indices.append(t.value(index))
            continue
        view = [1] * rank
        view[axis] = shape[axis]
        coef, const = affine(shape[axis])
        if not coef:
            indices.append(t.add_constant(np.arange(const, dtype=np.int64).reshape([affine(v)[1] for v in view])))
            continue
        line, placed = f"{fx.name}_arange{axis}", f"{fx.name}_index{axis}"
        t.nodes.append(IRNode("arange", _source_of(fx), [], line,
                              {"start": [0], "step": [1], "length_coef": [coef], "length_const": [const]}))
        t.nodes.append(IRNode("reshape", _source_of(fx), [line], placed, sizes_attr("shape", view)))
        indices.append(placed)
    t.emit(fx, "index", [t.value(x)] + indices, ints={"axis": [0]})


def _h_group_norm(t: _Translator, fx, x, groups, w=None, b=None, eps=1e-5, *rest):
    """(x − mean) / sqrt(var + eps) over each group of channels (and every position), then the
    per-channel affine: reshapes, means and element-wise nodes."""
    shape = t.shape(x)
    per_group = 1
    for d in shape[1:]:
        coef, const = affine(d)
        if coef:
            raise _Unsupported("group norm over a dim that depends on the batch")
        per_group *= const
    per_group //= groups
    src = _source_of(fx)
    names = {k: f"{fx.name}_{k}" for k in ("grouped", "mean", "centred", "square", "var", "shifted", "rstd", "normed")}

    def add(op: str, inputs: list[str], out: str, **ints: list[int]) -> None:
        t.nodes.append(IRNode(op, src, inputs, names.get(out, out), ints))

    add("reshape", [t.value(x)], "grouped", **sizes_attr("shape", [shape[0], groups, per_group]))
    add("reduce_mean", [names["grouped"]], "mean", dims=[2], keepdim=[1])
    add("binary", [names["grouped"], names["mean"]], "centred", kind=[BINARY_KINDS["sub"]])
    add("binary", [names["centred"], names["centred"]], "square", kind=[BINARY_KINDS["mul"]])
    add("reduce_mean", [names["square"]], "var", dims=[2], keepdim=[1])
    add("binary", [names["var"], t.scalar(float(eps))], "shifted", kind=[BINARY_KINDS["add"]])
    add("unary", [names["shifted"]], "rstd", kind=[UNARY_KINDS["rsqrt"]])
    add("binary", [names["centred"], names["rstd"]], "normed", kind=[BINARY_KINDS["mul"]])
    current = f"{fx.name}_ungrouped" if w is not None or b is not None else fx.name
    add("reshape", [names["normed"]], current, **sizes_attr("shape", shape))
    per_channel = [-1] + [1] * (len(shape) - 2)
    for role, param, kind in (("scaled", w, "mul"), ("shifted_out", b, "add")):
        if param is None:
            continue
        if not t.is_const(param):
            raise _Unsupported("group-norm parameters computed at run time")
        out = fx.name if role == "shifted_out" or b is None else f"{fx.name}_{role}"
        const = t.add_constant(_to_numpy(t.const(param)).reshape(per_channel))
        add("binary", [current, const], out, kind=[BINARY_KINDS[kind]])
        current = out


def _h_cumsum(t: _Translator, fx, x, dim, dtype=None):
    out = t.dtype_of(fx)
    # The op sums booleans into i64 itself, as torch does.
    source = t.value(x) if t.dtype_of(x) == "bool" and out == "i64" else t.value_as(x, out)
    t.emit(fx, "cumsum", [source], ints={"axis": [int(dim)]})


def _h_diff(t: _Translator, fx, x, n=1, dim=-1, prepend=None, append=None):
    """x[1:] - x[:-1] along `dim`, n times, after concatenating prepend and append (xor for booleans)."""
    out = t.dtype_of(fx)
    rank = len(t.shape(fx))
    axis = dim % rank
    parts = [t.value_as(a, out) for a in (prepend, x, append) if a is not None]
    current = parts[0]
    if len(parts) > 1:
        current = f"{fx.name}_joined"
        t.nodes.append(IRNode("concat", _source_of(fx), parts, current, {"axis": [axis]}))
    kind = BINARY_KINDS["xor" if out == "bool" else "sub"]
    for step in range(n):
        later, earlier = f"{fx.name}_later{step}", f"{fx.name}_earlier{step}"
        for name, start, end in ((later, 1, 2**63 - 1), (earlier, 0, -1)):
            t.nodes.append(IRNode("slice", _source_of(fx), [current], name,
                                  {"axis": [axis], "start": [start], "end": [end], "step": [1]}))
        current = fx.name if step == n - 1 else f"{fx.name}_diff{step}"
        t.nodes.append(IRNode("binary", _source_of(fx), [later, earlier], current, {"kind": [kind]}))
    if n == 0:
        t.alias[fx.name] = current


def _h_fill(t: _Translator, fx, *args, **kwargs):
    """full / ones / zeros and their *_like and new_* forms. Of a fixed shape: a constant (later ops
    on it fold); of a shape with the free batch: the value broadcast by expand."""
    name = _op_name(fx.target)
    value = 1 if "ones" in name else 0 if "zeros" in name else args[2] if name == "new_full.default" else args[1]
    if not isinstance(value, (int, float, bool)):
        raise _Unsupported("a fill value computed at run time")
    shape, dtype = t.shape(fx), _NUMPY_DTYPES[t.dtype_of(fx)]
    if _static(shape):
        t.const_tensors[fx.name] = t.torch.from_numpy(np.full([affine(d)[1] for d in shape], value, dtype=dtype))
        return
    const = t.add_constant(np.full([1] * len(shape), value, dtype=dtype))
    t.emit(fx, "expand", [const], ints=sizes_attr("shape", shape))


def _h_identity(t: _Translator, fx, x, *args, **kwargs):
    t.alias[fx.name] = t.value(x)


def _h_dropout(t: _Translator, fx, x, p=0.5, train=False, *rest):
    if train:
        raise _Unsupported("dropout in training mode (call model.eval())")
    t.alias[fx.name] = t.value(x)


def _h_reshape_like_output(t: _Translator, fx, x, *args, **kwargs):
    t.emit(fx, "reshape", [t.value(x)], ints=sizes_attr("shape", t.shape(fx)))


def _h_permute(t: _Translator, fx, x, dims):
    t.emit(fx, "permute", [t.value(x)], ints={"dims": [int(d) for d in dims]})


def _h_transpose(t: _Translator, fx, x, d0=0, d1=1):
    rank = len(t.shape(fx))
    dims = list(range(rank))
    if rank:
        d0, d1 = d0 % rank, d1 % rank
        dims[d0], dims[d1] = dims[d1], dims[d0]
    t.emit(fx, "permute", [t.value(x)], ints={"dims": dims})


def _h_expand(t: _Translator, fx, x, sizes, implicit=False):
    t.emit(fx, "expand", [t.value(x)], ints=sizes_attr("shape", t.shape(fx)))


def _h_cat(t: _Translator, fx, tensors, dim=0):
    t.emit(fx, "concat", [t.value(a) for a in tensors], ints={"axis": [int(dim)]})


def _h_slice(t: _Translator, fx, x, dim=0, start=None, end=None, step=1):
    def bound(v, default):
        if v is None:
            return default
        coef, const = affine(v)
        if coef:
            raise _Unsupported("a slice bound that depends on the batch")
        return const

    t.emit(fx, "slice", [t.value(x)],
           ints={"axis": [int(dim)], "start": [bound(start, 0)], "end": [bound(end, 2**63 - 1)], "step": [int(step)]})


def _h_select(t: _Translator, fx, x, dim, index):
    mid = f"{fx.name}_slice"
    end = index + 1 if index != -1 else 2**63 - 1
    t.nodes.append(IRNode("slice", _source_of(fx), [t.value(x)], mid,
                          {"axis": [int(dim)], "start": [int(index)], "end": [int(end)], "step": [1]}))
    t.nodes.append(IRNode("reshape", _source_of(fx), [mid], fx.name, sizes_attr("shape", t.shape(fx))))


def _h_split(t: _Translator, fx, x, split_size, dim=0):
    size = t.shape(x)[dim]
    coef, total = affine(size)
    if coef:
        raise _Unsupported("a split along the batch")
    sizes = list(split_size) if isinstance(split_size, (list, tuple)) else \
        [min(split_size, total - s) for s in range(0, total, split_size)]
    bounds, start = [], 0
    for s in sizes:
        bounds.append((start, start + s))
        start += s
    t._multi[fx.name] = (int(dim), bounds, False)
    t._multi_src[fx.name] = x


def _h_unbind(t: _Translator, fx, x, dim=0):
    coef, total = affine(t.shape(x)[dim])
    if coef:
        raise _Unsupported("an unbind along the batch")
    t._multi[fx.name] = (int(dim), [(i, i + 1) for i in range(total)], True)
    t._multi_src[fx.name] = x


def _fixed_size(t: _Translator, x, axis: int, what: str) -> int:
    coef, size = affine(t.shape(x)[axis])
    if coef:
        raise _Unsupported(f"{what} along a dim that depends on the batch")
    return size


def _take(t: _Translator, fx, value: str, axis: int, positions: np.ndarray, output: str | None = None) -> str:
    """`value` with the dim `axis` replaced by the given positions along it (constant indices)."""
    output = output or f"{fx.name}_take{len(t.nodes)}"
    index = t.add_constant(np.ascontiguousarray(positions, dtype=np.int64))
    t.nodes.append(IRNode("index", _source_of(fx), [value, index], output, {"axis": [axis]}))
    return output


def _h_index_select(t: _Translator, fx, x, dim, index):
    if len(t.shape(index)) != 1:
        raise _Unsupported("index_select with an index that is not 1-d")
    t.emit(fx, "index", [t.value(x), t.value(index)], ints={"axis": [int(dim) % len(t.shape(x))]})


def _h_flip(t: _Translator, fx, x, dims):
    rank = len(t.shape(x))
    current, axes = t.value(x), sorted({int(d) % rank for d in dims})
    for i, axis in enumerate(axes):
        size = _fixed_size(t, x, axis, "flip")
        current = _take(t, fx, current, axis, np.arange(size - 1, -1, -1), fx.name if i == len(axes) - 1 else None)
    if not axes:
        t.alias[fx.name] = current


def _h_repeat(t: _Translator, fx, x, repeats):
    rank = len(t.shape(x))
    if len(repeats) != rank:
        raise _Unsupported("repeat that adds leading dims")
    current, axes = t.value(x), [a for a, r in enumerate(repeats) if int(r) != 1]
    for i, axis in enumerate(axes):
        size = _fixed_size(t, x, axis, "repeat")
        current = _take(t, fx, current, axis, np.arange(size * int(repeats[axis])) % size,
                        fx.name if i == len(axes) - 1 else None)
    if not axes:
        t.alias[fx.name] = current


def _pad_positions(mode: str, size: int, before: int, after: int) -> np.ndarray:
    """Source positions of reflect / replicate / circular padding along one dim, as torch pads."""
    i = np.arange(-before, size + after)
    if mode == "reflect":
        if before >= size or after >= size:
            raise _Unsupported(f"reflect padding of {max(before, after)} on a dim of size {size} (expected less)")
        return np.where(i < 0, -i, np.where(i >= size, 2 * (size - 1) - i, i))
    if mode == "replicate":
        return np.clip(i, 0, size - 1)
    if mode == "circular":
        return i % size
    raise _Unsupported(f"{mode} padding")


def _h_pad(t: _Translator, fx, x, pad, mode="constant", value=None):
    """Constant padding as concatenation with constant blocks (broadcast over the free batch); reflect,
    replicate and circular padding as a gather of positions. `pad` lists (before, after) pairs from
    the last dimension backwards, as F.pad takes it."""
    if mode != "constant":
        rank, pairs = len(t.shape(x)), [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2)]
        current, padded = t.value(x), [(rank - 1 - i, b, a) for i, (b, a) in enumerate(pairs) if b or a]
        for n, (axis, before, after) in enumerate(padded):
            positions = _pad_positions(mode, _fixed_size(t, x, axis, f"{mode} padding"), before, after)
            current = _take(t, fx, current, axis, positions, fx.name if n == len(padded) - 1 else None)
        if not padded:
            t.alias[fx.name] = current
        return
    pad = [int(p) for p in pad]
    if any(p < 0 for p in pad):
        raise _Unsupported("negative padding (cropping)")
    shape = t.shape(x)
    current, fill = t.value(x), float(value or 0.0)
    for i in range(len(pad) // 2):
        axis = len(shape) - 1 - i
        before, after = pad[2 * i], pad[2 * i + 1]
        if not before and not after:
            continue
        parts = []
        for width in (before, after):
            if not width:
                parts.append(None)
                continue
            block = list(shape)
            block[axis] = width
            small = [1 if affine(d)[0] else affine(d)[1] for d in block]
            const = t.add_constant(np.full(small, fill, dtype=np.float32))
            name = f"{fx.name}_pad{i}_{len(parts)}"
            t.nodes.append(IRNode("expand", _source_of(fx), [const], name, sizes_attr("shape", block)))
            parts.append(name)
        shape[axis] = shape[axis] + before + after
        out = fx.name if all(p == 0 for p in pad[2 * i + 2:]) else f"{fx.name}_axis{axis}"
        inputs = [n for n in (parts[0], current, parts[1]) if n is not None]
        t.nodes.append(IRNode("concat", _source_of(fx), inputs, out, {"axis": [axis]}))
        current = out
    if current == t.value(x):
        t.alias[fx.name] = current


def _h_constant_pad_nd(t: _Translator, fx, x, pad, value=0.0):
    _h_pad(t, fx, x, pad, "constant", value)


def _upsample_sources(mode: str, size: int, out: int, scale: float | None, align_corners: bool) -> tuple:
    """Per output position along one dim: the source positions and their weights, computed in float32
    as torch's CPU kernels compute them. Nearest: one position; linear: two, weighted."""
    f32 = np.float32
    dst = np.arange(out, dtype=f32)
    if mode in ("nearest", "nearest-exact"):
        step = f32(1.0 / scale) if scale else f32(size) / f32(out)
        src = np.floor((dst + f32(0.5)) * step if mode == "nearest-exact" else dst * step).astype(np.int64)
        return (np.minimum(src, size - 1),), (None,)
    if align_corners:
        step = f32(size - 1) / f32(out - 1) if out > 1 else f32(0)
        src = dst * step
    else:
        step = f32(1.0 / scale) if scale else f32(size) / f32(out)
        src = np.maximum(step * (dst + f32(0.5)) - f32(0.5), f32(0))
    low = src.astype(np.int64)
    high = np.where(low < size - 1, low + 1, low)
    w_high = (src - low.astype(f32)).astype(f32)
    return (low, high), (f32(1) - w_high, w_high)


def _upsample(mode: str) -> Callable:
    """upsample_nearest2d / _upsample_nearest_exact2d / upsample_bilinear2d (and 1-d): per spatial dim,
    gathers of source positions, weighted and summed for bilinear."""
    def handler(t: _Translator, fx, x, output_size, *rest):
        linear = mode == "linear"
        align_corners = bool(rest[0]) if linear else False
        scales = rest[1] if linear else rest[0]
        shape = t.shape(x)
        spatial = range(2, len(shape))
        current = t.value(x)
        for n, axis in enumerate(spatial):
            size, out = _fixed_size(t, x, axis, "upsampling"), _fixed_size(t, fx, axis, "upsampling")
            scale = float(scales[axis - 2]) if scales else None
            positions, weights = _upsample_sources(mode, size, out, scale, align_corners)
            final = fx.name if n == len(spatial) - 1 else f"{fx.name}_axis{axis}"
            if len(positions) == 1:
                current = _take(t, fx, current, axis, positions[0], final)
                continue
            view = [1] * len(shape)
            view[axis] = out
            parts = []
            for k, (where, weight) in enumerate(zip(positions, weights)):
                taken = _take(t, fx, current, axis, where)
                parts.append(f"{final}_w{k}")
                t.nodes.append(IRNode("binary", _source_of(fx), [taken, t.add_constant(weight.reshape(view))], parts[-1],
                                      {"kind": [BINARY_KINDS["mul"]]}))
            t.nodes.append(IRNode("binary", _source_of(fx), parts, final, {"kind": [BINARY_KINDS["add"]]}))
            current = final

    return handler


def _h_layer_norm(t: _Translator, fx, x, normalized_shape, w=None, b=None, eps=1e-5, *rest):
    inputs = [t.value(x)]
    for a in (w, b):
        if a is not None:
            inputs.append(t.value(a))
    if w is None and b is not None:
        raise _Unsupported("layer norm with a bias but no weight")
    t.emit(fx, "layer_norm", inputs,
           ints={"normalized": [len(normalized_shape)], "has_weight": [int(w is not None)], "has_bias": [int(b is not None)]},
           floats={"eps": [float(eps)]})


def _h_softmax(t: _Translator, fx, x, dim, *rest):
    t.emit(fx, "softmax", [t.value(x)], ints={"axis": [int(dim)]})


def _reduce(op: str) -> Callable:
    def handler(t: _Translator, fx, x, dims=None, keepdim=False, *rest, dtype=None):
        dims = [] if dims is None else ([int(dims)] if isinstance(dims, int) else [int(d) for d in dims])
        t.emit(fx, op, [t.value(x)], ints={"dims": dims, "keepdim": [int(bool(keepdim))]})

    return handler


def _h_max_pool(t: _Translator, fx, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    t.emit(fx, "max_pool2d", [t.value(x)], ints={
        "kernel": _pair(kernel), "stride": _pair(stride if stride else kernel), "padding": _pair(padding),
        "dilation": _pair(dilation), "ceil_mode": [int(ceil_mode)]})


def _h_avg_pool(t: _Translator, fx, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    t.emit(fx, "avg_pool2d", [t.value(x)], ints={
        "kernel": _pair(kernel), "stride": _pair(stride if stride else kernel), "padding": _pair(padding),
        "ceil_mode": [int(ceil_mode)], "count_include_pad": [int(count_include_pad)],
        "divisor": [int(divisor_override or 0)]})


def _h_adaptive_avg_pool(t: _Translator, fx, x, output_size):
    t.emit(fx, "adaptive_avg_pool2d", [t.value(x)], ints={"output_size": _pair(output_size)})


def _h_sdpa(t: _Translator, fx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if dropout_p:
        raise _Unsupported("attention dropout (call model.eval())")
    if enable_gqa:
        raise _Unsupported("grouped-query attention")
    inputs = [t.value(q), t.value(k), t.value(v)]
    if attn_mask is not None:
        # A constant mask expanded to the free batch (Hugging Face's mask without padding): the
        # constant itself, which SDPA broadcasts as torch does.
        source = attn_mask
        while not t.is_const(source) and _op_name(source.target) in ("expand.default", "clone.default", "alias.default"):
            source = source.args[0]
        attn_mask = source if t.is_const(source) else attn_mask
        if t.is_const(attn_mask) and t.const(attn_mask).dtype == t.torch.bool:
            m = t.const(attn_mask)
            additive = np.where(m.numpy(), 0.0, -np.inf).astype(np.float32)
            inputs.append(t.add_constant(additive, f"{fx.name}.mask"))
        elif t.dtype_of(attn_mask) == "bool":  # kept positions add 0, the others -inf, as torch reads it
            additive = f"{fx.name}_mask"
            t.nodes.append(IRNode("where", _source_of(fx), [t.value(attn_mask), t.scalar(0.0), t.scalar(-math.inf)],
                                  additive))
            inputs.append(additive)
        else:
            inputs.append(t.value_as(attn_mask, "f32"))
    floats = {} if scale is None else {"scale": [float(scale)]}
    t.emit(fx, "sdpa", inputs, ints={"is_causal": [int(bool(is_causal))]}, floats=floats)


class _Steps:
    """Emits the nodes of an unrolled recurrence, each name prefixed with the operator's."""

    def __init__(self, t: _Translator, fx):
        self.t, self.src, self.prefix, self.count = t, _source_of(fx), fx.name, 0

    def __call__(self, op: str, inputs: list[str], ints=None, layer: str | None = None) -> str:
        self.count += 1
        name = f"{self.prefix}_{op}{self.count}"
        self.t.nodes.append(IRNode(op, layer or self.src, inputs, name, ints or {}))
        return name

    def binary(self, kind: str, a: str, b: str) -> str:
        return self("binary", [a, b], {"kind": [BINARY_KINDS[kind]]})

    def unary(self, kind: str, a: str) -> str:
        return self("unary", [a], {"kind": [UNARY_KINDS[kind]]})

    def take(self, x: str, axis: int, start: int, end: int) -> str:
        return self("slice", [x], {"axis": [axis], "start": [start], "end": [end], "step": [1]})

    def reshape(self, x: str, shape: list) -> str:
        return self("reshape", [x], sizes_attr("shape", shape))

    def part(self, x: str, k: int, width: int) -> str:
        """The k-th `width` columns of a (rows, columns) value: one gate's share."""
        return self.take(x, 1, k * width, (k + 1) * width)


def _recurrent(t: _Translator, fx, cell: str, x, states: list, params: list, has_biases: bool, num_layers: int,
               train: bool, bidirectional: bool, batch_first: bool) -> None:
    """nn.LSTM / nn.GRU unrolled over a sequence of fixed length: per layer and direction, the input
    projection of every step in one linear layer (its weight packed like any other), then per step the
    hidden projection (a product with the constant W_hh, shared by the steps) and the gates. Outputs:
    the sequence, then the final hidden (and, for LSTM, cell) state of every layer and direction."""
    if train:
        raise _Unsupported(f"{cell} in training mode (call model.eval())")
    if not all(t.is_const(p) for p in params):
        raise _Unsupported(f"{cell} weights computed at run time")
    shape = t.shape(x)
    time_axis = 1 if batch_first else 0
    steps_coef, steps = affine(shape[time_axis])
    if steps_coef:
        raise _Unsupported(f"{cell} over a sequence whose length depends on the batch")
    batch = shape[1 - time_axis]
    directions = 2 if bidirectional else 1
    gates = 4 if cell == "lstm" else 3
    per = 4 if has_biases else 2
    if len(params) != num_layers * directions * per:
        raise _Unsupported(f"{cell} with projections (proj_size)")
    emit = _Steps(t, fx)
    sequence = t.value(x)
    finals: list[list[str]] = [[], []]  # h_n, c_n pieces in torch's order (layer-major, direction-minor)
    for layer in range(num_layers):
        outputs = []
        for d in range(directions):
            w_ih, w_hh, *biases = [_to_numpy(t.const(p)) for p in params[(layer * directions + d) * per:][:per]]
            hidden = w_hh.shape[1]
            b_ih, b_hh = biases if biases else (np.zeros(gates * hidden, np.float32),) * 2
            # LSTM adds both biases before its gates; GRU's b_hn stays inside r · (W_hn h + b_hn).
            in_bias = b_ih + b_hh if cell == "lstm" else b_ih
            weight_name = f"{emit.src}.weight_ih_l{layer}" + ("_reverse" if d else "")  # torch's parameter name
            projected = emit("linear", [sequence, t.add_constant(in_bias.astype(np.float32))], layer=weight_name)
            t.nodes[-1].weights = [w_ih.copy()]
            t.nodes[-1].rows = t.rows(shape[:2])
            w_hh_t = t.add_constant(np.ascontiguousarray(w_hh.T))
            b_hh_c = t.add_constant(b_hh.astype(np.float32))
            index = layer * directions + d
            state = [emit.reshape(emit.take(t.value(s), 0, index, index + 1), [batch, hidden]) for s in states]
            h, c = state[0], state[1] if cell == "lstm" else None
            hs = [None] * steps
            for step in (range(steps - 1, -1, -1) if d else range(steps)):
                xg = emit.reshape(emit.take(projected, time_axis, step, step + 1), [batch, gates * hidden])
                hg = emit("matmul", [h, w_hh_t])
                if cell == "lstm":
                    z = emit.binary("add", xg, hg)
                    i, f, g, o = (emit.unary(a, emit.part(z, k, hidden)) for k, a in enumerate(("sigmoid", "sigmoid", "tanh", "sigmoid")))
                    c = emit.binary("add", emit.binary("mul", f, c), emit.binary("mul", i, g))
                    h = emit.binary("mul", o, emit.unary("tanh", c))
                else:
                    hg = emit.binary("add", hg, b_hh_c)
                    r = emit.unary("sigmoid", emit.binary("add", emit.part(xg, 0, hidden), emit.part(hg, 0, hidden)))
                    u = emit.unary("sigmoid", emit.binary("add", emit.part(xg, 1, hidden), emit.part(hg, 1, hidden)))
                    n = emit.unary("tanh", emit.binary("add", emit.part(xg, 2, hidden), emit.binary("mul", r, emit.part(hg, 2, hidden))))
                    h = emit.binary("add", n, emit.binary("mul", u, emit.binary("sub", h, n)))  # (1 − u)·n + u·h
                hs[step] = emit.reshape(h, [batch, 1, hidden] if batch_first else [1, batch, hidden])
            outputs.append(emit("concat", hs, {"axis": [time_axis]}) if steps > 1 else hs[0])
            finals[0].append(emit.reshape(h, [1, batch, hidden]))
            if cell == "lstm":
                finals[1].append(emit.reshape(c, [1, batch, hidden]))
        sequence = emit("concat", outputs, {"axis": [2]}) if directions > 1 else outputs[0]
    stacked = [emit("concat", pieces, {"axis": [0]}) if len(pieces) > 1 else pieces[0] for pieces in finals if pieces]
    t.outputs_of[fx.name] = [sequence] + stacked


def _h_lstm(t: _Translator, fx, x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    _recurrent(t, fx, "lstm", x, list(hx), list(params), has_biases, num_layers, train, bidirectional, batch_first)


def _h_gru(t: _Translator, fx, x, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    _recurrent(t, fx, "gru", x, [hx], list(params), has_biases, num_layers, train, bidirectional, batch_first)


def _h_embedding(t: _Translator, fx, weight, indices, *rest):
    t.emit(fx, "embedding", [t.value(weight), t.value(indices)])


def _h_to_dtype(t: _Translator, fx, x, *args, **kwargs):
    out = fx.meta["val"].dtype
    torch = t.torch
    if out not in (torch.float32, torch.int64, torch.bool) and not (out == torch.int32 and t.dtype_of(x) != "f32"):
        raise _Unsupported(f"a conversion to {out}")
    target = t.dtype_of(fx)
    if t.dtype_of(x) == target:
        t.alias[fx.name] = t.value(x)
        return
    t.emit(fx, "cast", [t.value(x)], ints={"dtype": [DTYPE_CODES[target]]})


_HANDLERS: dict[str, Callable] = {
    "linear.default": _h_linear,
    "addmm.default": _h_addmm,
    "matmul.default": _h_matmul,
    "mm.default": _h_matmul,
    "bmm.default": _h_matmul,
    "conv2d.default": _h_conv,
    "conv1d.default": _h_conv,
    "conv1d.padding": _h_conv,
    "conv2d.padding": _h_conv,
    "convolution.default": _h_convolution,
    "batch_norm.default": _h_batch_norm,
    "_native_batch_norm_legit_no_training.default": _h_batch_norm,
    "relu.default": _unary("relu"),
    "relu_.default": _unary("relu"),
    "relu6.default": _unary("relu6"),
    "hardtanh.default": _h_hardtanh,
    "clamp.default": _h_clamp,
    "gelu.default": _h_gelu,
    "silu.default": _unary("silu"),
    "sigmoid.default": _unary("sigmoid"),
    "tanh.default": _unary("tanh"),
    "hardswish.default": _unary("hardswish"),
    "hardsigmoid.default": _unary("hardsigmoid"),
    "neg.default": _unary("neg"),
    "exp.default": _unary("exp"),
    "sqrt.default": _unary("sqrt"),
    "rsqrt.default": _unary("rsqrt"),
    "erf.default": _unary("erf"),
    "abs.default": _unary("abs"),
    "add.Tensor": _binary("add"),
    "add.Scalar": _binary("add"),
    "sub.Tensor": _binary("sub"),
    "sub.Scalar": _binary("sub"),
    "rsub.Scalar": _binary("sub", swap=True),
    "mul.Tensor": _binary("mul"),
    "mul.Scalar": _binary("mul"),
    "div.Tensor": _binary("div"),
    "div.Scalar": _binary("div"),
    "div.Tensor_mode": _binary("div"),
    "pow.Tensor_Scalar": _binary("pow"),
    "maximum.default": _binary("maximum"),
    **{f"{kind}.{form}": _compare(kind) for kind in ("eq", "ne", "lt", "le", "gt", "ge") for form in ("Tensor", "Scalar")},
    **{f"{prefix}{kind}{suffix}": _logical(kind) for kind in ("and", "or", "xor")
       for prefix, suffix in (("__", "__.Tensor"), ("bitwise_", ".Tensor"), ("logical_", ".default"))},
    "bitwise_not.default": _h_logical_not,
    "logical_not.default": _h_logical_not,
    "where.self": _h_where,
    "where.ScalarSelf": _h_where,
    "where.ScalarOther": _h_where,
    "where.Scalar": _h_where,
    "gather.default": _h_gather,
    "group_norm.default": _h_group_norm,
    "masked_fill.Scalar": _h_masked_fill,
    "masked_fill.Tensor": _h_masked_fill,
    "arange.default": _h_arange,
    "arange.start": _h_arange,
    "arange.start_step": _h_arange,
    "index.Tensor": _h_index,
    "cumsum.default": _h_cumsum,
    "diff.default": _h_diff,
    **{name: _h_fill for name in ("full.default", "ones.default", "zeros.default", "full_like.default",
                                  "ones_like.default", "zeros_like.default", "new_ones.default",
                                  "new_zeros.default", "new_full.default")},
    "minimum.default": _binary("minimum"),
    "max_pool2d.default": _h_max_pool,
    "max_pool2d_with_indices.default": _h_max_pool,
    "avg_pool2d.default": _h_avg_pool,
    "adaptive_avg_pool2d.default": _h_adaptive_avg_pool,
    "_adaptive_avg_pool2d.default": _h_adaptive_avg_pool,
    "flatten.using_ints": _h_reshape_like_output,
    "view.default": _h_reshape_like_output,
    "reshape.default": _h_reshape_like_output,
    "_unsafe_view.default": _h_reshape_like_output,
    "unsqueeze.default": _h_reshape_like_output,
    "squeeze.dim": _h_reshape_like_output,
    "squeeze.dims": _h_reshape_like_output,
    "squeeze.default": _h_reshape_like_output,
    "unflatten.int": _h_reshape_like_output,
    "permute.default": _h_permute,
    "transpose.int": _h_transpose,
    "t.default": _h_transpose,
    "expand.default": _h_expand,
    "cat.default": _h_cat,
    "pad.default": _h_pad,
    "index_select.default": _h_index_select,
    "flip.default": _h_flip,
    "repeat.default": _h_repeat,
    "upsample_nearest1d.vec": _upsample("nearest"),
    "upsample_nearest2d.vec": _upsample("nearest"),
    "_upsample_nearest_exact1d.vec": _upsample("nearest-exact"),
    "_upsample_nearest_exact2d.vec": _upsample("nearest-exact"),
    "upsample_linear1d.vec": _upsample("linear"),
    "upsample_bilinear2d.vec": _upsample("linear"),
    "constant_pad_nd.default": _h_constant_pad_nd,
    "concat.default": _h_cat,
    "slice.Tensor": _h_slice,
    "select.int": _h_select,
    "split.Tensor": _h_split,
    "split_with_sizes.default": _h_split,
    "unbind.int": _h_unbind,
    "layer_norm.default": _h_layer_norm,
    "native_layer_norm.default": _h_layer_norm,
    "softmax.int": _h_softmax,
    "_softmax.default": _h_softmax,
    "mean.dim": _reduce("reduce_mean"),
    "mean.default": _reduce("reduce_mean"),
    "sum.dim_IntList": _reduce("reduce_sum"),
    "sum.default": _reduce("reduce_sum"),
    "scaled_dot_product_attention.default": _h_sdpa,
    "embedding.default": _h_embedding,
    "lstm.input": _h_lstm,
    "gru.input": _h_gru,
    "contiguous.default": _h_identity,
    "clone.default": _h_identity,
    "alias.default": _h_identity,
    "detach.default": _h_identity,
    "lift_fresh_copy.default": _h_identity,
    "dropout.default": _h_dropout,
    "native_dropout.default": _h_dropout,
    "feature_dropout.default": _h_dropout,
    "to.dtype": _h_to_dtype,
    "_to_copy.default": _h_to_dtype,
    "type_as.default": _h_to_dtype,
}

# Nodes that only carry sizes or checks: the translation reads their values where used.
for _name in ("sym_size.int", "_assert_scalar.default", "sym_constrain_range_for_size.default",
              "_assert_tensor_metadata.default"):
    _HANDLERS[_name] = lambda t, fx, *a, **k: None


def translate_program(program: Any, example_batch: int = 1) -> IRGraph:
    """The IR of an exported program (functional form, see capture.canonical); raises
    UnsupportedModelError listing every operator it cannot translate. `example_batch` is the batch
    each weight's rows are counted at."""
    return _Translator(program, example_batch).run()
