"""The model coverage contract on real architectures (tests/python/coverage_zoo.py: torchvision, timm,
torch.nn and Hugging Face transformers models, random weights, 90% pruned): `sparsert.load` either
compiles a model that matches eager PyTorch at batch 1 and 3 (‖y − ref‖/‖ref‖ < 1e-4 on every
output), or refuses it with a ValueError (sparsert.UnsupportedModelError) that says what it cannot run.
Never a wrong result, never another exception. Refusals are reported as xfail with the operators named.
The models of MUST_LOAD load today and must keep loading. bench/coverage.py prints the same as a table.
"""

from __future__ import annotations

import re

import pytest
import torch

import coverage_zoo as zoo  # before torchvision, timm and transformers: it lets torchvision import here

pytest.importorskip("torchvision")
pytest.importorskip("timm")
pytest.importorskip("transformers")

import sparsert

BATCHES = (1, 3)

# The models sparsert.load refuses today, each with the operators it names (bench/coverage.py prints
# the same table); every other model must load and match. A model leaves MUST_LOAD only with a reason.
REFUSED = {
    "transformers:wav2vec2-mask": "div.Tensor_mode, index_put, flip, repeat (its feature-mask computation)",
}
MUST_LOAD = {zoo.entry_id(e) for e in zoo.ZOO} - set(REFUSED)


def test_refused_names_zoo_entries():
    assert set(REFUSED) <= {zoo.entry_id(e) for e in zoo.ZOO}, set(REFUSED) - {zoo.entry_id(e) for e in zoo.ZOO}


@pytest.mark.parametrize("entry", zoo.ZOO, ids=zoo.entry_id)
def test_loads_and_matches_eager_or_refuses(entry):
    name = zoo.entry_id(entry)
    model, make_inputs = zoo.build(entry)
    torch.manual_seed(1)
    cases = [make_inputs(batch) for batch in BATCHES]
    with torch.no_grad():
        expected = [model(*inputs) for inputs in cases]
    try:
        compiled = sparsert.load(model, example_inputs=make_inputs(1))
    except ValueError as exc:  # sparsert.UnsupportedModelError is one
        message = str(exc)
        assert name not in MUST_LOAD, f"{name} is in MUST_LOAD but sparsert.load refused it: {message}"
        operators = zoo.missing_operators(message)
        # A refusal says what to change: the operators, or the input whose dtype or shape it cannot take.
        inputs = re.findall(r"input '[^']+'", message)
        assert operators or inputs, f"{name}: the refusal names no operator and no input: {message}"
        pytest.xfail(f"refused: {', '.join(operators or inputs)}")
    for batch, inputs, ref in zip(BATCHES, cases, expected):
        problem = zoo.mismatch(compiled(*inputs), ref)
        assert problem is None, f"{name} at batch {batch}: {problem}"


@pytest.mark.parametrize("entry", zoo.ZOO, ids=zoo.entry_id)
def test_sparsify_matches_eager(entry):
    """The torch-native path takes every model torch runs. CSR is forced, so that the layers sparsify
    takes run through sparsert whatever this host's cost model would pick."""
    model, make_inputs = zoo.build(entry)
    torch.manual_seed(2)
    cases = [make_inputs(batch) for batch in BATCHES]
    with torch.no_grad():
        expected = [model(*inputs) for inputs in cases]
    inside_attention = {id(m) for a in model.modules() if isinstance(a, torch.nn.MultiheadAttention) for m in a.modules()}
    replaceable = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
                   and id(m) not in inside_attention and getattr(m, "groups", 1) == 1]  # MHA and depthwise stay torch
    sparsert.sparsify(model, example_inputs=make_inputs(1), formats="csr")
    replaced = [m for m in model.modules() if isinstance(m, (sparsert.eager.SparseLinear, sparsert.eager.SparseConv2d))]
    assert replaced or not replaceable, f"{zoo.entry_id(entry)}: no layer went to sparsert"
    with torch.no_grad():
        for batch, inputs, ref in zip(BATCHES, cases, expected):
            problem = zoo.mismatch(model(*inputs), ref)
            assert problem is None, f"{zoo.entry_id(entry)} at batch {batch}: {problem}"


@pytest.mark.parametrize("name", ["transformers:bert-mask", "torchvision:resnet50"])
def test_every_source_kind_and_sprt_round_trip(name, tmp_path):
    """A state dict with torch.nn.utils.prune masks loaded into `model=`, a .pt2, and the .sprt of each."""
    entry = next(e for e in zoo.ZOO if zoo.entry_id(e) == name)
    model, make_inputs = zoo.build(entry)
    for m in model.modules():  # the masks as torch.nn.utils.prune leaves them: weight_orig and weight_mask
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.utils.prune.custom_from_mask(m, "weight", m.weight.detach() != 0)
    torch.save(model.state_dict(), tmp_path / "pruned.pt")
    example = make_inputs(2)
    batch = torch.export.Dim("batch")
    program = torch.export.export(model, example, dynamic_shapes=tuple({0: batch} for _ in example))
    torch.export.save(program, tmp_path / "pruned.pt2")
    fresh, _ = zoo.build(entry, seed=1)  # other weights: the state dict's must replace them
    torch.manual_seed(3)
    cases = [make_inputs(b) for b in BATCHES]
    with torch.no_grad():
        expected = [model(*inputs) for inputs in cases]
    for source, compiled in (("state dict", sparsert.load(tmp_path / "pruned.pt", model=fresh, example_inputs=example)),
                             (".pt2", sparsert.load(tmp_path / "pruned.pt2"))):
        compiled.save(tmp_path / "model.sprt")
        for kind, loaded in ((source, compiled), (f"{source} → .sprt", sparsert.load(tmp_path / "model.sprt"))):
            for b, inputs, ref in zip(BATCHES, cases, expected):
                problem = zoo.mismatch(loaded(*inputs), ref)
                assert problem is None, f"{name} from {kind} at batch {b}: {problem}"
