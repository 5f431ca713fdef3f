"""What distribution did, per tier × channel: counters, recent latencies, and dead letters.

- ``distribution:metrics`` (the public key): one hash, fields ``{tier}:{channel}:{counter}`` (sent,
  failed, retried, rate_limited, uncertain, expired, dead) added with HINCRBY, the last ``retry_after``
  a channel asked for, and the schema version; the shape is :mod:`qc.distribute.codec`'s, which
  `qc distribute status` reads back. One round trip per call.
- ``distribution:{tier}:{channel}:latency``: the latest :data:`LATENCY_CAP` latencies (sent − due,
  qc seconds), newest first, so status reads p50/p99 over recent deliveries without a growing
  history (LPUSH + LTRIM). A negative latency — a send before its due time — is refused by the codec.
- ``distribution:dead``: a capped stream of items that will not be delivered, with the reason
  (expired past the channel's maximum lateness, a permanent error, retries exhausted), and of those
  that may have been (uncertain: never resent, an operator checks the channel).

Each write is a non-transactional pipeline on one key (Cluster-safe).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from qc.core import keys
from qc.core.codec import VERSION_FIELD, Absent, fmt
from qc.distribute import codec
from qc.distribute.model import ChannelName
from qc.runtime.store import Store

LATENCY_CAP = 1000
DEAD_MAXLEN = 10_000


class DeadReason(enum.Enum):
    EXPIRED = "expired"  # past the channel's maximum lateness: a stale options signal is worse than none
    PERMANENT = "permanent"  # the channel refused it for good (blocked bot, chat not found, 410, too long)
    EXHAUSTED = "exhausted"  # transient failures until the retry policy ran out
    UNCERTAIN = "uncertain"  # may have reached the channel (a timeout after sending): never resent, check by hand


def record(store: Store, tier: str, channel: ChannelName, counts: Mapping[str, int],
           retry_after_s: float | None = None) -> None:
    """Add ``counts`` (codec counter names) to one tier × channel and keep the last ``retry_after_s`` seen."""
    key = keys.distribution_metrics()
    fields = {VERSION_FIELD: str(codec.SCHEMA)}
    if retry_after_s is not None:
        fields[codec.metric_field(tier, channel, codec.RETRY_AFTER_FIELD)] = fmt(float(retry_after_s))
    increments = {codec.metric_field(tier, channel, name): amount for name, amount in counts.items() if amount}
    pipe = store.client.pipeline(transaction=False)
    pipe.hset(key.name, mapping=fields)
    for name, amount in increments.items():
        pipe.hincrby(key.name, name, amount)
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)
    pipe.execute()


def read(store: Store) -> tuple[codec.ChannelMetrics, ...] | Absent:
    """Every tier × channel row, each with the summary of its recent latencies (Absent: the hash is bad)."""
    key = keys.distribution_metrics()
    rows = codec.metrics_from_redis(store.client.hgetall(key.name) or None, key=key.name)
    if isinstance(rows, Absent):
        return rows
    out = []
    for row in rows:
        recent = latencies(store, row.tier, row.channel)
        out.append(row.with_latencies(recent) if not isinstance(recent, Absent) else row)
    return tuple(out)


def record_latency(store: Store, tier: str, channel: ChannelName, latency_s: float) -> None:
    """Keep one delivery's sent − due (qc seconds) among the latest :data:`LATENCY_CAP`."""
    key = keys.distribution_latency(tier, channel)
    pipe = store.client.pipeline(transaction=False)
    pipe.lpush(key.name, codec.latency_to_redis(latency_s))
    pipe.ltrim(key.name, 0, LATENCY_CAP - 1)
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)
    pipe.execute()


def latencies(store: Store, tier: str, channel: ChannelName) -> tuple[float, ...] | Absent:
    """The recent latencies, newest first."""
    key = keys.distribution_latency(tier, channel)
    return codec.latencies_from_redis(store.client.lrange(key.name, 0, -1), key=key.name)


@dataclass(frozen=True)
class DeadLetter:
    id: str
    item: str
    tier: str
    channel: str
    reason: str
    detail: str


def dead_letter(store: Store, item: str, tier: str, channel: str, reason: DeadReason,
                detail: str = "") -> str:
    """Record an item that will not be delivered, and why; returns the stream entry id. ``channel`` is
    ``unknown`` for an item too broken to say."""
    key = keys.distribution_dead()
    pipe = store.client.pipeline(transaction=False)
    pipe.xadd(key.name, {"item": item, "tier": tier, "channel": channel, "reason": reason.value,
                         "detail": detail}, maxlen=DEAD_MAXLEN, approximate=True)
    if key.ttl_s is not None:
        pipe.expire(key.name, key.ttl_s)
    return str(pipe.execute()[0])


def dead_letters(store: Store, count: int = 100) -> list[DeadLetter]:
    """The latest dead letters, newest first."""
    return [DeadLetter(str(eid), f.get("item", ""), f.get("tier", ""), f.get("channel", ""), f.get("reason", ""),
                       f.get("detail", ""))
            for eid, f in store.client.xrevrange(keys.distribution_dead().name, count=count)]
