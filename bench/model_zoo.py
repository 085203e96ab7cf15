"""The architectures and prunings of bench/models.py, in a module of their own that needs torch only,
so that DeepSparse's runner (bench/deepsparse/run.py, in its own virtual environment without
sparsert) rebuilds exactly the same modules and loads the same weights.

Models: `mlp` 784-2048-2048-10 (ReLU); `resnet18` (BasicBlocks [2,2,2,2], batch norm, 224², 1000
classes; written by hand, as torchvision does not install beside the pinned torch); `mobilenet` (a
MobileNetV2-style net with hardswish, 224²); `bert2` (2 post-LN BERT-base encoder layers: d 768, 12
heads, FFN 3072, GELU, packed qkv projection, sequence 128, token and position embeddings).

Prunings (every Linear and non-depthwise Conv weight; `dense` leaves them):
- `g90` (also `g80`, `g95`): the issue's end-to-end recipe, the perf anchors' main table: weights
  initialised i.i.d. N(0, 1), pruned *globally* by magnitude (torch `global_unstructured`, L1), then each
  layer rescaled so that an output's variance is ~1 for unit-variance inputs (the anchors used
  1/sqrt(fan_in · density), which lets ResNet-18's activations grow to ~1e4; the pattern is the same). With N(0, 1)
  weights global pruning lands near the target density in every layer; with PyTorch's fan-in-scaled
  default init it empties the layers of largest fan-in (the anchors saw MLP fc2/fc3 100% zero).
- `u80`, `u90`, `u95`: weights N(0, 1/fan_in), each layer pruned to exactly that sparsity by magnitude.
- `2:4`: the 2 largest |w| of every 4 consecutive inputs; `bsr4x4_90`: the 10% of 4×4 blocks of largest L1 norm.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 2048), nn.Linear(2048, 2048), nn.Linear(2048, 10)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))


class Inverted(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        h = cin * expand
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            nn.Conv2d(cin, h, 1, bias=False), nn.BatchNorm2d(h), nn.Hardswish(),
            nn.Conv2d(h, h, 3, stride, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.Hardswish(),
            nn.Conv2d(h, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


class MobileNet(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        cfg = [(16, 24, 2, 4), (24, 24, 1, 4), (24, 40, 2, 4), (40, 40, 1, 6), (40, 80, 2, 6), (80, 80, 1, 6),
               (80, 112, 1, 6), (112, 160, 2, 6), (160, 160, 1, 6)]
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(*(Inverted(*c) for c in cfg))
        self.head = nn.Sequential(nn.Conv2d(160, 960, 1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(960, 1280), nn.Hardswish(), nn.Linear(1280, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class Encoder(nn.Module):
    def __init__(self, d=768, heads=12, ffn=3072):
        super().__init__()
        self.heads = heads
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn1, self.ffn2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.o(a))
        return self.ln2(x + self.ffn2(F.gelu(self.ffn1(x))))


class Bert(nn.Module):
    def __init__(self, vocab=30522, d=768, layers=2, max_len=512):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.register_buffer("position_ids", torch.arange(max_len), persistent=False)
        self.ln = nn.LayerNorm(d)
        self.layers = nn.Sequential(*(Encoder(d) for _ in range(layers)))

    def forward(self, ids):
        return self.layers(self.ln(self.tok(ids) + self.pos(self.position_ids[: ids.shape[1]])))


MODELS = {
    "mlp": MLP,
    "resnet18": ResNet18,
    "mobilenet": MobileNet,
    "bert2": Bert,
}
CONFIGS = ["dense", "g80", "g90", "g95", "u80", "u90", "u95", "2:4", "bsr4x4_90"]


def make_input(name: str, batch: int, seed: int = 0) -> torch.Tensor:
    """The model's input at `batch`, the same for every tool and process (a seeded generator)."""
    gen = torch.Generator().manual_seed(seed + batch)
    if name == "mlp":
        return torch.randn(batch, 784, generator=gen)
    if name == "bert2":
        return torch.randint(0, 30522, (batch, 128), generator=gen)
    return torch.randn(batch, 3, 224, 224, generator=gen)


def prunable(model: nn.Module) -> list:
    """The layers every pruning touches: Linear and non-depthwise Conv2d."""
    return [m for m in model.modules() if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)]


def build(name: str, config: str) -> nn.Module:
    """Model `name` with fixed random weights (seed 0), pruned as `config` says, in eval mode."""
    if name not in MODELS or config not in CONFIGS:
        raise ValueError(f"model_zoo: model {name!r}, pruning {config!r} "
                         f"(expected one of {', '.join(MODELS)} and one of {', '.join(CONFIGS)})")
    torch.manual_seed(0)
    model = MODELS[name]()
    targets = prunable(model)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.normal_(0, 1.0 / math.sqrt(m.weight[0].numel()))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    if config.startswith("g"):
        with torch.no_grad():
            for m in targets:
                m.weight.normal_(0, 1.0)
        prune.global_unstructured([(m, "weight") for m in targets], pruning_method=prune.L1Unstructured,
                                  amount=int(config[1:]) / 100)
        for m in targets:
            prune.remove(m, "weight")
            with torch.no_grad():  # so that each output has variance ~1 for unit-variance inputs
                kept_square_sum = float(m.weight.double().square().sum()) / m.weight.shape[0]
                m.weight.mul_(1.0 / math.sqrt(max(kept_square_sum, 1e-12)))
        return model.eval()
    for m in targets:
        w = m.weight.detach().reshape(m.weight.shape[0], -1)
        if config == "dense":
            continue
        if config.startswith("u"):
            prune.l1_unstructured(m, "weight", amount=int(config[1:]) / 100)
        elif config == "2:4":
            cols = w.shape[1] - w.shape[1] % 4
            g = w[:, :cols].abs().reshape(w.shape[0], -1, 4)
            keep = torch.zeros_like(g, dtype=torch.bool).scatter_(2, g.topk(2, dim=2).indices, True)
            mask = torch.zeros_like(w, dtype=torch.bool)
            mask[:, :cols] = keep.reshape(w.shape[0], cols)
            prune.custom_from_mask(m, "weight", mask.reshape(m.weight.shape))
        else:
            rows, cols = w.shape
            pr, pc = (-rows) % 4, (-cols) % 4
            blocks = F.pad(w.abs(), (0, pc, 0, pr)).reshape((rows + pr) // 4, 4, (cols + pc) // 4, 4).sum((1, 3))
            k = max(1, round(0.1 * blocks.numel()))
            keep = (blocks >= blocks.flatten().topk(k).values[-1]).repeat_interleave(4, 0).repeat_interleave(4, 1)
            prune.custom_from_mask(m, "weight", keep[:rows, :cols].reshape(m.weight.shape))
        prune.remove(m, "weight")
    return model.eval()
