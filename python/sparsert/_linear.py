from __future__ import annotations

import sys
from typing import Any, Optional

from . import _core
from ._convert import as_float32, is_torch_tensor

# The epilogue activations, in the core's order (sparsert/format.hpp).
ACTIVATIONS = tuple(name for name in _core.codes()["activation"] if name != "none")


def linear(
    x: Any,
    w: _core.Weight,
    bias: Optional[Any] = None,
    activation: Optional[str] = None,
    *,
    num_threads: Optional[int] = None,
) -> Any:
    """``y = act(x @ W.T + bias)`` with bias and activation fused into the kernel.

    Args:
        x: input of shape ``(..., in)``: NumPy array or torch CPU tensor; non-contiguous inputs
            are copied; dtypes other than float32 are converted when no value changes.
        w: a weight from :mod:`sparsert.formats` (Dense, CSR, BSR or NM) of shape ``(out, in)``.
        bias: ``(out,)`` values, or None.
        activation: None, or one of ``relu``, ``relu6``, ``gelu`` (erf form), ``gelu_tanh``,
            ``silu``, ``sigmoid``, ``tanh``, ``hardswish``.
        num_threads: threads for this call (default: :func:`sparsert.get_num_threads`).

    Returns:
        ``(..., out)`` float32, a NumPy array if ``x`` was one, a torch tensor if ``x`` was one.
        NaN/Inf in ``x`` propagate through stored weights as IEEE arithmetic does; pruned
        (absent) weights do not touch them.

    Raises:
        TypeError: ``w`` is not a sparsert weight, or a dtype cannot be converted exactly.
        ValueError: shapes do not match, or an unknown activation / thread count.
    """
    if not isinstance(w, _core.Weight):
        raise TypeError(
            f"linear: w is a {type(w).__name__} (expected sparsert.formats.Dense, CSR, BSR or NM; "
            f"build one from the weight matrix, e.g. sparsert.formats.CSR(W))"
        )
    out_features, in_features = w.shape
    x_arr = as_float32(x, "x", "linear")
    if x_arr.ndim == 0 or x_arr.shape[-1] != in_features:
        raise ValueError(
            f"linear: x has shape {tuple(x_arr.shape)} but w has shape {tuple(w.shape)} "
            f"(expected x of shape (..., {in_features}))"
        )
    bias_arr = None
    if bias is not None:
        bias_arr = as_float32(bias, "bias", "linear")
        if bias_arr.shape != (out_features,):
            raise ValueError(
                f"linear: bias has shape {tuple(bias_arr.shape)} but w has shape {tuple(w.shape)} "
                f"(expected ({out_features},))"
            )
    if activation is not None and activation not in ACTIVATIONS:
        raise ValueError(f"linear: unknown activation {activation!r} (expected None or one of {', '.join(ACTIVATIONS)})")
    if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"linear: num_threads is {num_threads!r} (expected a positive int, or None for the default)")

    matrix = x_arr.ndim == 2  # no reshapes either way: ~0.5 µs of a small layer's call
    y = _core.linear(w, x_arr if matrix else x_arr.reshape(-1, in_features), bias_arr, activation or "none",
                     num_threads or 0)
    if not matrix:
        y = y.reshape(*x_arr.shape[:-1], out_features)
    return sys.modules["torch"].from_numpy(y) if is_torch_tensor(x) else y


def set_num_threads(n: int) -> None:
    """Default thread count for :func:`linear`; ``n`` ≤ 0 restores the default (physical cores)."""
    if not isinstance(n, int):
        raise ValueError(f"set_num_threads: n is {n!r} (expected an int)")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """Threads :func:`linear` uses when a call does not say."""
    return _core.get_num_threads()


def kernel_name(w: _core.Weight, batch: int) -> str:
    """Name of the kernel :func:`linear` runs for ``w`` at this batch, e.g. ``spmm_csr_f32_avx2_32``."""
    return _core.linear_kernel_name(w, batch)


def available_isas() -> str:
    """Instruction sets this CPU offers to sparsert's kernels, best first (e.g. ``"avx2 ref"``)."""
    return _core.available_isas()
