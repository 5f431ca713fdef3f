"""Recording what became of a delivery: metrics, latency, dead letters, the signal's lineage, disabled targets.

Why one module: every outcome is written the same way whichever path decided it (a channel's answer,
an expiry before sending, a reclaimed entry left in doubt), and it is written before the outbox entry
is acknowledged, so a crash in between repeats the recording, never loses it.

The lineage is a read-modify-write of ``signals:record:{id}``, which `qc execute` also extends: it
runs under WATCH (one key: Cluster-safe), so two `qc distribute` senders finishing deliveries of one
signal at once both land, and the record keeps its TTL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace

import redis

from qc.core import clock, keys
from qc.distribute import codec
from qc.distribute.cycle import metrics
from qc.distribute.model import ChannelName, Delivery
from qc.distribute.policy import COUNTER_OF, Outcome
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)

LINEAGE_TRIES = 8
DISABLED_CACHE_S = 1.0  # real seconds a read of the disabled set is trusted
DEAD_REASON: dict[str, metrics.DeadReason] = {"failed": metrics.DeadReason.PERMANENT,
                                              "disabled": metrics.DeadReason.PERMANENT,
                                              "expired": metrics.DeadReason.EXPIRED,
                                              "uncertain": metrics.DeadReason.UNCERTAIN}
EXHAUSTED_MARK = "retries exhausted"  # policy's reason when the schedule ran out


def target_id(channel: str, target: str) -> str:
    """``{channel}:{target}``: a member of the disabled set."""
    return f"{channel}:{target}"


class Outcomes:
    """The writes of one outcome; each a few single-key round trips."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._disabled: tuple[float, frozenset[str]] | None = None

    def final(self, d: Delivery, outcome: codec.FinalOutcome, at: float, *, status: int | None = None,
              reason: str = "", item: str = "") -> None:
        """A delivery ended: count it, keep its latency if sent, dead-letter it if it will not arrive, and
        put it on the signal's lineage. ``at``: qc time of the decision; ``item``: the queue member."""
        counter = COUNTER_OF[outcome]
        dead = DEAD_REASON.get(outcome)
        metrics.record(self.store, d.tier, d.channel, {counter: 1, "dead": 1 if dead else 0})
        if outcome == "sent":
            metrics.record_latency(self.store, d.tier, d.channel, max(0.0, at - d.due))
        if dead is not None:
            why = metrics.DeadReason.EXHAUSTED if reason.startswith(EXHAUSTED_MARK) else dead
            metrics.dead_letter(self.store, item or codec.delivery_to_redis(d), d.tier, d.channel, why,
                                f"{d.target}: {reason}"[:codec.MAX_REASON])
        self.note_lineage(codec.DeliveryRecord.of(d, outcome, at, status=status, reason=reason))

    def requeued(self, d: Delivery, outcome: Outcome, retry_after_s: float | None) -> None:
        """Another attempt was scheduled: ``retry`` (an attempt used) or ``rate_limited`` (the channel's wait)."""
        metrics.record(self.store, d.tier, d.channel, {COUNTER_OF[outcome]: 1}, retry_after_s=retry_after_s)

    def note_lineage(self, record: codec.DeliveryRecord, *, only_if_missing: bool = False) -> bool:
        """Put ``record`` under the signal's ``lineage["distribution"]``; False when the record is gone.
        ``only_if_missing``: leave an outcome already there as it is (a repair after a crash, see ``deliver``)."""
        key = keys.signal_record(record.signal_id)
        for _ in range(LINEAGE_TRIES):
            with self.store.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key.name)
                    got = Signal.from_redis(pipe.get(key.name), key=key.name)
                    if not isinstance(got, Signal):
                        log.info("distribute: no lineage for %s (%s)", record.field, got)
                        return False
                    existing = got.lineage.get(codec.LINEAGE_KEY)
                    if only_if_missing and isinstance(existing, Mapping) and record.field in existing:
                        return True
                    lineage = codec.with_delivery(got.lineage, record)
                    pipe.multi()
                    pipe.set(key.name, replace(got, lineage=lineage).to_redis(), keepttl=True)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue  # another writer (a sender, the executor) changed the record: read it again
        log.warning("distribute: the lineage of %s kept changing; %s not recorded there", record.signal_id,
                    record.field)
        return False

    # --- disabled targets ---------------------------------------------------------------------------------

    def disable(self, channel: ChannelName, targets: tuple[str, ...], reason: str) -> None:
        """Stop sending to ``targets`` until an operator re-enables them."""
        if targets:
            self.store.client.sadd(keys.distribution_disabled().name, *(target_id(channel, t) for t in targets))
            self._disabled = None
            log.error("distribute: %s disabled (%s); `qc distribute enable %s` after fixing it",
                      ", ".join(target_id(channel, t) for t in targets), reason, target_id(channel, targets[0]))

    def disabled(self) -> frozenset[str]:
        """The disabled targets, read at most once per :data:`DISABLED_CACHE_S` (this process's own
        disabling is seen at once)."""
        now = clock.monotonic()
        if self._disabled is None or now - self._disabled[0] > DISABLED_CACHE_S:
            members = frozenset(str(m) for m in self.store.client.smembers(keys.distribution_disabled().name))
            self._disabled = (now, members)
        return self._disabled[1]
