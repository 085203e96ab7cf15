"""Side-by-side timing of a few callables, the method of the project's performance anchors.

On a small shared host, absolute times drift by ±15% from minute to minute while ratios taken in
one run stay within ±10%, so callables that are compared are timed together: each is warmed up,
then they take turns in short bursts (the order rotating every round) until each has at least
``min_time`` seconds and ``min_calls`` timed calls; every call is timed on its own with
``time.perf_counter`` and the median is the figure to quote (p10 and p90 show the spread).

    from sparsert._timing import time_interleaved
    t = time_interleaved({"torch": lambda: F.linear(x, w), "sparsert": lambda: sparsert.linear(x, sw)})
    print(t["sparsert"].median / t["torch"].median)

Tools that disturb the others are timed in blocks of their own (``time_blocks``): onnxruntime's idle
worker threads keep spinning for more than 20 ms after a call and made the next torch call's p90
4-5x worse at 2 threads (the anchors' ``ort_spin_test.py``), so each such tool gets a block, and the
blocks alternate ``passes`` times, every block timed with ``time_interleaved`` inside.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Sequence

__all__ = ["Timing", "time_blocks", "time_interleaved"]


@dataclass(frozen=True)
class Timing:
    """Per-call times of one callable, in seconds."""

    median: float
    p10: float
    p90: float
    calls: int


def summarize(samples: List[float]) -> Timing:
    if len(samples) < 2:
        return Timing(samples[0], samples[0], samples[0], len(samples))
    deciles = statistics.quantiles(samples, n=10, method="inclusive")
    return Timing(statistics.median(samples), deciles[0], deciles[-1], len(samples))


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    min_time: float = 0.3,
    min_calls: int = 3,
    warmup_time: float = 0.02,
    rounds: int = 6,
) -> Dict[str, Timing]:
    """Time each zero-argument callable of ``fns`` side by side; returns ``{name: Timing}``.

    Each callable is first called at least once and for ``warmup_time`` seconds (caches, lazy
    set-up, thread pools), untimed; its fastest warm-up call sets how many timed calls it needs,
    ``max(min_calls, min_time / fastest)``. Those calls are spread over ``rounds`` rounds; in each
    round every callable runs its share as one burst (about ``min_time / rounds`` seconds; a slow
    callable runs one call in some rounds only), the starting callable rotating from round to
    round, so that drift of the host hits all of them alike. Callables that still lack
    ``min_time`` seconds or ``min_calls`` calls of timed calls (the warm-up guessed short) then
    get further rounds. The garbage collector is paused while timing, as ``timeit`` does.

    Raises ValueError for an empty ``fns`` or a non-positive ``min_time``, ``min_calls`` or ``rounds``.
    """
    return {name: summarize(v) for name, v in _sample_interleaved(fns, min_time, min_calls, warmup_time, rounds).items()}


def time_blocks(
    blocks: Sequence[Mapping[str, Callable[[], object]]],
    *,
    min_time: float = 0.3,
    min_calls: int = 3,
    passes: int = 2,
    warmup_time: float = 0.02,
    rounds: int = 6,
) -> Dict[str, Timing]:
    """Time groups of callables that must not share a block; returns ``{name: Timing}`` over all.

    Each block is timed with ``time_interleaved`` for ``min_time / passes`` seconds (and
    ``ceil(min_calls / passes)`` calls), then the next block, and so on ``passes`` times; the
    samples of a name from every pass make its Timing, so every callable still gets ``min_time``
    seconds and ``min_calls`` calls. Empty blocks are skipped. Raises ValueError when a name
    appears in two blocks, or for the arguments ``time_interleaved`` rejects.
    """
    if passes < 1:
        raise ValueError(f"timing: passes={passes} (expected passes >= 1)")
    seen: Dict[str, int] = {}
    for i, block in enumerate(blocks):
        for name in block:
            if name in seen:
                raise ValueError(f"timing: '{name}' is in blocks {seen[name]} and {i} (expected each name in one block)")
            seen[name] = i
    samples: Dict[str, List[float]] = {name: [] for name in seen}
    for _ in range(passes):
        for block in blocks:
            if block:
                part = _sample_interleaved(block, min_time / passes, math.ceil(min_calls / passes), warmup_time, rounds)
                for name, values in part.items():
                    samples[name] += values
    if not samples:
        raise ValueError("timing: no callables given (expected at least one name -> callable)")
    return {name: summarize(v) for name, v in samples.items()}


def _sample_interleaved(
    fns: Mapping[str, Callable[[], object]], min_time: float, min_calls: int, warmup_time: float, rounds: int
) -> Dict[str, List[float]]:
    """The per-call times behind ``time_interleaved`` (see there)."""
    if not fns:
        raise ValueError("timing: no callables given (expected at least one name -> callable)")
    if min_time <= 0 or min_calls < 1 or rounds < 1:
        raise ValueError(
            f"timing: min_time={min_time}, min_calls={min_calls}, rounds={rounds} "
            f"(expected min_time > 0, min_calls >= 1, rounds >= 1)"
        )
    clock = time.perf_counter
    names = list(fns)
    target: Dict[str, int] = {}
    for name in names:
        fn, fastest, start = fns[name], float("inf"), clock()
        while True:
            t0 = clock()
            fn()
            t1 = clock()
            fastest = min(fastest, t1 - t0)
            if t1 - start >= warmup_time:
                break
        target[name] = max(min_calls, math.ceil(min_time / max(fastest, 1e-9)))

    samples: Dict[str, List[float]] = {name: [] for name in names}
    spent = dict.fromkeys(names, 0.0)

    def burst(name: str, calls: int) -> None:
        fn, out = fns[name], samples[name]
        for _ in range(calls):
            t0 = clock()
            fn()
            dt = clock() - t0
            out.append(dt)
            spent[name] += dt

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):  # the planned rounds: callable n runs target[n] calls in all
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                n = target[name]
                burst(name, n * (r + 1) // rounds - n * r // rounds)
        pending = [n for n in names if spent[n] < min_time or len(samples[n]) < min_calls]
        r = 0
        while pending:  # catch-up rounds for callables the warm-up misjudged
            shift = r % len(pending)
            for name in pending[shift:] + pending[:shift]:
                burst(name, max(1, target[name] // rounds))
            pending = [n for n in pending if spent[n] < min_time or len(samples[n]) < min_calls]
            r += 1
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples
