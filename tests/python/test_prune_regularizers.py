"""sparsert.prune.regularizers: each penalty's gradient pushes weights, groups or gates toward
zero, and L0 unit gates trained with the task loss yield units that structured pruning removes
without changing the outputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import sparsert.prune as prune
from prune_models import accuracy, batches, digits, mlp, trained_mlp


@pytest.fixture(scope="module")
def data():
    return digits()


def test_l1_gradient_shrinks_every_weight_and_spares_biases():
    torch.manual_seed(0)
    model = mlp()
    penalty = prune.l1_penalty(model)
    assert penalty.item() == pytest.approx(sum(model[i].weight.abs().sum().item() for i in (0, 2, 4)), rel=1e-6)
    penalty.backward()
    for i in (0, 2, 4):
        assert torch.equal(model[i].weight.grad, model[i].weight.sign())
        assert model[i].bias.grad is None
    before = [model[i].weight.detach().abs().clone() for i in (0, 2, 4)]
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-4 * p.grad
    for i, old in zip((0, 2, 4), before):
        moved = old > 1e-4
        assert (model[i].weight.abs()[moved] < old[moved]).all()


@pytest.mark.parametrize("dim, group_size", [(0, 1), (0, 4), (1, 2)])
def test_group_lasso_shrinks_each_group_along_itself(dim, group_size):
    """Rows (dim 0, size 1), heads of a q/k/v projection (size head_dim), inputs (dim 1)."""
    torch.manual_seed(0)
    weight = torch.randn(16, 8, requires_grad=True)
    groups = lambda w: w.movedim(dim, 0).reshape(w.shape[dim] // group_size, -1)  # noqa: E731
    before = groups(weight.detach()).clone()
    penalty = prune.group_lasso_penalty(weight, dim, group_size)
    assert penalty.item() == pytest.approx(math.sqrt(before.shape[1]) * before.norm(dim=1).sum().item(), rel=1e-6)
    penalty.backward()
    lr = 0.01
    after = groups((weight - lr * weight.grad).detach())
    # Each group's norm drops by lr·√|g| and its direction is kept: the whole group heads to zero together.
    torch.testing.assert_close(after.norm(dim=1), before.norm(dim=1) - lr * math.sqrt(before.shape[1]))
    torch.testing.assert_close(F.cosine_similarity(after, before, dim=1), torch.ones(len(before)))


def test_group_lasso_checks_the_group_size():
    with pytest.raises(ValueError, match="group_size 3 does not divide dim 0 of size 16"):
        prune.group_lasso_penalty(torch.zeros(16, 8), 0, 3)


def test_l0_penalty_alone_closes_every_gate():
    torch.manual_seed(0)
    model = mlp()
    gates = prune.add_l0_gates(model)  # one gate per weight
    assert all(g.log_alpha.shape == model[int(k[0])].weight.shape for k, g in gates.items())
    optimizer = torch.optim.Adam([g.log_alpha for g in gates.values()], lr=0.1)
    expected = []
    for _ in range(80):
        optimizer.zero_grad()
        penalty = prune.l0_penalty(model)
        expected.append(penalty.item())
        penalty.backward()
        optimizer.step()
    assert expected[0] == pytest.approx(sum(m.weight.numel() for m in (model[0], model[2], model[4])), rel=0.1)
    assert all(b < a for a, b in zip(expected, expected[1:]))
    model.eval()
    assert all((g.gate() == 0).all() for g in gates.values())
    prune.remove(model)
    assert all((model[i].weight == 0).all() for i in (0, 2, 4))


def test_l0_gate_samples_in_training_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    gate = prune.HardConcreteGate((1000,), initial_keep=0.5)
    samples = gate.gate()
    assert ((samples == 0) | (samples == 1)).any() and ((samples > 0) & (samples < 1)).any()
    assert not torch.equal(samples, gate.gate())
    gate.eval()
    torch.testing.assert_close(gate.gate(), torch.full((1000,), 0.5))  # sigmoid(0)·1.2 − 0.1


def test_l0_unit_gates_trained_with_the_task_remove_whole_units(data):
    x, y, x_test, y_test = data
    torch.manual_seed(0)
    model = trained_mlp()
    gates = prune.add_l0_gates(model, "unit", layers_to_gate=["0.weight", "2.weight"])
    log_alphas = [g.log_alpha for g in gates.values()]
    others = [p for p in model.parameters() if all(p is not a for a in log_alphas)]
    # Gates learn faster than weights: they have far to go from initial_keep = 0.9.
    optimizer = torch.optim.Adam([{"params": others, "lr": 0.003}, {"params": log_alphas, "lr": 0.1}])
    for _ in range(3):
        for xb, yb in batches(x, y, 64):
            model.train()
            optimizer.zero_grad()
            (F.cross_entropy(model(xb), yb) + 0.01 * prune.l0_penalty(model)).backward()
            optimizer.step()
    model.eval()
    gated = model(x_test)
    prune.remove(model)
    torch.testing.assert_close(model(x_test), gated)
    alive1 = (model[0].weight.abs().sum(1) + model[0].bias.abs() > 0).nonzero().flatten()
    alive2 = (model[2].weight.abs().sum(1) + model[2].bias.abs() > 0).nonzero().flatten()
    assert len(alive1) < 100 and len(alive2) < 56, f"closed only {128 - len(alive1)} and {64 - len(alive2)} units"
    prune.prune_units(model[0:3], alive1)
    prune.prune_units(model[2:5], alive2)
    assert model[2].weight.shape == (len(alive2), len(alive1))
    torch.testing.assert_close(model(x_test), gated)
    assert accuracy(model, x_test, y_test) >= 0.95
