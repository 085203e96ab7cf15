"""What the serving adapters share: a model's per-item signature, the check of one request against
it, one `Model.run` over a batch of checked requests, and the default maximum batch.

A request is a mapping {input name: array or nested list} holding one or more items along dim 0.
Each request is checked on its own before any batch is formed, so a malformed one is answered with
its own error and never reaches the concatenation the other requests of its batch share.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .. import _convert

_CONVERT = {"f32": _convert.as_float32, "i64": _convert.as_int64, "bool": _convert.as_bool}
_NUMPY = {"f32": np.dtype(np.float32), "i64": np.dtype(np.int64), "bool": np.dtype(np.bool_)}
_DTYPE_OF = {v: k for k, v in _NUMPY.items()}


class InputError(ValueError):
    """A request that does not fit the model: missing, unknown, ragged, or of the wrong dtype or
    shape. The message names the input and what was expected."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, dtype ("f32", "i64" or "bool") and shape, -1 marking the batch."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numpy_dtype(self) -> np.dtype:
        """NumPy's dtype object for `dtype`."""
        return _NUMPY[self.dtype]

    def describe(self) -> str:
        """E.g. "f32 of shape (batch, 64)": the rule error messages give as expected."""
        dims = ", ".join("batch" if d < 0 else str(d) for d in self.shape)
        return f"{self.dtype} of shape ({dims}{',' if len(self.shape) == 1 else ''})"


def _shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class Signature:
    """A model's inputs (from `Model.inputs`) and outputs (dtype and shape found by running the model
    once at batch 1 and once at batch 2), and whether requests may be concatenated: every input has
    the free batch in dim 0 and every output's dim 0 follows it."""

    def __init__(self, inputs: list[TensorSpec], outputs: list[TensorSpec], batched: bool):
        self.inputs = inputs
        self.outputs = outputs
        self.batched = batched

    @classmethod
    def of(cls, model: Any) -> Signature:
        """Reads `model.inputs` and probes the outputs (two small runs)."""
        inputs = [TensorSpec(n, d, tuple(int(v) for v in s)) for n, d, s in model.inputs]
        free = all(len(s.shape) > 0 and s.shape[0] < 0 for s in inputs)
        probe = cls(inputs, [], free)
        ones = _outputs_list(model.run(*probe.example(1)))
        names = model.outputs
        if free:
            twos = _outputs_list(model.run(*probe.example(2)))
            free = all(a.ndim > 0 and a.shape[0] == 1 and b.ndim > 0 and b.shape[0] == 2 for a, b in zip(ones, twos))
        outputs = []
        for name, array in zip(names, ones):
            shape = (-1, *array.shape[1:]) if free else tuple(array.shape)
            outputs.append(TensorSpec(name, _DTYPE_OF.get(array.dtype, str(array.dtype)), shape))
        return cls(inputs, outputs, free)

    def example(self, batch: int, seed: int = 0) -> list[np.ndarray]:
        """Inputs of `batch` items: N(0,1) floats, zero indices (valid for every embedding), true masks."""
        rng = np.random.default_rng(seed)
        arrays = []
        for spec in self.inputs:
            dims = [batch if d < 0 else d for d in spec.shape]
            if spec.dtype == "f32":
                arrays.append(rng.standard_normal(dims, dtype=np.float32))
            elif spec.dtype == "i64":
                arrays.append(np.zeros(dims, dtype=np.int64))
            else:
                arrays.append(np.ones(dims, dtype=np.bool_))
        return arrays

    def check(self, inputs: Any, action: str = "request", from_json: bool = False) -> tuple[list[np.ndarray], int]:
        """The request's arrays in model order and its item count; raises InputError naming the input.

        Arrays follow `Model.run`'s conversion rules (a float32 input takes float32, or a dtype whose
        values float32 holds exactly). `from_json=True` rounds JSON numbers to float32 for f32 inputs,
        as JSON has no float32."""
        expected = ", ".join(f"'{s.name}' ({s.describe()})" for s in self.inputs)
        if not isinstance(inputs, Mapping):
            raise InputError(f"{action}: inputs is a {type(inputs).__name__} (expected a mapping of input name "
                             f"to array: {expected})")
        names = {s.name for s in self.inputs}
        unknown = sorted(str(k) for k in inputs if k not in names)
        if unknown:
            raise InputError(f"{action}: unknown input '{unknown[0]}' (expected inputs: {expected})")
        arrays, items = [], None
        for spec in self.inputs:
            if spec.name not in inputs:
                raise InputError(f"{action}: missing input '{spec.name}' (expected {spec.describe()})")
            array = _as_array(inputs[spec.name], spec, action, from_json)
            if array.ndim != len(spec.shape) or any(d >= 0 and a != d for a, d in zip(array.shape, spec.shape)):
                raise InputError(f"{action}: input '{spec.name}' has shape {_shape_text(array.shape)} "
                                 f"(expected {spec.describe()})")
            if spec.shape and spec.shape[0] < 0:
                if array.shape[0] < 1:
                    raise InputError(f"{action}: input '{spec.name}' has 0 items (expected at least 1 along dim 0)")
                if items is not None and array.shape[0] != items:
                    raise InputError(f"{action}: input '{spec.name}' has {array.shape[0]} items (expected {items}, "
                                     f"as input '{self.inputs[0].name}')")
                items = array.shape[0]
            arrays.append(array)
        return arrays, items or 1


def _as_array(value: Any, spec: TensorSpec, action: str, from_json: bool) -> np.ndarray:
    name = f"input '{spec.name}'"
    if not isinstance(value, np.ndarray) and not _convert.is_torch_tensor(value):
        try:
            value = np.asarray(value)
        except (ValueError, TypeError):
            raise InputError(f"{action}: {name} is a ragged nested list (expected {spec.describe()})") from None
        if from_json and spec.dtype == "f32" and value.dtype.kind in "fi" and value.dtype != np.float32:
            value = value.astype(np.float32)
    try:
        array = _CONVERT[spec.dtype](value, name, action)
    except (TypeError, ValueError) as e:
        raise InputError(str(e)) from None
    # An unpickled array (Ray's object store, multiprocessing) carries an equal but distinct dtype object,
    # which the extension's identity check refuses ("dtype float32 (expected float32, ...)"); a view with
    # NumPy's own dtype object costs no copy.
    return array if array.dtype is spec.numpy_dtype else array.view(spec.numpy_dtype)


def _outputs_list(result: Any) -> list[np.ndarray]:
    return list(result) if isinstance(result, tuple) else [result]


def run_batch(model: Any, signature: Signature, requests: Sequence[Sequence[np.ndarray]]
              ) -> list[dict[str, np.ndarray] | Exception]:
    """Runs checked requests (arrays in model order, from `Signature.check`) with one `model.run` over
    their concatenation and splits the outputs back: {output name: array} per request, in order.

    When the model cannot batch, or the batched run fails, each request runs on its own and a failing
    one gets its exception in its place, so one request never fails the others."""
    names = [s.name for s in signature.outputs]
    if signature.batched and len(requests) > 1:
        counts = [r[0].shape[0] for r in requests]
        try:
            joined = [np.concatenate(parts) for parts in zip(*requests)]
            outputs = _outputs_list(model.run(*joined))
            if all(o.shape[0] == sum(counts) for o in outputs):
                bounds = np.cumsum(counts)[:-1]
                pieces = [np.split(o, bounds) for o in outputs]
                return [dict(zip(names, parts)) for parts in zip(*pieces)]
        except Exception:  # noqa: BLE001 - answered per request below, where the error belongs to one
            pass
    results: list[dict[str, np.ndarray] | Exception] = []
    for arrays in requests:
        try:
            results.append(dict(zip(names, _outputs_list(model.run(*arrays)))))
        except Exception as e:  # noqa: BLE001 - the error goes back to this request's caller
            results.append(e)
    return results


# A larger batch must run each item more than this much faster to be worth its wait. Timings of one
# batch repeated on a small shared host differ by several per cent, so a smaller gain is not
# told apart from noise.
MIN_GAIN = 0.10


def choose_max_batch(model: Any, signature: Signature, limit: int = 64, min_time: float = 0.02,
                     max_call: float = 0.25) -> tuple[int, list[tuple[int, float]]]:
    """The default maximum batch: `model.run` is timed at batch 1, 2, 4, ... `limit` (the fastest of
    repeated calls over `min_time` seconds, at least 3), and the smallest batch is taken that no larger
    one beats by more than MIN_GAIN (10%) per item: where per-item time stops improving by more than
    10%. Looking at every larger batch, not only the next, keeps one slow size (a kernel change, a noisy
    sample) from stopping the search early. Doubling stops once one call takes over `max_call` seconds:
    a batch that slow costs its first request more latency than batching saves. Returns
    (batch, [(batch, seconds per item), ...]); (1, []) for a model that cannot batch."""
    if not signature.batched or limit <= 1:
        return 1, []
    rows: list[tuple[int, float]] = []
    batch = 1
    while batch <= limit:
        inputs = signature.example(batch)
        model.run(*inputs)  # the first run of a new batch plans it
        best, calls, start = float("inf"), 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < min_time:
            t0 = time.perf_counter()
            model.run(*inputs)
            best = min(best, time.perf_counter() - t0)
            calls += 1
            if best > max_call:
                break
        rows.append((batch, best / batch))
        if best > max_call:
            break
        batch *= 2
    for i, (b, per_item) in enumerate(rows):
        if all(later >= (1.0 - MIN_GAIN) * per_item for _, later in rows[i + 1:]):
            return b, rows
    return rows[-1][0], rows
