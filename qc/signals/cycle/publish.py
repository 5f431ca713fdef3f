"""Emit a signal exactly once per contract-level fingerprint, and hand it on without losing it.

Order of writes, so two `qc signals` processes, a restart or a crash between any two steps never
yield two signals for one opportunity, nor a claimed one nobody receives:

1. the signal's record (``signals:record:{id}``), not yet in the log;
2. ``SET signals:emitted:{fp} id NX EX dwell``: the claim; losing it means another process (or an
   earlier cycle) holds the opportunity: our record is deleted and the earlier id returned;
3. one pipeline: the pending list (LPUSH + LTRIM, newest first), the execution and distribution
   streams (XADD; their consumer groups are created with the stream, from id 0, so an item
   written before `qc execute` first starts is still delivered), the cooldown, and last the log.

A crash after 2 and before 3 leaves a claimed record that is not in the log: a cycle that sees
the fingerprint again at least ``HEAL_AFTER_S`` after the claim publishes it then
(:meth:`Publisher.claim` heals; ZADD NX on the log makes one healer of two). The consumers are
idempotent by signal id, so a publish repeated after a crash inside 3 is harmless; the one case
left is a publisher stalled more than ``HEAL_AFTER_S`` between 2 and 3 while another heals: the
same id is pushed twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from qc.core import keys
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
EXECUTION_GROUP = "execution"
DISTRIBUTION_GROUP = "distribution"
STREAM_MAXLEN = 10_000
HEAL_AFTER_S = 10  # a claim this old without its log entry was left by a crash, not a publish in flight


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim: ``emitted`` (ours), ``duplicate`` (an earlier id), or ``healed``."""

    result: str
    signal_id: str


class Publisher:
    def __init__(self, store: Store, pending_cap: int) -> None:
        self.store, self.pending_cap = store, pending_cap
        self._groups: set[str] = set()

    def cooling_down(self, symbol: str, strategy: str) -> bool:
        return bool(self.store.client.exists(keys.signal_cooldown(symbol, strategy).name))

    def claim(self, signal: Signal, dwell_s: float, cooldown_s: float) -> Claim:
        """Record, claim the fingerprint, publish; or return the earlier signal's id."""
        c = self.store.client
        record = keys.signal_record(signal.id)
        c.set(record.name, signal.to_redis(), ex=record.ttl_s)
        emitted = keys.signal_emitted(signal.fingerprint)
        dwell = max(1, min(int(dwell_s), emitted.ttl_s or int(dwell_s)))
        if c.set(emitted.name, signal.id, nx=True, ex=dwell):
            self.publish(signal, cooldown_s)
            return Claim("emitted", signal.id)
        c.delete(record.name)
        earlier = c.get(emitted.name)
        if earlier is None:  # the claim expired between the two calls: the next cycle claims it
            return Claim("duplicate", "")
        earlier = str(earlier)
        claim_age_s = dwell - int(c.ttl(emitted.name))
        if claim_age_s >= HEAL_AFTER_S and c.zscore(keys.signals_log().name, earlier) is None:
            raw = c.get(keys.signal_record(earlier).name)
            got = Signal.from_redis(raw, key=keys.signal_record(earlier).name)
            # ZADD NX on the log is the healer's lock: of two processes healing at once, one publishes
            if isinstance(got, Signal) and c.zadd(keys.signals_log().name, {earlier: got.created_at.timestamp()},
                                                  nx=True):
                log.warning("signal %s was claimed but never published (a crash?): publishing it now", earlier)
                self.publish(got, cooldown_s)
                return Claim("healed", earlier)
        return Claim("duplicate", earlier)

    def publish(self, signal: Signal, cooldown_s: float) -> None:
        sym, raw = signal.symbol, signal.to_redis()
        pending, execution, distribution = (keys.signals_pending(sym), keys.signals_execution(sym),
                                            keys.signals_distribution(sym))
        self._ensure_group(execution, EXECUTION_GROUP)
        self._ensure_group(distribution, DISTRIBUTION_GROUP)
        cooldown = keys.signal_cooldown(sym, signal.strategy)
        log_key, open_key = keys.signals_log(), keys.signals_open()
        pipe = self.store.client.pipeline(transaction=False)
        pipe.lpush(pending.name, raw)
        pipe.ltrim(pending.name, 0, self.pending_cap - 1)
        pipe.expire(pending.name, pending.ttl_s)
        for stream in (execution, distribution):
            pipe.xadd(stream.name, {"id": signal.id, "signal": raw}, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(stream.name, stream.ttl_s)
        if cooldown_s > 0:
            pipe.set(cooldown.name, signal.id, ex=max(1, int(cooldown_s)))
        pipe.zadd(open_key.name, {signal.id: signal.time_stop.timestamp()})
        pipe.expire(open_key.name, open_key.ttl_s)
        pipe.zadd(log_key.name, {signal.id: signal.created_at.timestamp()})
        pipe.expire(log_key.name, log_key.ttl_s)
        pipe.execute()

    def _ensure_group(self, stream: keys.Key, group: str) -> None:
        """Create the consumer group with the stream (MKSTREAM, from 0) unless this process saw it exist.

        The streams expire an hour after their last write, taking their groups with them, so a
        missing group is recreated whenever the stream is gone (EXISTS is checked every publish).
        """
        c = self.store.client
        if stream.name in self._groups and c.exists(stream.name):
            return
        try:
            c.xgroup_create(stream.name, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream.name)
