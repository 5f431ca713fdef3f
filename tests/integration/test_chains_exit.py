"""`qc chains --once` tells cron whether it did its job: real subprocesses, loopback AV, a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qc.core import clock, keys
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import Store

from .av_chains_harness import NOW, ScriptedAV, sim_market
from .conftest import RedisServer


def run(redis_url: str, av_url: str, cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    env |= {"QC_REDIS_URL": redis_url, "QC_ALPHA_VANTAGE_URL": av_url, "QC_ALPHA_VANTAGE_API_KEY": "K", **extra}
    return subprocess.run([sys.executable, "-m", "qc", "chains", *args, "--once"], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def av() -> Iterator[ScriptedAV]:
    server = ScriptedAV(sim_market(), rpm=1000)
    server.start()
    yield server
    server.stop()


def simulated_clock(store: Store, av: ScriptedAV) -> None:
    """The simulator's clock, so the command asks for the expiries the simulated market lists."""
    anchor = SimClockAnchor(clock.wall_epoch(), NOW.timestamp(), 1.0, ib_port=4002, av_port=av.port)
    store.hset(keys.sim_clock(), anchor.to_redis())


def test_every_request_failing_with_404_exits_1_with_one_line(redis_server: RedisServer, store: Store,
                                                              av: ScriptedAV, tmp_path: Path) -> None:
    wrong = av.url.replace("/query", "/v1/query")  # a wrong QC_ALPHA_VANTAGE_URL: the server answers 404
    done = run(redis_server.url, wrong, tmp_path, "SPY", QC_LOG_LEVEL="ERROR")
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0] == ("Error: no chain stored for SPY; every one of 1 Alpha Vantage requests failed (is "
                        "QC_ALPHA_VANTAGE_URL right?) (SPY chain: Alpha Vantage REALTIME_OPTIONS SPY: http_error "
                        "(HTTP 404))")  # news is not asked of a provider that is down
    assert store.get(keys.option_chain("SPY")) is None
    assert store.hget(keys.alpha_vantage_metrics(), "http_error") == "1"


def test_a_partial_success_exits_1_naming_what_failed(redis_server: RedisServer, store: Store, av: ScriptedAV,
                                                      tmp_path: Path) -> None:
    simulated_clock(store, av)
    done = run(redis_server.url, av.url, tmp_path, "SPY", "ZZZZ")
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr[-2000:]
    assert last.startswith("Error: chains stored for SPY, not for ZZZZ (ZZZZ chain: Alpha Vantage REALTIME_OPTIONS "
                           "ZZZZ: bad_request"), last
    assert "ZZZZ news" in last and "SPY chain" not in last
    assert store.get(keys.option_chain("SPY")) is not None and store.get(keys.option_chain("ZZZZ")) is None


def test_a_full_success_exits_0(redis_server: RedisServer, store: Store, av: ScriptedAV, tmp_path: Path) -> None:
    simulated_clock(store, av)
    done = run(redis_server.url, av.url, tmp_path, "SPY", "QQQ")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Error" not in done.stderr
    assert all(store.get(keys.option_chain(s)) is not None for s in ("SPY", "QQQ"))
