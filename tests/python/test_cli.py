"""The sparsert command: compile → inspect → bench on a pruned model, and its errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from sparsert import cli
from zoo import build, example_input, prune_model


def test_compile_inspect_bench(tmp_path, capsys):
    model = prune_model(build("mlp"), "u90", keep_reparam=False)
    pt2 = tmp_path / "mlp.pt2"
    x = example_input("mlp", 2)
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},)), pt2)
    out = tmp_path / "mlp.sprt"
    assert cli.main(["compile", str(pt2), "-o", str(out)]) == 0
    assert out.is_file() and "layers.0" in capsys.readouterr().out

    assert cli.main(["inspect", str(out), "--batch", "4"]) == 0
    text = capsys.readouterr().out
    assert "input  x: f32 (batch, 64)" in text and "layers.2" in text

    assert cli.main(["bench", str(out), "--batch", "3", "--min-time", "0.05", "--threads", "1", "--progress"]) == 0
    captured = capsys.readouterr()
    assert "median" in captured.out and "p90" in captured.out and "100%" in captured.err


def test_compile_state_dict_needs_model_and_shape(tmp_path, capsys):
    sd = tmp_path / "sd.pt"
    torch.save(build("mlp").state_dict(), sd)
    assert cli.main(["compile", str(sd), "-o", str(tmp_path / "x.sprt")]) == 2
    assert "pass model=" in capsys.readouterr().err
    assert cli.main(["compile", str(sd), "-o", str(tmp_path / "x.sprt"), "--model", "zoo:MLP"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert cli.main(["compile", str(sd), "-o", str(tmp_path / "x.sprt"), "--model", "zoo:MLP",
                     "--input-shape", "4,64", "--formats", "csr"]) == 0


def test_inspect_rejects_a_damaged_file(tmp_path, capsys):
    bad = tmp_path / "bad.sprt"
    bad.write_bytes(b"SPRTMODL" + bytes(100))
    assert cli.main(["inspect", str(bad)]) == 2
    assert "loading" in capsys.readouterr().err


def test_demo_checks_every_output_and_times_torch_on_plain_weights(capsys):
    from sparsert import demo

    demo.main(["--min-time", "0.01"])
    out = capsys.readouterr().out
    errors = [float(e) for e in re.findall(r"rel err\s+([0-9.e+-]+)", out)]
    assert len(errors) == 2 and max(errors) < 1e-5, out
    table = [line for line in out.splitlines() if line.startswith(("Dense", "CSR", "BSR", "NM"))]
    assert len(table) == 4 and all(float(line.split()[-5]) < 1e-5 for line in table), out


def test_demo_onnxruntime_session_matches_torch():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sparsert import demo

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).eval()
    x = torch.randn(3, 784)
    with torch.no_grad():
        ref = mlp(x).numpy()
    got = demo._ort_session(mlp, 1).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
