"""PyTorch model → sparsert model, one pipeline (`compile`), each step in its own module:

1. `capture` — `torch.export` with the batch free, the program put in functional form
   (`capture.canonical`), and the zeros in each linear layer's input measured on the example;
2. `aten` — the exported program's Core ATen operators translated into the IR (`ir`): the handler
   table `aten._HANDLERS` is where an operator is added;
3. `passes` — batch norm folded, residual adds and activations fused, dead rows removed;
4. `select.choose_formats` — a format per weight from the cost model measured on this machine;
5. `build` — the C++ model.

torch is imported inside functions: a compiled `.sprt` model runs without it.
"""

from __future__ import annotations

from typing import Any

from .. import select
from .aten import translate_program
from .build import build
from .capture import canonical, capture, input_zero_fractions
from .ir import IRGraph, IRNode, UnsupportedModelError, affine
from .passes import optimise


def translate(program: Any, example_batch: int = 1) -> IRGraph:
    """The optimised IR of an exported program in functional form; raises UnsupportedModelError
    listing every operator it cannot translate."""
    return optimise(translate_program(program, example_batch))


def compile(program: Any, example_inputs: tuple | None, example_batch: int, formats: select.FormatsArg,
            num_threads: int | None, micro_batch: int) -> tuple[Any, list[select.Choice]]:
    """The C++ model of an exported program and the format choice behind it. `example_inputs` (when
    known) measure activation sparsity; `example_batch` is the batch the formats are chosen for."""
    from .. import _core

    program = canonical(program)
    graph = translate(program, example_batch)
    zeros = input_zero_fractions(program, example_inputs, graph) if example_inputs else {}
    weights, plan = select.choose_formats(graph, formats, num_threads or _core.get_num_threads(), zeros)
    return build(graph, weights, num_threads or 0, micro_batch=micro_batch), plan


__all__ = ["IRGraph", "IRNode", "UnsupportedModelError", "affine", "build", "canonical", "capture", "compile",
           "input_zero_fractions", "translate"]
