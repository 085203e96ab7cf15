"""sparsert.prune.reconstruction (SparseGPT-style): at the same density, updating the surviving
weights reconstructs a layer's outputs better than magnitude pruning; masks are exact; a
whole model prunes to 50% or 2:4 without retraining."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sparsert.prune as prune
from prune_models import accuracy, digits, trained_mlp


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def hidden_layer(data):
    """The MLP's middle Linear (128 → 64) and the inputs it sees on the training set."""
    x, _, _, _ = data
    model = trained_mlp()
    with torch.no_grad():
        inputs = torch.relu(model[0](x))
    return model[2].weight.detach(), inputs


def output_error(weight, pruned, inputs):
    """‖X Ŵᵀ − X Wᵀ‖ / ‖X Wᵀ‖."""
    reference = inputs @ weight.T
    return ((inputs @ pruned.T - reference).norm() / reference.norm()).item()


@pytest.mark.parametrize("pattern", ["50%", "2:4"])
def test_reconstruction_beats_magnitude_on_layer_output(hidden_layer, pattern):
    weight, inputs = hidden_layer
    nm = (2, 4) if pattern == "2:4" else None
    pruned, keep = prune.sparsegpt_layer(weight, inputs.T @ inputs, 0.5, nm=nm)
    scores = {"w": weight.abs()}
    magnitude_keep = (prune.nm(scores) if nm else prune.unstructured(scores, 0.5))["w"]
    ours, theirs = output_error(weight, pruned, inputs), output_error(weight, weight * magnitude_keep, inputs)
    assert keep.sum() <= magnitude_keep.sum()  # no more weights than magnitude keeps (dead inputs go too)
    assert ours < 0.5 * theirs, f"{pattern}: reconstruction error {ours:.4f}, magnitude {theirs:.4f}"


@pytest.mark.parametrize("block_size", [16, 40, 128])
def test_masks_are_exact_per_block_and_zero_the_weight(block_size):
    # Correlated, rank-deficient inputs (48 directions in 64 features), none always zero.
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(256, 48, generator=g) @ torch.randn(48, 64, generator=g)
    weight = torch.randn(32, 64, generator=g)
    pruned, keep = prune.sparsegpt_layer(weight, inputs.T @ inputs, 0.25, block_size=block_size)
    assert pruned.dtype == weight.dtype and pruned.shape == weight.shape
    assert (pruned[~keep] == 0).all() and (pruned[keep] != 0).all()
    for start in range(0, weight.shape[1], block_size):
        block = keep[:, start:start + block_size]
        assert block.sum().item() == round(0.25 * block.numel())
    pruned, keep = prune.sparsegpt_layer(weight, inputs.T @ inputs, nm=(2, 4), block_size=10)  # rounded up to 12
    assert (keep.reshape(32, -1, 4).sum(2) == 2).all() and (pruned[~keep] == 0).all()


def test_uncorrelated_inputs_reduce_to_magnitude_pruning():
    """With H ∝ I no weight can compensate for another: the mask is magnitude's, nothing moves."""
    torch.manual_seed(0)
    weight = torch.randn(12, 32)
    pruned, keep = prune.sparsegpt_layer(weight, 3.0 * torch.eye(32), 0.5)
    assert torch.equal(keep, prune.unstructured({"w": weight.abs()}, 0.5)["w"])
    torch.testing.assert_close(pruned, weight * keep)


def test_inputs_that_are_always_zero_are_pruned_first(data):
    x, _, _, _ = data
    model = trained_mlp()
    _, keep = prune.sparsegpt_layer(model[0].weight, x.T @ x, 0.5)
    dead = (x == 0).all(0)
    assert dead.any() and not keep[:, dead].any()


@pytest.mark.parametrize("nm", [None, (2, 4)])
def test_whole_model_prunes_without_retraining(data, nm):
    x, _, x_test, y_test = data
    model = trained_mlp()
    dense = accuracy(model, x_test, y_test)
    masks = prune.sparsegpt(model, x[:512].split(128), density=0.5, nm=nm)
    assert list(masks) == ["0.weight", "2.weight", "4.weight"]
    assert prune.current_masks(model).keys() == masks.keys()
    for key, keep in masks.items():
        # Weights of inputs that are always zero (dead pixels and ReLUs) go beyond the target.
        assert 0.45 <= keep.float().mean().item() <= 0.5, key
        if nm:
            assert (keep.reshape(keep.shape[0], -1, 4).sum(2) <= 2).all(), key
    acc = accuracy(model, x_test, y_test)
    assert acc >= dense - 0.02, f"{nm or '50%'}: accuracy {acc:.3f}, dense {dense:.3f}"


def test_whole_model_pruning_checks_its_layers(data):
    x, _, _, _ = data
    model = trained_mlp()
    masks = prune.sparsegpt(model, [x[:128]], layers_to_prune=["2.weight"])
    assert list(masks) == ["2.weight"] and not hasattr(model[0], "weight_mask")
    with pytest.raises(ValueError, match="'2.weight' already carries a mask"):
        prune.sparsegpt(model, [x[:128]], layers_to_prune=["2.weight"])
    with pytest.raises(ValueError, match=r"\['1.weight'\] are not Linear weights"):
        prune.sparsegpt(nn.Sequential(nn.Linear(64, 8), nn.ReLU()), [x[:128]], layers_to_prune=["1.weight"])
