#!/usr/bin/env python3
"""Load test of serving through Ray Serve: a 90%-pruned MLP served by sparsert (`sparsert.serve.ray`)
and by torch eager on the same pruned dense model in an equivalent deployment (the same class, queue,
per-request checks and `@serve.batch`; only the model object differs), at 1 and 2 replicas, with
batching (the maximum batch each replica measures at startup) and without (max batch 1).

N client threads keep one HTTP/1.1 connection each to Serve's proxy on 127.0.0.1 and send one-item
requests (.npz bodies) back to back: a closed loop, so N is the number of requests in flight. All
configurations are deployed at once, each under its own route, and the load visits them in turns, the
order rotating, each turn after an untimed lead-in: the host's load drifts, and turns spread the drift
over all rows alike (bench/README.md, "Method"). Latency is measured per request at the client;
throughput is completed requests per timed second. A row without a model (echo) is the ceiling of the
stack itself. The client, Serve's proxy and controller, and the replicas all share this host's cores (2
on the project's machine): the figures are for that whole stack on one small host, not for a model
server given the machine to itself.

    python bench/serve.py                            # the table in bench/README.md
    python bench/serve.py --clients 8 --seconds 20   # other load
    python bench/serve.py --quick                    # a few seconds per configuration (smoke)

Needs `pip install '.[serve]'` and torch. All traffic goes to 127.0.0.1; every loop ends after
--seconds or --max-requests, whichever comes first.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import inspect
import io
import os
import shlex
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import sparsert
from sparsert.serve import loopback_ray

loopback_ray()  # before Ray is imported: the local cluster stays on 127.0.0.1

import machine  # noqa: E402 - bench/machine.py, beside this file
import ray  # noqa: E402
import torch  # noqa: E402
from ray import serve  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils import prune  # noqa: E402

from sparsert.serve import ray as sparsert_ray  # noqa: E402

SIZES = (1024, 4096, 4096, 10)  # ~21M weights dense: torch eager takes several ms per item on 2 cores


def build_mlp(sizes, seed: int = 0) -> nn.Sequential:
    """Linear layers of `sizes` with ReLU between, 90% of each weight pruned by magnitude (per layer: a global
    threshold would prune the wide layers, initialised smaller, almost away and leave the first one dense)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).eval()
    for m in model:
        if isinstance(m, nn.Linear):
            prune.l1_unstructured(m, "weight", amount=0.9)
            prune.remove(m, "weight")
    return model


class TorchRunner:
    """torch eager behind the three members SparsertModel uses: inputs, outputs, run."""

    def __init__(self, module: nn.Module, threads: int):
        torch.set_num_threads(threads)
        self.module = module
        first = next(m for m in module if isinstance(m, nn.Linear))
        # The forward's argument name, as sparsert's importer names the input ("input" for nn.Sequential).
        name = next(iter(inspect.signature(module.forward).parameters))
        self.inputs = [(name, "f32", [-1, first.in_features])]
        self.outputs = ["y"]

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.module(torch.from_numpy(np.require(x, requirements="W"))).numpy()


class TorchModel(sparsert_ray.SparsertModel):
    """The same deployment with torch eager: `path` is a state dict of build_mlp(SIZES)."""

    def _load_model(self, path: str, num_threads: int | None) -> TorchRunner:
        state = torch.load(path, weights_only=True)
        sizes = [state["0.weight"].shape[1]] + [state[k].shape[0] for k in state if k.endswith(".weight")]
        module = build_mlp(sizes)
        module.load_state_dict(state)
        return TorchRunner(module.eval(), num_threads or torch.get_num_threads())


class EchoRunner:
    """No model: zeros of the output's shape. Its row is the ceiling of this stack (client, Serve's HTTP
    proxy, the replica's queue and checks) on this host."""

    def __init__(self, in_features: int, out_features: int):
        self.inputs = [("input", "f32", [-1, in_features])]  # nn.Sequential's name, as the others have
        self.outputs = ["y"]
        self.out_features = out_features

    def run(self, x: np.ndarray) -> np.ndarray:
        return np.zeros((x.shape[0], self.out_features), np.float32)


class EchoModel(sparsert_ray.SparsertModel):
    """The same deployment without a model: `path` is a state dict, read only for the sizes."""

    def _load_model(self, path: str, num_threads: int | None) -> EchoRunner:
        state = torch.load(path, weights_only=True)
        weights = [state[k] for k in state if k.endswith(".weight")]
        return EchoRunner(weights[0].shape[1], weights[-1].shape[0])


def best_time(call, min_time: float = 0.5) -> float:
    """The fastest of repeated calls over min_time seconds."""
    call()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def npz_body(name: str, x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{name: x})
    return buffer.getvalue()


def load(port: int, route: str, clients: int, warmup: float, seconds: float, max_requests: int, name: str,
         in_features: int):
    """Closed-loop clients against http://127.0.0.1:port/route; returns (latencies in s, window in s, errors)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    timing = {}

    def client(i: int) -> None:
        body = npz_body(name, np.random.default_rng(i).standard_normal((1, in_features), dtype=np.float32))
        headers = {"content-type": "application/x-npz"}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start_barrier.wait()
        sent = 0
        while sent < max_requests:
            now = time.perf_counter()
            if now >= timing["end"]:
                break
            try:
                conn.request("POST", f"/{route}", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            done = time.perf_counter()
            sent += 1
            if now >= timing["begin"]:
                if ok:
                    latencies[i].append(done - now)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    timing["begin"], timing["end"] = t0 + warmup, t0 + warmup + seconds
    start_barrier.wait()
    for t in threads:
        t.join(warmup + seconds + 120)
    window = min(seconds, time.perf_counter() - timing["begin"])
    return [x for per in latencies for x in per], window, sum(errors)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads (requests in flight)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per configuration, in all")
    parser.add_argument("--rounds", type=int, default=5, help="turns per configuration the time is split into")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed load before each turn")
    parser.add_argument("--max-requests", type=int, default=100_000, help="cap on requests per client")
    parser.add_argument("--replicas", default="1,2")
    parser.add_argument("--runtimes", default="sparsert,torch")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the row without a model (echo)")
    parser.add_argument("--quick", action="store_true", help="1 replica, 4 clients, 1 s windows (smoke pass)")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds, args.rounds, args.warmup, args.replicas = 4, 1.0, 1, 0.3, "1"
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)

    model = build_mlp(SIZES)
    work = Path(tempfile.mkdtemp(prefix="sparsert-serve-bench-"))
    state_path, sprt_path = work / "mlp.pt", work / "mlp.sprt"
    torch.save(model.state_dict(), state_path)
    sparsert.load(model, example_inputs=(torch.randn(8, SIZES[0]),)).save(sprt_path)
    x = np.random.default_rng(0).standard_normal((3, SIZES[0]), dtype=np.float32)
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    compiled = sparsert.load(sprt_path)
    assert np.allclose(compiled.run(x), ref, rtol=1e-4, atol=1e-4), "sparsert and torch disagree"
    input_name = compiled.inputs[0][0]
    alone = []  # Model.run and torch eager in this process, at all the cores, for scale
    for batch in (1, 16):
        xb = np.random.default_rng(1).standard_normal((batch, SIZES[0]), dtype=np.float32)
        torch_runner = TorchRunner(model, cores)
        alone.append(f"batch {batch}: sparsert {best_time(lambda: compiled.run(xb)) * 1e3:.2f} ms, "
                     f"torch {best_time(lambda: torch_runner.run(xb)) * 1e3:.2f} ms")

    header = [
        f"date: {datetime.date.today()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
        f"cpu: {machine.cpu_model()} ({cores} logical CPUs); python {sys.version.split()[0]}; ray {ray.__version__}; "
        f"torch {torch.__version__}; sparsert {sparsert.__version__} ({sparsert.available_isas()})",
        f"model: MLP {'-'.join(map(str, SIZES))} (ReLU), 90% of each weight pruned (magnitude); "
        f"one item per request, .npz over HTTP/1.1 keep-alive to 127.0.0.1",
        f"one call, fastest of repeats, {cores} threads, no serving: " + "; ".join(alone),
        f"{args.clients} closed-loop clients; per row {args.seconds:g} s timed in {args.rounds} turns taken in "
        f"rotation with the other rows, each after {args.warmup:g} s untimed; "
        f"client, Serve proxy and replicas share the {cores} cores; threads per replica = {cores} / replicas",
        "command: python " + " ".join(shlex.quote(a) for a in sys.argv),
    ]
    for line in header:
        print(line, flush=True)

    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    with socket.socket() as probe:  # a free loopback port for Serve's HTTP proxy
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    configs = [(runtime, int(replicas), batching) for runtime in args.runtimes.split(",")
               for replicas in args.replicas.split(",") for batching in (True, False)]
    if not args.no_ceiling:
        configs.append(("none (echo)", 1, False))
    deployments = {"sparsert": sparsert_ray.SparsertModel, "torch": TorchModel, "none (echo)": EchoModel}
    rows = []
    try:
        # Every configuration is deployed at once, each an application under its own route, and the load
        # visits them in turns (--rounds, the order rotating): the host's load drifts over minutes, and
        # taking turns spreads the drift over all rows alike. Idle replicas only wait.
        routes = []
        for index, (runtime, replicas, batching) in enumerate(configs):
            route = f"c{index}"
            app = sparsert_ray.app(
                sprt_path if runtime == "sparsert" else state_path, replicas=replicas,
                max_batch_size=None if batching else 1, num_threads=max(1, cores // replicas),
                # Logical CPUs are not what limits here (every replica shares the same cores), and
                # reserving them would not let all configurations be deployed together.
                ray_actor_options={"num_cpus": 0}, deployment=deployments[runtime], name=route)
            routes.append((route, serve.run(app, name=route, route_prefix=f"/{route}")))
            print(f"  deployed {runtime} x{replicas} batching {'on' if batching else 'off'}", flush=True)
        results = {route: ([], 0.0, 0) for route, _ in routes}
        for r in range(args.rounds):
            for k in range(len(routes)):
                route, _ = routes[(k + r) % len(routes)]
                lat, window, errors = load(port, route, args.clients, args.warmup, args.seconds / args.rounds,
                                           args.max_requests, input_name, SIZES[0])
                old = results[route]
                results[route] = (old[0] + lat, old[1] + window, old[2] + errors)
        for (runtime, replicas, batching), (route, handle) in zip(configs, routes):
            infos = {}
            for _ in range(4 * replicas):
                info = handle.info.remote().result(timeout_s=60)
                infos[info["pid"]] = info
            latencies, window, errors = results[route]
            max_batch = "/".join(str(i["max_batch_size"]) for i in infos.values())
            rows.append({"runtime": runtime, "replicas": replicas,
                         "batching": f"max {max_batch}" if batching else "off",
                         "rps": len(latencies) / window, "p50": percentile(latencies, 50) * 1e3,
                         "p90": percentile(latencies, 90) * 1e3, "p99": percentile(latencies, 99) * 1e3,
                         "largest": max(i["largest_batch_items"] for i in infos.values()) if batching else 1,
                         "errors": errors, "n": len(latencies)})
    finally:
        serve.shutdown()
        ray.shutdown()

    print()
    print("| runtime | replicas | batching | req/s | p50 ms | p90 ms | p99 ms | largest batch | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['runtime']} | {r['replicas']} | {r['batching']} | {r['rps']:.0f} | {r['p50']:.1f} | "
              f"{r['p90']:.1f} | {r['p99']:.1f} | {r['largest']} | {r['errors']} |")
    print(f"host load (1-min average) at the end, this bench's own threads included: {os.getloadavg()[0]:.2f}")
    return 1 if any(r["errors"] or not r["n"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
