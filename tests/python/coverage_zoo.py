"""The architectures people actually have, small and randomly initialised, for the coverage suite
(tests/python/test_coverage.py, bench/coverage.py). Nothing is downloaded: torchvision and timm
models are built with random weights, Hugging Face models from small configs with HF_HUB_OFFLINE=1.

Each `Entry` builds (model, make_inputs): `make_inputs(batch)` returns a tuple of fresh random
positional inputs (token ids random ints, attention masks with zeros at the end of some rows).
`build(entry)` seeds torch, builds, gives every norm layer non-trivial statistics and affine
parameters (a freshly initialised BatchNorm is the identity, which would hide a wrong folding), prunes
every Linear/Conv weight 90% by magnitude (l1_unstructured's mask through `torch.nn.utils.prune`,
then `prune.remove`) and returns the model in eval mode. `mismatch` and `missing_operators` are the
checks both users share.

Hugging Face models run with attn_implementation="sdpa" (the library's default, and what most
people have); `bert-eager-mask` is the one entry with "eager" (explicit matmul + softmax). The Python
packages come from the `test` extra: torchvision, timm, transformers.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as prune

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # configs only, never the hub

SPARSITY = 0.9
SEQ = 12  # tokens per sequence in the text models
VOCAB = 500

Inputs = Callable[[int], tuple]


@dataclass(frozen=True)
class Entry:
    name: str
    source: str  # "torchvision", "timm", "torch.nn" or "transformers"
    builder: Callable[[], tuple[nn.Module, Inputs]]


_torchvision_stub = None  # keeps the stub schemas below registered (a Library unregisters when collected)


def allow_torchvision_import() -> None:
    """Lets `import torchvision` succeed when its compiled ops cannot load.

    PyPI's torchvision wheel is built against the CUDA torch; beside the CPU torch the project pins,
    its `_C` library does not load, and `import torchvision` then fails in `_meta_registrations.py`
    ("operator torchvision::nms does not exist"), which registers fake kernels for `nms` and `qnms`
    unconditionally. Classification models never call those detection ops, so declaring their
    schemas (without any kernel) is enough for the import. Called before anything imports torchvision
    (timm and transformers do too); does nothing when torchvision is absent or its ops load."""
    global _torchvision_stub
    if "torchvision" in sys.modules or _torchvision_stub is not None:
        return
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return
    libraries = glob.glob(os.path.join(spec.submodule_search_locations[0], "_C.*"))
    try:
        if libraries:
            torch.ops.load_library(libraries[0])  # what torchvision.extension does; loading twice is harmless
            return
    except OSError:
        pass
    _torchvision_stub = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms"):
        _torchvision_stub.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


allow_torchvision_import()


# ---------------------------------------------------------------------------------------------
# Inputs


def images(size: int, channels: int = 3) -> Inputs:
    return lambda batch: (torch.randn(batch, channels, size, size),)


def padding_mask(batch: int, length: int) -> torch.Tensor:
    """1 for real positions, 0 for padding at the end: row 0 loses a quarter of its positions, the
    others a random number (up to half); every row keeps its first positions."""
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(batch):
        pad = length // 4 if row == 0 else int(torch.randint(0, length // 2 + 1, ()))
        if pad:
            mask[row, length - pad:] = 0
    return mask


def tokens(with_mask: bool) -> Inputs:
    def make(batch):
        ids = torch.randint(0, VOCAB, (batch, SEQ))
        return (ids, padding_mask(batch, SEQ)) if with_mask else (ids,)

    return make


def sequence(features: int, length: int = SEQ) -> Inputs:
    return lambda batch: (torch.randn(batch, length, features),)


# ---------------------------------------------------------------------------------------------
# torchvision


def _torchvision(name: str, size: int, **kwargs) -> Callable[[], tuple[nn.Module, Inputs]]:
    def builder():
        import torchvision

        return torchvision.models.get_model(name, weights=None, num_classes=10, **kwargs), images(size)

    return builder


def _torchvision_vit():
    from torchvision.models.vision_transformer import VisionTransformer

    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                              num_classes=10)
    return model, images(32)


# ---------------------------------------------------------------------------------------------
# timm


def _timm(name: str, size: int, **kwargs) -> Callable[[], tuple[nn.Module, Inputs]]:
    def builder():
        import timm

        return timm.create_model(name, pretrained=False, num_classes=10, **kwargs), images(size)

    return builder


# ---------------------------------------------------------------------------------------------
# torch.nn


class SelfAttention(nn.Module):
    """nn.MultiheadAttention as a self-attention layer, optionally with a key padding mask (True = pad)."""

    def __init__(self):
        super().__init__()
        self.attention = nn.MultiheadAttention(128, 4, batch_first=True)

    def forward(self, x, pad=None):
        return self.attention(x, x, x, key_padding_mask=pad, need_weights=False)[0]


class Recurrent(nn.Module):
    """An LSTM or GRU over (batch, time, features); returns the whole output sequence."""

    def __init__(self, kind: type[nn.Module]):
        super().__init__()
        self.rnn = kind(32, 64, num_layers=2, batch_first=True)

    def forward(self, x):
        return self.rnn(x)[0]


class CausalDecoderLayer(nn.Module):
    """nn.TransformerDecoderLayer as a decoder uses it: causal self-attention, then cross-attention."""

    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(128, 4, 512, batch_first=True)

    def forward(self, tgt, memory):
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1])
        return self.layer(tgt, memory, tgt_mask=mask, tgt_is_causal=True)


def _encoder_layer():
    return nn.TransformerEncoderLayer(128, 4, 512, batch_first=True), sequence(128)


def _encoder():
    layer = nn.TransformerEncoderLayer(128, 4, 512, batch_first=True)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), sequence(128)


def _decoder_layer():
    return CausalDecoderLayer(), lambda batch: (torch.randn(batch, SEQ, 128), torch.randn(batch, SEQ + 4, 128))


def _mha(masked: bool):
    def builder():
        def make(batch):
            x = torch.randn(batch, SEQ, 128)
            return (x, padding_mask(batch, SEQ) == 0) if masked else (x,)

        return SelfAttention(), make

    return builder


def _recurrent(kind: type[nn.Module]):
    return lambda: (Recurrent(kind), sequence(32))


# ---------------------------------------------------------------------------------------------
# Hugging Face transformers


class Keywords(nn.Module):
    """Calls a Hugging Face model with its one or two positional inputs passed by name (their positional
    order differs between models, e.g. GPT-2's second argument is the cache); returns the model's output.
    Named parameters, not *args: torch.export nests the dynamic shapes of varargs one level deeper, and
    sparsert.load then falls back to the example's fixed batch."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, first, second=None):
        return self.model(**dict(zip(self.names, (first, second))))


_TEXT = {"vocab_size": VOCAB, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 128, "max_position_embeddings": 64}


def _hf_config(kind: str, attention: str):
    import transformers as tf

    if kind in ("bert", "roberta", "electra"):
        config = {"bert": tf.BertConfig, "roberta": tf.RobertaConfig, "electra": tf.ElectraConfig}[kind](**_TEXT)
    elif kind == "albert":
        config = tf.AlbertConfig(embedding_size=32, **_TEXT)
    elif kind == "distilbert":
        config = tf.DistilBertConfig(vocab_size=VOCAB, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                                     max_position_embeddings=64)
    elif kind == "gpt2":
        config = tf.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64, use_cache=False,
                               bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    elif kind == "t5":
        config = tf.T5Config(vocab_size=VOCAB, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                             use_cache=False)
    elif kind == "vit":
        config = tf.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=128)
    elif kind == "whisper":
        # The encoder takes exactly 2 * max_source_positions frames (its second convolution halves them).
        config = tf.WhisperConfig(vocab_size=VOCAB, d_model=64, encoder_layers=2, encoder_attention_heads=4,
                                  encoder_ffn_dim=128, decoder_layers=1, decoder_attention_heads=4,
                                  decoder_ffn_dim=128, num_mel_bins=16, max_source_positions=16,
                                  max_target_positions=16, pad_token_id=VOCAB - 1, bos_token_id=VOCAB - 1,
                                  eos_token_id=VOCAB - 1, decoder_start_token_id=VOCAB - 2)
    elif kind == "wav2vec2":
        config = tf.Wav2Vec2Config(vocab_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=128, conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3),
                                   num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    else:
        raise ValueError(f"building a Hugging Face model: unknown kind {kind!r}")
    config._attn_implementation = attention
    return config


def _hf(kind: str, with_mask: bool, attention: str = "sdpa") -> Callable[[], tuple[nn.Module, Inputs]]:
    def builder():
        import transformers as tf

        config = _hf_config(kind, attention)
        if kind == "t5":
            model = tf.T5EncoderModel(config)
        else:
            model = tf.AutoModel.from_config(config, attn_implementation=attention)
        if kind == "whisper":
            model = model.get_encoder()
            return Keywords(model, ("input_features",)), lambda b: (torch.randn(b, 16, 32),)
        if kind == "vit":
            return Keywords(model, ("pixel_values",)), images(32)
        if kind == "wav2vec2":
            samples = 800

            def audio(batch):
                x = torch.randn(batch, samples)
                return (x, padding_mask(batch, samples)) if with_mask else (x,)

            names = ("input_values", "attention_mask")
            return Keywords(model, names[: 1 + with_mask]), audio
        return Keywords(model, ("input_ids", "attention_mask")[: 1 + with_mask]), tokens(with_mask)

    return builder


def _hf_entries() -> list[Entry]:
    entries = []
    for kind in ("bert", "distilbert", "roberta", "albert", "electra", "gpt2", "t5", "wav2vec2"):
        entries.append(Entry(kind, "transformers", _hf(kind, False)))
        entries.append(Entry(f"{kind}-mask", "transformers", _hf(kind, True)))
        if kind == "bert":
            entries.append(Entry("bert-eager-mask", "transformers", _hf("bert", True, attention="eager")))
    entries.append(Entry("vit", "transformers", _hf("vit", False)))
    entries.append(Entry("whisper-encoder", "transformers", _hf("whisper", False)))
    return entries


ZOO: list[Entry] = [
    Entry("resnet18", "torchvision", _torchvision("resnet18", 64)),
    Entry("resnet50", "torchvision", _torchvision("resnet50", 64)),
    Entry("mobilenet_v2", "torchvision", _torchvision("mobilenet_v2", 64)),
    Entry("mobilenet_v3_small", "torchvision", _torchvision("mobilenet_v3_small", 64)),
    Entry("efficientnet_b0", "torchvision", _torchvision("efficientnet_b0", 64)),
    Entry("mnasnet0_5", "torchvision", _torchvision("mnasnet0_5", 64)),
    Entry("shufflenet_v2_x0_5", "torchvision", _torchvision("shufflenet_v2_x0_5", 64)),
    Entry("convnext_tiny", "torchvision", _torchvision("convnext_tiny", 32)),
    Entry("regnet_x_400mf", "torchvision", _torchvision("regnet_x_400mf", 64)),
    Entry("squeezenet1_0", "torchvision", _torchvision("squeezenet1_0", 64)),
    Entry("vit (32px, patch 8)", "torchvision", _torchvision_vit),
    Entry("resnet10t", "timm", _timm("resnet10t", 64)),
    Entry("mobilenetv3_small_050", "timm", _timm("mobilenetv3_small_050", 64)),
    Entry("efficientnet_b0", "timm", _timm("efficientnet_b0", 64)),
    Entry("convnext_atto", "timm", _timm("convnext_atto", 32)),
    Entry("vit_tiny (32px, patch 8)", "timm", _timm("vit_tiny_patch16_224", 32, img_size=32, patch_size=8, depth=2)),
    Entry("TransformerEncoderLayer", "torch.nn", _encoder_layer),
    Entry("TransformerEncoder (2 layers)", "torch.nn", _encoder),
    Entry("TransformerDecoderLayer (causal)", "torch.nn", _decoder_layer),
    Entry("MultiheadAttention", "torch.nn", _mha(False)),
    Entry("MultiheadAttention (padding mask)", "torch.nn", _mha(True)),
    Entry("LSTM (2 layers)", "torch.nn", _recurrent(nn.LSTM)),
    Entry("GRU (2 layers)", "torch.nn", _recurrent(nn.GRU)),
    *_hf_entries(),
]


def entry_id(entry: Entry) -> str:
    """A unique name for test ids and MUST_LOAD: source and name."""
    return f"{entry.source}:{entry.name}"


# ---------------------------------------------------------------------------------------------
# Preparation: non-trivial norms, 90% magnitude pruning


def _is_norm(m: nn.Module) -> bool:
    name = type(m).__name__
    return isinstance(m, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)) or name.endswith(
        ("LayerNorm", "RMSNorm", "LayerNorm2d"))


def randomise_norms(model: nn.Module) -> None:
    """Running statistics and affine parameters away from the identity (mean ~ N(0, 0.1²), var in [0.5, 2],
    scale in [0.5, 1.5], shift ~ N(0, 0.1²)), so a folding that drops or misplaces one shows."""
    with torch.no_grad():
        for m in model.modules():
            if not _is_norm(m):
                continue
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(getattr(m, "weight", None), nn.Parameter):
                m.weight.uniform_(0.5, 1.5)
            if isinstance(getattr(m, "bias", None), nn.Parameter):
                m.bias.normal_(0, 0.1)


def _prunable(m: nn.Module) -> list[str]:
    """The weights pruned: every Linear and Conv (1d, 2d), Hugging Face's Conv1D (GPT-2's Linear with the
    weight transposed) and MultiheadAttention's packed q/k/v projection. Parametrised weights (wav2vec2's
    weight-normed positional convolution) are left: `prune` cannot reparametrise a computed weight."""
    if parametrize.is_parametrized(m):
        return []
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) or type(m).__name__ == "Conv1D":
        return ["weight"]
    if isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
        return ["in_proj_weight"]
    return []


def prune_weights(model: nn.Module, amount: float = SPARSITY) -> None:
    """What `prune.l1_unstructured(m, name, amount)` then `prune.remove` do, with the mask found by a top-k
    of the weights kept instead of the weights removed: the same mask (up to ties between equal
    magnitudes), 3.5x faster on a 2.4M-weight convolution, which matters on ResNet-50 and ConvNeXt."""
    for m in model.modules():
        for name in _prunable(m):
            weight = getattr(m, name).detach()
            keep = weight.numel() - round(amount * weight.numel())
            mask = torch.zeros(weight.numel())
            mask[torch.topk(weight.abs().flatten(), keep).indices] = 1
            prune.custom_from_mask(m, name, mask.view_as(weight))
            prune.remove(m, name)


def build(entry: Entry, seed: int = 0) -> tuple[nn.Module, Inputs]:
    """The entry's model (seeded, norms randomised, 90% pruned, eval mode) and its input maker."""
    torch.manual_seed(seed)
    model, make_inputs = entry.builder()
    randomise_norms(model)
    prune_weights(model)
    return model.eval(), make_inputs


# ---------------------------------------------------------------------------------------------
# Checking against eager

TOLERANCE = 1e-4  # ‖y − ref‖ / ‖ref‖ per output tensor, float32 throughout


def output_tensors(value) -> list[torch.Tensor]:
    """The tensors of a model's output in pytree order (a tensor, a tuple, a Hugging Face ModelOutput),
    the order sparsert flattens the exported outputs in."""
    return [leaf for leaf in torch.utils._pytree.tree_leaves(value) if isinstance(leaf, torch.Tensor)]


def mismatch(got, expected) -> str | None:
    """None when every output tensor of `got` is within TOLERANCE of `expected`'s (both flattened with
    output_tensors), else what differs: the count, a shape, or the worst relative error."""
    got, expected = output_tensors(got), output_tensors(expected)
    if len(got) != len(expected):
        return f"{len(got)} outputs (expected {len(expected)})"
    worst = (0.0, 0)
    for index, (y, ref) in enumerate(zip(got, expected)):
        if tuple(y.shape) != tuple(ref.shape):
            return f"output {index} has shape {tuple(y.shape)} (expected {tuple(ref.shape)})"
        y, ref = y.double(), ref.double()
        diff, norm = torch.linalg.vector_norm(y - ref).item(), torch.linalg.vector_norm(ref).item()
        error = diff / norm if norm > 0 else (0.0 if diff == 0 else float("inf"))
        if not error <= worst[0]:  # NaN counts as worse than anything
            worst = (error, index)
    if worst[0] < TOLERANCE:
        return None
    return f"relative error {worst[0]:.3g} on output {worst[1]} of {len(got)} (expected < {TOLERANCE:g})"


def missing_operators(message: str) -> list[str]:
    """The operator names an import error lists, deduplicated in order: UnsupportedModelError's message has
    one line per unsupported call, `<op>[ (<reason>)] at <source>`; other messages are searched for
    namespaced names (`aten.sort`, `torchvision::nms`)."""
    names = []
    lines = message.splitlines()
    for line in lines[1:]:
        line = line.strip()
        if " at " in line:
            names.append(line.split(" at ")[0].split(" (")[0])
    if not names:
        names = re.findall(r"\b(?:aten|prims|torchvision|quantized)(?:\.|::)[A-Za-z_][\w.]*", message)
    return list(dict.fromkeys(names))
