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


def test_cropping_by_negative_padding_is_named_as_unsupported():
    class Crop(nn.Module):
        def forward(self, x):
            return F.pad(x, (-1, 2))

    with pytest.raises(sparsert.UnsupportedModelError, match=r"pad.default \(negative padding \(cropping\)\)"):
        sparsert.load(Crop(), example_inputs=(torch.randn(2, 3, 5),))


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


class PaddedCausalAttention(nn.Module):
    """Masks built inside the model from token ids and a padding mask, as Hugging Face builds them:
    a boolean padding mask gathered by arange indices over the free batch, a causal comparison,
    `&`, a boolean SDPA mask, GPT-2's position ids from a cumulative sum and its packed-sequence
    test (diff), masked_fill and where."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(50, 16)
        self.positions = nn.Embedding(12, 16)
        self.qkv = nn.Linear(16, 48)

    def forward(self, ids, mask):
        b, s = ids.shape
        keep = mask.bool()
        batch_index = torch.arange(b)[:, None, None, None]
        kv = torch.arange(s)[None, None, None, :]
        causal = kv <= torch.arange(s)[None, None, :, None]
        attend = keep[batch_index, kv] & causal  # (b, 1, s, s)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        x = self.tokens(ids) + self.positions(positions)
        q, k, v = self.qkv(x).view(b, s, 3, 2, 8).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend).transpose(1, 2).reshape(b, s, 16)
        segments = (torch.diff(positions, prepend=positions[:, :1] - 1, dim=-1) != 1).cumsum(-1)  # packed sequences
        out = torch.where(~keep[:, :, None], torch.zeros_like(out), out) * (positions[:, :, None] > 2).float()
        return out * (segments[:, :, None] + 1)


def test_masks_built_at_run_time_from_integer_inputs():
    torch.manual_seed(0)
    model = PaddedCausalAttention().eval()

    def inputs(batch):
        ids = torch.randint(0, 50, (batch, 9))
        mask = (torch.rand(batch, 9) > 0.3).long()
        mask[:, 0] = 1  # every query keeps at least one key, as padding at the end does
        return ids, mask

    compiled = sparsert.load(model, example_inputs=inputs(2))
    for batch in (1, 3):
        ids, mask = inputs(batch)
        with torch.no_grad():
            ref = model(ids, mask)
        assert rel_err(compiled.run(ids, mask), ref) < 1e-5, batch
        assert rel_err(compiled.run(ids, mask.bool().long()), ref) < 1e-5


def test_boolean_inputs_and_outputs():
    class Threshold(nn.Module):
        def forward(self, x, keep):
            return (x > 0.5) & keep, torch.where(keep, x, -x)

    compiled = sparsert.load(Threshold(), example_inputs=(torch.randn(2, 7), torch.rand(2, 7) > 0.5))
    x, keep = torch.randn(3, 7), torch.rand(3, 7) > 0.5
    flags, values = compiled.run(x, keep)
    assert flags.dtype == torch.bool and torch.equal(flags, (x > 0.5) & keep)
    assert torch.equal(values, torch.where(keep, x, -x))
    with pytest.raises(TypeError, match="input 'keep'.*bool"):
        compiled.run(x, keep.float())


class AudioFrontEnd(nn.Module):
    """wav2vec2's and Whisper's front end: 1-d convolutions (strided, padded, grouped), group norm,
    and a gather of positions."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 8, 5, stride=2, padding=2)
        self.norm = nn.GroupNorm(4, 8)
        self.grouped = nn.Conv1d(8, 8, 3, padding=1, groups=2, bias=False)
        self.plain_norm = nn.GroupNorm(2, 8, affine=False)

    def forward(self, x):  # x: (batch, 3, 17)
        y = self.plain_norm(self.grouped(F.gelu(self.norm(self.conv(x)))))
        order = torch.argsort(torch.arange(9) % 3).expand(x.shape[0], 8, 9)  # a fixed permutation of positions
        return torch.gather(y, 2, order)


def test_conv1d_group_norm_and_gather():
    torch.manual_seed(0)
    model = AudioFrontEnd().eval()
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-0.5, 0.5)
    assert_matches_eager(model, (3, 17))


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("batch_first, bidirectional, bias", [(True, False, True), (False, True, False)])
def test_recurrent_layers_unrolled(kind, batch_first, bidirectional, bias):
    class Sequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = kind(6, 10, num_layers=2, batch_first=batch_first, bidirectional=bidirectional, bias=bias)

        def forward(self, x):
            out, state = self.rnn(x)
            finals = state if isinstance(state, tuple) else (state,)
            return (out,) + finals

    torch.manual_seed(0)
    model = Sequence().eval()
    compiled = sparsert.load(model, example_inputs=(torch.randn(2, 5, 6) if batch_first else torch.randn(5, 2, 6),))
    assert "rnn.weight_ih_l1" + ("_reverse" if bidirectional else "") in {c.layer for c in compiled.plan}
    # Only dim 0 can be the free batch: a time-major model runs at the example's batch.
    for batch in (1, 3) if batch_first else (2,):
        x = torch.randn(batch, 5, 6) if batch_first else torch.randn(5, batch, 6)
        with torch.no_grad():
            expected = model(x)
        for got, ref in zip(compiled.run(x), expected):
            assert rel_err(got, ref) < 1e-5, batch
    if not batch_first:
        with pytest.raises(ValueError, match=r"input 'x' has shape \(5, 3, 6\) \(expected \(5, 2, 6\)\)"):
            compiled.run(torch.randn(5, 3, 6))


class Resampling(nn.Module):
    """Segmentation and detection heads' resampling, and gathers of fixed positions: interpolate
    (nearest, nearest-exact, bilinear with and without align_corners, by size and by scale), reflect,
    replicate and circular padding, flip, index_select and repeat."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("columns", torch.tensor([5, 0, 2, 2]))

    def forward(self, x):  # x: (batch, 3, 5, 6)
        y = self.conv(x)
        outs = [
            F.interpolate(y, scale_factor=2, mode="nearest"),
            F.interpolate(y, size=(7, 9), mode="nearest"),
            F.interpolate(y, scale_factor=1.5, mode="nearest-exact"),
            F.interpolate(y, size=(7, 9), mode="bilinear", align_corners=False),
            F.interpolate(y, scale_factor=1.5, mode="bilinear", align_corners=True),
            F.interpolate(y, scale_factor=2.5, mode="bilinear", align_corners=False),
            F.pad(y, (1, 2, 2, 1), mode="reflect"),
            F.pad(y, (3, 0, 1, 4), mode="replicate"),
            F.pad(y, (2, 1, 1, 2), mode="circular"),
            torch.flip(y, [1, 3]),
            torch.index_select(y, 3, self.columns),
            y.repeat(1, 2, 1, 3),
            F.interpolate(y[:, :, 0], scale_factor=1.7, mode="linear"),
        ]
        return torch.cat([o.flatten(1) for o in outs], dim=1)


def test_resampling_padding_and_fixed_gathers():
    torch.manual_seed(0)
    assert_matches_eager(Resampling().eval(), (3, 5, 6))


def test_varargs_forward_keeps_the_batch_free():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, *xs):
            return self.fc(xs[0] * xs[1])

    torch.manual_seed(0)
    model = Pair().eval()
    compiled = sparsert.load(model, example_inputs=(torch.randn(2, 4), torch.randn(2, 4)))
    for batch in (1, 3):
        a, b = torch.randn(batch, 4), torch.randn(batch, 4)
        with torch.no_grad():
            assert rel_err(compiled.run(a, b), model(a, b)) < 1e-6


def test_control_flow_on_input_values_is_named():
    class Branching(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(sparsert.UnsupportedModelError, match="control flow or output shapes depend on the input "
                                                             "values.*sparsert.sparsify"):
        sparsert.load(Branching(), example_inputs=(torch.randn(2, 5),))
