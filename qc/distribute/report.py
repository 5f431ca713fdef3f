"""What `qc distribute status` and distribution's rows of `qc status` show, read from Redis.

Read-only, through the codecs (``qc.distribute.codec`` for the metrics, the queue members of the dead
letters): per tier × channel the counters and latency, each tier queue's depth and next due time,
each outbox's length and unacknowledged entries, the dead letters, the disabled targets, and the
worker's liveness. Nothing here holds a URL or a credential: targets are shown by name.
"""

from __future__ import annotations

import logging
from typing import Any

from qc.core import clock, keys
from qc.core.clock import Clock
from qc.core.codec import Absent
from qc.distribute import codec
from qc.distribute.cycle import NAME, metrics
from qc.distribute.cycle.clockmap import redis_now, resolve
from qc.distribute.cycle.queues import outbox, tier_queue
from qc.distribute.model import CHANNELS, ChannelName, Routing
from qc.distribute.table import Lane, Status, TierQueue
from qc.runtime.codec import is_missing
from qc.runtime.health import Check
from qc.runtime.liveness import live_worker
from qc.runtime.store import Store

log = logging.getLogger(__name__)
DEAD_SHOWN = 10


def _lanes(store: Store, routing: Routing, rows: dict[tuple[str, ChannelName], codec.ChannelMetrics]) -> list[Lane]:
    """Every routed tier × channel in routing order, then any other one the metrics still hold."""
    routed = [(t.name, c) for t in routing.tiers for c in CHANNELS
              if any(x.channel == c for x in routing.targets_for(t.name))]
    order = {t.name: i for i, t in enumerate(routing.tiers)}
    others = sorted(set(rows) - set(routed), key=lambda k: (order.get(k[0], len(order)), k[0], CHANNELS.index(k[1])))
    out = []
    for tier, ch in [*routed, *others]:
        box = outbox(store, tier, ch, "status")
        row = rows.get((tier, ch)) or codec.ChannelMetrics(tier, ch)
        targets = tuple(t.name for t in routing.targets_for(tier) if t.channel == ch) if (tier, ch) in routed else ()
        out.append(Lane(tier, ch, targets, row, box.length(), box.pending()))
    return out


def load(store: Store, routing: Routing, time: Clock) -> Status:
    """Read the whole status (one pass; Redis errors go to the caller)."""
    got = metrics.read(store)
    problem = "" if isinstance(got, tuple) or is_missing(got) else str(got)
    rows = {(r.tier, r.channel): r for r in got} if isinstance(got, tuple) else {}
    tiers = []
    for t in routing.tiers:
        queue = tier_queue(store, t.name, time)
        tiers.append(TierQueue(t.name, t.delay_s, queue.size(), queue.next_due()))
    live = live_worker(store, NAME, clock.wall_epoch())
    worker = live.describe() if live is not None else "no live `qc distribute` (none registered with a fresh heartbeat)"
    disabled = tuple(sorted(str(m) for m in store.client.smembers(keys.distribution_disabled().name)))
    return Status(redis_now(store, resolve(time)), isinstance(time, clock.SimClock), tuple(tiers),
                  tuple(_lanes(store, routing, rows)), problem, int(store.client.xlen(keys.distribution_dead().name)),
                  tuple(dead_doc(d) for d in metrics.dead_letters(store, DEAD_SHOWN)), disabled, worker)


def dead_doc(letter: metrics.DeadLetter) -> dict[str, Any]:
    """A dead letter for people and JSON: the delivery's fields when its item decodes."""
    d = codec.delivery_from_redis(letter.item, key=f"{keys.distribution_dead().name}#{letter.id}")
    base = {"id": letter.id, "tier": letter.tier, "channel": letter.channel, "reason": letter.reason,
            "detail": letter.detail}
    if isinstance(d, Absent):
        return {**base, "signal_id": None, "target": None, "attempt": None, "due": None}
    return {**base, "signal_id": d.signal_id, "target": d.target, "attempt": d.attempt, "due": d.due}


def health(store: Store) -> list[Check]:
    """Distribution's rows of `qc status` (only once distribution has run): dead letters, uncertain
    deliveries and disabled targets, each a WARN (someone should look), never an alert."""
    got = metrics.read(store)
    dead = int(store.client.xlen(keys.distribution_dead().name))
    disabled = sorted(str(m) for m in store.client.smembers(keys.distribution_disabled().name))
    if is_missing(got) and not dead and not disabled:
        return []
    if isinstance(got, Absent) and not is_missing(got):
        return [Check(keys.distribution_metrics().name, got.reason, "readable", False)]
    uncertain = sum(r.uncertain for r in got) if isinstance(got, tuple) else 0
    look = "0 (see `qc distribute status`)"
    return [Check("distribution dead letters", str(dead), look, True, dead, 0, "items", warn=dead > 0),
            Check("distribution uncertain", str(uncertain), look, True, uncertain, 0, "deliveries", warn=uncertain > 0),
            Check("distribution disabled", ", ".join(disabled) or "none", "none (`qc distribute enable`)", True,
                  len(disabled), 0, "targets", warn=bool(disabled))]
