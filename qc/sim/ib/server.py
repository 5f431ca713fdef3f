"""The simulated IB Gateway: an asyncio TWS API server on loopback over a market model and a broker.

``IBGatewayServer`` owns the listener, the sessions (``ib_session``), the market-data subscriptions
(``ib_feeds``), the contract catalogue (``ib_catalog``) and one market pump task. Every
``pump_interval_s`` real seconds the pump reveals the model's events up to the clock's ``now``,
feeds the broker (stock quotes by symbol; options with working orders by con_id from
``model.option_quote``, at most every ``OPTION_QUOTE_EVERY_S`` real seconds), fans the events out
(each encoded once per subscribed request id), closes 5-s bars, refreshes option ticks, runs the
close (``broker.on_close`` for MOC/LOC, then ``end_of_day`` for DAY orders, then the expiry
settlement below), routes the broker's events (``ib_router``) and writes each session's queued
bytes once. The 1-ms default stands in for
a real gateway, which writes each update as it happens: a coarser pump would lump a client's
messages into bursts (30 per read at 5 ms and 6,000 depth/s) that no real feed sends.

Expiry settlement (``settle_expiring``; ``qc sim ctl settle-now`` runs it at once). At the close
every account's options expiring that New York day are settled against the underlying's closing
price (the model's last, or the pinned last of a pinned underlying) by ``SimBroker.settle_expiring``
(rules in ``qc.sim.broker.settlement``). Open orders on them are cancelled (openOrder + orderStatus
Cancelled to the owner, no error 202). Per settled position the wire then carries, in this order:

1. execDetails (reqId −1) + commissionReport for the option leg to EVERY connected session: side
   SLD for a long / BOT for a short, the whole quantity at price 0, orderId 0, permId 0, clientId 0,
   empty orderRef, commission 0, realizedPNL = the premium kept (short) or the cost lost (long);
2. ``position`` (option at 0) to sessions that called reqPositions and ``updatePortfolio`` to
   sessions subscribed to the account's updates;
3. when exercised or assigned, the same two for the stock leg: execDetails + commissionReport
   (BOT/SLD multiplier × qty shares at the strike, same zero ids), then ``position`` /
   ``updatePortfolio`` of the new or changed stock position (marked at the close, then by the
   symbol's quotes like any stock position);
4. the account's values (updateAccountValue, accountUpdateMulti, accountSummary subscribers).

The settlement executions join the execution log, so reqExecutions replays them the same day.
Real IB reports exercise, assignment and lapse overnight and mostly as position changes; an
execution row for them is unconfirmed (ib-execution-and-risk.md §3). A client must therefore
explain them from the position diff; the rows here are extra evidence, not a contract.

Restart (``FaultSwitches.restart_gateway``): drops every socket, refuses connections for a while
and rolls order ids back (``SimBroker.forget_finished_ids``, LEAN-IB#242).

Pins (``set_quote``/``unpin``): a pinned con_id or stock symbol is no longer quoted to the broker
from the model; a pinned option's bid/ask/last are also what its reqMktData subscribers receive
(``Feeds.pin_option``). A pinned stock reaches the broker only: its market-data feeds keep the model's.

Versions: a client is answered ``min(its max, server_version)`` (178 by default, lower to emulate an
older gateway; ``ib_versions`` holds the accepted range 157..178) and each session then encodes
every message in its negotiated version's layout.

Everything runs on the server's event loop; the model and the broker are only touched there. The
fault switches and ``set_quote``/``call`` may be called from any thread: they post to the loop and
return at once (``call`` and ``set_quote`` return a ``concurrent.futures.Future``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from qc.core import clock
from qc.core.clock import Clock
from qc.sim.broker.engine import SimBroker
from qc.sim.broker.matching import MarketKey
from qc.sim.broker.reports import BrokerEvent
from qc.sim.ib import router as ib_router
from qc.sim.ib.catalog import Catalog
from qc.sim.ib.faults import FaultSwitches
from qc.sim.ib.feeds import Feeds
from qc.sim.ib.session import IBSession
from qc.sim.ib.versions import MAX_SERVER_VERSION, check
from qc.sim.market.events import MarketModel, QuoteEvent
from qc.sim.market.models import OptionContract

log = logging.getLogger(__name__)

T = TypeVar("T")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
OPTION_QUOTE_EVERY_S = 0.25
PREPARE_PER_TICK = 200  # events of the next second made per pump tick: ~0.7 ms of Python, 6,000 events in 30 ticks


class IBGatewayServer(FaultSwitches):
    """A TWS API (server versions 157..178) gateway that ib_async cannot tell from IB's."""

    def __init__(self, model: MarketModel, broker: SimBroker, clock: Clock, *, host: str = "127.0.0.1",
                 port: int = 0, accounts: Iterable[str] = ("DU1234567",), depth_limit: int = 3,
                 max_msgs_per_s: int = 50, pump_interval_s: float = 0.001,
                 server_version: int = MAX_SERVER_VERSION) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the simulated gateway binds loopback only, not {host!r}")
        self.server_version = check(server_version)  # the newest version it answers
        self.model, self.broker, self.clock = model, broker, clock
        self.host, self.port = host, port
        self.accounts: tuple[str, ...] = tuple(accounts)
        self.depth_limit, self.max_msgs_per_s, self.pump_interval_s = depth_limit, max_msgs_per_s, pump_interval_s
        self.sent: Counter[str] = Counter()
        self.catalog = Catalog(model)
        self.feeds = Feeds(model, self.sent)
        self.client_sessions: dict[int, IBSession] = {}
        self.end_marker_delay: tuple[float | None, frozenset[str] | None] | None = None
        self._all: set[IBSession] = set()
        self._used_ids: dict[int, int] = {}
        self.handed_ids: dict[int, int] = {}  # the last nextValidId each client was given
        self._pinned: dict[MarketKey, tuple[float, float, float]] = {}  # key → (bid, ask, last)
        self._options_quoted_at = 0.0
        self._close_at: datetime | None = None
        self._refuse_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: asyncio.Server | None = None
        self._pump: asyncio.Task[None] | None = None

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> int:
        """Bind (loopback only), start the pump; return the port."""
        self._loop = asyncio.get_running_loop()
        self._listener = await self._loop.create_server(self._accept, self.host, self.port)
        self.port = int(self._listener.sockets[0].getsockname()[1])
        self._pump = asyncio.create_task(self._run_pump(), name="ib-sim-pump")
        log.info("ib sim: listening on %s:%d", self.host, self.port)
        return self.port

    async def stop(self) -> None:
        """Stop the pump and close every session and the listener."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._listener is not None:
            self._listener.close()
        for s in list(self._all):
            s.close(abort=True)
        if self._listener is not None:
            await self._listener.wait_closed()
            self._listener = None

    @property
    def sessions(self) -> tuple[int, ...]:
        """Client ids connected now (read-only)."""
        return tuple(sorted(self.client_sessions))

    def _accept(self) -> IBSession:
        session = IBSession(self)
        self._all.add(session)
        return session

    def refusing(self) -> bool:
        return clock.monotonic() < self._refuse_until

    def session_started(self, s: IBSession) -> None:
        assert s.client_id is not None
        self.client_sessions[s.client_id] = s
        log.info("ib sim: client %d connected", s.client_id)

    def session_closed(self, s: IBSession) -> None:
        self._all.discard(s)
        if s.client_id is not None and self.client_sessions.get(s.client_id) is s:
            del self.client_sessions[s.client_id]
            log.info("ib sim: client %d disconnected", s.client_id)
        self.feeds.drop_sink(s)

    # --- ids ---------------------------------------------------------------------------------------

    def note_id(self, client_id: int, request: object) -> None:
        """Remember the highest request/order id a client used (nextValidId must exceed it)."""
        used = getattr(request, "order_id", None) or getattr(request, "req_id", None)
        if isinstance(used, int) and used > self._used_ids.get(client_id, 0):
            self._used_ids[client_id] = used

    def next_id(self, client_id: int) -> int:
        n = max(self.broker.next_valid_id(client_id), self._used_ids.get(client_id, 0) + 1)
        self.handed_ids[client_id] = n
        return n

    # --- routing and output ------------------------------------------------------------------------

    def route(self, events: list[BrokerEvent]) -> None:
        ib_router.route(self, events)

    def flush_all(self) -> None:
        for s in list(self._all):
            s.flush()

    def broadcast(self, notices: Iterable[tuple[int, str]]) -> None:
        for s in list(self.client_sessions.values()):
            for code, text in notices:
                s.error(-1, code, text)
        self.flush_all()

    # --- the pump ----------------------------------------------------------------------------------

    async def _run_pump(self) -> None:
        while True:
            try:
                self.pump_once()
            except Exception:
                log.exception("ib sim: market pump tick failed")
            await asyncio.sleep(self.pump_interval_s)

    def pump_once(self) -> None:
        """One pump tick (see the module docstring); also callable directly on the loop."""
        now = self.clock.now()
        events = self.model.events_until(now)
        out: list[BrokerEvent] = []
        for e in events:
            if isinstance(e, QuoteEvent) and e.symbol not in self._pinned:
                q = e.quote
                out += self.broker.on_market(e.symbol, q.bid, q.ask, q.last, q.ts)
        self.feeds.dispatch(events)
        self.feeds.tick(now)
        for symbol, feed in self.feeds.expired_silences(clock.monotonic()):
            if feed == "depth":
                self.feeds.resync_depth(symbol)
        out += self._quote_working_options(now)
        out += self._close_if_due(now)
        self.route(out)
        self.flush_all()
        self.model.prepare_ahead(now, PREPARE_PER_TICK)  # after the writes: this tick's messages go first

    def _quote_working_options(self, now: datetime) -> list[BrokerEvent]:
        mono = clock.monotonic()
        if mono - self._options_quoted_at < OPTION_QUOTE_EVERY_S:
            return []
        self._options_quoted_at = mono
        con_ids = sorted({o.request.contract.con_id for o in self.broker.open_orders()
                          if o.request.contract.is_option})
        out: list[BrokerEvent] = []
        for con_id in con_ids:
            opt = self.catalog.option_for_id(con_id)
            if opt is not None and con_id not in self._pinned:
                out += self._quote_option(con_id, opt, now)
        return out

    def _quote_option(self, con_id: int, opt: OptionContract, now: datetime) -> list[BrokerEvent]:
        q = self.model.option_quote(opt, now)
        return [] if q is None else self.broker.on_market(con_id, q.bid, q.ask, q.last, now)

    def quote_option_now(self, con_id: int, opt: OptionContract, now: datetime) -> None:
        """Give the broker a fresh quote for an option about to be ordered (unless pinned)."""
        if con_id not in self._pinned:
            self.route(self._quote_option(con_id, opt, now))

    def _close_if_due(self, now: datetime) -> list[BrokerEvent]:
        if self._close_at is None:
            self._close_at = next_close(now)
        if now < self._close_at:
            return []
        at, out = self._close_at, list[BrokerEvent]()
        closes = self.closing_prices()
        for symbol in self.model.symbols:
            out += self.broker.on_close(symbol, closes[symbol], at)
        out += self.broker.end_of_day(at)
        out += self.broker.settle_expiring(clock.new_york_date(at), closes, at)
        self._close_at = next_close(now)
        log.info("ib sim: session closed at %s; next close %s", at, self._close_at)
        return out

    def closing_prices(self) -> dict[str, float]:
        """Each underlying's price now: its pinned last (by symbol or con_id), else the model's last."""
        out: dict[str, float] = {}
        for symbol in self.model.symbols:
            pin = self._pinned.get(symbol) or self._pinned.get(self.catalog.stock_con_id(symbol))
            out[symbol] = pin[2] if pin is not None else self.model.quote(symbol).last
        return out

    def settle_now(self) -> list[BrokerEvent]:
        """Run the close's expiry settlement for today's expiries at the current simulated time
        (on the loop: through ``call``); route and write its events; return them."""
        now = self.clock.now()
        events = self.broker.settle_expiring(clock.new_york_date(now), self.closing_prices(), now)
        self.route(events)
        self.flush_all()
        return events

    # --- hooks for tests and `qc sim ctl` (thread-safe) --------------------------------------------

    def call(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn`` on the server's loop (where the model and broker live); its result as a future."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        self._post(run)
        return future

    def set_quote(self, key: MarketKey, bid: float, ask: float, last: float) -> concurrent.futures.Future[None]:
        """Pin a con_id (or stock symbol) to this quote: the pump stops quoting it from the model."""
        def apply() -> None:
            self._pinned[key] = (bid, ask, last)
            opt = self.catalog.option_for_id(key) if isinstance(key, int) else None
            if opt is not None:
                self.feeds.pin_option(opt, bid, ask, last)
            self.route(self.broker.on_market(key, bid, ask, last, self.clock.now()))
            self.flush_all()

        return self.call(apply)

    def unpin(self, key: MarketKey) -> concurrent.futures.Future[bool]:
        """Return a pinned con_id or symbol to the model (quoted to the broker at once); False if
        it was not pinned."""
        def apply() -> bool:
            if self._pinned.pop(key, None) is None:
                return False
            now = self.clock.now()
            opt = self.catalog.option_for_id(key) if isinstance(key, int) else None
            symbol = key if isinstance(key, str) else self.catalog.stock_for_id(key)
            if isinstance(key, int) and opt is not None:
                self.feeds.unpin_option(opt)
                self.route(self._quote_option(key, opt, now))
            elif symbol is not None:
                self.broker.forget_quote(key)  # else a stock's con_id touch would shadow its symbol's quotes
                q = self.model.quote(symbol)
                self.route(self.broker.on_market(symbol, q.bid, q.ask, q.last, now))
            self.flush_all()
            return True

        return self.call(apply)

    def stats(self) -> dict[str, int]:
        """Messages sent per kind, ``depth`` messages, ``errors`` sent, ``sessions`` connected, ``bytes``."""
        out = dict(self.sent)
        out["sessions"] = len(self.client_sessions)
        out["errors"] = self.sent["error"]
        out["depth"] = self.sent["depth"]
        return out


def next_close(now: datetime) -> datetime:
    """The first session close after ``now`` (16:00 New York, 13:00 on early-close days)."""
    today = clock.session(clock.new_york_date(now))
    if today is not None and now < today.close:
        return today.close
    return clock.next_session_after(clock.new_york_date(now)).close
