"""The runbook's health checks: read the monitoring keys, judge them against the alert thresholds.

Thresholds are the product sheet's alerts. Ages are measured on the wall clock: liveness is about
processes, not market time, so a 10x simulation does not make a healthy worker look late.
``read`` is the only part that touches Redis; ``evaluate`` is pure and tested on its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from qc.core import keys
from qc.runtime.store import Store

HEARTBEAT_MAX_AGE_S = 30.0
STALE_MAX_AGE_S = 10.0
BREACHES_PER_HOUR_MAX = 3
FAILED_ORDERS_PER_HOUR_MAX = 5
AV_TOKENS_MIN = 10.0
HOUR_S = 3600.0
INGESTION_MODULE = "ibkr_ingestion"


@dataclass(frozen=True)
class Readings:
    """What the monitoring keys said at ``now_epoch``."""

    now_epoch: float
    heartbeats: dict[str, float | None]
    ibkr_connected: str | None
    stale: dict[str, float]
    breaches_last_hour: int
    failed_orders_last_hour: int
    av_tokens_left: float | None


@dataclass(frozen=True)
class Check:
    """One line of the status table."""

    check: str
    value: str
    threshold: str
    ok: bool


def read(store: Store, now_epoch: float) -> Readings:
    """Read every monitoring key once (raises StoreUnavailable-worthy redis errors to the caller)."""
    registered = set(store.hgetall(keys.worker_registry()))
    heartbeats: dict[str, float | None] = {}
    for module in sorted(registered | {INGESTION_MODULE}):
        raw = store.get(keys.heartbeat(module))
        if raw is not None or module in registered:
            heartbeats[module] = float(raw) if raw is not None else None
    stale = {feed: float(since) for feed, since in store.hgetall(keys.data_stale()).items()}
    tokens = store.hget(keys.alpha_vantage_metrics(), "tokens_left")
    return Readings(
        now_epoch=now_epoch, heartbeats=heartbeats, ibkr_connected=store.get(keys.ibkr_connected()),
        stale=stale, breaches_last_hour=store.count_events(keys.risk_breaches_log(), now_epoch - HOUR_S),
        failed_orders_last_hour=store.count_events(keys.orders_failed_log(), now_epoch - HOUR_S),
        av_tokens_left=float(tokens) if tokens is not None else None,
    )


def evaluate(r: Readings) -> list[Check]:
    """Judge the readings; every check is one row, ``ok`` False when it should page someone."""
    checks = [_heartbeat_check(module, beat, r.now_epoch) for module, beat in r.heartbeats.items()]
    if not checks:
        checks.append(Check("workers", "none running", "≥ 1", False))
    ibkr = keys.ibkr_connected().name
    if r.ibkr_connected is None:
        expected = INGESTION_MODULE in r.heartbeats
        checks.append(Check(ibkr, "unknown" if expected else "n/a (qc stream not running)", "1", not expected))
    else:
        checks.append(Check(ibkr, r.ibkr_connected, "1", r.ibkr_connected == "1"))
    late = {feed: r.now_epoch - since for feed, since in r.stale.items() if r.now_epoch - since > STALE_MAX_AGE_S}
    value = ", ".join(f"{feed} {age:.0f}s" for feed, age in sorted(late.items())) or "none"
    checks.append(Check("stale feeds", value, f"none > {STALE_MAX_AGE_S:.0f}s", not late))
    checks.append(Check("risk breaches/h", str(r.breaches_last_hour), f"≤ {BREACHES_PER_HOUR_MAX}",
                        r.breaches_last_hour <= BREACHES_PER_HOUR_MAX))
    checks.append(Check("failed orders/h", str(r.failed_orders_last_hour), f"≤ {FAILED_ORDERS_PER_HOUR_MAX}",
                        r.failed_orders_last_hour <= FAILED_ORDERS_PER_HOUR_MAX))
    if r.av_tokens_left is None:
        checks.append(Check("alpha vantage tokens", "n/a (qc chains not running)", f"≥ {AV_TOKENS_MIN:.0f}", True))
    else:
        checks.append(Check("alpha vantage tokens", f"{r.av_tokens_left:.0f}", f"≥ {AV_TOKENS_MIN:.0f}",
                            r.av_tokens_left >= AV_TOKENS_MIN))
    return checks


def _heartbeat_check(module: str, beat: float | None, now_epoch: float) -> Check:
    name = keys.heartbeat(module).name
    if beat is None:
        return Check(name, "missing (worker died?)", f"≤ {HEARTBEAT_MAX_AGE_S:.0f}s old", False)
    age = max(0.0, now_epoch - beat)
    return Check(name, f"{age:.1f}s old", f"≤ {HEARTBEAT_MAX_AGE_S:.0f}s old", age <= HEARTBEAT_MAX_AGE_S)


def to_json(checks: list[Check]) -> list[dict[str, object]]:
    return [asdict(c) for c in checks]

