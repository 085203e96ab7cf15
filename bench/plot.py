#!/usr/bin/env python3
"""Speed-up vs density, one line per tool, at batch 1 and 64: the figure of bench/README.md.

Drawn from bench/kernels.py's records (its --plot does this at the end of a run; this command redraws
from a saved --jsonl file). One panel per weight shape and thread count (rows) and batch (columns:
1 and 64, or the smallest and largest batch the run has when it lacks them). The x axis is the density
of the unstructured patterns (u1.0 ... u0.05), log scale; the y axis the speed-up over the best dense
tool of the same case (the faster of torch dense and onnxruntime dense), log scale, so 1 = as fast as
dense. DeepSparse's points are its speed-up over torch dense measured in its own process, carried
over (see kernels.py, `deepsparse_seconds`). sparsert auto's points on structured patterns (2:4,
blocks) are drawn as labelled markers at their density.

    python bench/plot.py bench/results/kernels.jsonl bench/results/kernels.png

matplotlib is an optional bench extra (pip install ".[bench]").
"""

from __future__ import annotations

import json
import sys
from typing import Dict, List, Optional, Sequence

LINES = [  # (record key, label, style)
    ("sr_auto", "sparsert auto", dict(color="C3", marker="o", linewidth=2.2)),
    ("sr_csr", "sparsert CSR", dict(color="C3", marker=".", linestyle=":", linewidth=1.2)),
    ("torch_csr", "torch CSR (int32)", dict(color="C0", marker="s")),
    ("deepsparse", "DeepSparse 1.8", dict(color="C2", marker="^")),
    ("ort_dense", "onnxruntime dense", dict(color="C1", marker="x", linestyle="--")),
    ("torch_dense", "torch dense", dict(color="C7", marker="+", linestyle="--")),
]
STRUCTURED_MARKERS = {"nm": "D", "block": "P"}


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("--plot needs matplotlib, an optional bench extra (pip install \".[bench]\")")


def pick_batches(batches: Sequence[int]) -> List[int]:
    want = [b for b in (1, 64) if b in batches]
    if len(want) == 2 or not batches:
        return want
    return sorted({min(batches), max(batches)})


def plot_kernels(records: List[dict], path: str, title: str = "") -> None:
    """Renders the records of one kernels.py run to a PNG at `path`."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    records = [r for r in records if r.get("vs_best_dense")]
    batches = pick_batches(sorted({r["batch"] for r in records}))
    rows = sorted({(tuple(r["shape"]), r["threads"]) for r in records})
    if not rows or not batches:
        raise SystemExit("plot: no timed cases to draw")
    densities = sorted({r["density"] for r in records})
    fig, axes = plt.subplots(len(rows), len(batches), figsize=(5.2 * len(batches), 3.3 * len(rows) + 0.9),
                             squeeze=False, layout="constrained")
    times_x = ticker.FuncFormatter(lambda v, _: f"{v:g}x")
    # label 2, 3 and 5 of each decade, not every minor tick
    some_x = ticker.FuncFormatter(lambda v, _: f"{v:g}x" if f"{v:.1e}"[0] in "235" else "")
    handles: Dict[str, object] = {}
    for i, (shape, threads) in enumerate(rows):
        for j, batch in enumerate(batches):
            ax = axes[i][j]
            case = [r for r in records if tuple(r["shape"]) == shape and r["threads"] == threads and r["batch"] == batch]
            unstructured = sorted((r for r in case if r["pattern"] == "u"), key=lambda r: r["density"])
            for key, label, style in LINES:
                pts = [(r["density"], r["vs_best_dense"][key]) for r in unstructured
                       if key in r["vs_best_dense"] and r["vs_best_dense"][key] > 0]
                if pts:
                    (line,) = ax.plot(*zip(*pts), label=label, **style)
                    handles.setdefault(label, line)
            labelled: Dict[float, int] = {}
            for r in case:
                speedup = r["vs_best_dense"].get("sr_auto")
                if r["pattern"] in STRUCTURED_MARKERS and speedup:
                    nth = labelled[r["density"]] = labelled.get(r["density"], -1) + 1  # stack labels at one density
                    h = ax.scatter([r["density"]], [speedup], marker=STRUCTURED_MARKERS[r["pattern"]], s=46,
                                   color="C3", edgecolors="black", linewidths=0.6, zorder=5)
                    ax.annotate(r["config"], (r["density"], speedup), textcoords="offset points", xytext=(6, -3 - 9 * nth),
                                fontsize=7)
                    handles.setdefault("sparsert auto, structured pattern", h)
            ax.axhline(1.0, color="black", linewidth=0.6)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(min(densities) / 1.3, max(densities) * 1.3)
            ax.xaxis.set_major_locator(ticker.FixedLocator(densities))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.yaxis.set_major_formatter(times_x)
            ax.yaxis.set_minor_formatter(some_x)
            ax.tick_params(axis="y", which="minor", labelsize=7)
            ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
            ax.set_title(f"W {shape[0]}x{shape[1]}, batch {batch}, {threads} thread{'s' if threads > 1 else ''}",
                         fontsize=10)
            if i == len(rows) - 1:
                ax.set_xlabel("density (lines: unstructured; markers: structured patterns)")
            if j == 0:
                ax.set_ylabel("speed-up vs best dense")
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside upper center", ncol=4, fontsize=9,
               frameon=False, title=title or None, title_fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(__doc__)
    with open(argv[0]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    plot_kernels(records, argv[1], title=argv[0])
    print(f"plot: {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
