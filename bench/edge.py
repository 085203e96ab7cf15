#!/usr/bin/env python3
"""Edge figures of the benchmark models: what a pruned `.sprt` costs on a device against its dense version.

For each model of bench/model_zoo.py (default resnet18, mobilenet, bert2) this writes the dense model
(formats="dense") and each pruning (default g90 and 2:4) in each format choice (default `auto`: the
cost model's per-layer choice for latency at the compile batch and 1 thread, which may keep layers
dense; and `pattern`: every layer in the pruning's own format, csr for g*/u*, nm2:4 for 2:4, bsr4x4
for bsr4x4_90: the smallest file) as `.sprt` files into a work folder (default build/edge, never
committed), then runs the C++ program sparsert-bench (cpp/tools/sparsert_bench.cpp) on each pruned
file with `--dense` its dense one: file size, load time, first-run latency, steady-state p50/p90/p99
and peak RSS at each thread count, every (file, thread count) in --repeat fresh processes (default 3,
1 s each; medians), and the ratios pruned/dense within the same run. The table goes to
bench/results/edge.md; `--readme` also rewrites the summary table of bench/README.md (between the
`edge:begin` / `edge:end` markers).

    python bench/edge.py --quick                              # CI: mlp, g90 and 2:4 (auto), correctness only
    python bench/edge.py                                      # the default grid -> bench/results/edge.md
    python bench/edge.py --readme                             # ... and bench/README.md's summary
    python bench/edge.py --models bert2 --configs g90 --threads 1 --markdown /tmp/edge.md

sparsert-bench is looked for at --program, then $SPARSERT_BENCH_PROGRAM, then on PATH, then in
build/*/cpp/tools/ (the newest); the Python package that writes the files must read the same format
version as that program (build both from one checkout). `--reuse` keeps .sprt files already in the
work folder (after a change of the file format, leave it off). Exit status 1 when a measurement
failed, a field is missing or an output was not finite.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULT_FIELDS = ["load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "runs", "peak_rss_mib",
                 "peak_rss_first_run_mib", "vmhwm_mib", "baseline_rss_mib", "rss_after_load_mib", "output_values",
                 "nonfinite_outputs"]
RATIO_FIELDS = ["file_size", "load", "first_run", "p50", "p90", "p99", "peak_rss"]
PATTERN_FORMATS = {"2:4": "nm2:4", "bsr4x4_90": "bsr4x4"}  # the others (g80..u95) are unstructured: csr
README_BEGIN, README_END = "<!-- edge:begin (bench/edge.py --readme) -->", "<!-- edge:end -->"


def find_program(explicit: Optional[str]) -> str:
    candidates = [explicit, os.environ.get("SPARSERT_BENCH_PROGRAM"), shutil.which("sparsert-bench")]
    built = sorted(glob.glob(str(ROOT / "build" / "*" / "cpp" / "tools" / "sparsert-bench")), key=os.path.getmtime)
    for path in candidates + built[::-1]:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise SystemExit("edge.py: sparsert-bench not found (pass --program, or build it: cmake -S . -B build/rel -G Ninja "
                     "&& cmake --build build/rel --target sparsert-bench)")


def pattern_format(config: str) -> str:
    return PATTERN_FORMATS.get(config, "csr")


def write_model(name: str, config: str, choice: str, batch: int, folder: Path, reuse: bool) -> dict:
    """One .sprt file of model `name` pruned as `config`, its layers in format `choice` ("auto", "pattern" or
    a format name); {"path", "formats" (a summary of the plan), "compile_s"}."""
    import torch

    import model_zoo
    import sparsert

    formats = pattern_format(config) if choice == "pattern" else choice
    path = folder / f"{name}_{config.replace(':', '-')}_{formats.replace(':', '-')}.sprt"
    started = time.perf_counter()
    plan = None
    if not (reuse and path.is_file()):
        model = model_zoo.build(name, config)
        x = model_zoo.make_input(name, batch)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            compiled = sparsert.load(model, example_inputs=(x,), formats=formats, num_threads=1)
        compiled.save(str(path))
        plan = compiled.plan
    counts = collections.Counter(c.format for c in plan) if plan else None
    summary = ", ".join(f"{f} ×{n}" for f, n in counts.most_common()) if counts else f"{formats} (reused file)"
    if choice == "auto" and counts:
        summary = "auto: " + summary
    out = {"path": path, "formats": summary, "compile_s": time.perf_counter() - started}
    print(f"  {path.name}: {path.stat().st_size / 2**20:.2f} MiB, formats {summary} ({out['compile_s']:.1f} s)",
          flush=True)
    return out


def run_bench(program: str, pruned: Path, dense: Path, args) -> tuple:
    """sparsert-bench's JSON report for one pruned file against its dense one, and the problems found."""
    cmd = [program, str(pruned), "--dense", str(dense), "--threads", ",".join(map(str, args.threads)),
           "--batch", str(args.batch), "--repeat", str(args.repeat), "--json"]
    cmd += ["--runs", str(args.runs)] if args.runs else ["--seconds", str(args.seconds)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    problems = []
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return None, [f"{shlex.join(cmd)}: exit status {done.returncode}, no JSON report; {done.stderr.strip()}"]
    if done.returncode != 0:
        problems.append(f"{pruned.name}: sparsert-bench exit status {done.returncode}: {done.stderr.strip()}")
    for model in report.get("models", []):
        for r in model.get("results", []):
            if not r.get("ok"):
                problems.append(f"{Path(model['path']).name} at {r.get('threads')} thread(s): {r.get('error')}")
                continue
            missing = [k for k in RESULT_FIELDS if k not in r]
            if missing:
                problems.append(f"{Path(model['path']).name}: fields missing: {', '.join(missing)}")
            if r.get("nonfinite_outputs"):
                problems.append(f"{Path(model['path']).name} at {r['threads']} thread(s): {r['nonfinite_outputs']} "
                                f"of {r['output_values']} output values are NaN or infinite")
            if r.get("output_values", 0) <= 0:
                problems.append(f"{Path(model['path']).name}: no output values")
    for q in report.get("ratios", []):
        missing = [k for k in RATIO_FIELDS if q.get(k) is None]
        if missing and not problems:
            problems.append(f"{pruned.name}: ratios missing at {q.get('threads')} thread(s): {', '.join(missing)}")
    if len(report.get("ratios", [])) != len(args.threads):
        problems.append(f"{pruned.name}: {len(report.get('ratios', []))} ratio rows (expected {len(args.threads)})")
    return report, problems


def fmt(v: Optional[float], digits: int = 3) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if abs(v) >= 10**digits else f"{v:.{digits}g}"


def pair(values: List[Optional[float]]) -> str:
    return " / ".join(fmt(v) for v in values)


def table_rows(name: str, config: str, formats: str, report: dict, dense_row: bool) -> List[str]:
    """The dense row (once per model) and the pruned row with its ratios from the same run."""
    rows = []
    models = {m["role"]: m for m in report["models"]}
    for role in (["dense"] if dense_row else []) + ["pruned"]:
        m = models[role]
        res = m["results"]
        ok = all(r["ok"] for r in res)
        cells = [name, "dense" if role == "dense" else config, formats if role == "pruned" else "dense",
                 f"{m['file_bytes'] / 2**20:.2f}"]
        if ok:
            cells += [fmt(res[0]["load_ms"]), pair([r["first_run_ms"] for r in res]),
                      pair([r["p50_ms"] for r in res]), pair([r["p99_ms"] for r in res]),
                      pair([r["peak_rss_mib"] for r in res])]
        else:
            cells += ["error"] * 5
        if role == "pruned" and "ratios" in report:
            q = report["ratios"]
            cells += [fmt(q[0]["file_size"]), fmt(q[0]["load"]), pair([r["p99"] for r in q]), fmt(q[0]["peak_rss"])]
        else:
            cells += [""] * 4
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def header_lines(args, report: dict, started: float) -> List[str]:
    import sparsert
    import torch

    import machine

    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"
    threads = " / ".join(map(str, args.threads))
    return [
        f"# Edge: pruned `.sprt` against dense, `sparsert-bench` ({datetime.date.today().isoformat()})",
        "",
        f"cpu: {machine.cpu_model()} ({platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"{report['physical_cores']} physical cores); sparsert ISAs `{report['isas']}`; sparsert {sparsert.__version__}, "
        f"torch {torch.__version__}; 1-min load {load} at the end; {time.time() - started:.0f} s in all.",
        f"Batch {args.batch}; steady state {report['steady_state']} after the first run and {report['warmup_runs']} "
        f"warm-up runs; each file and thread count in {report['repeat']} fresh process(es), pruned and dense "
        f"alternating (sparsert-bench forks one per measurement), figures the medians over them, peak RSS "
        f"(getrusage ru_maxrss, which includes the process's ~2 MiB baseline) the largest. "
        f"Pruned files: formats `{args.formats}` (auto: chosen for latency at 1 thread; pattern: csr for "
        f"unstructured, nm2:4 for 2:4); ratios pruned/dense come from the same "
        f"sparsert-bench run, the dense row from the model's first run.",
        f"Command: `python {' '.join(shlex.quote(a) for a in sys.argv)}`",
        "",
        f"| model | config | formats (layers) | file MiB | load ms | first run ms ({threads} thr) | p50 ms ({threads} thr) "
        f"| p99 ms ({threads} thr) | peak RSS MiB ({threads} thr) | ×dense file | ×dense load | ×dense p99 ({threads} thr) "
        f"| ×dense peak RSS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]


def readme_summary(results: List[tuple], args) -> List[str]:
    """One row per model and pruning: file, load, p99 and peak RSS as ×dense, one figure per format choice
    (`auto` / pattern by default), p99 at each thread count in brackets."""
    threads = " / ".join(map(str, args.threads))
    choices = list(dict.fromkeys(r[2] for r in results))
    lines = [README_BEGIN, f"| model | config | file | load | p99 ({threads} thr) | peak RSS |", "|---|---|---|---|---|---|"]
    rows: Dict[tuple, Dict[str, dict]] = collections.defaultdict(dict)
    for name, config, choice, _, report in results:
        rows[(name, config)][choice] = report

    def cell(by_choice: Dict[str, dict], key: str) -> str:
        out = []
        for c in choices:
            q = by_choice.get(c, {}).get("ratios")
            if not q or any(v is None for x in q for v in x.values()):
                out.append("-")
            elif key == "p99":
                out.append(" / ".join(fmt(x["p99"], 2) for x in q) if len(choices) == 1 else
                           "(" + " / ".join(fmt(x["p99"], 2) for x in q) + ")")
            else:
                out.append(fmt(q[0][key], 2))
        return " / ".join(out)

    for (name, config), by_choice in rows.items():
        lines.append(f"| {name} | {config} | {cell(by_choice, 'file_size')} | {cell(by_choice, 'load')} | "
                     f"{cell(by_choice, 'p99')} | {cell(by_choice, 'peak_rss')} |")
    lines.append(README_END)
    return lines


def update_readme(lines: List[str]) -> None:
    path = ROOT / "bench" / "README.md"
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise SystemExit(f"edge.py: {path} has no '{README_BEGIN}' ... '{README_END}' block to rewrite")
    before, rest = text.split(README_BEGIN, 1)
    after = rest.split(README_END, 1)[1]
    path.write_text(before + "\n".join(lines) + after)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="resnet18,mobilenet,bert2", help="model_zoo.py models (default resnet18,mobilenet,bert2)")
    p.add_argument("--configs", default="g90,2:4", help="prunings against dense (default g90,2:4)")
    p.add_argument("--formats", default="auto,pattern", help="format choices of the pruned files, each a file: auto, "
                   "pattern (the pruning's own format) or a format name (default auto,pattern; dense files are dense)")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--batch", type=int, default=1, help="compile batch and run batch (default 1)")
    p.add_argument("--seconds", type=float, default=1.0, help="steady-state seconds per process (default 1)")
    p.add_argument("--repeat", type=int, default=3, help="processes per file and thread count, figures the medians "
                   "over them (default 3; load time and first run are one sample per process)")
    p.add_argument("--runs", type=int, default=0, help="exactly N steady-state runs instead of --seconds")
    p.add_argument("--workdir", default=str(ROOT / "build" / "edge"), help="folder of the .sprt files (default build/edge)")
    p.add_argument("--reuse", action="store_true", help="keep .sprt files already in the work folder")
    p.add_argument("--program", help="the sparsert-bench executable (default: found, see above)")
    p.add_argument("--markdown", default=None, help="table file (default bench/results/edge.md; none with --quick)")
    p.add_argument("--jsonl", default=None, help="also write each sparsert-bench report as a JSON line here")
    p.add_argument("--readme", action="store_true", help="rewrite the summary table in bench/README.md")
    p.add_argument("--quick", action="store_true", help="CI smoke: mlp, g90 and 2:4 in auto formats, 1 thread, 3 runs; checks only")
    args = p.parse_args(argv)
    if args.quick:
        args.models, args.threads, args.runs, args.formats, args.repeat = "mlp", "1", 3, "auto", 1
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        args.threads = []
    if not args.threads or min(args.threads) < 1 or args.batch < 1 or args.seconds <= 0 or args.runs < 0 or args.repeat < 1:
        raise SystemExit("edge.py: --threads (a list of counts >= 1), --batch, --seconds, --runs and --repeat must be positive")
    if args.markdown is None and not args.quick:
        args.markdown = str(ROOT / "bench" / "results" / "edge.md")
    models = args.models.split(",")
    configs = [c for c in args.configs.split(",") if c != "dense"]
    choices = args.formats.split(",")
    import model_zoo

    unknown = [m for m in models if m not in model_zoo.MODELS] + [c for c in configs if c not in model_zoo.CONFIGS]
    if unknown:
        raise SystemExit(f"edge.py: unknown model or pruning {', '.join(unknown)} (expected models from "
                         f"{', '.join(model_zoo.MODELS)} and prunings from {', '.join(model_zoo.CONFIGS)})")

    program = find_program(args.program)
    folder = Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"edge.py: {program}; files in {folder}", flush=True)
    results, problems = [], []
    for name in models:
        print(f"{name}: writing dense and {', '.join(configs)} in formats {', '.join(choices)}", flush=True)
        dense = write_model(name, "dense", "dense", args.batch, folder, args.reuse)
        for config in configs:
            for choice in choices:
                pruned = write_model(name, config, choice, args.batch, folder, args.reuse)
                report, found = run_bench(program, pruned["path"], dense["path"], args)
                problems += [f"{name} {config} {choice}: {f}" for f in found]
                if report is None:
                    continue
                results.append((name, config, choice, pruned["formats"], report))
                q = report.get("ratios", [])
                print(f"    " + "; ".join(f"{x['threads']} thr: p99 ×{fmt(x['p99'], 2)}, RSS ×{fmt(x['peak_rss'], 2)}, "
                                         f"file ×{fmt(x['file_size'], 2)}" for x in q), flush=True)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps({"model": name, "config": config, "formats": pruned["formats"],
                                            **report}) + "\n")
    if results and args.markdown and not problems:
        lines = header_lines(args, results[0][-1], started)
        seen = set()
        for name, config, _, formats, report in results:
            lines += table_rows(name, config, formats, report, dense_row=name not in seen)
            seen.add(name)
        Path(args.markdown).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.markdown}")
    if results and args.readme and not problems:
        update_readme(readme_summary(results, args))
        print("updated bench/README.md")
    for line in problems:
        print(f"FAIL {line}", file=sys.stderr)
    if args.quick and not problems:
        print(f"edge.py --quick: ok ({len(results)} runs of sparsert-bench, every field present, outputs finite)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
