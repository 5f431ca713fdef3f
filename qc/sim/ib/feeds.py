"""Market-data subscriptions of the simulated gateway and the fan-out of the model's events.

The server's pump hands every batch of ``MarketEvent``s to ``Feeds.dispatch`` once; each event is
encoded once per subscribed request id and appended to that session's outgoing list (the session
writes the joined bytes once per pump tick). Feeds can be muted: all of them during a farm flap or
a connectivity loss (``pause``), one symbol's feed kind with ``silence``. A muted subscription
stays open; its messages are dropped. When depth comes back the book is re-sent after error 317
("RESET", ib_async then empties its book), so a client's book never silently diverges.

A stock's reqMktData may ask for the generic ticks 100, 101, 104 and 106 (``ticks.underlying_ticks``):
their figures come from the whole option chain (~0.1 s of model work for SPY's 14,000 options) and
30 sessions of history, so they are computed once per symbol and refreshed at most every
``STATS_EVERY_S`` real seconds (the historical volatility once per session day), and a subscription
is sent only the values that changed.

An option can be pinned (``pin_option``, from ``IBGatewayServer.set_quote``): its subscribers then
get the pinned bid/ask/last instead of the model's (greeks and IV stay the model's at its live
spot), at once and at every refresh, until ``unpin_option``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Protocol

from qc.core import clock
from qc.core.models import FiveSecondBar
from qc.sim.ib import encode as enc
from qc.sim.ib import ticks
from qc.sim.ib.history import SESSION_MINUTES
from qc.sim.ib.versions import MAX_SERVER_VERSION
from qc.sim.market.events import DepthOp, ImbalanceEvent, MarketEvent, MarketModel, QuoteEvent, TradeEvent
from qc.sim.market.models import OptionContract, OptionQuote

log = logging.getLogger(__name__)

FEED_OF_KIND = {"depth": "depth", "bars": "bars", "last": "ticks", "alllast": "ticks", "bidask": "ticks",
                "mid": "ticks", "l1": "quotes", "opt": "quotes"}
FEEDS = frozenset(FEED_OF_KIND.values())
OPTION_REFRESH = timedelta(seconds=1)
STATS_EVERY_S = 10.0  # real seconds between recomputations of an underlying's option statistics
RESET_TEXT = "Market depth data has been RESET. Please empty deep book contents before applying any new entries."


class Sink(Protocol):
    """The part of a session the feeds write to."""

    out: list[bytes]


@dataclass(eq=False)
class Sub:
    """One market-data request of one session.

    ``version`` is the session's negotiated server version: the layout of the notices (error 317)
    the feeds send on the subscription's behalf; the session always sets it.
    """

    sink: Sink
    req_id: int
    symbol: str
    kind: str  # a key of FEED_OF_KIND
    rows: int = 0  # depth rows
    imbalance: bool = False  # generic tick 225
    option: OptionContract | None = None
    next_refresh: datetime | None = None
    prev_close: float | None = field(default=None)
    version: int = MAX_SERVER_VERSION
    generic: frozenset[int] = frozenset()  # of ticks.UNDERLYING_GENERIC_TICKS
    stats: ticks.UnderlyingStats | None = None  # the figures last sent for ``generic``


class Feeds:
    """Every open market-data subscription, keyed for the pump's hot path by symbol and kind."""

    def __init__(self, model: MarketModel, sent: Counter[str]) -> None:
        self.model = model
        self.sent = sent
        self._subs: dict[tuple[str, str], list[Sub]] = {}  # (kind, symbol) → subscriptions
        self._by_req: dict[tuple[int, int], Sub] = {}  # (id(sink), req_id) → subscription
        self._bars = {s: ticks.BarBuilder() for s in model.symbols}
        self._top: dict[str, ticks.Top] = {}
        self._mid: dict[str, float] = {}
        self.paused_until = 0.0  # monotonic
        self.silenced: dict[tuple[str, str], float] = {}  # (symbol, feed) → monotonic end
        self._chain_stats: dict[str, tuple[float, ticks.ChainStats]] = {}  # symbol → (monotonic, stats)
        self._hist_vol: dict[tuple[str, date], float | None] = {}
        self._stats_due = 0.0  # monotonic time of the next refresh round
        self._option_pins: dict[OptionContract, tuple[float, float, float]] = {}  # → (bid, ask, last)

    # --- option quotes (model or pinned) -------------------------------------------------------------

    def option_quote(self, opt: OptionContract, now: datetime) -> OptionQuote | None:
        """What a subscriber of ``opt`` is told: the model's quote, its prices replaced by a pin.
        None when the model no longer lists it (settled), pinned or not."""
        q = self.model.option_quote(opt, now)
        pin = self._option_pins.get(opt)
        if q is None or pin is None:
            return q
        bid, ask, last = pin
        return replace(q, bid=bid, ask=ask, last=last)

    def pin_option(self, opt: OptionContract, bid: float, ask: float, last: float) -> None:
        self._option_pins[opt] = (bid, ask, last)
        self._refresh_now(opt)

    def unpin_option(self, opt: OptionContract) -> None:
        self._option_pins.pop(opt, None)
        self._refresh_now(opt)

    def _refresh_now(self, opt: OptionContract) -> None:
        """Let the next ``tick`` send ``opt``'s subscribers its quote, not wait for the 1-s refresh."""
        for sub in self.subs("opt", opt.underlying):
            if sub.option == opt:
                sub.next_refresh = None

    # --- registry ----------------------------------------------------------------------------------

    def add(self, sub: Sub) -> None:
        self._subs.setdefault((sub.kind, sub.symbol), []).append(sub)
        self._by_req[(id(sub.sink), sub.req_id)] = sub

    def remove(self, sink: Sink, req_id: int) -> Sub | None:
        sub = self._by_req.pop((id(sink), req_id), None)
        if sub is not None:
            self._subs[(sub.kind, sub.symbol)].remove(sub)
        return sub

    def count(self, sink: Sink, kind: str) -> int:
        return sum(1 for (sink_id, _), s in self._by_req.items() if sink_id == id(sink) and s.kind == kind)

    def drop_sink(self, sink: Sink) -> None:
        for _sink_id, req_id in [k for k in self._by_req if k[0] == id(sink)]:
            self.remove(sink, req_id)

    def clear(self) -> int:
        """Drop every subscription (connectivity restored with data lost); how many there were."""
        n = len(self._by_req)
        self._subs.clear()
        self._by_req.clear()
        return n

    def subs(self, kind: str, symbol: str) -> list[Sub]:
        return self._subs.get((kind, symbol), [])

    # --- muting ------------------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, clock.monotonic() + seconds)

    def silence(self, symbol: str, feed: str, seconds: float | None) -> None:
        if feed not in FEEDS:
            raise ValueError(f"feed must be one of {sorted(FEEDS)}, got {feed!r}")
        if seconds is not None and seconds <= 0:
            self.silenced.pop((symbol, feed), None)
            return
        self.silenced[(symbol, feed)] = math.inf if seconds is None else clock.monotonic() + seconds

    def muted(self, symbol: str, feed: str, mono: float) -> bool:
        return mono < self.paused_until or self.silenced.get((symbol, feed), 0.0) > mono

    def expired_silences(self, mono: float) -> list[tuple[str, str]]:
        """Silences that ended by ``mono`` (removed); the server re-syncs depth after them."""
        done = [k for k, end in self.silenced.items() if end <= mono]
        for k in done:
            del self.silenced[k]
        return done

    # --- depth -------------------------------------------------------------------------------------

    def depth_snapshot(self, sub: Sub) -> list[bytes]:
        """The book as inserts, best first, asks then bids (ref §3 marketDepthL2)."""
        bids, asks = self.model.book(sub.symbol)
        out = [enc.market_depth_l2(sub.req_id, i, lvl.venue, 0, 0, lvl.price, lvl.size)
               for i, lvl in enumerate(asks[: sub.rows])]
        out += [enc.market_depth_l2(sub.req_id, i, lvl.venue, 0, 1, lvl.price, lvl.size)
                for i, lvl in enumerate(bids[: sub.rows])]
        self.sent["depth"] += len(out)
        return out

    def resync_depth(self, symbol: str | None = None) -> None:
        """Error 317 then the whole book again, for every depth subscription (of ``symbol``)."""
        for (kind, sym), subs in self._subs.items():
            if kind != "depth" or (symbol is not None and sym != symbol):
                continue
            for sub in subs:
                sub.sink.out.append(enc.error(sub.req_id, 317, RESET_TEXT, sv=sub.version))
                sub.sink.out.extend(self.depth_snapshot(sub))
                self.sent["error"] += 1

    # --- the pump's fan-out ------------------------------------------------------------------------

    def dispatch(self, events: list[MarketEvent]) -> None:
        """Encode each event for each subscribed request id and queue it on that session."""
        mono = clock.monotonic()
        depth = 0
        subs = self._subs
        for e in events:
            if isinstance(e, DepthOp):
                targets = subs.get(("depth", e.symbol))
                if targets and not self.muted(e.symbol, "depth", mono):
                    for sub in targets:
                        if e.position < sub.rows:
                            sub.sink.out.append(enc.depth_op(sub.req_id, e))
                            depth += 1
            elif isinstance(e, TradeEvent):
                self._trade(e, mono)
            elif isinstance(e, QuoteEvent):
                self._quote(e, mono)
            else:
                self._imbalance(e, mono)
        self.sent["depth"] += depth

    def _emit(self, sub: Sub, frames: list[bytes]) -> None:
        sub.sink.out.extend(frames)
        self.sent[sub.kind] += len(frames)

    def _trade(self, e: TradeEvent, mono: float) -> None:
        t, sym = e.trade, e.symbol
        bars = self._bars[sym].add(t.ts.timestamp(), t.price, t.size) if sym in self._bars else []
        self._send_bars(sym, bars, mono)
        if not self.muted(sym, "ticks", mono):
            epoch = int(t.ts.timestamp())
            for kind in ("last", "alllast"):
                for sub in self.subs(kind, sym):
                    self._emit(sub, [enc.tick_by_tick_last(sub.req_id, epoch, t.price, t.size, t.venue,
                                                           all_last=kind == "alllast")])
        if not self.muted(sym, "quotes", mono):
            for sub in self.subs("l1", sym):
                self._emit(sub, ticks.l1_trade(sub.req_id, t))

    def _quote(self, e: QuoteEvent, mono: float) -> None:
        q, sym = e.quote, e.symbol
        old, new = self._top.get(sym), ticks.top_of(q)
        self._top[sym] = new
        if not self.muted(sym, "quotes", mono):
            for sub in self.subs("l1", sym):
                self._emit(sub, ticks.l1_quote_change(sub.req_id, old, new))
        if self.muted(sym, "ticks", mono):
            return
        epoch = int(q.ts.timestamp())
        if old is None or (old.bid, old.ask, old.bid_size, old.ask_size) != (q.bid, q.ask, q.bid_size, q.ask_size):
            for sub in self.subs("bidask", sym):
                self._emit(sub, [enc.tick_by_tick_bid_ask(sub.req_id, epoch, q.bid, q.ask, q.bid_size, q.ask_size)])
        mid = 0.5 * (q.bid + q.ask)
        if self._mid.get(sym) != mid:
            self._mid[sym] = mid
            for sub in self.subs("mid", sym):
                self._emit(sub, [enc.tick_by_tick_mid(sub.req_id, epoch, mid)])

    def _imbalance(self, e: ImbalanceEvent, mono: float) -> None:
        if self.muted(e.symbol, "quotes", mono):
            return
        for sub in self.subs("l1", e.symbol):
            if sub.imbalance:
                self._emit(sub, ticks.imbalance_ticks(sub.req_id, e.imbalance))

    def _send_bars(self, symbol: str, bars: list[FiveSecondBar], mono: float) -> None:
        if not bars or self.muted(symbol, "bars", mono):
            return
        for sub in self.subs("bars", symbol):
            self._emit(sub, [ticks.bar_frame(sub.req_id, b) for b in bars])

    def tick(self, now: datetime) -> None:
        """Once per pump tick after ``dispatch``: close finished 5-s bars, refresh option quotes and,
        every ``STATS_EVERY_S``, the underlyings' option statistics."""
        mono, epoch = clock.monotonic(), now.timestamp()
        for symbol, builder in self._bars.items():
            self._send_bars(symbol, builder.close_through(epoch), mono)
        for (kind, _), subs in self._subs.items():
            if kind == "opt":
                for sub in subs:
                    self._refresh_option(sub, now, mono)
        if mono >= self._stats_due:
            self._stats_due = mono + STATS_EVERY_S
            self._refresh_underlyings(now, mono)

    def _refresh_option(self, sub: Sub, now: datetime, mono: float) -> None:
        if sub.next_refresh is not None and now < sub.next_refresh:
            return
        sub.next_refresh = now + OPTION_REFRESH
        if sub.option is None or self.muted(sub.symbol, "quotes", mono):
            return
        q = self.option_quote(sub.option, now)
        if q is not None:
            self._emit(sub, ticks.option_ticks(sub.req_id, q, self.model.spot(sub.symbol)))

    # --- an underlying's option statistics (generic ticks 100, 101, 104, 106) ----------------------

    def underlying_stats(self, symbol: str, generic: frozenset[int], now: datetime) -> ticks.UnderlyingStats:
        """The figures ``generic`` asks for, from the cache when fresher than ``STATS_EVERY_S``."""
        chain = None
        if generic & ticks.CHAIN_GENERIC_TICKS:
            mono = clock.monotonic()
            cached = self._chain_stats.get(symbol)
            if cached is None or mono - cached[0] >= STATS_EVERY_S:
                today = clock.new_york_date(now)
                stats = ticks.chain_stats(self.model.option_chain(symbol, now), self.model.spot(symbol), today)
                cached = self._chain_stats[symbol] = (mono, stats)
            chain = cached[1]
        hist_vol = self._historical_vol(symbol, now) if ticks.GENERIC_HIST_VOL in generic else None
        return ticks.UnderlyingStats(chain, hist_vol)

    def _historical_vol(self, symbol: str, now: datetime) -> float | None:
        """30-day close-to-close volatility of the sessions before today's (one computation a day)."""
        session = clock.most_recent_session(now)
        key = (symbol, session.day)
        if key not in self._hist_vol:
            bars = self.model.history(symbol, session.open, (ticks.VOL_DAYS + 1) * SESSION_MINUTES)
            self._hist_vol[key] = ticks.historical_vol(ticks.daily_closes(bars)[-(ticks.VOL_DAYS + 1):])
        return self._hist_vol[key]

    def send_underlying(self, sub: Sub, now: datetime) -> None:
        """Queue ``sub``'s generic ticks whose values changed since it was last sent them."""
        if not sub.generic:
            return
        stats = self.underlying_stats(sub.symbol, sub.generic, now)
        self._emit(sub, ticks.underlying_ticks(sub.req_id, sub.generic, stats, sub.stats))
        sub.stats = stats

    def _refresh_underlyings(self, now: datetime, mono: float) -> None:
        for (kind, symbol), subs in self._subs.items():
            if kind != "l1" or self.muted(symbol, "quotes", mono):
                continue
            for sub in subs:
                self.send_underlying(sub, now)
