#!/usr/bin/env python3
"""Whole models: sparsert.load(model).run(x) against torch eager on the same pruned weights.

Four architectures (an MLP 784-2048-2048-10, ResNet-18, a MobileNetV2-style net, a 2-layer
BERT-base-sized encoder at sequence 128), each pruned layer by layer by magnitude (every Linear and
non-depthwise Conv weight at the same density, so no layer is emptied) to 0%, 80%, 90%, 95%
unstructured, 2:4, and 4×4 blocks at 90%; batch 1 and 32; 1 and 2 threads. torch eager runs the
zero-filled dense weights (prune.remove), sparsert the formats its cost model picks for that batch
and thread count; both are timed side by side (sparsert._timing) and the output is checked first.

    python bench/models.py --quick                                  # one small case
    python bench/models.py --markdown bench/results/models.md       # the full grid
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune

import sparsert
from sparsert._timing import time_interleaved

warnings.filterwarnings("ignore", message=r".*were assigned during export.*")

MAX_REL_ERR = 1e-3


# --- architectures -------------------------------------------------------------------------------

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
    "mlp": (MLP, lambda b: torch.randn(b, 784)),
    "resnet18": (ResNet18, lambda b: torch.randn(b, 3, 224, 224)),
    "mobilenet": (MobileNet, lambda b: torch.randn(b, 3, 224, 224)),
    "bert2": (Bert, lambda b: torch.randint(0, 30522, (b, 128))),
}
CONFIGS = ["dense", "u80", "u90", "u95", "2:4", "b4x4_90"]


def build(name: str, config: str) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS[name][0]()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                m.weight.normal_(0, 1.0 / math.sqrt(m.weight[0].numel()))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    targets = [m for m in model.modules() if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1)]
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


# --- bench ---------------------------------------------------------------------------------------

def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


def run(args) -> int:
    rows, failures = [], 0
    started = time.time()
    for name in args.models:
        for config in args.configs:
            model = build(name, config)
            for batch in args.batches:
                x = MODELS[name][1](batch)
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    compiled = sparsert.load(model, example_inputs=(x,), num_threads=threads)
                    with torch.no_grad():
                        ref = model(x)
                    err = rel_err(compiled.run(x), ref)
                    if not err < MAX_REL_ERR:
                        failures += 1
                        rows.append((name, config, batch, threads, "-", "-", "-", f"FAIL {err:.1e}", ""))
                        continue

                    def eager():
                        with torch.no_grad():
                            return model(x)

                    t = time_interleaved({"torch": eager, "sparsert": lambda: compiled.run(x)}, min_time=args.min_time)
                    formats = sorted({c.format for c in compiled.plan})
                    rows.append((name, config, batch, threads, f"{t['torch'].median * 1e3:,.2f}",
                                 f"{t['sparsert'].median * 1e3:,.2f}", f"{t['torch'].median / t['sparsert'].median:.2f}x",
                                 f"{err:.1e}", "/".join(formats)))
                    print(" | ".join(str(v) for v in rows[-1]), flush=True)
    header = ("model", "pruning", "batch", "thr", "torch eager ms", "sparsert ms", "speed-up", "rel err", "formats")
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        "# sparsert models vs torch eager", "",
        f"- date: {datetime.date.today()}; host load (1-min average) at start: {os.getloadavg()[0]:.2f}",
        f"- cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs); "
        f"torch {torch.__version__}; sparsert {sparsert.__version__}, ISAs: {sparsert.available_isas()}",
        f"- min-time {args.min_time} s per tool and case; medians; {len(rows)} cases in {time.time() - started:.0f} s",
        f"- command: {command}", "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
    ] + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        os.makedirs(os.path.dirname(args.markdown) or ".", exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(text)
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    p.add_argument("--batches", default="1,32")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--quick", action="store_true", help="mlp, u90, batch 1, 1 thread, min-time 0.05")
    p.add_argument("--markdown", help="also write the table here")
    args = p.parse_args()
    if args.quick:
        args.models, args.configs, args.batches, args.threads, args.min_time = "mlp", "u90", "1", "1", 0.05
    args.models = args.models.split(",")
    args.configs = args.configs.split(",")
    args.batches = [int(v) for v in args.batches.split(",")]
    args.threads = [int(v) for v in args.threads.split(",")]
    unknown = [m for m in args.models if m not in MODELS] + [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown models/configs {unknown}")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
