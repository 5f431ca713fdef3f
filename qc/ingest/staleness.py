"""Per-feed liveness: which (symbol, feed) pairs have gone silent. Pure: times are passed in.

A feed is stale when the socket or the data farm is down (every feed at once, immediately), or,
during the regular session, when its last data is older than its threshold in *market* time (the
simulator's time under `qc sim`, so a 10x demo goes stale 10x sooner) and also older than a small
floor in real seconds (so scheduler jitter at high simulation speeds is not mistaken for silence).
Outside regular hours no feed is judged by age: quiet books and bar feeds are normal then.

Staleness is measured from the last *live* data, never from the last subscription. A subscription
is answered with a snapshot (the whole book as inserts, the current quote ticks) even when the feed
behind it is dead, so what arrives within ``SNAPSHOT_WINDOW_S`` of a (re)subscription, and a book
made of inserts only however late it comes, is not proof of life: a feed that only ever answers
resubscriptions with their snapshot stays stale (and red in `qc status`) until the escalation to a
reconnect, and after it. A feed that never delivered
is judged from its subscription. ``settling`` tells the resubscriber to give a fresh connection one
threshold before acting on what was stale across it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FEEDS = ("depth", "quotes", "trades", "bars")
THRESHOLDS_S: dict[str, float] = {"depth": 5.0, "quotes": 5.0, "trades": 30.0, "bars": 15.0}
REAL_FLOOR_S = 1.0
SNAPSHOT_WINDOW_S = 1.0  # real seconds after a subscription in which its first delivery is its snapshot


@dataclass(frozen=True, slots=True)
class Seen:
    """When a feed last delivered data: monotonic seconds and market epoch seconds."""

    mono: float
    market: float


@dataclass
class Freshness:
    """Last live data per (symbol, feed); ``baseline`` is the last (re)connection.

    ``subscribed_at`` keeps each feed's *first* subscription: resubscribing a feed that never spoke
    must not make it look younger.
    """

    thresholds: dict[str, float] = field(default_factory=lambda: dict(THRESHOLDS_S))
    real_floor_s: float = REAL_FLOOR_S
    snapshot_window_s: float = SNAPSHOT_WINDOW_S
    last: dict[tuple[str, str], Seen] = field(default_factory=dict)
    baseline: Seen | None = None
    subscribed_at: dict[tuple[str, str], Seen] = field(default_factory=dict)
    snapshot_due: dict[tuple[str, str], float] = field(default_factory=dict)  # key -> mono of its request

    def saw(self, symbol: str, feed: str, mono: float, market: float, *, replay: bool = False) -> None:
        """Data arrived; a (re)subscription's snapshot proves nothing about the feed behind it.

        ``replay`` marks a delivery a snapshot could be (a book of inserts only): after a subscription
        it never counts, however late it comes. Anything else counts once ``snapshot_window_s`` passed.
        """
        key = (symbol, feed)
        requested = self.snapshot_due.get(key)
        if requested is not None:
            if replay or mono - requested <= self.snapshot_window_s:
                return
            del self.snapshot_due[key]
        self.last[key] = Seen(mono, market)

    def awaits_snapshot(self, symbol: str, feed: str) -> bool:
        """A (re)subscription's snapshot is still expected: whether a delivery could be one matters only then."""
        return (symbol, feed) in self.snapshot_due

    def subscribed(self, symbol: str, feed: str, mono: float, market: float) -> None:
        """A (re)subscription was sent: expect a snapshot; a never-heard feed is judged from its first one."""
        self.snapshot_due[(symbol, feed)] = mono
        self.subscribed_at.setdefault((symbol, feed), Seen(mono, market))

    def reset_baseline(self, mono: float, market: float) -> None:
        """(Re)connected: the resubscriber waits one threshold before acting on older silence."""
        self.baseline = Seen(mono, market)

    def seen(self, symbol: str, feed: str) -> Seen | None:
        """Its last live data; for a feed that never delivered, its subscription (or the baseline)."""
        key = (symbol, feed)
        return self.last.get(key) or self.subscribed_at.get(key) or self.baseline

    def settling(self, feed: str, mono: float, market: float) -> bool:
        """True within one threshold of the last (re)connection: too early to resubscribe anything."""
        base = self.baseline
        return base is not None and not self._silent(feed, base, mono, market)

    def stale(self, symbols: tuple[str, ...], mono: float, market: float, *, feeds_up: bool,
              in_session: bool) -> dict[tuple[str, str], float]:
        """Stale (symbol, feed) -> monotonic time of its last live data (or of its subscription)."""
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
