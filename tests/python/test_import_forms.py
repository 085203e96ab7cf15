"""Graph forms that real models produce and the importer must take: in-place operators (torchvision's
`out += identity`, `ReLU(inplace=True)`), constant padding, `chunk`, arithmetic on symbolic sizes
(nn.MultiheadAttention's batch × heads), creation ops of fixed shape, and programs decomposed before
saving. Each against torch eager at two batch sizes on fresh random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import sparsert

torch.set_num_threads(1)


def rel_err(y, ref) -> float:
    y, ref = np.asarray(y, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30))


def randomise_norms(model: nn.Module) -> nn.Module:
    """Batch norm statistics away from (0, 1), so that folding them is tested."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def assert_matches_eager(model: nn.Module, shape: tuple, compiled=None, batches=(1, 3)) -> None:
    compiled = compiled or sparsert.load(model, example_inputs=(torch.randn(2, *shape),))
    for batch in batches:
        x = torch.randn(batch, *shape)
        with torch.no_grad():
            ref = model(x)
        assert rel_err(compiled.run(x), ref) < 1e-5, batch


class InPlaceBlock(nn.Module):
    """A residual block written as torchvision writes it, with every in-place form."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)
        self.act = nn.Hardswish(inplace=True)
        self.drop = nn.Dropout(0.3, inplace=True)
        self.fc = nn.Linear(6, 5)

    def forward(self, x):
        out = self.relu(self.bn(self.conv(x)))
        out += x
        out = self.act(out)
        out.mul_(0.5).add_(1.0)
        out = F.silu(out, inplace=True)
        return self.fc(self.drop(out.mean((2, 3))))


def test_in_place_operators():
    assert_matches_eager(randomise_norms(InPlaceBlock()), (6, 7, 5))


class Padded(nn.Module):
    """EfficientNet-Lite's TF-style asymmetric zero pad before a strided conv, a non-zero pad value,
    and ShuffleNet's chunk."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv = nn.Conv2d(4, 8, 3, stride=2)

    def forward(self, x):
        y = self.conv(self.pad(x))
        a, b = y.chunk(2, dim=1)
        return torch.cat([F.pad(b, (2, 1), value=-0.5), F.pad(a, (1, 2))], dim=1)


def test_constant_padding_and_chunk():
    assert_matches_eager(Padded().eval(), (4, 9, 8))


def test_reflect_padding_is_named_as_unsupported():
    class Reflect(nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 1), mode="reflect")

    with pytest.raises(sparsert.UnsupportedModelError, match="reflect padding"):
        sparsert.load(Reflect(), example_inputs=(torch.randn(2, 3, 5),))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layer_with_symbolic_sizes(norm_first):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 48, batch_first=True, norm_first=norm_first).eval()
    assert_matches_eager(layer, (7, 32))


def test_multihead_attention_with_separate_key_and_value():
    class CrossAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(24, 3, batch_first=True, kdim=16, vdim=16)
            self.memory = nn.Parameter(torch.randn(1, 5, 16))

        def forward(self, x):
            memory = self.memory.expand(x.shape[0], -1, -1)
            return self.attn(x, memory, memory, need_weights=False)[0]

    torch.manual_seed(0)
    assert_matches_eager(CrossAttention().eval(), (6, 24))


def test_creation_ops_of_fixed_shape_are_computed_once():
    class Positions(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(16, 8)

        def forward(self, x):  # x: (batch, 10, 8)
            positions = torch.arange(x.shape[1]) + 2  # fixed by the example's sequence length
            return x + self.table(positions) * torch.ones(x.shape[1], 1)

    torch.manual_seed(0)
    assert_matches_eager(Positions().eval(), (10, 8))


def test_program_decomposed_before_saving(tmp_path):
    # Batch norm arrives as _native_batch_norm_legit_no_training with three outputs.
    torch.manual_seed(0)
    model = randomise_norms(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4)))
    x = torch.randn(2, 3, 6, 6)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},)).run_decompositions()
    path = tmp_path / "decomposed.pt2"
    torch.export.save(program, path)
    assert_matches_eager(model, (3, 6, 6), compiled=sparsert.load(path))


def test_constant_boolean_mask_expanded_to_the_batch():
    # Hugging Face's attention mask when none is passed: a fixed boolean pattern expanded to the batch.
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(16, 48)
            self.register_buffer("keep", (torch.rand(6, 6) > 0.3) | torch.eye(6, dtype=torch.bool))

        def forward(self, x):  # x: (batch, 6, 16)
            q, k, v = self.qkv(x).view(x.shape[0], 6, 3, 2, 8).permute(2, 0, 3, 1, 4)
            mask = self.keep[None, None].expand(x.shape[0], 1, 6, 6)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(x.shape[0], 6, 16)

    torch.manual_seed(0)
    assert_matches_eager(Masked().eval(), (6, 16))
