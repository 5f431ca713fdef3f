"""Did signals like this make money: each signal judged on its own exits, then summed up by strategy.

A signal is judged at every observation of its instrument's mark (the option's mark from the chain
in Redis, the share's mid for MOC) until one exit holds: the mark at or beyond the take profit, at
or beyond the stop, or the time stop reached (exit at that mark). The entry is the signal's limit
(a fill at the limit is assumed; execution's fills will replace this when `qc execute` exists).
Observations are as frequent as the data: Alpha Vantage refreshes a chain every 5 min, so an
intraday touch of an exit between two chains is missed, and the outcome says which mark ended it.
A signal whose instrument has no mark by its time stop + :data:`UNPRICED_GRACE` ends ``unpriced``;
a mark of 0 is a price (an option expiring worthless is a −100 % stop, never left out of the
returns). The first mark seen at or after the time stop ends it as ``time_stop`` even when that
mark is past an exit: between two observations, which exit came first is unknown.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from qc.signals.codec import ExitReason, Outcome, Signal

UNPRICED_GRACE = timedelta(minutes=15)


def judge(signal: Signal, mark: float | None, now: datetime) -> Outcome | None:
    """The outcome if ``mark`` at ``now`` ends the signal, else None (still open)."""
    held = (now - signal.created_at).total_seconds()
    if mark is None or mark < 0:
        if now >= signal.time_stop + UNPRICED_GRACE:
            return Outcome(signal.id, signal.symbol, signal.strategy, "unpriced", signal.limit, None, None,
                           max(held, 0.0), now)
        return None
    sign = 1.0 if signal.side == "BUY" else -1.0
    ret = sign * (mark - signal.limit) / signal.limit
    reason: ExitReason
    if now >= signal.time_stop:  # the first mark past the time stop: which exit came first is unknown
        reason = "time_stop"
    elif sign * (mark - signal.take_profit) >= 0:
        reason = "take_profit"
    elif sign * (mark - signal.stop) <= 0:
        reason = "stop"
    else:
        return None
    return Outcome(signal.id, signal.symbol, signal.strategy, reason, signal.limit, mark, ret, max(held, 0.0), now)


@dataclass
class Line:
    """One row of ``qc signals stats``: a strategy on a symbol."""

    strategy: str
    symbol: str
    count: int = 0
    decided: int = 0
    hits: int = 0
    returns: list[float] = field(default_factory=list)
    held_s: list[float] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)
    blocked: dict[str, int] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float | None:
        priced = len(self.returns)
        return self.hits / priced if priced else None

    @property
    def mean_return(self) -> float | None:
        return statistics.fmean(self.returns) if self.returns else None

    @property
    def median_return(self) -> float | None:
        return statistics.median(self.returns) if self.returns else None

    @property
    def median_held_s(self) -> float | None:
        return statistics.median(self.held_s) if self.held_s else None

    def as_dict(self) -> dict[str, object]:
        return {"strategy": self.strategy, "symbol": self.symbol, "count": self.count, "decided": self.decided,
                "open": self.count - self.decided, "hits": self.hits, "hit_rate": self.hit_rate,
                "mean_return": self.mean_return, "median_return": self.median_return,
                "median_held_s": self.median_held_s, "exits": dict(self.exits), "blocked": dict(self.blocked)}


def summarize(signals: Iterable[Signal], outcomes: Mapping[str, Outcome],
              blocked: Mapping[str, int]) -> list[Line]:
    """Per (strategy, symbol): counts, hit rate, mean/median return, exits, and blocks by gate or filter.

    ``blocked`` maps "{symbol}:{strategy}:{reason}" to evaluations that reason stopped.
    """
    lines: dict[tuple[str, str], Line] = {}

    def line(strategy: str, symbol: str) -> Line:
        return lines.setdefault((strategy, symbol), Line(strategy, symbol))

    for s in signals:
        row = line(s.strategy, s.symbol)
        row.count += 1
        out = outcomes.get(s.id)
        if out is None:
            continue
        row.decided += 1
        row.exits[out.exit_reason] = row.exits.get(out.exit_reason, 0) + 1
        if out.return_pct is not None:
            row.returns.append(out.return_pct)
            row.held_s.append(out.held_s)
            row.hits += out.hit
    for name, n in blocked.items():
        symbol, _, rest = name.partition(":")
        strategy, _, reason = rest.partition(":")
        if reason:
            blocks = line(strategy, symbol).blocked
            blocks[reason] = blocks.get(reason, 0) + n
    return sorted(lines.values(), key=lambda r: (r.strategy, r.symbol))
