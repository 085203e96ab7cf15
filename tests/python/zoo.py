"""Small versions of the four architectures the executor must run, and the pruning that makes them
sparse. Built in the tests themselves; nothing is downloaded. Weights are N(0, 1)-initialised where
pruning needs every layer to be genuinely sparse (default init + global pruning can empty whole layers)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune


class MLP(nn.Module):
    def __init__(self, sizes=(64, 96, 80, 10)):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNetTiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.fc = nn.Linear(32, classes)

    def forward(self, x):
        x = self.pool(self.stem(x))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class InvertedResidual(nn.Module):
    def __init__(self, c, expand):
        super().__init__()
        h = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(h, h, 3, 1, 1, groups=h, bias=False), nn.BatchNorm2d(h), nn.Hardswish())
        self.project = nn.Sequential(nn.Conv2d(h, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.dw(self.expand(x)))


class MobileNetTiny(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(InvertedResidual(16, 4), InvertedResidual(16, 4))
        self.head = nn.Sequential(nn.Conv2d(16, 64, 1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Dropout(0.2), nn.Linear(64, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class EncoderLayer(nn.Module):
    def __init__(self, d, heads, ffn, explicit_attention):
        super().__init__()
        self.heads, self.explicit = heads, explicit_attention
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ffn1, self.ffn2 = nn.Linear(d, ffn), nn.Linear(ffn, d)

    def forward(self, x):
        b, s, d = x.shape
        h = self.heads

        def split(t):
            return t.view(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.explicit:
            a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // h), dim=-1) @ v
        else:
            a = F.scaled_dot_product_attention(q, k, v)
        a = a.transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.o(a))
        return self.ln2(x + self.ffn2(F.gelu(self.ffn1(x))))


class BertTiny(nn.Module):
    def __init__(self, vocab=50, d=32, heads=4, ffn=64, layers=2, max_len=16):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.register_buffer("position_ids", torch.arange(max_len), persistent=False)
        self.ln = nn.LayerNorm(d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ffn, explicit_attention=i % 2 == 1) for i in range(layers))
        self.pool = nn.Linear(d, d)

    def forward(self, ids):
        x = self.ln(self.tok(ids) + self.pos(self.position_ids[: ids.shape[1]]))
        for layer in self.layers:
            x = layer(x)
        return torch.tanh(self.pool(x[:, 0]))


def example_input(name: str, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if name == "mlp":
        return torch.randn(batch, 64, generator=g)
    if name == "bert":
        return torch.randint(0, 50, (batch, 12), generator=g)
    return torch.randn(batch, 3, 16, 16, generator=g)


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = {"mlp": MLP, "resnet": ResNetTiny, "mobilenet": MobileNetTiny, "bert": BertTiny}[name]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.normal_(0, 1.0 / math.sqrt(m.weight[0].numel()))
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics, so folding is tested
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every linear and non-depthwise conv weight."""
    return [(m, "weight") for m in model.modules()
            if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)]


def prune_model(model: nn.Module, how: str, keep_reparam: bool = True) -> nn.Module:
    """Prunes in place: "u90" (global magnitude, 90% unstructured, torch.nn.utils.prune), "2:4", "bsr4x4"
    (10% of 4×4 blocks of each weight viewed as (out, in·kh·kw)). Leaves the prune reparametrisation on
    (weight_orig + weight_mask) unless keep_reparam is False."""
    params = prunable(model)
    if how == "u90":
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=0.9)
    else:
        for module, name in params:
            w = getattr(module, name).detach()
            flat = w.reshape(w.shape[0], -1)
            if how == "2:4":
                cols = flat.shape[1] - flat.shape[1] % 4
                groups = flat[:, :cols].abs().reshape(flat.shape[0], -1, 4)
                keep = torch.zeros_like(groups, dtype=torch.bool)
                keep.scatter_(2, groups.topk(2, dim=2).indices, True)
                mask = torch.ones_like(flat, dtype=torch.bool)
                mask[:, :cols] = keep.reshape(flat.shape[0], cols)
                mask[:, cols:] = False
            else:
                rows, cols = flat.shape
                pr, pc = (-rows) % 4, (-cols) % 4
                padded = F.pad(flat.abs(), (0, pc, 0, pr))
                blocks = padded.reshape((rows + pr) // 4, 4, (cols + pc) // 4, 4).sum(dim=(1, 3))
                k = max(1, int(round(0.1 * blocks.numel())))
                thresh = blocks.flatten().topk(k).values[-1]
                keep = (blocks >= thresh).repeat_interleave(4, 0).repeat_interleave(4, 1)
                mask = keep[:rows, :cols]
            prune.custom_from_mask(module, name, mask.reshape(w.shape).float())
    if not keep_reparam:
        for module, name in params:
            prune.remove(module, name)
    return model
