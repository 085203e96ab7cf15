"""The package's shape: no import cycle among its modules, the lazy torch-side attributes, and one
spelling per format read by one parser."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sparsert
from sparsert import cost, formats

PACKAGE = Path(sparsert.__file__).parent


def package_imports() -> dict[str, set[str]]:
    """Module → the package's modules it imports, at module level or inside functions."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)  # `from . import cost`
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sparsert"):
                found.add(node.module)
        graph[name] = found
    return {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}


def test_no_import_cycle():
    graph = package_imports()
    assert "sparsert.cost" in graph and "sparsert.formats" in graph["sparsert.cost"]
    # A package's __init__ re-exports its modules: an edge into a package, not a cycle through it.
    edges = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    done, stack = set(), []

    def visit(module: str) -> None:
        if module in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(module):] + [module]))
        if module in done:
            return
        stack.append(module)
        for target in sorted(edges[module]):
            if target.startswith(module + "."):
                continue  # a package importing its own modules
            visit(target)
        stack.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)


def test_prune_and_sparsify_are_attributes_without_torch_at_import():
    script = ("import sys, sparsert; assert 'torch' not in sys.modules, 'import sparsert imported torch'; "
              "p = sparsert.prune.plan; s = sparsert.sparsify; assert callable(p) and callable(s)")
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize("spelling", cost.FORMATS)
def test_every_format_spelling_round_trips_and_packs(spelling):
    spec = formats.parse(spelling)
    assert str(spec) == spelling and formats.parse(spec) is spec
    rng = np.random.default_rng(0)
    w = rng.standard_normal((16, 24)).astype(np.float32)
    if spec.kind == "nm":  # keep the first n of every m inputs
        n, m = spec.nm
        w *= (np.arange(24) % m < n)[None, :]
    packed = formats.pack(w, spelling)
    expected = {"dense": formats.Dense, "csr": formats.CSR, "csc": formats.CSC, "bsr": formats.BSR, "nm": formats.NM}
    assert isinstance(packed, expected[spec.kind])
    np.testing.assert_array_equal(packed.to_dense(), w)


@pytest.mark.parametrize("spelling", ["block4x4", "b4x4", "bsr4", "nm2-4", "CSR", "", 4])
def test_unknown_spellings_name_the_accepted_ones(spelling):
    with pytest.raises(ValueError, match=r"format .* is not known \(expected dense, csr, csc, bsr<r>x<c>"):
        formats.parse(spelling)


def test_unsupported_shapes_are_the_packers_errors():
    with pytest.raises(ValueError, match="block shape"):
        formats.pack(np.ones((4, 4), np.float32), "bsr3x3")
