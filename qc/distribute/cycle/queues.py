"""Tier queues and channel outboxes: never early, never lost, one key per Redis call (Cluster-safe).

A tier queue (``distribution:{tier}:queue``) is a sorted set of opaque members (the item codec's
JSON, which carries the item's own due time) scored by due time on qc's clock. The only path from a
tier queue to a channel outbox is the mover:

1. :meth:`DelayQueue.claim_due` — one Lua script on the queue key — reads Redis ``TIME``, maps it to
   qc's time (:mod:`.clockmap`), takes up to ``limit`` members with ``score <= now`` and re-scores them
   to the end of a lease, so no other mover sees them while this one moves them;
2. the caller XADDs each member to its outbox stream(s) (:meth:`Outbox.add`);
3. :meth:`DelayQueue.settle` removes the members — only those still scored at this claim's lease
   end, so a member another mover re-claimed after our lease lapsed, or one re-scheduled meanwhile,
   is left to its new owner.

A crash between 1 and 3 leaves the member in the queue; it reappears when the lease ends and is
moved again. The outbox may then hold it twice, which the sender's idempotency key absorbs
(:mod:`.sent`); nothing is ever lost, and nothing becomes visible before its score. Whoever removes
a member has written it to the outbox first. Retries go back into a queue as new members with a
later due time (:meth:`DelayQueue.schedule`).

Leases are real seconds: they bound how long a *process* may take to move a member, which a
simulated clock running 60x does not shorten. Due times are qc's time.

An outbox (``distribution:{tier}:{channel}:outbox``) is a stream with the consumer group
``distribute``: senders read new entries with a block timeout, acknowledge once the outcome is
recorded, and take over entries a dead sender left idle longer than ``min_idle_s`` (XAUTOCLAIM).
``min_idle_s`` must exceed the longest send (a channel's HTTP timeout), or a slow live sender's
entry is taken over; the idempotency key then reports it as in flight, never as sendable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from qc.core import keys
from qc.core.keys import Key
from qc.distribute.cycle.clockmap import TIME_LUA, TimeSource, fmt, resolve
from qc.runtime.store import Store

log = logging.getLogger(__name__)

MAX_CLAIM = 1000  # members per claim: one script's reply (and Lua's unpack) stays small
DEFAULT_LEASE_S = 30.0
GROUP = "distribute"
ITEM_FIELD = "item"
OUTBOX_MAXLEN = 100_000  # ~cap per outbox; hours of a burst at channel rates, so only acknowledged entries go
MAX_BLOCK_MS = 4_000  # below the client's 5 s socket timeout
DEFAULT_MIN_IDLE_S = 30.0

# KEYS[1] the queue; ARGV: time map (3), limit, lease (real s), ttl (s).
# Returns {real, now, lease_score, member...}: Redis TIME, qc's time compared against (score <= now), and
# the score every returned member now has (qc's time at real + lease); numbers as %.17g strings.
CLAIM_LUA = TIME_LUA + """
local limit = tonumber(ARGV[4])
local lease = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local now_s = string.format('%.17g', now)
local until_s = string.format('%.17g', qc_at(real + lease))
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, limit)
local reply = {string.format('%.17g', real), now_s, until_s}
if #members > 0 then
  local args = {}
  for i, m in ipairs(members) do
    args[2 * i - 1] = until_s
    args[2 * i] = m
    reply[3 + i] = m
  end
  redis.call('ZADD', KEYS[1], 'XX', unpack(args))
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
end
return reply
"""

# KEYS[1] the queue; ARGV[1] a claim's lease score, ARGV[2..] members. Removes each member still scored
# exactly at that lease (numbers compared as doubles); returns how many it removed.
SETTLE_LUA = """
local lease = tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) == lease then
    redis.call('ZREM', KEYS[1], ARGV[i])
    removed = removed + 1
  end
end
return removed
"""


@dataclass(frozen=True)
class Claim:
    """What one :meth:`DelayQueue.claim_due` took, and on which clock readings."""

    members: tuple[str, ...]
    real: float  # Redis TIME (s)
    now: float  # qc's time the scores were compared with: every member's due time is <= now
    lease_score: str  # the members' score until settled (exact, for settle's comparison)

    @property
    def lease_until(self) -> float:
        """qc's time at which an unsettled member becomes claimable again."""
        return float(self.lease_score)


class DelayQueue:
    """One sorted set of members scored by due time on qc's clock."""

    def __init__(self, store: Store, key: Key, time: TimeSource) -> None:
        self.store = store
        self.key = key
        self.time = time
        self._claim = store.client.register_script(CLAIM_LUA)
        self._settle = store.client.register_script(SETTLE_LUA)

    def schedule(self, member: str, due: float, *, only_new: bool = False) -> bool:
        """Put ``member`` in the queue due at ``due`` (qc's epoch seconds); True when it was not there.

        ``only_new`` (ZADD NX) never moves a member already queued (or leased): for a retry that must
        not override an earlier schedule. Without it an existing member's due time is replaced.
        """
        if not math.isfinite(due):
            raise ValueError(f"due time must be finite, got {due!r}")
        pipe = self.store.client.pipeline(transaction=False)
        if only_new:
            pipe.zadd(self.key.name, {member: due}, nx=True)
        else:
            pipe.zadd(self.key.name, {member: due})
        if self.key.ttl_s is not None:
            pipe.expire(self.key.name, self.key.ttl_s)
        return bool(pipe.execute()[0])

    def claim_due(self, limit: int = 100, lease_s: float = DEFAULT_LEASE_S) -> Claim:
        """Take up to ``limit`` members due by qc's time now (per Redis TIME), hidden for ``lease_s`` real s."""
        if not 0 < limit <= MAX_CLAIM:
            raise ValueError(f"claim limit must be in 1..{MAX_CLAIM}, got {limit}")
        if not lease_s > 0:
            raise ValueError(f"lease must be positive, got {lease_s!r}")
        tm = resolve(self.time)
        reply: list[Any] = self._claim(keys=[self.key.name],
                                       args=[*tm.args(), limit, fmt(lease_s), self.key.ttl_s or 0])
        real, now, lease_score, *members = reply
        return Claim(tuple(str(m) for m in members), float(real), float(now), str(lease_score))

    def settle(self, claim: Claim, members: tuple[str, ...] | None = None) -> int:
        """Remove ``claim``'s members (or the given subset) once they are in their outboxes.

        A member is removed only while it still carries this claim's lease score; returns how many were.
        """
        chosen = claim.members if members is None else members
        if not chosen:
            return 0
        return int(self._settle(keys=[self.key.name], args=[claim.lease_score, *chosen]))

    def score(self, member: str) -> float | None:
        """The member's current score: its due time, or the end of a lease while it is being moved."""
        value = self.store.client.zscore(self.key.name, member)
        return None if value is None else float(value)

    def next_due(self) -> float | None:
        """The lowest score (qc's time) in the queue, or None when it is empty: how long a mover may idle."""
        first = self.store.client.zrange(self.key.name, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    def size(self) -> int:
        return int(self.store.client.zcard(self.key.name))


def tier_queue(store: Store, tier: str, time: TimeSource) -> DelayQueue:
    """``distribution:{tier}:queue``."""
    return DelayQueue(store, keys.distribution_queue(tier), time)


# --- outboxes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One outbox entry: its stream id, the queue member, and whether a dead consumer had it before."""

    id: str
    member: str
    reclaimed: bool = False


@dataclass(frozen=True)
class Reclaimed:
    """Entries taken over from idle consumers, and ids whose entry was trimmed away (acknowledged here)."""

    entries: tuple[Entry, ...]
    vanished: tuple[str, ...]


class Outbox:
    """One tier × channel stream read by the consumer group ``distribute``; one key per call."""

    def __init__(self, store: Store, key: Key, consumer: str, maxlen: int = OUTBOX_MAXLEN) -> None:
        self.store = store
        self.key = key
        self.consumer = consumer
        self.maxlen = maxlen
        self._cursor = "0-0"

    def ensure_group(self) -> None:
        """Create the group (and the stream) from the first entry; an existing group is kept as it is."""
        try:
            self.store.client.xgroup_create(self.key.name, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        if self.key.ttl_s is not None:  # MKSTREAM wrote the key: it must carry its namespace TTL too
            self.store.client.expire(self.key.name, self.key.ttl_s)

    def add(self, member: str) -> str:
        """Append ``member`` (the mover's step 2); returns the entry id."""
        pipe = self.store.client.pipeline(transaction=False)
        self.add_to(pipe, member)
        return str(pipe.execute()[0])

    def add_to(self, pipe: Any, member: str) -> None:
        """Queue the append on a non-transactional pipeline (a batch: Cluster splits it by node)."""
        pipe.xadd(self.key.name, {ITEM_FIELD: member}, maxlen=self.maxlen, approximate=True)
        if self.key.ttl_s is not None:
            pipe.expire(self.key.name, self.key.ttl_s)

    def read(self, count: int = 100, block_ms: int = 1000) -> list[Entry]:
        """New entries for this consumer, waiting up to ``block_ms`` (real ms) for the first one."""
        if not 0 <= block_ms <= MAX_BLOCK_MS:
            raise ValueError(f"block must be in 0..{MAX_BLOCK_MS} ms (the client's socket timeout is 5 s)")
        return self._read(">", count, block_ms or None)

    def backlog(self, count: int = 100) -> list[Entry]:
        """Entries delivered to this consumer name and never acknowledged (a restart under the same name)."""
        return [Entry(e.id, e.member, reclaimed=True) for e in self._read("0", count, None)]

    def _read(self, start: str, count: int, block: int | None) -> list[Entry]:
        for attempt in (1, 2):
            try:
                reply = self.store.client.xreadgroup(GROUP, self.consumer, {self.key.name: start},
                                                     count=count, block=block) or []
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc) or attempt == 2:
                    raise
                self.ensure_group()  # the stream expired with its group (a day without writes)
                continue
            return list(self._sorted([e for _stream, entries in reply for e in entries], reclaimed=False).entries)
        return []

    def reclaim(self, min_idle_s: float = DEFAULT_MIN_IDLE_S, count: int = 100) -> Reclaimed:
        """Take over entries idle longer than ``min_idle_s`` real seconds (a dead consumer's), one page.

        Successive calls walk the pending list from where the last one stopped, wrapping around. An entry
        trimmed from the stream while pending has nothing left to send: it is acknowledged and reported.
        """
        for attempt in (1, 2):
            try:
                reply = self.store.client.xautoclaim(self.key.name, GROUP, self.consumer,
                                                     int(min_idle_s * 1000), start_id=self._cursor, count=count)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc) or attempt == 2:
                    raise
                self.ensure_group()
                continue
            self._cursor = str(reply[0])
            got = self._sorted(reply[1], reclaimed=True)
            gone = [str(i) for i in reply[2]] if len(reply) > 2 else []  # Redis 7 reports trimmed ids apart
            if gone:
                self._forget(gone)
            return Reclaimed(got.entries, (*got.vanished, *gone))
        return Reclaimed((), ())

    def _sorted(self, raw: list[Any], *, reclaimed: bool) -> Reclaimed:
        """Split a reply into deliverable entries and trimmed ones, which are acknowledged here."""
        entries: list[Entry] = []
        vanished: list[str] = []
        nameless = False
        for eid, fields in raw:
            if eid is None:
                nameless = True  # Redis 6.2's XAUTOCLAIM answers a trimmed entry with a bare nil
            elif fields and ITEM_FIELD in fields:
                entries.append(Entry(str(eid), str(fields[ITEM_FIELD]), reclaimed=reclaimed))
            else:
                vanished.append(str(eid))  # XREADGROUP of our history: a trimmed entry has no fields
        if nameless:
            vanished.extend(self._trimmed_own())
        if vanished:
            self._forget(vanished)
        return Reclaimed(tuple(entries), tuple(vanished))

    def _trimmed_own(self) -> list[str]:
        """Ids this consumer has pending whose entry is gone from the stream (found one XRANGE each)."""
        pending = self.store.client.xpending_range(self.key.name, GROUP, min="-", max="+", count=MAX_CLAIM,
                                                   consumername=self.consumer)
        ids = [str(p["message_id"]) for p in pending]
        if not ids:
            return []
        pipe = self.store.client.pipeline(transaction=False)
        for eid in ids:
            pipe.xrange(self.key.name, min=eid, max=eid)
        return [eid for eid, found in zip(ids, pipe.execute(), strict=True) if not found]

    def _forget(self, vanished: list[str]) -> None:
        self.ack(*vanished)
        log.warning("%s: %d pending entries were trimmed before delivery (%s): lost to MAXLEN, acknowledged",
                    self.key.name, len(vanished), ", ".join(vanished[:5]))

    def ack(self, *entry_ids: str) -> int:
        """Acknowledge entries whose outcome is recorded (sent, uncertain, rescheduled or dead-lettered)."""
        if not entry_ids:
            return 0
        return int(self.store.client.xack(self.key.name, GROUP, *entry_ids))

    def pending(self) -> int:
        """Entries delivered to some consumer and not yet acknowledged."""
        try:
            info = self.store.client.xpending(self.key.name, GROUP)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return 0
            raise
        return int(info["pending"])

    def length(self) -> int:
        return int(self.store.client.xlen(self.key.name))


def prune_consumers(store: Store, stream: str, group: str, idle_s: float) -> int:
    """Forget the consumers of ``group`` with nothing pending that have been idle over ``idle_s`` real seconds.

    Every `qc distribute` process reads under a name of its own, so each restart leaves one behind; a live
    consumer removed here while idle is recreated by its next read. Returns how many were removed.
    """
    try:
        consumers = store.client.xinfo_consumers(stream, group)
    except redis.ResponseError:  # no such stream or group (expired): nothing to prune
        return 0
    gone = [str(c["name"]) for c in consumers if int(c["pending"]) == 0 and int(c["idle"]) > idle_s * 1000]
    for name in gone:
        store.client.xgroup_delconsumer(stream, group, name)
    return len(gone)


def outbox(store: Store, tier: str, channel: str, consumer: str, maxlen: int = OUTBOX_MAXLEN) -> Outbox:
    """``distribution:{tier}:{channel}:outbox`` read as ``consumer`` of the group ``distribute``."""
    return Outbox(store, keys.distribution_outbox(tier, channel), consumer, maxlen)



# --- the mover --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """One mover pass: the claim, entries written per outbox key, and how many members were settled."""

    claim: Claim
    written: int
    settled: int


def move_due(queue: DelayQueue, route: Callable[[str], Sequence[Outbox]], limit: int = 100,
             lease_s: float = DEFAULT_LEASE_S) -> Moved:
    """Claim the due members, append each to every outbox ``route`` names (one batch), then settle them.

    ``route`` decides from the member (its tier's channels); an empty answer settles the member with no
    outbox, so a caller that cannot route an item dead-letters it first. An exception (Redis down) leaves
    the claim unsettled: its members come back after the lease and are moved again, never lost.
    """
    claim = queue.claim_due(limit, lease_s)
    if not claim.members:
        return Moved(claim, 0, 0)
    pipe = queue.store.client.pipeline(transaction=False)
    written = 0
    for member in claim.members:
        for box in route(member):
            box.add_to(pipe, member)
            written += 1
    if written:
        pipe.execute()  # raises on any failed append: nothing is settled, the lease brings all back
    settled = queue.settle(claim)
    return Moved(claim, written, settled)
