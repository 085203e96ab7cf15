"""Writes the fuzzer's seed corpus (tests/fuzz/corpus/*.sprt): tiny models that together hold every
weight format, each value kind and dtype, and the common operator families, so that mutations start
from files that reach every branch of the reader and most operators. Each file stays a few KB:
libFuzzer mutates small inputs faster. Regenerate after a model-file format change:

    python3 tests/fuzz/make_corpus.py tests/fuzz/corpus

The corpus's regression_*.sprt are not made here: each is the input of a fuzzer finding, kept as the
fuzzer wrote it (the harness reseals size and checksum), replayed by the ctest case fuzz_corpus_replay
and reduced to their causes in tests/cpp/test_fuzz_regressions.cpp where the library was at fault.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    import torch
    import torch.nn.functional as F

    import sparsert

    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "corpus")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)

    def pruned(module: torch.nn.Module, keep: float = 0.5) -> torch.nn.Module:
        with torch.no_grad():
            for p in module.parameters():
                if p.dim() >= 2:
                    p[torch.rand_like(p) > keep] = 0
        return module.eval()

    def mlp(fmt: str) -> torch.nn.Module:
        m = pruned(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)))
        if fmt.startswith("nm"):  # 2 of every 4 columns kept
            with torch.no_grad():
                for layer in (m[0], m[2]):
                    layer.weight[:, torch.arange(layer.weight.shape[1]) % 4 >= 2] = 0
        return m

    x = torch.randn(2, 8)
    for fmt in ("dense", "csr", "csc", "bsr4x4", "nm2:4"):
        sparsert.load(mlp(fmt), example_inputs=(x,), formats=fmt).save(out / f"mlp_{fmt.replace(':', '_')}.sprt")

    class Conv(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 4, 3, padding=1)
            self.dw = torch.nn.Conv2d(4, 4, 3, groups=4)
            self.bn = torch.nn.BatchNorm2d(4)
            self.fc = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.max_pool2d(torch.relu(self.conv(x)), 2)
            y = self.bn(self.dw(F.pad(y, (1, 1, 1, 1))))
            return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))

    sparsert.load(pruned(Conv()), example_inputs=(torch.randn(2, 2, 6, 6),)).save(out / "conv.sprt")

    class Text(torch.nn.Module):
        """Token ids and a bool mask: embedding, layer norm, attention with a mask, where, cast."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(10, 8)
            self.norm = torch.nn.LayerNorm(8)
            self.qkv = torch.nn.Linear(8, 24)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.norm(self.embed(ids) + torch.arange(ids.shape[1]).unsqueeze(-1))
            q, k, v = self.qkv(h).chunk(3, dim=-1)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1))
            y = self.out(torch.where(mask.unsqueeze(-1), a, torch.zeros_like(a)).mean(1))
            return y.softmax(-1), (y > 0).long().cumsum(-1)

    ids = torch.randint(0, 10, (2, 4))
    mask = torch.ones(2, 4, dtype=torch.bool)
    sparsert.load(pruned(Text()), example_inputs=(ids, mask)).save(out / "text.sprt")

    class Heads(torch.nn.Module):
        """Two heads viewed out of a fused q/k/v product and written back to token rows (sdpa_rows)."""

        def __init__(self) -> None:
            super().__init__()
            self.qkv = torch.nn.Linear(8, 24)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, n, _ = x.shape
            q, k, v = self.qkv(x).view(b, n, 3, 2, 4).permute(2, 0, 3, 1, 4)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, n, 8)

    sparsert.load(pruned(Heads()), example_inputs=(torch.randn(2, 3, 8),)).save(out / "heads.sprt")

    for path in sorted(out.glob("*.sprt")):
        print(f"{path}: {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
