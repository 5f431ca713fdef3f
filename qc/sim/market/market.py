"""The simulated market behind ``qc sim``: pure, seeded, driven by time passed in.

``SimMarket`` implements ``qc.sim.market.events.MarketModel``. Events live on the model's own timeline,
which begins at ``start`` (rounded up to the second) and is generated one simulated second at a
time for all symbols, skipping non-session time (XNYS calendar: holidays, early closes); polling
``events_until`` only reveals them, so any polling cadence sees the same sequence, the same seed
gives the same market and another seed another one. Generation covers every session second up to
``now``: jumping days ahead costs those days. ``prepare_ahead`` lets a live server make the next
second in slices between its pump ticks (a busy second is ~20 ms of Python at 3 × 2,000 depth/s,
which would otherwise stall the feed and send the client a burst once a second); the events are
the same either way.

Dealer positioning implied by the parameters (``UnderlyingParams``, defaults for SPY, QQQ, IWM),
computed with qc's convention (dealers long calls, short puts; GEX = Σ s·Γ·OI·100·S²·0.01):

* zero gamma ≈ open × (1 − ``flip_offset``) = 0.99 × the session's open (``reference_price``);
  ``positioning_levels`` returns it, within ~0.5 % of spot through the session;
* net GEX at spot > 0 while spot is above that level (so at the open and on any day that has not
  fallen ``flip_offset`` from its open), < 0 below it;
* call wall (largest positive GEX strike ≥ spot) = open × (1 + ``call_wall_offset``) = +2 %, put
  wall (largest negative GEX strike ≤ spot) = open × (1 − ``put_wall_offset``) = −3 %, each rounded
  to the strike grid.

Extra public methods beyond the protocol: ``inject_informed_flow`` (tests, fault control),
``reference_price`` and ``positioning_levels`` (what a test should expect).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np

from qc.core import clock
from qc.core.models import Bar, DepthLevel
from qc.sim.market import chain as ch
from qc.sim.market import history as hist
from qc.sim.market import underlying as und
from qc.sim.market.book import apply_op
from qc.sim.market.events import DepthOp, MarketEvent, QuoteEvent, TradeEvent
from qc.sim.market.live import LiveSymbol, SecondWork
from qc.sim.market.models import OptionContract, OptionQuote, Quote
from qc.sim.market.params import SimParams

SECOND = timedelta(seconds=1)
LOOKAHEAD = SECOND  # prepare_ahead works on the second after the current one, never further
EPSILON = timedelta(microseconds=1)


def event_ts(e: MarketEvent) -> datetime:
    """The simulated instant of any event."""
    if isinstance(e, DepthOp):
        return e.ts
    if isinstance(e, TradeEvent):
        return e.trade.ts
    if isinstance(e, QuoteEvent):
        return e.quote.ts
    return e.imbalance.ts


class SimMarket:
    """A seeded market for ``params.symbols`` whose timeline begins at ``start``."""

    def __init__(self, start: datetime, params: SimParams | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("SimMarket: `start` must be timezone-aware")
        self.params = params or SimParams()
        if self.params.seed < 0:
            raise ValueError(f"SimParams.seed must be >= 0, got {self.params.seed}")
        self.symbols: tuple[str, ...] = tuple(self.params.symbols)
        begin = start.astimezone(timezone.utc)
        self.begin = begin.replace(microsecond=0) + (SECOND if begin.microsecond else timedelta(0))
        self._next = self.begin  # start of the next second to generate
        self._revealed = self.begin - EPSILON
        self._live = {s: LiveSymbol(self.params, s) for s in self.symbols}
        self._bars = {s: hist.LiveBars() for s in self.symbols}
        self._pending = {s: _Queue() for s in self.symbols}  # generated, not yet revealed, per symbol
        self._books: dict[str, tuple[list[DepthLevel], list[DepthLevel]]] = {s: ([], []) for s in self.symbols}
        self._unapplied: dict[str, list[DepthOp]] = {s: [] for s in self.symbols}
        self._quotes: dict[str, Quote] = {}
        self._tables: dict[tuple[str, date], ch.ChainTable] = {}
        self._generated: dict[tuple[str, date], list[Bar]] = {}
        self._wip: _SecondInProgress | None = None

    # --- timeline -------------------------------------------------------------------------------

    def events_until(self, now: datetime) -> list[MarketEvent]:
        """Every event with ``ts`` in (last call's ``now``, ``now``], in time order."""
        if now <= self._revealed:
            return []
        self._generate_through(now)
        events: list[MarketEvent] = []
        keys: list[datetime] = []
        for sym in self.symbols:
            self._pending[sym].take_until(now, events, keys)
        order = sorted(range(len(events)), key=keys.__getitem__)  # stable: ties keep symbol order
        out = [events[i] for i in order]
        self._revealed = now
        for e in out:
            if isinstance(e, DepthOp):
                self._unapplied[e.symbol].append(e)
            elif isinstance(e, QuoteEvent):
                self._quotes[e.symbol] = e.quote
        return out

    def prepare_ahead(self, now: datetime, budget: int) -> None:
        """Make up to ``budget`` events of the next second ahead of ``now`` (at most ``LOOKAHEAD`` ahead)."""
        if self._next <= now + LOOKAHEAD:
            self._work(budget)

    def _generate_through(self, now: datetime) -> None:
        while self._next <= now:
            self._work(None)

    def _work(self, budget: int | None) -> None:
        """Advance the second starting at ``_next`` by up to ``budget`` events (None: finish it); a finished
        second joins the pending events and ``_next`` moves on."""
        if self._wip is None:
            s = und.session_at_or_after(self._next)
            if self._next < s.open:
                self._next = s.open
                return
            self._wip = _SecondInProgress(self._next, s)
        w = self._wip
        while w.index < len(self.symbols):
            sym = self.symbols[w.index]
            live, out = self._live[sym], w.out
            if w.work is None:
                out.clear()
                w.work = live.begin_second(w.t0, w.session, out)
            turned = live.advance(w.work, out, budget)
            if budget is not None:
                budget -= turned
            if not w.work.finished:
                return
            self._pending[sym].add(out)
            self._bars[sym].add(w.t0, live.prints)
            live.prints.clear()
            w.work, w.index = None, w.index + 1
            if budget is not None and budget <= 0:
                return
        self._next += SECOND
        self._wip = None

    def inject_informed_flow(self, symbol: str, start: datetime, duration_s: float, direction: int) -> None:
        """Add an informed-flow burst: one-sided aggressors and drift toward ``direction`` (±1).

        It shapes every second generated from now on that overlaps [start, start + duration_s);
        seconds already generated (the one containing the last ``now`` and, with ``prepare_ahead``,
        at most the next one) keep their events.
        """
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 (buy) or -1 (sell), got {direction}")
        if duration_s <= 0:
            raise ValueError(f"duration_s must be > 0, got {duration_s}")
        self._live_for(symbol).injected.append(
            und.Burst(start.astimezone(timezone.utc), start + timedelta(seconds=duration_s), direction))

    def jump(self, symbol: str, fraction: float) -> None:
        """Gap ``symbol``'s book by ``fraction`` of its mid (−0.01: one percent down) at the next second.

        A rehearsal of a news gap: spot crosses levels (zero gamma, walls) between two readings.
        """
        if not (math.isfinite(fraction) and -0.5 < fraction < 0.5):
            raise ValueError(f"fraction must be within (-0.5, 0.5), got {fraction}")
        self._live_for(symbol).jumps.append(fraction)

    def _live_for(self, symbol: str) -> LiveSymbol:
        if symbol not in self._live:
            raise KeyError(f"unknown symbol {symbol!r}; the market has {', '.join(self.symbols)}")
        return self._live[symbol]

    # --- book and quotes ------------------------------------------------------------------------

    def book(self, symbol: str) -> tuple[list[DepthLevel], list[DepthLevel]]:
        """(bids best first, asks best first) as of the last ``events_until``."""
        self._live_for(symbol)
        bids, asks = self._books[symbol]
        for op in self._unapplied[symbol]:
            apply_op(bids, asks, op)
        self._unapplied[symbol].clear()
        return list(bids), list(asks)

    def quote(self, symbol: str) -> Quote:
        """Top of book, last print and session volume as of the last ``events_until``."""
        bids, asks = self.book(symbol)
        last = self._quotes.get(symbol)
        ts = max(self._revealed, self.begin)
        if not bids or not asks:
            price = self.spot(symbol)
            return Quote(ts, price, price, 0.0, 0.0, price, 0.0, 0.0)
        if last is None:  # a book but no print yet: quote it, last = mid, nothing traded
            return Quote(ts, bids[0].price, asks[0].price, bids[0].size, asks[0].size, self.spot(symbol), 0.0, 0.0)
        return Quote(ts, bids[0].price, asks[0].price, bids[0].size, asks[0].size, last.last, last.last_size,
                     last.volume)

    def spot(self, symbol: str) -> float:
        """Mid of the revealed book, or the price the timeline starts from before any event."""
        bids, asks = self.book(symbol)
        if bids and asks:
            return 0.5 * (bids[0].price + asks[0].price)
        return self.start_price(symbol)

    def start_price(self, symbol: str) -> float:
        """The price the live process starts from: the generated path at the timeline's first second."""
        up, seed = self.params.underlying(symbol), self.params.seed
        s = und.session_at_or_after(self.begin)
        if self.begin <= s.open:
            return und.reference_price(seed, symbol, up, s.day)
        return float(und.minute_path(seed, symbol, up, s).open[int((self.begin - s.open) / timedelta(minutes=1))])

    # --- options --------------------------------------------------------------------------------

    def reference_price(self, symbol: str, day: date) -> float:
        """The open of session ``day``: strikes, walls and the flip are laid out around it."""
        return und.reference_price(self.params.seed, symbol, self.params.underlying(symbol), day)

    def positioning_levels(self, symbol: str, day: date) -> dict[str, float]:
        """Where the parameters put the flip and the walls on ``day`` (see the module docstring)."""
        up, ref = self.params.underlying(symbol), self.reference_price(symbol, day)
        return {"reference_price": ref, "zero_gamma": ref * (1.0 - up.flip_offset),
                "call_wall": ch.nearest_strike(up, ref * (1.0 + up.call_wall_offset)),
                "put_wall": ch.nearest_strike(up, ref * (1.0 - up.put_wall_offset))}

    def _table(self, symbol: str, now: datetime) -> ch.ChainTable:
        self._live_for(symbol)
        day = clock.session_on_or_before(clock.new_york_date(now)).day
        key = (symbol, day)
        if key not in self._tables:
            self._tables[key] = ch.chain_table(self.params, symbol, day)
        return self._tables[key]

    def option_chain(self, symbol: str, now: datetime) -> list[OptionQuote]:
        """Every listed, unsettled option at ``now``, priced at the current spot; sorted by expiry, strike, right."""
        return ch.quotes(self.params, symbol, self._table(symbol, now), now, self.spot(symbol))

    def option_quote(self, contract: OptionContract, now: datetime) -> OptionQuote | None:
        """One contract's quote, or None when it is not listed today or has settled."""
        table = self._table(contract.underlying, now)
        row = table.rows.get((contract.expiry, float(contract.strike), contract.right))
        if row is None:
            return None
        found = ch.quotes(self.params, contract.underlying, table, now, self.spot(contract.underlying),
                          np.array([row], dtype=np.int64))
        return found[0] if found else None

    # --- history --------------------------------------------------------------------------------

    def history(self, symbol: str, end: datetime, minutes: int) -> list[Bar]:
        """Regular-session 1-minute bars ending at ``end`` (past sessions included), oldest first.

        Minutes before the timeline are generated; later ones come from the live prints and appear
        once they are over and revealed.
        """
        self._live_for(symbol)
        if minutes <= 0:
            return []
        out: list[Bar] = []
        for s in hist.sessions_back(end, minutes):
            out.extend(self._session_bars(symbol, s, end))
        return out[-minutes:]

    def _session_bars(self, symbol: str, s: clock.Session, end: datetime) -> list[Bar]:
        gen = [b for b in self._generated_bars(symbol, s) if b.ts + hist.MINUTE <= min(end, self.begin)]
        if s.close <= self.begin:
            return gen
        live_start = hist.minute_floor(max(self.begin, s.open), s)
        carry = gen[-1].close if gen else self.reference_price(symbol, s.day)
        until = min(end, self._revealed + EPSILON)
        return gen + self._bars[symbol].bars(s, live_start, until, carry)

    def _generated_bars(self, symbol: str, s: clock.Session) -> list[Bar]:
        key = (symbol, s.day)
        if key not in self._generated:
            self._generated[key] = hist.generated_bars(self.params.seed, symbol, self.params.underlying(symbol), s)
        return self._generated[key]


@dataclass
class _SecondInProgress:
    """The second ``t0`` being generated symbol by symbol: ``out`` holds ``symbols[index]``'s events so far."""

    t0: datetime
    session: clock.Session
    index: int = 0
    work: SecondWork | None = None
    out: list[MarketEvent] = field(default_factory=list)


class _Queue:
    """One symbol's generated events in time order, revealed from ``read`` on (compacted now and then)."""

    COMPACT_AT = 4096

    def __init__(self) -> None:
        self.events: list[MarketEvent] = []
        self.ts: list[datetime] = []
        self.read = 0

    def add(self, second: list[MarketEvent]) -> None:
        """One symbol-second of events (sorted stably by time: a session's opening events come first)."""
        keys = [event_ts(e) for e in second]
        order = sorted(range(len(second)), key=keys.__getitem__)
        self.events.extend([second[i] for i in order])
        self.ts.extend([keys[i] for i in order])

    def take_until(self, now: datetime, events: list[MarketEvent], keys: list[datetime]) -> None:
        """Append the events with ``ts <= now`` not taken before, and their times."""
        cut = bisect_right(self.ts, now, lo=self.read)
        events.extend(self.events[self.read:cut])
        keys.extend(self.ts[self.read:cut])
        self.read = cut
        if cut >= self.COMPACT_AT:
            del self.events[:cut], self.ts[:cut]
            self.read = 0
