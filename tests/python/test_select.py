"""Format choice from the calibrated cost model: the structure analysis, the cache, and that the
chosen format is the one the model predicts fastest (the smallest of those it cannot tell apart)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsert import cost, select


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import os

    os.environ["SPARSERT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        yield cost.calibrate(1)
    finally:
        del os.environ["SPARSERT_CACHE_DIR"]


def weight(kind: str, rows=512, cols=768, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    if kind == "2:4":
        order = np.argsort(np.abs(w.reshape(rows, -1, 4)), axis=2)
        keep = np.zeros_like(order, dtype=bool)
        np.put_along_axis(keep, order[:, :, 2:], True, axis=2)
        return (w.reshape(rows, -1, 4) * keep).reshape(rows, cols)
    if kind == "bsr4x4":
        keep = rng.random((rows // 4, cols // 4)) < 0.1
        return w * np.kron(keep, np.ones((4, 4), dtype=bool))
    if kind == "u95":
        return w * (rng.random(w.shape) < 0.05)
    return w


def test_analyse_measures_structure():
    s = select.analyse(weight("2:4"))
    assert s.nm == (2, 4) and s.density == pytest.approx(0.5)
    b = select.analyse(weight("bsr4x4"))
    assert b.bsr_fill[(4, 4)] == pytest.approx(1.0) and b.bsr_fill[(1, 4)] == pytest.approx(1.0)
    assert b.nm is None
    u = select.analyse(weight("u95"))
    assert u.bsr_fill[(4, 4)] > 5 and u.density == pytest.approx(0.05, abs=0.005)


@pytest.mark.parametrize("kind", ["2:4", "bsr4x4", "u95", "dense"])
@pytest.mark.parametrize("rows", [1, 32])
def test_choice_is_the_predicted_fastest(model, kind, rows):
    w = weight(kind)
    choice, packed = select.choose("layer", w, rows, model)
    s = select.analyse(w)
    allowed = {f: t for f, t in choice.times_us.items() if select.eligible(s, f, choice.times_us)}
    tied = [f for f, t in allowed.items() if t <= min(allowed.values()) * select.TIE]
    assert choice.format == min(tied, key=lambda f: (select.stored_bytes(s, f), allowed[f]))
    if kind == "dense":
        assert choice.format == "dense"
    for fmt, t in choice.times_us.items():
        assert t == pytest.approx(select.predict(model, s, fmt, rows))
    np.testing.assert_array_equal(packed.to_dense(), w)
    if kind == "2:4":
        assert "nm2:4" in choice.times_us
    if kind in ("bsr4x4", "u95") and rows == 1:
        assert choice.format != "dense", choice.times_us  # 10× less work: no machine runs dense faster


def test_a_sparse_format_needs_a_clear_margin_and_fewer_stored_values():
    m = select.CHOICE_MARGIN
    u95 = select.analyse(weight("u95"))  # CSR stores 5% of the entries
    full = select.analyse(weight("dense") * (np.random.default_rng(1).random((512, 768)) < 0.5))  # bsr4x4 fills every block
    assert select.eligible(u95, "dense", {"dense": 1.0})
    assert select.eligible(u95, "csr", {"dense": 100.0, "csr": 100.0 / m - 1})
    assert not select.eligible(u95, "csr", {"dense": 100.0, "csr": 100.0 / m + 1})  # a close call goes to dense
    assert not select.eligible(full, "bsr4x4", {"dense": 100.0, "bsr4x4": 1.0})  # as much arithmetic as dense


@pytest.mark.parametrize("density", [0.5, 0.7])
@pytest.mark.parametrize("rows", [1, 8, 32])
def test_half_dense_unstructured_weights_take_no_block_format(model, density, rows):
    # 30-50% sparse: random blocks are all filled, so no BSR shape stores fewer entries than dense, on
    # any host and whatever the fits. Whether CSR beats dense by the margin is the fitted costs' call
    # (at one row 16-bit CSR reads 3-4.2 bytes per entry against dense's 4; a fit made on a loaded host
    # has put it ahead at 32 rows too), so for it only the rule is held: chosen only when predicted
    # CHOICE_MARGIN faster than dense.
    rng = np.random.default_rng(1)
    w = weight("dense") * (rng.random((512, 768)) < density)
    choice, _ = select.choose("layer", w, rows, model)
    assert choice.format in ("dense", "csr", "csc"), choice.times_us
    if choice.format != "dense":
        assert choice.times_us[choice.format] * select.CHOICE_MARGIN < choice.times_us["dense"], choice.times_us


def test_forced_format_that_cannot_hold_the_weight_names_the_layer(model):
    with pytest.raises(ValueError, match="layer 'fc'.*nm2:4"):
        select.choose("fc", weight("dense"), 1, model, forced="nm2:4")


def test_cache_is_reused_refreshed_and_repaired(model):
    path = cost.cache_path(1)
    assert path.is_file()
    again = cost.calibrate(1)
    assert again.fits["csr"][1] == model.fits["csr"][1]  # read from the cache, not re-timed
    path.write_text("{not json")
    repaired = cost.calibrate(1)
    assert set(repaired.fits) == set(cost.FORMATS) and path.read_text().startswith("{\n")
    for fits in repaired.fits.values():
        for fit in fits.values():
            assert min(fit.alpha, fit.beta, fit.gamma) >= 0


def test_efficiency_is_a_share(model):
    rho = model.efficiency("csr", 1, stored=1e5, units=1e3)
    assert 0 < rho <= 1


def test_weights_larger_than_a_cache_are_priced_at_the_next_levels_bandwidth():
    fits = {f: {r: cost.Fit(1.0, 1e-6, 0.0) for r in cost.ROW_POINTS} for f in ("dense", "nm2:4", "csr")}
    model = cost.CostModel(fits, 1, memory=[(1 * 2**20, 100e3), (32 * 2**20, 40e3)])  # L2 1 MiB, L3 32 MiB
    stored, units = cost.stored_and_units("dense", 4096, 4096, 4096 * 4096)  # 64 MiB: from DRAM on every call
    assert model.predict("dense", 1, stored, units) == pytest.approx(4 * 4096 * 4096 / 40e3)
    stored, units = cost.stored_and_units("dense", 2048, 2048, 2048 * 2048)  # 16 MiB: from the L3
    assert model.predict("dense", 1, stored, units) == pytest.approx(4 * 2048 * 2048 / 100e3)
    stored, units = cost.stored_and_units("nm2:4", 4096, 4096, 4096 * 2048)  # 32 MiB of values + 2-bit positions
    assert model.predict("nm2:4", 1, stored, units) == pytest.approx(stored * 4.25 / 40e3)
    stored, units = cost.stored_and_units("csr", 256, 256, 256 * 26)  # 90%: 40 KB, in the L2: the fit alone
    assert model.predict("csr", 1, stored, units) == pytest.approx(1.0 + 1e-6 * stored)
    sizes = cost.cache_sizes()
    assert sizes == sorted(sizes) and all(size > 0 for size in sizes)
