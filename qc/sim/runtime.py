"""`qc sim` assembled: one simulated clock, one market, one broker, and the four loopback listeners.

The IB gateway runs on an asyncio loop in this thread; the Alpha Vantage, signal-channel (Telegram,
X, webhooks) and control servers run in their own threads. The market model is not thread-safe, so
every caller reaches it through one ``LockedModel``. When a Redis is reachable the clock anchor (with
the IB, AV and channel ports) is published every second under a short TTL, so workers started
against this simulator share its time and find its endpoints, and a dead simulator's anchor lapses
by itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qc.core import clock, keys
from qc.core.clock import NEW_YORK, SimClock, SystemClock
from qc.core.models import Bar, DepthLevel
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import REDIS_ERRORS, Store
from qc.runtime.worker import Worker
from qc.sim.av.server import AlphaVantageServer
from qc.sim.broker import views
from qc.sim.broker.engine import SimBroker
from qc.sim.broker.matching import MarketKey
from qc.sim.channels.server import DEFAULT_TIMEOUT_S, ChannelsServer
from qc.sim.control import Args, ControlServer, Handler, Query
from qc.sim.ib.server import IBGatewayServer
from qc.sim.market import timeline
from qc.sim.market.events import MarketEvent
from qc.sim.market.market import SimMarket
from qc.sim.market.models import OptionContract, OptionQuote, Quote
from qc.sim.market.params import SimParams

log = logging.getLogger(__name__)

ANCHOR_REFRESH_S = 1.0
CTL_TIMEOUT_S = 10.0  # a control request waits this long for the gateway's loop
RESTART_DOWN_S = 2.0
DEFAULT_ACCOUNT = "DU1234567"
STARTING_CASH = 1_000_000.0


GIL_SWITCH_S = 0.0005
FULL_GC_EVERY = 1000  # generation-1 collections per full one (Python's default: 10)


@dataclass(frozen=True)
class SimConfig:
    """Everything `qc sim` is told on its command line."""

    symbols: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    seed: int = 42
    speed: float = 1.0
    start: datetime | None = None
    ib_port: int = 4002
    av_port: int = 8765
    ctl_port: int = 8766
    channels_port: int = 8767
    channels_port_fallback: bool = False  # the port was not chosen: if it is taken, take any free one
    depth_rate_hz: float = 300.0
    av_rpm: int = 75
    depth_limit: int = 3  # simultaneous L2 subscriptions per client (IB's default; more market-data lines, more)
    not_entitled_keys: tuple[str, ...] = ()
    accounts: tuple[str, ...] = field(default=(DEFAULT_ACCOUNT,))


class LockedModel:
    """The market model behind one lock: the IB loop and the HTTP threads never interleave in it."""

    def __init__(self, market: SimMarket) -> None:
        self._market = market
        self._lock = threading.Lock()
        self.symbols = market.symbols

    def events_until(self, now: datetime) -> list[MarketEvent]:
        with self._lock:
            return self._market.events_until(now)

    def prepare_ahead(self, now: datetime, budget: int) -> None:
        with self._lock:
            self._market.prepare_ahead(now, budget)

    def book(self, symbol: str) -> tuple[list[DepthLevel], list[DepthLevel]]:
        with self._lock:
            return self._market.book(symbol)

    def quote(self, symbol: str) -> Quote:
        with self._lock:
            return self._market.quote(symbol)

    def spot(self, symbol: str) -> float:
        with self._lock:
            return self._market.spot(symbol)

    def option_chain(self, symbol: str, now: datetime) -> list[OptionQuote]:
        with self._lock:
            return self._market.option_chain(symbol, now)

    def option_quote(self, contract: OptionContract, now: datetime) -> OptionQuote | None:
        with self._lock:
            return self._market.option_quote(contract, now)

    def history(self, symbol: str, end: datetime, minutes: int) -> list[Bar]:
        with self._lock:
            return self._market.history(symbol, end, minutes)

    def inject_informed_flow(self, symbol: str, start: datetime, duration_s: float, direction: int) -> None:
        with self._lock:
            self._market.inject_informed_flow(symbol, start, duration_s, direction)

    def jump(self, symbol: str, fraction: float) -> None:
        with self._lock:
            self._market.jump(symbol, fraction)


class Simulator:
    """Build and run the simulator until ``stop`` is set; ``announce`` gets one line per listener."""

    def __init__(self, config: SimConfig, store: Store | None, real_now: datetime) -> None:
        self.config = config
        self.store = store
        start = timeline.choose_start(real_now, config.start)
        self.start = start
        self.anchor = timeline.anchor(clock.wall_epoch(), start, config.speed)
        self.clock = SimClock(self.anchor)
        params = SimParams(seed=config.seed, symbols=config.symbols, depth_rate_hz=config.depth_rate_hz)
        self.market = SimMarket(start, params)
        self.model = LockedModel(self.market)
        self.broker = SimBroker(dict.fromkeys(config.accounts, STARTING_CASH))
        self.ib = IBGatewayServer(self.model, self.broker, self.clock, port=config.ib_port,
                                  accounts=config.accounts, depth_limit=config.depth_limit)
        self.av = AlphaVantageServer(self.model, self.clock.now, port=config.av_port, rpm=config.av_rpm,
                                     not_entitled_keys=config.not_entitled_keys, rate=params.rate)
        self.channels = ChannelsServer(self.clock.epoch, port=config.channels_port)
        self.loop = asyncio.new_event_loop()
        self.control = ControlServer(self._fault_handlers(), self._stats, port=config.ctl_port,
                                     queries=self._queries())

    def run(self, stop: threading.Event, announce: Callable[[str], None]) -> None:
        # The gateway's loop shares this process with the Alpha Vantage and control threads: at Python's
        # default 5-ms GIL switch interval an order arriving while a thread built a chain payload was read
        # (and time-stamped) that much later than a real gateway, a process of its own, would read it.
        sys.setswitchinterval(GIL_SWITCH_S)
        # Full collections of the market's heap stalled the gateway 40-60 ms (measured with gc.callbacks):
        # a real gateway's pauses are not what `make bench` measures, so the heap built so far is frozen
        # and full collections are made rare.
        gc.collect()
        gc.freeze()
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, FULL_GC_EVERY)
        asyncio.set_event_loop(self.loop)
        ib_port = self.loop.run_until_complete(self.ib.start())
        publisher = self._publisher(stop)
        try:
            av_port = self.av.start()
            ctl_port = self.control.start()
            channels_port = self.channels.start(fallback=self.config.channels_port_fallback)
            if publisher is not None:
                publisher.start()
            start = self.start.astimezone(NEW_YORK)  # the anchor, not now: stable however late we announce
            accounts = ",".join(self.config.accounts)
            announce(f"ib gateway   127.0.0.1:{ib_port}  (server version 178, accounts {accounts})")
            announce(f"alpha vantage http://127.0.0.1:{av_port}/query  (any non-empty apikey)")
            announce(f"control      http://127.0.0.1:{ctl_port}  (qc sim ctl --ctl-port {ctl_port} …)")
            speed, seed = self.config.speed, self.config.seed
            announce(f"clock        {start:%Y-%m-%d %H:%M:%S} New York at {speed:g}x, seed {seed}")
            taken = self.config.channels_port not in (0, channels_port)
            note = f"; port {self.config.channels_port} was taken" if taken else ""
            # last, after the clock: readers of the first four lines (ib, alpha, control, clock) stay valid
            announce(f"channels     http://127.0.0.1:{channels_port}  (telegram /bot<token>/sendMessage, "
                     f"x /2/tweets, webhooks /hooks/<name>{note})")
            self.loop.run_until_complete(self._serve(stop))
        finally:
            stop.set()
            if publisher is not None:
                publisher.join(10)
            self.control.stop()
            self.channels.stop()
            self.av.stop()
            self.loop.run_until_complete(self.ib.stop())
            self._withdraw_anchor()
            self.loop.close()

    def _publisher(self, stop: threading.Event) -> threading.Thread | None:
        """The anchor publisher runs the standard worker loop: heartbeat `sim`, backoff, registry."""
        if self.store is None:
            return None
        worker = Worker("sim", self.publish_anchor, self.store, SystemClock(), interval_s=ANCHOR_REFRESH_S,
                        stop=stop)
        return threading.Thread(target=worker.run, name="sim-anchor", daemon=True)

    async def _serve(self, stop: threading.Event) -> None:
        """Serve until ``stop`` (set by a signal handler in the main thread) without polling."""
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    def publish_anchor(self, now: datetime) -> None:
        """One cycle of the publisher worker: the anchor, refreshed under its short TTL."""
        if self.store is not None:
            anchor = SimClockAnchor.of(self.anchor, ib_port=self.ib.port, av_port=self.av.port,
                                       channels_port=self.channels.port)
            self.store.hset(keys.sim_clock(), anchor.to_redis())

    def _withdraw_anchor(self) -> None:
        """A stopped simulator stops steering clocks now, not when its anchor's TTL lapses."""
        if self.store is None:
            return
        try:
            self.store.delete(keys.sim_clock())
        except REDIS_ERRORS as exc:
            log.debug("sim clock anchor not withdrawn: %s", exc)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def _fault_handlers(self) -> dict[str, Handler]:
        ib, av = self.ib, self.av
        return {
            "drop_sockets": lambda a: self._on_loop(ib.drop_all),
            "refuse": lambda a: self._on_loop(ib.refuse_for, float(a["seconds"])),
            "farm_flap": lambda a: self._on_loop(ib.farm_flap, float(a["seconds"])),
            "silence": lambda a: self._on_loop(ib.silence_feed, str(a["symbol"]).upper(), str(a["feed"]),
                                               _opt_float(a.get("seconds"))),
            "connectivity_lost": lambda a: self._on_loop(ib.connectivity_lost, float(a["seconds"]),
                                                         bool(a.get("data_lost", True))),
            "delay_end_markers": lambda a: self._on_loop(ib.delay_end_markers, _opt_float(a.get("seconds"))),
            "reject_next": lambda a: self._on_loop(ib.reject_next_order, str(a.get("reason", "simulated reject"))),
            "partial_next": lambda a: self._on_loop(ib.fill_next_partially, float(a.get("fraction", 0.5))),
            "av_fail": lambda a: av.fail_next(int(a.get("n", 1)), status=int(a.get("status", 503))),
            "av_malformed": lambda a: av.malformed_next(int(a.get("n", 1))),
            "jump": lambda a: self.model.jump(str(a["symbol"]).upper(), float(a["pct"]) / 100.0),
            "informed_flow": lambda a: self.model.inject_informed_flow(
                str(a["symbol"]).upper(), self.clock.now(), float(a["seconds"]),
                1 if str(a.get("direction", "buy")).lower() == "buy" else -1),
            "restart_gateway": lambda a: self._on_loop(ib.restart_gateway, float(a.get("down", RESTART_DOWN_S))),
            "pin_quote": self._pin_quote,
            "unpin": self._unpin,
            "settle_now": lambda a: {"settled": ib.call(
                lambda: views.settlement_rows(ib.settle_now())).result(CTL_TIMEOUT_S)},
            **self._channel_handlers(),
        }

    def _channel_handlers(self) -> dict[str, Handler]:
        ch = self.channels
        return {
            "channel_fail": lambda a: ch.fail_next(str(a["channel"]), int(a.get("n", 1)), int(a["status"]),
                                                   _opt_str(a.get("target")), float(a.get("retry_after", 5.0))),
            "channel_timeout": lambda a: ch.timeout_next(str(a["channel"]), int(a.get("n", 1)),
                                                         _opt_str(a.get("target")),
                                                         float(a.get("seconds", DEFAULT_TIMEOUT_S))),
            "chat_not_found": lambda a: ch.chat_not_found(str(a["chat"])),
            "channel_secret": lambda a: ch.set_secret(str(a["name"]), str(a["secret"])),
            "channels_clear": lambda a: ch.clear(),
        }

    def _market_key(self, raw: object) -> MarketKey:
        """An option (or stock) conId the gateway has handed out, or one of its stock symbols."""
        key: MarketKey = raw if isinstance(raw, int) else str(raw).strip().upper()
        if isinstance(key, str) and key.isdigit():
            key = int(key)
        known = self.ib.call(lambda: self.ib.catalog.by_con_id(key) is not None if isinstance(key, int)
                             else key in self.model.symbols).result(CTL_TIMEOUT_S)
        if not known:
            raise ValueError(f"key: {raw!r} is neither a stock symbol of this simulator nor a conId it has handed out")
        return key

    def _pin_quote(self, a: Args) -> dict[str, Any]:
        bid, ask = float(a["bid"]), float(a["ask"])
        last = 0.5 * (bid + ask) if a.get("last") is None else float(a["last"])
        if not 0 <= bid <= ask or last < 0:
            raise ValueError(f"pin_quote: need 0 <= bid <= ask and last >= 0, got {bid}/{ask}/{last}")
        key = self._market_key(a["key"])
        self.ib.set_quote(key, bid, ask, last).result(CTL_TIMEOUT_S)
        return {"key": key, "last": last}

    def _unpin(self, a: Args) -> dict[str, Any]:
        key = self._market_key(a["key"])
        return {"key": key, "was_pinned": self.ib.unpin(key).result(CTL_TIMEOUT_S)}

    def _queries(self) -> dict[str, Query]:
        """The broker's orders, positions and executions, read on the gateway's loop."""
        ib, broker = self.ib, self.broker

        def on_loop(rows: Callable[[], list[dict[str, Any]]]) -> Query:
            return lambda: ib.call(rows).result(CTL_TIMEOUT_S)

        return {
            "orders": on_loop(lambda: [views.order_row(o) for o in broker.all_orders()]),
            "positions": on_loop(lambda: [views.position_row(p) for acct in broker.accounts
                                          for p in broker.positions(acct)]),
            "executions": on_loop(lambda: [views.execution_row(x) for x in broker.fills.all_records()]),
            "channels": self.channels.received,
        }

    def _stats(self) -> dict[str, Any]:
        return {"clock": self.clock.now().isoformat(), "speed": self.config.speed,
                "ib": self.ib.stats(), "alpha_vantage": self.av.stats(), "channels": self.channels.stats()}


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_str(value: object) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()

