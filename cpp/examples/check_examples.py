"""Runs the C and C++ examples on a model written by Python and checks that they print what Python's
run of the same file gives (used by .ci/run):

    python3 cpp/examples/check_examples.py WORK_DIR EXAMPLE_BINARY...

Writes WORK_DIR/mlp.sprt (a small pruned torch MLP through sparsert.load(...).save(...)) and
WORK_DIR/inputs.f32 (a batch of 5 items), runs sparsert.load("mlp.sprt") on them, and formats each
item's top-5 as the examples do (best first, the lower class first on ties, 9 significant digits).
Every `item` line of every example must equal Python's exactly: the examples and the extension run
the same kernels on the same file, so their scores agree to the bit. Exit status 1 on any
difference, with both lines shown.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def write_model(work: Path) -> tuple[Path, Path]:
    import torch

    import sparsert

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
    with torch.no_grad():  # 80% of each weight pruned by magnitude
        for layer in (mlp[0], mlp[2]):
            w = layer.weight
            w[w.abs() <= w.abs().flatten().kthvalue(int(0.8 * w.numel())).values] = 0
    model_path, inputs_path = work / "mlp.sprt", work / "inputs.f32"
    sparsert.load(mlp, example_inputs=(torch.randn(2, 64),)).save(model_path)
    np.random.default_rng(0).standard_normal((5, 64), dtype=np.float32).tofile(inputs_path)
    return model_path, inputs_path


def expected_lines(model_path: Path, inputs_path: Path) -> list[str]:
    import sparsert

    model = sparsert.load(model_path)
    x = np.fromfile(inputs_path, dtype=np.float32).reshape(-1, 64)
    scores = model.run(x)
    lines = []
    for i, row in enumerate(scores):
        top = np.argsort(-row, kind="stable")[:5]  # stable: the lower class first on ties
        lines.append(f"item {i}:" + "".join(f" {c}={float(row[c]):.9g}" for c in top))
    return lines


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    model_path, inputs_path = write_model(work)
    want = expected_lines(model_path, inputs_path)
    failed = False
    for binary in sys.argv[2:]:
        run = subprocess.run([binary, str(model_path), str(inputs_path)], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"{binary}: exit status {run.returncode}\n{run.stderr}", file=sys.stderr)
            failed = True
            continue
        got = [line for line in run.stdout.splitlines() if line.startswith("item ")]
        latency = [line for line in run.stdout.splitlines() if line.startswith("latency:")]
        if got != want:
            failed = True
            print(f"{binary}: output differs from Python's run", file=sys.stderr)
            for g, w in zip(got + [""] * len(want), want + [""] * len(got)):
                if g != w:
                    print(f"  got      {g!r}\n  expected {w!r}", file=sys.stderr)
        else:
            print(f"{Path(binary).name}: {len(got)} items equal Python's run; {latency[0] if latency else 'no latency line'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
