"""Serving a .sprt model: the Ray Serve deployment under a few hundred concurrent requests of mixed
batch sizes (loopback HTTP, JSON and .npz, and the Serve handle), each answer checked against
`Model.run` on the same input; malformed requests answered with errors that name the input while the
rest keep being served. Triton: the exported repository's config.pbtxt parsed field by field, and its
model.py run against a stub of `triton_python_backend_utils`; with SPARSERT_TRITON_PYTHON set, the
repository also runs in a real tritonserver (the one nvidia-pytriton ships).

The Ray tests skip when Ray is absent (`pip install '.[serve]'`). Every request loop is bounded in count
and time, and all traffic goes to 127.0.0.1."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import sparsert
from sparsert import cli
from sparsert.serve import Signature, TensorSpec, loopback_ray_env
from sparsert.serve import triton as sparsert_triton
from zoo import build, example_input, prune_model

STUBS = Path(__file__).parent / "stubs"
HTTP_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def mlp_file(tmp_path_factory) -> str:
    """A 64-96-80-10 MLP, 90% of its weights pruned (global magnitude), compiled and saved."""
    model = prune_model(build("mlp"), "u90", keep_reparam=False)
    path = tmp_path_factory.mktemp("serve") / "mlp.sprt"
    sparsert.load(model, example_inputs=(example_input("mlp", 4),)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def mlp(mlp_file) -> sparsert.Model:
    return sparsert.load(mlp_file)


def assert_close(got, want, what: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} (expected {want.shape})"
    # Batching may change a kernel's tiling, not the arithmetic per item; allow float32 rounding.
    err = np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want))))
    assert err <= 1e-6, f"{what}: error {err:.3g} at index {np.unravel_index(np.argmax(np.abs(got - want)), got.shape)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, body: bytes, content_type: str = "application/json", path: str = "/") -> tuple[int, bytes, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as r:
            return r.status, r.read(), r.headers.get("content-type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("content-type", "")


# ---------------------------------------------------------------------------------------------- Ray Serve


@pytest.fixture(scope="module")
def served(mlp_file):
    """Two replicas of the MLP (one sparsert thread each: the host has 2 cores), the default maximum
    batch measured at startup; yields (handle, HTTP port)."""
    with pytest.MonkeyPatch.context() as env:
        # Before Ray is imported: the local cluster stays on 127.0.0.1 (sparsert.serve.loopback_ray_env).
        for name, value in loopback_ray_env().items():
            env.setenv(name, value)
        ray = pytest.importorskip("ray")
        serve = pytest.importorskip("ray.serve")
        from sparsert.serve import ray as sparsert_ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            port = free_port()
            handle = sparsert_ray.start(mlp_file, replicas=2, num_threads=1, ray_actor_options={"num_cpus": 1},
                                        port=port)
            yield handle, port
        finally:
            serve.shutdown()
            ray.shutdown()


def replica_infos(handle, calls: int = 8) -> dict[int, dict]:
    infos = {}
    for _ in range(calls):
        info = handle.info.remote().result(timeout_s=HTTP_TIMEOUT)
        infos[info["pid"]] = info
    return infos


def test_replicas_load_the_file_without_torch(served):
    handle, _ = served
    for info in replica_infos(handle).values():
        assert not info["torch_imported"]
        assert info["inputs"] == [("x", "f32", [-1, 64])] and info["outputs"] == [("linear_2", "f32", [-1, 10])]
        # The measured default: a power of two up to 64, with the per-item times it was chosen from.
        assert info["max_batch_size"] in (1, 2, 4, 8, 16, 32, 64), info
        assert [b for b, _ in info["timings"]][:1] == [1] and info["max_batch_size"] in [b for b, _ in info["timings"]]


def test_concurrent_requests_match_model_run(served, mlp):
    """300 requests from 12 threads: batch sizes 1 to 70 (70 exceeds any default maximum batch and runs
    alone), a third each as JSON over HTTP, .npz over HTTP and through the handle; one in 15 malformed,
    mixed in, so that it lands in the same batches as good ones."""
    handle, port = served
    rng = np.random.default_rng(11)
    sizes = [1, 1, 1, 2, 3, 4, 5, 8, 13, 21, 70]
    jobs = []
    for i in range(300):
        n = int(rng.choice(sizes))
        bad = i % 15 == 7
        x = rng.standard_normal((n, 65 if bad else 64), dtype=np.float32)
        jobs.append((("json", "npz", "handle")[i % 3], x, bad))

    def send(job):
        kind, x, bad = job
        if kind == "json":
            status, body, _ = post(port, json.dumps({"inputs": {"x": x.tolist()}}).encode())
            payload = json.loads(body)
            return status, (payload.get("error") if status != 200 else np.array(payload["outputs"]["linear_2"]))
        if kind == "npz":
            buffer = io.BytesIO()
            np.savez(buffer, x=x)
            status, body, _ = post(port, buffer.getvalue(), "application/x-npz")
            if status != 200:
                return status, json.loads(body)["error"]
            with np.load(io.BytesIO(body)) as archive:
                return status, archive["linear_2"]
        try:
            return 200, handle.infer.remote({"x": x}).result(timeout_s=HTTP_TIMEOUT)["linear_2"]
        except ValueError as e:
            return 400, str(e)

    start = time.perf_counter()
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(send, jobs, timeout=120))
    elapsed = time.perf_counter() - start
    for i, ((kind, x, bad), (status, got)) in enumerate(zip(jobs, results)):
        if bad:
            assert status == 400, f"request {i} ({kind}, malformed): status {status}"
            assert f"input 'x' has shape ({x.shape[0]}, 65)" in got and "(batch, 64)" in got, got
        else:
            assert status == 200, f"request {i} ({kind}, {x.shape[0]} items): status {status}: {got}"
            assert_close(got, mlp.run(x), f"request {i} ({kind}, {x.shape[0]} items)")
    # Requests were really batched: some Model.run took more than one request.
    batched = [info["largest_batch_requests"] for info in replica_infos(handle).values()]
    assert max(batched) > 1, f"no replica ran more than one request per batch ({batched}; {elapsed:.1f} s)"


MALFORMED = [
    (json.dumps({"inputs": {"x": [[0.5] * 65]}}).encode(),
     "input 'x' has shape (1, 65) (expected f32 of shape (batch, 64))"),
    (json.dumps({"inputs": {}}).encode(), "missing input 'x' (expected f32 of shape (batch, 64))"),
    (json.dumps({"inputs": {"x": [[0.5] * 64], "mask": [1]}}).encode(), "unknown input 'mask'"),
    (json.dumps({"inputs": {"x": [[0.5] * 64, [0.5] * 3]}}).encode(), "input 'x' is a ragged nested list"),
    (json.dumps({"inputs": {"x": [["a"] * 64]}}).encode(), "input 'x' has dtype <U1"),
    (json.dumps({"inputs": {"x": []}}).encode(), "input 'x' has shape (0,)"),
    (json.dumps({"x": [[0.5] * 64]}).encode(), 'no "inputs" object'),
    (b"\x00not json", "the body is not JSON"),
]


@pytest.mark.parametrize("body, message", MALFORMED, ids=[m.split(" (")[0][:40] for _, m in MALFORMED])
def test_malformed_request_gets_an_error_and_the_next_one_succeeds(served, mlp, body, message):
    handle, port = served
    status, answer, content_type = post(port, body)
    assert status == 400 and content_type.startswith("application/json")
    assert message in json.loads(answer)["error"]
    x = np.full((2, 64), 0.25, dtype=np.float32)
    status, answer, _ = post(port, json.dumps({"inputs": {"x": x.tolist()}}).encode())
    assert status == 200
    assert_close(json.loads(answer)["outputs"]["linear_2"], mlp.run(x), "the next request")


def test_malformed_npz_and_handle_requests(served, mlp):
    handle, port = served
    buffer = io.BytesIO()
    np.savez(buffer, x=np.full((1, 64), 0.1, dtype=np.float64))  # 0.1 has no exact float32
    status, answer, _ = post(port, buffer.getvalue(), "application/x-npz")
    assert status == 400
    assert "input 'x' has dtype float64 with values float32 cannot hold exactly" in json.loads(answer)["error"]
    status, answer, _ = post(port, b"PK\x03\x04 broken", "application/x-npz")
    assert status == 400 and "not an .npz archive" in json.loads(answer)["error"]
    with pytest.raises(ValueError, match=r"missing input 'x' \(expected f32 of shape \(batch, 64\)\)"):
        handle.infer.remote({}).result(timeout_s=HTTP_TIMEOUT)
    with pytest.raises(ValueError, match=r"input 'x' has 0 items \(expected at least 1 along dim 0\)"):
        handle.infer.remote({"x": np.zeros((0, 64), np.float32)}).result(timeout_s=HTTP_TIMEOUT)
    x = np.random.default_rng(3).standard_normal((5, 64), dtype=np.float32)
    assert_close(handle.infer.remote({"x": x}).result(timeout_s=HTTP_TIMEOUT)["linear_2"], mlp.run(x), "handle")


def test_cli_serve_passes_its_options_through(served, mlp_file, monkeypatch, capsys):
    from sparsert.serve import ray as sparsert_ray

    calls = []
    def fake_serve_forever(path, on_ready=None, **options):
        calls.append((path, options))
        on_ready({"inputs": [("x", "f32", [-1, 64])], "max_batch_size": 8, "batch_wait_timeout_s": 0.005})
        return 0

    monkeypatch.setattr(sparsert_ray, "serve_forever", fake_serve_forever)
    assert cli.main(["serve", mlp_file, "--replicas", "2", "--max-batch", "8", "--port", "8123",
                     "--batch-wait-ms", "5", "--threads", "1"]) == 0
    path, options = calls[-1]
    assert path == mlp_file and options["replicas"] == 2 and options["max_batch_size"] == 8
    assert options["port"] == 8123 and options["host"] == "127.0.0.1" and options["batch_wait_timeout_s"] == 0.005
    assert options["num_threads"] == 1 and options["ray_actor_options"]["num_cpus"] <= 1
    assert f"serving {mlp_file} at http://127.0.0.1:8123/ (inputs x: f32 (-1, 64); max batch 8, wait 5 ms" in \
        capsys.readouterr().out
    assert cli.main(["serve", mlp_file, "--autoscaling", '{"min_replicas": 1, "max_replicas": 3}']) == 0
    assert calls[-1][1]["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 3}
    assert cli.main(["serve", mlp_file + ".missing"]) == 2
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------- Triton


def parse_pbtxt(text: str):
    """Protobuf text format → dicts and lists (a field given twice becomes a list): enough to read back
    every field config_text writes."""
    tokens = re.findall(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', text)
    pos = 0

    def value():
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token == "{":
            return message("}")
        if token == "[":
            items = []
            while tokens[pos] != "]":
                items.append(value())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return items
        if token.startswith('"'):
            return json.loads(token)
        return int(token) if re.fullmatch(r"-?\d+", token) else token

    def message(end):
        nonlocal pos
        fields = {}
        while pos < len(tokens) and tokens[pos] != end:
            name = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
            item = value()
            if name in fields:
                fields[name] = (fields[name] if isinstance(fields[name], list) else [fields[name]]) + [item]
            else:
                fields[name] = item
        pos += 1
        return fields

    return message(None)


def as_triton_json(config: dict) -> str:
    """The model_config string Triton passes to initialize: the config as JSON, parameters as a map."""
    config = dict(config)
    params = config.pop("parameters", [])
    params = params if isinstance(params, list) else [params]
    config["parameters"] = {p["key"]: p["value"] for p in params}
    return json.dumps(config)


@pytest.fixture
def triton_repo(mlp_file, tmp_path, capsys):
    repo = tmp_path / "repo"
    assert cli.main(["export-triton", mlp_file, str(repo), "--max-batch", "16", "--instances", "2"]) == 0
    assert "config.pbtxt" in capsys.readouterr().out
    return repo


def test_export_triton_writes_a_python_backend_repository(triton_repo, mlp_file):
    folder = triton_repo / "mlp"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "1", "1/model.py", "1/model.sprt", "config.pbtxt"]
    assert (folder / "1" / "model.sprt").read_bytes() == Path(mlp_file).read_bytes()
    config = parse_pbtxt((folder / "config.pbtxt").read_text())
    assert config["name"] == "mlp" and config["backend"] == "python" and config["max_batch_size"] == 16
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [64]}]
    assert config["output"] == [{"name": "linear_2", "data_type": "TYPE_FP32", "dims": [10]}]
    assert config["dynamic_batching"] == {"max_queue_delay_microseconds": 2000}
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    threads = int(config["parameters"]["value"]["string_value"])
    assert config["parameters"]["key"] == "num_threads" and threads >= 1
    compile(((folder / "1" / "model.py").read_text()), "model.py", "exec")


def test_config_for_other_dtypes_scalars_and_unbatched_models():
    sig = Signature([TensorSpec("ids", "i64", (-1, 12)), TensorSpec("mask", "bool", (-1, 12))],
                    [TensorSpec("score", "f32", (-1,))], batched=True)
    config = parse_pbtxt(sparsert_triton.config_text("bert", sig, max_batch_size=8, instances=1, num_threads=2))
    assert [i["data_type"] for i in config["input"]] == ["TYPE_INT64", "TYPE_BOOL"]
    # A per-item scalar travels as [1] and is reshaped to [] for the model.
    assert config["output"] == [{"name": "score", "data_type": "TYPE_FP32", "dims": [1], "reshape": {"shape": []}}]
    fixed = Signature([TensorSpec("x", "f32", (4, 3))], [TensorSpec("y", "f32", (4, 2))], batched=False)
    config = parse_pbtxt(sparsert_triton.config_text("fixed", fixed, max_batch_size=8, instances=1, num_threads=1))
    assert config["max_batch_size"] == 0 and "dynamic_batching" not in config
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4, 3]}]


def test_export_triton_refusals(mlp_file, tmp_path, capsys):
    assert cli.main(["export-triton", mlp_file, str(tmp_path), "--name", "no spaces"]) == 2
    assert "model name 'no spaces'" in capsys.readouterr().err
    assert cli.main(["export-triton", mlp_file + ".missing", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


class CountingModel:
    """Forwards to a sparsert.Model and records the batch of every run."""

    def __init__(self, model):
        self.model, self.batches = model, []
        self.inputs, self.outputs = model.inputs, model.outputs

    def run(self, *arrays):
        self.batches.append(arrays[0].shape[0])
        return self.model.run(*arrays)


def test_triton_model_py_batches_requests_and_isolates_bad_ones(triton_repo, mlp, monkeypatch):
    monkeypatch.syspath_prepend(str(STUBS))
    monkeypatch.delitem(sys.modules, "triton_python_backend_utils", raising=False)
    pb = importlib.import_module("triton_python_backend_utils")
    folder = triton_repo / "mlp"
    spec = importlib.util.spec_from_file_location("sparsert_triton_model", folder / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    instance = module.TritonPythonModel()
    config = parse_pbtxt((folder / "config.pbtxt").read_text())
    instance.initialize({"model_config": as_triton_json(config), "model_instance_kind": "CPU",
                         "model_instance_device_id": "0", "model_repository": str(folder), "model_version": "1",
                         "model_name": "mlp"})
    instance.model = counting = CountingModel(instance.model)

    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((n, 64), dtype=np.float32) for n in (3, 1, 5)]
    requests = [
        pb.InferenceRequest([pb.Tensor("x", xs[0])]),
        pb.InferenceRequest([pb.Tensor("x", rng.standard_normal((2, 65), dtype=np.float32))]),  # wrong shape
        pb.InferenceRequest([pb.Tensor("x", xs[1])]),
        pb.InferenceRequest([]),  # missing input
        pb.InferenceRequest([pb.Tensor("x", rng.standard_normal((2, 64)))]),  # float64 not exact in float32
        pb.InferenceRequest([pb.Tensor("x", xs[2])]),
    ]
    responses = instance.execute(requests)
    assert len(responses) == len(requests)
    assert counting.batches == [9], "one Model.run over the three good requests"
    for response, x in zip([responses[i] for i in (0, 2, 5)], xs):
        assert not response.has_error()
        (tensor,) = response.output_tensors()
        assert tensor.name() == "linear_2"
        assert_close(tensor.as_numpy(), mlp.run(x), "Triton response")
    assert responses[1].has_error() and "input 'x' has shape (2, 65) (expected f32 of shape (batch, 64))" in \
        responses[1].error().message()
    assert responses[3].has_error() and "missing input 'x'" in responses[3].error().message()
    assert responses[4].has_error()
    assert "input 'x' has dtype float64 with values float32 cannot hold" in responses[4].error().message()
    # A batch of one request, and a batch of only bad requests.
    assert not instance.execute([pb.InferenceRequest([pb.Tensor("x", xs[1])])])[0].has_error()
    assert all(r.has_error() for r in instance.execute([pb.InferenceRequest([]), pb.InferenceRequest([])]))
    instance.finalize()


def test_triton_server_end_to_end(mlp_file, mlp, tmp_path):
    """The exported repository in a real tritonserver: the one nvidia-pytriton's wheel ships, with its
    Python backend stub for the Python named by SPARSERT_TRITON_PYTHON (whose environment must have
    nvidia-pytriton, NumPy and sparsert; the stub links the system libpython3.x, so a system Python's
    venv, e.g. `/usr/bin/python3 -m venv`). Requests: KServe v2 JSON over loopback HTTP."""
    python = os.environ.get("SPARSERT_TRITON_PYTHON")
    if not python:
        pytest.skip("set SPARSERT_TRITON_PYTHON to a Python with nvidia-pytriton and sparsert to run tritonserver")
    probe = subprocess.run([python, "-c", "import os, sys, pytriton, sparsert; "
                            "print(os.path.dirname(pytriton.__file__)); "
                            "print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, f"SPARSERT_TRITON_PYTHON={python}: {probe.stderr[-2000:]}"
    pytriton_dir, version = probe.stdout.split()
    dist = Path(pytriton_dir) / "tritonserver"
    server = tmp_path / "tritonserver"
    shutil.copytree(dist, server, ignore=shutil.ignore_patterns("python_backend_stubs"))
    shutil.copy(dist / "python_backend_stubs" / version / "triton_python_backend_stub", server / "backends" / "python")
    repo = tmp_path / "repo"
    sparsert_triton.export(mlp_file, repo, max_batch_size=16, instances=1, num_threads=1)
    port = free_port()
    env = dict(os.environ, LD_LIBRARY_PATH=str(Path(pytriton_dir).parent / "nvidia_pytriton.libs"),
               PATH=f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}")
    log = open(tmp_path / "tritonserver.log", "w")
    proc = subprocess.Popen([str(server / "bin" / "tritonserver"), "--model-repository", str(repo),
                             "--backend-directory", str(server / "backends"), "--http-address", "127.0.0.1",
                             "--http-port", str(port), "--allow-grpc", "false", "--allow-metrics", "false"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, "tritonserver exited: " + (tmp_path / "tritonserver.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/mlp/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "tritonserver not ready in 90 s: " + \
                (tmp_path / "tritonserver.log").read_text()[-3000:]
            time.sleep(0.5)

        rng = np.random.default_rng(9)
        xs = [rng.standard_normal((int(n), 64), dtype=np.float32) for n in rng.choice([1, 2, 3, 5, 8], 60)]

        def infer(x):
            body = {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
            return post(port, json.dumps(body).encode(), path="/v2/models/mlp/infer")

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(infer, xs, timeout=120))
        for i, (x, (status, body, _)) in enumerate(zip(xs, answers)):
            assert status == 200, body
            (out,) = json.loads(body)["outputs"]
            assert out["name"] == "linear_2" and out["shape"] == [x.shape[0], 10]
            assert_close(np.array(out["data"]).reshape(out["shape"]), mlp.run(x), f"tritonserver request {i}")
        status, body, _ = infer(np.zeros((1, 65), np.float32))
        assert status == 400 and "'x'" in json.loads(body)["error"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/mlp/stats", timeout=HTTP_TIMEOUT) as r:
            stats = json.loads(r.read())["model_stats"][0]
        assert stats["inference_count"] == sum(x.shape[0] for x in xs)
        assert stats["execution_count"] <= len(xs)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
