"""The importer's intermediate representation: one `IRNode` per sparsert operator (the list and the
attributes are cpp/src/graph/ops.def's), an `IRGraph` of them with NumPy constants, the codes the
C++ core stores in model files, and sizes as affine functions of the free batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _core

# The codes the C++ core stores in model files, by spelling, from the core itself (sparsert/graph.hpp's
# attribute_codes): epilogue activations (a linear's or convolution's "act"), unary and binary kinds,
# and element types (the cast op's "dtype").
_CODES = _core.codes()
ACT_CODES: dict[str, int] = _CODES["activation"]
UNARY_KINDS: dict[str, int] = _CODES["unary"]
BINARY_KINDS: dict[str, int] = _CODES["binary"]
DTYPE_CODES: dict[str, int] = _CODES["dtype"]

# Unary kinds a linear/conv epilogue can apply (the rest stay separate nodes): every activation but
# "none", each spelled as its unary kind (cpp/src/graph/ops.hpp's epilogue_activation).
EPILOGUE_ACTS = set(ACT_CODES) - {"none"}


class UnsupportedModelError(ValueError):
    """The model uses operators sparsert cannot run; the message lists every one with its source."""


@dataclass
class IRNode:
    op: str
    name: str  # the source module path (e.g. "layer1.0.conv1") or operator name
    inputs: list[str]
    output: str
    ints: dict[str, list[int]] = field(default_factory=dict)
    floats: dict[str, list[float]] = field(default_factory=dict)
    # linear: [W (out, in)]; conv2d: one (OC/groups, C/groups·kh·kw) matrix per group. Dense float32.
    weights: list[np.ndarray] = field(default_factory=list)
    rows: int = 1  # rows each weight multiplies at the example batch (batch, or batch × output pixels)
    conv: Any = None  # conv2d: its cost.ConvShape at the example batch, for the format choice
    same_shapes: bool = False  # binary: both operands have the output's shape (nothing broadcast)
    role: str = ""  # what a pass looks for: "batch_norm_scale" (the mul of a batch norm, before its add)


@dataclass
class IRGraph:
    inputs: list[tuple[str, str, list[int]]]  # (name, dtype "f32"/"i64", shape with -1 = free batch)
    constants: dict[str, np.ndarray]
    nodes: list[IRNode]
    outputs: list[str]


def affine(size: Any) -> tuple[int, int]:
    """A dimension size (an int, a SymInt, or the fx node computing one) as (coef, const) with
    size = coef·batch + const."""
    if hasattr(size, "meta"):
        size = size.meta["val"]
    if isinstance(size, int):
        return 0, size
    expr = size.node.expr
    symbols = list(expr.free_symbols)
    if not symbols:
        return 0, int(expr)
    if len(symbols) > 1:
        raise UnsupportedModelError(f"a size depends on several free dimensions ({expr}); only the batch may vary")
    s = symbols[0]
    const = int(expr.subs(s, 0))
    coef = int(expr.subs(s, 1)) - const
    if int(expr.subs(s, 7)) != 7 * coef + const:
        raise UnsupportedModelError(f"size {expr} is not linear in the batch")
    return coef, const


def sizes_attr(name: str, sizes: Any) -> dict[str, list[int]]:
    pairs = [affine(s) for s in sizes]
    return {f"{name}_coef": [c for c, _ in pairs], f"{name}_const": [k for _, k in pairs]}
