"""How far apart calibrations of the cost model land on this machine: runs `cost.calibrate` several
times, each into a fresh cache directory, and compares what each predicts for every sparse format
relative to dense on the same layer (what a format choice rests on), for every pair of runs.

    python bench/calibration_spread.py --runs 5 [--threads 1]

Prints per run its calibration time, and per pair of runs the mean and worst |log| of the ratio
between their relative predictions over all cells (linear layers 768 × 3,072, 3,072 × 768, 1,024²
and 512 × 4,608 at every calibrated row count; the calibration's convolutions), with the worst cell
named, then the mean and worst over all pairs. Each calibration takes 35-50 s on one thread.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import tempfile
import time

import sparsert
from sparsert import cost, formats

LAYERS = [(768, 3072), (3072, 768), (1024, 1024), (512, 4608)]
DENSITIES = (0.1, 0.3)  # of the formats that store what they are given (not dense, not N:M)


def _stored(fmt: str, rows: int, cols: int, density: float) -> tuple[float, float]:
    spec = formats.parse(fmt)
    if spec.kind == "nm":
        n, m = spec.nm
        return cost.stored_and_units(fmt, rows, cols, rows * cols * n // m)
    return cost.stored_and_units(fmt, rows, cols, int(rows * cols * density))


def _densities(fmt: str) -> tuple[float, ...]:
    return (1.0,) if formats.parse(fmt).kind in ("dense", "nm") else DENSITIES


def relative_predictions(model: cost.CostModel) -> dict[str, float]:
    """{cell: a sparse format's predicted µs ÷ dense's on the same layer, rows or convolution}."""
    out = {}
    for rows, cols in LAYERS:
        for r in cost.ROW_POINTS:
            dense = model.predict("dense", r, *_stored("dense", rows, cols, 1.0))
            for fmt in cost.FORMATS[1:]:
                for d in _densities(fmt):
                    out[f"{fmt} {rows}x{cols} {d} rows {r}"] = model.predict(fmt, r, *_stored(fmt, rows, cols, d)) / dense
    for cin, cout, k, stride, size in cost._CONV_CALIBRATION_SHAPES:
        pad = k // 2
        o = (size + 2 * pad - k) // stride + 1
        conv = cost.ConvShape(1, cin, cout, (size, size), (o, o), (k, k), (stride, stride), (pad, pad))
        dense = model.predict_conv("dense", conv, *_stored("dense", cout, cin * k * k, 1.0))
        for fmt in cost.FORMATS[1:]:
            for d in _densities(fmt):
                key = f"{fmt} conv {cin}->{cout} {k}x{k}/{stride} at {size}² {d}"
                out[key] = model.predict_conv(fmt, conv, *_stored(fmt, cout, cin * k * k, d)) / dense
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="calibrations (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="threads each calibration times (default 1)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error(f"--runs is {args.runs} (expected at least 2: the spread is between runs)")
    runs = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            os.environ["SPARSERT_CACHE_DIR"] = cache
            start = time.perf_counter()
            model = cost.calibrate(args.threads, refresh=True)
            print(f"run {i + 1}: calibrated in {time.perf_counter() - start:.1f} s", flush=True)
            runs.append(relative_predictions(model))
    means, worst = [], (0.0, "")
    for (i, a), (j, b) in itertools.combinations(enumerate(runs, 1), 2):
        logs = {cell: abs(math.log(b[cell] / a[cell])) for cell in a}
        cell = max(logs, key=logs.get)
        means.append(sum(logs.values()) / len(logs))
        worst = max(worst, (logs[cell], cell))
        print(f"runs {i} and {j}: mean {math.exp(means[-1]):.3f}x apart, worst {math.exp(logs[cell]):.2f}x ({cell})")
    print(f"sparsert {sparsert.__version__}, {args.threads} thread(s), {len(runs[0])} cells: over {len(means)} pairs "
          f"mean {math.exp(sum(means) / len(means)):.3f}x apart, worst {math.exp(worst[0]):.2f}x ({worst[1]})")


if __name__ == "__main__":
    main()
