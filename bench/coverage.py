#!/usr/bin/env python3
"""Model coverage: which real architectures sparsert compiles and runs correctly.

For every entry of tests/python/coverage_zoo.py (torchvision, timm, torch.nn and Hugging Face
transformers models, small, randomly initialised, norms randomised, every Linear/Conv 90% pruned by
magnitude) it compiles the model with `sparsert.load(model, example_inputs=...)` and compares with
eager PyTorch at batch 1 and 3 (‖y − ref‖/‖ref‖ < 1e-4 on every output tensor), then does the same
through `sparsert.sparsify(model, example_inputs)`. Each path is classified:

- PASS: loads and matches at both batches;
- WRONG: loads but differs (the error printed);
- UNSUPPORTED: sparsert.UnsupportedModelError or another ValueError (the operators it names);
- CRASH: any other exception (its type and message).

    python bench/coverage.py                   # the table, with the time per model
    python bench/coverage.py --only bert,vit   # entries whose name contains one of these
    python bench/coverage.py --readme          # also rewrites README.md's "Supported models" table

Needs the `test` extra (torchvision, timm, transformers); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ off the path: its kernels.py would shadow the `kernels` package transformers imports.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import coverage_zoo as zoo  # before torchvision: it lets torchvision import beside the CPU torch
import torch

import sparsert

BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
BATCHES = (1, 3)


@dataclass
class Result:
    status: str  # PASS, WRONG, UNSUPPORTED, CRASH, or "-" (not run)
    detail: str = ""
    missing: list[str] = field(default_factory=list)


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _failure(exc: BaseException, action: str) -> Result:
    text = f"{action}: {type(exc).__name__}: {_short(exc)}"
    if isinstance(exc, ValueError):  # sparsert.UnsupportedModelError is a ValueError
        return Result("UNSUPPORTED", text, zoo.missing_operators(str(exc)))
    return Result("CRASH", text)


def check(compile_fn, model, make_inputs) -> Result:
    """Compiles with `compile_fn(model, example_inputs)` and compares what it returns, called on fresh
    inputs at each batch of BATCHES, with eager."""
    cases = [make_inputs(batch) for batch in BATCHES]
    with torch.no_grad():
        expected = [model(*inputs) for inputs in cases]
        # Exceptions are classified, not raised: the table shows every model.
        try:
            compiled = compile_fn(model, make_inputs(1))
        except Exception as exc:
            return _failure(exc, "compiling")
        got = []
        for batch, inputs in zip(BATCHES, cases):
            try:
                got.append(compiled(*inputs))
            except Exception as exc:
                return _failure(exc, f"running batch {batch}")
    for batch, y, ref in zip(BATCHES, got, expected):
        problem = zoo.mismatch(y, ref)
        if problem:
            return Result("WRONG", f"batch {batch}: {problem}")
    return Result("PASS")


def _load(model, example_inputs):
    return sparsert.load(model, example_inputs=example_inputs)


def _sparsify(model, example_inputs):
    # A copy: sparsify may rewrite the module it is given, and the eager model stays the reference.
    return sparsert.sparsify(copy.deepcopy(model), example_inputs)


def run(entries) -> list[tuple[zoo.Entry, Result, Result, float]]:
    rows = []
    for entry in entries:
        start = time.perf_counter()
        try:
            model, make_inputs = zoo.build(entry)
        except Exception as exc:
            failed = Result("CRASH", f"building: {type(exc).__name__}: {_short(exc)}")
            rows.append((entry, failed, failed, time.perf_counter() - start))
            continue
        loaded = check(_load, model, make_inputs)
        sparsified = check(_sparsify, model, make_inputs)
        seconds = time.perf_counter() - start
        rows.append((entry, loaded, sparsified, seconds))
        line = f"{seconds:6.1f} s  {zoo.entry_id(entry):<45} load {loaded.status}, sparsify {sparsified.status}"
        details = [r.detail for r in (loaded, sparsified) if r.status in ("WRONG", "CRASH", "UNSUPPORTED")]
        print(line + (f"  ({_short(details[0], 100)})" if details else ""), flush=True)
    return rows


def _cell(result: Result) -> str:
    if result.status in ("WRONG", "CRASH"):
        return f"{result.status}: {_short(result.detail, 90)}".replace("|", "\\|")
    return result.status


def table(rows) -> str:
    header = "| model | source | `sparsert.load` | `sparsert.sparsify` | missing operators (or the refusal) |"
    lines = [header, "|---|---|---|---|---|"]
    for entry, loaded, sparsified, _ in rows:
        missing = list(dict.fromkeys(loaded.missing + sparsified.missing))
        shown = ", ".join(f"`{m}`" for m in missing[:6]) + (f" (+{len(missing) - 6})" if len(missing) > 6 else "")
        if not shown:  # a refusal that names no operator: its reason
            refusal = next((r.detail for r in (loaded, sparsified) if r.status == "UNSUPPORTED"), "")
            shown = _short(refusal, 90).replace("|", "\\|")
        lines.append(f"| {entry.name} | {entry.source} | {_cell(loaded)} | "
                     f"{_cell(sparsified)} | {shown} |")
    return "\n".join(lines)


def rewrite_readme(text: str, path: Path = ROOT / "README.md") -> None:
    readme = path.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"rewriting {path}: markers {BEGIN} and {END} not found (expected both, in that order)")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated substrings of entry names to run")
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's Supported models table")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_grad_enabled(False)
    entries = zoo.ZOO
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        entries = [e for e in entries if any(w in zoo.entry_id(e) for w in wanted)]
        if args.readme:
            raise SystemExit("--readme rewrites the whole table: run it without --only")
    start = time.perf_counter()
    rows = run(entries)
    counts = {s: sum(r[1].status == s for r in rows) for s in ("PASS", "WRONG", "UNSUPPORTED", "CRASH")}
    text = table(rows)
    summary = (f"sparsert.load: {counts['PASS']} of {len(rows)} pass, {counts['WRONG']} wrong, "
               f"{counts['UNSUPPORTED']} unsupported, {counts['CRASH']} crash")
    print(f"\n{text}\n\n{summary} ({time.perf_counter() - start:.0f} s; torch {torch.__version__})")
    if args.readme:
        rewrite_readme(f"{text}\n\n{summary}.")
        print("README.md: Supported models table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
