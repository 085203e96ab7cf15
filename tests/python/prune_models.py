"""Models and data for the sparsert.prune tests: scikit-learn's digits (shipped with it, no
download), a small MLP and a small CNN, each trained once per session and handed out as
copies."""

from __future__ import annotations

import copy
import functools
from typing import Callable, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# One thread: the tests stay fast and repeatable on a shared two-core machine.
torch.set_num_threads(1)

Batches = List[Tuple[Tensor, Tensor]]


@functools.lru_cache(maxsize=None)
def digits() -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_test, y_test)``: 8×8 digits as 64 features in [0, 1], a fixed
    split of 1347 / 450."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1347], y[:1347], x[1347:], y[1347:]


def batches(x: Tensor, y: Tensor, size: int = 128) -> Batches:
    return list(zip(x.split(size), y.split(size)))


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        correct = (model(x).argmax(1) == y).float().mean().item()
    model.train(was_training)
    return correct


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def cnn() -> nn.Sequential:
    """Digits as 1×8×8 images: (conv → bn → relu) × 2 → flatten → linear."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 64, 10))


def sgd_steps(model: nn.Module, data: Batches, lr: float = 0.05) -> Callable[[int], None]:
    """A ``train_step(t)`` for the schedules: one SGD step on batch ``t mod len(data)``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    def train_step(t: int) -> None:
        model.train()
        x, y = data[t % len(data)]
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return train_step


def train(model: nn.Module, epochs: int, seed: int = 0, lr: float = 0.01) -> nn.Module:
    x, y, _, _ = digits()
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for x_batch, y_batch in batches(x[order], y[order], 64):
            optimizer.zero_grad()
            F.cross_entropy(model(x_batch), y_batch).backward()
            optimizer.step()
    return model.eval()


@functools.lru_cache(maxsize=None)
def _trained_mlp() -> nn.Module:
    torch.manual_seed(0)
    return train(mlp(), epochs=30)


@functools.lru_cache(maxsize=None)
def _trained_cnn() -> nn.Module:
    torch.manual_seed(0)
    return train(cnn(), epochs=8)


def trained_mlp() -> nn.Module:
    """A copy of the MLP trained once per session (about 97% test accuracy)."""
    return copy.deepcopy(_trained_mlp())


def trained_cnn() -> nn.Module:
    """A copy of the CNN trained once per session."""
    return copy.deepcopy(_trained_cnn())
