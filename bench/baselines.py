"""The tools the benches compare sparsert with, beside torch: onnxruntime dense (optional, in the bench's
own process) and DeepSparse 1.8 (in its own virtual environment and process, bench/deepsparse/).

onnxruntime: `pip install ".[bench]"` brings it (and onnx, which builds the one-layer graphs); without
it the benches say so once and leave its columns empty. Its sessions get `intra_op_num_threads=T`,
`inter_op_num_threads=1` and every graph optimisation. Its idle worker threads spin for more than
20 ms after a call and slow the next torch call (the anchors' `ort_spin_test.py`), so it is always
timed in a block of its own (`sparsert._timing.time_blocks`).

DeepSparse: `bash bench/deepsparse/setup.sh` makes the venv; `--deepsparse VENV/bin/python` makes a
bench write each case's ONNX graph and inputs (and for models the state dict) to a work folder, then,
after its own sweep, run bench/deepsparse/run.py with that interpreter and `NM_DISABLE_ANALYTICS=1`.
The runner times DeepSparse and torch dense (the same weights, same threads) side by side in its
process and reports DeepSparse's time with its ratio to that torch dense; the bench merges it into its
table. Only one process runs at a time: the machine has 2 cores.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

BENCH = Path(__file__).resolve().parent
RUNNER = BENCH / "deepsparse" / "run.py"


def rel_err(y, ref) -> float:
    """‖y − ref‖ / ‖ref‖ in float64, for numpy arrays or CPU tensors; inf where the shapes differ."""
    y64, ref64 = np.asarray(y, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if y64.shape != ref64.shape:
        return float("inf")
    return float(np.linalg.norm(y64 - ref64) / max(float(np.linalg.norm(ref64)), 1e-30))


# --- onnxruntime ---------------------------------------------------------------------------------

def add_tool_options(parser, workdir_help: str) -> None:
    """The options kernels.py and models.py share: DeepSparse, onnxruntime, the machine limits."""
    parser.add_argument("--deepsparse", metavar="PYTHON",
                        help="DeepSparse venv's python (bash bench/deepsparse/setup.sh): time DeepSparse too, "
                        "in its own process after the sweep, and merge it into the table")
    parser.add_argument("--deepsparse-workdir", metavar="DIR", help=workdir_help)
    parser.add_argument("--no-ort", action="store_true", help="leave onnxruntime out even when installed")
    parser.add_argument("--refresh-machine", action="store_true",
                        help="measure bandwidth and peak again (bench/machine.py) instead of reading the cache")


def ort_missing() -> Optional[str]:
    """None when onnxruntime and onnx import, else the note to print."""
    missing = []
    for mod in ("onnxruntime", "onnx"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        return (f"{' and '.join(missing)} not installed: onnxruntime columns left empty "
                "(pip install \".[bench]\" adds them)")
    return None


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def linear_onnx(w: np.ndarray, b: np.ndarray) -> bytes:
    """ONNX graph y = MatMul(x, Wᵀ) + b, weights as initializers, batch dimension dynamic: the anchors'
    one-layer model, which onnxruntime and DeepSparse both run. x is named "input", y "output"."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out_f, in_f = w.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "wt"], ["xw"]), helper.make_node("Add", ["xw", "bias"], ["output"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", in_f])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", out_f])],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(w.T, dtype=np.float32), "wt"),
                     numpy_helper.from_array(np.asarray(b, dtype=np.float32), "bias")],
    )
    # opset 13 and IR 8 so that the onnx<1.15 of DeepSparse's venv reads it too
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ort_session(model, threads: int):
    """An onnxruntime CPU session for `model` (ONNX bytes or a path) at `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def ort_call(session, x: np.ndarray) -> Callable[[], np.ndarray]:
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(x)}
    return lambda: session.run(None, feed)[0]


# --- DeepSparse ----------------------------------------------------------------------------------

class DeepSparseJob:
    """Cases for DeepSparse's runner: files in a work folder, a manifest, then one run of the runner.

    `python` is the DeepSparse venv's interpreter. The work folder is a fresh temporary one unless
    `workdir` is given; it is removed after `run` unless `keep` (ONNX graphs of big layers take space:
    64 MiB per 4096×4096 weight).
    """

    def __init__(self, python: str, kind: str, workdir: Optional[str] = None, keep: bool = False):
        self.python, self.kind, self.keep = python, kind, keep or workdir is not None
        self.version = self._probe()
        if workdir:
            os.makedirs(workdir, exist_ok=True)
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="sparsert-ds-"))
        self.cases: List[dict] = []
        if not self.keep:  # also when the sweep stops early (an error, ^C): the graphs take space
            atexit.register(shutil.rmtree, self.dir, True)

    def _probe(self) -> str:
        try:
            import onnx  # noqa: F401  (the graphs are written in this process)
        except ImportError:
            raise SystemExit("--deepsparse: onnx is not installed here, and the bench writes DeepSparse's "
                             "ONNX graphs in its own process (pip install \".[bench]\")")
        if not os.path.isfile(self.python):
            raise SystemExit(f"--deepsparse: {self.python} is not a file "
                             "(expected the venv's python, made by: bash bench/deepsparse/setup.sh)")
        code = "import deepsparse, torch, onnx; print(deepsparse.__version__, torch.__version__)"
        proc = subprocess.run([self.python, "-c", code], env=self._env(), capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"--deepsparse: {self.python} cannot import deepsparse, torch and onnx: {tail} "
                             "(expected a venv made by: bash bench/deepsparse/setup.sh)")
        ds, torch_v = proc.stdout.split()[-2:]
        return f"deepsparse {ds} (torch {torch_v} in its process)"

    @staticmethod
    def _env() -> Dict[str, str]:
        env = dict(os.environ)
        env["NM_DISABLE_ANALYTICS"] = "1"  # no network here; and no usage reports from a bench
        return env

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def save(self, name: str, data) -> str:
        """Writes ONNX bytes, a NumPy array or a torch state dict under the work folder; returns the name."""
        target = self.dir / name
        if isinstance(data, bytes):
            target.write_bytes(data)
        elif isinstance(data, np.ndarray):
            np.save(target, data)
        else:
            import torch

            torch.save(data, target)
        return name

    def add(self, key: str, **case) -> None:
        self.cases.append(dict(key=key, **case))

    def run(self, min_time: float, min_calls: int, max_rel_err: float) -> Dict[str, dict]:
        """Runs every case in DeepSparse's process (its output passes through); returns key -> record."""
        if not self.cases:
            return {}
        manifest = self.dir / "manifest.json"
        out = self.dir / "results.jsonl"
        manifest.write_text(json.dumps({"kind": self.kind, "min_time": min_time, "min_calls": min_calls,
                                        "max_rel_err": max_rel_err, "cases": self.cases}, indent=1))
        print(f"\nDeepSparse: {len(self.cases)} cases in its own process ({self.python})", flush=True)
        proc = subprocess.run([self.python, str(RUNNER), str(manifest), str(out)], env=self._env(),
                              stdout=sys.stdout, stderr=sys.stderr)
        records: Dict[str, dict] = {}
        if out.is_file():
            for line in out.read_text().splitlines():
                rec = json.loads(line)
                records[rec["key"]] = rec
        if proc.returncode != 0:
            print(f"DeepSparse: the runner exited {proc.returncode} after {len(records)} of "
                  f"{len(self.cases)} cases", file=sys.stderr)
        return records

    def close(self) -> None:
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print(f"DeepSparse work folder kept: {self.dir}")
