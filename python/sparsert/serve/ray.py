"""Serve a `.sprt` model with Ray Serve (`pip install sparsert[serve]`).

    from sparsert.serve import ray as sparsert_ray
    handle = sparsert_ray.start("net.sprt", replicas=2)                # HTTP on 127.0.0.1:8000
    y = handle.infer.remote({"x": x}).result()["linear_2"]             # or POST {"inputs": {"x": [[...]]}}

Each replica loads the file once with `sparsert.load` (no torch in the replica), queues requests with
`@serve.batch` and runs one `Model.run` over the concatenation of the requests that arrived within the
wait timeout, up to the maximum batch (counted in items, not requests), then splits the outputs back.
Each request is checked before it joins a batch: a malformed one gets its own error (HTTP 400, or
`InputError` from the handle) naming the input and what was expected, and the rest of the batch runs.

The default maximum batch is measured when the replica starts (`choose_max_batch`: the smallest of 1, 2,
4 ... 64 that no larger batch beats by more than 10% per item); a request of at least that many items runs
alone, unqueued. A local cluster stays on 127.0.0.1 when `sparsert.serve.loopback_ray()` ran before Ray
was imported (`sparsert serve` does so).

HTTP: POST a JSON body {"inputs": {name: nested list}} and get {"outputs": {name: nested list}}, or POST
an `.npz` archive of the inputs with content type application/x-npz and get one of the outputs back.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from .. import _model
from ._batching import InputError, Signature, choose_max_batch, run_batch

NPZ = "application/x-npz"
# The longest a request waits for others to share its batch. Under load a batch fills before this; on an
# idle server it adds up to this much to a request's latency, which is kept small next to what a request
# spends in Serve's own HTTP path (bench/README.md, "Serving": the row without a model).
DEFAULT_WAIT_S = 0.002
# Serve's own default (5) would cap a replica's queue, and so its batches, at 5 requests.
DEFAULT_MAX_ONGOING = 256


def _items(requests: list) -> int:
    return sum(items for _, items in requests)


class SparsertModel:
    """A Ray Serve deployment of one `.sprt` file: `infer({name: array})` through a handle, `__call__`
    for HTTP. `path` must be readable on every node that runs a replica. `max_batch_size`: items per
    `Model.run` (None: measured at startup, see `choose_max_batch`; 1 turns batching off).
    `num_threads`: sparsert threads in this replica (None: sparsert's default, the physical cores)."""

    def __init__(self, path: str, max_batch_size: int | None = None, batch_wait_timeout_s: float = DEFAULT_WAIT_S,
                 num_threads: int | None = None):
        self.model = self._load_model(path, num_threads)
        self.signature = Signature.of(self.model)
        self.timings: list[tuple[int, float]] = []
        if max_batch_size is None:
            max_batch_size, self.timings = choose_max_batch(self.model, self.signature)
        if max_batch_size < 1:
            raise ValueError(f"serving '{path}': max_batch_size is {max_batch_size} (expected at least 1)")
        self.max_batch_size = max_batch_size if self.signature.batched else 1
        self.batch_wait_timeout_s = batch_wait_timeout_s
        self._run_batched.set_max_batch_size(self.max_batch_size)
        self._run_batched.set_batch_wait_timeout_s(batch_wait_timeout_s)
        self.batches = 0  # queued batches run, and the largest, for info()
        self.largest_batch_requests = 0
        self.largest_batch_items = 0

    def _load_model(self, path: str, num_threads: int | None) -> Any:
        """The model object: `inputs`, `outputs` and a thread-safe `run(*arrays)` as `sparsert.Model` has
        (a subclass may return another runtime's model with the same three, e.g. for a comparison)."""
        return _model.load(path, num_threads=num_threads)

    async def infer(self, inputs: Mapping[str, Any], from_json: bool = False) -> dict[str, np.ndarray]:
        """{output name: array} for one request of one or more items; raises InputError for a request
        that does not fit the model."""
        arrays, items = self.signature.check(inputs, from_json=from_json)
        if items >= self.max_batch_size:  # a full batch already: nothing to wait for
            result = (await asyncio.get_running_loop().run_in_executor(
                None, run_batch, self.model, self.signature, [arrays]))[0]
        else:
            result = await self._run_batched((arrays, items))
        if isinstance(result, Exception):
            raise result
        return result

    @serve.batch(max_batch_size=64, batch_wait_timeout_s=DEFAULT_WAIT_S, batch_size_fn=_items)
    async def _run_batched(self, requests: list[tuple[list[np.ndarray], int]]) -> list:
        self.batches += 1
        self.largest_batch_requests = max(self.largest_batch_requests, len(requests))
        self.largest_batch_items = max(self.largest_batch_items, _items(requests))
        # Off the event loop: requests keep arriving (and the next batch filling) while this one runs.
        return await asyncio.get_running_loop().run_in_executor(
            None, run_batch, self.model, self.signature, [arrays for arrays, _ in requests])

    async def __call__(self, request: Request) -> Response:
        try:
            body = await request.body()
            if request.headers.get("content-type", "").split(";")[0].strip() == NPZ:
                outputs = await self.infer(_read_npz(body))
                buffer = io.BytesIO()
                np.savez(buffer, **outputs)
                return Response(buffer.getvalue(), media_type=NPZ)
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError) as e:
                raise InputError(f"request: the body is not JSON ({e}) (expected {{\"inputs\": {{name: nested list}}}} "
                                 f"or an .npz archive sent as {NPZ})") from None
            if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), dict):
                raise InputError('request: the body has no "inputs" object '
                                 '(expected {"inputs": {name: nested list}})')
            outputs = await self.infer(payload["inputs"], from_json=True)
            # json.dumps writes NaN/Infinity (as Python's json reads them) where strict JSON has nothing.
            text = json.dumps({"outputs": {k: v.tolist() for k, v in outputs.items()}})
            return Response(text, media_type="application/json")
        except InputError as e:
            return _error(400, str(e))
        except Exception as e:  # noqa: BLE001 - a failed run answers this request; the replica stays up
            return _error(500, f"running the model: {e}")

    def info(self) -> dict:
        """What this replica decided and loaded: maximum batch, wait, startup timings, signature, the
        batches it ran (count, most requests and most items in one), and whether torch is imported in it
        (it should not be)."""
        return {
            "max_batch_size": self.max_batch_size,
            "batch_wait_timeout_s": self.batch_wait_timeout_s,
            "timings": self.timings,
            "inputs": [(s.name, s.dtype, list(s.shape)) for s in self.signature.inputs],
            "outputs": [(s.name, s.dtype, list(s.shape)) for s in self.signature.outputs],
            "batched": self.signature.batched,
            "batches": self.batches,
            "largest_batch_requests": self.largest_batch_requests,
            "largest_batch_items": self.largest_batch_items,
            "torch_imported": "torch" in sys.modules,
            "pid": os.getpid(),
        }


def _read_npz(body: bytes) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception as e:  # noqa: BLE001 - any unreadable body is the client's error
        raise InputError(f"request: the body is not an .npz archive of arrays ({e})") from None


def _error(status: int, message: str) -> Response:
    return Response(json.dumps({"error": message}), status_code=status, media_type="application/json")


def app(path: str | os.PathLike, *, replicas: int | None = 1, autoscaling_config: Mapping | None = None,
        max_batch_size: int | None = None, batch_wait_timeout_s: float = DEFAULT_WAIT_S,
        num_threads: int | None = None, max_ongoing_requests: int = DEFAULT_MAX_ONGOING,
        ray_actor_options: Mapping | None = None, name: str = "sparsert",
        deployment: type = SparsertModel) -> serve.Application:
    """The Serve application for `path` (bind it yourself with `serve.run`, or use `start`).

    `replicas` or `autoscaling_config` (Serve's dict: min_replicas, max_replicas, target_ongoing_requests,
    ...; replaces `replicas`) and `ray_actor_options` (e.g. {"num_cpus": 1}) go to `serve.deployment`
    as given. `deployment`: the class to deploy (SparsertModel, or a subclass)."""
    options: dict[str, Any] = {"name": name, "max_ongoing_requests": max_ongoing_requests}
    if autoscaling_config is not None:
        options["autoscaling_config"] = dict(autoscaling_config)
    else:
        options["num_replicas"] = replicas
    if ray_actor_options is not None:
        options["ray_actor_options"] = dict(ray_actor_options)
    target = os.path.abspath(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else path
    return serve.deployment(deployment).options(**options).bind(target, max_batch_size, batch_wait_timeout_s,
                                                               num_threads)


def start(path: str | os.PathLike, *, address: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          route_prefix: str = "/", app_name: str = "sparsert", **options: Any) -> Any:
    """Deploys `app(path, **options)` as `app_name` and returns its `DeploymentHandle` once every replica
    is up (Serve waits for as long as the replicas cannot be placed, e.g. asking for more CPUs than the
    cluster has). Joins the Ray cluster at `address`, or starts a local one (without the dashboard) when
    Ray is not initialised and no address is given; call `sparsert.serve.loopback_ray()` before Ray is
    imported to keep such a local cluster on 127.0.0.1. HTTP listens on `host:port` (loopback by default)."""
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": host, "port": port})
    return serve.run(app(path, **options), name=app_name, route_prefix=route_prefix)


def serve_forever(path: str | os.PathLike, on_ready: Callable[[dict], None] | None = None, **options: Any) -> int:
    """`start(path, **options)`, call `on_ready` with a replica's `info()`, then block until interrupted
    (KeyboardInterrupt). On the way out, deletes the application; a cluster this call started locally is
    shut down with Serve, one joined at `address` keeps running. The `sparsert serve` command."""
    started_ray = not ray.is_initialized()
    handle = start(path, **options)
    try:
        if on_ready is not None:
            on_ready(handle.info.remote().result())
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        if started_ray and options.get("address") is None:
            serve.shutdown()
        else:
            serve.delete(options.get("app_name", "sparsert"))
        if started_ray:
            ray.shutdown()
