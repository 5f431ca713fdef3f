"""`qc up` as an operator runs it: embedded Redis, supervision, restarts, ordered stop, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import redis
import requests

from qc.core import clock
from qc.core.config import Settings
from qc.runtime.store import connect, redis_server_binary
from qc.runtime.supervisor import ChildSpec, Supervisor

from .conftest import eventually, free_port


def embedded_client(tmp_path: Path, port: int) -> redis.Redis:
    """A client of `qc up`'s embedded Redis as qc itself connects (its credentials, if any, from the data dir)."""
    client: redis.Redis = connect(Settings(data_dir=str(tmp_path / "var"), embedded_redis_port=port)).client
    return client


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_qc_up_end_to_end(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "QC_DATA_DIR": str(tmp_path / "var"), "QC_EMBEDDED_REDIS_PORT": str(port),
           "QC_SIM_IB_PORT": str(free_port()), "QC_SIM_AV_PORT": str(free_port()),
           "QC_SIM_CTL_PORT": str(free_port()), "QC_SIM_CHANNELS_PORT": str(free_port()),
           "QC_DASHBOARD_PORT": str(free_port()), "QC_SIM_START": "2026-11-24 15:40", "QC_SIM_SPEED": "10"}
    up = subprocess.Popen([sys.executable, "-m", "qc", "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = embedded_client(tmp_path, port)

    def beat() -> float:
        try:
            return float(client.get("heartbeat:supervisor") or 0)
        except redis.ConnectionError:
            return 0.0

    def sim_alive() -> bool:
        try:
            return bool(client.get("heartbeat:sim")) and bool(client.hgetall("monitoring:sim:clock"))
        except redis.ConnectionError:
            return False

    try:
        eventually(lambda: beat() > 0, timeout_s=30)
        eventually(sim_alive, timeout_s=30)  # nothing configured: the simulator runs, first

        def runbook_1_and_2() -> bool:  # DESIGN.md §4: ingestion feeds them from the simulator
            try:
                return bool(client.get("heartbeat:ibkr_ingestion")) and client.hlen("market:SPY:book") == 20
            except redis.ConnectionError:
                return False

        eventually(runbook_1_and_2, timeout_s=60)
        eventually(lambda: client.exists("options:SPY:chain") == 1, timeout_s=60)

        def runbook_3_and_4() -> bool:  # `qc analytics`: VPIN warm from past bars, GEX from the chain
            try:
                vpin, gex = client.hget("analytics:SPY:vpin", "value"), client.hget("analytics:SPY:gex", "total")
                return bool(vpin) and bool(gex)
            except redis.ConnectionError:
                return False

        eventually(runbook_3_and_4, timeout_s=60)
        assert 0.0 <= float(client.hget("analytics:SPY:vpin", "value") or "nan") <= 1.0
        eventually(lambda: client.exists("heartbeat:signals") == 1, timeout_s=60)  # `qc signals` has cycled
        eventually(lambda: client.exists("heartbeat:distribute") == 1, timeout_s=60)  # on the simulator's channels
        page = requests.get(f"http://127.0.0.1:{env['QC_DASHBOARD_PORT']}/api/panels", timeout=30)
        assert page.status_code == 200 and "symbol:SPY" in page.json()  # `qc dashboard`, on loopback
        cli = redis_server_binary().with_name("redis-cli")
        password = (tmp_path / "var" / "redis" / "password").read_text().strip()
        llen = subprocess.run([str(cli), "-p", str(port), "llen", "signals:pending:SPY"], capture_output=True,
                              text=True, timeout=30, check=False, env={**os.environ, "REDISCLI_AUTH": password})
        assert llen.returncode == 0 and llen.stdout.strip().isdigit(), llen  # runbook line 5: the pending count
        statuses: list[subprocess.CompletedProcess[str]] = []

        def healthy() -> bool:  # every child has beaten once (`qc chains`' first cycle fetches every chain first)
            statuses.append(subprocess.run([sys.executable, "-m", "qc", "status", "--json"], cwd=tmp_path, env=env,
                                           capture_output=True, text=True, timeout=30, check=False))
            return statuses[-1].returncode == 0

        try:
            eventually(healthy, timeout_s=90, every_s=1.0)
        except AssertionError:
            raise AssertionError(statuses[-1].stdout + statuses[-1].stderr) from None
        pidfile = tmp_path / "var" / "redis" / "redis.pid"
        first_pid = int(pidfile.read_text())
        os.kill(first_pid, signal.SIGKILL)  # the supervisor must bring Redis back by itself
        eventually(lambda: pidfile.exists() and int(pidfile.read_text() or 0) not in (0, first_pid), 20)
        killed_at = clock.wall_epoch()
        eventually(lambda: beat() > killed_at, timeout_s=20)
        redis_pid = int(pidfile.read_text())
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.communicate()
    assert up.returncode == 0, err
    assert "qc status" in out and f"127.0.0.1:{port}" in out
    assert f"dashboard: http://127.0.0.1:{env['QC_DASHBOARD_PORT']}/" in out
    assert "no IB Gateway configured: simulated one" in out
    assert "qc distribute posts to the simulator's Telegram, webhook and X" in out
    assert not alive(redis_pid)
    assert not alive(first_pid)


def test_supervisor_restarts_a_dying_child_with_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    script = f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"
    sup = Supervisor([ChildSpec("crasher", (sys.executable, "-c", script))], os.environ,
                     connect(Settings(redis_url="redis://127.0.0.1:1")))
    sup.start()
    try:
        def polled_starts() -> int:
            sup.poll()
            return len(marker.read_text()) if marker.exists() else 0

        eventually(lambda: polled_starts() >= 3, timeout_s=20)
        child = sup.children[0]
        assert child.restarts >= 2 and child.last_exit == 3
    finally:
        sup.stop()


def test_supervisor_stops_children_newest_first_and_kills_stragglers(tmp_path: Path) -> None:
    stubborn = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True: time.sleep(1)"
    polite = "import time\nwhile True: time.sleep(1)"
    sup = Supervisor([ChildSpec("polite", (sys.executable, "-c", polite)),
                      ChildSpec("stubborn", (sys.executable, "-c", stubborn))], os.environ,
                     connect(Settings(redis_url="redis://127.0.0.1:1")))
    sup.start()
    pids = [c.process.pid for c in sup.children if c.process]
    clock.real_sleep(0.3)  # let the stubborn child install its handler
    sup.stop(timeout_s=1.0)
    assert not any(alive(pid) for pid in pids)
    assert [c.process.returncode for c in sup.children if c.process] == [-signal.SIGTERM, -signal.SIGKILL]


def test_a_killed_qc_up_leaves_no_orphan(tmp_path: Path) -> None:
    """SIGKILL gives `qc up` no chance to stop anything: Linux's parent-death signal must do it."""
    port = free_port()
    env = {**os.environ, "QC_DATA_DIR": str(tmp_path / "var"), "QC_EMBEDDED_REDIS_PORT": str(port),
           "QC_IB_HOST": "127.0.0.1", "QC_IB_PORT": str(free_port()), "QC_ALPHA_VANTAGE_API_KEY": "k",
           "QC_ALPHA_VANTAGE_URL": f"http://127.0.0.1:{free_port()}/query",  # configured: no simulator
           "QC_DASHBOARD_PORT": str(free_port())}
    up = subprocess.Popen([sys.executable, "-m", "qc", "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = embedded_client(tmp_path, port)

    def children() -> list[int]:
        try:
            states = client.hgetall("monitoring:supervisor")
        except redis.ConnectionError:
            return []
        return [json.loads(v)["pid"] for v in states.values() if json.loads(v)["pid"]]

    try:
        # stream, chains, analytics, signals, risk, dashboard: no simulator, so no channel to distribute to either
        eventually(lambda: len(children()) == 6, timeout_s=30)
        pids = [*children(), int((tmp_path / "var" / "redis" / "redis.pid").read_text())]
    finally:
        up.kill()
        up.wait()
    eventually(lambda: not any(alive(pid) for pid in pids), timeout_s=20)
