"""The worker loop against a real redis-server: heartbeats, survival of a Redis restart, sd_notify."""

from __future__ import annotations

import os
import socket
import threading
from datetime import datetime
from pathlib import Path

from qc.core import clock, keys
from qc.core.clock import FakeClock
from qc.runtime.codec import Heartbeat, WorkerEntry, WorkerErrors, WorkerRegistry
from qc.runtime.store import Store
from qc.runtime.worker import SystemdNotifier, Worker, deregister, registry_entry, write_heartbeat

from .conftest import RedisServer, eventually


def heartbeat(store: Store, name: str) -> float:
    key = keys.heartbeat(name)
    try:
        beat = Heartbeat.from_redis(store.get(key), key=key.name)
    except Exception:
        return 0.0
    return beat.at_epoch if isinstance(beat, Heartbeat) else 0.0


def test_once_runs_one_cycle_and_beats_nobodys_heartbeat(store: Store) -> None:
    seen: list[datetime] = []
    worker = Worker("probe", seen.append, store, clock.SystemClock(), interval_s=60)
    assert worker.run(once=True) == 0
    assert len(seen) == 1 and seen[0].tzinfo is not None
    assert store.get(keys.heartbeat("probe")) is None  # the heartbeat belongs to the long-running worker
    assert store.hgetall(keys.worker_registry()) == {}  # a cron run does not join the registry


def test_failed_cycle_is_counted_and_survived(store: Store) -> None:
    calls = 0

    def flaky(now: datetime) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("bad bar")

    stop = threading.Event()
    worker = Worker("flaky", flaky, store, clock.SystemClock(), interval_s=0.01, stop=stop)
    thread = threading.Thread(target=worker.run)
    thread.start()
    eventually(lambda: calls >= 3)
    stop.set()
    thread.join(5)
    errors = WorkerErrors.from_redis(store.hgetall(keys.worker_errors()), key="errors")
    assert isinstance(errors, WorkerErrors) and errors.counts == {"flaky": 1}
    assert worker.errors == 1
    assert store.hgetall(keys.worker_registry()) == {}  # clean stop leaves the registry


def test_worker_survives_redis_kill_and_restart(store: Store, redis_server: RedisServer) -> None:
    stop = threading.Event()
    worker = Worker("survivor", lambda now: None, store, clock.SystemClock(), interval_s=0.02, stop=stop,
                    max_backoff_s=0.2)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        eventually(lambda: heartbeat(store, "survivor") > 0)
        redis_server.kill()
        down_at = clock.wall_epoch()
        clock.real_sleep(0.5)
        assert thread.is_alive()
        redis_server.restart()  # empty: no persistence in the test server
        eventually(lambda: heartbeat(store, "survivor") > down_at, timeout_s=15)
        assert thread.is_alive()
        registry = WorkerRegistry.from_redis(store.hgetall(keys.worker_registry()), key="registry")
        assert isinstance(registry, WorkerRegistry) and not registry.unreadable
        entry = registry.workers["survivor"]
        assert entry.pid == os.getpid() and entry.started <= clock.wall_epoch() and entry.cycles >= 1
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_systemd_notify_ready_watchdog_stopping(store: Store, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(2)
        worker = Worker("notified", lambda now: None, store, clock.SystemClock(), interval_s=1,
                        notifier=SystemdNotifier.from_environ({"NOTIFY_SOCKET": address}))
        assert worker.run(once=True) == 0
        messages = [sock.recv(64).decode() for _ in range(3)]
    assert messages == ["READY=1", "WATCHDOG=1", "STOPPING=1"]


def test_a_long_interval_still_beats(store: Store) -> None:
    """A 5-minute cadence (qc chains) must not look dead to `qc status` between its cycles."""
    clock_ = FakeClock()
    stop = threading.Event()
    cycles: list[datetime] = []
    worker = Worker("slow", cycles.append, store, clock_, interval_s=300, stop=stop)
    beats: list[float] = []
    original = worker._heartbeat

    def counting(register: bool) -> None:
        beats.append(clock_.epoch())
        original(register)
        if len(beats) >= 4:
            stop.set()

    worker._heartbeat = counting  # type: ignore[method-assign]
    worker.run()
    assert len(cycles) == 1  # 300 s not over yet: still the first cycle
    assert [round(b - beats[0]) for b in beats] == [0, 5, 10, 15]


def test_a_clean_stop_leaves_another_process_entry_in_the_registry(store: Store) -> None:
    """Two `qc distribute` share one name: the one that stops must not blank the other's registry entry."""
    registry = keys.worker_registry()
    write_heartbeat(store, "twin", WorkerEntry(pid=os.getpid() + 1, host=socket.gethostname(), started=1.0,
                                                cycles=3))
    deregister(store, "twin")
    assert store.hget(registry, "twin") is not None and store.get(keys.heartbeat("twin")) is not None
    write_heartbeat(store, "twin", registry_entry(started=1.0, cycles=4))  # now it is ours
    deregister(store, "twin")
    assert store.hget(registry, "twin") is None and store.get(keys.heartbeat("twin")) is None
