"""sparsert: pruned neural-network layers at the speed their sparsity allows.

    import sparsert
    model = sparsert.load(pruned_module, example_inputs=(x,))  # or a state dict / .pt2 path
    y = model.run(x)                                          # numpy or torch in, same kind out
    w = sparsert.formats.CSR(pruned_weight)                   # (out, in), numpy or torch
    y = sparsert.linear(x, w, bias, activation="relu")        # act(x @ W.T + bias)
    model = sparsert.sparsify(pruned_module, example_inputs=(x,))  # stays an nn.Module (sparsert.eager)
"""

from __future__ import annotations

import logging
from typing import Any

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "sparsert's compiled extension sparsert._core is missing or was built for another Python; "
        "rebuild it from the source tree with `pip install .`"
    ) from exc

from . import formats
from ._linear import ACTIVATIONS, available_isas, get_num_threads, kernel_name, linear, set_num_threads
from ._model import Model, load
from .formats import BSR, CSC, CSR, NM, Dense
from .importer import UnsupportedModelError

ModelFileError = _core.ModelFileError

# Diagnostics (e.g. why a model was exported at a fixed batch) go to this logger, silent unless the
# application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> Any:
    # sparsify, eager and prune import torch, which `import sparsert` must not (a .sprt needs no torch).
    if name in ("sparsify", "eager", "prune"):
        import importlib

        module = importlib.import_module(f".{'eager' if name == 'sparsify' else name}", __name__)
        return module.sparsify if name == "sparsify" else module
    raise AttributeError(f"module 'sparsert' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "BSR",
    "CSC",
    "CSR",
    "Dense",
    "Model",
    "ModelFileError",
    "NM",
    "UnsupportedModelError",
    "__version__",
    "available_isas",
    "formats",
    "get_num_threads",
    "kernel_name",
    "linear",
    "load",
    "set_num_threads",
    "sparsify",
]
