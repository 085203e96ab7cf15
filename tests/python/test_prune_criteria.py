"""sparsert.prune.criteria on a trained digits MLP: every criterion, one-shot at 80% sparsity
with no fine-tuning, must beat random masks; the scores follow their definitions; calibration
leaves the model as it found it."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F

import sparsert.prune as prune
from prune_models import accuracy, batches, digits, mlp, trained_mlp

DENSITY = 0.2  # 80% of the weights pruned
MARGIN = 0.1   # accuracy points above the best of the random masks


@pytest.fixture(scope="module")
def data():
    return digits()


@pytest.fixture(scope="module")
def calibration(data):
    x, y, _, _ = data
    return batches(x[:512], y[:512], 128)


def best_random(model_factory, x_test, y_test, density=DENSITY):
    """The best accuracy of three random masks at ``density``: the bar to clear."""
    best = 0.0
    for seed in range(3):
        model = model_factory()
        prune.one_shot(model, prune.random(model, torch.Generator().manual_seed(seed)), density)
        best = max(best, accuracy(model, x_test, y_test))
    return best


@pytest.fixture(scope="module")
def random_bar(data):
    _, _, x_test, y_test = data
    return best_random(trained_mlp, x_test, y_test)


PRUNE_WITH = {
    "magnitude/layer": lambda m, cal: prune.one_shot(m, prune.magnitude(m), DENSITY),
    "magnitude/global": lambda m, cal: prune.one_shot(
        m, prune.magnitude(m), DENSITY, functools.partial(prune.unstructured, scope="global")),
    "taylor": lambda m, cal: prune.one_shot(m, prune.taylor(m, cal, F.cross_entropy), DENSITY),
    "fisher": lambda m, cal: prune.one_shot(m, prune.fisher(m, cal, F.cross_entropy), DENSITY),
    "wanda": lambda m, cal: prune.one_shot(m, prune.wanda(m, [x for x, _ in cal]), DENSITY),
    "sparsegpt": lambda m, cal: prune.sparsegpt(m, [x for x, _ in cal], DENSITY),
}


@pytest.mark.parametrize("criterion", list(PRUNE_WITH))
def test_criterion_beats_random_at_80_percent(criterion, data, calibration, random_bar):
    _, _, x_test, y_test = data
    model = trained_mlp()
    PRUNE_WITH[criterion](model, calibration)
    masks = prune.current_masks(model).values()
    kept = sum(m.sum().item() for m in masks) / sum(m.numel() for m in masks)
    assert kept == pytest.approx(DENSITY, abs=0.005)
    acc = accuracy(model, x_test, y_test)
    assert acc > random_bar + MARGIN, f"{criterion}: accuracy {acc:.3f} at density {DENSITY}, random {random_bar:.3f}"


def test_movement_learned_in_training_beats_random(data):
    """Movement needs weights that move: scores accumulated over training from scratch."""
    x, y, x_test, y_test = data
    torch.manual_seed(1)
    model = mlp()
    movement = prune.Movement(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        for xb, yb in batches(x, y, 64):
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            movement.update()
            optimizer.step()
    trained = model.state_dict()

    def copy_of_trained():
        fresh = mlp()
        fresh.load_state_dict(trained)
        return fresh

    pruned = copy_of_trained()
    prune.one_shot(pruned, movement.scores(), DENSITY)
    acc = accuracy(pruned, x_test, y_test)
    bar = best_random(copy_of_trained, x_test, y_test)
    assert acc > bar + MARGIN, f"movement: accuracy {acc:.3f} at density {DENSITY}, random {bar:.3f}"


def test_movement_update_needs_gradients():
    with pytest.raises(RuntimeError, match="no gradient"):
        prune.Movement(mlp()).update()


def test_taylor_and_fisher_follow_their_definitions(calibration):
    model = trained_mlp()
    x, y = calibration[0]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), [model[0].weight])[0]
    w = model[0].weight.detach()
    taylor = prune.taylor(model, calibration[:1], F.cross_entropy)["0.weight"]
    fisher = prune.fisher(model, calibration[:1], F.cross_entropy)["0.weight"]
    torch.testing.assert_close(taylor, (w * grads).abs())
    torch.testing.assert_close(fisher, 0.5 * w.square() * grads.square())


def test_wanda_scales_magnitude_by_input_norms(data):
    x, _, _, _ = data
    model = trained_mlp()
    scores = prune.wanda(model, [x[:300], x[300:600]])
    norms = x[:600].norm(dim=0)
    torch.testing.assert_close(scores["0.weight"], model[0].weight.detach().abs() * norms)
    hidden = torch.relu(model[0](x[:600])).detach()
    torch.testing.assert_close(scores["2.weight"], model[2].weight.detach().abs() * hidden.norm(dim=0))
    # Pixels that are zero in every image carry no signal: their weights score zero.
    assert (scores["0.weight"][:, norms == 0] == 0).all() and (norms == 0).any()


def test_apoz_counts_zero_outputs_per_unit(data):
    x, _, _, _ = data
    model = trained_mlp()
    scores = prune.apoz(model, x.split(500))
    assert set(scores) == {"1", "3"}
    hidden = torch.relu(model[0](x)).detach()
    torch.testing.assert_close(scores["1"], (hidden == 0).float().mean(0))
    assert scores["3"].shape == (64,)


def test_criteria_leave_the_model_as_they_found_it(calibration):
    model = trained_mlp()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune.taylor(model, calibration, F.cross_entropy)
    prune.fisher(model, calibration, F.cross_entropy)
    prune.wanda(model, [x for x, _ in calibration])
    prune.apoz(model, [x for x, _ in calibration])
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_criteria_score_masked_weights_as_zero(calibration):
    model = trained_mlp()
    prune.one_shot(model, prune.magnitude(model), 0.5)
    masks = prune.current_masks(model)
    for scores in (prune.magnitude(model), prune.taylor(model, calibration, F.cross_entropy),
                   prune.fisher(model, calibration, F.cross_entropy), prune.wanda(model, [calibration[0][0]])):
        for key, s in scores.items():
            assert (s[~masks[key]] == 0).all(), key


def test_calibration_needs_data():
    with pytest.raises(ValueError, match="no calibration"):
        prune.taylor(mlp(), [], F.cross_entropy)
    with pytest.raises(ValueError, match="no calibration"):
        prune.wanda(mlp(), [])
