"""One convolution through sparsert, timed in its process: for comparing builds (run it against each
in turn, alternating, e.g. with PYTHONPATH pointing at each build's package) on the work around the
kernel, which a convolution with all-zero weights isolates.

    python bench/conv_timing.py 64 128 3 2 56                  # 3x3 stride 2, 64 -> 128 channels, 56x56
    python bench/conv_timing.py 512 512 3 1 7 --densities 0.1,0

Weights N(0, 1), each entry kept with probability DENSITY (seed 0), CSR forced (`formats="csr"`, as
the auto choice may pick another format on near-empty weights); batch 1, padding k // 2, bias.
Prints the median of --calls calls of `Model.run` per density.
"""
import argparse
import statistics
import time

import torch

import sparsert


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("cin", "cout", "kernel", "stride", "size"):
        p.add_argument(name, type=int)
    p.add_argument("--densities", default="0.1,0.01,0")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--calls", type=int, default=300)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sparsert.set_num_threads(a.threads)
    cells = []
    for density in (float(d) for d in a.densities.split(",")):
        torch.manual_seed(0)
        conv = torch.nn.Conv2d(a.cin, a.cout, a.kernel, a.stride, a.kernel // 2)
        with torch.no_grad():
            w = torch.randn_like(conv.weight)
            conv.weight.copy_(w * (torch.rand_like(w) < density))
        x = torch.randn(1, a.cin, a.size, a.size)
        model = sparsert.load(torch.nn.Sequential(conv), example_inputs=(x,), formats="csr")
        for _ in range(20):
            model.run(x)
        times = []
        for _ in range(a.calls):
            t = time.perf_counter()
            model.run(x)
            times.append(time.perf_counter() - t)
        cells.append(f"density {density:g}: {statistics.median(times) * 1e6:.0f} us")
    print(f"conv {a.cin}->{a.cout} k{a.kernel} s{a.stride} {a.size}x{a.size}, {a.threads} thread(s): " + ", ".join(cells))


if __name__ == "__main__":
    main()
