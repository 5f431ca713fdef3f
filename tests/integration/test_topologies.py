"""The same Settings reach a Sentinel-managed master and a Redis Cluster (real redis-server processes)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from qc.core import keys
from qc.core.config import Settings
from qc.runtime.store import connect, redis_server_binary

from .conftest import RedisServer, eventually, free_port
from .topology_harness import answers, cluster_port, spawn


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_sentinel_url_reaches_the_master(redis_server: RedisServer, tmp_path: Path,
                                         processes: list[subprocess.Popen[bytes]]) -> None:
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor qcmaster 127.0.0.1 {redis_server.port} 1\n")
    processes.append(spawn([str(conf), "--sentinel"], tmp_path))
    eventually(lambda: answers(port))
    store = connect(Settings(redis_url=f"redis+sentinel://127.0.0.1:{port}/qcmaster/0"))
    store.set(keys.heartbeat("via_sentinel"), 42)
    direct = redis.Redis(port=redis_server.port, decode_responses=True)
    assert direct.get("heartbeat:via_sentinel") == "42"


def test_cluster_url_spreads_symbols_across_nodes(tmp_path: Path, processes: list[subprocess.Popen[bytes]]) -> None:
    ports: list[int] = []
    while len(ports) < 3:
        port = cluster_port()
        if port not in ports:
            ports.append(port)
    for port in ports:
        node = tmp_path / str(port)
        node.mkdir()
        processes.append(spawn(["--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                                "--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"], node))
    eventually(lambda: all(answers(p) for p in ports))
    cli = redis_server_binary().with_name("redis-cli")
    subprocess.run([str(cli), "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
    eventually(lambda: redis.Redis(port=ports[0], decode_responses=True).cluster("info").get("cluster_state")
               == "ok", timeout_s=20)
    store = connect(Settings(redis_url=f"redis+cluster://127.0.0.1:{ports[0]}"))
    for symbol in ("SPY", "QQQ", "IWM", "AAPL", "TSLA"):
        store.hset(keys.gex(symbol), {"total": 1.0})
    assert all(store.hget(keys.gex(s), "total") == "1.0" for s in ("SPY", "QQQ", "IWM", "AAPL", "TSLA"))
    assert store.client.ttl(keys.gex("SPY").name) > 0
    per_node = [redis.Redis(port=p).dbsize() for p in ports]
    assert sum(per_node) == 5
    assert sum(1 for n in per_node if n) >= 2  # symbols really are spread over shards
