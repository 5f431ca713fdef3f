"""Signals in: each entry of ``signals:{distribution}:SYM`` becomes its deliveries, queued by tier.

Why it is safe to repeat: a signal's plan is a function of the signal alone (its id, symbol and
``created_at``: the time it was published, on qc's clock), so its queue members are the same text
every time and ``ZADD NX`` keeps one of each, whichever process (or restart) handles the entry again.
The entry is acknowledged only once every delivery is queued; an entry a dead process held is
reclaimed after :data:`MIN_IDLE_S`.

A delivery's ``due`` is ``created_at + tier delay``: a signal that reaches distribution late (the
worker was down) is due at once, and past a channel's lateness bound it expires at the sender
rather than arriving stale.

Bad input (an entry without a signal, one that does not decode, an id the model refuses) is logged,
counted in ``monitoring:rejects`` as ``distribute.signal:<reason>`` and acknowledged: it can never
succeed, and it must not block the stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis

from qc.core import keys
from qc.core.codec import Absent
from qc.distribute import codec
from qc.distribute.cycle.clockmap import TimeSource
from qc.distribute.cycle.queues import DelayQueue, tier_queue
from qc.distribute.model import Routing
from qc.runtime.codec import InputRejects
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)

GROUP = "distribution"  # the consumer group `qc signals` creates on keys.signals_distribution(sym)
SIGNAL_FIELD = "signal"
READ_COUNT = 100
MIN_IDLE_S = 15.0  # real seconds: an entry pending this long belongs to a dead process (handling takes ms)
REJECT_SURFACE = "distribute.signal"


class Intake:
    """Reads the symbols' signal streams as ``consumer`` of the group ``distribution``."""

    def __init__(self, store: Store, symbols: Sequence[str], routing: Routing, time: TimeSource, consumer: str,
                 on_scheduled: Callable[[], None] | None = None) -> None:
        self.store, self.symbols, self.routing, self.consumer = store, tuple(symbols), routing, consumer
        self.queues: dict[str, DelayQueue] = {t.name: tier_queue(store, t.name, time) for t in routing.tiers}
        self.on_scheduled = on_scheduled
        self.stop = threading.Event()
        self._cursors = dict.fromkeys(self.symbols, "0-0")
        self._grouped: set[str] = set()

    def streams(self) -> dict[str, str]:
        return {keys.signals_distribution(sym).name: sym for sym in self.symbols}

    def ensure_groups(self) -> None:
        """Create the group with the stream (from 0: a signal published before the first start is delivered)."""
        c = self.store.client
        for sym in self.symbols:
            key = keys.signals_distribution(sym)
            if key.name in self._grouped:
                continue
            try:
                c.xgroup_create(key.name, GROUP, id="0", mkstream=True)
                if key.ttl_s and c.ttl(key.name) == -1:  # MKSTREAM made it: it carries its namespace TTL too
                    c.expire(key.name, key.ttl_s)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._grouped.add(key.name)

    def poll(self, block_ms: int | None) -> int:
        """Read new entries (waiting up to ``block_ms`` real ms; None: not at all) and handle them."""
        self.ensure_groups()
        try:
            reply = self.store.client.xreadgroup(GROUP, self.consumer, dict.fromkeys(self.streams(), ">"),
                                                 count=READ_COUNT, block=block_ms) or []
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped.clear()  # a stream expired with its group (an hour without signals): recreate
            return 0
        return sum(self.handle(str(stream), str(eid), fields) for stream, entries in reply for eid, fields in entries)

    def reclaim(self, min_idle_s: float = MIN_IDLE_S) -> int:
        """Take over and handle entries a dead process left pending, one page per stream."""
        handled = 0
        for stream, sym in self.streams().items():
            try:
                reply = self.store.client.xautoclaim(stream, GROUP, self.consumer, int(min_idle_s * 1000),
                                                     start_id=self._cursors[sym], count=READ_COUNT)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                continue
            self._cursors[sym] = str(reply[0])
            for eid, fields in reply[1]:
                if eid is not None:
                    handled += self.handle(stream, str(eid), fields or {})
        return handled

    def handle(self, stream: str, entry_id: str, fields: dict[str, Any]) -> int:
        """Queue one entry's deliveries, then acknowledge it; 1 when it was a signal, 0 for bad input."""
        signal = Signal.from_redis(fields.get(SIGNAL_FIELD), key=f"{stream}#{entry_id}")
        if isinstance(signal, Absent):
            self._reject("malformed" if fields else "trimmed", str(signal))
            self.store.client.xack(stream, GROUP, entry_id)
            return 0
        try:
            plan = self.routing.plan(signal.id, signal.symbol, signal.created_at.timestamp())
        except ValueError as exc:
            self._reject("unplannable", f"{stream}#{entry_id}: {exc}")
            self.store.client.xack(stream, GROUP, entry_id)
            return 0
        for d in plan:
            self.queues[d.tier].schedule(codec.delivery_to_redis(d), d.due, only_new=True)
        self.store.client.xack(stream, GROUP, entry_id)
        if plan and self.on_scheduled is not None:
            self.on_scheduled()
        log.debug("distribute: signal %s planned as %d deliveries", signal.id, len(plan))
        return 1

    def _reject(self, reason: str, detail: str) -> None:
        log.error("distribute: refused a signal entry (%s): %s", reason, detail)
        self.store.hupdate(keys.input_rejects(), InputRejects.counted(REJECT_SURFACE, {reason: 1}))
