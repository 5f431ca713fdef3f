"""The ``health`` panel: `qc status`'s checks, stale feeds, the Alpha Vantage budget, ingest latency, the
executor, and `qc distribute status`.

The same readers as the commands (``qc.runtime.health``, ``qc.distribute.report``, ``qc.execute.report``),
so the page and `qc status` never disagree. Liveness is judged on the wall clock, as `qc status` does
(a worker's heartbeat is a process fact, not market time); the document itself is built now, so it is
fresh whenever it arrives, and the page's own age ticker greys it when the pushes stop.
"""

from __future__ import annotations

from typing import Any

from qc.core import keys
from qc.core.codec import Absent
from qc.core.config import Settings
from qc.core.errors import QcError
from qc.dashboard.docs import Doc, envelope, iso, num
from qc.distribute import report as distribute_report
from qc.distribute import table
from qc.distribute.channels import routing_of
from qc.execute import report as execute_report
from qc.runtime import health
from qc.runtime.codec import AlphaVantageMetrics, IngestLatency, is_missing
from qc.runtime.simclock import AV, CHANNELS, IB, clock_for
from qc.runtime.store import Store

HEALTH_STALE_S = 30.0
MINUTE_S = 60.0


def build(store: Store, settings: Settings, account: str, now: float, wall: float) -> Doc:
    readings = health.read(store, wall, account)
    checks = health.evaluate(readings) + distribute_report.health(store)
    stale = {} if isinstance(readings.stale, Absent) else {
        feed: float(round(wall - since)) for feed, since in sorted(readings.stale.items())}
    doc = envelope(float(int(now)), now, HEALTH_STALE_S)
    doc |= {"state": health.state_of(checks), "checks": health.to_json(checks), "stale_feeds": stale,
            "stale_feeds_unreadable": str(readings.stale) if isinstance(readings.stale, Absent) else None,
            "rejects": {s: dict(r) for s, r in readings.rejects.items()},
            "alpha_vantage": alpha_vantage(store, settings, wall), "ingest_latency": ingest_latency(store),
            "executor": execute_report.executor_status(store, account), "distribution": distribution(store, settings)}
    return doc


def alpha_vantage(store: Store, settings: Settings, wall: float) -> Doc:
    """The shared budget: tokens left this minute of the plan's rpm, requests, failures, each chain's health."""
    key = keys.alpha_vantage_metrics()
    got = AlphaVantageMetrics.from_redis(store.hgetall(key), key=key.name)
    last_minute = store.count_events(keys.av_requests_log(), wall - MINUTE_S)
    base: Doc = {"rpm": settings.alpha_vantage_rpm, "requests_last_minute": last_minute,
                 "tokens_min": health.AV_TOKENS_MIN}
    if isinstance(got, Absent):
        return base | {"missing": "qc chains not running (no metrics)" if is_missing(got) else str(got),
                       "tokens_left": None}
    return base | {
        "tokens_left": got.tokens_left, "requests": got.requests, "chain_failures": got.chain_failures,
        "news_failures": got.news_failures, "responses": dict(got.responses), "dropped": dict(got.dropped),
        "chains": {sym: {"ok_at": iso(c.ok_at), "ok_age_s": None if c.ok_at is None else float(round(wall - c.ok_at)),
                         "kept_age_s": num(c.age_s), "rows": c.rows, "divergent": c.divergent,
                         "last_error": c.last_error or None} for sym, c in sorted(got.chains.items())}}


def ingest_latency(store: Store) -> dict[str, Any] | None:
    """`qc stream`'s message-to-Redis latency per feed (ms), or None when it publishes none."""
    key = keys.ingest_latency()
    got = IngestLatency.from_redis(store.hgetall(key), key=key.name)
    if isinstance(got, Absent):
        return None
    return {"writes": got.writes, "feeds": {name: {"p50_ms": f.p50_ms, "p99_ms": f.p99_ms, "max_ms": f.max_ms, "n": f.n}
                                             for name, f in sorted(got.feeds.items())}}


def distribution(store: Store, settings: Settings) -> Doc:
    """`qc distribute status --json`: tiers, channels with counters and latency, dead letters, disabled targets."""
    try:
        routing = routing_of(settings)
    except QcError as exc:
        return {"missing": f"distribution settings invalid: {exc}"}
    return table.to_json(distribute_report.load(store, routing, clock_for(store, settings, (IB, AV, CHANNELS))))
