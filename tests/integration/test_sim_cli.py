"""`qc sim` as an operator runs it: listeners announced, clock anchor in Redis, faults from the shell."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests
from ib_async import IB, MarketOrder, Option, Stock

from qc.core import clock, keys
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


def _launch(redis_server: RedisServer, tmp_path: Path, speed: str) -> Iterator[RunningSim]:
    env = {**os.environ, "QC_REDIS_URL": redis_server.url}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port",
                             "0", "--start", "2026-11-24 15:40", "--speed", speed, "--seed", "7"],
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


@pytest.fixture
def sim(redis_server: RedisServer, store: Store, tmp_path: Path) -> Iterator[RunningSim]:
    yield from _launch(redis_server, tmp_path, "20")


@pytest.fixture
def slow_sim(redis_server: RedisServer, store: Store, tmp_path: Path) -> Iterator[RunningSim]:
    """Real-time speed: 20 minutes before the close, so nothing settles unless a test asks."""
    yield from _launch(redis_server, tmp_path, "1")


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


def _ctl_json(sim: RunningSim, *args: str) -> dict[str, Any]:
    done = sim.ctl(*args)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def test_ctl_pins_settles_restarts_and_shows_the_broker(slow_sim: RunningSim) -> None:
    sim = slow_sim
    assert _ctl_json(sim, "orders", "--json") == {"orders": []}
    assert sim.ctl("pin-quote", "SPY", "2", "1").returncode == 2  # bid above ask
    assert sim.ctl("pin-quote", "S P", "1", "2").returncode == 2
    assert sim.ctl("restart-gateway", "--down", "-1").returncode == 2
    unknown = sim.ctl("pin-quote", "99", "1", "2")
    assert unknown.returncode == 1 and "conId" in unknown.stderr

    async def buy_a_same_day_call() -> tuple[int, float, int, bool, float, float]:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port("ib"), clientId=7, timeout=10)
        spy = Stock("SPY", "SMART", "USD")
        await ib.qualifyContractsAsync(spy)
        [chain] = [c for c in await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
        [ticker] = await ib.reqTickersAsync(spy)
        strike = min(chain.strikes, key=lambda k: abs(k - ticker.marketPrice()))
        call = Option("SPY", "20261124", strike, "C", "SMART")
        await ib.qualifyContractsAsync(call)
        await asyncio.to_thread(_ctl_json, sim, "pin-quote", str(call.conId), "5.00", "5.10")
        await asyncio.to_thread(_ctl_json, sim, "pin-quote", "SPY", str(strike + 4.99), str(strike + 5.01))
        filled, gone = asyncio.Event(), asyncio.Event()
        ib.disconnectedEvent += gone.set
        sent = clock.wall_epoch()
        trade = ib.placeOrder(call, MarketOrder("BUY", 1, orderRef="qc-cli"))
        trade.filledEvent += lambda _trade: filled.set()
        await filled.wait()
        acked = clock.wall_epoch()
        await asyncio.to_thread(_ctl_json, sim, "restart-gateway", "--down", "0.5")
        await gone.wait()  # the restart dropped the socket
        return call.conId, strike, spy.conId, trade.orderStatus.avgFillPrice == 5.10, sent, acked

    con_id, strike, spy_id, at_ask, sent, acked = asyncio.run(asyncio.wait_for(buy_a_same_day_call(), 60))
    assert at_ask
    [order] = _ctl_json(sim, "orders", "--json")["orders"]
    assert (order["orderRef"], order["status"], order["conId"], order["clientId"]) == ("qc-cli", "Filled", con_id, 7)
    assert order["permId"] > 0 and order["filled"] == 1 and order["trailStopPrice"] is None
    assert isinstance(order["receivedAt"], float) and sent <= order["receivedAt"] <= acked  # when its bytes came
    assert _ctl_json(sim, "positions", "--json")["positions"][0]["qty"] == 1
    assert _ctl_json(sim, "stats")["ib"]["restarts"] == 1

    settled = _ctl_json(sim, "settle-now")["settled"]
    assert [(r["conId"], r["qty"], r["outcome"], r["shares"]) for r in settled] == [(con_id, 1, "exercised", 100)]
    [stock] = _ctl_json(sim, "positions", "--json")["positions"]
    assert (stock["conId"], stock["secType"], stock["qty"], stock["avgCost"]) == (spy_id, "STK", 100, strike)
    rows = _ctl_json(sim, "executions", "--json")["executions"]
    assert [(r["orderId"] > 0, r["orderRef"], r["conId"], r["price"]) for r in rows] == [
        (True, "qc-cli", con_id, 5.10), (False, "", con_id, 0.0), (False, "", spy_id, strike)]
    assert _ctl_json(sim, "unpin", "SPY")["was_pinned"] is True
    table = sim.ctl("orders")
    assert table.returncode == 0 and "qc-cli" in table.stdout and "1 orders" in table.stdout
