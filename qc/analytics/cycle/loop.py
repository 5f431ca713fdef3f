"""One `qc analytics` cycle: read keys → qc.analytics → write keys, each task on its own cadence.

Per cycle (~1 s): new prints by XREAD from each stream's last id (into the VPIN window and the flow
tape), VPIN and book imbalance. Every 30 s: positioning, 0DTE skew, regime. Every 60 s: flow
clusters. A task failing for one symbol is logged and counted (``monitoring:errors``) and the others
go on; Redis errors propagate to the Worker, which backs off.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from qc.analytics.cycle import flow_task, inputs, positioning_task, regime_task, warm
from qc.analytics.cycle.flow_task import TradeTape
from qc.analytics.imbalance import book_imbalance, microprice
from qc.analytics.schedule import Schedule, age_s, fmt_fields
from qc.analytics.toxicity import VpinWindow
from qc.core import keys
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)
NAME = "analytics"
PERIODS = {"vpin": 1.0, "imbalance": 1.0, "positioning": 30.0, "flow": 60.0}
INPUT_STALE_S = 120.0


@dataclass
class SymbolState:
    vpin: VpinWindow = field(default_factory=VpinWindow)
    tape: TradeTape = field(default_factory=TradeTape)
    net_gex: float = math.nan
    warm_source: str = ""


class AnalyticsCycle:
    """Callable ``cycle(now)`` for ``qc.runtime.worker.Worker``; holds the per-symbol windows between cycles."""

    def __init__(self, store: Store, symbols: tuple[str, ...], av: warm.BarSource | None = None,
                 tasks: tuple[str, ...] | None = None) -> None:
        unknown = set(tasks or ()) - set(PERIODS)
        if unknown:
            raise ValueError(f"tasks: unknown {sorted(unknown)}; known: {', '.join(PERIODS)}")
        self.store, self.symbols, self.av = store, symbols, av
        self.state = {s: SymbolState() for s in symbols}
        self.schedule = Schedule({name: p for name, p in PERIODS.items() if tasks is None or name in tasks})
        self.since: dict[str, str] = {}

    def __call__(self, now: datetime) -> None:
        if not self.since:
            self.warm_start(now)
        for sym, t in inputs.read_trades(self.store, self.since).items():
            self.state[sym].vpin.add_trades(t)
            self.state[sym].tape.add(t)
        tasks: dict[str, Callable[[str, datetime], None]] = {
            "vpin": self.vpin, "imbalance": self.imbalance, "positioning": self.positioning, "flow": self.flow}
        for task in self.schedule.due(now.timestamp()):
            for sym in self.symbols:
                self._guarded(task, sym, tasks[task], now)

    def _guarded(self, task: str, symbol: str, run: Callable[[str, datetime], None], now: datetime) -> None:
        try:
            run(symbol, now)
        except REDIS_ERRORS:
            raise
        except Exception:
            log.exception("%s %s failed; the other tasks go on", task, symbol)
            self.store.hincrby(keys.worker_errors(), NAME)

    def warm_start(self, now: datetime) -> None:
        """Past bars into the VPIN window and the regime history; stream ids to read after."""
        for sym in self.symbols:
            self.since[sym] = inputs.last_trade_id(self.store, sym)
            self._guarded("warm", sym, self._warm, now)

    def _warm(self, sym: str, now: datetime) -> None:
        bars, source = warm.past_bars(self.store, sym, self.av)
        st = self.state[sym]
        st.vpin.warm(bars)
        st.warm_source = source
        regime_task.record_history(self.store, sym, regime_task.daily_vols(bars))
        log.info("%s warm start at %s: %d bars from %s", sym, now.isoformat(), len(bars), source)

    def vpin(self, sym: str, now: datetime) -> None:
        win = self.state[sym].vpin
        win.close_minutes(now.timestamp())
        r = win.reading()
        age = age_s(now.timestamp(), win.last_input)
        stale = "no input yet" if age is None else (f"no trades for {age:.0f} s" if age > INPUT_STALE_S else "")
        self.store.hset(keys.vpin(sym), fmt_fields({
            "value": r.value, "bucket_volume": r.bucket_volume, "buckets_in_window": r.buckets_in_window,
            "mode": r.mode, "reason": r.reason, "warm_source": self.state[sym].warm_source,
            "as_of": now.isoformat(), "input_age_s": age, "stale": "1" if stale else "0", "stale_reason": stale}))

    def imbalance(self, sym: str, now: datetime) -> None:
        book = inputs.read_book(self.store, sym)
        age = age_s(now.timestamp(), inputs.quote_as_of(self.store, sym))
        if book is None:
            self.store.hset(keys.book_imbalance(sym), {"imbalance": "", "microprice": "", "stale": "1",
                                                       "stale_reason": "book missing or one-sided",
                                                       "as_of": now.isoformat()})
            return
        stale = f"book {age:.0f} s old" if age is not None and age > INPUT_STALE_S else ""
        self.store.hset(keys.book_imbalance(sym), fmt_fields({
            "imbalance": float(book_imbalance(book.bid_sz, book.ask_sz)),
            "microprice": float(microprice(book.bid_px[0], book.bid_sz[0], book.ask_px[0], book.ask_sz[0])),
            "spread": float(book.ask_px[0] - book.bid_px[0]), "levels": int(book.bid_sz.size + book.ask_sz.size),
            "as_of": now.isoformat(), "input_age_s": age, "stale": "1" if stale else "0", "stale_reason": stale}))

    def positioning(self, sym: str, now: datetime) -> None:
        inp = inputs.read_chain(self.store, sym, now)
        if inp is None:
            reason = f"no option chain in Redis ({keys.option_chain(sym).name}): is `qc chains` running?"
            log.warning("%s: %s", sym, reason)
            positioning_task.write_missing(self.store, sym, now, reason)
            return
        snap = positioning_task.compute(inp)
        history = regime_task.history_vols(self.store, sym)
        regime = regime_task.regime_fields(snap, self.state[sym].vpin.bars(), history, now)
        self.store.hset(keys.regime(sym), regime)
        positioning_task.write(self.store, sym, snap, positioning_task.gex_fields(snap, inp, now, regime))
        self.state[sym].net_gex = snap.pos.gex_usd_per_1pct

    def flow(self, sym: str, now: datetime) -> None:
        flow_task.run(self.store, sym, self.state[sym].tape, self.state[sym].net_gex, now)
