"""A first look at sparsert: ``python -m sparsert.demo``.

1. A whole model: prunes an MLP 784-2048-2048-10 to 90% with ``torch.nn.utils.prune``, compiles it
   with ``sparsert.load``, saves and reloads the ``.sprt`` file, checks the output against torch
   eager and times them side by side at batch 1 and 32. Torch runs the pruned model as a user would
   after ``prune.remove`` (plain weights with zeros: the masked reparametrisation would multiply
   weight by mask on every call and flatter sparsert); ONNX Runtime runs the same weights too when
   ``onnxruntime`` and ``onnx`` are installed (``pip install ".[bench]"``).
2. One layer four ways: prunes a random 3072×768 layer (BERT-base's FFN output) unstructured, in
   4×4 blocks and 2:4, packs each into its format, checks it against float64, and times it against
   torch's dense ``F.linear`` on the same zero-filled weight.
"""

from __future__ import annotations

import argparse

import numpy as np

from . import available_isas, formats, get_num_threads, linear
from ._model import load
from ._timing import time_interleaved


def model_demo(min_time: float, directory: str) -> None:
    import torch
    import torch.nn as nn
    import torch.nn.utils.prune as prune

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10))
    layers = [m for m in model if isinstance(m, nn.Linear)]
    for m in layers:
        prune.l1_unstructured(m, "weight", amount=0.9)  # the reparametrisation stays on: load folds it
    model.eval()
    compiled = load(model, example_inputs=(torch.randn(1, 784),))
    path = f"{directory}/mlp.sprt"
    compiled.save(path)
    reloaded = load(path)
    # What a user runs in torch after prune.remove: the same layers with the zeros in plain weights.
    baked = nn.Sequential(*(nn.Linear(m.in_features, m.out_features) if isinstance(m, nn.Linear) else m for m in model))
    with torch.no_grad():
        for mine, pruned in zip(baked, model):
            if isinstance(pruned, nn.Linear):
                mine.weight.copy_(pruned.weight)
                mine.bias.copy_(pruned.bias)
    baked.eval()
    ort = _ort_session(baked, torch.get_num_threads())
    print(f"model: MLP 784-2048-2048-10, 90% pruned with torch.nn.utils.prune, saved to {path} and reloaded")
    print(compiled.summary())
    for batch in (1, 32):
        x = torch.randn(batch, 784)
        with torch.no_grad():
            ref = baked(x)
        y = reloaded.run(x)
        err = float((y.double() - ref.double()).norm() / ref.double().norm())

        def eager():
            with torch.no_grad():
                return baked(x)

        tools = {"torch": eager, "sparsert": lambda: reloaded.run(x)}
        if ort is not None:
            xn = x.numpy()
            tools["onnxruntime"] = lambda: ort.run(None, {"input": xn})
        t = time_interleaved(tools, min_time=min_time)
        line = f"batch {batch:>2}: torch eager {t['torch'].median * 1e3:7.3f} ms"
        if ort is not None:
            line += f", onnxruntime {t['onnxruntime'].median * 1e3:7.3f} ms"
        best = min((k for k in t if k != "sparsert"), key=lambda k: t[k].median)
        print(f"{line}, sparsert {t['sparsert'].median * 1e3:7.3f} ms ({t[best].median / t['sparsert'].median:.2f}x "
              f"the faster of {' and '.join(k for k in t if k != 'sparsert')}), rel err {err:.1e}")
    if ort is None:
        print("(onnxruntime and onnx not installed: pip install \".[bench]\" adds the ONNX Runtime column)")
    print()


def _ort_session(mlp, threads: int):
    """An ONNX Runtime session running the same Linear/ReLU stack (weights with their zeros), or None
    when onnxruntime or onnx is missing. The graph is written by hand: Gemm and Relu nodes."""
    try:
        import onnxruntime
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    import torch.nn as nn

    nodes, weights, current = [], [], "input"
    for i, m in enumerate(mlp):
        out = f"h{i}"
        if isinstance(m, nn.Linear):
            weights += [numpy_helper.from_array(m.weight.detach().numpy(), f"w{i}"),
                        numpy_helper.from_array(m.bias.detach().numpy(), f"b{i}")]
            nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out], transB=1))
        else:
            nodes.append(helper.make_node("Relu", [current], [out]))
        current = out
    nodes[-1].output[0] = "output"
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 784])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 10])], weights)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(helper.make_model(graph).SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])


def _prune(w: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, w, np.float32(0))


def pruned_layers(out: int, inp: int, seed: int = 0) -> dict:
    """name -> (packed weight, zero-filled dense weight)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((out, inp)).astype(np.float32)
    mag = np.abs(w)
    unstructured = _prune(w, mag >= np.quantile(mag, 0.9))
    block_l1 = mag.reshape(out // 4, 4, inp // 4, 4).sum(axis=(1, 3))
    block_keep = np.kron(block_l1 >= np.quantile(block_l1, 0.9), np.ones((4, 4), dtype=bool))
    blocks = _prune(w, block_keep)
    groups = mag.reshape(out, inp // 4, 4)
    rank = np.argsort(np.argsort(-groups, axis=2), axis=2)
    two_four = _prune(w, (rank < 2).reshape(out, inp))
    return {
        "Dense (unpruned)": (formats.Dense(w), w),
        "CSR, 90% unstructured": (formats.CSR(unstructured), unstructured),
        "BSR 4x4, 90% of blocks": (formats.BSR(blocks, block=(4, 4)), blocks),
        "NM 2:4": (formats.NM(two_four, n=2, m=4), two_four),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds of timed calls per measurement")
    args = parser.parse_args(argv)
    import torch
    import torch.nn.functional as F

    threads = get_num_threads()
    torch.set_num_threads(threads)
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        model_demo(args.min_time, directory)
    print(f"layer: W 3072x768, {threads} threads, ISAs: {available_isas()}, torch {torch.__version__}")
    print(f"{'format':<24}{'density':>8}{'MiB':>8}{'rel err':>10}"
          f"{'batch 1 µs':>14}{'vs torch':>10}{'batch 32 µs':>14}{'vs torch':>10}")
    rng = np.random.default_rng(1)
    for name, (packed, dense) in pruned_layers(3072, 768).items():
        wt = torch.from_numpy(dense)
        errors, cells = [], ""
        for batch in (1, 32):
            x = rng.standard_normal((batch, 768)).astype(np.float32)
            xt = torch.from_numpy(x)
            ref = x.astype(np.float64) @ dense.astype(np.float64).T
            errors.append(np.linalg.norm(linear(x, packed) - ref) / np.linalg.norm(ref))
            t = time_interleaved(
                {"torch": lambda: F.linear(xt, wt), "sparsert": lambda: linear(x, packed)}, min_time=args.min_time
            )
            cells += f"{t['sparsert'].median * 1e6:>14.1f}{t['torch'].median / t['sparsert'].median:>9.2f}x"
        print(f"{name:<24}{packed.density:>8.3f}{packed.nbytes / 2**20:>8.2f}{max(errors):>10.1e}{cells}")
    print("'vs torch' = torch F.linear time on the zero-filled weight ÷ sparsert time (medians, side by side).")


if __name__ == "__main__":
    main()
