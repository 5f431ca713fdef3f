"""The only path from a tier queue to a channel outbox: members due by qc's clock (Redis ``TIME``) move.

Why a loop of its own: due times are promises to the second (premium at once, basic +60 s, free
+300 s), so the mover looks again as soon as the earliest member can be due, bounded by
:data:`MAX_IDLE_S` real seconds (another process may add an earlier one) and woken at once by this
process's intake. Several movers may run (one per `qc distribute`): ``queues.move_due`` leases what it
claims, so none moves a member another is moving, and a crashed one's members come back after
:data:`LEASE_S` real seconds.

A member that does not decode, or names a channel this process does not route, cannot reach any
outbox: it is dead-lettered, then settled, so it never blocks the queue.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

from qc.core.codec import Absent
from qc.distribute import codec
from qc.distribute.cycle import metrics
from qc.distribute.cycle.clockmap import TimeSource, redis_now, resolve
from qc.distribute.cycle.queues import DelayQueue, Outbox, move_due, outbox, tier_queue
from qc.distribute.model import CHANNELS, ChannelName, Routing
from qc.runtime.store import Store

log = logging.getLogger(__name__)

MAX_IDLE_S = 0.25  # real seconds between two looks at a queue with nothing due sooner
MIN_IDLE_S = 0.005
LEASE_S = 5.0  # real seconds a claim hides its members: a move takes one pipeline, milliseconds
BATCH = 200


class Mover:
    """Moves every tier's due members to their channels' outboxes."""

    def __init__(self, store: Store, routing: Routing, time: TimeSource, consumer: str) -> None:
        self.store, self.routing, self.time = store, routing, time
        self.queues: dict[str, DelayQueue] = {t.name: tier_queue(store, t.name, time) for t in routing.tiers}
        self.outboxes: dict[tuple[str, ChannelName], Outbox] = {
            (t.name, ch): outbox(store, t.name, ch, consumer)
            for t in routing.tiers for ch in CHANNELS if any(x.channel == ch for x in routing.targets_for(t.name))}
        for box in self.outboxes.values():
            box.ensure_group()

    def _route(self, tier: str, member: str) -> Sequence[Outbox]:
        got = codec.delivery_from_redis(member, key=f"{self.queues[tier].key.name}[{member[:60]}]")
        if isinstance(got, Absent):
            log.error("distribute: unreadable queue member (%s): dead-lettered", got)
            metrics.dead_letter(self.store, member, tier, "unknown", metrics.DeadReason.PERMANENT,
                                f"unreadable: {got.reason}"[:codec.MAX_REASON])
            return ()
        box = self.outboxes.get((got.tier, got.channel))
        if box is None or got.tier != tier:
            log.error("distribute: %s has no outbox here (tier %s, channel %s not routed): dead-lettered",
                      got.ident, got.tier, got.channel)
            metrics.dead_letter(self.store, member, got.tier, got.channel, metrics.DeadReason.PERMANENT,
                                "no route: tier or channel not configured")
            return ()
        return (box,)

    def step(self) -> int:
        """One pass over every queue; the members moved."""
        moved = 0
        for tier, queue in self.queues.items():
            route = functools.partial(self._route, tier)
            while True:
                done = move_due(queue, route, limit=BATCH, lease_s=LEASE_S)
                moved += len(done.claim.members)
                if len(done.claim.members) < BATCH:
                    break
        return moved

    def idle_s(self) -> float:
        """Real seconds until the earliest member anywhere may be due, within [MIN_IDLE_S, MAX_IDLE_S]."""
        earliest = [d for d in (q.next_due() for q in self.queues.values()) if d is not None]
        if not earliest:
            return MAX_IDLE_S
        tm = resolve(self.time)
        wait = (min(earliest) - redis_now(self.store, tm)) / tm.speed
        return min(MAX_IDLE_S, max(MIN_IDLE_S, wait))
