"""The `sparsert` command: inspect, compile and bench models.

    sparsert compile pruned.pt2 -o model.sprt            # a torch.export archive
    sparsert compile sd.pt --model mypkg.nets:Net --input-shape 1,3,224,224 -o model.sprt
    sparsert inspect model.sprt
    sparsert bench model.sprt --batch 32 --threads 2
    sparsert bench pruned.sprt --dense dense.sprt --threads 1,2 --json   # load, latency, RSS, ratios
    sparsert serve model.sprt --replicas 2 --max-batch 32 --port 8000   # Ray Serve (sparsert[serve])
    sparsert export-triton model.sprt repo/ --max-batch 32 --instances 2   # Triton Python backend
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from typing import Any, Sequence

import numpy as np

from . import _core
from ._model import load


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape '{text}' is not a comma-separated list of sizes (e.g. 1,3,224,224)")
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"shape '{text}' has a size below 1")
    return dims


def _factory(spec: str) -> Any:
    module, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"sparsert: --model '{spec}' must be 'package.module:Name' (a class or a function)")
    return getattr(importlib.import_module(module), name)()


def _example_inputs(shapes: Sequence[tuple[int, ...]], dtype: str) -> tuple:
    import torch

    out = []
    for shape in shapes:
        out.append(torch.randint(0, 2, shape) if dtype == "i64" else torch.randn(*shape))
    return tuple(out)


def _formats(text: str | None) -> Any:
    if text is None:
        return "auto"
    if "=" not in text:
        return text
    pairs = dict(item.split("=", 1) for item in text.split(","))
    return pairs


def cmd_compile(args: argparse.Namespace) -> int:
    model = _factory(args.model) if args.model else None
    examples = _example_inputs(args.input_shape, args.input_dtype) if args.input_shape else None
    loaded = load(args.source, model=model, example_inputs=examples, formats=_formats(args.formats),
                  num_threads=args.threads, trusted=args.trusted)
    if not loaded.compiled:
        raise ValueError("this source is traced from an example input; pass --input-shape (e.g. 1,3,224,224)")
    loaded.save(args.output)
    print(loaded.summary())
    print(f"wrote {args.output}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    compiled = load(args.file)
    for name, dtype, shape in compiled.inputs:
        dims = ", ".join("batch" if d < 0 else str(d) for d in shape)
        print(f"input  {name}: {dtype} ({dims})")
    for name in compiled.outputs:
        print(f"output {name}")
    print(compiled.summary(batch=args.batch))
    return 0


def _progress(done: float, total: float) -> None:
    width = 30
    filled = int(width * min(done / total, 1.0))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {min(done / total, 1.0):4.0%}")
    sys.stderr.flush()


# `sparsert bench`: the fields and method of the C++ program sparsert-bench (cpp/tools/sparsert_bench.cpp),
# implemented here because the wheel installs the Python component only (pyproject.toml), without that
# program. Each (model, thread count) is measured in a fresh Python process (_bench_measure below): load
# time, the first run and peak RSS mean something only in a process that has loaded nothing else. That
# process's baseline is the interpreter with numpy and sparsert imported (some 40-60 MiB, reported as
# baseline_rss_mib), against sparsert-bench's few MiB, so peak RSS ratios here are closer to 1.
_BENCH_WARMUP_RUNS = 2
_BENCH_MIN_RUNS = 10
_BENCH_MAX_RUNS = 100_000
_BENCH_RATIOS = ("file_size", "load", "first_run", "p50", "p90", "p99", "peak_rss")


def _status_mib(field: str) -> float | None:
    """A field of /proc/self/status ("VmRSS", "VmHWM") in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def _max_rss_mib() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0  # bytes on macOS, KiB elsewhere


def _bench_inputs(inputs: Sequence[tuple], batch: int, seed: int) -> list:
    """Random inputs as sparsert-bench makes them: f32 N(0, 1), i64 ids in [0, 2) (valid for any embedding of
    two or more rows; a model file states no id limits), bool 0/1; a free dim 0 (-1) takes `batch`."""
    rng = np.random.default_rng(seed)
    out = []
    for _, dtype, shape in inputs:
        dims = [batch if i == 0 and d < 0 else d for i, d in enumerate(shape)]
        if dtype == "i64":
            out.append(rng.integers(0, 2, dims, dtype=np.int64))
        elif dtype == "bool":
            out.append(rng.integers(0, 2, dims).astype(np.bool_))
        else:
            out.append(rng.standard_normal(dims, dtype=np.float32))
    return out


def _nonfinite(outputs: Sequence[np.ndarray]) -> tuple[int, int]:
    values = sum(int(np.asarray(o).size) for o in outputs)
    bad = sum(int(np.count_nonzero(~np.isfinite(o))) for o in outputs if np.asarray(o).dtype.kind == "f")
    return bad, values


def _bench_measure(argv: Sequence[str]) -> int:
    """The measuring process: `path threads batch runs seconds min_runs seed progress`; prints one JSON line."""
    import json

    path, threads, batch, runs, seconds, min_runs, seed, progress = argv
    threads, batch, runs, min_runs, seed = int(threads), int(batch), int(runs), int(min_runs), int(seed)
    seconds, show = float(seconds), progress == "1"
    samples = np.empty(runs if runs > 0 else _BENCH_MAX_RUNS)  # allocated before the baseline; filled pages count
    record: dict[str, Any] = {"threads": threads, "ok": False}
    try:
        record["baseline_rss_mib"] = _status_mib("VmRSS")
        t0 = time.perf_counter()
        model = load(path, num_threads=threads)
        record["load_ms"] = (time.perf_counter() - t0) * 1e3
        record["rss_after_load_mib"] = _status_mib("VmRSS")
        inputs = _bench_inputs(model.inputs, batch, seed)
        t0 = time.perf_counter()
        outputs = model.run(*inputs)
        record["first_run_ms"] = (time.perf_counter() - t0) * 1e3
        record["peak_rss_first_run_mib"] = _max_rss_mib()
        bad, values = _nonfinite(outputs)
        for _ in range(_BENCH_WARMUP_RUNS):
            model.run(*inputs)
        n, start = 0, time.perf_counter()
        while (n < runs) if runs > 0 else (n < _BENCH_MAX_RUNS and (time.perf_counter() - start < seconds or n < min_runs)):
            t0 = time.perf_counter()
            outputs = model.run(*inputs)
            samples[n] = time.perf_counter() - t0
            n += 1
            if show and n % 16 == 0:
                _progress(time.perf_counter() - start, seconds)
        more, _ = _nonfinite(outputs)
        timed = samples[:n] * 1e3
        p50, p90, p99 = np.percentile(timed, [50, 90, 99])  # linear between closest ranks, as sparsert-bench
        record.update(ok=True, p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), mean_ms=float(timed.mean()),
                      min_ms=float(timed.min()), runs=n, peak_rss_mib=_max_rss_mib(), vmhwm_mib=_status_mib("VmHWM"),
                      output_values=values, nonfinite_outputs=bad + more)
    except Exception as e:  # reported by the parent, which prints the table of what did run
        record["error"] = str(e)
    print(json.dumps(record))
    return 0


def _bench_child(path: str, threads: int, args: argparse.Namespace, show: bool) -> dict:
    import json
    import os
    import subprocess
    from pathlib import Path

    code = "import sys; from sparsert.cli import _bench_measure; sys.exit(_bench_measure(sys.argv[1:]))"
    argv = [path, threads, args.batch, args.runs or 0, args.seconds, args.min_runs, args.seed, int(show)]
    # The child imports this very package, wherever it was found (an installed wheel, a build's folder).
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run([sys.executable, "-c", code, *map(str, argv)], stdout=subprocess.PIPE,
                          stderr=None if show else subprocess.PIPE, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return {"threads": threads, "ok": False, "error": f"the measuring process failed: {tail[0]}"}
    return json.loads(lines[-1])


def _bench_combine(records: list[dict]) -> dict:
    """--repeat N: N processes' records in one, as sparsert-bench does: times are medians, peak RSS the
    largest, runs and non-finite outputs summed; the first failure is the result."""
    failed = [r for r in records if not r["ok"]]
    if failed or len(records) == 1:
        return (failed or records)[0]
    out = dict(records[0])
    for key in ("load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "baseline_rss_mib",
                "rss_after_load_mib"):
        values = [r[key] for r in records]
        out[key] = None if None in values else float(np.median(values))
    for key in ("peak_rss_mib", "peak_rss_first_run_mib", "vmhwm_mib"):
        values = [r[key] for r in records if r[key] is not None]
        out[key] = max(values) if values else None
    out["runs"] = sum(r["runs"] for r in records)
    out["nonfinite_outputs"] = sum(r["nonfinite_outputs"] for r in records)
    return out


def _thread_list(text: str) -> list[int]:
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"threads '{text}' is not a comma-separated list of counts >= 1 (e.g. 1,2)")
    return list(dict.fromkeys(counts))


def _check_sprt(path: str) -> int:
    """The file's size; raises FileNotFoundError or ValueError unless `path` is a .sprt model file."""
    from pathlib import Path

    from ._model import SPRT_MAGIC

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"benchmarking '{path}': no such file (expected a .sprt model file)")
    with open(p, "rb") as f:
        head = f.read(len(SPRT_MAGIC))
    if head != SPRT_MAGIC:
        raise ValueError(f"benchmarking '{path}': not a .sprt model file (first bytes {head!r}, expected "
                         f"{SPRT_MAGIC!r}); write one with sparsert compile or Model.save")
    return p.stat().st_size


def _bench_ratios(pruned: dict, dense: dict, t: int) -> dict:
    a, b = pruned["results"][t], dense["results"][t]

    def r(x: Any, y: Any) -> float | None:
        return x / y if x is not None and y else None

    out = {"threads": a["threads"], "file_size": r(pruned["file_bytes"], dense["file_bytes"])}
    if a["ok"] and b["ok"]:
        for name, key in (("load", "load_ms"), ("first_run", "first_run_ms"), ("p50", "p50_ms"), ("p90", "p90_ms"),
                          ("p99", "p99_ms"), ("peak_rss", "peak_rss_mib")):
            out[name] = r(a[key], b[key])
    else:
        out.update({name: None for name in _BENCH_RATIOS[1:]})
    return out


def _bench_table(report: dict) -> str:
    lines = [f"sparsert bench: batch {report['batch']}; {report['cpu']} ({report['machine']}), ISAs {report['isas']}, "
             f"{report['physical_cores']} physical cores; steady state: {report['steady_state']} after the first run "
             f"and {report['warmup_runs']} warm-up runs; {report['repeat']} Python process(es) per model and thread count"
             + (" (medians; peak RSS the largest)" if report["repeat"] > 1 else "")]
    for m in report["models"]:
        lines.append(f"{m['role']:<6} {m['path']}: {m['file_mib']:.3f} MiB ({m['file_bytes']} bytes)")
    lines.append("")
    lines.append(f"{'model':<13} {'threads':>7} {'file MiB':>9} {'load ms':>9} {'first ms':>10} {'p50 ms':>9} "
                 f"{'p90 ms':>9} {'p99 ms':>9} {'peak RSS MiB':>13} {'runs':>6}")
    for t, threads in enumerate(report["threads"]):
        for m in report["models"]:
            r = m["results"][t]
            if not r["ok"]:
                lines.append(f"{m['role']:<13} {threads:>7}  error: {r['error']}")
                continue
            lines.append(f"{m['role']:<13} {threads:>7} {m['file_mib']:>9.3f} {r['load_ms']:>9.3f} "
                         f"{r['first_run_ms']:>10.3f} {r['p50_ms']:>9.3f} {r['p90_ms']:>9.3f} {r['p99_ms']:>9.3f} "
                         f"{r['peak_rss_mib']:>13.1f} {r['runs']:>6}")
        if "ratios" in report and None not in report["ratios"][t].values():
            q = report["ratios"][t]
            lines.append(f"{'pruned/dense':<13} {threads:>7} " + " ".join(
                f"{q[k]:>{w}.3f}" for k, w in zip(_BENCH_RATIOS, (9, 9, 10, 9, 9, 9, 13))))
    for m in report["models"]:
        for r in m["results"]:
            if r["ok"]:
                base = "n/a" if r["baseline_rss_mib"] is None else f"{r['baseline_rss_mib']:.1f} MiB"
                lines.append(f"{m['role']}, {r['threads']} thread(s): baseline RSS {base} (interpreter and imports), "
                             f"{r['output_values']} output values, {r['nonfinite_outputs']} not finite")
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    import json
    import platform

    if args.runs is not None and args.seconds_given:
        raise ValueError("--runs and --seconds both given (expected one of them)")
    if args.batch < 1:
        raise ValueError(f"--batch is {args.batch} (expected a batch of 1 or more)")
    if args.threads is None:
        cores = _core.physical_core_count()
        args.threads = [1] if cores == 1 else [1, cores]
    models = [{"role": "pruned" if args.dense else "model", "path": args.file}]
    if args.dense:
        models.append({"role": "dense", "path": args.dense})
    for m in models:
        m["file_bytes"] = _check_sprt(m["path"])
        m["file_mib"] = m["file_bytes"] / 2**20
        m["results"] = []
    show = (sys.stderr.isatty() or args.progress) and not args.runs
    for threads in args.threads:  # pruned and dense alternating at each thread count: drift hits both alike
        records: list[list[dict]] = [[] for _ in models]
        for _ in range(args.repeat):
            for m, rec in zip(models, records):
                rec.append(_bench_child(m["path"], threads, args, show))
                if show:
                    _progress(1.0, 1.0)
                    sys.stderr.write("\n")
        for m, rec in zip(models, records):
            m["results"].append(_bench_combine(rec))
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    report = {"program": "sparsert bench", "machine": platform.machine(), "cpu": cpu, "isas": _core.available_isas(),
              "physical_cores": _core.physical_core_count(), "batch": args.batch, "seed": args.seed,
              "steady_state": (f"{args.runs} runs" if args.runs else
                               f"{args.seconds:g} s, at least {args.min_runs} runs"),
              "warmup_runs": _BENCH_WARMUP_RUNS, "repeat": args.repeat, "threads": args.threads, "models": models}
    if args.dense:
        report["ratios"] = [_bench_ratios(models[0], models[1], t) for t in range(len(args.threads))]
    print(json.dumps(report, indent=1) if args.json else _bench_table(report))
    status = 0
    for m in models:
        for r in m["results"]:
            if not r["ok"]:
                print(f"sparsert bench: {m['path']} at {r['threads']} thread(s): {r['error']}", file=sys.stderr)
                status = 1
            elif r["nonfinite_outputs"]:
                print(f"sparsert bench: {m['path']} at {r['threads']} thread(s): {r['nonfinite_outputs']} of "
                      f"{r['output_values']} output values are NaN or infinite", file=sys.stderr)
                status = 1
    return status


def cmd_serve(args: argparse.Namespace) -> int:
    import json
    import os
    from pathlib import Path

    from . import serve as _serve

    if not Path(args.file).is_file():
        raise FileNotFoundError(f"serving '{args.file}': no such file")
    autoscaling = json.loads(args.autoscaling) if args.autoscaling else None
    if autoscaling is not None and not isinstance(autoscaling, dict):
        raise ValueError(f"--autoscaling '{args.autoscaling}' is not a JSON object (expected e.g. "
                         '\'{"min_replicas": 1, "max_replicas": 4}\')')
    most = autoscaling.get("max_replicas", args.replicas) if autoscaling else args.replicas
    threads = args.threads or max(1, _core.physical_core_count() // max(1, most))
    cpus = args.num_cpus
    if args.address is None:
        _serve.loopback_ray()  # before Ray is imported: a local cluster stays on 127.0.0.1
        if cpus is None:  # so that every replica fits on this machine's logical CPUs
            cpus = min(1.0, (os.cpu_count() or 1) / max(1, most))
    try:
        from .serve import ray as ray_serve
    except ImportError as e:
        raise ValueError(f"serving needs Ray Serve ({e}); install it with pip install 'sparsert[serve]'") from None
    def ready(info: dict) -> None:
        inputs = ", ".join(f"{n}: {d} {tuple(s)}" for n, d, s in info["inputs"])
        print(f"serving {args.file} at http://{args.host}:{args.port}/ (inputs {inputs}; max batch "
              f"{info['max_batch_size']}, wait {info['batch_wait_timeout_s'] * 1e3:g} ms, {threads} thread(s) "
              "per replica)")
        print('POST {"inputs": {name: nested list}} as JSON, or an .npz archive as application/x-npz; Ctrl-C stops',
              flush=True)

    return ray_serve.serve_forever(
        args.file, on_ready=ready, replicas=args.replicas, autoscaling_config=autoscaling,
        max_batch_size=args.max_batch, batch_wait_timeout_s=args.batch_wait_ms / 1e3, num_threads=threads,
        ray_actor_options=None if cpus is None else {"num_cpus": cpus}, address=args.address, host=args.host,
        port=args.port)


def cmd_export_triton(args: argparse.Namespace) -> int:
    from .serve import triton

    folder = triton.export(args.file, args.repo, name=args.name, max_batch_size=args.max_batch,
                           instances=args.instances, num_threads=args.threads, wait_us=int(args.batch_wait_ms * 1e3))
    print(f"wrote {folder}/config.pbtxt, {folder}/1/model.py, {folder}/1/model.sprt")
    print(f"tritonserver --model-repository {folder.parent}   # its Python backend needs sparsert and numpy")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sparsert", description="Compile, inspect and time sparse models.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compile", help="compile a PyTorch model (.pt2 archive, or state dict with --model) to .sprt")
    p.add_argument("source", help="a torch.export archive, a state dict, or a pickled module (--trusted)")
    p.add_argument("-o", "--output", required=True, help="the .sprt file to write")
    p.add_argument("--model", help="package.module:Name building the architecture a state dict fills")
    p.add_argument("--input-shape", type=_shape, action="append", help="example input shape, e.g. 1,3,224,224 "
                   "(repeat for several inputs); dim 0 is the batch the formats are chosen for")
    p.add_argument("--input-dtype", choices=["f32", "i64"], default="f32", help="dtype of the example inputs")
    p.add_argument("--formats", help="auto (default; close calls timed), predicted (the cost model alone), "
                   "one format for all (dense, csr, bsr4x4, nm2:4, ...), "
                   "or layer=format pairs separated by commas")
    p.add_argument("--threads", type=int, help="threads the format choice plans for")
    p.add_argument("--trusted", action="store_true", help="allow a pickled module (runs code while loading)")
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("inspect", help="print a model's inputs, outputs and per-layer formats")
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=1, help="batch whose kernels are shown")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("bench", help="what a .sprt costs: file size, load time, first-run and p50/p90/p99 latency, "
                       "peak RSS, per thread count, each in a fresh process; with --dense, the ratios to the dense model")
    p.add_argument("file", help="a .sprt model file")
    p.add_argument("--dense", help="the dense version of the model (.sprt) to compare against")
    p.add_argument("--batch", type=int, default=1, help="dim 0 of the inputs with a free batch (default 1)")
    p.add_argument("--threads", type=_thread_list, default=None,
                   help="thread counts, e.g. 1,2 (default 1 and the physical cores)")
    p.add_argument("--runs", type=int, default=None, help=f"exactly N timed steady-state runs (at most {_BENCH_MAX_RUNS})")
    p.add_argument("--seconds", "--min-time", type=float, default=None,
                   help="seconds of timed steady-state runs per process (default 2)")
    p.add_argument("--min-runs", "--min-calls", type=int, default=_BENCH_MIN_RUNS,
                   help=f"fewest timed runs with --seconds (default {_BENCH_MIN_RUNS})")
    p.add_argument("--repeat", type=int, default=1, help="processes per model and thread count; times are medians "
                   "over them, peak RSS the largest (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object (sparsert-bench's fields) instead")
    p.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("serve", help="serve a .sprt model with Ray Serve (pip install 'sparsert[serve]')")
    p.add_argument("file")
    p.add_argument("--replicas", type=int, default=1, help="replicas (processes), each loading the model once")
    p.add_argument("--autoscaling", help='Serve autoscaling config as JSON, e.g. \'{"min_replicas": 1, '
                   '"max_replicas": 4}\' (replaces --replicas)')
    p.add_argument("--max-batch", type=int, default=None, help="items per Model.run (default: measured at "
                   "startup: the smallest batch no larger one beats by >10%% per item; 1 turns batching off)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0, help="longest wait for a batch to fill (ms)")
    p.add_argument("--threads", type=int, default=None, help="sparsert threads per replica (default: the "
                   "physical cores divided among the replicas)")
    p.add_argument("--num-cpus", type=float, default=None, help="Ray logical CPUs per replica (default: "
                   "Ray's 1 on a cluster; locally, at most this machine's CPUs divided among the replicas)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: start one locally, on 127.0.0.1)")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser("export-triton", help="write a Triton Python-backend model repository for a .sprt model")
    p.add_argument("file")
    p.add_argument("repo", help="the model repository folder; the model goes in REPO/<name>/")
    p.add_argument("--name", help="Triton model name (default: the file's stem)")
    p.add_argument("--max-batch", type=int, default=None, help="max_batch_size (default: measured here, as "
                   "sparsert serve does)")
    p.add_argument("--instances", type=int, default=1, help="model instances (processes) on the CPU")
    p.add_argument("--threads", type=int, default=None, help="sparsert threads per instance (default: the "
                   "physical cores divided among the instances)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0, help="dynamic batcher's longest queue delay (ms)")
    p.set_defaults(run=cmd_export_triton)

    args = parser.parse_args(argv)
    if args.command == "bench":
        args.seconds_given = args.seconds is not None
        args.seconds = 2.0 if args.seconds is None else args.seconds
        if (args.runs is not None and not 1 <= args.runs <= _BENCH_MAX_RUNS or args.seconds <= 0 or args.min_runs < 1
                or not 1 <= args.repeat <= 100):
            parser.error(f"bench: --runs (at most {_BENCH_MAX_RUNS}), --seconds, --min-runs and --repeat (at most 100) "
                         "must be positive")
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"sparsert {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
