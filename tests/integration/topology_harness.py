"""Redis beyond one box, for real: a 3-master Redis Cluster and a Sentinel group (primary, replica, three
sentinels) on loopback from the bundled ``redis-server``, and a qc stack whose every process talks to them.

Why a harness of its own: the other stacks own a single ``redis-server`` (``conftest.RedisServer``); these
topologies are several processes that must agree before qc may connect (all 16384 slots served and every
node saying ``cluster_state:ok``; the replica in sync and the three sentinels aware of each other and of it).
Every wait polls for that state, never sleeps; ``close`` kills every process this module started.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import redis

from qc.core import keys
from qc.core.config import Settings
from qc.execute.model import Intent
from qc.runtime.store import connect, no_retry, redis_server_binary

from .conftest import eventually, free_port
from .execute_harness import priced, trading
from .signals_harness import Stack
from .stream_harness import SimProcess, stop_process

MASTER = "qcmaster"
DOWN_AFTER_MS = 1000  # how long a sentinel waits before calling the primary down: the failover's floor


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            port -= 20000
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def spawn(args: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
    """``redis-server args`` in ``cwd`` (its log goes to a file there via ``--logfile``)."""
    return subprocess.Popen([str(redis_server_binary()), *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def client(port: int, **options: Any) -> redis.Redis:
    return redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=5, retry=no_retry(),
                       decode_responses=True, **options)


def answers(port: int) -> bool:
    try:
        with client(port) as c:
            return bool(c.ping())
    except redis.ConnectionError:
        return False


def node_args(port: int, directory: Path, *extra: str) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--logfile", "redis.log",
            "--save", "", "--daemonize", "no", *extra]


class Processes:
    """The servers one topology started, killed (SIGKILL, then reaped) in ``close``."""

    def __init__(self) -> None:
        self.by_port: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, port: int, args: Sequence[str], cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.by_port[port] = spawn(args, cwd)

    def kill(self, port: int) -> None:
        proc = self.by_port.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def close(self) -> None:
        for port in list(self.by_port):
            self.kill(port)


class Cluster:
    """Three masters, no replicas, slots spread by ``redis-cli --cluster create`` from the same bin directory."""

    def __init__(self, tmp: Path, masters: int = 3) -> None:
        self.tmp = tmp
        self.procs = Processes()
        self.ports: list[int] = []
        while len(self.ports) < masters:
            port = cluster_port()
            if port not in self.ports:
                self.ports.append(port)

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        try:
            for port in self.ports:
                self.start_node(port)
            eventually(lambda: all(answers(p) for p in self.ports))
            cli = redis_server_binary().with_name("redis-cli")
            subprocess.run([str(cli), "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
                            "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
            eventually(self.ok, timeout_s=20, every_s=0.05)
        except BaseException:
            self.close()
            raise

    def start_node(self, port: int) -> None:
        node = self.tmp / f"node-{port}"
        self.procs.start(port, node_args(port, node, "--cluster-enabled", "yes", "--cluster-config-file",
                                         "nodes.conf", "--appendonly", "no"), node)

    def restart(self, port: int) -> None:
        """SIGKILL one master and start it again from its ``nodes.conf``: the same node and slots, a new run id,
        its data gone (no persistence); returns once the Cluster is whole again."""
        self.procs.kill(port)
        self.start_node(port)
        eventually(lambda: answers(port))
        eventually(self.ok, timeout_s=30, every_s=0.05)

    def ok(self) -> bool:
        """Every node serves its slots and knows the others: a client may route by slot from here on."""
        for port in self.ports:
            with client(port) as c:
                info = c.cluster("info")
            if (info.get("cluster_state") != "ok" or int(info.get("cluster_slots_ok", 0)) != 16384
                    or int(info.get("cluster_known_nodes", 0)) != len(self.ports)):
                return False
        return True

    def keys_by_node(self) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for port in self.ports:
            with client(port) as c:
                out[port] = {str(k) for k in c.scan_iter(count=1000)}
        return out

    def close(self) -> None:
        self.procs.close()


class SentinelGroup:
    """A primary (AOF on), its replica, and three sentinels (quorum 2) watching them as ``MASTER``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs = Processes()
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}/0"

    def start(self) -> None:
        primary, replica = self.data_ports
        try:
            for port in self.data_ports:
                extra = ["--replicaof", "127.0.0.1", str(primary)] if port == replica else []
                node = self.tmp / f"redis-{port}"
                self.procs.start(port, node_args(port, node, "--appendonly", "yes", "--appendfsync", "everysec",
                                                 *extra), node)
            eventually(lambda: all(answers(p) for p in self.data_ports))
            eventually(lambda: self.replica_synced(replica), timeout_s=20)
            for port in self.sentinel_ports:
                node = self.tmp / f"sentinel-{port}"
                node.mkdir()
                conf = node / "sentinel.conf"  # sentinels rewrite their config: a file of their own each
                conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {node}\nlogfile sentinel.log\n"
                                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                                f"sentinel failover-timeout {MASTER} 10000\n"
                                f"sentinel parallel-syncs {MASTER} 1\n")
                self.procs.start(port, [str(conf), "--sentinel"], node)
            eventually(self.watching, timeout_s=20, every_s=0.05)
        except BaseException:
            self.close()
            raise

    def replica_synced(self, port: int) -> bool:
        with client(port) as c:
            info = c.info("replication")
        return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")

    def sentinel(self, port: int) -> redis.Redis:
        return client(port)

    def watching(self) -> bool:
        """Each sentinel sees the primary up, the replica and the two other sentinels: a failover can happen."""
        for port in self.sentinel_ports:
            with self.sentinel(port) as s:
                try:
                    state = s.sentinel_master(MASTER)
                except redis.ConnectionError:
                    return False
            if (int(state.get("num-other-sentinels", 0)) != len(self.sentinel_ports) - 1
                    or int(state.get("num-slaves", 0)) != 1 or "down" in str(state.get("flags", ""))):
                return False
        return True

    def primary_port(self, sentinel_port: int | None = None) -> int:
        with self.sentinel(sentinel_port or self.sentinel_ports[0]) as s:
            _, port = s.sentinel_get_master_addr_by_name(MASTER)
        return int(port)

    def kill_primary(self) -> int:
        """SIGKILL the current primary (no shutdown, no last fsync); returns its port."""
        port = self.primary_port()
        self.procs.kill(port)
        return port

    def promoted(self, old: int) -> int | None:
        """The new primary's port once every sentinel names it and it says it is a master; else None."""
        named = set()
        for port in self.sentinel_ports:
            try:
                named.add(self.primary_port(port))
            except redis.ConnectionError:
                return None
        if len(named) != 1 or old in named:
            return None
        new = named.pop()
        try:
            with client(new) as c:
                return new if c.info("replication").get("role") == "master" else None
        except redis.ConnectionError:
            return None

    def close(self) -> None:
        self.procs.close()


# --- a qc stack on a topology --------------------------------------------------------------------


def start_sim(redis_url: str, cwd: Path, args: Sequence[str]) -> SimProcess:
    """`qc sim` on free ports (its channel stand-ins too), its clock published through ``redis_url``."""
    env = {**os.environ, "QC_REDIS_URL": redis_url}
    proc = subprocess.Popen([sys.executable, "-m", "qc", "sim", "--ib-port", "0", "--av-port", "0", "--ctl-port", "0",
                             "--channels-port", "0", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    while len(lines) < 5:  # ib, alpha vantage, control, clock, channels
        line = proc.stdout.readline()
        assert line, "qc sim exited early"
        lines.append(line.strip())
    return SimProcess(proc, lines)


class TopologyStack(Stack):
    """signals_harness.Stack, but on a Redis it does not own: `qc sim` and every worker get ``redis_url``."""

    def __init__(self, tmp: Path, redis_url: str, sim_args: Sequence[str], symbols: str,
                 extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.store = connect(Settings(redis_url=redis_url))
        self.sim = start_sim(redis_url, tmp, ["--symbols", symbols, *sim_args])
        try:
            eventually(lambda: self.store.hgetall(keys.sim_clock()), timeout_s=10)
        except BaseException:
            stop_process(self.sim.proc)
            raise
        self.env = {**os.environ, "QC_REDIS_URL": redis_url, "QC_IB_PORT": str(self.sim.port("ib")),
                    "QC_ALPHA_VANTAGE_URL": f"http://127.0.0.1:{self.sim.port('alpha vantage')}/query",
                    "QC_ALPHA_VANTAGE_API_KEY": "sim", "QC_SYMBOLS": symbols, "QC_DATA_DIR": str(tmp / "var"),
                    **(extra_env or {})}
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self._client_ids = iter(range(60, 200))

    def start_workers(self, workers: Sequence[str], symbols: Sequence[str]) -> None:
        """Start ``workers`` in order. The executor waits until what it prices with is in Redis for ``symbols``;
        when it is among them, return once it trades."""
        for verb in workers:
            if verb == "execute":
                eventually(lambda: priced(self.store, symbols), timeout_s=120, every_s=0.5)
            self.start(verb)
        if "execute" in workers:
            eventually(lambda: trading(self.store), timeout_s=60)

    def close(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        stop_process(self.sim.proc)
        self.store.close()

    def logs(self) -> dict[str, str]:
        return {name: self.log(name) for name in self.procs}

    def alive(self) -> dict[str, int | None]:
        """Each worker's exit code (None: still running)."""
        return {name: proc.poll() for name, proc in self.procs.items()}


# --- key families ----------------------------------------------------------------------------------

_ARG = "\x00"


def key_families(loose: bool = False) -> dict[str, re.Pattern[str]]:
    """Every function of ``qc.core.keys`` that builds a Key, as a pattern its keys match: each argument one
    colon-free segment, or (``loose``) anything, for arguments that may hold colons (a bucket's limit
    ``telegram:chat:…``, a fingerprint)."""
    import inspect

    arg = ".+" if loose else "[^:]+"
    out: dict[str, re.Pattern[str]] = {}
    for name, fn in vars(keys).items():
        if name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != keys.__name__:
            continue
        got = fn(*[_ARG] * len(inspect.signature(fn).parameters))
        if isinstance(got, keys.Key):
            out[name] = re.compile("^" + re.escape(got.name).replace(re.escape(_ARG), arg) + "$")
    return out


def families_present(names: Iterable[str]) -> dict[str, list[str]]:
    """Family -> its keys among ``names`` (by the strict patterns, then the loose ones); ``?``: no family."""
    strict, loose = key_families(), key_families(loose=True)
    out: dict[str, list[str]] = {}
    for n in names:
        hits = [f for f, p in strict.items() if p.match(n)] or [f for f, p in loose.items() if p.match(n)]
        for f in hits or ["?"]:
            out.setdefault(f, []).append(n)
    return out


CROSS_SLOT = re.compile(r"CROSSSLOT|don't hash to the same slot|must map to the same key slot|MOVED|ASK \d|"
                        r"ClusterDown|TRYAGAIN|No way to dispatch|RedisClusterException", re.IGNORECASE)


def cluster_complaints(logs: dict[str, str]) -> dict[str, list[str]]:
    """Each log's lines naming a cross-slot refusal or an unhandled redirection."""
    return {name: hits for name, text in logs.items()
            if (hits := [line for line in text.splitlines() if CROSS_SLOT.search(line)])}


# --- trading through a topology ------------------------------------------------------------------

WARMING = ("STALE_ANALYTICS", "STALE_CHAIN", "STALE_QUOTE", "GREEKS_UNAVAILABLE")  # the executor's pricing not
# yet refreshed since positioning, the chain or the quote were first published: says nothing of Redis


def trade(stack: TopologyStack, attempts: int = 3) -> Intent:
    """A marketable buy of the near-the-money call (execute_harness) to a protected bracket; a rejection for
    inputs the executor has not read yet is retried with a new signal, any other fails at once."""
    from .execute_harness import liquid_call, make_signal, marketable, publish, wait_state

    got: Intent | None = None
    for _ in range(attempts):
        row = liquid_call(stack)
        signal = make_signal(stack, row, limit=marketable(stack, row))
        publish(stack, signal)
        got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
        if got.state.value == "protected":
            return got
        assert all(r.startswith(WARMING) for r in got.reasons), (got.reasons, got.history)
    raise AssertionError(f"still not priced after {attempts} signals: {got}")
