"""The one ib_async connection of `qc stream`: connect, qualify, subscribe, notice loss, reconnect.

``IBFeed`` keeps its own registry of what it subscribed (symbol → contract, depth ticker, bar list)
so after any loss it re-qualifies and resubscribes everything itself (ib_async wipes its state on
disconnect). Reconnect triggers: the socket closing when we did not close it (``disconnectedEvent``
fires twice; the ``_up`` flag makes the second and our own disconnects no-ops), error 1100/100/1300,
and a feed still silent after ``max_resubscribes`` resubscriptions. Backoff between attempts is
``qc.worker.backoff_s`` (capped, jittered). No Redis: everything goes into ``StreamState``.

*Arrival* of a message is the start of the socket read that delivered it: ib_async stamps
``wrapper.time`` (wall) in ``tcpDataArrived`` before decoding and emits ``pendingTickersEvent``
(or ``barUpdateEvent``) in the same synchronous call; the handler converts that wall stamp to the
monotonic clock by subtracting the decode time elapsed since. Kernel and event-loop queueing before
the read is not included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ib_async import IB, Contract, RealTimeBarList, StartupFetchNONE, Stock, Ticker

from qc import clock
from qc.errors import QcError
from qc.ingest import ib_errors, ib_events
from qc.ingest.ib_errors import Action
from qc.ingest.staleness import FEEDS
from qc.ingest.stream_state import StreamState
from qc.worker import backoff_s

log = logging.getLogger(__name__)

CONNECT_ERRORS = (OSError, TimeoutError)
TICK_BY_TICK = "AllLast"
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


@dataclass
class Subscription:
    symbol: str
    contract: Contract | None = None
    ticker: Ticker | None = None
    bars: RealTimeBarList | None = None


class IBFeed:
    """Connection manager plus subscription registry for the configured symbols."""

    def __init__(self, state: StreamState, options: FeedOptions) -> None:
        self.state, self.options = state, options
        self.ib = IB()
        self.ib.RequestTimeout = options.request_timeout_s
        self.subs = {s: Subscription(s) for s in state.symbols}
        self.farms = ib_errors.FarmState()
        self.resubscriptions: Counter[tuple[str, str]] = Counter()
        self.reconnects = 0
        self.errors = 0
        self.ready = asyncio.Event()
        self.on_change: Callable[[], None] = lambda: None  # connection state changed: publish it now
        self._up = False
        self._lost = asyncio.Event()
        self._resets: dict[str, list[int]] = {}
        self._tries: Counter[tuple[str, str]] = Counter()
        self._last_resub: dict[tuple[str, str], float] = {}
        self.ib.pendingTickersEvent += self._guard(self._on_tickers)
        self.ib.barUpdateEvent += self._guard(self._on_bar)
        self.ib.errorEvent += self._guard(self._on_error)
        self.ib.disconnectedEvent += self._guard(self._on_disconnected)

    # --- the connection loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected and subscribed until ``stop``; QcError if a symbol is unknown at the start."""
        attempt, first = 0, True
        while not stop.is_set():
            if attempt and await _wait_any(stop, timeout=backoff_s(attempt, self.options.backoff_base_s,
                                                                   self.options.backoff_cap_s)):
                break
            try:
                await self._connect(first)
            except QcError:
                self._disconnect()
                raise
            except Exception as exc:  # a socket error, a timeout or an ib_async surprise: all retried
                attempt += 1
                if not isinstance(exc, CONNECT_ERRORS):
                    self.errors += 1
                log.warning("ib %s:%d: connect failed (%s: %s); attempt %d", self.options.host, self.options.port,
                            type(exc).__name__, exc, attempt)
                self._disconnect()
                continue
            first, attempt = False, 1
            self.ready.set()
            await _wait_any(stop, self._lost)
            self._disconnect()
        self._disconnect()

    async def _connect(self, first: bool) -> None:
        o = self.options
        self._lost.clear()
        await self._open()
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
        now_mono, now_market = clock.monotonic(), self.state.clock.epoch()
        self.state.freshness.reset_baseline(now_mono, now_market)
        self._up = self.state.connected = True
        self.farms = ib_errors.FarmState()
        self.state.farm_ok = True
        self.on_change()
        log.info("ib %s:%d connected as client %d; %d symbols subscribed", o.host, o.port, o.client_id,
                 sum(s.contract is not None for s in self.subs.values()))

    async def _open(self) -> None:
        """connectAsync, failing at once when the gateway closes the socket mid-handshake.

        ib_async reports that close on ``client.apiError`` but keeps waiting for the API to start
        until its timeout; a gateway refusing connections would cost a full timeout per attempt.
        """
        o = self.options
        failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def on_api_error(msg: object) -> None:
            if not failed.done():
                failed.set_result(str(msg))

        self.ib.client.apiError += on_api_error
        connect = asyncio.ensure_future(self.ib.connectAsync(
            o.host, o.port, clientId=o.client_id, timeout=o.connect_timeout_s, readonly=True,
            fetchFields=StartupFetchNONE))
        try:
            await asyncio.wait([connect, failed], return_when=asyncio.FIRST_COMPLETED)
            if not connect.done():
                connect.cancel()
                with contextlib.suppress(asyncio.CancelledError, *CONNECT_ERRORS):
                    await connect
                raise ConnectionError(failed.result())
            connect.result()
        finally:
            self.ib.client.apiError -= on_api_error
            failed.cancel()

    def _disconnect(self) -> None:
        """An intentional disconnect: the disconnectedEvent it causes is ignored (``_up`` is False)."""
        self._up = self.state.connected = False
        if self.ib.isConnected() or self.ib.client.connState != self.ib.client.DISCONNECTED:
            self.ib.disconnect()

    def _lose(self, why: str) -> None:
        if not self._up:
            return
        log.warning("ib: %s; reconnecting", why)
        self._up = self.state.connected = False
        self.reconnects += 1
        self._lost.set()
        self.on_change()

    # --- subscriptions -------------------------------------------------------------------------

    def _subscribe(self, sub: Subscription, feed: str) -> None:
        c = sub.contract
        assert c is not None
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
        if not self._up or sub.contract is None:
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
        if not self._up or not self.state.farm_ok:
            return
        for key in sorted(stale):
            every = max(self.options.resubscribe_every_s, MIN_RESUBSCRIBE_S.get(key[1], 0.0))
            if mono - self._last_resub.get(key, -1e18) < every:
                continue
            self._last_resub[key] = mono
            if self._tries[key] >= self.options.max_resubscribes:
                self._tries.clear()
                self._lose(f"{key[0]} {key[1]} still silent after {self.options.max_resubscribes} resubscriptions")
                return
            self._tries[key] += 1
            self.resubscribe(*key)

    # --- ib_async events -----------------------------------------------------------------------

    def _guard(self, fn: Any) -> Any:
        """Handlers log and count their failures; one bad message never stops the stream."""
        def handler(*args: Any) -> None:
            try:
                fn(*args)
            except Exception:
                self.errors += 1
                log.exception("ib: handling %s failed; continuing", fn.__name__)
        return handler

    def _arrival(self) -> float:
        """Monotonic start of the current socket read; also notes the hand-over (now) in the state."""
        now = clock.monotonic()
        decoded_for = clock.wall_epoch() - float(getattr(self.ib.wrapper, "time", 0.0) or 0.0)
        self.state.handed_at = now
        return now - min(max(decoded_for, 0.0), 1.0)

    def _on_tickers(self, tickers: Iterable[Ticker]) -> None:
        ib_events.deliver_tickers(self.state, tickers, self._resets, self._arrival())

    def _on_bar(self, bars: RealTimeBarList, has_new_bar: bool) -> None:
        if has_new_bar:
            ib_events.deliver_bar(self.state, bars, self._arrival())

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        action = ib_errors.classify(code)
        symbol = contract.symbol if contract is not None else ""
        if action is Action.RECONNECT:
            self._lose(f"IB error {code} ({message})")
        elif action is Action.RESUBSCRIBE:
            log.warning("ib %d: %s; resubscribing everything", code, message)
            asyncio.get_running_loop().call_soon(self._guard(self.resubscribe_all))
        elif action in (Action.FARM_DOWN, Action.FARM_UP):
            was_ok, self.state.farm_ok = self.state.farm_ok, self.farms.note(code)
            level = logging.WARNING if action is Action.FARM_DOWN else logging.INFO if not was_ok else logging.DEBUG
            log.log(level, "ib %d: %s; feeds %s", code, message, "live" if self.state.farm_ok else "stale")
        elif action is Action.DEPTH_RESET and symbol in self.subs:
            ticker = self.subs[symbol].ticker
            self._resets.setdefault(symbol, []).append(len(ticker.domTicks) if ticker is not None else 0)
        elif action is Action.KEEP:
            log.info("ib %d: %s", code, message)
        elif action is not Action.NO_SECURITY and code < 2100:
            log.warning("ib %d (req %d): %s", code, req_id, message)

    def _on_disconnected(self) -> None:
        self._lose("socket closed by the gateway")


async def _wait_any(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until one event is set or ``timeout`` passes; True when the first event (stop) is set."""
    tasks = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    return events[0].is_set()
