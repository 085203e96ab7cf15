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


# The importer's code tables and the helpers that take a spelling and look it up in one.
CODE_TABLES = {"ACT_CODES": "activation", "UNARY_KINDS": "unary", "BINARY_KINDS": "binary", "DTYPE_CODES": "dtype"}
CODE_HELPERS = {"_unary": "unary", "unary": "unary", "_binary": "binary", "binary": "binary", "_compare": "binary",
                "_logical": "binary"}


def importer_spellings() -> dict[str, set[str]]:
    """Table → the spellings the package's source looks up in it: string keys of ACT_CODES[...] and
    the other tables and string arguments of the helpers that look one up (`_unary("relu")`,
    `emit.binary("add", ...)`), directly or through a variable; the kinds that the handler factories
    closed over (aten's table, built at import); and the element types of its constants."""
    from sparsert.importer import aten

    found: dict[str, set[str]] = {table: set() for table in CODE_TABLES.values()}

    def strings(node: ast.AST) -> set[str]:
        return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}

    def choices(node: ast.AST) -> set[str] | None:
        """The strings an expression can be: a literal, or either branch of `a if c else b`."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.IfExp):
            body, orelse = choices(node.body), choices(node.orelse)
            return None if body is None or orelse is None else body | orelse
        return None

    def spelled(node: ast.AST, bound: dict[str, set[str]]) -> set[str]:
        return bound.get(node.id, set()) if isinstance(node, ast.Name) else choices(node) or set()

    def visit(node: ast.AST, bound: dict[str, set[str]]) -> None:
        # A variable that a function sets to literals (`kind = "gelu_tanh" if tanh else "gelu"`), or that
        # a loop or comprehension runs over a plain tuple of literals, stands for them.
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            bound = dict(bound)
            for a in ast.walk(node):
                if isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name):
                    if (values := choices(a.value)) is not None:
                        bound[a.targets[0].id] = bound.get(a.targets[0].id, set()) | values
        if isinstance(node, (ast.For, ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            loops = [node] if isinstance(node, ast.For) else node.generators
            bound = {**bound, **{g.target.id: strings(g.iter) for g in loops
                                 if isinstance(g.target, ast.Name) and isinstance(g.iter, (ast.Tuple, ast.List))}}
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in CODE_TABLES:
            found[CODE_TABLES[node.value.id]] |= spelled(node.slice, bound)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in CODE_HELPERS:
                found[CODE_HELPERS[name]] |= spelled(node.args[0], bound)
        for child in ast.iter_child_nodes(node):
            visit(child, bound)

    for path in PACKAGE.rglob("*.py"):
        visit(ast.parse(path.read_text()), {})
    for handler in aten._HANDLERS.values():
        factory = getattr(handler, "__qualname__", "").split(".")[0]
        cells = dict(zip(getattr(handler, "__code__", None) and handler.__code__.co_freevars or (),
                         getattr(handler, "__closure__", None) or ()))
        if factory in CODE_HELPERS and "kind" in cells:
            found[CODE_HELPERS[factory]].add(cells["kind"].cell_contents)
    found["dtype"] |= set(getattr(aten, "_NUMPY_DTYPES", {}))  # the element types it builds constants in
    return found


def test_importer_spellings_are_the_cores_codes():
    from sparsert import _core
    from sparsert.importer import ir

    codes = _core.codes()
    assert set(codes) == set(CODE_TABLES.values())
    for table, values in codes.items():  # codes 0, 1, 2, ... in order, one spelling each
        assert list(values.values()) == list(range(len(values))), table
    assert (ir.ACT_CODES, ir.UNARY_KINDS, ir.BINARY_KINDS, ir.DTYPE_CODES) == (
        codes["activation"], codes["unary"], codes["binary"], codes["dtype"])
    # Fusing a unary node into a layer's epilogue maps its kind to the activation of the same name.
    assert ir.EPILOGUE_ACTS == set(codes["activation"]) - {"none"} and ir.EPILOGUE_ACTS <= set(codes["unary"])
    assert sparsert.ACTIVATIONS == tuple(a for a in codes["activation"] if a != "none")

    used = importer_spellings()
    # The scan must see the importer's use of every table, or a refactoring has outgrown it.
    assert {"relu", "gelu_tanh", "rsqrt", "hardswish"} <= used["unary"], used["unary"]
    assert {"add", "mul", "eq", "ge", "and", "xor", "maximum"} <= used["binary"], used["binary"]
    assert {"f32", "i64", "bool"} <= used["dtype"], used["dtype"]
    for table, names in used.items():
        unknown = names - set(codes[table])
        assert not unknown, f"the importer spells {sorted(unknown)} in {table}, unknown to _core.codes()[{table!r}]"
