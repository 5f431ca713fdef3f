"""`qc ps` and `qc restart`: a real `qc up` (and real supervisors of small children) over a real Redis."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from qc.cli import cli
from qc.core import clock, keys
from qc.core.config import Settings
from qc.runtime import supervisor as supervision
from qc.runtime.codec import ChildStatus, Heartbeat, SupervisorChildren, WorkerEntry, WorkerRegistry
from qc.runtime.store import Store, connect
from qc.runtime.supervisor import (
    RESTART,
    SUPERVISOR_NAME,
    ChildSpec,
    Supervisor,
    SupervisorCommand,
    read_stack,
    send_command,
)

from .conftest import RedisServer, eventually, free_port

SLEEPER = "import time\nwhile True: time.sleep(1)"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def now_dt() -> datetime:
    return datetime.fromtimestamp(clock.wall_epoch(), timezone.utc)


def pids(sup: Supervisor) -> dict[str, int | None]:
    return {c.spec.name: c.process.pid if c.process else None for c in sup.children}


@pytest.fixture
def sleepers(store: Store) -> Iterator[Supervisor]:
    sup = Supervisor([ChildSpec("a", (sys.executable, "-c", SLEEPER)), ChildSpec("b", (sys.executable, "-c", SLEEPER))],
                     os.environ, store)
    sup.start()
    try:
        yield sup
    finally:
        sup.stop(timeout_s=5.0)


# --- the supervisor's side ----------------------------------------------------------------------


def test_a_restart_request_replaces_one_child_and_leaves_the_other(store: Store, sleepers: Supervisor) -> None:
    sleepers.cycle(now_dt())
    before = pids(sleepers)
    send_command(store, SupervisorCommand(RESTART, "a", clock.wall_epoch()))
    ttl = store.client.ttl(keys.supervisor_commands().name)
    assert 0 < ttl <= keys.SUPERVISOR_COMMANDS_TTL_S

    def replaced() -> bool:
        sleepers.cycle(now_dt())
        return pids(sleepers)["a"] not in (None, before["a"])

    eventually(replaced, timeout_s=30)
    assert pids(sleepers)["b"] == before["b"]
    old_a = before["a"]
    assert old_a is not None and not alive(old_a)
    a, b = sleepers.children
    assert (a.restarts, a.last_exit, a.failures) == (1, -signal.SIGTERM, 0)
    assert (b.restarts, b.last_exit) == (0, None)
    assert store.client.llen(keys.supervisor_commands().name) == 0
    published = read_stack(store, clock.wall_epoch())
    row = published.child("a")
    assert row is not None and row.restarts == 1 and row.pid == pids(sleepers)["a"] and row.last_exit == -15


def test_a_child_ignoring_sigterm_is_killed_after_the_grace(store: Store, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervision, "RESTART_GRACE_S", 0.5)
    ready = tmp_path / "ready"
    stubborn = ("import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                f"pathlib.Path({str(ready)!r}).write_text('x')\nwhile True: time.sleep(1)")
    sup = Supervisor([ChildSpec("stubborn", (sys.executable, "-c", stubborn))], os.environ, store)
    sup.start()
    try:
        eventually(ready.exists, timeout_s=30)  # its SIGTERM handler is in place
        first = pids(sup)["stubborn"]
        assert sup.restart("stubborn")
        assert sup.children[0].state == "restarting"

        def replaced() -> bool:
            sup.cycle(now_dt())
            return pids(sup)["stubborn"] not in (None, first)

        eventually(replaced, timeout_s=30)
        assert sup.children[0].last_exit == -signal.SIGKILL
    finally:
        sup.stop(timeout_s=1.0)


def test_a_child_waiting_out_its_backoff_starts_at_once(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "starts"
    script = f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"
    sup = Supervisor([ChildSpec("crasher", (sys.executable, "-c", script))], os.environ, store)
    sup.start()
    try:
        child = sup.children[0]

        def waiting() -> bool:
            sup.poll()
            return child.process is None

        eventually(waiting, timeout_s=30)
        child.next_start_at = clock.monotonic() + 3600  # a long backoff ahead
        send_command(store, SupervisorCommand(RESTART, "crasher", clock.wall_epoch()))
        sup.cycle(now_dt())  # takes the request
        sup.poll()  # the next poll starts it
        assert child.process is not None
    finally:
        sup.stop(timeout_s=1.0)


def test_void_malformed_and_unknown_requests_change_nothing(store: Store, sleepers: Supervisor) -> None:
    sleepers.cycle(now_dt())
    before = pids(sleepers)
    old = clock.wall_epoch() - keys.SUPERVISOR_COMMANDS_TTL_S - 5
    send_command(store, SupervisorCommand(RESTART, "a", old))  # outlived its TTL: void
    send_command(store, SupervisorCommand(RESTART, "nope", clock.wall_epoch()))
    store.client.rpush(keys.supervisor_commands().name, '{"v": 1, "action": "format-disk", "child": "a", "at": 1}',
                       "not json", '{"v": 99, "action": "restart", "child": "b"}')
    sleepers.cycle(now_dt())
    sleepers.cycle(now_dt())
    assert pids(sleepers) == before
    assert all(c.state == "running" and c.restarts == 0 for c in sleepers.children)
    assert store.client.llen(keys.supervisor_commands().name) == 0


# --- the CLI against a supervisor's published state ----------------------------------------------


def publish(store: Store, beat_age_s: float = 0.5) -> None:
    """What a running `qc up` leaves in Redis: its heartbeat and registry entry, its children."""
    now = clock.wall_epoch()
    store.set(keys.heartbeat(SUPERVISOR_NAME), Heartbeat(now - beat_age_s).to_redis())
    workers = {SUPERVISOR_NAME: WorkerEntry(pid=4242, host="box", started=now - 600, cycles=600),
               "analytics": WorkerEntry(pid=4245, host="box", started=now - 125, cycles=120)}
    store.hset(keys.worker_registry(), WorkerRegistry(workers).to_redis())
    store.hset(keys.supervisor_children(), SupervisorChildren({
        "stream": ChildStatus(4244, "running", 0),
        "analytics": ChildStatus(4245, "running", 2, -9),
        "chains": ChildStatus(None, "waiting", 5, 1),
    }).to_redis())


def run(url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--redis-url", url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_ps_shows_the_children(store: Store, redis_server: RedisServer) -> None:
    publish(store)
    code, out, _ = run(redis_server.url, "ps")
    assert code == 0, out
    lines = out.splitlines()
    assert "supervisor pid 4242 on box" in lines[0]
    assert lines[1].split() == ["name", "pid", "state", "restarts", "uptime", "last", "exit"]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert rows["analytics"][:5] == ["analytics", "4245", "running", "2", "2m05s"]
    assert rows["analytics"][5:] == ["-9", "(SIGKILL)"]
    assert rows["chains"] == ["chains", "-", "waiting", "5", "-", "1"]
    assert rows["stream"] == ["stream", "4244", "running", "0", "-", "-"]
    code, out, _ = run(redis_server.url, "ps", "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc["supervisor"]["pid"] == 4242
    assert [c["name"] for c in doc["children"]] == ["analytics", "chains", "stream"]
    assert doc["children"][0] == {"name": "analytics", "pid": 4245, "state": "running", "restarts": 2,
                                  "uptime_s": pytest.approx(125, abs=30), "last_exit": -9}


@pytest.mark.parametrize("beat_age_s", [None, 60.0])
def test_ps_and_restart_without_a_supervisor_exit_1_with_one_line(store: Store, redis_server: RedisServer,
                                                                  beat_age_s: float | None) -> None:
    if beat_age_s is not None:
        publish(store, beat_age_s)
    for args in (["ps"], ["ps", "--json"], ["restart", "stream"]):
        code, out, err = run(redis_server.url, *args)
        assert code == 1, out
        assert out == ""
        assert len(err.strip().splitlines()) == 1
        assert "no `qc up` is running (heartbeat:supervisor is " in err
        assert ("missing" if beat_age_s is None else "60 s old") in err
    assert store.client.llen(keys.supervisor_commands().name) == 0


def test_restart_of_an_unknown_name_lists_the_known_ones(store: Store, redis_server: RedisServer) -> None:
    publish(store)
    code, _, err = run(redis_server.url, "restart", "strem")
    assert code == 1
    assert err.strip().splitlines() == [
        "Error: NAME: 'strem' is not a child of the running `qc up`; its children: analytics, chains, stream"]
    assert store.client.llen(keys.supervisor_commands().name) == 0


def test_restart_nobody_carries_out_times_out_with_exit_1(store: Store, redis_server: RedisServer) -> None:
    publish(store)
    code, _, err = run(redis_server.url, "restart", "stream", "--timeout", "0.3")
    assert code == 1
    assert "stream shows no new process after 0.3 s" in err
    queued = store.client.lrange(keys.supervisor_commands().name, 0, -1)
    assert [json.loads(q)["child"] for q in queued] == ["stream"]


def test_ps_when_redis_is_unreachable() -> None:
    code, _, err = run(f"redis://127.0.0.1:{free_port()}/0", "ps")
    assert code == 1
    assert "Redis unreachable" in err and len(err.strip().splitlines()) == 1


# --- a real `qc up` -----------------------------------------------------------------------------


def test_qc_restart_replaces_one_child_of_a_real_qc_up(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "QC_DATA_DIR": str(tmp_path / "var"), "QC_EMBEDDED_REDIS_PORT": str(port),
           "QC_IB_HOST": "127.0.0.1", "QC_IB_PORT": str(free_port()), "QC_ALPHA_VANTAGE_API_KEY": "k",
           "QC_ALPHA_VANTAGE_URL": f"http://127.0.0.1:{free_port()}/query",  # configured: no simulator
           "QC_DASHBOARD_PORT": str(free_port())}
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen([sys.executable, "-m", "qc", "up"], cwd=tmp_path, env=env,
                          stdout=subprocess.DEVNULL, stderr=log)
    store = connect(Settings(data_dir=str(tmp_path / "var"), embedded_redis_port=port))  # as qc connects to it

    def qc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qc", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, check=False)

    def running() -> dict[str, int]:
        try:
            view = read_stack(store, clock.wall_epoch())
        except redis.ConnectionError:
            return {}
        if not view.running:
            return {}
        return {c.name: c.pid for c in view.children if c.state == "running" and c.pid is not None}

    try:
        eventually(lambda: len(running()) == 6, timeout_s=60)  # stream, chains, analytics, signals, risk, dashboard
        ps = qc("ps", "--json")
        assert ps.returncode == 0, ps.stderr
        before = {c["name"]: c["pid"] for c in json.loads(ps.stdout)["children"]}
        assert set(before) == {"stream", "chains", "analytics", "signals", "risk", "dashboard"}

        restart = qc("restart", "stream")
        assert restart.returncode == 0, restart.stderr
        after = {c["name"]: c for c in json.loads(qc("ps", "--json").stdout)["children"]}
        assert after["stream"]["pid"] != before["stream"]
        assert restart.stdout.strip() == f"restarted stream: pid {before['stream']} -> {after['stream']['pid']}"
        assert after["stream"]["state"] == "running" and after["stream"]["restarts"] == 1
        assert {n: after[n]["pid"] for n in ("chains", "analytics", "signals", "risk", "dashboard")} == {
            n: before[n] for n in ("chains", "analytics", "signals", "risk", "dashboard")}
        assert not alive(before["stream"])

        unknown = qc("restart", "nope")
        assert unknown.returncode == 1
        assert unknown.stderr.strip().splitlines() == [
            "Error: NAME: 'nope' is not a child of the running `qc up`; its children: analytics, chains, dashboard, "
            "risk, signals, stream"]

        table = qc("ps")
        assert table.returncode == 0
        assert [line.split()[0] for line in table.stdout.splitlines()[3:]] == [
            "analytics", "chains", "dashboard", "risk", "signals", "stream"]
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        store.close()
        log.close()
    assert up.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
    gone = qc("ps")
    assert gone.returncode == 1 and len(gone.stderr.strip().splitlines()) == 1
