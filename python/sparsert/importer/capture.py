"""The steps that run torch: export a module with its batch free, put the program in functional form,
and measure the zeros in each linear layer's input on the example."""

from __future__ import annotations

from typing import Any

from .ir import IRGraph


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
        return torch.export.export(module, example_inputs)
    # torch.export specialises a size of 1, so trace a batch of 2 built from the example.
    widened = tuple(
        a.expand(2, *a.shape[1:]).contiguous() if isinstance(a, torch.Tensor) and a.shape[0] == 1 else a
        for a in example_inputs
    )
    batch = torch.export.Dim("batch")
    dynamic = tuple({0: batch} if isinstance(a, torch.Tensor) else None for a in widened)
    try:
        return torch.export.export(module, widened, dynamic_shapes=dynamic)
    except Exception:  # the model fixes its batch (e.g. a hard-coded view): keep the example's shapes
        return torch.export.export(module, example_inputs)


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
