"""sparsert.prune.structured: removing neurons, channels and heads really shrinks the layers,
and when only dead or zeroed units go, the smaller model computes what the original did."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import sparsert.prune as prune
from prune_models import accuracy, digits, trained_cnn, trained_mlp


@pytest.fixture(scope="module")
def data():
    return digits()


def test_removing_dead_relu_neurons_keeps_outputs(data):
    x, _, x_test, _ = data
    inputs = torch.cat([x, x_test])
    model = trained_mlp()
    before = model(inputs)
    apoz = prune.apoz(model, [inputs])
    alive1, alive2 = (apoz["1"] < 1).nonzero().flatten(), (apoz["3"] < 1).nonzero().flatten()
    assert 0 < len(alive1) < 128 and 0 < len(alive2) < 64  # the trained MLP has dead neurons to remove
    prune.prune_units(model[0:3], alive1)
    prune.prune_units(model[2:5], alive2)
    assert model[0].weight.shape == (len(alive1), 64) and model[0].bias.shape == (len(alive1),)
    assert model[2].weight.shape == (len(alive2), len(alive1)) and model[2].out_features == len(alive2)
    assert model[4].weight.shape == (10, len(alive2)) and model[4].in_features == len(alive2)
    torch.testing.assert_close(model(inputs), before)


def test_removing_zeroed_channels_through_batchnorm_and_flatten_keeps_outputs(data):
    x, _, _, _ = data
    model = trained_cnn()
    conv1, bn1, conv2, bn2, linear = model[1], model[2], model[4], model[5], model[8]
    dead1, dead2 = [1, 4, 6], [0, 3, 7, 8, 15]
    with torch.no_grad():  # BatchNorm scale and shift zero: these channels output relu(0) = 0
        for bn, dead in ((bn1, dead1), (bn2, dead2)):
            bn.weight[dead] = 0.0
            bn.bias[dead] = 0.0
    before = model(x)
    keep1 = [c for c in range(8) if c not in dead1]
    keep2 = [c for c in range(16) if c not in dead2]
    prune.prune_units(model[1:5], keep1)   # conv → bn → relu → conv
    prune.prune_units(model[4:9], keep2)   # conv → bn → relu → flatten → linear
    assert conv1.weight.shape == (5, 1, 3, 3) and conv1.out_channels == 5
    assert bn1.running_mean.shape == (5,) and bn1.weight.shape == (5,) and bn1.num_features == 5
    assert conv2.weight.shape == (11, 5, 3, 3) and conv2.in_channels == 5 and conv2.out_channels == 11
    assert bn2.running_var.shape == (11,)
    assert linear.weight.shape == (10, 11 * 64)
    torch.testing.assert_close(model(x), before)


def test_structured_pruning_by_apoz_beats_random(data):
    x, _, x_test, y_test = data

    def pruned(score1, score2):
        model = trained_mlp()
        prune.prune_units(model[0:3], prune.keep_top(score1, 0.5))
        prune.prune_units(model[2:5], prune.keep_top(score2, 0.5))
        return accuracy(model, x_test, y_test)

    apoz = prune.apoz(trained_mlp(), [x])
    by_apoz = pruned(1 - apoz["1"], 1 - apoz["3"])
    g = torch.Generator().manual_seed(0)
    by_random = max(pruned(torch.rand(128, generator=g), torch.rand(64, generator=g)) for _ in range(3))
    assert by_apoz > by_random, f"apoz {by_apoz:.3f}, best random {by_random:.3f}"


def test_group_scores_and_keep_top():
    scores = torch.arange(24.0).reshape(6, 4)
    torch.testing.assert_close(prune.group_scores(scores), scores.sum(1))
    torch.testing.assert_close(prune.group_scores(scores, group_size=2), scores.reshape(3, 8).sum(1))
    torch.testing.assert_close(prune.group_scores(scores, dim=1), scores.sum(0))
    assert prune.keep_top(torch.tensor([0.3, 0.9, 0.1, 0.5]), 0.5).tolist() == [1, 3]
    assert prune.keep_top(torch.tensor([0.3, 0.9]), 0.0).tolist() == [1]
    with pytest.raises(ValueError, match="group_size 4 does not divide dim 0 of size 6"):
        prune.group_scores(scores, group_size=4)


def test_prune_units_rejects_what_it_cannot_follow_and_changes_nothing():
    model = nn.Sequential(nn.Linear(4, 6), nn.LayerNorm(6), nn.Linear(6, 3))
    state = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="LayerNorm between producer and consumer"):
        prune.prune_units(model, [0, 1])
    with pytest.raises(ValueError, match=r"keep \[0, 6\]"):
        prune.prune_units(model[::2], [0, 6])
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    prune.apply(model, {"0.weight": torch.ones(6, 4, dtype=torch.bool)})
    with pytest.raises(ValueError, match="carries a pruning mask"):
        prune.prune_units(model[::2], [0, 1])


def attention_with_dead_heads(mha: nn.MultiheadAttention, dead):
    """Zeroes the output projection's columns of heads ``dead``: they contribute nothing."""
    head_dim = mha.embed_dim // mha.num_heads
    with torch.no_grad():
        for h in dead:
            mha.out_proj.weight[:, h * head_dim:(h + 1) * head_dim] = 0.0
    return mha


def test_prune_heads_narrows_the_projections():
    torch.manual_seed(0)
    q, k, v, o = (nn.Linear(16, 16) for _ in range(4))
    rows = torch.cat([torch.arange(0, 4), torch.arange(8, 12)])
    expected = (q.weight[rows].clone(), v.bias[rows].clone(), o.weight[:, rows].clone())
    prune.prune_heads(q, k, v, o, num_heads=4, keep=[0, 2])
    assert q.weight.shape == k.weight.shape == v.weight.shape == (8, 16) and o.weight.shape == (16, 8)
    assert torch.equal(q.weight, expected[0]) and torch.equal(v.bias, expected[1])
    assert torch.equal(o.weight, expected[2]) and o.bias.shape == (16,)
    with pytest.raises(ValueError, match="num_heads=3"):
        prune.prune_heads(q, k, v, o, num_heads=3, keep=[0])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kdim", [None, 12])
def test_pruned_multihead_attention_matches_on_the_kept_heads(batch_first, kdim):
    torch.manual_seed(0)
    mha = attention_with_dead_heads(nn.MultiheadAttention(16, 4, batch_first=batch_first, kdim=kdim, vdim=kdim),
                                    dead=[1, 3]).eval()
    pruned = prune.prune_mha(mha, keep=[0, 2]).eval()
    assert pruned.q_proj.weight.shape == (8, 16) and pruned.out_proj.weight.shape == (16, 8)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in mha.parameters())
    shape = (2, 5) if batch_first else (5, 2)
    query = torch.randn(*shape, 16)
    key = torch.randn(*shape, kdim or 16)
    attn_mask = torch.rand(5, 5) < 0.2
    attn_mask.fill_diagonal_(False)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[1, 4] = True
    expected, expected_weights = mha(query, key, key, key_padding_mask=padding, attn_mask=attn_mask,
                                     average_attn_weights=False)
    out, weights = pruned(query, key, key, key_padding_mask=padding, attn_mask=attn_mask, average_attn_weights=False)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights[:, [0, 2]])
    # One unbatched sequence, causal.
    one_query, one_key = (query[0], key[0]) if batch_first else (query[:, 0], key[:, 0])
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    expected, _ = mha(one_query, one_key, one_key, attn_mask=causal, is_causal=True, need_weights=False)
    out, weights = pruned(one_query, one_key, one_key, need_weights=False, is_causal=True)
    assert weights is None
    torch.testing.assert_close(out, expected)


def test_pruned_attention_drops_into_a_transformer_layer(data):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    attention_with_dead_heads(layer.self_attn, dead=[2])
    src = torch.randn(3, 6, 16)
    causal = nn.Transformer.generate_square_subsequent_mask(6)
    expected = (layer(src), layer(src, src_mask=causal, is_causal=True))
    layer.self_attn = prune.prune_mha(layer.self_attn, keep=[0, 1, 3])
    torch.testing.assert_close(layer(src), expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(src, src_mask=causal, is_causal=True), expected[1], atol=1e-5, rtol=1e-5)
