"""A send's tokens from every limit it must fit (``qc.distribute.limits``), shared by all processes.

Why a hold budget: a sender reads one outbox entry at a time and may wait here for its tokens, but
only briefly (:data:`MAX_HOLD_S` real seconds): an entry held longer would look abandoned to other
processes (they reclaim entries idle past the send timeout). A longer wait (a channel's flood pause,
an exhausted X window) hands the entry back to its tier queue, due again when the token is; the
delivery's own ``due`` is kept, so its latency still counts the wait.

Jitter: a bucket's slack covers how much two sends' arrival delays may differ (``BucketShape.within``).
Loopback channels (the simulator) answer within milliseconds; real ones over TLS vary by hundreds.
"""

from __future__ import annotations

import threading

from qc.core import clock
from qc.distribute.cycle.buckets import DEFAULT_JITTER_S, WAIT_PAD_S, BucketShape, TokenBucket, bucket
from qc.distribute.cycle.clockmap import TimeSource, resolve
from qc.distribute.limits import Limit, limits_for, paused_by
from qc.distribute.model import Target
from qc.runtime.store import Store

MAX_HOLD_S = 2.0  # real seconds a sender may wait for tokens while holding an outbox entry
LOOPBACK_JITTER_S = 0.1


class Throttle:
    """Takes the tokens of one send, or says when to come back."""

    def __init__(self, store: Store, time: TimeSource, jitter_s: float = DEFAULT_JITTER_S,
                 stop: threading.Event | None = None, max_hold_s: float = MAX_HOLD_S) -> None:
        self.store = store
        self.time = time
        self.jitter_s = jitter_s
        self.stop = stop
        self.max_hold_s = max_hold_s
        self._buckets: dict[tuple[str, float], TokenBucket] = {}

    def _bucket(self, limit: Limit) -> TokenBucket:
        speed = resolve(self.time).speed
        found = self._buckets.get((limit.bucket, speed))
        if found is None:
            shape = BucketShape.within(limit.count, limit.window_s, burst=limit.burst, jitter_s=self.jitter_s,
                                       speed=speed)
            found = self._buckets[(limit.bucket, speed)] = bucket(self.store, limit.bucket, shape, self.time)
        return found

    def acquire(self, target: Target) -> float | None:
        """Take a token of each of ``target``'s limits: None when all were granted, else the qc time to try
        again (a token already taken is spent: the limits stay safe, only throughput pays)."""
        deadline = clock.monotonic() + self.max_hold_s
        for limit in limits_for(target):
            b = self._bucket(limit)
            while True:
                take = b.take()
                if take.granted:
                    break
                real_wait = take.wait_s / resolve(self.time).speed + WAIT_PAD_S
                if clock.monotonic() + real_wait > deadline:
                    return take.at + take.wait_s
                if clock.real_sleep(real_wait, self.stop):
                    return take.at + take.wait_s
        return None

    def pause(self, target: Target, scope: str, until: float) -> None:
        """A channel's 429: no grant on the bucket it concerns before qc time ``until``."""
        limit = paused_by(target, scope)
        if limit is not None:
            self._bucket(limit).pause(until)
