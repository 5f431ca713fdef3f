"""`qc analytics --once` beside the live worker (keeps a fuller VPIN; a failed task is exit 1); crossed books."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from qc.analytics.cycle.inputs import read_book
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.core.clock import FakeClock
from qc.core.codec import Absent
from qc.ingest.codec import Book, DepthLevel
from qc.runtime.store import Store
from qc.runtime.worker import Worker
from qc.sim.market.market import SimMarket

from .analytics_harness import put_bars
from .conftest import RedisServer

START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 New York


def test_once_keeps_the_live_workers_fuller_vpin(store: Store, redis_server: RedisServer, tmp_path: Path) -> None:
    market = SimMarket(START)
    put_bars(store, market, "SPY", START, 2 * 390)
    AnalyticsCycle(store, ("SPY",))(START)  # the live worker: warmed on two sessions of bars
    live = store.hgetall(keys.vpin("SPY"))
    assert int(live["buckets_in_window"]) >= 40
    store.client.ltrim(keys.bars_1min("SPY").name, -20, -1)  # what a later one-shot finds: 20 minutes
    got = subprocess.run([sys.executable, "-m", "qc", "analytics", "SPY", "--once", "--task", "vpin"], cwd=tmp_path,
                         env={**os.environ, "QC_REDIS_URL": redis_server.url}, capture_output=True, text=True,
                         timeout=120, check=False)
    assert got.returncode == 0, got.stderr
    assert store.hgetall(keys.vpin("SPY")) == live  # the live value stands
    assert "the stored value" in got.stderr
    assert store.get(keys.heartbeat("analytics")) is None  # a one-shot beats nobody's heartbeat


def test_once_exits_1_when_a_task_failed_and_the_loop_goes_on(store: Store) -> None:
    market = SimMarket(START)
    put_bars(store, market, "SPY", START, 390)
    cycle = AnalyticsCycle(store, ("SPY", "QQQ"), ("vpin",), once=True)

    def broken(sym: str, now: datetime) -> None:
        if sym == "SPY":
            raise ValueError("spot=inf")
        AnalyticsCycle.vpin(cycle, sym, now)

    cycle.vpin = broken  # type: ignore[method-assign]  # one task failing for one symbol
    worker = Worker("analytics", cycle, store, FakeClock(START), 1.0)
    assert worker.run(once=True) == 1
    assert store.hgetall(keys.vpin("QQQ"))  # the other symbol still got its value
    assert int(store.hget(keys.worker_errors(), "analytics") or 0) == 1
    long_running = AnalyticsCycle(store, ("SPY",), ("vpin",))
    long_running.vpin = broken  # type: ignore[method-assign]
    long_running(START)  # a long-running worker logs, counts and goes on: no exception



def test_a_crossed_book_gives_no_imbalance(store: Store) -> None:
    crossed = Book((DepthLevel(100.02, 300, "ARCA"), DepthLevel(99.99, 100, "NSDQ")),
                   (DepthLevel(100.01, 200, "NSDQ"), DepthLevel(100.03, 100, "ARCA")))
    store.hset(keys.book("SPY"), crossed.to_redis())
    got = read_book(store, "SPY")
    assert isinstance(got, Absent) and "crossed" in got.reason
    store.delete(keys.book("SPY"))
    store.hset(keys.book("SPY"), Book((DepthLevel(100.0, 300, "ARCA"),), (DepthLevel(100.01, 200, "NSDQ"),)).to_redis())
    assert not isinstance(read_book(store, "SPY"), Absent)
