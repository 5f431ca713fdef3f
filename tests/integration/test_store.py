"""Store writes always carry their namespace TTL; the embedded server starts, is reused, stops, and
requires its own password (generated once, 0600, never on a command line)."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis

from qc.core import keys
from qc.core.clock import SimClock, SystemClock, wall_epoch
from qc.core.config import Settings
from qc.core.errors import QcError, StoreUnavailable
from qc.runtime.codec import SimClockAnchor
from qc.runtime.simclock import clock_for
from qc.runtime.store import (
    KEYS_PER_ROUND_TRIP,
    EmbeddedRedis,
    Probe,
    Store,
    connect,
    no_retry,
    redis_cli_hint,
    redis_server_binary,
    server_command,
)

from .conftest import RedisServer, eventually, free_port


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


# --- the embedded server's password -----------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_embedded_requires_its_password_and_keeps_it_private(tmp_path: Path) -> None:
    port = free_port()
    embedded = EmbeddedRedis(tmp_path / "var", port)
    assert embedded.start() is True
    try:
        password = embedded.password_file.read_text().strip()
        assert len(password) >= 32
        assert _mode(embedded.password_file) == 0o600 and _mode(embedded.conf_file) == 0o600
        assert _mode(embedded.directory) == 0o700 and _mode(tmp_path / "var") == 0o700
        assert embedded.process is not None
        assert password not in Path(f"/proc/{embedded.process.pid}/cmdline").read_text()  # `ps` shows argv
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, retry=no_retry()).get("x")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong-" + password, retry=no_retry()).get("x")
        assert redis.Redis(port=port, password=password, retry=no_retry()).ping()
        assert embedded.owner_dir() == str(embedded.directory)  # NOAUTH, then our password: ours
        for url in ("", f"redis://127.0.0.1:{port}/0", f"redis://localhost:{port}"):  # default, and `qc up`'s
            store = connect(Settings(redis_url=url, data_dir=str(tmp_path / "var"), embedded_redis_port=port))
            store.set(keys.heartbeat("auth"), 1.0)
            assert store.get(keys.heartbeat("auth")) == "1.0" and password not in store.address
            store.close()
    finally:
        embedded.stop()


def test_embedded_password_survives_a_restart_with_the_data(tmp_path: Path) -> None:
    port = free_port()
    first = EmbeddedRedis(tmp_path, port)
    first.start()
    try:
        password = first.password_file.read_text()
        store = connect(Settings(data_dir=str(tmp_path), embedded_redis_port=port))  # built before the restart
        store.hset(keys.position_open("DU1", 1), {"qty": 2})
    finally:
        first.stop()
    second = EmbeddedRedis(tmp_path, port)
    second.start()
    try:
        assert second.password_file.read_text() == password
        assert store.hgetall(keys.position_open("DU1", 1)) == {"qty": "2"}  # the same client reconnects
        store.close()
    finally:
        second.stop()


def test_a_world_readable_password_file_is_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    directory.mkdir(mode=0o755)
    (directory / "password").write_text("x" * 40 + "\n")
    (directory / "password").chmod(0o644)
    embedded = EmbeddedRedis(tmp_path, free_port())
    assert embedded.prepare() == "x" * 40
    assert _mode(directory / "password") == 0o600 and _mode(directory) == 0o700


def test_an_unusable_password_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "password").write_text("has spaces in it\n")
    with pytest.raises(QcError, match="does not hold a usable password"):
        EmbeddedRedis(tmp_path, free_port()).start()


def test_a_foreign_redis_with_a_password_is_not_taken_for_ours(tmp_path: Path,
                                                                processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    conf = tmp_path / "foreign.conf"
    conf.write_text("requirepass someone-elses-password\n")
    processes.append(subprocess.Popen(server_command(tmp_path, port, appendonly=False, conf=conf),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    eventually(lambda: EmbeddedRedis(tmp_path / "ours", port).probe() is not None)
    ours = EmbeddedRedis(tmp_path / "ours", port)
    ours.prepare()  # we have a password too, just not that one
    assert ours.probe() == Probe(None, "locked")
    assert ours.owner_dir() == "unknown (it requires a password that is not ours)"
    with pytest.raises(QcError, match=r"used by another Redis .*requires a password that is not ours"):
        ours.start()


def test_an_old_passwordless_embedded_redis_is_not_reused(tmp_path: Path,
                                                          processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    directory = (tmp_path / "redis").resolve()
    directory.mkdir()
    processes.append(subprocess.Popen(server_command(directory, port, appendonly=False),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    eventually(lambda: EmbeddedRedis(tmp_path, port).probe() is not None)
    with pytest.raises(QcError, match=rf"runs without a password .*redis-cli -p {port} shutdown"):
        EmbeddedRedis(tmp_path, port).start()


def test_embedded_default_without_a_password_file_says_so(tmp_path: Path) -> None:
    port = free_port()
    embedded = EmbeddedRedis(tmp_path / "var", port)
    embedded.start()
    try:
        store = connect(Settings(data_dir=str(tmp_path / "elsewhere"), embedded_redis_port=port))
        with pytest.raises(StoreUnavailable, match="no password file"):
            store.ping()
    finally:
        embedded.stop()


def test_redis_cli_hint_works_without_showing_the_password(tmp_path: Path) -> None:
    port = free_port()
    embedded = EmbeddedRedis(tmp_path / "var", port)
    embedded.start()
    try:
        settings = Settings(data_dir="var", embedded_redis_port=port)
        hint = redis_cli_hint(settings)
        password = embedded.password_file.read_text().strip()
        assert password not in hint and hint.startswith("REDISCLI_AUTH=")
        cli = redis_server_binary().with_name("redis-cli")
        done = subprocess.run(["sh", "-c", hint.replace("redis-cli", str(cli), 1) + " ping"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.stdout.strip() == "PONG", done.stderr
        bare = subprocess.run([str(cli), "-p", str(port), "ping"], capture_output=True, text=True, timeout=30,
                              check=False)
        assert "NOAUTH" in bare.stdout + bare.stderr
    finally:
        embedded.stop()


def test_redis_cli_hint_for_configured_urls_asks_for_the_password() -> None:
    def hint(url: str) -> str:
        return redis_cli_hint(Settings(redis_url=url))

    assert hint("redis://qc:p4ss@h:6380/2") == "redis-cli -h h -p 6380 -n 2 --user qc --askpass"
    assert hint("rediss://h") == "redis-cli --tls -h h -p 6379"
    assert hint("unix:///run/r.sock?db=1&password=p4ss") == "redis-cli -s /run/r.sock -n 1 --askpass"
    assert hint("redis+cluster://h:7000") == "redis-cli -c -h h -p 7000"
    assert hint("redis+sentinel://:p@s1,s2:5/mm/1") == "redis-cli -h s1 -p 26379 sentinel get-master-addr-by-name mm"


def test_cluster_that_cannot_be_reached_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable, match="Redis Cluster unreachable at redis\\+cluster://:\\*\\*\\*@127"):
        connect(Settings(redis_url=f"redis+cluster://:pw@127.0.0.1:{free_port()}"))


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_many_key_helpers_go_in_rounds_and_keep_every_key_in_order(store: Store) -> None:
    """More keys than one round trip takes (``KEYS_PER_ROUND_TRIP``): every key written with its TTL, every
    hash and stream read back in the order asked."""
    symbols = [f"S{i:03d}" for i in range(2 * KEYS_PER_ROUND_TRIP + 3)]
    store.hset_many([(keys.quote(s), {"bid": i, "ask": i + 1}) for i, s in enumerate(symbols)])
    assert all(0 < store.client.ttl(keys.quote(s).name) <= keys.quote(s).ttl_s for s in symbols)
    got = store.hgetall_many([keys.quote(s) for s in reversed(symbols)])
    assert [int(h["bid"]) for h in got] == list(range(len(symbols)))[::-1]
    for i, s in enumerate(symbols):
        store.client.xadd(keys.trades(s).name, {"n": str(i)})
    read = store.xread_each({keys.trades(s).name: "0" for s in symbols}, count=10)
    assert [(name, [f["n"] for _, f in entries]) for name, entries in read] == [
        (keys.trades(s).name, [str(i)]) for i, s in enumerate(symbols)]
    assert store.hgetall_many([]) == [] and store.xread_each({}, count=10) == []
