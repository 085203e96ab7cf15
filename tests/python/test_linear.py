"""sparsert.linear for every format against the float64 reference, over shapes, densities,
batches and activations, plus the input kinds and the bad input it must reject."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsert
from conftest import BLOCKS, FORMATS, NM_PATTERNS, SIMD_FORMATS, assert_matches_reference, make_format, pruned_weight, structure_of

ACTIVATIONS = [None, *sparsert.ACTIVATIONS]


def run_case(rng, fmt, out, inp, batch, density, activation=None, with_bias=True, block=(4, 4), nm=(2, 4)):
    if fmt == "nm":
        density = min(density, nm[0] / nm[1])
    w = pruned_weight(rng, out, inp, density, structure_of(fmt), block=block, nm=nm)
    x = rng.standard_normal((batch, inp)).astype(np.float32)
    bias = rng.standard_normal(out).astype(np.float32) if with_bias else None
    y = sparsert.linear(x, make_format(fmt, w, block=block, nm=nm), bias, activation)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32
    return assert_matches_reference(y, x, w, bias, activation)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("batch", [1, 8, 67])
def test_every_activation_and_batch(rng, fmt, activation, batch):
    run_case(rng, fmt, 96, 200, batch, 0.3, activation)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "out,inp",
    [(1, 1), (1, 4099), (4099, 1), (2, 3), (13, 7), (127, 509), (1031, 211), (768, 3072), (4096, 4096)],
)
@pytest.mark.parametrize("batch", [1, 5, 32])
def test_shapes_from_one_to_thousands_including_primes(rng, fmt, out, inp, batch):
    if out * inp * batch > 64 * 2**20 // 8 and batch > 5:
        batch = 5  # keeps the float64 reference of 4096² quick
    run_case(rng, fmt, out, inp, batch, 0.1 if fmt != "dense" else 1.0, "relu")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch", [1, 300])
def test_large_batch_and_batch_one(rng, fmt, batch):
    run_case(rng, fmt, 300, 256, batch, 0.2, "gelu")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch", [1, 17])
def test_all_zero_weight_gives_activation_of_bias(rng, fmt, batch):
    w = np.zeros((33, 65), np.float32)
    x = rng.standard_normal((batch, 65)).astype(np.float32)
    bias = rng.standard_normal(33).astype(np.float32)
    y = sparsert.linear(x, make_format(fmt, w), bias, "sigmoid")
    np.testing.assert_allclose(y, np.broadcast_to(torch.sigmoid(torch.from_numpy(bias)).numpy(), y.shape), rtol=1e-6)
    assert np.all(sparsert.linear(x, make_format(fmt, w)) == 0)


@pytest.mark.parametrize("fmt", ["dense", "csr", "bsr"])
@pytest.mark.parametrize("batch", [1, 9])
def test_fully_dense_weight(rng, fmt, batch):
    run_case(rng, fmt, 130, 77, batch, 1.0, "silu")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch", [1, 20])
def test_empty_rows_and_columns(rng, fmt, batch):
    w = pruned_weight(rng, 64, 96, 0.5 if fmt == "nm" else 0.4, structure_of(fmt))
    w[::3] = 0  # empty rows
    w[:, 5:40] = 0  # empty columns
    x = rng.standard_normal((batch, 96)).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    y = sparsert.linear(x, make_format(fmt, w), bias, "tanh")
    assert_matches_reference(y, x, w, bias, "tanh")


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("batch", [1, 19])
def test_bsr_every_block_shape(rng, block, batch):
    run_case(rng, "bsr", 45, 70, batch, 0.3, "relu6", block=block)


@pytest.mark.parametrize("nm", NM_PATTERNS)
@pytest.mark.parametrize("batch", [1, 19])
def test_nm_every_pattern(rng, nm, batch):
    run_case(rng, "nm", 45, 70, batch, 1.0, "gelu_tanh", nm=nm)


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    out=st.integers(1, 300),
    inp=st.integers(1, 300),
    batch=st.integers(1, 70),
    density=st.floats(0.0, 1.0),
    activation=st.sampled_from(ACTIVATIONS),
    with_bias=st.booleans(),
    block=st.sampled_from(BLOCKS),
    nm=st.sampled_from(NM_PATTERNS),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_problems(fmt, out, inp, batch, density, activation, with_bias, block, nm, seed):
    run_case(np.random.default_rng(seed), fmt, out, inp, batch, density, activation, with_bias, block, nm)


def test_leading_batch_dims_and_vectors(rng):
    w = pruned_weight(rng, 24, 40, 0.3)
    packed = sparsert.CSR(w)
    x = rng.standard_normal((2, 3, 40)).astype(np.float32)
    y = sparsert.linear(x, packed)
    assert y.shape == (2, 3, 24)
    assert_matches_reference(y.reshape(6, 24), x.reshape(6, 40), w)
    v = rng.standard_normal(40).astype(np.float32)
    assert sparsert.linear(v, packed).shape == (24,)
    assert sparsert.linear(np.zeros((0, 40), np.float32), packed).shape == (0, 24)


def test_torch_in_torch_out(rng):
    w = pruned_weight(rng, 32, 48, 0.2)
    x = torch.randn(5, 48, generator=torch.Generator().manual_seed(3))
    b = torch.randn(32, generator=torch.Generator().manual_seed(4))
    y = sparsert.linear(x, sparsert.CSR(torch.from_numpy(w)), b, activation="relu")
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32 and y.shape == (5, 32)
    expected = torch.relu(torch.nn.functional.linear(x, torch.from_numpy(w), b))
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    assert_matches_reference(y.numpy(), x.numpy(), w, b.numpy(), "relu")


def test_non_contiguous_inputs(rng):
    w = pruned_weight(rng, 20, 30, 0.3)
    packed = sparsert.CSR(w)
    base = rng.standard_normal((30, 14)).astype(np.float32)
    x = base.T[::2]  # transposed and strided
    assert not x.flags.c_contiguous
    assert_matches_reference(sparsert.linear(x, packed), x, w)
    xt = torch.from_numpy(base).t()[1::3]
    assert_matches_reference(sparsert.linear(xt, packed).numpy(), xt.numpy(), w)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("batch", [1, 6])
def test_nan_and_inf_propagate_through_stored_weights(rng, fmt, batch):
    w = pruned_weight(rng, 40, 64, 0.5 if fmt == "nm" else 0.3, structure_of(fmt))
    packed = make_format(fmt, w)
    stored = packed.to_dense() != 0
    x = rng.standard_normal((batch, 64)).astype(np.float32)
    x[0, 7] = np.nan
    x[-1, 9] = np.inf
    y = sparsert.linear(x, packed)
    assert np.all(np.isnan(y[0, stored[:, 7]]))
    if fmt == "csr":  # only CSR stores exactly the non-zeros: others may hold explicit zeros
        untouched = ~stored[:, 7] & ~(stored[:, 9] & (batch == 1))
        assert np.all(np.isfinite(y[0, untouched]))
    hit_inf = stored[:, 9] & ~stored[:, 7] if batch == 1 else stored[:, 9]
    assert np.all(~np.isfinite(y[-1, hit_inf]))


def test_thread_counts_agree(rng):
    w = pruned_weight(rng, 500, 300, 0.2)
    x = rng.standard_normal((33, 300)).astype(np.float32)
    packed = sparsert.CSR(w)
    one = sparsert.linear(x, packed, num_threads=1)
    two = sparsert.linear(x, packed, num_threads=2)
    np.testing.assert_array_equal(one, two)
    previous = sparsert.get_num_threads()
    try:
        sparsert.set_num_threads(1)
        assert sparsert.get_num_threads() == 1
        np.testing.assert_array_equal(sparsert.linear(x, packed), one)
    finally:
        sparsert.set_num_threads(0)
    assert sparsert.get_num_threads() == previous >= 1


def test_concurrent_calls_from_python_threads(rng):
    w = pruned_weight(rng, 256, 512, 0.1)
    packed = sparsert.CSR(w)
    xs = [rng.standard_normal((b, 512)).astype(np.float32) for b in (1, 7, 64, 3)]
    expected = [sparsert.linear(x, packed, num_threads=1) for x in xs]
    errors = []

    def worker(i):
        for _ in range(30):
            if not np.array_equal(sparsert.linear(xs[i], packed, num_threads=2), expected[i]):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_best_isa_is_dispatched(rng):
    best = sparsert.available_isas().split()[0]
    for fmt in SIMD_FORMATS:
        packed = make_format(fmt, pruned_weight(rng, 16, 16, 0.5, structure_of(fmt)))
        for batch in (1, 8):
            assert f"_{best}" in sparsert.kernel_name(packed, batch), (fmt, batch)


def test_reference_kernels_when_simd_is_capped(rng):
    """SPARSERT_MAX_ISA=ref forces the scalar kernels; results agree with the SIMD path."""
    script = (
        "import numpy as np, sparsert;"
        "w = np.load('w.npy'); x = np.load('x.npy'); p = sparsert.CSR(w);"
        "assert sparsert.kernel_name(p, 4).endswith('_ref'), sparsert.kernel_name(p, 4);"
        "np.save('y.npy', sparsert.linear(x, p))"
    )
    w = pruned_weight(rng, 64, 80, 0.3)
    x = rng.standard_normal((4, 80)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "w.npy"), w)
        np.save(os.path.join(tmp, "x.npy"), x)
        env = {**os.environ, "SPARSERT_MAX_ISA": "ref"}
        subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp)
        y_ref_kernel = np.load(os.path.join(tmp, "y.npy"))
    assert_matches_reference(y_ref_kernel, x, w)
    np.testing.assert_allclose(y_ref_kernel, sparsert.linear(x, sparsert.CSR(w)), rtol=1e-5, atol=1e-5)


def test_unknown_gather_choice_is_named():
    """A SPARSERT_GATHER other than native or loads is refused by name, on any host, before a kernel runs."""
    script = (
        "import numpy as np, sparsert\n"
        "try:\n"
        "    sparsert.linear(np.ones((1, 80), np.float32), sparsert.CSR(np.eye(64, 80, dtype=np.float32)), num_threads=2)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "SPARSERT_GATHER": "fast"}
    out = subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True, text=True).stdout
    assert "reading SPARSERT_GATHER: unknown value 'fast' (expected native or loads)" in out, out


class TestBadInput:
    def setup_method(self):
        self.w = sparsert.CSR(np.eye(4, 6, dtype=np.float32))

    def test_mismatched_in_dimension_names_both_shapes(self):
        with pytest.raises(ValueError, match=r"x has shape \(3, 5\) but w has shape \(4, 6\)"):
            sparsert.linear(np.ones((3, 5), np.float32), self.w)

    def test_scalar_input_is_rejected(self):
        with pytest.raises(ValueError, match=r"x has shape \(\)"):
            sparsert.linear(np.float32(1.0), self.w)

    def test_bias_shape(self):
        with pytest.raises(ValueError, match=r"bias has shape \(5,\) but w has shape \(4, 6\) \(expected \(4,\)\)"):
            sparsert.linear(np.ones((1, 6), np.float32), self.w, np.ones(5, np.float32))

    def test_unknown_activation_lists_choices(self):
        with pytest.raises(ValueError, match="unknown activation 'swish'.*relu"):
            sparsert.linear(np.ones((1, 6), np.float32), self.w, activation="swish")

    @pytest.mark.parametrize("n", [0, -1, 1.5, "2"])
    def test_bad_thread_count(self, n):
        with pytest.raises(ValueError, match="num_threads"):
            sparsert.linear(np.ones((1, 6), np.float32), self.w, num_threads=n)

    def test_w_must_be_a_format(self):
        with pytest.raises(TypeError, match="expected sparsert.formats"):
            sparsert.linear(np.ones((1, 6), np.float32), np.eye(4, 6, dtype=np.float32))

    def test_dtypes(self):
        exact = np.ones((2, 6), dtype=np.float64)
        np.testing.assert_array_equal(sparsert.linear(exact, self.w), np.ones((2, 4)))
        np.testing.assert_array_equal(sparsert.linear(np.ones((2, 6), np.int32), self.w), np.ones((2, 4)))
        sparsert.linear(torch.ones(2, 6, dtype=torch.float16), self.w)
        with pytest.raises(TypeError, match="float64"):
            sparsert.linear(np.full((2, 6), 0.1), self.w)
        with pytest.raises(TypeError, match="complex128"):
            sparsert.linear(np.ones((2, 6), np.complex128), self.w)
        with pytest.raises(TypeError, match="bias has dtype float64"):
            sparsert.linear(np.ones((2, 6), np.float32), self.w, np.full(4, 0.1))

    def test_core_errors_keep_their_message(self):
        with pytest.raises(ValueError, match=r"building bsr: block shape \(3, 5\) is not supported"):
            sparsert.BSR(np.ones((4, 4), np.float32), block=(3, 5))
