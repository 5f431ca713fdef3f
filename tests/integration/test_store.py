"""Store writes always carry their namespace TTL; the embedded server starts, is reused, stops."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from qc.core import keys
from qc.core.clock import SimClock, SystemClock, wall_epoch
from qc.core.config import Settings
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


SIM_IB, SIM_AV = 4100, 8800
AT_SIM = Settings(ib_port=SIM_IB, alpha_vantage_url=f"http://127.0.0.1:{SIM_AV}/query")


def publish_anchor(store: Store, sim_start: float) -> None:
    anchor = SimClockAnchor(wall_epoch(), sim_start, 10.0, ib_port=SIM_IB, av_port=SIM_AV)
    store.hset(keys.sim_clock(), anchor.to_redis())


def test_clock_is_simulated_exactly_when_a_fresh_anchor_is_present(store: Store) -> None:
    assert isinstance(clock_for(store, AT_SIM), SystemClock)
    sim_start = datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc).timestamp()  # 15:40 New York
    publish_anchor(store, sim_start)
    chosen = clock_for(store, AT_SIM)
    assert isinstance(chosen, SimClock)
    assert abs(chosen.epoch() - sim_start) < 10
    assert 0 < store.client.ttl(keys.sim_clock().name) <= keys.SIM_CLOCK_TTL_S


@pytest.mark.parametrize(("worker", "uses", "simulated"), [
    (Settings(ib_port=SIM_IB), ("ib",), True),
    (Settings(ib_host="localhost", ib_port=SIM_IB), ("ib",), True),
    (Settings(ib_port=SIM_IB), ("av",), False),  # a chains worker whose Alpha Vantage is the real one
    (Settings(ib_host="10.0.0.7", ib_port=SIM_IB), ("ib", "av"), False),  # a real gateway elsewhere
    (Settings(ib_port=4001), ("ib", "av"), False),  # production: live gateway, real Alpha Vantage
    (Settings(alpha_vantage_url=f"http://localhost:{SIM_AV}/query"), ("av",), True),
    (Settings(alpha_vantage_url=f"https://127.0.0.1:{SIM_AV + 1}/query"), ("av",), False),
])
def test_only_a_worker_talking_to_the_simulator_adopts_its_clock(store: Store, worker: Settings,
                                                                 uses: tuple[str, ...], simulated: bool) -> None:
    publish_anchor(store, datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc).timestamp())
    assert isinstance(clock_for(store, worker, uses), SimClock) is simulated


def test_malformed_anchor_falls_back_to_the_system_clock(store: Store) -> None:
    store.hset(keys.sim_clock(), {"real_epoch": "x", "sim_epoch": "1", "speed": "1", "ib_port": "4100",
                                  "av_port": "8800"})
    assert isinstance(clock_for(store, AT_SIM), SystemClock)
