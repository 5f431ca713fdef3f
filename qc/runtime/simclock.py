"""Which clock a worker runs on: the system clock, or the clock of the simulator it is connected to.

A simulator publishes its anchor with the loopback ports it listens on. A worker adopts that clock
only when the endpoints it talks to are that simulator's: its IB gateway setting names 127.0.0.1 and
the anchor's IB port, its Alpha Vantage URL names 127.0.0.1 and the anchor's HTTP port, or (`qc
distribute`) a Telegram, X or webhook URL names 127.0.0.1 and the anchor's channels port. So a
`qc sim` sharing a Redis with a production stack never steers it (negative ages, false alarms).

Kept apart from the Redis client (store.py): choosing a clock is a policy, not a storage concern.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from urllib.parse import urlsplit

from qc.core import clock, keys
from qc.core.codec import Absent
from qc.core.config import Settings, webhook_urls
from qc.runtime.codec import SimClockAnchor, is_missing
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
IB, AV, CHANNELS = "ib", "av", "channels"


def read_sim_anchor(store: Store) -> SimClockAnchor | None:
    """The simulator's published anchor if one is fresh in Redis (its short TTL lapses when `qc sim` dies)."""
    key = keys.sim_clock()
    anchor = SimClockAnchor.from_redis(store.hgetall(key), key=key.name)
    if isinstance(anchor, Absent):
        if not is_missing(anchor):
            log.warning("ignoring the simulator clock anchor: %s", anchor)
        return None
    return anchor


def _loopback_port(raw: str) -> int | None:
    """The port of a loopback http(s) URL, else None."""
    url = urlsplit(raw)
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        return None
    return port if (url.hostname or "").lower() in LOOPBACK else None


def steers(anchor: SimClockAnchor, settings: Settings, uses: Collection[str] = (IB, AV)) -> bool:
    """True when one endpoint this worker ``uses`` ("ib", "av", "channels") is the anchor's simulator.

    ``channels``: the Telegram or X base URL, or a webhook endpoint, is the simulator's channels port.
    """
    if IB in uses and settings.ib_host.strip().lower() in LOOPBACK and settings.ib_port == anchor.ib_port:
        return True
    if AV in uses and _loopback_port(settings.alpha_vantage_url) == anchor.av_port:
        return True
    if CHANNELS in uses and anchor.channels_port is not None:
        urls = [settings.telegram_base_url, settings.x_base_url, *webhook_urls(settings.webhooks)]
        return any(_loopback_port(url) == anchor.channels_port for url in urls)
    return False


def clock_for(store: Store, settings: Settings, uses: Collection[str] = (IB, AV)) -> clock.Clock:
    """SimClock exactly when, at start, a fresh anchor of a simulator this worker talks to is present.

    The choice is made once: a production worker never switches to simulated time mid-run, and a
    simulated one keeps following its simulator's re-published anchor (another simulator's is ignored).
    """
    try:
        anchor = read_sim_anchor(store)
    except REDIS_ERRORS as exc:
        log.warning("redis unreachable while choosing the clock (%s); using the system clock", exc)
        return clock.SystemClock()
    if anchor is None:
        return clock.SystemClock()
    if not steers(anchor, settings, uses):
        log.debug("a simulator (IB port %d, Alpha Vantage port %d) publishes a clock in this Redis, but this "
                 "worker talks to other endpoints: using the system clock", anchor.ib_port, anchor.av_port)
        return clock.SystemClock()
    log.debug("simulator clock anchor found: simulated time at %gx", anchor.speed)  # workers say it at start
    return clock.SimClock(anchor.anchor, refresh=lambda: _fresh_anchor(store, settings, uses))


def _fresh_anchor(store: Store, settings: Settings, uses: Collection[str]) -> clock.SimAnchor | None:
    try:
        anchor = read_sim_anchor(store)
    except REDIS_ERRORS:
        return None
    return anchor.anchor if anchor is not None and steers(anchor, settings, uses) else None
