"""One `qc analytics` cycle: read keys → qc.analytics → write keys, each task on its own cadence.

Per cycle (~1 s): new prints by XREAD from each stream's last id (into the VPIN window and the flow
tape), VPIN and book imbalance. Every 30 s: positioning, 0DTE skew, regime. Every 60 s: flow
clusters. A task failing for one symbol is logged and counted (``monitoring:errors``) and the others
go on; Redis errors propagate to the Worker, which backs off.

``once`` (cron, `qc analytics --once`, possibly beside the live worker): a task failure makes the run
exit 1 (``CycleIncomplete``), and a VPIN that would replace a more complete stored one (fewer buckets
in its window: a one-shot has only its warm start) is not written, so the live value stands.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from qc.analytics.codec import TOX_SERIES_MAXLEN, Imbalance, ToxSample, Vpin
from qc.analytics.cycle import flow_task, inputs, positioning_task, regime_task, warm
from qc.analytics.cycle.flow_task import TradeTape
from qc.analytics.imbalance import book_imbalance, microprice
from qc.analytics.regime import daily_vols
from qc.analytics.schedule import Schedule, Staggered, age_s
from qc.analytics.toxicity import VpinWindow
from qc.core import clock, keys
from qc.core.codec import Absent, finite_or_none
from qc.core.keys import Key
from qc.runtime.codec import CycleTimes
from qc.runtime.store import KEYS_PER_ROUND_TRIP, REDIS_ERRORS, Store
from qc.runtime.worker import CycleIncomplete

log = logging.getLogger(__name__)
NAME = "analytics"
PERIODS = {"vpin": 1.0, "imbalance": 1.0, "positioning": 30.0, "flow": 60.0}
STAGGERED = frozenset({"positioning", "flow"})  # per symbol, spread over their period (schedule.Staggered)
INPUT_STALE_S = 120.0


@dataclass
class SymbolState:
    vpin: VpinWindow = field(default_factory=VpinWindow)
    tape: TradeTape = field(default_factory=TradeTape)
    net_gex: float = math.nan
    warm_source: str = ""
    last_vpin: float | None = None  # this cycle's values, for the session series (None: not computed)
    last_imbalance: float | None = None


class AnalyticsCycle:
    """Callable ``cycle(now)`` for ``qc.runtime.worker.Worker``; holds the per-symbol windows between cycles."""

    def __init__(self, store: Store, symbols: tuple[str, ...], tasks: tuple[str, ...] | None = None,
                 once: bool = False) -> None:
        unknown = set(tasks or ()) - set(PERIODS)
        if unknown:
            raise ValueError(f"tasks: unknown {sorted(unknown)}; known: {', '.join(PERIODS)}")
        self.store, self.symbols = store, symbols
        self.state = {s: SymbolState() for s in symbols}
        wanted = {name: p for name, p in PERIODS.items() if tasks is None or name in tasks}
        self.schedule = Schedule({name: p for name, p in wanted.items() if name not in STAGGERED})
        self.staggered = {name: Staggered(p) for name, p in wanted.items() if name in STAGGERED}
        self.since: dict[str, str] = {}
        self.read_chain = inputs.ChainReader(store)
        self.once = once
        self.failed: list[str] = []
        self._writes: list[tuple[Key, Mapping[str, str]]] = []  # the 1-s tasks' hashes, written after the tasks
        self._books: dict[str, tuple[inputs.Book | Absent, float | None]] = {}

    @property
    def tasks(self) -> set[str]:
        """The tasks this worker runs (``--task`` restricts them): every symbol per cycle, or staggered."""
        return set(self.schedule.periods) | set(self.staggered)

    def __call__(self, now: datetime) -> None:
        self.failed = []
        started = clock.monotonic()
        if not self.since:
            self.warm_start(now)
        for sym, t in inputs.read_trades(self.store, self.since).items():
            self.state[sym].vpin.add_trades(t)
            self.state[sym].tape.add(t)
        tasks: dict[str, Callable[[str, datetime], None]] = {
            "vpin": self.vpin, "imbalance": self.imbalance, "positioning": self.positioning, "flow": self.flow}
        took: dict[str, float] = {}
        due = self.schedule.due(now.timestamp())
        self._writes = []
        if "imbalance" in due:
            self._books = inputs.books_and_quote_times(self.store, self.symbols)
        slices = dict.fromkeys(due, self.symbols)
        slices |= {task: tuple(syms) for task, stagger in self.staggered.items()
                   if (syms := stagger.due(now.timestamp(), self.symbols))}
        for task, symbols in slices.items():
            task_started = clock.monotonic()
            for sym in symbols:
                self._guarded(task, sym, tasks[task], now)
            took[task] = clock.monotonic() - task_started
        self.store.hset_many(self._writes)  # the 1-s tasks' hashes, every symbol's, in one round trip
        if not self.once and ("vpin" in took or "imbalance" in took):
            self._record_series(now)
        took["cycle"] = clock.monotonic() - started  # real time, every symbol: what `/metrics` shows
        self.store.hupdate(keys.cycle_times(NAME), CycleTimes.ran(took))
        if self.once and self.failed:
            raise CycleIncomplete(f"{len(self.failed)} task(s) failed: {'; '.join(self.failed)}")

    def _record_series(self, now: datetime) -> None:
        """This cycle's VPIN and imbalance into each symbol's session series (the dashboard's charts)."""
        append_tox_samples(self.store, {sym: ToxSample(now.timestamp(), st.last_vpin, st.last_imbalance)
                                        for sym, st in self.state.items()})

    def _guarded(self, task: str, symbol: str, run: Callable[[str, datetime], None], now: datetime) -> None:
        try:
            run(symbol, now)
        except REDIS_ERRORS:
            raise
        except Exception as exc:
            log.exception("%s %s failed; the other tasks go on", task, symbol)
            self.store.hincrby(keys.worker_errors(), NAME)
            self.failed.append(f"{task} {symbol} ({type(exc).__name__}: {exc})"[:200])

    def warm_start(self, now: datetime) -> None:
        """Past bars into the VPIN window and the regime history; stream ids to read after."""
        for sym in self.symbols:
            self.since[sym] = inputs.last_trade_id(self.store, sym)
            self._guarded("warm", sym, self._warm, now)

    def _warm(self, sym: str, now: datetime) -> None:
        bars, source = warm.past_bars(self.store, sym)
        st = self.state[sym]
        st.vpin.warm(bars)
        st.warm_source = source
        regime_task.record_history(self.store, sym, daily_vols(bars))
        log.info("%s warm start at %s: %d bars from %s", sym, now.isoformat(), len(bars), source)

    def vpin(self, sym: str, now: datetime) -> None:
        win = self.state[sym].vpin
        win.close_minutes(now.timestamp())
        r = win.reading()
        if self.once and not self._more_complete(sym, r.buckets_in_window):
            return
        age = age_s(now.timestamp(), win.last_input)
        stale = "no input yet" if age is None else (f"no trades for {age:.0f} s" if age > INPUT_STALE_S else "")
        self.state[sym].last_vpin = None if stale else finite_or_none(r.value)
        self._writes.append((keys.vpin(sym), Vpin(
            finite_or_none(r.value), finite_or_none(r.bucket_volume), r.buckets_in_window, r.mode, r.reason,
            self.state[sym].warm_source, now, age, stale).to_redis()))

    def _more_complete(self, sym: str, buckets: int) -> bool:
        """A one-shot's VPIN replaces the stored one only with at least as many buckets in its window."""
        key = keys.vpin(sym)
        stored = Vpin.from_redis(self.store.hgetall(key), key=key.name)
        if isinstance(stored, Vpin) and stored.buckets_in_window > buckets:
            log.info("vpin %s: this run has %d buckets, the stored value %d: kept", sym, buckets,
                     stored.buckets_in_window)
            return False
        return True

    def imbalance(self, sym: str, now: datetime) -> None:
        book, quoted = self._books[sym]  # read for every symbol at the cycle's start, in one round trip
        age = age_s(now.timestamp(), quoted)
        if isinstance(book, Absent):
            self.state[sym].last_imbalance = None
            self._writes.append((keys.book_imbalance(sym),
                                 Imbalance(None, None, None, None, now, age, str(book)).to_redis()))
            return
        stale = f"book {age:.0f} s old" if age is not None and age > INPUT_STALE_S else ""
        value = finite_or_none(float(book_imbalance(book.bid_sz, book.ask_sz)))
        self.state[sym].last_imbalance = None if stale else value
        self._writes.append((keys.book_imbalance(sym), Imbalance(
            value,
            finite_or_none(float(microprice(book.bid_px[0], book.bid_sz[0], book.ask_px[0], book.ask_sz[0]))),
            float(book.ask_px[0] - book.bid_px[0]), int(book.bid_sz.size + book.ask_sz.size),
            now, age, stale).to_redis()))

    def positioning(self, sym: str, now: datetime) -> None:
        """Every 30 s, chain changed or not: revalued at the live spot (see qc.analytics.chain_input)."""
        chain, quote = self.read_chain(sym), inputs.read_quote(self.store, sym)
        if isinstance(chain, Absent):
            reason = (f"no option chain in Redis ({chain.key}): is `qc chains` running?" if chain.reason == "missing"
                      else f"option chain unusable ({chain}): is `qc chains` up to date?")
            log.warning("%s: %s", sym, reason)
            positioning_task.write_missing(self.store, sym, now, reason)
            return
        snap = positioning_task.compute(chain, quote, now)
        history = regime_task.history_vols(self.store, sym)
        regime = regime_task.regime_value(snap, self.state[sym].vpin.bars(), history, now)
        self.store.hset(keys.regime(sym), regime.to_redis())
        positioning_task.write(self.store, sym, snap, positioning_task.gex_snapshot(snap, now, regime))
        self.state[sym].net_gex = snap.pos.gex_usd_per_1pct

    def flow(self, sym: str, now: datetime) -> None:
        flow_task.run(self.store, sym, self.state[sym].tape, self.state[sym].net_gex, now)


def append_tox_samples(store: Store, samples: Mapping[str, ToxSample]) -> None:
    """One entry per symbol into ``analytics:{sym}:tox:series``, capped at a session, in pipelines of a few symbols.

    A sample with neither figure (nothing computed, or both inputs stale) is not written: the chart shows a gap.
    """
    due = [(sym, sample) for sym, sample in samples.items() if sample.vpin is not None or sample.imbalance is not None]
    for start in range(0, len(due), KEYS_PER_ROUND_TRIP):  # Redis serves `qc stream` between the rounds
        pipe = store.client.pipeline(transaction=False)
        for sym, sample in due[start:start + KEYS_PER_ROUND_TRIP]:
            key = keys.toxicity_series(sym)
            pipe.xadd(key.name, sample.to_redis(), maxlen=TOX_SERIES_MAXLEN, approximate=True)
            pipe.expire(key.name, key.ttl_s)
        pipe.execute()
