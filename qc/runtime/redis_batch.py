"""One round trip of writes for `qc stream`'s hot path: redis-py's connection, none of its pipeline.

``Batch`` queues commands and sends them in one write on a connection held for the writer's life,
packed by ``hiredis.pack_command`` straight from the queued tuples, then reads the replies in order.
(redis-py's own ``pack_commands`` runs every argument through its Python encoder first: at 100
symbols that was a fifth of `qc stream`'s CPU, and ``hiredis`` alone packs the same bytes, floats
included, 8x faster; ``tests/unit/test_redis_batch_pack.py`` holds the two to the same bytes.)
It skips what redis-py's ``Pipeline.execute`` does per call and the stream does not need: a pool
checkout and release under a lock, a command stack with per-command options, response callbacks,
and a retry wrapper (the stream has its own backoff and must never block the IB
side retrying). Measured by ``benchmarks/bench_stream.py`` (same run, same Redis, one 20-field HSET
+ EXPIRE every 20 ms while the stream runs): see the README's performance table.

``send`` and ``receive`` split one batch into parts: a part goes out without waiting, and its replies
are read later, after the next part went out, so Redis runs a part while the caller stages the next.

Semantics match a non-transactional pipeline: an error reply (WRONGTYPE…) is read past, so the
connection stays in step, and raised after the last reply; a connection error disconnects and hands the
connection back, and the next ``execute`` takes one from the pool (which finds a Sentinel's new master).
Redis Cluster has no single connection: ``batcher_for`` then hands out redis-py's cluster pipeline, which
routes each command to its slot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any, Protocol

import hiredis
from redis.exceptions import DataError, ResponseError

from qc.runtime.store import Store

Value = str | int | float


class WriteBatch(Protocol):
    """The writes the stream queues; redis-py's ``Pipeline`` satisfies it too."""

    def hset(self, name: str, *, mapping: Mapping[str, Value]) -> Any: ...
    def hdel(self, name: str, *fields: str) -> Any: ...
    def hincrby(self, name: str, key: str, amount: int = 1) -> Any: ...
    def expire(self, name: str, time: int) -> Any: ...
    def set(self, name: str, value: Value, *, ex: int | None = None) -> Any: ...
    def xadd(self, name: str, fields: Mapping[str, Value], *, maxlen: int | None = None,
             approximate: bool = True) -> Any: ...
    def rpush(self, name: str, *values: Value) -> Any: ...
    def ltrim(self, name: str, start: int, end: int) -> Any: ...
    def execute(self) -> list[Any]: ...


class Batch:
    """Commands for one round trip on ``connection``."""

    def __init__(self, owner: Batcher) -> None:
        self.owner = owner
        self.commands: list[tuple[Value, ...]] = []
        self.in_flight: deque[int] = deque()  # replies owed per send not yet received, oldest first

    def __len__(self) -> int:
        return len(self.commands)

    def hset(self, name: str, *, mapping: Mapping[str, Value]) -> None:
        self.commands.append(("HSET", name, *chain.from_iterable(mapping.items())))

    def hdel(self, name: str, *fields: str) -> None:
        self.commands.append(("HDEL", name, *fields))

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        self.commands.append(("HINCRBY", name, key, amount))

    def expire(self, name: str, time: int) -> None:
        self.commands.append(("EXPIRE", name, time))

    def set(self, name: str, value: Value, *, ex: int | None = None) -> None:
        self.commands.append(("SET", name, value) if ex is None else ("SET", name, value, "EX", ex))

    def xadd(self, name: str, fields: Mapping[str, Value], *, maxlen: int | None = None,
             approximate: bool = True) -> None:
        trim: tuple[Value, ...] = () if maxlen is None else ("MAXLEN", "~" if approximate else "=", maxlen)
        self.commands.append(("XADD", name, *trim, "*", *chain.from_iterable(fields.items())))

    def rpush(self, name: str, *values: Value) -> None:
        self.commands.append(("RPUSH", name, *values))

    def ltrim(self, name: str, start: int, end: int) -> None:
        self.commands.append(("LTRIM", name, start, end))

    def replace_hash(self, name: str, mapping: Mapping[str, Value], ttl_s: int | None) -> None:
        """DEL + HSET + EXPIRE as one MULTI/EXEC inside the batch: atomic on the server, no round trip of its own.

        (A transaction in a pipeline is what redis-py's own ``pipeline(transaction=True)`` sends.)
        """
        self.commands.append(("MULTI",))
        self.commands.append(("DEL", name))
        if mapping:
            self.hset(name, mapping=mapping)
            if ttl_s is not None:
                self.expire(name, ttl_s)
        self.commands.append(("EXEC",))

    def execute(self) -> list[Any]:
        """Send everything queued in one write; Redis's raw replies (no redis-py callbacks: SET gives "OK").

        The first error reply is raised once every reply has been read.
        """
        self.send()
        replies: list[Any] = []
        while self.in_flight:
            replies += self.receive()
        return replies

    def send(self) -> None:
        """Send what is queued in one write, without waiting: :meth:`receive` reads the replies, sends in order.

        Redis executes a part while the caller queues the next, and the first part's replies are read
        (its writes known done) before the last part is even queued."""
        commands, self.commands = self.commands, []
        if not commands:
            self.in_flight.append(0)  # each send has its receive, even an empty one
            return
        packed = pack(commands)
        conn = self.owner.connection()
        try:
            conn.send_packed_command([packed])
        except BaseException:
            self._abandon(conn)
            raise
        self.in_flight.append(len(commands))

    def receive(self) -> list[Any]:
        """The replies to the oldest send not yet received (an empty list for an empty send, or none left).

        An error reply (WRONGTYPE…) is raised once this send's replies and every later send's have been
        read (the connection stays in step); a connection error drops the connection and what was in flight.
        """
        owed = self.in_flight.popleft() if self.in_flight else 0
        if not owed:
            return []
        conn = self.owner.connection()
        try:
            replies = self._read(conn, owed)
            failed = next((r for r in replies if isinstance(r, ResponseError)), None)
            if failed is not None:
                while self.in_flight:
                    self._read(conn, self.in_flight.popleft())
                raise failed
        except ResponseError:
            raise
        except BaseException:
            self._abandon(conn)
            raise
        return replies

    @staticmethod
    def _read(conn: Any, n: int) -> list[Any]:
        replies: list[Any] = []
        for _ in range(n):
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:  # a reply like any other: the connection is still in step
                replies.append(exc)
        return replies

    def abandon(self) -> None:
        """Give up the replies still owed (the caller failed between a send and its receive): the connection
        is out of step, so it is dropped and the next batch starts on a fresh one."""
        if self.in_flight:
            self._abandon(self.owner.connection())

    def _abandon(self, conn: Any) -> None:
        """A half-sent or half-read exchange is useless: start clean next time."""
        self.in_flight.clear()
        conn.disconnect()
        self.owner.drop()


def pack(commands: list[tuple[Value, ...]]) -> bytes:
    """The commands in Redis's protocol, as redis-py's ``pack_commands`` would send them; a value that is not
    str, int, float or bytes is redis-py's ``DataError`` (nothing is sent)."""
    try:
        return b"".join([hiredis.pack_command(c) for c in commands])  # type: ignore[arg-type]  # stub: 1-tuple
    except TypeError as exc:
        raise DataError(f"{exc} (in {str(commands)[:200]})") from None


class Batcher:
    """Hands out batches on one connection, taken from the store's pool at the first write and kept."""

    def __init__(self, store: Store) -> None:
        self.pool = store.client.connection_pool
        self._connection: Any = None

    def __call__(self) -> Batch:
        return Batch(self)

    def connection(self) -> Any:
        if self._connection is None:  # connects now: Redis being down raises here, inside execute
            self._connection = self.pool.get_connection()
        return self._connection

    def drop(self) -> None:
        """Hand a failed connection back: the next write takes one from the pool, which connects it through
        the pool's own ``connect`` — for Sentinel, to whichever server is the master now. (redis-py's
        connection reconnects by itself to the address it had: after a failover, the dead primary's.)"""
        if self._connection is not None:
            self.pool.release(self._connection)
            self._connection = None


def batcher_for(store: Store) -> Callable[[], WriteBatch]:
    """Batches on one held connection; redis-py's pipelines on Redis Cluster (one flush spans nodes)."""
    if getattr(store.client, "connection_pool", None) is None:
        return lambda: store.client.pipeline(transaction=False)
    return Batcher(store)
