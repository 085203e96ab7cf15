"""Shared helpers: pruned random weights that fit each format, and the float64 reference."""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import torch

import sparsert


def pytest_report_header(config):
    """The log says which kernels the tests ran: the dispatcher takes the first ISA, and
    test_reference_kernels_when_simd_is_capped the last (ref)."""
    cap = os.environ.get("SPARSERT_MAX_ISA")
    return f"sparsert ISAs on this host: {sparsert.available_isas()}" + (f" (SPARSERT_MAX_ISA={cap})" if cap else "")


BLOCKS = [(r, c) for r in (1, 2, 4, 8, 16) for c in (1, 2, 4, 8, 16)]
NM_PATTERNS = [(1, 4), (2, 4), (3, 4), (1, 8), (2, 8), (4, 8), (7, 8)]


def pruned_weight(rng: np.random.Generator, out: int, inp: int, density: float, structure: str = "unstructured",
                  block=(4, 4), nm=(2, 4)) -> np.ndarray:
    """N(0,1) weight pruned to ~density with a pattern the structure's format accepts."""
    w = rng.standard_normal((out, inp)).astype(np.float32)
    if structure == "block":
        r, c = block
        keep = rng.random((-(-out // r), -(-inp // c))) < density
        mask = np.kron(keep, np.ones((r, c), dtype=bool))[:out, :inp]
    elif structure == "nm":
        n, m = nm
        groups = -(-inp // m)
        scores = rng.random((out, groups, m))
        order = np.argsort(-scores, axis=2)
        mask = np.zeros((out, groups, m), dtype=bool)
        np.put_along_axis(mask, order[:, :, :n], True, axis=2)
        mask &= rng.random((out, groups, m)) < max(density, 0.0) * m / n
        mask = mask.reshape(out, groups * m)[:, :inp]
    else:
        mask = rng.random((out, inp)) < density
    return np.where(mask, w, np.float32(0))


FORMATS = ["dense", "csr", "csc", "bsr", "nm"]
# Formats with SIMD kernels (CSC has one scalar scatter kernel for every CPU).
SIMD_FORMATS = ["dense", "csr", "bsr", "nm"]


def make_format(name: str, w: np.ndarray, block=(4, 4), nm=(2, 4)):
    if name == "dense":
        return sparsert.Dense(w)
    if name == "csr":
        return sparsert.CSR(w)
    if name == "csc":
        return sparsert.CSC(w)
    if name == "bsr":
        return sparsert.BSR(w, block=block)
    return sparsert.NM(w, n=nm[0], m=nm[1])


def structure_of(fmt: str) -> str:
    return {"bsr": "block", "nm": "nm"}.get(fmt, "unstructured")


_TORCH_ACT = {
    None: lambda t: t,
    "relu": torch.relu,
    "relu6": lambda t: torch.clamp(t, 0.0, 6.0),
    "gelu": lambda t: torch.nn.functional.gelu(t, approximate="none"),
    "gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
    "silu": torch.nn.functional.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardswish": torch.nn.functional.hardswish,
}


def reference(x: np.ndarray, w: np.ndarray, bias, activation) -> np.ndarray:
    """act(x @ W.T + bias) in float64."""
    y = torch.from_numpy(np.asarray(x, dtype=np.float64)) @ torch.from_numpy(w.astype(np.float64)).T
    if bias is not None:
        y = y + torch.from_numpy(np.asarray(bias, dtype=np.float64))
    return _TORCH_ACT[activation](y).numpy()


def magnitude(x: np.ndarray, w: np.ndarray, bias) -> np.ndarray:
    """Σ|W·x| + |bias| per output: the scale fp32 rounding is proportional to."""
    m = np.abs(np.asarray(x, dtype=np.float64)) @ np.abs(w.astype(np.float64)).T
    return m + (np.abs(np.asarray(bias, dtype=np.float64)) if bias is not None else 0.0)


def assert_matches_reference(y, x, w, bias=None, activation=None, tol=1e-5) -> float:
    """Checks y against the float64 reference; returns ‖y−ref‖/‖ref‖.

    Asserts ‖y−ref‖/‖ref‖ < tol, except when ‖ref‖ is tiny next to the terms summed (a few
    outputs that cancel): then the error is measured against ‖|ref| + Σ|W·x| + |bias|‖ instead,
    the scale fp32 rounding actually has."""
    y = np.asarray(y, dtype=np.float64)
    ref = reference(x, w, bias, activation)
    assert y.shape == ref.shape
    diff = np.linalg.norm(y - ref)
    norm_ref = np.linalg.norm(ref)
    scale = np.linalg.norm(np.abs(ref) + magnitude(x, w, bias))
    if diff == 0:
        return 0.0
    rel = diff / norm_ref if norm_ref > 0 else np.inf
    if norm_ref < 0.1 * scale:
        assert diff / scale < tol, f"error {diff / scale:.3g} of magnitude (‖ref‖={norm_ref:.3g} cancels)"
    else:
        assert rel < tol, f"relative error {rel:.3g} ≥ {tol}"
    return rel


@pytest.fixture
def rng(request) -> np.random.Generator:
    # A fixed seed per test: failures reproduce, and every test draws fresh non-zero inputs.
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
