"""Store writes always carry their namespace TTL; the embedded server starts, is reused, stops."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from qc.core import keys
from qc.core.clock import SimClock, SystemClock, wall_epoch
from qc.core.errors import QcError
from qc.runtime.codec import SimClockAnchor
from qc.runtime.simclock import clock_for
from qc.runtime.store import EmbeddedRedis, Store

from .conftest import RedisServer, free_port


def test_set_applies_namespace_ttl(store: Store) -> None:
    store.set(keys.heartbeat("x"), 1.0)
    assert 0 < store.client.ttl("heartbeat:x") <= keys.HEARTBEAT_TTL_S


def test_hset_applies_ttl_and_merges(store: Store) -> None:
    store.hset(keys.gex("SPY"), {"total": 1.5})
    store.hset(keys.gex("SPY"), {"dex": -2})
    assert store.hgetall(keys.gex("SPY")) == {"total": "1.5", "dex": "-2"}
    assert 0 < store.client.ttl("analytics:SPY:gex") <= keys.ANALYTICS_TTL_S


def test_positions_never_expire(store: Store) -> None:
    store.hset(keys.position_open("DU1", 756733), {"qty": 1})
    assert store.client.ttl("positions:open:DU1:756733") == -1


def test_events_per_hour(store: Store) -> None:
    for i, at in enumerate([1000.0, 2000.0, 5000.0]):
        store.record_event(keys.risk_breaches_count(), keys.risk_breaches_log(), at, member=f"b{i}")
    assert store.get(keys.risk_breaches_count()) == "3"
    assert store.count_events(keys.risk_breaches_log(), since_epoch=5000.0 - 3600) == 2
    assert store.client.ttl("risk:breaches:log") > 0


def test_hincrby_counts_and_expires(store: Store) -> None:
    assert store.hincrby(keys.worker_errors(), "analytics") == 1
    assert store.hincrby(keys.worker_errors(), "analytics") == 2
    assert store.client.ttl("monitoring:errors") > 0


def test_embedded_start_reuse_stop(tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedRedis(tmp_path, port)
    assert first.start() is True
    try:
        assert (tmp_path / "redis" / "appendonly.aof").exists()
        second = EmbeddedRedis(tmp_path, port)
        assert second.start() is False  # reused, and not ours to stop
        second.stop()
        assert first.owner_dir() == str((tmp_path / "redis").resolve())
    finally:
        first.stop()
    assert first.owner_dir() is None


def test_embedded_refuses_a_foreign_redis_on_its_port(redis_server: RedisServer, tmp_path: Path) -> None:
    with pytest.raises(QcError, match="used by another Redis"):
        EmbeddedRedis(tmp_path, redis_server.port).start()


def test_clock_is_simulated_exactly_when_a_fresh_anchor_is_present(store: Store) -> None:
    assert isinstance(clock_for(store), SystemClock)
    sim_start = datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc).timestamp()  # 15:40 New York
    store.hset(keys.sim_clock(), SimClockAnchor(wall_epoch(), sim_start, 10.0).to_redis())
    chosen = clock_for(store)
    assert isinstance(chosen, SimClock)
    assert abs(chosen.epoch() - sim_start) < 10
    assert 0 < store.client.ttl(keys.sim_clock().name) <= keys.SIM_CLOCK_TTL_S


def test_malformed_anchor_falls_back_to_the_system_clock(store: Store) -> None:
    store.hset(keys.sim_clock(), {"real_epoch": "x", "sim_epoch": "1", "speed": "1"})
    assert isinstance(clock_for(store), SystemClock)
