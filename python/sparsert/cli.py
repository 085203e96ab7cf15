"""The `sparsert` command: inspect, compile and bench models.

    sparsert compile pruned.pt2 -o model.sprt            # a torch.export archive
    sparsert compile sd.pt --model mypkg.nets:Net --input-shape 1,3,224,224 -o model.sprt
    sparsert inspect model.sprt
    sparsert bench model.sprt --batch 32 --threads 2
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

from . import _core, _timing
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


def cmd_bench(args: argparse.Namespace) -> int:
    compiled = load(args.file, num_threads=args.threads)
    rng = np.random.default_rng(0)
    inputs = []
    for name, dtype, shape in compiled.inputs:
        dims = [args.batch if d < 0 else d for d in shape]
        if dtype == "i64":
            inputs.append(np.zeros(dims, dtype=np.int64))  # index 0 is valid for every embedding
        else:
            inputs.append(rng.standard_normal(dims, dtype=np.float32))
    compiled.run(*inputs)  # plan and warm up
    samples = []
    start = time.perf_counter()
    show = sys.stderr.isatty() or args.progress
    while time.perf_counter() - start < args.min_time or len(samples) < args.min_calls:
        t0 = time.perf_counter()
        compiled.run(*inputs)
        samples.append(time.perf_counter() - t0)
        if show and len(samples) % 16 == 0:
            _progress(time.perf_counter() - start, args.min_time)
    if show:
        _progress(1.0, 1.0)
        sys.stderr.write("\n")
    timing = _timing.summarize(samples)
    threads = args.threads or _core.get_num_threads()
    print(f"{args.file}: batch {args.batch}, {threads} thread(s), {timing.calls} calls")
    print(f"median {timing.median * 1e3:.3f} ms   p90 {timing.p90 * 1e3:.3f} ms   p10 {timing.p10 * 1e3:.3f} ms")
    return 0


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
    p.add_argument("--formats", help="auto (default), one format for all (dense, csr, bsr4x4, nm2:4, ...), "
                   "or layer=format pairs separated by commas")
    p.add_argument("--threads", type=int, help="threads the format choice plans for")
    p.add_argument("--trusted", action="store_true", help="allow a pickled module (runs code while loading)")
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("inspect", help="print a model's inputs, outputs and per-layer formats")
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=1, help="batch whose kernels are shown")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("bench", help="time model.run on random inputs: median and p90 latency")
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed calls")
    p.add_argument("--min-calls", type=int, default=10)
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
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"sparsert {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
