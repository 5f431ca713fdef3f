"""`qc stream` survives the simulator's faults without a restart: dropped and refused sockets, a silent feed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from subprocess import Popen

import pytest

from qc.core import clock, keys
from qc.runtime.health import INGESTION_MODULE
from qc.runtime.store import REDIS_ERRORS, Store

from .conftest import RedisServer, eventually
from .stream_harness import SimProcess, book_levels, sim, start_stream, stop_process, writes

__all__ = ["sim"]


@pytest.fixture
def stream(sim: SimProcess, store: Store, redis_server: RedisServer) -> Iterator[Popen[str]]:
    proc = start_stream(store, redis_server.url, sim, 21, "SPY", "QQQ")
    eventually(lambda: book_levels(store) == 20 and store.get(keys.ibkr_connected()) == "1", timeout_s=15)
    eventually(lambda: store.hgetall(keys.data_stale()) == {}, timeout_s=5)
    yield proc
    assert stop_process(proc) == 0


def recovered(store: Store, since_writes: int) -> bool:
    return (store.get(keys.ibkr_connected()) == "1" and store.hgetall(keys.data_stale()) == {}
            and writes(store) > since_writes + 5 and book_levels(store) == 20)


def test_dropped_then_refused_sockets_mark_stale_and_recover(stream: Popen[str], sim: SimProcess,
                                                             store: Store) -> None:
    sim.ctl("refuse", "3")
    sim.ctl("drop-sockets")
    eventually(lambda: store.get(keys.ibkr_connected()) == "0", timeout_s=3)
    eventually(lambda: {"SPY:depth", "QQQ:quotes"} <= set(store.hgetall(keys.data_stale())), timeout_s=3)
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=15)
    assert int(store.hget(keys.ingest_recoveries(), "reconnects") or 0) >= 1
    assert stream.poll() is None  # no restart


def test_a_plain_socket_drop_reconnects_by_itself(stream: Popen[str], sim: SimProcess, store: Store) -> None:
    sim.ctl("drop-sockets")
    eventually(lambda: store.hget(keys.ingest_recoveries(), "reconnects") == "1", timeout_s=5)
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=10)
    assert stream.poll() is None


def test_a_silent_depth_feed_is_marked_stale_resubscribed_and_recovers(stream: Popen[str], sim: SimProcess,
                                                                       store: Store) -> None:
    sim.ctl("silence", "SPY", "depth", "--seconds", "6")

    def only_spy_depth_silent() -> bool:
        # At 10x a 1-s stall of a busy machine is 10 s of market silence: every feed may go stale together
        # for a moment. Then the others speak again while SPY's depth stays stale for its whole silence.
        stale = store.hgetall(keys.data_stale())
        return "SPY:depth" in stale and "QQQ:depth" not in stale

    eventually(only_spy_depth_silent, timeout_s=5, every_s=0.1)
    eventually(lambda: int(store.hget(keys.ingest_recoveries(), "SPY:depth") or 0) >= 1, timeout_s=5)
    assert store.get(keys.ibkr_connected()) == "1"  # a silent feed is not a lost socket
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=10)
    assert stream.poll() is None


def status_code(redis_url: str) -> tuple[int, str]:
    got = subprocess.run([sys.executable, "-m", "qc", "status", "--json"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "QC_REDIS_URL": redis_url}, check=False)
    return got.returncode, got.stdout


def test_a_feed_silent_through_its_resubscriptions_turns_status_red_escalates_and_stays_red(
        stream: Popen[str], sim: SimProcess, store: Store, redis_server: RedisServer) -> None:
    """Each resubscription is answered by a snapshot of the book; the feed behind it stays dead."""
    silenced_at = clock.wall_epoch()
    sim.ctl("silence", "SPY", "depth")  # until cleared
    try:
        silent_through_reconnects(silenced_at, sim, store, redis_server)
    finally:  # the simulator is shared by the module: never leave its feed silenced for the next test
        sim.ctl("silence", "SPY", "depth", "--seconds", "0")
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=20)
    assert status_code(redis_server.url)[0] == 0


def silent_through_reconnects(silenced_at: float, sim: SimProcess, store: Store, redis_server: RedisServer) -> None:
    def red_for_spy_depth() -> bool:  # the stale row names it once it is past 10 s (the alert threshold)
        code, out = status_code(redis_server.url)
        return code == 1 and "SPY:depth" in out and "QQQ:depth" not in out

    eventually(red_for_spy_depth, timeout_s=40, every_s=0.5)
    eventually(lambda: int(store.hget(keys.ingest_recoveries(), "SPY:depth") or 0) >= 2, timeout_s=30)
    # aged from the last live data, before the silence, never from the last resubscription's snapshot
    assert float(store.hget(keys.data_stale(), "SPY:depth") or "inf") <= silenced_at + 0.5
    eventually(lambda: int(store.hget(keys.ingest_recoveries(), "reconnects") or 0) >= 1, timeout_s=60)
    assert int(store.hget(keys.ingest_recoveries(), "SPY:depth") or 0) >= 3  # the resubscriptions came first
    eventually(lambda: int(store.hget(keys.ingest_recoveries(), "reconnects") or 0) >= 2, timeout_s=60)
    # once the reconnect is through (QQQ's depth fresh again), SPY's is still red: the reconnects
    # did not make it look healthy
    eventually(red_for_spy_depth, timeout_s=20, every_s=0.5)
    assert float(store.hget(keys.data_stale(), "SPY:depth") or "inf") <= silenced_at + 0.5  # still the same age


def test_a_data_farm_flap_marks_feeds_stale_without_touching_the_socket(stream: Popen[str], sim: SimProcess,
                                                                       store: Store) -> None:
    sim.ctl("farm-flap", "3")
    eventually(lambda: {"SPY:depth", "QQQ:depth"} <= set(store.hgetall(keys.data_stale())), timeout_s=3)
    assert store.get(keys.ibkr_connected()) == "1"
    assert int(store.hget(keys.ingest_recoveries(), "reconnects") or 0) == 0
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=10)


def test_connectivity_lost_with_data_lost_reconnects_and_resubscribes(stream: Popen[str], sim: SimProcess,
                                                                     store: Store) -> None:
    sim.ctl("connectivity-lost", "2", "--data-lost")  # 1100 now, 1101 (subscriptions dropped) after 2 s
    eventually(lambda: int(store.hget(keys.ingest_recoveries(), "reconnects") or 0) >= 1, timeout_s=5)
    clock.real_sleep(2.5)  # past the 1101 that dropped every subscription server-side
    before = writes(store)
    eventually(lambda: recovered(store, before), timeout_s=10)
    assert stream.poll() is None


def test_redis_down_is_survived_and_the_stream_catches_up(stream: Popen[str], store: Store,
                                                          redis_server: RedisServer) -> None:
    redis_server.kill()
    clock.real_sleep(2.0)
    assert stream.poll() is None  # Redis down never ends the worker
    redis_server.start()  # empty: no AOF in tests

    def caught_up() -> bool:
        try:
            return book_levels(store) == 20 and store.get(keys.heartbeat(INGESTION_MODULE)) is not None
        except REDIS_ERRORS:
            return False

    eventually(caught_up, timeout_s=10)
    eventually(lambda: store.get(keys.ibkr_connected()) == "1", timeout_s=5)
    assert stream.poll() is None
