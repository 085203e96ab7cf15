"""Turn caller arrays (NumPy or torch CPU tensors) into the C-contiguous float32 arrays the core
takes, converting only where no value changes and naming the offending argument otherwise."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

# Every value of these dtypes has an exact float32 twin.
_ALWAYS_EXACT = {np.dtype(t) for t in (np.float16, np.int8, np.uint8, np.int16, np.uint16, np.bool_)}
# These convert when the actual values happen to fit (checked by a round trip).
_EXACT_IF_VALUES_FIT = {np.dtype(t) for t in (np.float64, np.longdouble, np.int32, np.uint32, np.int64, np.uint64)}


def is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is imported
    return torch is not None and isinstance(value, torch.Tensor)


def _torch_to_numpy(value: Any, name: str, action: str) -> np.ndarray:
    # The common case in one call (half the time of the checks below, which are ~1 µs of a small
    # layer's call): .numpy() refuses exactly the tensors they name, and they then say why.
    try:
        return value.numpy()
    except (TypeError, RuntimeError):
        pass
    import torch

    if not value.is_cpu:
        raise ValueError(f"{action}: {name} is on device {value.device} (expected a CPU tensor; call .cpu())")
    if value.is_sparse or value.layout != torch.strided:
        raise TypeError(f"{action}: {name} has layout {value.layout} (expected a dense torch.strided tensor)")
    # resolve_conj/resolve_neg dispatch a torch op each (~1 µs): only when a flag asks for it.
    t = value.detach() if value.requires_grad else value
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.dtype == torch.bfloat16:  # NumPy has no bfloat16; every bfloat16 is an exact float32
        t = t.float()
    return t.numpy()


def as_float32(value: Any, name: str, action: str) -> np.ndarray:
    """`value` as a C-contiguous float32 array; copies only when needed.

    Raises TypeError naming `name` and its dtype when the conversion would change a value."""
    arr = _torch_to_numpy(value, name, action) if is_torch_tensor(value) else np.asarray(value)
    dtype = arr.dtype
    if dtype == np.float32 and arr.flags.c_contiguous:  # the common case, without np.require's cost
        return arr
    if dtype == np.float32 or dtype in _ALWAYS_EXACT:
        return np.require(arr, dtype=np.float32, requirements="C")  # keeps 0-d arrays 0-d
    if dtype in _EXACT_IF_VALUES_FIT:
        with np.errstate(over="ignore", invalid="ignore"):
            converted = np.require(arr, dtype=np.float32, requirements="C")
            exact = np.array_equal(converted.astype(dtype), arr, equal_nan=dtype.kind == "f")
        if exact:
            return converted
        raise TypeError(
            f"{action}: {name} has dtype {dtype} with values float32 cannot hold exactly "
            f"(expected float32; convert it yourself, e.g. .astype(np.float32), to accept the rounding)"
        )
    raise TypeError(f"{action}: {name} has dtype {dtype} (expected float32, or a real dtype float32 holds exactly)")


def as_matrix(value: Any, name: str, action: str) -> np.ndarray:
    """`value` as a 2-D float32 matrix (out, in)."""
    arr = as_float32(value, name, action)
    if arr.ndim != 2:
        raise ValueError(f"{action}: {name} has shape {tuple(arr.shape)} (expected 2 dims, (out, in))")
    return arr


def as_int64(value: Any, name: str, action: str) -> np.ndarray:
    """`value` as a C-contiguous int64 array (token ids, indices); integer dtypes only."""
    arr = _torch_to_numpy(value, name, action) if is_torch_tensor(value) else np.asarray(value)
    if arr.dtype.kind not in "iub" or arr.dtype == np.uint64:
        raise TypeError(f"{action}: {name} has dtype {arr.dtype} (expected an integer dtype, e.g. int64)")
    return np.require(arr, dtype=np.int64, requirements="C")


def as_bool(value: Any, name: str, action: str) -> np.ndarray:
    """`value` as a C-contiguous bool array (masks); bool dtypes only, as a 0/1 float may be a weight."""
    arr = _torch_to_numpy(value, name, action) if is_torch_tensor(value) else np.asarray(value)
    if arr.dtype != np.bool_:
        raise TypeError(f"{action}: {name} has dtype {arr.dtype} (expected bool)")
    return np.require(arr, requirements="C")
