"""`qc chains` as operators run it: real subprocesses, the simulator's AV server, a real redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qc.core import clock, keys
from qc.ingest.cycle.ratelimit import BucketShape
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import Store

from .av_chains_harness import NOW, ScriptedAV, sim_market
from .conftest import RedisServer

RPM = 12
WINDOW_S = 2.0


def qc_env(redis_url: str, av_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return {**env, "QC_REDIS_URL": redis_url, "QC_ALPHA_VANTAGE_URL": av_url, **extra}


def chains(env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "qc", "chains", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def av() -> Iterator[ScriptedAV]:
    server = ScriptedAV(sim_market(), rpm=RPM, window_s=WINDOW_S)
    server.start()
    yield server
    server.stop()


def test_missing_api_key_is_one_line_naming_the_variable(redis_server: RedisServer, av: ScriptedAV,
                                                         tmp_path: Path) -> None:
    proc = chains(qc_env(redis_server.url, av.url), tmp_path, "SPY", "--once")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "QC_ALPHA_VANTAGE_API_KEY" in lines[0] and "is not set" in lines[0]
    assert av.stats()["requests"] == 0


def test_two_processes_sharing_one_budget_never_exceed_it(redis_server: RedisServer, store: Store, av: ScriptedAV,
                                                          tmp_path: Path) -> None:
    # the simulator's clock, so both workers ask for the expiries the simulated market lists
    anchor = SimClockAnchor(clock.wall_epoch(), NOW.timestamp(), 1.0, ib_port=4002, av_port=av.port)
    store.hset(keys.sim_clock(), anchor.to_redis())
    env = qc_env(redis_server.url, av.url, QC_ALPHA_VANTAGE_API_KEY="K", QC_ALPHA_VANTAGE_RPM=str(RPM))
    procs = [chains(env, tmp_path, "SPY", "QQQ", "IWM", "--once", "--rate-window-s", str(WINDOW_S)) for _ in range(2)]
    results = [p.communicate(timeout=90) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    stats = av.stats()
    # per process and symbol: GLOBAL_QUOTE (no IB quote), 4 expiries, news
    assert stats["by_function"] == {"GLOBAL_QUOTE": 6, "REALTIME_OPTIONS": 24, "NEWS_SENTIMENT": 6}
    assert "throttled" not in stats["by_outcome"]
    shape = BucketShape(RPM, WINDOW_S)
    assert stats["max_accepted_per_window"]["K"] <= RPM
    assert stats["max_accepted_per_window"]["K"] <= shape.budget + 1  # one of slack for HTTP latency jitter
    for symbol in ("SPY", "QQQ", "IWM"):
        assert store.get(keys.option_chain(symbol)) is not None
    assert store.hget(keys.alpha_vantage_metrics(), "requests") == "36"


def test_a_key_without_the_options_plan_exits_1_naming_the_plan(redis_server: RedisServer, store: Store,
                                                                 tmp_path: Path) -> None:
    server = ScriptedAV(sim_market(), not_entitled_keys={"freekey"})
    server.start()
    try:
        env = qc_env(redis_server.url, server.url, QC_ALPHA_VANTAGE_API_KEY="freekey")
        proc = chains(env, tmp_path, "SPY", "QQQ", "--once")
        _, err = proc.communicate(timeout=60)
    finally:
        server.stop()
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("Error: ") and "600 or 1200 requests-per-minute" in last
    assert "freekey" not in err
    assert server.stats()["by_function"].get("REALTIME_OPTIONS") == 1  # fatal: QQQ is not tried
    assert store.hget(keys.alpha_vantage_metrics(), "not_entitled") == "1"
