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
    assert "p50 ms" in captured.out and "p90 ms" in captured.out and "100%" in captured.err


BENCH_FIELDS = ["load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "runs", "peak_rss_mib",
                "peak_rss_first_run_mib", "vmhwm_mib", "baseline_rss_mib", "rss_after_load_mib", "output_values",
                "nonfinite_outputs"]


@pytest.fixture(scope="module")
def mlp_pair(tmp_path_factory):
    """A 90% pruned MLP saved with CSR weights and its dense version, both batch-free."""
    import sparsert

    folder = tmp_path_factory.mktemp("bench")
    x = example_input("mlp", 2)
    pruned, dense = folder / "mlp_csr.sprt", folder / "mlp_dense.sprt"
    sparsert.load(prune_model(build("mlp"), "u90", keep_reparam=False), example_inputs=(x,), formats="csr").save(pruned)
    sparsert.load(build("mlp"), example_inputs=(x,), formats="dense").save(dense)
    return pruned, dense


def test_bench_reports_every_field_and_the_ratios(mlp_pair, capsys):
    import json

    pruned, dense = mlp_pair
    assert cli.main(["bench", str(pruned), "--dense", str(dense), "--threads", "1,2", "--runs", "3", "--batch", "2",
                     "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threads"] == [1, 2] and report["batch"] == 2 and report["isas"]
    assert [m["role"] for m in report["models"]] == ["pruned", "dense"]
    for m in report["models"]:
        assert m["file_bytes"] == (pruned if m["role"] == "pruned" else dense).stat().st_size
        assert [r["threads"] for r in m["results"]] == [1, 2]
        for r in m["results"]:
            assert r["ok"] and set(BENCH_FIELDS) <= set(r), r
            assert all(r[k] is not None for k in BENCH_FIELDS if k not in ("vmhwm_mib", "baseline_rss_mib",
                                                                            "rss_after_load_mib")), r
            assert r["runs"] == 3 and r["nonfinite_outputs"] == 0 and r["output_values"] == 2 * 10
            assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"] and r["peak_rss_mib"] > 0
    ratios = report["ratios"]
    assert [q["threads"] for q in ratios] == [1, 2]
    assert all(q[k] is not None and q[k] > 0 for q in ratios for k in cli._BENCH_RATIOS)
    assert ratios[0]["file_size"] < 0.5  # CSR at 90% sparsity against dense

    # The table: one row per model and thread count, the ratio rows, every column named; --repeat 2 runs
    # two processes per model and sums their runs.
    assert cli.main(["bench", str(pruned), "--dense", str(dense), "--threads", "1", "--runs", "4", "--repeat", "2"]) == 0
    text = capsys.readouterr().out
    for column in ("file MiB", "load ms", "first ms", "p50 ms", "p90 ms", "p99 ms", "peak RSS MiB"):
        assert column in text, text
    assert "pruned/dense" in text and "not finite" in text and "2 Python process(es)" in text
    assert [line.split()[-1] for line in text.splitlines() if line.startswith(("pruned ", "dense "))][-2:] == ["8", "8"]


def test_bench_rejects_bad_paths_and_arguments(tmp_path, mlp_pair, capsys):
    assert cli.main(["bench", str(tmp_path / "missing.sprt")]) == 2
    err = capsys.readouterr().err
    assert "benchmarking" in err and "missing.sprt': no such file" in err
    other = tmp_path / "model.pt"
    other.write_bytes(b"PK\x03\x04" + bytes(60))
    assert cli.main(["bench", str(other)]) == 2
    assert "not a .sprt model file" in capsys.readouterr().err
    assert cli.main(["bench", str(mlp_pair[0]), "--dense", str(tmp_path / "missing.sprt")]) == 2
    assert "missing.sprt': no such file" in capsys.readouterr().err

    damaged = tmp_path / "damaged.sprt"
    damaged.write_bytes(b"SPRTMODL" + bytes(100))
    assert cli.main(["bench", str(damaged), "--threads", "1", "--runs", "2"]) == 1
    captured = capsys.readouterr()
    assert "error: loading" in captured.out and "damaged.sprt" in captured.err

    assert cli.main(["bench", str(mlp_pair[0]), "--runs", "2", "--seconds", "1"]) == 2
    assert "--runs and --seconds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", str(mlp_pair[0]), "--threads", "1,x"])
    assert "not a comma-separated list" in capsys.readouterr().err


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
