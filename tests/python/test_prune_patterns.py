"""sparsert.prune.patterns: masks have exactly the structure and count asked for, and apply /
remove leave an ordinary PyTorch model whose masked weights are zero and stay zero."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparsert
import sparsert.prune as prune

# Rows of 64, 128 and 90 (a conv's 10 × 3 × 3): multiples of every group and block, and not.
SHAPES = {"a.weight": (128, 64), "b.weight": (10, 128), "c.weight": (20, 10, 3, 3)}
BLOCKS = [(1, 4), (4, 1), (4, 4), (8, 1), (16, 1), (1, 8)]


@pytest.fixture
def scores():
    g = torch.Generator().manual_seed(0)
    return {key: torch.rand(shape, generator=g) for key, shape in SHAPES.items()}


def layered_model() -> nn.Module:
    model = nn.Module()
    model.a, model.b, model.c = nn.Linear(64, 128), nn.Linear(128, 10), nn.Conv2d(10, 20, 3)
    return model


@pytest.mark.parametrize("density", [0.0, 0.13, 0.5, 1.0])
def test_unstructured_keeps_the_top_scores_of_each_layer(scores, density):
    masks = prune.unstructured(scores, density)
    for key, s in scores.items():
        kept = masks[key]
        assert kept.shape == s.shape and kept.dtype == torch.bool
        assert kept.sum().item() == round(density * s.numel())
        if 0 < kept.sum() < s.numel():
            assert s[kept].min() >= s[~kept].max()


def test_unstructured_row_scope_keeps_the_same_count_in_every_row(scores):
    masks = prune.unstructured(scores, 0.25, scope="row")
    for key, s in scores.items():
        rows = masks[key].reshape(s.shape[0], -1)
        assert (rows.sum(1) == round(0.25 * rows.shape[1])).all(), key


def test_unstructured_global_scope_ranks_all_layers_together(scores):
    scores["b.weight"] = scores["b.weight"] + 1  # one layer outscores all others everywhere
    masks = prune.unstructured(scores, 0.2, scope="global")
    total = sum(s.numel() for s in scores.values())
    assert sum(m.sum().item() for m in masks.values()) == round(0.2 * total)
    assert masks["b.weight"].all()
    threshold = min(s[masks[k]].min() for k, s in scores.items())
    assert all((s[~masks[k]] <= threshold).all() for k, s in scores.items())


@pytest.mark.parametrize("n, m", [(2, 4), (4, 8), (1, 4)])
def test_nm_masks_are_n_of_every_m_consecutive_inputs(scores, n, m):
    masks = prune.nm(scores, n, m)
    for key, s in scores.items():
        rows = masks[key].reshape(s.shape[0], -1)
        width = rows.shape[1]
        full = width - width % m
        groups = rows[:, :full].reshape(rows.shape[0], -1, m)
        assert (groups.sum(2) == n).all(), key
        if width % m:  # a shorter last group keeps at most n
            assert (rows[:, full:].sum(1) == min(n, width % m)).all(), key
        # Within a group, the kept ones are the highest-scoring.
        srows = s.reshape(s.shape[0], -1)[:, :full].reshape(rows.shape[0], -1, m)
        kept_min = torch.where(groups, srows, torch.inf).amin(2)
        dropped_max = torch.where(groups, -torch.inf, srows).amax(2)
        assert (kept_min >= dropped_max).all(), key


@pytest.mark.parametrize("n, m", [(2, 4), (4, 8)])
def test_nm_pruned_layer_is_accepted_by_the_runtime_format(n, m):
    torch.manual_seed(0)
    model = layered_model()
    prune.apply(model, prune.nm(prune.magnitude(model), n, m))
    prune.remove(model)
    for layer in (model.a, model.b):
        packed = sparsert.NM(layer.weight.detach(), n=n, m=m)  # raises if the pattern is broken
        assert packed.density == pytest.approx(n / m)


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_block_masks_consist_of_whole_blocks(scores, block, scope):
    r, c = block
    masks = prune.blocks(scores, 0.3, block, scope)
    kept_blocks = 0
    all_blocks = 0
    for key, s in scores.items():
        rows = masks[key].reshape(s.shape[0], -1)
        padded = F.pad(rows, (0, -rows.shape[1] % c, 0, -rows.shape[0] % r))
        tiles = padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c)
        # Edge tiles hang over the padding: compare only the cells inside the matrix.
        inside = F.pad(torch.ones_like(rows), (0, -rows.shape[1] % c, 0, -rows.shape[0] % r))
        inside = inside.reshape(tiles.shape)
        any_kept = (tiles & inside).any(3).any(1)
        all_kept = (tiles | ~inside).all(3).all(1)
        assert torch.equal(any_kept, all_kept), f"{key}: a {block} block is partly kept"
        kept_blocks += any_kept.sum().item()
        all_blocks += any_kept.numel()
        if scope == "layer":
            assert any_kept.sum().item() == round(0.3 * any_kept.numel()), key
    if scope == "global":
        assert kept_blocks == round(0.3 * all_blocks)


def test_blocks_rank_by_summed_score():
    s = torch.zeros(4, 8)
    s[0, 4:8] = 1.0  # one 1×4 block holds all the score
    s[1, :] = 0.2    # two blocks with 0.8 each
    masks = prune.blocks({"w": s}, 1 / 8, (1, 4))
    expected = torch.zeros(4, 8, dtype=torch.bool)
    expected[0, 4:8] = True
    assert torch.equal(masks["w"], expected)


def test_blocks_rank_a_partial_edge_tile_by_its_mean_score():
    s = torch.ones(6, 4)  # one full 4×4 tile (rows 0-3, sum 16) and a partial one (rows 4-5, sum 12)
    s[4:] = 1.5  # ...whose weights score higher: it is kept, as unstructured pruning would keep them
    masks = prune.blocks({"w": s}, 0.5, (4, 4))
    expected = torch.zeros(6, 4, dtype=torch.bool)
    expected[4:] = True
    assert torch.equal(masks["w"], expected)
    # Scored alike, a 10-row layer's last tile row (rows 8-9) ranks as high as the others.
    ties = prune.blocks({"w": torch.ones(10, 8) + torch.arange(10.0)[:, None] * 1e-3}, 0.5, (4, 4))["w"]
    assert ties[8:].all() and not ties[:4].any()


def test_apply_masks_through_torch_prune_and_remove_bakes_them_in():
    torch.manual_seed(0)
    model = layered_model()
    masks = prune.unstructured(prune.magnitude(model), 0.3)
    prune.apply(model, masks)
    assert hasattr(model.a, "weight_orig") and hasattr(model.a, "weight_mask")
    for key, mask in prune.current_masks(model).items():
        assert torch.equal(mask, masks[key])
    # Training moves only the surviving weights.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(4, 64)
    model.b(model.a(x)).square().sum().backward()
    optimizer.step()
    model.b(model.a(x))
    assert (model.a.weight[~masks["a.weight"]] == 0).all()
    prune.remove(model)
    assert not prune.current_masks(model)
    assert set(model.state_dict()) == set(layered_model().state_dict())
    assert isinstance(model.a.weight, nn.Parameter)
    assert (model.a.weight[~masks["a.weight"]] == 0).all() and (model.a.weight[masks["a.weight"]] != 0).all()


def test_apply_rejects_unknown_names_wrong_shapes_and_other_kinds():
    model = layered_model()
    with pytest.raises(ValueError, match="no module 'nope'"):
        prune.apply(model, {"nope.weight": torch.ones(1)})
    with pytest.raises(ValueError, match=r"mask for 'a.weight' has shape \(64, 128\) \(expected \(128, 64\)"):
        prune.apply(model, {"a.weight": torch.ones(64, 128, dtype=torch.bool)})
    with pytest.raises(TypeError, match="got list .*expected a dict of weight name -> bool mask, or a sparsert.prune.Plan"):
        prune.apply(model, [torch.ones(128, 64, dtype=torch.bool)])


def test_patterns_reject_bad_arguments(scores):
    with pytest.raises(ValueError, match="density 1.5"):
        prune.unstructured(scores, 1.5)
    with pytest.raises(ValueError, match="scope 'model'"):
        prune.unstructured(scores, 0.5, scope="model")
    with pytest.raises(ValueError, match="n=4, m=4"):
        prune.nm(scores, 4, 4)
    with pytest.raises(ValueError, match=r"block is \(0, 4\)"):
        prune.blocks(scores, 0.5, (0, 4))
