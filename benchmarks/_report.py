"""What every benchmark returns: a figure, its target and a baseline measured in the same run."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its target and the baseline measured in the same run."""

    name: str
    value: float
    unit: str
    target: str = ""
    baseline: str = ""
    met: bool | None = None


def best_of(fn: Callable[[], T], repeat: int = 5) -> tuple[float, T]:
    """Best wall time in seconds over ``repeat`` runs (the least noisy estimate), and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """Peak Python-heap allocation (numpy buffers included) of one call, in MiB."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20
