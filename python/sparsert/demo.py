"""A first look at sparsert: ``python -m sparsert.demo``.

Prunes a random 3072×768 layer (BERT-base's FFN output) four ways, packs each into its format,
checks the result against float64, and times it against torch's dense ``F.linear`` on the same
zero-filled weight, side by side in this process, at batch 1 and 32.
"""

from __future__ import annotations

import argparse

import numpy as np

from . import available_isas, formats, get_num_threads, linear
from ._timing import time_interleaved


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
    print(f"sparsert demo: W 3072x768, {threads} threads, ISAs: {available_isas()}, torch {torch.__version__}")
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
