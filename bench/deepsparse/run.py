#!/usr/bin/env python3
"""DeepSparse's side of bench/kernels.py and bench/models.py: run with the DeepSparse venv's python
(bench/deepsparse/setup.sh), never with the main environment, and with NM_DISABLE_ANALYTICS=1.

    NM_DISABLE_ANALYTICS=1 ~/.cache/sparsert/deepsparse-venv/bin/python bench/deepsparse/run.py MANIFEST OUT.jsonl

The benches write MANIFEST (and the files it names, beside it) and call this themselves with
`--deepsparse PYTHON`. For each case it compiles the ONNX graph with `deepsparse.compile_model(path,
batch_size=B, num_cores=T)`, builds torch dense on the same weights (a linear case: F.linear with W and
b read from the graph's initializers; a model case: the bench/model_zoo.py module with the bench's
state dict, in eager mode), checks DeepSparse's output against torch, and times both side by side,
each in a block of its own, alternating (sparsert._timing.time_blocks, loaded from the source tree by
path: sparsert itself is not installed here). One JSON line per case goes to OUT.jsonl: DeepSparse's
and torch dense's Timing, their ratio, the relative error, or the error that stopped the case.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))  # model_zoo


def load_timing():
    """sparsert._timing from the source tree: the same method as the main process, stdlib only."""
    path = REPO / "python" / "sparsert" / "_timing.py"
    spec = importlib.util.spec_from_file_location("sparsert_timing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    y64, ref64 = np.asarray(y, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(y64 - ref64) / max(np.linalg.norm(ref64), 1e-30))


def torch_linear(folder: Path, case: dict):
    import onnx
    from onnx import numpy_helper

    init = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(folder / case["onnx"])).graph.initializer}
    w = torch.from_numpy(np.ascontiguousarray(init["wt"].T))
    b = torch.from_numpy(init["bias"].copy())
    x = torch.from_numpy(np.load(folder / case["x"]))
    return lambda: F.linear(x, w, b), x.numpy()


def torch_model(folder: Path, case: dict):
    import model_zoo

    model = model_zoo.MODELS[case["model"]]()
    model.load_state_dict(torch.load(folder / case["state_dict"]))
    model.eval()
    x = torch.from_numpy(np.load(folder / case["x"]))

    def eager():
        with torch.no_grad():
            return model(x)

    return eager, x.numpy()


def main(argv) -> int:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    manifest_path, out_path = Path(argv[0]), Path(argv[1])
    manifest = json.loads(manifest_path.read_text())
    folder = manifest_path.parent
    timing = load_timing()
    import deepsparse
    from deepsparse import compile_model

    print(f"deepsparse {deepsparse.__version__}, torch {torch.__version__}, numpy {np.__version__}; "
          f"NM_DISABLE_ANALYTICS={os.environ.get('NM_DISABLE_ANALYTICS', '(unset)')}", flush=True)
    build_torch = torch_linear if manifest["kind"] == "kernels" else torch_model
    failed = 0
    with open(out_path, "w") as out:
        for case in manifest["cases"]:
            rec = {"key": case["key"], "deepsparse_version": deepsparse.__version__}
            started = time.perf_counter()
            try:
                threads, batch = case["threads"], case["batch"]
                torch.set_num_threads(threads)
                dense, x = build_torch(folder, case)
                engine = compile_model(str(folder / case["onnx"]), batch_size=batch, num_cores=threads)
                rec["compile_s"] = time.perf_counter() - started
                rec["supported_ops"] = getattr(engine, "fraction_of_supported_ops", None)
                inputs = [np.ascontiguousarray(x)]
                ref = dense().numpy()
                rec["rel_err"] = rel_err(engine.run(inputs)[0], ref)
                if not rec["rel_err"] <= manifest["max_rel_err"]:
                    raise ValueError(f"output differs from torch: relative error {rec['rel_err']:.2e} "
                                     f"(expected <= {manifest['max_rel_err']:g})")
                t = timing.time_blocks([{"torch_dense": dense}, {"deepsparse": lambda: engine.run(inputs)}],
                                       min_time=manifest["min_time"], min_calls=manifest["min_calls"])
                rec["timings_s"] = {n: {"median": v.median, "p10": v.p10, "p90": v.p90, "calls": v.calls}
                                    for n, v in t.items()}
                rec["speedup_vs_torch_dense"] = t["torch_dense"].median / t["deepsparse"].median
                engine = None  # free it before the next compile
                print(f"  {case['key']}: deepsparse {t['deepsparse'].median * 1e6:,.1f} µs, torch dense "
                      f"{t['torch_dense'].median * 1e6:,.1f} µs ({rec['speedup_vs_torch_dense']:.2f}x), "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
            except Exception as exc:  # one case's failure is reported, the others still run
                failed += 1
                rec["error"] = f"{type(exc).__name__}: {exc}"
                print(f"  {case['key']}: {rec['error']}", file=sys.stderr, flush=True)
                traceback.print_exc(limit=2, file=sys.stderr)
            out.write(json.dumps(rec) + "\n")
            out.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
