"""`qc stream`'s IB connection: qualify, subscribe, resubscribe silent feeds, hand events to the state.

``IBFeed`` is a :class:`qc.ib.connection.IBConnection` (connect, loss, reconnect, error classes) that
keeps its own registry of what it subscribed (symbol → contract, depth ticker, bar list), so after
any reconnect it re-qualifies and resubscribes everything itself. A feed still silent after
``max_resubscribes`` resubscriptions escalates to a reconnect. No Redis: everything goes into
``StreamState``.

Backfill (data enters only through ingestion): on every (re)connect, each symbol's last two
sessions of 1-minute TRADES bars (``reqHistoricalDataAsync``, regular hours, epoch dates) go into
``StreamState.history`` (bars the codec would refuse are counted as ``ib.bar`` rejects, never merged);
the writer merges them under the live minutes in ``market:{sym}:bars:1min``
(``qc.ingest.bars.merge_history``), so `qc analytics` warms from Redis alone and a reconnect's gap
is filled. IB rather than Alpha Vantage's TIME_SERIES_INTRADAY: no request budget spent, the same
prints the live bars come from, and the connection is already there. One request per symbol per
connect stays far inside IB's pacing (six per contract per 2 s, 60 per 10 minutes). The requests
run as tasks beside the subscriptions, so a slow history answer never delays live data.

*Arrival* of a message is the start of the socket read that delivered it: ib_async stamps
``wrapper.time`` (wall) in ``tcpDataArrived`` before decoding and emits ``pendingTickersEvent``
(or ``barUpdateEvent``) in the same synchronous call; the handler converts that wall stamp to the
monotonic clock by subtracting the decode time elapsed since. Kernel and event-loop queueing before
the read is not included.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ib_async import Contract, RealTimeBarList, Stock, Ticker

from qc.core import clock
from qc.core.errors import QcError
from qc.ib.connection import ConnectionOptions, IBConnection
from qc.ib.errors import Action
from qc.ingest.bars import history_bar, valid_bars
from qc.ingest.cycle import ib_events
from qc.ingest.staleness import FEEDS
from qc.ingest.state import StreamState

log = logging.getLogger(__name__)

TICK_BY_TICK = "AllLast"
HISTORY_DURATION = "2 D"  # two sessions: what the bars list keeps (stream_writer.BARS_KEEP)
MIN_RESUBSCRIBE_S = {"trades": 15.0}  # IB: one tick-by-tick request per instrument per 15 s (ref §11)


@dataclass(frozen=True)
class FeedOptions:
    """Connection and recovery knobs (tests shorten the backoffs)."""

    host: str
    port: int
    client_id: int
    rows: int = 10
    connect_timeout_s: float = 10.0
    request_timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    resubscribe_every_s: float = 5.0
    max_resubscribes: int = 3
    history_timeout_s: float = 60.0

    def connection(self) -> ConnectionOptions:
        return ConnectionOptions(self.host, self.port, self.client_id, readonly=True,
                                 connect_timeout_s=self.connect_timeout_s, request_timeout_s=self.request_timeout_s,
                                 backoff_base_s=self.backoff_base_s, backoff_cap_s=self.backoff_cap_s)


@dataclass
class Subscription:
    symbol: str
    contract: Contract | None = None
    ticker: Ticker | None = None
    bars: RealTimeBarList | None = None


class IBFeed(IBConnection):
    """The connection plus the subscription registry for the configured symbols."""

    def __init__(self, state: StreamState, options: FeedOptions) -> None:
        super().__init__(options.connection())
        self.state, self.options = state, options
        self.subs = {s: Subscription(s) for s in state.symbols}
        self.resubscriptions: Counter[tuple[str, str]] = Counter()
        self._resets: dict[str, list[int]] = {}
        self._tries: Counter[tuple[str, str]] = Counter()
        self._last_resub: dict[tuple[str, str], float] = {}
        self._backfills: set[asyncio.Task[None]] = set()
        # the writer's hooks: symbols delivered while the read goes on, then the read delivered
        self.on_part: Callable[[list[str]], None] | None = None
        self.on_read: Callable[[], None] = lambda: None
        self.part_size = 16
        self.ib.pendingTickersEvent += self.guard(self._on_tickers)
        self.ib.barUpdateEvent += self.guard(self._on_bar)
        self.throttling = False
        self.ib.client.throttleStart += self.guard(self._throttle_start)
        self.ib.client.throttleEnd += self.guard(self._throttle_end)

    # --- the connection's hooks ----------------------------------------------------------------

    async def on_connected(self, first: bool) -> None:
        o = self.options
        self.throttling = False  # ib_async dropped its queue with the old socket (no throttleEnd for that)
        contracts = [Stock(s, "SMART", "USD") for s in self.subs]
        qualified = await self.ib.qualifyContractsAsync(*contracts)
        missing = [c.symbol for c, q in zip(contracts, qualified, strict=True) if not isinstance(q, Contract)]
        if missing and first:
            raise QcError(f"no security definition for {', '.join(missing)}",
                          "check the spelling: qc stream takes US stock symbols such as SPY")
        for sub, q in zip(self.subs.values(), qualified, strict=True):
            sub.contract = q if isinstance(q, Contract) else None
            if sub.contract is None:
                log.error("ib: %s no longer qualifies; not subscribed", sub.symbol)
                self.errors += 1
                continue
            for feed in FEEDS:
                self._subscribe(sub, feed)
            task = asyncio.ensure_future(self._backfill(sub.symbol, sub.contract))
            self._backfills.add(task)
            task.add_done_callback(self._backfills.discard)
        now_mono, now_market = clock.monotonic(), self.state.clock.epoch()
        self.state.freshness.reset_baseline(now_mono, now_market)
        log.info("ib %s:%d connected as client %d; %d symbols subscribed", o.host, o.port, o.client_id,
                 sum(s.contract is not None for s in self.subs.values()))

    def on_state(self, connected: bool) -> None:
        self.state.connected = connected

    def on_farm(self, ok: bool) -> None:
        self.state.farm_ok = ok

    def on_ib_error(self, action: Action, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        symbol = contract.symbol if contract is not None else ""
        if action is Action.RESUBSCRIBE:
            log.warning("ib %d: %s; resubscribing everything", code, message)
            asyncio.get_running_loop().call_soon(self.guard(self.resubscribe_all))
        elif action is Action.DEPTH_RESET and symbol in self.subs:
            ticker = self.subs[symbol].ticker
            self._resets.setdefault(symbol, []).append(len(ticker.domTicks) if ticker is not None else 0)
        else:
            super().on_ib_error(action, req_id, code, message, contract)

    def _throttle_start(self) -> None:
        self.throttling = True

    def _throttle_end(self) -> None:
        """ib_async sent the last request it held back: feeds get one threshold from now before any is silent
        (their requests were in its queue, not at IB; resubscribing them then only lengthened the queue)."""
        self.throttling = False
        self.state.freshness.reset_baseline(clock.monotonic(), self.state.clock.epoch())

    # --- history -------------------------------------------------------------------------------

    async def _backfill(self, symbol: str, contract: Contract) -> None:
        """The last ``HISTORY_DURATION`` of finished 1-minute TRADES bars into the state (merged by the writer)."""
        try:
            got = await self.ib.reqHistoricalDataAsync(contract, endDateTime="", durationStr=HISTORY_DURATION,
                                                       barSizeSetting="1 min", whatToShow="TRADES", useRTH=True,
                                                       formatDate=2, timeout=self.options.history_timeout_s)
        except ConnectionError as exc:  # the socket went; the next connect asks again (a timeout returns no bars)
            log.warning("ib: %s history not fetched (%s); the bars list keeps what it has", symbol, exc)
            return
        bars, rejected = valid_bars(history_bar(b.date, b.open, b.high, b.low, b.close, b.volume, b.average,
                                                b.barCount) for b in got or [] if isinstance(b.date, datetime))
        if rejected:
            log.warning("ib: %s history: %d bars refused (%s)", symbol, sum(rejected.values()), dict(rejected))
            self.state.refuse(symbol, "ib.bar", rejected)
        if not bars:
            log.warning("ib: %s history: no 1-minute bars came back", symbol)
            return
        self.state.history(symbol, bars, clock.monotonic())

    # --- subscriptions -------------------------------------------------------------------------

    def _subscribe(self, sub: Subscription, feed: str) -> None:
        c = sub.contract
        assert c is not None
        self.state.freshness.subscribed(sub.symbol, feed, clock.monotonic(), self.state.clock.epoch())
        if feed == "depth":
            self.state.clear_book(sub.symbol, clock.monotonic())
            sub.ticker = self.ib.reqMktDepth(c, numRows=self.options.rows, isSmartDepth=True)
        elif feed == "quotes":
            self.ib.reqMktData(c, "225")  # 225: auction volume, price and imbalance
        elif feed == "trades":
            self.ib.reqTickByTickData(c, TICK_BY_TICK)
        else:
            sub.bars = self.ib.reqRealTimeBars(c, 5, "TRADES", useRTH=False)

    def _unsubscribe(self, sub: Subscription, feed: str) -> None:
        c = sub.contract
        assert c is not None
        if feed == "depth":
            self.ib.cancelMktDepth(c, isSmartDepth=True)
        elif feed == "quotes":
            self.ib.cancelMktData(c)
        elif feed == "trades":
            self.ib.cancelTickByTickData(c, TICK_BY_TICK)
        elif sub.bars is not None:
            self.ib.cancelRealTimeBars(sub.bars)

    def resubscribe(self, symbol: str, feed: str) -> None:
        """Cancel and re-request one feed over the live socket."""
        sub = self.subs[symbol]
        if not self.up or sub.contract is None:
            return
        self._unsubscribe(sub, feed)
        self._subscribe(sub, feed)
        self.resubscriptions[(symbol, feed)] += 1
        log.warning("ib: %s %s silent; resubscribed (%d so far)", symbol, feed, self.resubscriptions[(symbol, feed)])

    def resubscribe_all(self) -> None:
        for symbol in self.subs:
            for feed in FEEDS:
                self.resubscribe(symbol, feed)

    def on_stale(self, stale: Iterable[tuple[str, str]], mono: float) -> None:
        """Resubscribe silent feeds (at most every ``resubscribe_every_s``); reconnect if that keeps failing."""
        stale = set(stale)
        for key in [k for k in self._tries if k not in stale]:
            del self._tries[key]
        if not self.up or not self.state.farm_ok or self.throttling:  # held-back requests: not silence
            return
        for key in sorted(stale):
            every = max(self.options.resubscribe_every_s, MIN_RESUBSCRIBE_S.get(key[1], 0.0))
            if mono - self._last_resub.get(key, -1e18) < every:
                continue
            self._last_resub[key] = mono
            if self._tries[key] >= self.options.max_resubscribes:
                self._tries.clear()
                self.lose(f"{key[0]} {key[1]} still silent after {self.options.max_resubscribes} resubscriptions")
                return
            self._tries[key] += 1
            self.resubscribe(*key)

    # --- market-data events --------------------------------------------------------------------

    def _arrival(self) -> float:
        """Monotonic start of the current socket read; also notes the hand-over (now) in the state."""
        now = clock.monotonic()
        decoded_for = clock.wall_epoch() - float(getattr(self.ib.wrapper, "time", 0.0) or 0.0)
        self.state.handed_at = now
        return now - min(max(decoded_for, 0.0), 1.0)

    def _on_tickers(self, tickers: Iterable[Ticker]) -> None:
        try:
            ib_events.deliver_tickers(self.state, tickers, self._resets, self._arrival(), self.on_part, self.part_size)
        finally:
            self.on_read()

    def _on_bar(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if has_new_bar:
            ib_events.deliver_bar(self.state, bars, self._arrival())
