"""Formats through the Python API: exact round trips, counts, bytes, reprs, and rejected input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sparsert
from conftest import BLOCKS, FORMATS, NM_PATTERNS, make_format, pruned_weight, structure_of



@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(1, 1), (1, 13), (13, 1), (64, 64), (67, 131), (257, 97)])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_round_trip_is_exact(rng, fmt, shape, density):
    w = pruned_weight(rng, *shape, density if fmt != "nm" else min(density, 0.5), structure_of(fmt))
    packed = make_format(fmt, w)
    back = packed.to_dense()
    assert back.dtype == np.float32 and back.shape == shape
    np.testing.assert_array_equal(back, w)
    assert packed.shape == shape
    assert np.count_nonzero(w) <= packed.nnz <= w.size
    assert packed.density == pytest.approx(packed.nnz / w.size)
    assert packed.nbytes > 0


@pytest.mark.parametrize("block", BLOCKS)
def test_bsr_every_block_shape_round_trips_with_padding(rng, block):
    w = pruned_weight(rng, 37, 53, 0.3, "block", block=block)  # neither side a multiple of 2
    packed = sparsert.BSR(w, block=block)
    np.testing.assert_array_equal(packed.to_dense(), w)
    assert packed.block == block
    assert packed.nblocks * block[0] * block[1] >= packed.nnz


@pytest.mark.parametrize("nm", NM_PATTERNS)
def test_nm_every_pattern_round_trips(rng, nm):
    w = pruned_weight(rng, 19, 45, nm[0] / nm[1], "nm", nm=nm)
    packed = sparsert.NM(w, n=nm[0], m=nm[1])
    np.testing.assert_array_equal(packed.to_dense(), w)
    assert (packed.n, packed.m) == nm


def test_csr_bytes_use_16_bit_indices_when_they_fit(rng):
    w = pruned_weight(rng, 100, 3000, 0.1)
    packed = sparsert.CSR(w)
    assert packed.index_bits == 16
    assert packed.nbytes == packed.nnz * (4 + 2) + (100 + 1) * 8
    wide = sparsert.CSR(np.eye(2, 70000, dtype=np.float32))
    assert wide.index_bits == 32
    np.testing.assert_array_equal(wide.to_dense(), np.eye(2, 70000, dtype=np.float32))


def test_nm_24_is_compact(rng):
    w = pruned_weight(rng, 64, 256, 0.5, "nm")
    packed = sparsert.NM(w)
    # 2 values per group of 4 plus 4 bits of positions per group.
    assert packed.nbytes == 64 * 256 // 2 * 4 + 64 * 256 // 4 // 2
    assert packed.nbytes < sparsert.Dense(w).nbytes * 0.6


@pytest.mark.parametrize("fmt", FORMATS)
def test_repr_is_readable(rng, fmt):
    packed = make_format(fmt, pruned_weight(rng, 12, 40, 0.25, structure_of(fmt)))
    text = repr(packed)
    assert text.startswith({"dense": "Dense(", "csr": "CSR(", "csc": "CSC(", "bsr": "BSR(", "nm": "NM("}[fmt])
    assert "shape=(12, 40)" in text and "nbytes=" in text


def test_nm_violation_names_row_and_group():
    w = np.zeros((3, 8), dtype=np.float32)
    w[2, 4:7] = 1.0  # row 2, group 1 holds three non-zeros
    with pytest.raises(ValueError, match=r"row 2, group 1 \(columns 4\.\.7\) has 3 non-zeros \(expected at most 2\)"):
        sparsert.NM(w, n=2, m=4)


@pytest.mark.parametrize("n,m", [(0, 4), (4, 4), (2, 3), (2, 16), (5, 4), (-1, 8)])
def test_nm_rejects_unsupported_patterns(n, m):
    with pytest.raises(ValueError, match="not supported"):
        sparsert.NM(np.zeros((2, 8), np.float32), n=n, m=m)


@pytest.mark.parametrize("block", [(3, 3), (0, 4), (4, 0), (32, 1), (-4, 4)])
def test_bsr_rejects_unsupported_blocks(block):
    with pytest.raises(ValueError, match=r"block shape .* is not supported"):
        sparsert.BSR(np.ones((8, 8), np.float32), block=block)


@pytest.mark.parametrize("block", [4, (4,), "4x4", (4.0, 4)])
def test_bsr_rejects_malformed_block_argument(block):
    with pytest.raises(ValueError, match="block"):
        sparsert.BSR(np.ones((8, 8), np.float32), block=block)


@pytest.mark.parametrize("fmt", FORMATS)
def test_weight_must_be_2d(fmt):
    with pytest.raises(ValueError, match=r"W has shape \(8,\) \(expected 2 dims"):
        make_format(fmt, np.ones(8, np.float32))


def test_torch_weights_are_accepted(rng):
    w = torch.from_numpy(pruned_weight(rng, 16, 32, 0.3)).requires_grad_()
    np.testing.assert_array_equal(sparsert.CSR(w).to_dense(), w.detach().numpy())
    half = torch.from_numpy(pruned_weight(rng, 8, 8, 0.5)).to(torch.bfloat16)
    np.testing.assert_array_equal(sparsert.Dense(half).to_dense(), half.float().numpy())


def test_weight_dtypes_convert_only_when_exact():
    exact = np.array([[0.5, 0.0], [0.0, -2.0]], dtype=np.float64)
    np.testing.assert_array_equal(sparsert.CSR(exact).to_dense(), exact.astype(np.float32))
    np.testing.assert_array_equal(sparsert.CSR(np.eye(3, dtype=np.int64)).to_dense(), np.eye(3, dtype=np.float32))
    with pytest.raises(TypeError, match="float64"):
        sparsert.CSR(np.array([[0.1, 0.0]], dtype=np.float64))
    with pytest.raises(TypeError, match="int64"):
        sparsert.CSR(np.array([[2**25 + 1]], dtype=np.int64))
    with pytest.raises(TypeError, match="complex64"):
        sparsert.CSR(np.ones((2, 2), dtype=np.complex64))


def test_non_contiguous_weight_is_handled(rng):
    w = pruned_weight(rng, 40, 30, 0.3)
    view = np.asfortranarray(w)[:, ::2]
    np.testing.assert_array_equal(sparsert.CSR(view).to_dense(), w[:, ::2])
