"""Time bars over regular XNYS session minutes only, from a trade tape (private helper of ``vpin``).

Conventions: timestamps are int64 nanoseconds since the Unix epoch (UTC). A bar is
``[start, end)``; bars tile each regular session from its open (09:30 New York) to its close
(16:00, or 13:00 on an early close) as given by ``qc.core.clock`` (exchange_calendars XNYS); the last
bar of a session is cut at the close if ``bar_seconds`` does not divide the session. Nothing
exists between sessions: trades outside every session are dropped. The grid runs from the bar of
the first in-session trade to the bar of the last one; an empty bar inside it carries the last
close forward with zero volume (a whole session without trades inside that span, too).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt

from qc.core import clock

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NS = 1_000_000_000


@dataclass(frozen=True)
class Bars:
    """Consecutive session bars: ``[start_ns, end_ns)``, close price, traded volume."""

    start_ns: IntArray
    end_ns: IntArray
    close: FloatArray
    volume: FloatArray


@functools.lru_cache(maxsize=4096)
def session_ns(day: date) -> tuple[int, int] | None:
    """Open and close of the XNYS session on New York date ``day`` in epoch ns, or None."""
    found = clock.session(day)
    if found is None:
        return None
    return _epoch_ns(found.open), _epoch_ns(found.close)


def _epoch_ns(instant: datetime) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1_000


def ny_date(ts_ns: int) -> date:
    """New York calendar date of an epoch-ns instant."""
    instant = datetime.fromtimestamp(ts_ns // _NS, timezone.utc)
    return clock.new_york_date(instant)


def session_grid(first_ns: int, last_ns: int, bar_seconds: int) -> tuple[IntArray, IntArray]:
    """Start and end of every session bar on the New York dates spanned by two instants."""
    bar_ns = bar_seconds * _NS
    starts: list[IntArray] = []
    ends: list[IntArray] = []
    day, last_day = ny_date(first_ns), ny_date(last_ns)
    while day <= last_day:
        bounds = session_ns(day)
        if bounds is not None:
            start = np.arange(bounds[0], bounds[1], bar_ns, dtype=np.int64)
            starts.append(start)
            ends.append(np.minimum(start + bar_ns, bounds[1]))
        day += timedelta(days=1)
    if not starts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(starts), np.concatenate(ends)


def sorted_tape(ts_ns: npt.ArrayLike, *columns: npt.ArrayLike) -> tuple[IntArray, list[FloatArray]]:
    """The tape as int64 ns and float64 columns, stably sorted by time when it is not already."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    cols = [np.asarray(c, dtype=np.float64) for c in columns]
    if any(c.shape != ts.shape for c in cols) or ts.ndim != 1:
        raise ValueError("trade arrays must be one-dimensional and of equal length")
    if ts.size > 1 and bool(np.any(ts[1:] < ts[:-1])):
        order = np.argsort(ts, kind="stable")
        ts, cols = ts[order], [c[order] for c in cols]
    return ts, cols


def assign_bars(ts_ns: IntArray, bar_seconds: int) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Bar grid trimmed to the traded span, and each bar's trades as the slice ``ts_ns[lo:hi]``.

    ``ts_ns`` must be sorted ascending. Bars are looked up in the tape (a few thousand binary
    searches), not trades in the grid, so the cost is one pass over the tape.
    """
    empty = np.empty(0, np.int64)
    if ts_ns.size == 0:
        return empty, empty, empty, empty
    starts, ends = session_grid(int(ts_ns[0]), int(ts_ns[-1]), bar_seconds)
    lo = np.searchsorted(ts_ns, starts, side="left").astype(np.int64)
    hi = np.searchsorted(ts_ns, ends, side="left").astype(np.int64)
    traded = np.flatnonzero(hi > lo)
    if traded.size == 0:
        return empty, empty, empty, empty
    keep = slice(int(traded[0]), int(traded[-1]) + 1)
    return starts[keep], ends[keep], lo[keep], hi[keep]


def sum_per_bar(values: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """Sum of ``values[lo:hi]`` for each bar (0 for a bar without trades)."""
    if lo.size == 0:
        return np.empty(0)
    padded = np.append(values, 0.0)  # reduceat needs every index < len
    bounds = np.empty(2 * lo.size, np.int64)
    bounds[0::2], bounds[1::2] = lo, hi
    sums = np.add.reduceat(padded, bounds)[0::2]
    out: FloatArray = np.where(hi > lo, sums, 0.0)
    return out


def last_per_bar(values: FloatArray, lo: IntArray, hi: IntArray) -> FloatArray:
    """Last value of each bar in tape order, carried forward through bars without trades."""
    has = hi > lo
    source = np.maximum.accumulate(np.where(has, np.arange(lo.size), 0))
    last: FloatArray = values[np.maximum(hi - 1, 0)]
    out: FloatArray = last[source] if lo.size else np.empty(0)
    return out


def build_bars(ts_ns: npt.ArrayLike, price: npt.ArrayLike, size: npt.ArrayLike,
               bar_seconds: int = 60) -> Bars:
    """Roll a trade tape (any order; ties keep tape order) into session bars."""
    ts, (px, sz) = sorted_tape(ts_ns, price, size)
    starts, ends, lo, hi = assign_bars(ts, bar_seconds)
    return Bars(starts, ends, last_per_bar(px, lo, hi), sum_per_bar(sz, lo, hi))
