"""Graph passes on the IR, in `optimise`'s order: batch norm folded into the preceding conv/linear
(depthwise convs included), a conv's same-shaped residual add into the conv, activations into their
producers' epilogues, rows that always output zero removed with the next layer's matching inputs,
attention read from and written to token rows, and dead nodes dropped."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import select
from .ir import ACT_CODES, BINARY_KINDS, EPILOGUE_ACTS, UNARY_KINDS, IRGraph, IRNode


def optimise(graph: IRGraph) -> IRGraph:
    graph = fold_batch_norm(graph)
    graph = fuse_residual_adds(graph)
    graph = fuse_activations(graph)
    graph = remove_dead_rows(graph)
    graph = attention_on_rows(graph)
    return prune_dead(graph)


def _consumers(graph: IRGraph) -> dict[str, list[IRNode]]:
    users: dict[str, list[IRNode]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            users.setdefault(i, []).append(n)
    return users


def fold_batch_norm(graph: IRGraph) -> IRGraph:
    """mul-by-scale + add-shift pairs (batch norm, see _h_batch_norm) right after a linear/conv (or
    depthwise conv) whose only reader they are become part of its weights and bias."""
    users = _consumers(graph)
    producer = {n.output: n for n in graph.nodes}
    removed: set[int] = set()
    for n in graph.nodes:
        if n.op != "binary" or n.ints["kind"] != [BINARY_KINDS["mul"]] or n.role != "batch_norm_scale":
            continue
        src = producer.get(n.inputs[0])
        shift_node = users.get(n.output, [None])[0]
        if src is None or src.op not in ("linear", "conv2d", "depthwise_conv2d") or len(users.get(src.output, [])) != 1:
            continue
        if shift_node is None or len(users[n.output]) != 1 or src.output in graph.outputs:
            continue
        scale = graph.constants[n.inputs[1]].reshape(-1).astype(np.float64)
        shift = graph.constants[shift_node.inputs[1]].reshape(-1).astype(np.float64)
        if src.op == "depthwise_conv2d":  # weight and bias are constant inputs, not packed weights
            if _fold_into_depthwise(graph, src, scale, shift):
                src.output = shift_node.output
                removed.update({id(n), id(shift_node)})
            continue
        rows = sum(w.shape[0] for w in src.weights)
        if scale.size != rows or shift.size != rows or src.op == "linear" and len(graph.constants[n.inputs[1]].shape) != 1:
            continue
        start = 0
        for g, w in enumerate(src.weights):
            part = scale[start:start + w.shape[0]]
            src.weights[g] = (w.astype(np.float64) * part[:, None]).astype(np.float32)
            start += w.shape[0]
        bias = graph.constants[src.inputs[1]].astype(np.float64) if len(src.inputs) > 1 else np.zeros(rows)
        new_bias = (bias * scale + shift).astype(np.float32)
        bias_name = f"{src.output}.bias_folded"
        graph.constants[bias_name] = new_bias
        src.inputs = [src.inputs[0], bias_name]
        src.output = shift_node.output
        removed.update({id(n), id(shift_node)})
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return graph


def _fold_into_depthwise(graph: IRGraph, src: IRNode, scale: np.ndarray, shift: np.ndarray) -> bool:
    """Per-channel scale and shift into a depthwise conv's weight (C·m, 1, kh, kw) and bias, as new
    constants (the old ones may have other readers); False when the sizes do not match its channels."""
    if len(src.inputs) < 2 or src.inputs[1] not in graph.constants:
        return False
    if len(src.inputs) > 2 and src.inputs[2] not in graph.constants:
        return False
    w = graph.constants[src.inputs[1]]
    rows = w.shape[0]
    if scale.size != rows or shift.size != rows:
        return False
    bias = graph.constants[src.inputs[2]].astype(np.float64) if len(src.inputs) > 2 else np.zeros(rows)
    weight_name, bias_name = f"{src.output}.weight_folded", f"{src.output}.bias_folded"
    graph.constants[weight_name] = (w.astype(np.float64) * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
    graph.constants[bias_name] = (bias * scale + shift).astype(np.float32)
    src.inputs = [src.inputs[0], weight_name, bias_name]
    return True


def fuse_activations(graph: IRGraph) -> IRGraph:
    """A unary activation that is the only reader of a linear/conv output moves into its epilogue."""
    users = _consumers(graph)
    kind_to_act = {v: k for k, v in UNARY_KINDS.items() if k in EPILOGUE_ACTS}
    producer = {n.output: n for n in graph.nodes}
    removed: set[int] = set()
    for n in graph.nodes:
        if n.op != "unary" or n.ints["kind"][0] not in kind_to_act:
            continue
        src = producer.get(n.inputs[0])
        if src is None or src.op not in ("linear", "conv2d", "depthwise_conv2d") or "act" in src.ints:
            continue
        if len(users.get(src.output, [])) != 1 or src.output in graph.outputs:
            continue
        src.ints["act"] = [ACT_CODES[kind_to_act[n.ints["kind"][0]]]]
        src.output = n.output
        removed.add(id(n))
    graph.nodes = [n for n in graph.nodes if id(n) not in removed]
    return graph


def fuse_residual_adds(graph: IRGraph) -> IRGraph:
    """conv2d → add of a same-shaped tensor becomes one conv2d with a residual input (y = act(conv +
    bias + residual), written once instead of twice; fuse_activations, which runs next, then moves a
    following activation into it). The conv takes the add's place, where the residual has been
    computed (a downsample branch comes after the conv in torch's order)."""
    users = _consumers(graph)
    producer = {n.output: n for n in graph.nodes}
    moved: dict[int, IRNode] = {}  # id(add) → the conv that takes its place
    for add in graph.nodes:
        if add.op != "binary" or add.ints["kind"][0] != BINARY_KINDS["add"] or not add.same_shapes:
            continue
        for mine, other in ((0, 1), (1, 0)):
            conv = producer.get(add.inputs[mine])
            if (conv is None or conv.op != "conv2d" or "act" in conv.ints
                    or len(users.get(conv.output, [])) != 1 or conv.output in graph.outputs
                    or add.inputs[other] == conv.output):
                continue
            conv.inputs = conv.inputs + [add.inputs[other]]
            conv.ints["residual"] = [1]
            conv.output = add.output
            moved[id(add)] = conv
            break
    convs = {id(c) for c in moved.values()}
    graph.nodes = [moved.get(id(n), n) for n in graph.nodes if id(n) not in convs]
    return graph


def _activate(act: int, x: np.ndarray) -> np.ndarray:
    """The epilogue activation `act` (an ACT_CODES value) in float64, for folding constant outputs."""
    from math import erf

    name = {v: k for k, v in ACT_CODES.items()}[act]
    if name == "none":
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "relu6":
        return np.clip(x, 0, 6)
    if name == "gelu":
        return x * 0.5 * (1 + np.vectorize(erf)(x / np.sqrt(2)))
    if name == "gelu_tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    if name == "silu":
        return x / (1 + np.exp(-x))
    if name == "sigmoid":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "hardswish":
        return x * np.clip(x + 3, 0, 6) / 6
    raise ValueError(f"no float64 form of activation {name!r}")


def remove_dead_rows(graph: IRGraph) -> IRGraph:
    """Structured pruning: output rows (channels) of a linear/conv whose weights are all zero are
    removed, and so are the matching input columns of the linear/conv that alone reads them.

    A removed row still outputs the constant act(bias); linear → linear folds its contribution into
    the reader's bias exactly. A convolution reader pads with zeros, so a constant channel is not
    constant at the borders: conv → conv removes only rows whose output is exactly zero. A reader
    whose weight is N:M keeps its pattern: its inputs go only in whole aligned groups of M, since
    removing others would shift the later inputs across groups."""
    users = _consumers(graph)
    for n in graph.nodes:
        # A residual conv's all-zero rows output act(bias + residual), which is not constant.
        if n.op not in ("linear", "conv2d") or len(n.weights) != 1 or n.output in graph.outputs or "residual" in n.ints:
            continue
        readers = users.get(n.output, [])
        if len(readers) != 1 or readers[0].op != n.op or len(readers[0].weights) != 1 or readers[0].inputs[0] != n.output:
            continue
        reader = readers[0]
        w1, w2 = n.weights[0], reader.weights[0]
        bias1 = graph.constants[n.inputs[1]].astype(np.float64) if len(n.inputs) > 1 else np.zeros(w1.shape[0])
        constant = _activate(n.ints.get("act", [0])[0], bias1)
        dead = ~w1.any(axis=1)
        if n.op == "conv2d":
            dead &= constant == 0
        taps = w2.shape[1] // w1.shape[0]  # reader columns per channel: kh·kw for a conv, 1 for a linear
        nm = select.nm_pattern(w2) if dead.any() else None
        if nm is not None:
            dead = _whole_runs(dead, nm[1] // math.gcd(taps, nm[1]))  # runs of lcm(taps, M) columns
        if not dead.any():
            continue
        dead_cols = np.repeat(dead, taps)
        fold = w2[:, dead_cols].astype(np.float64) @ np.repeat(constant[dead], taps)
        n.weights[0] = w1[~dead].copy()
        if len(n.inputs) > 1:
            name = f"{n.output}.bias_live"
            graph.constants[name] = graph.constants[n.inputs[1]][~dead].copy()
            n.inputs[1] = name
        reader.weights[0] = w2[:, ~dead_cols].copy()
        if np.any(fold != 0):
            bias2 = graph.constants[reader.inputs[1]].astype(np.float64) if len(reader.inputs) > 1 else 0.0
            name = f"{reader.output}.bias_folded_rows"
            graph.constants[name] = (bias2 + fold).astype(np.float32)
            reader.inputs = [reader.inputs[0], name]
    return graph


def _reshape_dims(n: IRNode | None) -> list[tuple[int, int]] | None:
    """A reshape's target as (coef, const) per dim, None for another node."""
    if n is None or n.op != "reshape":
        return None
    return list(zip(n.ints["shape_coef"], n.ints["shape_const"]))


def _batch_first(dims: list[tuple[int, int]] | None, rank: int) -> bool:
    """`dims` has `rank` dims, only the first of which may depend on the batch."""
    return dims is not None and len(dims) == rank and all(c == 0 and k > 0 for c, k in dims[1:])


class HeadRows(NamedTuple):
    """Where an sdpa operand (B, H, L, E) lies in token rows: `rows` (the tensor viewed) read as (B, L,
    width), head h at columns [column + h·dim, column + (h + 1)·dim)."""
    rows: str
    batch: tuple[int, int]  # B as (coef, const)
    length: int
    heads: int
    dim: int
    width: int
    column: int


def _head_rows(name: str, producer: dict[str, IRNode]) -> HeadRows | None:
    """The token rows an sdpa operand copies, when it is such a copy: a tensor viewed as (B, L, H, E)
    and permuted (Hugging Face's BERT), or viewed as (B, L, G, H, E), permuted to (G, B, H, L, E) and
    sliced at one g (a fused q/k/v product)."""
    n = producer.get(name)
    head_view = _reshape_dims(n)
    if head_view is not None:  # (B, H, L, E) of a slice
        if not _batch_first(head_view, 4):
            return None
        n = producer.get(n.inputs[0])
    if n is not None and n.op == "permute" and n.ints["dims"] == [0, 2, 1, 3]:
        view = producer.get(n.inputs[0])
        dims = _reshape_dims(view)
        if not _batch_first(dims, 4):
            return None
        (_, ln), (_, h), (_, e) = dims[1:]
        if head_view is not None and head_view != [dims[0], (0, h), (0, ln), (0, e)]:
            return None  # a reshape to other heads
        return HeadRows(view.inputs[0], dims[0], ln, h, e, h * e, 0)
    if head_view is None or n is None or n.op != "slice" or n.ints["axis"] != [0] or n.ints["step"] != [1]:
        return None
    g0 = n.ints["start"][0]
    if n.ints["end"] != [g0 + 1]:
        return None
    permute = producer.get(n.inputs[0])
    if permute is None or permute.op != "permute" or permute.ints["dims"] != [2, 0, 3, 1, 4]:
        return None
    view = producer.get(permute.inputs[0])
    dims = _reshape_dims(view)
    if not _batch_first(dims, 5):
        return None
    (_, ln), (_, g), (_, h), (_, e) = dims[1:]
    if not 0 <= g0 < g or head_view != [dims[0], (0, h), (0, ln), (0, e)]:
        return None
    return HeadRows(view.inputs[0], dims[0], ln, h, e, g * h * e, g0 * h * e)


def attention_on_rows(graph: IRGraph) -> IRGraph:
    """An sdpa whose q, k and v are each a copy of heads out of token rows (_head_rows), and whose output
    is only permuted back to (B, L, H, Ev) (through a view of itself or not), becomes sdpa_rows on the
    rows themselves, and the permute a view of its (B, L, H·Ev) output: no copies around attention."""
    producer = {n.output: n for n in graph.nodes}
    users = _consumers(graph)
    added: dict[int, list[IRNode]] = {}
    for n in graph.nodes:
        if n.op != "sdpa" or n.output in graph.outputs:
            continue
        operands = [_head_rows(name, producer) for name in n.inputs[:3]]
        if any(o is None for o in operands):
            continue
        q, k, v = operands
        batch_dim, heads, length = q.batch, q.heads, q.length
        if any(o.batch != batch_dim or o.heads != heads for o in operands) or q.dim != k.dim:
            continue
        reader = users.get(n.output, [])
        itself = [batch_dim, (0, heads), (0, length), (0, v.dim)]
        if len(reader) == 1 and _reshape_dims(reader[0]) == itself and reader[0].output not in graph.outputs:
            reader = users.get(reader[0].output, [])  # a view of the output as itself (Hugging Face)
        if len(reader) != 1 or reader[0].op != "permute" or reader[0].ints["dims"] != [0, 2, 1, 3]:
            continue
        back = reader[0]
        rows = [IRNode("reshape", n.name, [o.rows], f"{n.output}.{role}_rows",
                       ints={"shape_coef": [batch_dim[0], 0, 0], "shape_const": [batch_dim[1], o.length, o.width]})
                for role, o in zip("qkv", operands)]
        attention = IRNode("sdpa_rows", n.name, [r.output for r in rows] + n.inputs[3:], f"{n.output}.rows",
                           ints={**n.ints, "heads": [heads], "head_dims": [q.dim, v.dim],
                                 "columns": [o.column for o in operands]},
                           floats=dict(n.floats))
        added[id(n)] = rows + [attention]
        back.op, back.inputs = "reshape", [attention.output]
        back.ints = {"shape_coef": [batch_dim[0], 0, 0, 0], "shape_const": [batch_dim[1], length, heads, v.dim]}
    graph.nodes = [m for n in graph.nodes for m in added.get(id(n), [n])]
    return graph


def _whole_runs(dead: np.ndarray, size: int) -> np.ndarray:
    """`dead` kept only in aligned runs of `size` dead throughout (a shorter last run included:
    removing the last inputs shifts none)."""
    padded = np.pad(dead, (0, -len(dead) % size), constant_values=True)
    return np.repeat(padded.reshape(-1, size).all(axis=1), size)[:len(dead)]


def prune_dead(graph: IRGraph) -> IRGraph:
    """Drops nodes whose outputs nothing reads, and constants no node reads."""
    live = set(graph.outputs)
    kept = []
    for n in reversed(graph.nodes):
        if n.output in live:
            kept.append(n)
            live.update(n.inputs)
    graph.nodes = kept[::-1]
    graph.constants = {k: v for k, v in graph.constants.items() if k in live}
    return graph
