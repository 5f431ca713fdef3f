"""Per-feed liveness: which (symbol, feed) pairs have gone silent. Pure: times are passed in.

A feed is stale when the socket or the data farm is down (every feed at once, immediately), or,
during the regular session, when its last data is older than its threshold in *market* time (the
simulator's time under `qc sim`, so a 10x demo goes stale 10x sooner) and also older than a small
floor in real seconds (so scheduler jitter at high simulation speeds is not mistaken for silence).
Outside regular hours no feed is judged by age: quiet books and bar feeds are normal then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FEEDS = ("depth", "quotes", "trades", "bars")
THRESHOLDS_S: dict[str, float] = {"depth": 5.0, "quotes": 5.0, "trades": 30.0, "bars": 15.0}
REAL_FLOOR_S = 1.0


@dataclass(frozen=True, slots=True)
class Seen:
    """When a feed last delivered data: monotonic seconds and market epoch seconds."""

    mono: float
    market: float


@dataclass
class Freshness:
    """Last data per (symbol, feed); ``baseline`` stands in for feeds that never delivered yet."""

    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS_S))
    real_floor_s: float = REAL_FLOOR_S
    last: dict[tuple[str, str], Seen] = field(default_factory=dict)
    baseline: Seen | None = None

    def saw(self, symbol: str, feed: str, mono: float, market: float) -> None:
        self.last[(symbol, feed)] = Seen(mono, market)

    def reset_baseline(self, mono: float, market: float) -> None:
        """(Re)connected: a feed that stays silent from now on is judged from this moment."""
        self.baseline = Seen(mono, market)

    def seen(self, symbol: str, feed: str) -> Seen | None:
        """The later of its last data and the baseline: silence is judged from a reconnect onwards."""
        got, base = self.last.get((symbol, feed)), self.baseline
        if got is None or (base is not None and base.mono > got.mono):
            return base
        return got

    def stale(self, symbols: tuple[str, ...], mono: float, market: float, *, feeds_up: bool,
              in_session: bool) -> dict[tuple[str, str], float]:
        """Stale (symbol, feed) -> monotonic time of its last data (or of the baseline)."""
        out: dict[tuple[str, str], float] = {}
        for symbol in symbols:
            for feed in FEEDS:
                seen = self.seen(symbol, feed)
                last_mono = seen.mono if seen is not None else mono
                if not feeds_up or (in_session and seen is not None and self._silent(feed, seen, mono, market)):
                    out[(symbol, feed)] = last_mono
        return out

    def _silent(self, feed: str, seen: Seen, mono: float, market: float) -> bool:
        return market - seen.market > self.thresholds[feed] and mono - seen.mono > self.real_floor_s
