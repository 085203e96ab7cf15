"""The cost model: how long a linear layer or a convolution takes in each format on this machine.

A layer's time is modelled per format and row count as  T ≈ α + β·s + γ·B,  with s the values the
format stores (non-zeros for CSR, whole blocks for BSR, N per group for N:M, every entry for dense) and
B its structural units (rows for CSR, N:M and dense; blocks for BSR). CSC skips zero inputs, so for it
s counts the non-zeros of non-zero input columns, nnz·(1 − z) at an input zero fraction z, and B = cols. α, β and γ are fitted by least
squares to timings of the real kernels on synthetic weights (`calibrate`) that stay in the last-level
cache, at the row counts of ROW_POINTS; more rows scale by whole tiles of TILE rows, as the batched
kernels do, and a few rows cost at most that many one-row calls. A weight larger than the level-2
cache streams from a farther level on every call, so its time is at least its bytes at the rate
`calibrate` measures for a weight of its size (a roofline: at batch 1 a 64 MiB dense layer took 3-4x
what the fit said, a 9 MiB one 1.3x, and a 90% weight of either, a few MiB, does not pay it). The fit
is cached per machine, instruction set, thread count and sparsert version under the user's cache directory
(`$SPARSERT_CACHE_DIR`, else `$XDG_CACHE_HOME/sparsert`, else `~/.cache/sparsert`); `calibrate(refresh=True)`
or deleting the file redoes it. Realised efficiency of a format, ρ = 1 / (1 + γB/(βs)), is what the
pruning planner trades against density.

A convolution runs another product for dense weights (written straight into NCHW) and copies its
input before a sparse product: its time is a weighted sum of the call, that product as priced above
at the rows the kernel runs, the floats and runs of floats copied and the outputs written
(`conv_features`), the weights fitted per format to the conv2d operator timed on convolutions of
ResNet and MobileNet shapes (at 2:4 on ResNet-18, pricing the product alone put N:M 10-15% ahead of
a dense convolution that ran 15-45% faster).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from . import _core, formats
from ._timing import summarize

FORMATS = ["dense", "csr", "bsr1x4", "bsr4x1", "bsr4x4", "bsr8x1", "bsr16x1", "bsr1x8", "nm2:4", "nm1:4", "nm4:8", "csc"]
# Calibrated row counts: one vector, the batched kernels' narrow tiles (4 and 8 lanes: at 2-8 rows a
# 16-row price was up to twice the time), 16, 32 and a whole 64-lane tile (the CSR and N:M kernels'
# widest with AVX-512; 64 rows priced as two 32-row tiles put N:M 1.1-1.25x behind where it ran ahead).
ROW_POINTS = (1, 4, 8, 16, 32, 64)
TILE = 64
# From in-L2 to last-level-cache sizes (dense 2048² is 16 MiB); larger weights are the roofline's.
_CALIBRATION_SHAPES = [(256, 256), (128, 1024), (1024, 512), (2048, 2048), (1024, 4096)]
_CALIBRATION_DENSITIES = [0.05, 0.15, 0.4]
_VERSION = 16  # bump when the calibration changes, so old caches are not read


@dataclass
class Fit:
    alpha: float  # µs per call
    beta: float  # µs per stored value
    gamma: float  # µs per unit (row or block)

    def __call__(self, stored: float, units: float) -> float:
        return self.alpha + self.beta * stored + self.gamma * units


def stored_and_units(fmt: str, rows: int, cols: int, nnz: int, nblocks: int | None = None,
                     zero_fraction: float = 0.0) -> tuple[float, float]:
    """(s, B) of the cost model for a weight of this shape: `nnz` non-zeros, for BSR `nblocks` blocks,
    and for CSC the fraction of zero inputs it skips."""
    spec = formats.parse(fmt)
    if spec.kind == "csc":
        return float(nnz) * (1.0 - zero_fraction), float(cols)
    if spec.kind == "dense":
        return float(rows * cols), float(rows)
    if spec.kind == "csr":
        return float(nnz), float(rows)
    if spec.kind == "bsr":
        r, c = spec.block
        blocks = nblocks if nblocks is not None else math.ceil(nnz / (r * c))
        return float(blocks * r * c), float(blocks)
    n, m = spec.nm
    return float(rows * math.ceil(cols / m) * n), float(rows)


def weight_bytes(fmt: str, stored: float, units: float) -> float:
    """Bytes a weight of `stored` values and `units` units occupies in `fmt` (16-bit indices; the
    pointers per row or block row are left out, a few bytes per thousand values)."""
    spec = formats.parse(fmt)
    if spec.kind in ("csr", "csc"):
        return 6.0 * stored
    if spec.kind == "bsr":
        return 4.0 * stored + 2.0 * units
    if spec.kind == "nm":
        n, m = spec.nm
        return stored * (4.0 + math.log2(m) / 8.0)
    return 4.0 * stored


def cache_sizes() -> list[float]:
    """Bytes of this machine's data caches from level 2 up, ascending (Linux sysfs; empty when unknown)."""
    sizes = set()
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            text = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        digits, unit = text.rstrip("KMG"), {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        if level >= 2 and kind in ("Data", "Unified") and digits.isdigit():
            sizes.add(float(digits) * unit)
    return sorted(sizes)


@dataclass(frozen=True)
class ConvShape:
    """What a conv2d weight's time depends on besides the weight itself: the images, their input and
    output sizes and the window. `channels` and `out_channels` are one group's."""

    images: int
    channels: int
    out_channels: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @property
    def pixels(self) -> int:
        """Output pixels of all images: the rows the weight multiplies."""
        return self.images * self.out_hw[0] * self.out_hw[1]

    @property
    def pointwise(self) -> bool:
        """1×1, stride 1, unpadded: the operator reads the image in place, with no copy."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)


# The conv2d operator runs dense weights from this many output pixels an image (kMinPixelRows in
# ops_conv.cpp) and CSR weights that are not pointwise directly on the image: copied once into padded
# phase planes, the product taken over "wide" pixels (every plane column of each output row, the
# padding columns included). Every other weight reads im2col panels and its result is transposed.
_CONV_DENSE_MIN_PIXELS = 16
# Dense 3 × 3 convolutions at stride 1 run Winograd F(4×4, 3×3) from 16 tiles of 4 × 4 outputs, while
# the transformed weight (36 · in · out floats) is at most this many floats per tile (ops_conv.cpp's
# use_winograd); 36 products at the tiles' rows, each of a ninth of the weight.
_WINOGRAD_MIN_TILES = 16
_WINOGRAD_WEIGHT_FLOATS_PER_TILE = 1024 * 1024


def winograd_tiles(fmt: str, conv: ConvShape) -> int:
    """The output tiles conv2d runs Winograd on for `conv` in `fmt`, all images together; 0 where it
    does not (graph/ops_conv.cpp's use_winograd)."""
    if formats.parse(fmt).kind != "dense" or conv.groups != 1 or conv.kernel != (3, 3) or conv.stride != (1, 1) \
            or conv.dilation != (1, 1):
        return 0
    tiles = conv.images * -(-conv.out_hw[0] // 4) * -(-conv.out_hw[1] // 4)
    fits = 36 * conv.channels * conv.out_channels <= _WINOGRAD_WEIGHT_FLOATS_PER_TILE * tiles
    return tiles if tiles >= _WINOGRAD_MIN_TILES and fits else 0


def conv_features(fmt: str, conv: ConvShape, predicted_product_us) -> list[float]:
    """The terms of a convolution's time in `fmt` that `CostModel.conv_fits` weighs: 1 (the call),
    the matrix products as the linear-layer model prices them (`predicted_product_us(rows, share)`,
    `share` the fraction of the weight's values a product holds), one per image at the rows the kernel
    runs (a batch of 32 small images is 32 products of a partial tile, not one of 32 times the rows),
    the floats copied before them (phase planes or im2col panels; Winograd's transforms), the runs of
    them copied (one per channel tap and output row: short rows make im2col slow), and the outputs
    the products write."""
    (h, w), (oh, ow), (ph, pw) = conv.in_hw, conv.out_hw, conv.padding
    (kh, kw), (sh, sw) = conv.kernel, conv.stride
    cols = conv.channels * kh * kw
    n = conv.images
    tiles = winograd_tiles(fmt, conv)
    if tiles:
        per_image = tiles / n
        copied = conv.channels * (4 * -(-oh // 4) + 2) * (4 * -(-ow // 4) + 2) \
            + 36 * per_image * (conv.channels + conv.out_channels)
        return [1.0, n * 36 * predicted_product_us(per_image, 1 / 9), n * copied, 0.0,
                float(conv.pixels * conv.out_channels)]
    kind = formats.parse(fmt).kind
    hq, wq = math.ceil((h + 2 * ph) / sh), math.ceil((w + 2 * pw) / sw)
    pixel_rows = oh * ow >= _CONV_DENSE_MIN_PIXELS
    # As graph/ops_conv.cpp runs them: CSR and dense on phase planes; N:M on copies of them shifted
    # per column tap, rows rounded up to 16 floats, unless that wastes over a quarter (im2col then);
    # 1×1 convolutions read the image in place.
    aligned = _nm_on_pixel_rows(fmt, conv) and -(-wq // 16) * 16 * 4 <= ow * 5
    copies = (kw - 1) // sw + 1 if aligned else 1
    if aligned:
        wq = -(-wq // 16) * 16
    direct = not conv.pointwise and (kind == "csr" or kind == "dense" and pixel_rows or aligned)
    if conv.pointwise:
        rows, copied, runs = oh * ow, 0.0, 0.0
    elif direct:  # the phase planes the taps read: a 1×1 kernel at stride 2 reads one of four
        rows, copied, runs = oh * wq, copies * conv.channels * min(kh, sh) * min(kw, sw) * hq * wq, 0.0
    else:
        rows, copied, runs = oh * ow, float(oh * ow * cols), float(oh * cols)
    return [1.0, n * predicted_product_us(rows), n * copied, n * runs, float(conv.pixels * conv.out_channels)]


def _nm_on_pixel_rows(fmt: str, conv: ConvShape) -> bool:
    """Whether conv2d runs `fmt` as N:M on pixel rows (graph/ops_conv.cpp's pixel_rows)."""
    pixels = conv.out_hw[0] * conv.out_hw[1]
    return formats.parse(fmt).kind == "nm" and pixels >= _CONV_DENSE_MIN_PIXELS and not conv.pointwise


def conv_product_format(fmt: str, conv: ConvShape) -> str:
    """The format whose linear-layer fit prices a convolution's product in `fmt` (CostModel.predict_conv)."""
    return "dense" if _nm_on_pixel_rows(fmt, conv) else fmt


class CostModel:
    """Predicted µs per call of each format, at any row count, on this machine: of a linear layer's
    product (`predict`) and of a convolution (`predict_conv`)."""

    def __init__(self, fits: dict[str, dict[int, Fit]], threads: int, memory: Sequence[tuple[float, float]] = (),
                 conv_fits: dict[str, Sequence[float]] | None = None):
        """`memory`: (weight bytes, bytes per µs) points, ascending (`memory_levels`): a weight larger
        than the first streams on every call, at the rate interpolated between the points around its
        size (log-log; the nearest point's beyond them). `conv_fits`: per format, the weights of
        `conv_features` (absent: a convolution is priced as its matrix product alone)."""
        self.fits = fits
        self.threads = threads
        self.memory = [tuple(level) for level in memory]
        self.conv_fits = {f: list(c) for f, c in (conv_fits or {}).items()}

    def predict(self, fmt: str, rows: int, stored: float, units: float) -> float:
        return max(self._in_cache(fmt, rows, stored, units), self.streaming_us(fmt, stored, units))

    def predict_conv(self, fmt: str, conv: ConvShape, stored: float, units: float) -> float:
        """µs of a conv2d of shape `conv` whose weight (one group's) is `stored` and `units` in `fmt`.
        N:M on pixel rows runs the dense convolution's tiles on its stored values, so its product is
        the dense fit's at those values (the fitted weight prices each against a dense one), not the
        linear N:M kernel's, another loop. On the calibration shapes its ratio to dense then came
        within 10% of the measured one (a 2:4 3 × 3 layer at 56², 7% faster, is still predicted level)."""
        product = conv_product_format(fmt, conv)
        features = conv_features(fmt, conv, lambda rows, share=1.0: self.predict(product, rows, stored * share, units))
        coef = self.conv_fits.get(fmt)
        if coef is None:
            return features[1]
        return max(float(np.dot(coef, features)), 0.1)

    def streaming_us(self, fmt: str, stored: float, units: float) -> float:
        """The roofline: µs to stream the weight from wherever a weight of its size lives (0 when it
        fits the level-2 cache)."""
        nbytes = weight_bytes(fmt, stored, units)
        if not self.memory or nbytes <= self.memory[0][0]:
            return 0.0
        sizes, rates = zip(*self.memory)
        return nbytes / math.exp(np.interp(math.log(nbytes), np.log(sizes), np.log(rates)))

    def _in_cache(self, fmt: str, rows: int, stored: float, units: float) -> float:
        fit = self.fits[fmt]
        one_row = fit[1](stored, units)
        if rows <= 1:
            return max(one_row, 0.1)
        point = next((r for r in ROW_POINTS[1:-1] if rows <= r), None)
        if point is not None:  # below a whole tile: the next calibrated row count up, as timed
            tiled = fit[point](stored, units)
        else:
            # α is per call (argument checks, packing set-up, thread wake-up); the rest repeats per tile.
            tile = fit[TILE]
            tiled = tile.alpha + (tile(stored, units) - tile.alpha) * math.ceil(rows / TILE)
        # A few rows cost at most that many one-row calls: a kernel whose time grows with every row
        # (CSC) would otherwise be priced at 2 rows as at a whole tile.
        return max(min(tiled, rows * one_row), 0.1)

    def efficiency(self, fmt: str, rows: int, stored: float, units: float) -> float:
        """ρ = 1 / (1 + γB / (βs)): the share of the time spent on the values themselves."""
        fit = self.fits[fmt][1 if rows <= 1 else TILE]
        work = fit.beta * stored
        return 1.0 if work <= 0 else 1.0 / (1.0 + max(fit.gamma, 0.0) * units / work)


def cache_path(threads: int) -> Path:
    root = os.environ.get("SPARSERT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sparsert"
    )
    machine = f"{platform.machine()}-{_core.available_isas().split()[0]}"
    from . import __version__

    return Path(root) / f"cost-{machine}-t{threads}-v{__version__}-m{_VERSION}-k{_kernels_id()}.json"


@functools.lru_cache(maxsize=None)
def _kernels_id() -> str:
    """A digest of the compiled core: a rebuilt extension (new kernels, same version) is timed afresh."""
    return hashlib.sha1(Path(_core.__file__).read_bytes()).hexdigest()[:10]


def _synthetic(fmt: str, rows: int, cols: int, density: float, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    spec = formats.parse(fmt)
    if spec.kind == "dense":
        return w
    if spec.kind == "nm":
        n, m = spec.nm
        keep = np.argsort(rng.random((rows, cols // m, m)), axis=2) < n
        return (w.reshape(rows, -1, m) * keep).reshape(rows, cols)
    if spec.kind == "bsr":
        r, c = spec.block
        keep = rng.random((rows // r, cols // c)) < density
        return w * np.kron(keep, np.ones((r, c), dtype=bool))
    return w * (rng.random((rows, cols)) < density)  # csr, csc


# Input zero fractions CSC is timed at (it is the only format whose time depends on them).
_CSC_ZERO_FRACTIONS = (0.0, 0.5, 0.9)


@functools.lru_cache(maxsize=None)
def _clock_cost(clock) -> float:
    """Seconds that reading `clock` at both ends adds to an interval: the thread CPU clock is a system
    call (0.4 µs in a VM here, a tenth of the smallest calibrated call)."""
    return min(-(clock() - clock()) for _ in range(200))


# Visits to each calibration probe (`_undisturbed_in_turns`). Five calibrations on the Ice Lake host
# that timed probe after probe priced the formats relative to dense a mean 23% apart (any two of them;
# at worst 3.4x): the host's speed drifts within seconds, and each format's probes saw another part of
# it. Five in turns with four visits: 7% (at worst 1.7x, a convolution), and 20% longer (bench/NOTES.md).
_VISITS = 4


def _undisturbed_in_turns(calls: Sequence[Callable[[], object]], threads: int, min_time: float) -> list[float]:
    """µs per call of each of `calls` (kernels or one-operator model runs on `threads` threads) as the
    undisturbed machine runs it: the lower decile of its single calls, taken over ``min_time`` in
    `_VISITS` visits in turns with the others' (forwards, then backwards), each after an untimed
    call that fetches what the others' calls evicted. A burst on a shared host then slows a part of
    every probe's calls, not all of one format's, and the decile leaves it out; a burst lifts a median
    by a third or more, and the times the model is held against (plans, ``summary``, the benches) are
    least-disturbed ones too. One thread runs on the calling thread, so its CPU time is taken: time
    the thread spends descheduled on a loaded host (a millisecond call is preempted in most samples)
    does not count."""
    clock = time.thread_time if threads == 1 else time.perf_counter
    samples: list[list[float]] = [[] for _ in calls]
    for visit in range(_VISITS):
        order = range(len(calls)) if visit % 2 == 0 else range(len(calls) - 1, -1, -1)
        for i in order:
            calls[i]()
            start, taken = time.perf_counter(), []
            while len(taken) < 3 or (time.perf_counter() - start < min_time / _VISITS and len(taken) < 50):
                t0 = clock()
                calls[i]()
                taken.append(clock() - t0 - _clock_cost(clock))
            samples[i] += taken
    return [summarize(v).p10 * 1e6 for v in samples]


def _linear_call(weight, x: np.ndarray, threads: int) -> Callable[[], object]:
    return functools.partial(_core.linear, weight, x, None, "none", threads)


def _non_negative_fit(a: np.ndarray, t: np.ndarray) -> list[float]:
    """Least squares t ≈ a·x with x ≥ 0 (a cost cannot be negative): the best fit over the subsets
    of columns whose unconstrained solution is non-negative (3 or 5 columns: 7 or 31 subsets)."""
    n = a.shape[1]
    best, best_err = [0.0] * n, math.inf
    for mask in range(1, 1 << n):
        cols = [i for i in range(n) if mask >> i & 1]
        x, *_ = np.linalg.lstsq(a[:, cols], t, rcond=None)
        if (x < 0).any():
            continue
        err = float(np.sum((a[:, cols] @ x - t) ** 2))
        if err < best_err:
            best_err = err
            best = [0.0] * n
            for i, v in zip(cols, x):
                best[i] = float(v)
    return best


def calibrate(threads: int | None = None, refresh: bool = False, min_time: float = 0.01) -> CostModel:
    """The cost model for `threads` (default: sparsert.get_num_threads()), from the cache or, when
    absent, stale or `refresh`, by timing the kernels (37-47 s for one thread on the Ice Lake host) and
    caching the fit."""
    threads = threads or _core.get_num_threads()
    path = cache_path(threads)
    if not refresh and path.is_file():
        try:
            raw = json.loads(path.read_text())
            fits = {f: {int(r): Fit(*v) for r, v in per.items()} for f, per in raw["fits"].items()}
            return CostModel(fits, threads, [(float(c), float(b)) for c, b in raw["memory"]], raw["conv"])
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache is recomputed
    rng = np.random.default_rng(0)
    samples: dict[str, list] = {fmt: [] for fmt in FORMATS}  # per format: (s, B, {rows: µs})
    for rows, cols in _CALIBRATION_SHAPES:
        probes = []  # (format, s, B, rows, call): every format's at this shape, timed in turns
        for fmt in FORMATS:
            for density in _CALIBRATION_DENSITIES if formats.parse(fmt).kind not in ("dense", "nm") else [1.0]:
                w = _synthetic(fmt, rows, cols, density, rng)
                weight = formats.pack(w, fmt)
                nblocks = getattr(weight, "nblocks", None)
                for z in _CSC_ZERO_FRACTIONS if fmt == "csc" else (0.0,):
                    s, b = stored_and_units(fmt, rows, cols, int(np.count_nonzero(w)), nblocks, z)
                    for r in ROW_POINTS:
                        x = rng.standard_normal((r, cols), dtype=np.float32)
                        x[rng.random(x.shape) < z] = 0.0
                        probes.append((fmt, s, b, r, _linear_call(weight, x, threads)))
        by_weight: dict[tuple[str, float, float], dict[int, float]] = {}
        for (fmt, s, b, r, _), t in zip(probes, _undisturbed_in_turns([p[-1] for p in probes], threads, min_time)):
            by_weight.setdefault((fmt, s, b), {})[r] = t
        for (fmt, s, b), times in by_weight.items():
            samples[fmt].append((s, b, times))
    fits: dict[str, dict[int, Fit]] = {fmt: {} for fmt in FORMATS}
    for fmt in FORMATS:
        for r in ROW_POINTS:
            # Weighted by 1/t: relative errors count alike for a 10 µs and a 10 ms layer.
            t = np.array([times[r] for _, _, times in samples[fmt]])
            a = np.array([[1.0, s, b] for s, b, _ in samples[fmt]]) / t[:, None]
            fits[fmt][r] = Fit(*_non_negative_fit(a, np.ones_like(t)))
    memory = _memory_rates(threads, min_time, rng)
    conv_fits = _conv_fits(CostModel(fits, threads, memory), min_time, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"fits": {f: {str(r): [fit.alpha, fit.beta, fit.gamma] for r, fit in per.items()} for f, per in fits.items()},
               "memory": memory, "conv": conv_fits, "isas": _core.available_isas(), "threads": threads}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    tmp.replace(path)
    return CostModel(fits, threads, memory, conv_fits)


# Convolutions the conv2d operator is timed on (input channels, output channels, kernel, stride, input
# size; one image, padding k // 2): 3×3 at stride 1 and 2 from 7² to 112² images, 1×1 pointwise and
# strided, as in ResNets and MobileNets. Output channels are multiples of 16 (every block shape).
_CONV_CALIBRATION_SHAPES = [(64, 64, 3, 1, 56), (128, 128, 3, 1, 28), (128, 128, 3, 1, 14), (256, 256, 3, 1, 7),
                            (64, 128, 3, 2, 28),
                            (16, 48, 3, 2, 112), (32, 32, 3, 1, 28), (128, 512, 1, 1, 14), (256, 64, 1, 1, 28),
                            (96, 32, 1, 1, 56), (256, 512, 1, 2, 14)]


def _conv_fits(model: CostModel, min_time: float, rng: np.random.Generator) -> dict[str, list[float]]:
    """Per format, the weights of `conv_features` fitted to the conv2d operator's measured time on
    synthetic weights of `_CONV_CALIBRATION_SHAPES` (its dense product is another kernel than the
    linear layer's, and the copies before and after a sparse product cost up to several times the
    product itself: bsr4x4 at 10% on a 7² image); every format's at one shape timed in turns."""
    features: dict[str, list[list[float]]] = {fmt: [] for fmt in FORMATS}
    times: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for cin, cout, k, stride, size in _CONV_CALIBRATION_SHAPES:
        pad, o = k // 2, (size + 2 * (k // 2) - k) // stride + 1
        conv = ConvShape(1, cin, cout, (size, size), (o, o), (k, k), (stride, stride), (pad, pad))
        probes = []  # (format, features, call)
        for fmt in FORMATS:
            for density in _CALIBRATION_DENSITIES[1:] if formats.parse(fmt).kind not in ("dense", "nm") else [1.0]:
                w = _synthetic(fmt, cout, cin * k * k, density, rng)
                weight = formats.pack(w, fmt)
                s, b = stored_and_units(fmt, cout, cin * k * k, int(np.count_nonzero(w)), getattr(weight, "nblocks", None))
                product = conv_product_format(fmt, conv)
                row = conv_features(fmt, conv, lambda r, share=1.0: model.predict(product, r, s * share, b))
                probes.append((fmt, row, _conv_call(weight, conv, model.threads, rng)))
        for (fmt, row, _), t in zip(probes, _undisturbed_in_turns([p[-1] for p in probes], model.threads, min_time)):
            features[fmt].append(row)
            times[fmt].append(t)
    out = {}
    for fmt in FORMATS:
        t = np.array(times[fmt])
        out[fmt] = _non_negative_fit(np.array(features[fmt]) / t[:, None], np.ones_like(t))  # relative errors, as above
    return out


def _conv_call(weight, conv: ConvShape, threads: int, rng: np.random.Generator) -> Callable[[], object]:
    """A call of a one-node model running conv2d of shape `conv` with `weight` on a random image."""
    g = _core.Graph()
    x = g.add_input("x", "f32", [conv.images, conv.channels, *conv.in_hw])
    attrs = {"kernel": list(conv.kernel), "stride": list(conv.stride), "padding": list(conv.padding),
             "dilation": [1, 1], "groups": [1]}
    g.set_outputs([g.add_node("conv2d", "conv", [x], "y", attrs, {}, [weight])])
    model = _core.Model(g, threads, False, 0)
    image = [rng.standard_normal((conv.images, conv.channels, *conv.in_hw), dtype=np.float32)]
    return lambda: model.run(image)


# time_formats drops a format from its turns when the faster of its first two calls takes this many
# times the fastest format's. MobileNetV2's 16 -> 64 1 x 1 convolution at 112² in csc (7 ms a call,
# against dense's 0.4) evicted the last-level cache between the other formats' calls: dense then measured
# 0.70-1.07 ms and csr 0.65-0.83, csr was taken, and ran 1.4x slower than dense in the model, where that
# layer's input comes from cache. One call is not evidence: MobileNetV2's stem (3 -> 16, 3 x 3 stride 2)
# ran its first timed dense call in 571-863 µs and the next ones in 150-160, and dense was dropped on it
# (there the formats then ran alike in the model, but nothing had measured that).
OUTPACED = 2.0
OUTPACED_ROUNDS = 2


def time_formats(weights: Mapping[str, object], rows: int, conv: ConvShape | None, zero_fraction: float,
                 threads: int, min_time: float = 0.01) -> dict[str, float]:
    """Measured µs per call of one layer in each of its packed `weights` ({format: weight}): as a
    linear product at `rows` rows of inputs with `zero_fraction` zeros, or as conv2d of shape `conv` on
    one image (a batch runs image by image, so one image ranks the formats as the batch does). The
    medians of calls taken in turns, the level-2 cache overwritten before each: in a model the other
    layers run between two calls of this one. Timed hot, a 10% weight at batch 1 ran faster in
    bsr4x4 at 8x fill than in CSR, which ran 7-17% faster among the other tools' calls
    (`bench/kernels.py`). A format slower than OUTPACED × the fastest in each of the first
    OUTPACED_ROUNDS rounds leaves the turns (its time the median of its calls so far): it cannot win,
    and a call that slow can evict the caches the others' calls read (OUTPACED)."""
    rng = np.random.default_rng(0)
    if conv is not None:
        one = dataclasses.replace(conv, images=1)
        calls = {f: _conv_call(w, one, threads, rng) for f, w in weights.items()}
    else:
        cols = next(iter(weights.values())).shape[1]
        x = rng.standard_normal((rows, cols), dtype=np.float32)
        x[rng.random(x.shape) < zero_fraction] = 0.0
        calls = {f: _linear_call(w, x, threads) for f, w in weights.items()}
    scratch = np.empty(int(2 * (cache_sizes() or [1 << 20])[0]) // 4, dtype=np.float32)  # twice L2
    samples: dict[str, list[float]] = {f: [] for f in calls}
    for call in calls.values():
        call()  # lazy set-up
    start, rounds, taking = time.perf_counter(), 0, dict(calls)
    while rounds < 5 or (time.perf_counter() - start < min_time * len(taking) and rounds < 200):
        rounds += 1
        for f, call in taking.items():
            scratch.fill(1.0)
            t0 = time.perf_counter()
            call()
            samples[f].append(time.perf_counter() - t0)
        if rounds == OUTPACED_ROUNDS:
            fastest = min(min(v) for v in samples.values())
            taking = {f: call for f, call in taking.items() if min(samples[f]) <= OUTPACED * fastest}
    return {f: summarize(v).median * 1e6 for f, v in samples.items()}


def memory_levels(caches: Sequence[float], rate: Callable[[float], float]) -> list[tuple[float, float]]:
    """(weight bytes, bytes per µs) points of CostModel.memory: `rate(size)`, the streaming rate of a
    weight of that many bytes, at sizes doubling from twice the smallest of `caches` (bytes from level
    2 up, ascending) to at least twice the largest (DRAM), led by the smallest cache at the first rate.
    Doubling, because the rate falls along the sizes, not at a cache's nominal size: on the Ice Lake
    VM (sysfs: 1.25 MiB L2, 48 MiB L3) dense weights streamed at 27-29 GB/s up to 9.4 MB and at 15 from
    21 MB on, and pricing every weight past the geometric middle of 2.5 and 24 MiB at the 24 MiB rate
    put BERT's 768 × 3,072 layer (9.4 MB) at 677 µs at batch 4, where it ran in 393."""
    if not caches:
        return []
    sizes = [2 * caches[0]]
    while sizes[-1] < 2 * caches[-1]:
        sizes.append(2 * sizes[-1])
    points = [(size, rate(size)) for size in sizes]
    return [(caches[0], points[0][1])] + points


def _memory_rates(threads: int, min_time: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """memory_levels of this machine's caches, timed with the dense kernel at one row (one weight at a
    time: the rate is what a weight of each size gets from the memory it lives in)."""
    def rate(size: float) -> float:
        cols = 4096
        rows = max(16, int(round(size / (4 * cols) / 16)) * 16)
        weight = formats.pack(rng.standard_normal((rows, cols), dtype=np.float32), "dense")
        x = rng.standard_normal((1, cols), dtype=np.float32)
        return 4.0 * rows * cols / _undisturbed_in_turns([_linear_call(weight, x, threads)], threads, min_time)[0]

    return memory_levels(cache_sizes(), rate)


__all__ = ["ConvShape", "CostModel", "FORMATS", "Fit", "OUTPACED", "OUTPACED_ROUNDS", "conv_features", "cache_path", "cache_sizes", "calibrate", "memory_levels", "stored_and_units", "time_formats", "weight_bytes"]
