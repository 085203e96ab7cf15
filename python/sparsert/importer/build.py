"""The C++ model from an IR graph and each weighted node's packed weights."""

from __future__ import annotations

from typing import Any

from .. import _core
from .ir import IRGraph


def build(graph: IRGraph, weights: dict[str, list[Any]], num_threads: int = 0,
          reference_kernels: bool = False, micro_batch: int = 0) -> Any:
    """The C++ model for `graph`, with each weighted node's packed weights from `weights[node.output]`."""
    g = _core.Graph()
    index: dict[str, int] = {}
    for name, dtype, shape in graph.inputs:
        index[name] = g.add_input(name, dtype, shape)
    needed = {i for n in graph.nodes for i in n.inputs} | set(graph.outputs)
    for name, array in graph.constants.items():
        if name in needed:
            index[name] = g.add_constant(name, array)
    for n in graph.nodes:
        missing = [i for i in n.inputs if i not in index]
        if missing:
            raise ValueError(f"building the model: node '{n.name}' ({n.op}) reads unknown values {missing}")
        index[n.output] = g.add_node(n.op, n.name, [index[i] for i in n.inputs], n.output, n.ints, n.floats,
                                     weights.get(n.output, []))
    missing = [o for o in graph.outputs if o not in index]
    if missing:
        raise ValueError(f"building the model: outputs {missing} are computed by no node")
    g.set_outputs([index[o] for o in graph.outputs])
    return _core.Model(g, num_threads, reference_kernels, micro_batch)
