"""Per-task cadences inside one worker loop (pure); Redis field formatting is qc.core.codec's.

Why one loop and "next due" times rather than threads: the tasks share per-symbol state (the VPIN
window, the last net GEX the flow features need) and Redis connections; a single thread needs no
locks, and a slow positioning pass only delays the next 1 s imbalance tick, never overlaps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


class Schedule:
    """Task name → period (s); ``due(t)`` returns the tasks whose time has come and re-arms them.

    Every task is due on the first call (warm values at start). A late call does not make a task
    run several times to catch up: the next due time is ``t + period`` (cadence, not a quota).
    """

    def __init__(self, periods: Mapping[str, float]) -> None:
        if any(p <= 0 for p in periods.values()):
            raise ValueError(f"periods must be > 0, got {dict(periods)}")
        self.periods = dict(periods)
        self.next_due: dict[str, float] = {}

    def due(self, t: float) -> list[str]:
        out = [name for name in self.periods if t >= self.next_due.get(name, -math.inf)]
        for name in out:
            self.next_due[name] = t + self.periods[name]
        return out


class Staggered:
    """A slow task's per-symbol due times: every symbol on the first call, then spread evenly over the period.

    Why: positioning every 30 s (and flow every 60 s) of 100 symbols in one go was a 0.6-1.2 s burst of
    CPU and ~700 Redis round trips next to `qc stream`, whose L2 writes queued behind it (the tail of the
    ingest latency on two cores). After its first run, symbol ``i`` of ``n`` next runs at
    ``t + period × (1 + i/n)``, then every ``period``: each cycle takes a slice of about ``n × cycle /
    period`` symbols, every symbol keeps its cadence. A late call does not catch up (as ``Schedule``).
    """

    def __init__(self, period: float) -> None:
        if period <= 0:
            raise ValueError(f"period must be > 0, got {period}")
        self.period = period
        self.next_due: dict[str, float] = {}

    def due(self, t: float, symbols: Sequence[str]) -> list[str]:
        out = [s for s in symbols if t >= self.next_due.get(s, -math.inf)]
        n = len(symbols)
        for s in out:
            first = s not in self.next_due
            self.next_due[s] = t + self.period * (1 + symbols.index(s) / n if first else 1)
        return out


def age_s(now_epoch: float, then_epoch: float | None) -> float | None:
    """Seconds from an input's stamp to now (clock time), None when the input has no stamp."""
    return None if then_epoch is None else max(0.0, now_epoch - then_epoch)
