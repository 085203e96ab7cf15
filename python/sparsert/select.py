"""Per-layer format choice.

For each weight: measure its structure (density, whether it satisfies N:M, the fill each BSR block
shape would pay, how uniform the rows are), list every format that can hold it, and let the cost
model (`cost.py`, calibrated by timing the real kernels on this machine) predict each one's time at
the rows the layer will see (the batch for a linear layer, batch × output pixels for a convolution).
The fastest prediction wins; no density threshold decides. Every choice carries its reason and the
predicted times of all candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

import numpy as np

from . import cost, formats

BSR_BLOCKS = [(1, 4), (4, 1), (4, 4), (8, 1), (16, 1), (1, 8)]
NM_PATTERNS = [(2, 4), (1, 4), (4, 8)]

FormatSpec = Union[str, None]
# formats= of sparsert.load: "auto", "predicted", one spelling for every layer, or {layer name: spelling}.
FormatsArg = Union[str, Mapping[str, str], None]
# The cost model's choice alone, with no close call timed: the same formats on every load, and no
# timing at load (a few hundredths of a second per close call otherwise).
PREDICTED = "predicted"


def automatic(spelling: FormatSpec) -> bool:
    """Whether a layer's formats= spelling leaves the choice to sparsert ("auto", "predicted" or None)."""
    return spelling in (None, "auto", PREDICTED)


def group_spelling(spelling: FormatSpec, groups: int) -> FormatSpec:
    """The spelling each group's weight of a layer with `groups` weights is chosen by: a grouped
    convolution's groups (up to thousands of tiny weights) are not timed one by one."""
    return PREDICTED if groups > 1 and spelling in (None, "auto") else spelling


@dataclass
class Structure:
    shape: tuple[int, int]
    density: float
    nm: tuple[int, int] | None  # the sparsest N:M pattern the weight satisfies
    bsr_fill: dict[tuple[int, int], float]  # stored values ÷ non-zeros per block shape
    row_nnz_cv: float  # coefficient of variation of non-zeros per row
    input_zero_fraction: float = 0.0  # zeros in the layer's input, measured on the example (CSC skips them)
    conv: cost.ConvShape | None = None  # a convolution's images and window (None: a linear layer)


@dataclass
class Choice:
    layer: str
    format: str  # "dense", "csr", "bsr4x4", "nm2:4", ...
    reason: str
    structure: Structure
    times_us: dict[str, float]  # candidate → predicted µs per call at `rows`
    rows: int
    nbytes: int = 0  # bytes of the packed weight in the chosen format
    measured_us: dict[str, float] = field(default_factory=dict)  # the close calls timed (`settle`) → µs

    @property
    def speedup(self) -> float:
        """Speed-up of the chosen format over the dense path: measured where the choice was timed, else predicted."""
        times = self.measured_us or self.times_us
        return times["dense"] / times[self.format] if self.format in times else 1.0


def nm_pattern(w: np.ndarray) -> tuple[int, int] | None:
    """The sparsest of NM_PATTERNS that `w` satisfies (at most N non-zeros in every group of M
    consecutive inputs of a row, a shorter last group included), or None."""
    rows, cols = w.shape
    nz = w != 0
    for n, m in sorted(NM_PATTERNS, key=lambda p: p[0] / p[1]):
        groups = np.pad(nz, ((0, 0), (0, (-cols) % m))).reshape(rows, -1, m).sum(axis=2)
        if rows * cols and int(groups.max(initial=0)) <= n:
            return n, m
    return None


def analyse(w: np.ndarray, input_zero_fraction: float = 0.0, conv: cost.ConvShape | None = None) -> Structure:
    rows, cols = w.shape
    nz = w != 0
    nnz = int(nz.sum())
    density = nnz / max(rows * cols, 1)
    nm = nm_pattern(w)
    fill = {}
    for br, bc in BSR_BLOCKS:
        padded = np.pad(nz, ((0, (-rows) % br), (0, (-cols) % bc)))
        blocks = padded.reshape(padded.shape[0] // br, br, padded.shape[1] // bc, bc).any(axis=(1, 3)).sum()
        fill[(br, bc)] = float(blocks * br * bc) / max(nnz, 1)
    per_row = nz.sum(axis=1)
    cv = float(per_row.std() / per_row.mean()) if rows and per_row.mean() > 0 else 0.0
    return Structure((rows, cols), density, nm, fill, cv, input_zero_fraction, conv)


def candidates(s: Structure) -> list[str]:
    """Every format that can hold a weight of this structure."""
    out = ["dense", "csr", "csc"] + [f"bsr{r}x{c}" for r, c in BSR_BLOCKS]
    if s.nm is not None:
        out.append(f"nm{s.nm[0]}:{s.nm[1]}")
    return out


def stored_and_units(s: Structure, fmt: str) -> tuple[float, float]:
    """(values stored, structural units) of `fmt` for a weight of structure `s`: the cost model's s and B."""
    out, cols = s.shape
    nnz = int(round(s.density * out * cols))
    nblocks = None
    block = formats.parse(fmt).block
    if block is not None:
        nblocks = int(round(s.bsr_fill[block] * nnz / (block[0] * block[1])))
    return cost.stored_and_units(fmt, out, cols, nnz, nblocks, s.input_zero_fraction)


def predict(model: cost.CostModel, s: Structure, fmt: str, rows: int) -> float:
    """Predicted µs per call of `fmt` for a weight of structure `s` at `rows` rows (a convolution's
    rows are its output pixels, which `s.conv` holds with the rest of its shape)."""
    if s.conv is not None:
        return model.predict_conv(fmt, s.conv, *stored_and_units(s, fmt))
    return model.predict(fmt, rows, *stored_and_units(s, fmt))


# How much faster than dense a sparse format must be predicted to be chosen: the fits are good to
# 10-20%, and a close call that goes the wrong way makes the layer slower than its dense path (at 30-50%
# unstructured, bsr16x1 predicted 0.2-3% faster ran 15-29% slower; `kernels.py --densities 0.5,0.3`).
CHOICE_MARGIN = 1.1


def eligible(s: Structure, fmt: str, times: dict[str, float]) -> bool:
    """Whether `fmt` may be chosen for a weight of structure `s` given every candidate's predicted µs:
    dense always; a sparse format when predicted CHOICE_MARGIN faster than dense and storing fewer
    than every entry ÷ CHOICE_MARGIN values, since no sparse kernel runs its values faster than the
    dense kernel runs all of them (at 2 threads the fits put bsr4x4 on a 50% weight, every block
    filled, 1.25x ahead of a dense kernel that ran 1.1-1.2x faster)."""
    if fmt == "dense":
        return True
    every_entry = s.shape[0] * s.shape[1]
    return times[fmt] * CHOICE_MARGIN < times["dense"] and stored_and_units(s, fmt)[0] * CHOICE_MARGIN < every_entry


# Eligible formats predicted within this factor of the fastest are a tie, which the smaller weight wins:
# the fits cannot tell them apart (a 90% 768x3072 weight: CSR, bsr4x4 and bsr16x1 all predicted 65 µs
# at batch 1, where CSR, 1.4 MB, ran 72 µs and bsr4x4, 7.7 MB at 8x fill, 88 µs), and fewer bytes leave
# more cache to the rest of the model.
TIE = 1.05


def stored_bytes(s: Structure, fmt: str) -> float:
    """Bytes of a weight of structure `s` packed in `fmt` (the cost model's estimate)."""
    return cost.weight_bytes(fmt, *stored_and_units(s, fmt))


def fastest(model: cost.CostModel, s: Structure, rows: int) -> tuple[str, dict[str, float]]:
    """The eligible format predicted fastest for a weight of structure `s` at `rows` rows (of those
    within TIE of the fastest, the one storing fewest bytes), and the predicted µs of every candidate.
    The one rule for automatic choice: `choose` and the pruning planner use it."""
    times = {fmt: predict(model, s, fmt, rows) for fmt in candidates(s)}
    allowed = [f for f in times if eligible(s, f, times)]
    best = min(times[f] for f in allowed)
    return min((f for f in allowed if times[f] <= best * TIE), key=lambda f: (stored_bytes(s, f), times[f])), times


# Formats predicted within CLOSE of the fastest are timed on the layer's own weight at its rows
# (`settle`): the fits are good to 10-20%, and close calls went the wrong way. At batch 64-128 they put
# 2:4 6-10% ahead of dense on BERT's shapes, under CHOICE_MARGIN, where it ran 13-16% ahead; at batch 1,
# bsr16x1 10% ahead of CSR on 10% weights, where it ran 7-17% behind (`bench/kernels.py --densities
# 2:4,0.1 --batches 1,8,64,128`: 7 of 32 automatic choices over 5% behind the fastest format).
CLOSE = 1.25
# A convolution is always timed, dense against the best predicted sparse formats: its fit weighs a few
# calibration shapes and strays beyond them. MobileNetV2's first 1 × 1 expansion (16 → 64 channels
# at 112², 11% dense) was predicted 2.3× faster in nm4:8 than dense and ran 2.9× slower.
CLOSE_CONV = math.inf
# A weight whose dense time is predicted by its memory roofline (streamed past the caches every call) is
# timed when within this: the roofline prices every format at the rate measured for dense, and sparse
# formats stream slower. On an Intel host (17 GB/s past a 2 MiB L2), a 50% 4,096² weight at batch 1
# was predicted 2,951 µs in CSR and 3,934 dense (1.33x), and ran 3,995-4,210 against 2,886-3,580.
CLOSE_STREAMED = 1.5
CLOSE_SPARSE = 3  # sparse formats timed at most, the best predicted, beside dense
# A sparse format must run this much faster than dense, measured: interleaved medians of one layer
# differ by 1-2% from run to run.
MEASURED_MARGIN = 1.03
# Close calls are timed at no more rows than this: beyond a few tiles of 64 rows the batched kernels
# repeat tile by tile, so more rows rank the formats alike, and BERT-2 at batch 32 (4,096 rows a
# layer) took 9.0 s to load timed at all of them.
SETTLE_ROWS = 512


def close_calls(s: Structure, times: dict[str, float], streamed: bool = False) -> list[str]:
    """The formats `settle` times for a weight of structure `s` given every candidate's predicted µs:
    dense and the sparse formats predicted within CLOSE (a convolution's: CLOSE_CONV; a weight whose
    dense time is its streaming time, `streamed`: CLOSE_STREAMED) of the fastest (that store fewer
    values than every entry ÷ CHOICE_MARGIN, as `eligible` asks); none when the prediction is clear, a
    single format within that window of the fastest."""
    every_entry = s.shape[0] * s.shape[1]
    sparse = [f for f in times if f != "dense" and stored_and_units(s, f)[0] * CHOICE_MARGIN < every_entry]
    best = min([times["dense"]] + [times[f] for f in sparse])
    window = CLOSE_CONV if s.conv is not None else CLOSE_STREAMED if streamed else CLOSE
    close = sorted((f for f in sparse if times[f] <= best * window), key=times.get)[:CLOSE_SPARSE]
    dense_close = times["dense"] <= best * window
    return ["dense"] + close if close and (dense_close or len(close) > 1) else []


def settle(w: np.ndarray, s: Structure, rows: int, timed: list[str], threads: int) -> tuple[str, dict[str, float], Any]:
    """The fastest of the formats `timed` (dense among them), measured on the weight `w` itself at
    `rows` rows, at most SETTLE_ROWS (a convolution on one image), on `threads` threads; a sparse one
    only when MEASURED_MARGIN faster than dense. Returns it, the µs measured and its packed weight."""
    packed = {f: formats.pack(w, f) for f in timed}
    measured = cost.time_formats(packed, min(rows, SETTLE_ROWS), s.conv, s.input_zero_fraction, threads)
    best = measured_choice(measured)
    return best, measured, packed[best]


def measured_choice(measured: dict[str, float]) -> str:
    """settle's rule on measured µs (dense among them): the fastest format, a sparse one only when
    MEASURED_MARGIN faster than dense."""
    allowed = [f for f in measured if f == "dense" or measured[f] * MEASURED_MARGIN < measured["dense"]]
    return min(allowed, key=measured.__getitem__)


def choose(layer: str, w: np.ndarray, rows: int, model: cost.CostModel, forced: FormatSpec = None,
           input_zero_fraction: float = 0.0, conv: cost.ConvShape | None = None) -> tuple[Choice, Any]:
    """Picks the format for one weight whose input has `input_zero_fraction` zeros, of a
    convolution of shape `conv` or a linear layer (None); returns the choice and the packed weight.
    `forced`: a format spelling, or an automatic one (`automatic`): "auto" and None time the close
    calls, PREDICTED takes the cost model's choice alone."""
    s = analyse(w, input_zero_fraction, conv)
    best, times = fastest(model, s, rows)
    if not automatic(forced):
        fmt = forced
        if fmt == "nm":
            fmt = f"nm{s.nm[0]}:{s.nm[1]}" if s.nm is not None else "nm2:4"
        elif fmt == "bsr":
            fmt = "bsr4x4"
        try:
            formats.parse(fmt)
        except ValueError as e:
            raise ValueError(f"layer '{layer}': formats='{forced}' is neither 'auto', '{PREDICTED}' nor a format: {e}") from None
        try:
            packed = formats.pack(w, fmt)
        except ValueError as e:
            raise ValueError(f"layer '{layer}': format '{forced}' cannot hold this weight: {e}") from None
        return Choice(layer, fmt, "forced by formats=", s, times, rows, packed.nbytes), packed
    streamed = s.conv is None and model.streaming_us("dense", *stored_and_units(s, "dense")) >= times["dense"]
    timed = close_calls(s, times, streamed) if forced != PREDICTED else []
    measured: dict[str, float] = {}
    packed = None
    if timed:
        best, measured, packed = settle(w, s, rows, timed, model.threads)
        reason = (f"measured fastest of the close calls at {min(rows, SETTLE_ROWS)} rows: "
                  + ", ".join(f"{f} {measured[f]:.1f}" for f in timed) + f" µs (predicted at {rows} rows "
                  + ", ".join(f"{times[f]:.1f}" for f in timed) + "; ")
    else:
        reason = f"predicted fastest of {len(times)} at {rows} rows: {times[best]:.1f} µs vs dense {times['dense']:.1f} µs ("
    block = formats.parse(best).block
    reason += (f"density {s.density:.3f}" + (f", {best[3:]} fill {s.bsr_fill[block]:.2f}" if block else "")
               + (f", inputs {s.input_zero_fraction:.0%} zero" if best == "csc" else "") + ")")
    packed = packed if packed is not None else formats.pack(w, best)
    return Choice(layer, best, reason, s, times, rows, packed.nbytes, measured), packed


def choose_formats(graph: Any, formats: FormatsArg, threads: int,
                   zeros: Mapping[str, float]) -> tuple[dict[str, list[Any]], list[Choice]]:
    """A format per weight of an importer.IRGraph (select sits below the importer, which calls it):
    `formats` "auto", "predicted", one spelling for every layer, or {layer: spelling}; `zeros` the input zero
    fraction of each linear node's input. Returns the packed weights per node output and the choices,
    in node order."""
    model = cost.calibrate(threads)
    weights: dict[str, list[Any]] = {}
    plan: list[Choice] = []
    names = {n.name for n in graph.nodes if n.weights}
    if isinstance(formats, Mapping):
        unknown = sorted(set(formats) - names)
        if unknown:
            raise ValueError(f"formats= names layers {unknown} that have no weight (expected some of {sorted(names)})")
    for n in graph.nodes:
        if not n.weights:
            continue
        forced = group_spelling(formats.get(n.name) if isinstance(formats, Mapping) else formats, len(n.weights))
        packed = []
        for g, w in enumerate(n.weights):
            layer = n.name if len(n.weights) == 1 else f"{n.name}[group {g}]"
            zero_fraction = zeros.get(n.inputs[0], 0.0) if n.op == "linear" else 0.0
            choice, weight = choose(layer, w, n.rows, model, forced, zero_fraction, n.conv)
            plan.append(choice)
            packed.append(weight)
        weights[n.output] = packed
    return weights, plan


__all__ = ["BSR_BLOCKS", "CHOICE_MARGIN", "CLOSE", "CLOSE_CONV", "CLOSE_STREAMED", "Choice", "MEASURED_MARGIN", "PREDICTED", "SETTLE_ROWS", "automatic", "close_calls", "group_spelling", "measured_choice", "settle", "FormatsArg", "Structure", "analyse", "candidates", "choose", "choose_formats", "eligible", "fastest", "nm_pattern", "stored_bytes", "TIE",
           "predict", "stored_and_units"]
