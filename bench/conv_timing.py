"""One convolution through sparsert in each of a few formats, and onnxruntime beside them on the same
weights, timed side by side in this process (sparsert._timing: interleaved calls, onnxruntime in
blocks of its own). Also for comparing builds: run it against each in turn, alternating, with
PYTHONPATH pointing at each build's package; a convolution with all-zero weights isolates the work
around the kernel.

    python bench/conv_timing.py 64 128 3 2 56                        # CSR at 10%, 1%, 0
    python bench/conv_timing.py 512 512 3 1 7 --densities 0.1,0
    python bench/conv_timing.py 128 128 3 1 28 --densities 2:4 --formats dense,nm2:4 --ort

Weights N(0, 1), each entry kept with probability DENSITY (seed 0), or with `2:4` the 2 largest |w|
of every 4 consecutive inputs; every format in --formats is forced (the auto choice may pick another);
batch 1, padding K // 2, bias, ReLU. Prints, per weight, each tool's median µs and the ratio of
onnxruntime's median to it (above 1: faster than onnxruntime), after checking every output against
torch (relative error below 1e-4).
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import sparsert
from sparsert._timing import time_blocks

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pruned_conv(cin: int, cout: int, kernel: int, stride: int, density: str) -> torch.nn.Module:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
    with torch.no_grad():
        w = torch.randn_like(conv.weight)
        if density == "2:4":
            rows = w.reshape(cout, -1)
            cols = rows.shape[1] - rows.shape[1] % 4
            groups = rows[:, :cols].reshape(cout, -1, 4)
            groups.scatter_(2, groups.abs().argsort(2)[:, :, :2], 0.0)
            rows[:, :cols] = groups.reshape(cout, cols)
            w = rows.reshape(w.shape)
        else:
            w = w * (torch.rand_like(w) < float(density))
        conv.weight.copy_(w)
    return torch.nn.Sequential(conv, torch.nn.ReLU()).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("cin", "cout", "kernel", "stride", "size"):
        p.add_argument(name, type=int)
    p.add_argument("--densities", default="0.1,0.01,0", help="fractions kept, or 2:4")
    p.add_argument("--formats", default="csr", help="sparsert formats, each forced, e.g. dense,nm2:4")
    p.add_argument("--ort", action="store_true", help="onnxruntime on the same weights (pip install '.[bench]')")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per tool and weight")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sparsert.set_num_threads(a.threads)
    print(f"conv {a.cin}->{a.cout} k{a.kernel} s{a.stride} {a.size}x{a.size}, {a.threads} thread(s), medians:")
    for density in a.densities.split(","):
        net = pruned_conv(a.cin, a.cout, a.kernel, a.stride, density)
        x = torch.randn(1, a.cin, a.size, a.size)
        ref = net(x).detach().numpy()
        calls, outputs = {}, {}
        for fmt in a.formats.split(","):
            model = sparsert.load(net, example_inputs=(x,), formats=fmt)
            calls[fmt] = lambda model=model: model.run(x)
            outputs[fmt] = lambda model=model: np.asarray(model.run(x))
        blocks = [calls]
        if a.ort:
            from baselines import ort_call, ort_session
            from models import export_onnx

            with tempfile.TemporaryDirectory() as folder:
                path = str(Path(folder) / "conv.onnx")
                export_onnx(net, x, path)
                ort = ort_call(ort_session(path, a.threads), x.numpy())
            outputs["onnxruntime"] = ort
            blocks.append({"onnxruntime": ort})
        for name, out in outputs.items():
            err = np.linalg.norm(out() - ref) / max(np.linalg.norm(ref), 1e-30)
            if not err < 1e-4:
                sys.exit(f"conv_timing: {name} at density {density}: relative error {err:.2e} against torch")
        times = time_blocks(blocks, min_time=a.min_time * (2 if a.ort else 1))
        base = times["onnxruntime"].median if a.ort else None
        cells = [f"{name} {t.median * 1e6:.0f} us" + (f" ({base / t.median:.2f}x)" if base and name != "onnxruntime" else "")
                 for name, t in times.items()]
        print(f"  density {density}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
