"""sparsert: pruned neural-network layers at the speed their sparsity allows.

    import sparsert
    model = sparsert.load(pruned_module, example_inputs=(x,))  # or a state dict / .pt2 path
    y = model.run(x)                                          # numpy or torch in, same kind out
    w = sparsert.formats.CSR(pruned_weight)                   # (out, in), numpy or torch
    y = sparsert.linear(x, w, bias, activation="relu")        # act(x @ W.T + bias)
"""

from __future__ import annotations

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
]
