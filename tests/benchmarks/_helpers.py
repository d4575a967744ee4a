"""Timing helpers shared by the benchmark scripts (not tests: nothing here asserts speed)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


def per_call(fn: Callable[[], object], *, number: int, repeat: int = 5) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` rounds of ``number`` calls."""
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def side_by_side(
    ours: Callable[[], object], peer: Callable[[], object], *, number: int, repeat: int = 7
) -> tuple[float, float]:
    """Median seconds per call of two functions, measured alternately in the same run.

    Alternating rounds spreads machine noise (a shared, busy host) over both sides.
    """
    a, b = [], []
    for _ in range(repeat):
        for fn, acc in ((ours, a), (peer, b)):
            start = time.perf_counter()
            for _ in range(number):
                fn()
            acc.append((time.perf_counter() - start) / number)
    return statistics.median(a), statistics.median(b)


def row(
    name: str,
    value: float,
    unit: str,
    *,
    peer: str = "",
    ratio: float | None = None,
    target: str = "",
) -> Row:
    """One result line."""
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "peer": peer,
        "ratio": ratio,
        "target": target,
    }
