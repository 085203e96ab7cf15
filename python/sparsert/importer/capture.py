"""The steps that run torch: export a module with its batch free, put the program in functional form,
and measure the zeros in each linear layer's input on the example."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from .ir import IRGraph, UnsupportedModelError

_log = logging.getLogger(__name__)


def capture(module: Any, example_inputs: tuple) -> Any:
    """Exports `module` with the batch (dim 0 of every tensor input) free; falls back to the
    example's fixed shapes when the model pins its batch (the model then runs at that batch only)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # torch.nn.utils.prune's hooks assign `weight` during forward, which export reports; the
        # assigned value (weight_orig · weight_mask) is exactly what the translation folds.
        warnings.filterwarnings("ignore", message=r".*were assigned during export.*")
        return _export(torch, module.eval(), example_inputs)


def _export(torch: Any, module: Any, example_inputs: tuple) -> Any:
    tensors = [a for a in example_inputs if isinstance(a, torch.Tensor)]
    if not tensors or any(t.dim() == 0 for t in tensors):
        return _export_or_explain(torch, module, example_inputs, None)
    # torch.export specialises a size of 1, so trace a batch of 2 built from the example.
    widened = tuple(
        a.expand(2, *a.shape[1:]).contiguous() if isinstance(a, torch.Tensor) and a.shape[0] == 1 else a
        for a in example_inputs
    )
    batch = torch.export.Dim("batch")
    dynamic = _per_parameter(module, tuple({0: batch} if isinstance(a, torch.Tensor) else None for a in widened))
    try:
        return torch.export.export(module, widened, dynamic_shapes=dynamic)
    except Exception as free_batch_error:
        # The model fixes its batch (e.g. a hard-coded view): keep the example's shapes; the model then
        # runs at that batch only, and says so when given another.
        first_line = str(free_batch_error).strip().splitlines()[0] if str(free_batch_error).strip() else ""
        _log.info("exporting with a free batch failed (%s: %s); exporting at the example's shapes",
                  type(free_batch_error).__name__, first_line)
        return _export_or_explain(torch, module, example_inputs, None)


def _per_parameter(module: Any, specs: tuple) -> tuple:
    """Dynamic-shape specs grouped as forward's parameters take them: the inputs a `*args` parameter
    collects are one tuple of specs (torch.export reads them one level down)."""
    params = list(inspect.signature(module.forward).parameters.values())
    named = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
    if not any(p.kind == p.VAR_POSITIONAL for p in params) or len(specs) <= named and named:
        return specs
    return specs[:named] + (specs[named:],)


def _export_or_explain(torch: Any, module: Any, example_inputs: tuple, dynamic: Any) -> Any:
    try:
        return torch.export.export(module, example_inputs, dynamic_shapes=dynamic)
    except Exception as e:
        kind = type(e).__name__
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = ("its control flow or output shapes depend on the input values, which a compiled graph cannot "
                  "express" if "DataDependent" in kind or "data-dependent" in text else "torch.export failed")
        raise UnsupportedModelError(
            f"capturing the model: {reason} ({kind}: {text}); to run it anyway, use sparsert.sparsify(model): "
            f"PyTorch runs the model, sparsert its pruned Linear/Conv layers") from e


def canonical(program: Any) -> Any:
    """The exported program in functional form: in-place ops (`out += identity`, `relu_`,
    `hardswish_`) become out-of-place, dropout goes in eval mode, `chunk` becomes `split`. The
    empty decomposition table keeps the composite ops sparsert runs as one kernel (linear, conv2d,
    layer norm, SDPA, GELU)."""
    return program.run_decompositions({})


def input_zero_fractions(program: Any, example_inputs: tuple, graph: IRGraph) -> dict[str, float]:
    """Fraction of zeros in the input of every linear node when `program` runs on `example_inputs`
    (activation sparsity, which the CSC format turns into skipped work)."""
    import torch
    import torch.fx

    wanted = {n.inputs[0] for n in graph.nodes if n.op == "linear"}
    state = {**program.state_dict, **getattr(program, "constants", {})}
    user = iter(example_inputs)
    args = [next(user) if spec.kind.name == "USER_INPUT" else state[spec.target]
            for spec in program.graph_signature.input_specs]
    found: dict[str, float] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            if node.name in wanted and isinstance(out, torch.Tensor) and out.numel():
                found[node.name] = float((out == 0).float().mean())
            return out

    with torch.no_grad():
        Recorder(program.graph_module).run(*args)
    return found
