"""Export a `.sprt` model as a Triton Inference Server model repository for the Python backend.

    from sparsert.serve import triton
    triton.export("net.sprt", "repo/", max_batch_size=32, instances=2)   # or: sparsert export-triton

writes

    repo/<name>/config.pbtxt      backend "python", inputs/outputs (dims without the batch), max_batch_size,
                                  dynamic_batching, instance_group KIND_CPU, parameter num_threads
    repo/<name>/1/model.py        TritonPythonModel: one Model.run per execute over the concatenated requests
    repo/<name>/1/model.sprt      the model, copied

Triton runs model.py in its Python backend stub, whose Python must import sparsert and NumPy (torch is
not needed). Triton's dynamic batcher gathers requests up to max_batch_size items; `execute` checks each
request on its own (a bad one gets its own error response), concatenates the good ones and runs them once.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .. import _core, _model
from ._batching import Signature, TensorSpec, choose_max_batch

TRITON_TYPES = {"f32": "TYPE_FP32", "i64": "TYPE_INT64", "bool": "TYPE_BOOL"}
# Triton's dynamic batcher waits at most this long for more requests: the same default as the Ray
# deployment's batch wait (sparsert.serve.ray.DEFAULT_WAIT_S), for the same reason.
DEFAULT_WAIT_US = 2000

MODEL_PY = '''\
"""Triton Python-backend model written by `sparsert export-triton`: serves model.sprt beside this file.

Each execute runs the requests Triton's dynamic batcher gathered as one sparsert Model.run over their
concatenation and splits the outputs back; a request whose inputs do not fit the model gets its own
error response and the others still run. Needs sparsert and NumPy in the backend's Python, not torch.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils

import sparsert
from sparsert.serve import InputError, Signature, run_batch


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        threads = config.get("parameters", {}).get("num_threads", {}).get("string_value", "")
        here = os.path.dirname(os.path.abspath(__file__))
        # Loaded once per model instance; instances are separate processes, each with its own threads.
        self.model = sparsert.load(os.path.join(here, "model.sprt"), num_threads=int(threads) if threads else None)
        self.signature = Signature.of(self.model)

    def execute(self, requests):
        responses = [None] * len(requests)
        good, arrays = [], []
        for index, request in enumerate(requests):
            inputs = {}
            for spec in self.signature.inputs:
                tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
                if tensor is not None:
                    inputs[spec.name] = tensor.as_numpy()
            try:
                arrays.append(self.signature.check(inputs)[0])
                good.append(index)
            except InputError as e:
                responses[index] = pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(str(e)))
        for index, result in zip(good, run_batch(self.model, self.signature, arrays)):
            if isinstance(result, Exception):
                error = pb_utils.TritonError(f"running the model: {result}")
                responses[index] = pb_utils.InferenceResponse(output_tensors=[], error=error)
            else:
                tensors = [pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in result.items()]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses

    def finalize(self):
        self.model = None
'''


def _tensor_block(spec: TensorSpec, batched: bool) -> str:
    dims = list(spec.shape[1:] if batched else spec.shape)
    lines = ["  {", f'    name: "{spec.name}"', f"    data_type: {TRITON_TYPES[spec.dtype]}"]
    if batched and not dims:
        # Triton wants at least one dim besides the batch: a per-item scalar travels as [1] and is
        # reshaped to [] for the model.
        lines += ["    dims: [ 1 ]", "    reshape: { shape: [ ] }"]
    else:
        lines.append(f"    dims: [ {', '.join(str(d) for d in dims)} ]")
    return "\n".join(lines + ["  }"])


def config_text(name: str, signature: Signature, max_batch_size: int, instances: int, num_threads: int,
                wait_us: int = DEFAULT_WAIT_US) -> str:
    """config.pbtxt for the Python backend. A model that cannot batch (an input without the free batch, or
    an output that does not follow it) gets max_batch_size 0, full dims and no dynamic batching."""
    batched = signature.batched and max_batch_size > 0
    for spec in signature.inputs + signature.outputs:
        if spec.dtype not in TRITON_TYPES:
            raise ValueError(f"exporting for Triton: tensor '{spec.name}' has dtype {spec.dtype} "
                             f"(expected one of {', '.join(TRITON_TYPES)})")
    parts = [f'name: "{name}"', 'backend: "python"', f"max_batch_size: {max_batch_size if batched else 0}",
             "input [\n" + ",\n".join(_tensor_block(s, batched) for s in signature.inputs) + "\n]",
             "output [\n" + ",\n".join(_tensor_block(s, batched) for s in signature.outputs) + "\n]"]
    if batched:
        parts.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {wait_us}\n}}")
    parts.append(f"instance_group [\n  {{\n    count: {instances}\n    kind: KIND_CPU\n  }}\n]")
    parts.append(f'parameters {{\n  key: "num_threads"\n  value: {{ string_value: "{num_threads}" }}\n}}')
    return "\n".join(parts) + "\n"


def export(path: str | os.PathLike, repo: str | os.PathLike, *, name: str | None = None,
           max_batch_size: int | None = None, instances: int = 1, num_threads: int | None = None,
           wait_us: int = DEFAULT_WAIT_US) -> Path:
    """Writes `repo/<name>/` (config.pbtxt, 1/model.py, 1/model.sprt) and returns that folder; files of an
    earlier export there are replaced. `name`: the Triton model name (default: the file's stem).
    `max_batch_size`: items per execute (None: measured here, see `choose_max_batch`). `instances`: model
    instances (processes) on the CPU. `num_threads`: sparsert threads per instance (None: the physical
    cores divided among the instances)."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"exporting '{source}': no such file")
    name = name or source.stem
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"exporting '{source}': model name '{name}' has characters Triton's repository layout "
                         "does not take (expected letters, digits, '_', '.', '-'; pass name=)")
    if instances < 1:
        raise ValueError(f"exporting '{source}': instances is {instances} (expected at least 1)")
    if _model._file_kind(source) != "sprt":
        raise ValueError(f"exporting '{source}': not a .sprt file "
                         "(compile it first: sparsert compile ... -o model.sprt)")
    model = _model.load(source)
    signature = Signature.of(model)
    if max_batch_size is None:
        max_batch_size, _ = choose_max_batch(model, signature)
    if max_batch_size < 1:
        raise ValueError(f"exporting '{source}': max_batch_size is {max_batch_size} (expected at least 1)")
    if num_threads is None:
        num_threads = max(1, _core.physical_core_count() // instances)
    folder = Path(repo) / name
    (folder / "1").mkdir(parents=True, exist_ok=True)
    (folder / "config.pbtxt").write_text(config_text(name, signature, max_batch_size, instances, num_threads, wait_us))
    (folder / "1" / "model.py").write_text(MODEL_PY)
    shutil.copyfile(source, folder / "1" / "model.sprt")
    return folder
