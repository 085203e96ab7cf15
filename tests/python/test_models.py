"""Whole models through sparsert.load(...).run(x) against torch eager on the same pruned weights:
four architectures × three prunings × every source kind, plus the errors load and run promise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sparsert
from zoo import build, example_input, prune_model

torch.set_num_threads(1)

ARCHS = ["mlp", "resnet", "mobilenet", "bert"]
PRUNINGS = ["u90", "2:4", "bsr4x4"]


def rel_err(y, ref) -> float:
    y, ref = np.asarray(y, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.linalg.norm(y - ref) / max(np.linalg.norm(ref), 1e-30))


def eager(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pruning", PRUNINGS)
def test_module_matches_eager(arch, pruning):
    model = prune_model(build(arch), pruning)
    x = example_input(arch, 3)
    compiled = sparsert.load(model, example_inputs=(x,))
    for batch in (3, 1, 5):  # the batch may change between calls without re-import
        xb = example_input(arch, batch, seed=batch)
        y = compiled.run(xb)
        assert isinstance(y, torch.Tensor) and y.shape == eager(model, xb).shape
        assert rel_err(y, eager(model, xb)) < 1e-4, (arch, pruning, batch)


@pytest.mark.parametrize("arch", ARCHS)
def test_micro_batches_match_eager(arch):
    # Batch 5 in slices of 2, 2 and 1: every zoo architecture treats its items independently
    # (BERT's fused q/k/v puts the batch in dim 1 on the way, which the executor must follow).
    model = prune_model(build(arch), "u90")
    compiled = sparsert.load(model, example_inputs=(example_input(arch, 5),), micro_batch=2)
    assert compiled.micro_batch(5) == 2
    xb = example_input(arch, 5, seed=11)
    assert rel_err(compiled.run(xb), eager(model, xb)) < 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_with_prune_reparametrisation(arch, tmp_path):
    pruned = prune_model(build(arch), "u90")  # weight_orig + weight_mask still in the state dict
    path = tmp_path / "pruned.pt"
    torch.save(pruned.state_dict(), path)
    assert any(k.endswith("weight_mask") for k in torch.load(path, weights_only=True))
    x = example_input(arch, 2)
    compiled = sparsert.load(path, model=build(arch, seed=1), example_inputs=(x,))
    assert rel_err(compiled.run(x), eager(pruned, x)) < 1e-4


def test_state_dict_after_prune_remove_and_lazy_trace(tmp_path):
    pruned = prune_model(build("mlp"), "u90", keep_reparam=False)
    path = tmp_path / "removed.pt"
    torch.save(pruned.state_dict(), path)
    compiled = sparsert.load(path, model=build("mlp", seed=1))  # traced at the first run
    x = example_input("mlp", 4)
    assert rel_err(compiled.run(x.numpy()), eager(pruned, x).numpy()) < 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_export_archive_and_sprt_round_trip(arch, tmp_path):
    pruned = prune_model(build(arch), "2:4", keep_reparam=False)
    x = example_input(arch, 2)
    program = torch.export.export(pruned, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    pt2 = tmp_path / "model.pt2"
    torch.export.save(program, pt2)
    compiled = sparsert.load(pt2)
    assert rel_err(compiled.run(x), eager(pruned, x)) < 1e-4
    sprt = tmp_path / "model.sprt"
    compiled.save(sprt)
    reloaded = sparsert.load(sprt)
    x5 = example_input(arch, 5, seed=7)
    assert rel_err(reloaded.run(x5), eager(pruned, x5)) < 1e-4
    np.testing.assert_array_equal(reloaded.run(x5.numpy()), compiled.run(x5.numpy()))


def test_formats_forced_globally_and_per_layer():
    model = prune_model(build("mlp"), "2:4", keep_reparam=False)
    x = example_input("mlp", 2)
    for fmt in ("dense", "csr", "bsr4x4", "nm2:4"):
        compiled = sparsert.load(model, example_inputs=(x,), formats=fmt)
        assert {c.format for c in compiled.plan} == {fmt}
        assert rel_err(compiled.run(x), eager(model, x)) < 1e-4
    compiled = sparsert.load(model, example_inputs=(x,), formats={"layers.0": "csr"})
    assert [c.format for c in compiled.plan if c.layer == "layers.0"] == ["csr"]
    with pytest.raises(ValueError, match="no weight"):
        sparsert.load(model, example_inputs=(x,), formats={"nope": "csr"})


def test_summary_lists_every_weight():
    model = prune_model(build("resnet"), "bsr4x4")
    compiled = sparsert.load(model, example_inputs=(example_input("resnet", 1),))
    text = compiled.summary()
    for name in ("stem.0", "layer2.down.0", "fc"):
        assert name in text
    assert len(compiled.plan) == 7  # six convolutions and fc
    assert all(c.speedup > 0 for c in compiled.plan)


def test_concurrent_runs_agree():
    from concurrent.futures import ThreadPoolExecutor

    model = prune_model(build("bert"), "u90")
    compiled = sparsert.load(model, example_inputs=(example_input("bert", 2),))
    inputs = [example_input("bert", 1 + i % 3, seed=i) for i in range(12)]
    expected = [compiled.run(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(compiled.run, inputs))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---- bad input ---------------------------------------------------------------------------------


def test_state_dict_without_model_says_what_to_pass(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(build("mlp").state_dict(), path)
    with pytest.raises(ValueError, match="pass model="):
        sparsert.load(path)


def test_pickled_module_needs_trusted(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(build("mlp"), path)
    with pytest.raises(ValueError, match="trusted=True"):
        sparsert.load(path)
    compiled = sparsert.load(path, trusted=True, example_inputs=(example_input("mlp", 2),))
    assert compiled.run(example_input("mlp", 2)).shape == (2, 10)


def test_unsupported_operators_are_all_listed():
    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.logcumsumexp(x, 1) + x.amax(1, keepdim=True)

    with pytest.raises(sparsert.UnsupportedModelError) as info:
        sparsert.load(Odd(), example_inputs=(torch.randn(2, 5),))
    message = str(info.value)
    assert "logcumsumexp" in message and "amax" in message and "2 operator(s)" in message


def test_run_rejects_wrong_shapes_and_dtypes():
    compiled = sparsert.load(build("mlp"), example_inputs=(example_input("mlp", 2),))
    with pytest.raises(ValueError, match=r"input 'x'.*\(3, 63\)"):
        compiled.run(torch.randn(3, 63))
    with pytest.raises(TypeError, match="complex"):
        compiled.run(np.zeros((2, 64), dtype=np.complex64))
    with pytest.raises(ValueError, match="expected 1"):
        compiled.run(torch.randn(2, 64), torch.randn(2, 64))


@pytest.mark.parametrize("damage", ["truncate", "flip", "version", "garbage"])
def test_damaged_sprt_files_raise_model_file_error(damage, tmp_path):
    compiled = sparsert.load(prune_model(build("mlp"), "u90"), example_inputs=(example_input("mlp", 2),))
    path = tmp_path / "m.sprt"
    compiled.save(path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
        expect = "truncated"
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
        expect = "checksum"
    elif damage == "version":
        data[8] = 99
        expect = "version 99"
    else:
        data = b"SPRTMODL" + bytes(10)
        expect = "fewer than the 32-byte header"
    path.write_bytes(bytes(data))
    with pytest.raises(sparsert.ModelFileError, match=expect):
        sparsert.load(path)


def test_packed_qkv_projection_is_unbound():
    class Packed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = torch.nn.Linear(16, 48)

        def forward(self, x):
            b, s, _ = x.shape
            q, k, v = self.qkv(x).view(b, s, 3, 2, 8).permute(2, 0, 3, 1, 4)
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)

    model = Packed().eval()
    x = torch.randn(2, 5, 16)
    compiled = sparsert.load(model, example_inputs=(x,))
    x3 = torch.randn(3, 5, 16)
    assert rel_err(compiled.run(x3), eager(model, x3)) < 1e-4


class HeadsAttention(torch.nn.Module):
    """Attention on heads viewed out of token rows: a fused q/k/v product (view, permute, unbind) or
    separate ones (view, transpose), optionally across to a second sequence with a key padding mask, v's
    heads narrower than q's, the output transposed back to token rows."""

    def __init__(self, fused: bool, cross: bool, masked: bool):
        super().__init__()
        self.fused, self.cross, self.masked = fused, cross, masked
        self.heads, self.e, self.ev = 3, 8, 8 if fused else 5
        if fused:
            self.qkv = torch.nn.Linear(20, 3 * self.heads * self.e)
        else:
            self.q = torch.nn.Linear(20, self.heads * self.e)
            self.k = torch.nn.Linear(20, self.heads * self.e)
            self.v = torch.nn.Linear(20, self.heads * self.ev)
        self.out = torch.nn.Linear(self.heads * self.ev, 20)

    def forward(self, x, memory=None):
        b, n, _ = x.shape
        if self.fused:
            q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.e).permute(2, 0, 3, 1, 4)
        else:
            src = memory if self.cross else x
            s = src.shape[1]
            q = self.q(x).view(b, n, self.heads, self.e).transpose(1, 2)
            k = self.k(src).view(b, s, self.heads, self.e).transpose(1, 2)
            v = self.v(src).view(b, s, self.heads, self.ev).transpose(1, 2)
        mask = None
        if self.masked:  # the last key of every sequence padding
            mask = torch.ones(1, 1, 1, k.shape[2], dtype=torch.bool)
            mask[..., -1] = False
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, self.heads * self.ev))


@pytest.mark.parametrize("fused,cross,masked", [(True, False, False), (False, False, True), (False, True, False)])
def test_attention_reads_and_writes_token_rows(fused, cross, masked):
    """sdpa_rows replaces sdpa and the copies around it (no permute left), at a batch other than the
    example's too."""
    torch.manual_seed(0)
    model = HeadsAttention(fused, cross, masked).eval()
    example = (torch.randn(2, 7, 20),) + ((torch.randn(2, 9, 20),) if cross else ())
    compiled = sparsert.load(model, example_inputs=example)
    ops = [p["op"] for p in compiled.profile(*example)]
    assert "sdpa_rows" in ops and "sdpa" not in ops and "permute" not in ops and "slice" not in ops, ops
    for batch in (2, 3):
        x = (torch.randn(batch, 7, 20),) + ((torch.randn(batch, 9, 20),) if cross else ())
        assert rel_err(compiled.run(*x), eager(model, x[0]) if not cross else model(*x).detach()) < 1e-5


class ExposedHeads(HeadsAttention):
    """The attention's (B, H, L, Ev) output is also a model output."""

    def forward(self, x, memory=None):
        b, n, _ = x.shape
        q = self.q(x).view(b, n, self.heads, self.e).transpose(1, 2)
        k = self.k(x).view(b, n, self.heads, self.e).transpose(1, 2)
        v = self.v(x).view(b, n, self.heads, self.ev).transpose(1, 2)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return y, self.out(y.transpose(1, 2).reshape(b, n, self.heads * self.ev))


class RegroupedHeads(HeadsAttention):
    """Heads viewed out of token rows, then reshaped into other heads (3 of 8 become 6 of 4)."""

    def __init__(self, fused: bool, cross: bool, masked: bool):
        super().__init__(fused, cross, masked)
        self.v, self.out = torch.nn.Linear(20, 24), torch.nn.Linear(24, 20)

    def forward(self, x, memory=None):
        b, n, _ = x.shape

        def heads(t, e):
            return t.view(b, n, self.heads, e).transpose(1, 2).reshape(b, 2 * self.heads, n, e // 2)

        y = torch.nn.functional.scaled_dot_product_attention(heads(self.q(x), 8), heads(self.k(x), 8), heads(self.v(x), 8))
        return self.out(y.transpose(1, 2).reshape(b, n, self.heads * 8))


class RegroupedOutput(RegroupedHeads):
    """Heads copied out of token rows, the output reshaped into other heads before going back."""

    def forward(self, x, memory=None):
        b, n, _ = x.shape
        q, k, v = (f(x).view(b, n, self.heads, 8).transpose(1, 2) for f in (self.q, self.k, self.v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v).reshape(b, 2 * self.heads, n, 4)
        return self.out(y.transpose(1, 2).reshape(b, n, self.heads * 8))


@pytest.mark.parametrize("kind", [ExposedHeads, RegroupedHeads, RegroupedOutput])
def test_attention_on_heads_that_are_not_copies_of_token_rows_stays_sdpa(kind):
    model = kind(fused=False, cross=False, masked=False).eval()
    x = torch.randn(2, 7, 20)
    compiled = sparsert.load(model, example_inputs=(x,))
    assert "sdpa" in [p["op"] for p in compiled.profile(x)]
    got, want = compiled.run(x), eager(model, x)
    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        assert rel_err(g, w) < 1e-5


def test_sprt_loads_and_runs_without_torch(tmp_path):
    import subprocess
    import sys

    compiled = sparsert.load(prune_model(build("resnet"), "u90"), example_inputs=(example_input("resnet", 2),))
    path = tmp_path / "r.sprt"
    compiled.save(path)
    x = example_input("resnet", 3).numpy()
    np.save(tmp_path / "x.npy", x)
    expected = compiled.run(x)
    script = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "import numpy as np, sparsert\n"
        f"m = sparsert.load({str(path)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m.run(np.load({str(tmp_path / 'x.npy')!r})))\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


def test_structurally_pruned_rows_are_removed():
    model = build("mlp")
    with torch.no_grad():
        model.layers[0].weight[::3] = 0  # a third of layer 0's neurons pruned away...
        model.layers[0].bias[::6] = 0  # ...half of them with a non-zero bias, so relu(bias) is folded onward
        model.layers[1].weight[1::4] = 0
    x = example_input("mlp", 2)
    compiled = sparsert.load(model, example_inputs=(x,))
    shapes = {c.layer: c.structure.shape for c in compiled.plan}
    assert shapes["layers.0"] == (64, 64) and shapes["layers.1"] == (60, 64) and shapes["layers.2"] == (10, 60)
    assert rel_err(compiled.run(x), eager(model, x)) < 1e-5


def test_dead_conv_channels_are_removed_when_they_output_zero():
    class Convs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.b = torch.nn.Conv2d(8, 4, 3, padding=1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    model = Convs().eval()
    with torch.no_grad():
        model.a.weight[[1, 5, 6]] = 0
        model.a.bias[[1, 5]] = -1.0  # relu(-1) = 0: removable; channel 6 keeps relu(bias) > 0 unless zero
        model.a.bias[6] = 0.5
    x = torch.randn(2, 3, 9, 9)
    compiled = sparsert.load(model, example_inputs=(x,))
    shapes = {c.layer: c.structure.shape for c in compiled.plan}
    assert shapes["a"] == (6, 27) and shapes["b"] == (4, 54)
    assert rel_err(compiled.run(x), eager(model, x)) < 1e-5


def test_conv_add_relu_becomes_one_conv_with_a_residual():
    """relu(conv(...) + identity) runs as one conv2d (residual input, act after the add), also when the
    identity is computed after the conv (a downsample branch); a broadcast add stays a separate add."""

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.b = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.down = torch.nn.Conv2d(3, 8, 1)
            self.c = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.shift = torch.nn.Parameter(torch.randn(8, 1, 1))

        def forward(self, x):
            out = self.bn(self.b(torch.relu(self.a(x))))
            identity = self.down(x)
            return torch.relu(out + identity), torch.relu(self.c(x) + self.shift)

    model = Block().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-1, 1)
        model.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 9, 11)
    compiled = sparsert.load(model, example_inputs=(x,))
    ops = [p["op"] for p in compiled.profile(x)]
    assert sorted(ops) == ["binary", "conv2d", "conv2d", "conv2d", "conv2d", "unary"], ops
    got, want = compiled.run(x), eager(model, x)
    for g, w in zip(got, want):
        assert rel_err(g, w) < 1e-5


def two_of_four(w: torch.Tensor) -> torch.Tensor:
    """``w`` with the 2 largest of every 4 consecutive inputs of a row kept."""
    rows = w.reshape(w.shape[0], -1, 4)
    keep = torch.zeros_like(rows, dtype=torch.bool).scatter_(2, rows.abs().topk(2, dim=2).indices, True)
    return (rows * keep).reshape(w.shape)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_dead_rows_before_a_2_4_layer_go_in_whole_groups_so_it_stays_2_4(kind):
    """Removing a reader's inputs one by one would shift its later inputs across groups of 4 and
    break 2:4; only a group of 4 inputs dead throughout goes (for a 3×3 conv, 4 channels, 36 inputs)."""
    torch.manual_seed(0)
    if kind == "linear":
        a, b = torch.nn.Linear(64, 16), torch.nn.Linear(16, 10)
        x = torch.randn(4, 64)
    else:
        a, b = torch.nn.Conv2d(3, 12, 3, padding=1), torch.nn.Conv2d(12, 8, 3, padding=1)
        x = torch.randn(2, 3, 6, 6)
    model = torch.nn.Sequential(a, torch.nn.ReLU(), b).eval()
    dead = [1, 4, 5, 6, 7]  # 4-7 make a whole group, 1 does not
    with torch.no_grad():
        a.weight[dead] = 0
        a.bias[dead] = -1.0  # relu(-1) = 0, so even the conv's channels are removable
        b.weight.copy_(two_of_four(b.weight.reshape(b.weight.shape[0], -1)).reshape(b.weight.shape))
    compiled = sparsert.load(model, example_inputs=(x,), formats={"2": "nm2:4"})
    shapes = {c.layer: c.structure.shape for c in compiled.plan}
    live, taps = a.weight.shape[0] - 4, 1 if kind == "linear" else 9
    assert shapes["0"][0] == live and shapes["2"][1] == live * taps
    nm = next(c for c in compiled.plan if c.layer == "2")
    assert nm.format == "nm2:4" and nm.structure.nm == (2, 4)
    assert rel_err(compiled.run(x), eager(model, x)) < 1e-5


def test_profile_and_summary_with_measured_times():
    model = prune_model(build("resnet"), "u90")
    x = example_input("resnet", 2)
    compiled = sparsert.load(model, example_inputs=(x,))
    profile = compiled.profile(x, repeats=3)
    assert {p["op"] for p in profile} >= {"conv2d", "linear", "max_pool2d"}
    # A reshape inside the graph reads its input's storage and does not run.
    assert all(p["seconds"] > 0 for p in profile if p["op"] != "reshape")
    assert all(p["seconds"] == 0 for p in profile if p["op"] == "reshape")
    text = compiled.summary(inputs=(x,))
    assert "pred µs" in text and "meas µs" in text and "operators without weights" in text


def test_activation_sparsity_is_measured_and_priced():
    torch.manual_seed(0)
    # Wide enough that the per-call constants of the fits, which move with the host's noise, do not
    # decide between CSC and CSR.
    model = torch.nn.Sequential(torch.nn.Linear(64, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 256)).eval()
    with torch.no_grad():
        model[0].bias.fill_(-1.5)  # most hidden units are off
    x = torch.randn(2, 64)
    with torch.no_grad():
        hidden_zeros = float((torch.relu(model[0](x)) == 0).float().mean())
    compiled = sparsert.load(model, example_inputs=(x,))
    second = next(c for c in compiled.plan if c.layer == "2")
    assert second.structure.input_zero_fraction == pytest.approx(hidden_zeros)
    assert hidden_zeros > 0.8
    assert second.times_us["csc"] < second.times_us["csr"]  # CSC touches only the non-zero inputs' columns
    assert second.format == min(second.times_us, key=second.times_us.get)
    for xb in (x, torch.randn(3, 64)):
        assert rel_err(compiled.run(xb), eager(model, xb)) < 1e-5
    forced = sparsert.load(model, example_inputs=(x,), formats="csc")
    assert rel_err(forced.run(x), eager(model, x)) < 1e-5


def test_csc_weights_round_trip_through_sprt(tmp_path):
    model = prune_model(build("mlp"), "u90")
    x = example_input("mlp", 2)
    compiled = sparsert.load(model, example_inputs=(x,), formats="csc")
    compiled.save(tmp_path / "csc.sprt")
    np.testing.assert_array_equal(sparsert.load(tmp_path / "csc.sprt").run(x.numpy()), compiled.run(x.numpy()))


def test_devices_other_than_cpu_are_refused_clearly():
    model = prune_model(build("mlp"), "u90")
    x = example_input("mlp", 2)
    with pytest.raises(NotImplementedError, match="device='cuda'.*no CUDA backend"):
        sparsert.load(model, example_inputs=(x,), device="cuda")
    with pytest.raises(ValueError, match="device is 'tpu'"):
        sparsert.load(model, example_inputs=(x,), device="tpu")


def test_run_takes_unpickled_arrays():
    # Arrays that crossed a process (Ray's object store, multiprocessing) carry dtype objects of
    # their own: equal to NumPy's float32 and int64, not the same objects.
    import pickle

    model = prune_model(build("mlp"), "u90")
    x = example_input("mlp", 3).numpy()
    compiled = sparsert.load(model, example_inputs=(torch.from_numpy(x),))
    np.testing.assert_array_equal(compiled.run(pickle.loads(pickle.dumps(x))), compiled.run(x))
