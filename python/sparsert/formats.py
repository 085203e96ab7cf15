"""Weight formats. Each is built from a dense fp32 matrix ``W`` of shape ``(out, in)`` (NumPy
array or torch tensor) and packs it once; the kernels of :func:`sparsert.linear` then use it.

- :class:`Dense` — plain packed matrix, for layers that stay dense.
- :class:`CSR` — unstructured sparsity (16-bit column indices when ``in`` ≤ 65536).
- :class:`BSR` — block sparsity with blocks ``(r, c)``, each side 1, 2, 4, 8 or 16.
- :class:`NM` — N:M semi-structured sparsity (2:4, 1:4, 4:8, … with M of 4 or 8).
- :class:`CSC` — unstructured sparsity by columns: skips zero inputs (layers after a ReLU).

Every format has ``shape``, ``nnz`` (stored values inside the matrix), ``density``, ``nbytes``
(bytes the packed format occupies), ``to_dense()`` (an exact round trip) and a readable repr.

A format's one spelling (``formats=`` of :func:`sparsert.load`, the cost model, the plans):
``"dense"``, ``"csr"``, ``"csc"``, ``"bsr<r>x<c>"`` (``"bsr4x4"``), ``"nm<n>:<m>"`` (``"nm2:4"``).
:func:`parse` reads it into a :class:`Spec`, :func:`pack` packs a weight in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from . import _core
from ._convert import as_matrix

__all__ = ["Dense", "CSR", "CSC", "BSR", "NM", "Spec", "Weight", "pack", "parse"]

Weight = _core.Weight


class Dense(_core.Dense):
    """A dense weight ``W`` (out, in)."""

    def __init__(self, W: Any) -> None:
        super().__init__(as_matrix(W, "W", "building dense"))


class CSR(_core.CSR):
    """Unstructured sparse weight: every non-zero of ``W`` (out, in), in compressed rows."""

    def __init__(self, W: Any) -> None:
        super().__init__(as_matrix(W, "W", "building csr"))


class CSC(_core.CSC):
    """Unstructured sparse weight in compressed columns: the kernel visits only the columns whose
    input is non-zero, so it pays where activations are mostly zero (after a ReLU). One thread."""

    def __init__(self, W: Any) -> None:
        super().__init__(as_matrix(W, "W", "building csc"))


class BSR(_core.BSR):
    """Block-sparse weight: the ``block = (r, c)`` tiles of ``W`` that hold any non-zero.

    Sides that are not multiples of the block are padded inside the format.
    Raises ValueError for a block side other than 1, 2, 4, 8 or 16."""

    def __init__(self, W: Any, block: Tuple[int, int] = (4, 4)) -> None:
        if not (isinstance(block, (tuple, list)) and len(block) == 2 and all(isinstance(v, int) for v in block)):
            raise ValueError(f"building bsr: block is {block!r} (expected a pair of ints (r, c), e.g. (4, 4))")
        super().__init__(as_matrix(W, "W", "building bsr"), (int(block[0]), int(block[1])))


class NM(_core.NM):
    """N:M semi-structured weight: at most ``n`` non-zeros in every ``m`` consecutive inputs.

    Raises ValueError naming the row and group when ``W`` breaks the pattern, or when
    ``(n, m)`` is unsupported (M must be 4 or 8, 1 ≤ N < M)."""

    def __init__(self, W: Any, n: int = 2, m: int = 4) -> None:
        if not (isinstance(n, int) and isinstance(m, int)):
            raise ValueError(f"building nm: n={n!r}, m={m!r} (expected ints, e.g. n=2, m=4)")
        super().__init__(as_matrix(W, "W", "building nm"), n, m)


@dataclass(frozen=True)
class Spec:
    """A format and its shape parameters: ``kind`` "dense", "csr", "csc", "bsr" (with ``block``
    (r, c)) or "nm" (with ``nm`` (n, m)). ``str(spec)`` is its spelling."""

    kind: str
    block: Optional[Tuple[int, int]] = None
    nm: Optional[Tuple[int, int]] = None

    def __str__(self) -> str:
        if self.kind == "bsr":
            return f"bsr{self.block[0]}x{self.block[1]}"
        if self.kind == "nm":
            return f"nm{self.nm[0]}:{self.nm[1]}"
        return self.kind


_SPELLING = re.compile(r"(dense|csr|csc)|bsr(\d+)x(\d+)|nm(\d+):(\d+)")


def parse(spec: Any) -> Spec:
    """The :class:`Spec` of a format's spelling (a Spec passes through). Raises ValueError naming the
    spelling and the accepted ones; whether the kernels support the shape is :func:`pack`'s check."""
    if isinstance(spec, Spec):
        return spec
    found = _SPELLING.fullmatch(spec) if isinstance(spec, str) else None
    if found is None:
        raise ValueError(f"format {spec!r} is not known (expected dense, csr, csc, bsr<r>x<c> e.g. bsr4x4, "
                         f"or nm<n>:<m> e.g. nm2:4)")
    plain, r, c, n, m = found.groups()
    if plain:
        return Spec(plain)
    return Spec("bsr", block=(int(r), int(c))) if r else Spec("nm", nm=(int(n), int(m)))


def pack(W: Any, spec: Any) -> Weight:
    """``W`` (out, in) packed in the format ``spec`` names (a spelling or a :class:`Spec`)."""
    s = parse(spec)
    if s.kind == "bsr":
        return BSR(W, s.block)
    if s.kind == "nm":
        return NM(W, *s.nm)
    return {"dense": Dense, "csr": CSR, "csc": CSC}[s.kind](W)
