"""sparsert.prune.schedules: the cubic schedule's shape, gradual and iterative pruning driven by
the caller's training, and lottery-ticket rewinding to the exact step-k weights."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

import sparsert.prune as prune
from prune_models import accuracy, batches, digits, mlp, sgd_steps, trained_mlp


@pytest.fixture(scope="module")
def data():
    return digits()


def density_of(model: nn.Module) -> dict:
    return {key: mask.float().mean().item() for key, mask in prune.current_masks(model).items()}


def test_cubic_density_endpoints_and_shape():
    schedule = functools.partial(prune.cubic_density, final_density=0.1, initial_density=0.9, start=10,
                                 prunes=8, interval=5)
    values = [schedule(t) for t in range(0, 80)]
    assert values[0] == values[10] == 0.9
    assert values[50] == values[79] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))  # never rises
    steps = [a - b for a, b in zip(values[10:51], values[11:51])]
    assert all(a >= b - 1e-12 for a, b in zip(steps, steps[1:]))  # prunes fast first, slowly at the end
    # Zhu & Gupta's form in sparsity, at a point in between.
    s_t = 0.9 + (0.1 - 0.9) * (1 - (30 - 10) / (8 * 5)) ** 3
    assert 1 - schedule(30) == pytest.approx(s_t)


def test_gradual_follows_the_cubic_schedule_and_recovers(data):
    x, y, x_test, y_test = data
    model = trained_mlp()
    train_step = sgd_steps(model, batches(x, y, 64), lr=0.01)
    seen = []

    def step_and_watch(t: int) -> None:
        seen.append((t, density_of(model).get("0.weight", 1.0)))
        train_step(t)

    masks = prune.gradual(model, step_and_watch, prune.magnitude, 0.1, steps=200, start=10, prunes=8, interval=10)
    assert [t for t, _ in seen] == list(range(200))
    for t, density in seen:  # as pruned just before the latest pruning step up to t
        expected = 1.0 if t < 10 else prune.cubic_density(min(t - (t - 10) % 10, 90), 0.1, 1.0, 10, 8, 10)
        assert density == pytest.approx(expected, abs=1e-3), f"step {t}"
    assert all(mask.float().mean().item() == pytest.approx(0.1, abs=1e-3) for mask in masks.values())
    # Recovering while pruning beats pruning at once to the same density without training.
    at_once = trained_mlp()
    prune.one_shot(at_once, prune.magnitude(at_once), 0.1)
    gradual_acc, at_once_acc = accuracy(model, x_test, y_test), accuracy(at_once, x_test, y_test)
    assert gradual_acc > at_once_acc + 0.2, f"gradual {gradual_acc:.3f}, at once {at_once_acc:.3f}"


def test_gradual_rejects_a_schedule_that_does_not_finish():
    with pytest.raises(ValueError, match="last pruning at step 100 of 100"):
        prune.gradual(mlp(), lambda t: None, prune.magnitude, 0.1, steps=100, start=0, prunes=10, interval=10)


def test_iterative_prunes_a_constant_fraction_per_round_and_nests_masks(data):
    x, y, _, _ = data
    model = trained_mlp()
    train_step = sgd_steps(model, batches(x, y, 64), lr=0.01)
    rounds = []

    def fine_tune(r: int) -> None:
        rounds.append((r, {k: m.clone() for k, m in prune.current_masks(model).items()}))
        for t in range(10):
            train_step(t)

    prune.iterative(model, fine_tune, prune.magnitude, final_density=0.125, rounds=3)
    assert [r for r, _ in rounds] == [0, 1, 2]
    for (r, masks), expected in zip(rounds, (0.5, 0.25, 0.125)):
        for key, mask in masks.items():
            assert mask.float().mean().item() == pytest.approx(expected, abs=1e-3), (r, key)
    for (_, earlier), (_, later) in zip(rounds, rounds[1:]):
        assert all((later[k] <= earlier[k]).all() for k in earlier)  # a pruned weight stays pruned


def test_one_shot_never_revives_masked_weights():
    torch.manual_seed(0)
    model = mlp()
    first = prune.one_shot(model, prune.magnitude(model), 0.5)
    second = prune.one_shot(model, prune.random(model, torch.Generator().manual_seed(1)), 0.3)
    for key in first:
        assert (second[key] <= first[key]).all() and second[key].float().mean().item() == pytest.approx(0.3, abs=1e-3)


def test_lottery_ticket_rewinds_survivors_to_their_step_k_values(data):
    x, y, _, _ = data
    torch.manual_seed(0)
    model = mlp()
    train_step = sgd_steps(model, batches(x, y, 64), lr=0.05)
    recorded, rewound = {}, []
    k = 5

    def step_and_watch(t: int) -> None:
        weights = {key: m.weight.detach().clone() for key, m in (("0.weight", model[0]), ("2.weight", model[2]))}
        if t == k and not recorded:
            recorded.update(weights)
        elif t == k:
            rewound.append((weights, {key: mask.clone() for key, mask in prune.current_masks(model).items()}))
        train_step(t)

    masks = prune.lottery_ticket(model, step_and_watch, steps=30, rewind_step=k, score=prune.magnitude,
                                 density=0.25, rounds=2)
    assert len(rewound) == 2
    for (weights, round_masks), density in zip(rewound, (0.5, 0.25)):
        for key, w in weights.items():
            mask = round_masks[key]
            assert mask.float().mean().item() == pytest.approx(density, abs=1e-3)
            assert torch.equal(w[mask], recorded[key][mask])  # exactly the step-k values
            assert (w[~mask] == 0).all()
    assert all(mask.float().mean().item() == pytest.approx(0.25, abs=1e-3) for mask in masks.values())
    # Training after the rewind moved the survivors again.
    assert not torch.equal(model[0].weight.detach()[masks["0.weight"]], recorded["0.weight"][masks["0.weight"]])


def test_rewind_restores_parameters_and_buffers_through_pruning():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 2))
    rewind = prune.Rewind(model)
    with pytest.raises(RuntimeError, match="nothing recorded"):
        rewind.restore()
    rewind.record()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model(torch.randn(8, 4)).sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    prune.one_shot(model, prune.magnitude(model), 0.5)
    rewind.restore()
    mask = model[0].weight_mask.bool()
    assert torch.equal(model[0].weight[mask], before["0.weight"][mask]) and (model[0].weight[~mask] == 0).all()
    assert torch.equal(model[1].running_mean, before["1.running_mean"])
    assert torch.equal(model[0].bias, before["0.bias"])
