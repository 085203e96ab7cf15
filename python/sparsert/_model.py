"""`sparsert.load` and `sparsert.Model`: a pruned PyTorch model in, a compiled sparsert model out."""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import _convert, _core, importer, select
from .select import FormatsArg

SPRT_MAGIC = b"SPRTMODL"  # cpp/src/io/model_file.hpp


class Model:
    """A compiled model. `run(*inputs)` (or calling the model) takes NumPy arrays or torch CPU tensors
    matching the exported inputs and returns the same kind; the batch (dim 0) may change between
    calls. Concurrent `run` calls from several threads are safe."""

    def __init__(self, core: Any, plan: list[select.Choice] | None = None):
        self._core = core
        self._plan = plan  # None for a model read from a .sprt file

    @property
    def inputs(self) -> list[tuple[str, str, list[int]]]:
        """(name, dtype, shape) per input; -1 in dim 0 marks the free batch."""
        return [(n, d, list(s)) for n, d, s in self._core.inputs()]

    @property
    def outputs(self) -> list[str]:
        return list(self._core.outputs())

    @property
    def compiled(self) -> bool:
        """Whether the model is compiled. False only for a module loaded without `example_inputs`,
        until its first run exports and compiles it from that input; `inputs`, `outputs`, `save` and
        `summary` need a compiled model."""
        return True

    @property
    def plan(self) -> list[select.Choice] | None:
        """The format chosen for each weight at import, with its reason and measured times
        (None for a model read from a .sprt file: the choice is already in its weights)."""
        return None if self._plan is None else list(self._plan)

    def run(self, *inputs: Any) -> Any:
        specs = self._core.inputs()
        if len(inputs) != len(specs):
            names = ", ".join(n for n, _, _ in specs)
            raise ValueError(f"running the model: got {len(inputs)} inputs (expected {len(specs)}: {names})")
        torch_out = False
        arrays = []
        for value, (name, dtype, _) in zip(inputs, specs):
            array, is_torch = _as_array(value, name, dtype)
            torch_out = torch_out or is_torch
            arrays.append(array)
        outputs = self._core.run(arrays)
        if torch_out:
            import torch

            outputs = [torch.from_numpy(o) for o in outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    __call__ = run

    def profile(self, *inputs: Any, repeats: int = 10) -> list[dict]:
        """Each operator's median time over `repeats` runs on `inputs`: dicts with name, op, kernel, seconds
        (0 for a reshape that is not a graph output: it reads its input's storage and does not run)."""
        specs = self._core.inputs()
        arrays = [_as_array(v, name, dtype)[0] for v, (name, dtype, _) in zip(inputs, specs)]
        if len(arrays) != len(specs):
            raise ValueError(f"profiling the model: got {len(inputs)} inputs (expected {len(specs)})")
        seconds = self._core.profile(arrays, repeats)
        batch = arrays[0].shape[0] if arrays and arrays[0].ndim else 1
        nodes = self._core.nodes(batch)
        return [{"name": n["name"], "op": n["op"], "kernel": n["kernel"], "seconds": t} for n, t in zip(nodes, seconds)]

    def micro_batch(self, batch: int) -> int:
        """Items per slice that a run of this batch takes (`load(micro_batch=)`); the batch itself when it
        runs whole."""
        return self._core.micro_batch(batch)

    def save(self, path: str | os.PathLike) -> None:
        """Writes one self-contained .sprt file (graph, weights in their chosen formats, constants);
        `sparsert.load(path)` reads it back without torch."""
        self._core.save(os.fspath(path))

    def summary(self, batch: int = 1, inputs: tuple | None = None) -> str:
        """Per weighted layer: name, op, kernel, weight shape, density, bytes, and the speed-up over the
        dense path the cost model predicted at import (at the example's rows; not kept in .sprt files).
        With `inputs` (a tuple of run arguments, best at the example's batch), also the predicted and
        the measured (profiled) µs per layer, and the time of the operators without weights."""
        measured = None
        if inputs is not None:
            measured = [p["seconds"] for p in self.profile(*inputs)]  # node order, as nodes() below
            batch = np.asarray(inputs[0]).shape[0] if np.asarray(inputs[0]).ndim else 1
        header = f"{'layer':<30} {'op':<16} {'kernel':<24} {'weight':<12} {'density':>8} {'bytes':>11} {'vs dense':>9}"
        if measured is not None:
            header += f" {'pred µs':>9} {'meas µs':>9}"
        lines = [header, "-" * len(header)]
        planned = {c.layer: c for c in self._plan} if self._plan else {}
        count, other = 0, 0.0
        for index, node in enumerate(self._core.nodes(batch)):
            count += 1
            if not node["weights"] and measured is not None:
                other += measured[index]
            for g, w in enumerate(node["weights"]):
                layer = node["name"] if len(node["weights"]) == 1 else f"{node['name']}[group {g}]"
                choice = planned.get(layer)
                # A Dense weight stores every entry; the pruned density is known from the import's analysis.
                density = choice.structure.density if choice else w.density
                line = (f"{layer[:30]:<30} {node['op']:<16} {node['kernel'][:24]:<24} {w.shape[0]}x{w.shape[1]:<7} "
                        f"{density:>8.3f} {w.nbytes:>11,} " + (f"{choice.speedup:>8.2f}x" if choice else f"{'-':>9}"))
                if measured is not None:
                    predicted = f"{choice.times_us[choice.format]:>9.1f}" if choice else f"{'-':>9}"
                    line += f" {predicted} {measured[index] * 1e6 / len(node['weights']):>9.1f}"
                lines.append(line)
        tail = f"{count} operators"
        if measured is not None:
            tail += f"; operators without weights: {other * 1e6:.1f} µs measured"
        lines.append(tail)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"sparsert.Model(inputs={self.inputs}, outputs={self.outputs})\n{self.summary()}"


def _as_array(value: Any, name: str, dtype: str) -> tuple[np.ndarray, bool]:
    """`value` as the C-contiguous array input `name` takes, and whether it came from torch."""
    is_torch = _convert.is_torch_tensor(value)
    action = "running the model"
    convert = {"f32": _convert.as_float32, "i64": _convert.as_int64, "bool": _convert.as_bool}[dtype]
    return convert(value, f"input '{name}'", action), is_torch


def _compile(program: Any, example_inputs: tuple | None, example_batch: int, formats: FormatsArg,
             num_threads: int | None, micro_batch: int) -> Model:
    return Model(*importer.compile(program, example_inputs, example_batch, formats, num_threads, micro_batch))


class _LazyModel(Model):
    """A module given without example inputs: exported at the first run, from that input."""

    def __init__(self, module: Any, formats: FormatsArg, num_threads: int | None, micro_batch: int):
        self._module, self._formats, self._threads, self._micro_batch = module, formats, num_threads, micro_batch
        self._lock = threading.Lock()
        self._compiled: Model | None = None

    def _ensure(self, inputs: tuple) -> Model:
        with self._lock:
            if self._compiled is None:
                self._compiled = _compile_module(self._module, inputs, self._formats, self._threads, self._micro_batch)
            return self._compiled

    @property
    def compiled(self) -> bool:
        return self.__dict__.get("_compiled") is not None

    def run(self, *inputs: Any) -> Any:
        return self._ensure(inputs).run(*inputs)

    __call__ = run

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self.__dict__.get("_compiled") is None:
            raise AttributeError(f"{name}: the model is compiled at its first run (or pass example_inputs=)")
        return getattr(self._compiled, name)


def _compile_module(module: Any, example_inputs: Any, formats: FormatsArg, num_threads: int | None,
                    micro_batch: int) -> Model:
    import torch

    if not isinstance(example_inputs, tuple):
        example_inputs = (example_inputs,)
    example_inputs = tuple(torch.from_numpy(np.asarray(a)) if isinstance(a, np.ndarray) else a for a in example_inputs)
    tensors = [a for a in example_inputs if isinstance(a, torch.Tensor)]
    example_batch = int(tensors[0].shape[0]) if tensors and tensors[0].dim() else 1
    return _compile(importer.capture(module, example_inputs), example_inputs, example_batch, formats, num_threads,
                    micro_batch)


def _file_kind(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if head == SPRT_MAGIC:
        return "sprt"
    if head[:4] != b"PK\x03\x04":
        raise ValueError(
            f"loading '{path}': the file is neither a PyTorch checkpoint nor a torch.export archive "
            f"(it does not start with a zip header; first bytes {head!r})"
        )
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return "export"
    if any(n.endswith("data.pkl") for n in names):
        return "checkpoint"
    raise ValueError(f"loading '{path}': a zip file without a PyTorch checkpoint or export archive inside")


def _effective_state_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """Folds torch.nn.utils.prune reparametrisations: `x_orig` · `x_mask` → `x`."""
    out = {}
    for key, value in state.items():
        if key.endswith("_orig"):
            base = key[: -len("_orig")]
            mask = state.get(base + "_mask")
            if mask is None:
                raise ValueError(f"state dict: '{key}' has no matching '{base}_mask'")
            out[base] = value * mask
        elif key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue
        else:
            out[key] = value
    return out


def load(source: Any, *, model: Any = None, example_inputs: Any = None, formats: FormatsArg = "auto",
         num_threads: int | None = None, micro_batch: int = 0, trusted: bool = False,
         device: str = "cpu") -> Model:
    """Compiles a pruned PyTorch model for sparsert.

    `source`: a `.sprt` file written by `Model.save` (needs no torch); an `nn.Module` (traced from `example_inputs`, or at the first `run`); a path to a
    state dict saved with `torch.save(model.state_dict(), path)` together with `model=` (an
    instance of the architecture; `torch.nn.utils.prune` reparametrisations are folded); or a path
    to a `torch.export` archive (`.pt2`). The kind of file is read from its content.
    `formats`: "auto" (the cost model's choice per layer; where it is a close call, the close formats
    are timed on the layer's own weight, a few hundredths of a second each), "predicted" (the cost
    model's choice alone: no timing, the same formats on every load), one format for all layers
    ("dense", "csr", "bsr", "bsr4x4", "nm", "nm2:4"), or a dict {layer name: format} (others "auto").
    `num_threads`: threads for run (default: sparsert.set_num_threads / physical cores).
    `micro_batch`: a batch runs in slices of at most this many items when every layer treats items
    independently (default 0: slices whose intermediates fit the caches; large batches of BERT-style
    models run ~1.25x faster so). The last layers, when at the whole batch they fit in one slice's
    memory (a classifier's head after its pooling), then run once at the whole batch.
    `trusted=True` allows a file that pickles a whole module (it runs code while loading).
    `device`: "cpu", the only one the graph executor runs on today; "cuda" raises NotImplementedError
    (the CUDA kernels exist in C++, built when nvcc is found, but the executor does not use them yet).
    """
    if str(device) != "cpu":  # str(): a torch.device prints as "cpu", "cuda" or "cuda:0"
        if str(device).split(":")[0] == "cuda":
            raise NotImplementedError(f"load(device={str(device)!r}): the graph executor has no CUDA backend yet "
                                      "(its kernels are built in C++ when nvcc is found); use device='cpu'")
        raise ValueError(f"load: device is {str(device)!r} (expected 'cpu' or 'cuda')")
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file() and _file_kind(Path(source)) == "sprt":
        return Model(_core.Model.load(os.fspath(source), num_threads or 0, micro_batch))
    import torch

    if isinstance(source, torch.nn.Module):
        if example_inputs is None:
            return _LazyModel(source, formats, num_threads, micro_batch)
        return _compile_module(source, example_inputs, formats, num_threads, micro_batch)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"load: source is a {type(source).__name__} (expected an nn.Module or a path)")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"loading '{path}': no such file")
    kind = _file_kind(path)
    if kind == "export":
        program = torch.export.load(str(path))
        stored = getattr(program, "example_inputs", None)  # (args, kwargs) kept in the archive, if any
        examples = tuple(stored[0]) if stored and not stored[1] else None
        return _compile(program, examples, _example_batch_of(program), formats, num_threads, micro_batch)
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # a pickled module, or a damaged file
        if not trusted and "Weights only load failed" in str(e):
            raise ValueError(
                f"loading '{path}': the file pickles Python objects (e.g. a whole nn.Module), which runs code "
                "when loaded; pass trusted=True if you trust its source, or save model.state_dict() instead"
            ) from None
        if not trusted:
            raise ValueError(f"loading '{path}': not a readable PyTorch checkpoint ({e})") from None
        state = torch.load(str(path), map_location="cpu", weights_only=False)
    if isinstance(state, torch.nn.Module):
        return load(state, example_inputs=example_inputs, formats=formats, num_threads=num_threads,
                    micro_batch=micro_batch)
    if not isinstance(state, Mapping):
        raise ValueError(f"loading '{path}': the checkpoint holds a {type(state).__name__} (expected a state dict)")
    if model is None:
        raise ValueError(
            f"loading '{path}': the file is a state dict, which holds weights but not the architecture; "
            "pass model=<an instance of the model class>, e.g. sparsert.load(path, model=MyNet())"
        )
    effective = _effective_state_dict(state)
    _load_into(model, effective, path)
    if example_inputs is None:
        return _LazyModel(model, formats, num_threads, micro_batch)
    return _compile_module(model, example_inputs, formats, num_threads, micro_batch)


def _load_into(model: Any, state: dict, path: Path) -> None:
    import torch

    # A model that still carries prune hooks takes the folded weights through its own parameters.
    for module in model.modules():
        for hook in list(getattr(module, "_forward_pre_hooks", {}).values()):
            if isinstance(hook, torch.nn.utils.prune.BasePruningMethod):
                torch.nn.utils.prune.remove(module, hook._tensor_name)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"loading '{path}': the state dict does not match model= (missing {list(missing)}, "
            f"unexpected {list(unexpected)})"
        )


def _example_batch_of(program: Any) -> int:
    for spec in program.graph_signature.input_specs:
        if spec.kind.name == "USER_INPUT":
            node = next(n for n in program.graph.nodes if n.name == spec.arg.name)
            shape = getattr(node.meta.get("val"), "shape", None)
            if shape is not None and len(shape):
                coef, const = importer.affine(shape[0])
                return 1 if coef else const
    return 1
