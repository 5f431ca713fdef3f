"""`qc sim` as an operator runs it: listeners announced, clock anchor in Redis, faults from the shell."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from ib_async import IB

from qc.core import keys
from qc.core.clock import SimClock, SystemClock
from qc.core.config import Settings
from qc.runtime.simclock import clock_for
from qc.runtime.store import Store

from .conftest import RedisServer, eventually

START_UTC = datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc)  # "2026-11-24 15:40" New York


class RunningSim:
    def __init__(self, proc: subprocess.Popen[str], lines: list[str]) -> None:
        self.proc = proc
        self.lines = lines

    def port(self, label: str) -> int:
        line = next(line for line in self.lines if line.startswith(label))
        return int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", str(self.port("control")),
                               *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def sim(redis_server: RedisServer, store: Store, tmp_path: Path) -> Iterator[RunningSim]:
    env = {**os.environ, "QC_REDIS_URL": redis_server.url}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port",
                             "0", "--start", "2026-11-24 15:40", "--speed", "20", "--seed", "7"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    while len(lines) < 4:
        line = proc.stdout.readline()
        assert line, f"qc sim exited early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line.strip())
    running = RunningSim(proc, lines)
    yield running
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def test_announces_each_listener_and_publishes_its_clock(sim: RunningSim, store: Store) -> None:
    assert [line.split()[0] for line in sim.lines] == ["ib", "alpha", "control", "clock"]
    assert "2026-11-24 15:40:00 New York at 20x" in sim.lines[3]
    eventually(lambda: store.hgetall(keys.sim_clock()))
    chosen = clock_for(store, Settings(ib_port=sim.port("ib")), uses=("ib",))
    assert isinstance(chosen, SimClock)
    assert isinstance(clock_for(store, Settings(ib_port=sim.port("ib") + 1)), SystemClock)  # another gateway
    assert 0 <= chosen.epoch() - START_UTC.timestamp() < 600
    eventually(lambda: store.get(keys.heartbeat("sim")))


def test_ib_and_alpha_vantage_answer_with_simulated_time(sim: RunningSim) -> None:
    async def current_time() -> datetime:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port("ib"), clientId=5, timeout=10)
        try:
            return await ib.reqCurrentTimeAsync()
        finally:
            ib.disconnect()

    now = asyncio.run(current_time())
    assert 0 <= (now - START_UTC).total_seconds() < 600
    quote = requests.get(f"http://127.0.0.1:{sim.port('alpha')}/query",
                         params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": "k"}, timeout=30).json()
    assert quote["Global Quote"]["07. latest trading day"] == "2026-11-24"


def test_ctl_injects_faults_and_rejects_bad_ones(sim: RunningSim) -> None:
    done = sim.ctl("drop-sockets")
    assert done.returncode == 0, done.stderr
    assert '"fault": "drop_sockets"' in done.stdout
    av_fail = sim.ctl("av-fail", "1")
    assert av_fail.returncode == 0
    response = requests.get(f"http://127.0.0.1:{sim.port('alpha')}/query",
                            params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": "k"}, timeout=30)
    assert response.status_code == 503
    assert sim.ctl("silence", "SPY", "nonsense").returncode == 2
    stats = sim.ctl("stats")
    assert '"alpha_vantage"' in stats.stdout


def test_sigterm_stops_cleanly_and_withdraws_the_anchor(sim: RunningSim, store: Store) -> None:
    eventually(lambda: store.hgetall(keys.sim_clock()))
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.proc.wait(timeout=30) == 0
    assert store.hgetall(keys.sim_clock()) == {}
    assert store.get(keys.heartbeat("sim")) is None


def test_ctl_without_a_simulator_is_one_line_exit_1(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qc", "sim", "ctl", "--ctl-port", "1", "drop-sockets"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: no simulator control endpoint at http://127.0.0.1:1/fault (is `qc sim` running? check --ctl-port)"]


def test_without_qc_redis_url_it_writes_nothing_into_the_redis_on_the_default_port(redis_server: RedisServer,
                                                                                  store: Store,
                                                                                  tmp_path: Path) -> None:
    # the "default port" here is the embedded port the settings would use; another stack's Redis sits on it
    env = {k: v for k, v in os.environ.items() if k != "QC_REDIS_URL"}
    env["QC_EMBEDDED_REDIS_PORT"] = str(redis_server.port)
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port",
                             "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        notice = proc.stderr.readline()
        assert "clock anchor is not published" in notice
        lines = [proc.stdout.readline() for _ in range(4)]  # every listener up: the publisher would be running
        assert lines[3].startswith("clock"), lines
        assert store.client.keys("*") == []
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert store.client.keys("*") == []
