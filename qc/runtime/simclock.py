"""Which clock a worker runs on: the system clock, or the simulator's published anchor.

Kept apart from the Redis client (store.py): choosing a clock is a policy about which simulator may
steer which worker, not a storage concern.
"""

from __future__ import annotations

import logging

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.runtime.codec import SimClockAnchor, is_missing
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)


def read_sim_anchor(store: Store) -> clock.SimAnchor | None:
    """The simulator's clock anchor if one is fresh in Redis (its short TTL lapses when `qc sim` dies)."""
    key = keys.sim_clock()
    anchor = SimClockAnchor.from_redis(store.hgetall(key), key=key.name)
    if isinstance(anchor, Absent):
        if not is_missing(anchor):
            log.warning("ignoring the simulator clock anchor: %s", anchor)
        return None
    return anchor.anchor


def clock_for(store: Store) -> clock.Clock:
    """SimClock exactly when a fresh simulator anchor is present at start, else the system clock.

    The choice is made once: a production worker never switches to simulated time mid-run, and a
    simulated one keeps following the (re-)published anchor.
    """
    try:
        anchor = read_sim_anchor(store)
    except REDIS_ERRORS as exc:
        log.warning("redis unreachable while choosing the clock (%s); using the system clock", exc)
        return clock.SystemClock()
    if anchor is None:
        return clock.SystemClock()
    log.debug("simulator clock anchor found: simulated time at %gx", anchor.speed)  # workers say it at start
    return clock.SimClock(anchor, refresh=lambda: _fresh_anchor(store))


def _fresh_anchor(store: Store) -> clock.SimAnchor | None:
    try:
        return read_sim_anchor(store)
    except REDIS_ERRORS:
        return None
