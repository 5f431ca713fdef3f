"""The runbook's health checks: read the monitoring keys, judge them against the alert thresholds.

Thresholds are the product sheet's alerts. Ages are measured on the wall clock: liveness is about
processes, not market time, so a 10x simulation does not make a healthy worker look late.
``read`` is the only part that touches Redis, through the monitoring codecs (``qc.runtime.codec``):
a malformed, partial or old value becomes a failing row showing why, never a crash. ``evaluate``
is pure and tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qc.core import keys
from qc.core.codec import MISSING, Absent
from qc.runtime.codec import (
    AlphaVantageMetrics,
    ChildStatus,
    Heartbeat,
    IbkrConnected,
    InputRejects,
    StaleFeeds,
    SupervisorChildren,
    WorkerRegistry,
    is_missing,
)
from qc.runtime.store import Store

HEARTBEAT_MAX_AGE_S = 30.0
STALE_MAX_AGE_S = 10.0
BREACHES_PER_HOUR_MAX = 3
FAILED_ORDERS_PER_HOUR_MAX = 5
AV_TOKENS_MIN = 10.0
HOUR_S = 3600.0
INGESTION_MODULE = "ibkr_ingestion"
CHILD_MODULES = {"stream": INGESTION_MODULE}  # a `qc up` child whose heartbeat has another name than its verb


@dataclass(frozen=True)
class Readings:
    """What the monitoring keys said at ``now_epoch``; an Absent says why a value could not be used."""

    now_epoch: float
    heartbeats: dict[str, float | Absent]  # module -> wall time of its last beat
    ibkr_connected: bool | Absent
    stale: Mapping[str, float] | Absent  # "{symbol}:{feed}" -> wall time of its last data
    breaches_last_hour: int
    failed_orders_last_hour: int
    av_tokens_left: int | Absent
    unreadable: tuple[Absent, ...] = ()  # values no other check owns (a malformed registry entry)
    children: Mapping[str, ChildStatus] = field(default_factory=dict)  # `qc up`'s children, if it runs
    rejects: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # surface -> reason -> n today
    failed_orders_today: int | Absent = 0  # ``orders:failed:count`` (rejected or failed orders today)
    locked_contracts: int = 0  # contracts `qc execute` refuses to trade (``execution:locked:{account}``)


@dataclass(frozen=True)
class Check:
    """One line of the status table: ``value``/``threshold`` as shown; ``measured``/``limit`` as numbers."""

    check: str
    value: str
    threshold: str
    ok: bool
    measured: float | None = None  # the number behind ``value`` (None when there is none: missing, malformed)
    limit: float | None = None
    unit: str = ""
    warn: bool = False  # ok, but someone should look today (a failed order): shown WARN, not healthy


def state_of(checks: list[Check]) -> str:
    """``unhealthy`` when a check fails (exit 1), ``warning`` when one warns, else ``healthy``."""
    if not all(c.ok for c in checks):
        return "unhealthy"
    return "warning" if any(c.warn for c in checks) else "healthy"


def read(store: Store, now_epoch: float, account: str = "default") -> Readings:
    """Read every monitoring key once through its codec (redis errors go to the caller); ``account``
    scopes the executor's locked contracts."""
    registry_key = keys.worker_registry()
    registry = WorkerRegistry.from_redis(store.hgetall(registry_key), key=registry_key.name)
    children_key = keys.supervisor_children()
    supervised = SupervisorChildren.from_redis(store.hgetall(children_key), key=children_key.name)
    children = supervised.children if isinstance(supervised, SupervisorChildren) else {}
    unreadable = list(registry.unreadable.values()) if isinstance(registry, WorkerRegistry) else []
    if isinstance(supervised, SupervisorChildren):
        unreadable += supervised.unreadable.values()
    elif not is_missing(supervised):
        unreadable.append(supervised)
    registered = registry.modules if isinstance(registry, WorkerRegistry) else set()
    expected = registered | {CHILD_MODULES.get(name, name) for name in children}
    heartbeats: dict[str, float | Absent] = {}
    for module in sorted(expected | {INGESTION_MODULE}):
        key = keys.heartbeat(module)
        beat = Heartbeat.from_redis(store.get(key), key=key.name)
        if not is_missing(beat) or module in expected:
            heartbeats[module] = beat.at_epoch if isinstance(beat, Heartbeat) else beat
    connected_key = keys.ibkr_connected()
    connected = IbkrConnected.from_redis(store.get(connected_key), key=connected_key.name)
    return Readings(
        now_epoch=now_epoch, heartbeats=heartbeats,
        ibkr_connected=connected.connected if isinstance(connected, IbkrConnected) else connected,
        stale=_stale(store),
        breaches_last_hour=store.count_events(keys.risk_breaches_log(), now_epoch - HOUR_S),
        failed_orders_last_hour=store.count_events(keys.orders_failed_log(), now_epoch - HOUR_S),
        av_tokens_left=_av_tokens_left(store),
        unreadable=tuple(unreadable), children=children, rejects=_rejects(store),
        failed_orders_today=_failed_today(store),
        locked_contracts=len(store.hgetall(keys.execution_locked(account))),
    )


def _failed_today(store: Store) -> int | Absent:
    key = keys.orders_failed_count()
    raw = store.get(key)
    if raw is None:
        return 0
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        return Absent(key.name, f"not a whole number ({raw[:20]!r})")
    return int(text)


def _rejects(store: Store) -> Mapping[str, Mapping[str, int]]:
    key = keys.input_rejects()
    rejects = InputRejects.from_redis(store.hgetall(key), key=key.name)
    return rejects.by_surface() if isinstance(rejects, InputRejects) else {}


def _stale(store: Store) -> Mapping[str, float] | Absent:
    """No hash at all means no stale feed (the stream deletes its marks as feeds recover)."""
    key = keys.data_stale()
    stale = StaleFeeds.from_redis(store.hgetall(key), key=key.name)
    if isinstance(stale, StaleFeeds):
        return stale.since
    return {} if is_missing(stale) else stale


def _av_tokens_left(store: Store) -> int | Absent:
    key = keys.alpha_vantage_metrics()
    metrics = AlphaVantageMetrics.from_redis(store.hgetall(key), key=key.name)
    if isinstance(metrics, Absent):
        return metrics
    return Absent(key.name, MISSING) if metrics.tokens_left is None else metrics.tokens_left


def evaluate(r: Readings) -> list[Check]:
    """Judge the readings; every check is one row, ``ok`` False when it should page someone."""
    running = {CHILD_MODULES.get(name, name): child.pid for name, child in r.children.items()
               if child.state == "running"}
    checks = [_heartbeat_check(module, beat, r.now_epoch, running.get(module)) for module, beat in r.heartbeats.items()]
    if not checks:
        checks.append(Check("workers", "none running", "≥ 1", False, 0, 1, "workers"))
    checks += [_child_check(name, child) for name, child in sorted(r.children.items())]
    checks.append(_ibkr_check(r))
    checks.append(_stale_check(r))
    checks.append(Check("risk breaches/h", str(r.breaches_last_hour), f"≤ {BREACHES_PER_HOUR_MAX}",
                        r.breaches_last_hour <= BREACHES_PER_HOUR_MAX, r.breaches_last_hour, BREACHES_PER_HOUR_MAX,
                        "per hour"))
    checks.append(Check("failed orders/h", str(r.failed_orders_last_hour), f"≤ {FAILED_ORDERS_PER_HOUR_MAX}",
                        r.failed_orders_last_hour <= FAILED_ORDERS_PER_HOUR_MAX, r.failed_orders_last_hour,
                        FAILED_ORDERS_PER_HOUR_MAX, "per hour"))
    checks.append(_failed_today_check(r.failed_orders_today))
    if r.locked_contracts:
        checks.append(Check("locked contracts", str(r.locked_contracts), "0 (see `qc positions`)", True,
                            r.locked_contracts, 0, "contracts", warn=True))
    tokens, minimum = r.av_tokens_left, f"≥ {AV_TOKENS_MIN:.0f}"
    if is_missing(tokens):
        checks.append(Check("alpha vantage tokens", "n/a (qc chains not running)", minimum, True))
    elif isinstance(tokens, Absent):
        checks.append(Check("alpha vantage tokens", str(tokens), minimum, False))
    else:
        checks.append(Check("alpha vantage tokens", f"{tokens}", minimum, tokens >= AV_TOKENS_MIN, tokens,
                            AV_TOKENS_MIN, "tokens"))
    checks += [Check(bad.key, bad.reason, "readable", False) for bad in r.unreadable]
    return checks


def _failed_today_check(failed: int | Absent) -> Check:
    """Any failed order today is a warning (not an alert: the hourly rate pages), naming where to look."""
    name, threshold = "failed orders today", "0 (see `qc orders`)"
    if isinstance(failed, Absent):
        return Check(name, failed.reason, threshold, True, None, 0, "orders", warn=True)
    return Check(name, str(failed), threshold, True, failed, 0, "orders", warn=failed > 0)


def _heartbeat_check(module: str, beat: float | Absent, now_epoch: float, child_pid: int | None = None) -> Check:
    """``child_pid``: the `qc up` child behind this module is running (so a missing beat means: not yet)."""
    name, threshold = keys.heartbeat(module).name, f"≤ {HEARTBEAT_MAX_AGE_S:.0f}s old"
    if is_missing(beat):
        shown = f"none yet (starting: qc up child pid {child_pid})" if child_pid else "missing (worker died?)"
        return Check(name, shown, threshold, False)
    if isinstance(beat, Absent):
        return Check(name, beat.reason, threshold, False)
    age = max(0.0, now_epoch - beat)
    return Check(name, f"{age:.1f}s old", threshold, age <= HEARTBEAT_MAX_AGE_S, round(age, 3), HEARTBEAT_MAX_AGE_S,
                 "s")


def _child_check(name: str, child: ChildStatus) -> Check:
    """A `qc up` child that is not running (waiting for its restart, or exited) is an alert."""
    shown = child.state + (f", {child.restarts} restarts" if child.restarts else "")
    return Check(f"qc up child {name}", shown, "running", child.state == "running", child.restarts, None,
                 "restarts")


def _ibkr_check(r: Readings) -> Check:
    name, connected = keys.ibkr_connected().name, r.ibkr_connected
    if is_missing(connected):
        expected = INGESTION_MODULE in r.heartbeats
        return Check(name, "unknown" if expected else "n/a (qc stream not running)", "1", not expected)
    if isinstance(connected, Absent):
        return Check(name, connected.reason, "1", False)
    return Check(name, "1" if connected else "0", "1", connected, int(connected), 1, "flag")


def _stale_check(r: Readings) -> Check:
    threshold = f"none > {STALE_MAX_AGE_S:.0f}s"
    if isinstance(r.stale, Absent):
        return Check("stale feeds", str(r.stale), threshold, False)
    late = {feed: r.now_epoch - since for feed, since in r.stale.items() if r.now_epoch - since > STALE_MAX_AGE_S}
    value = ", ".join(f"{feed} {age:.0f}s" for feed, age in sorted(late.items())) or "none"
    return Check("stale feeds", value, threshold, not late, len(late), 0, "feeds")


def to_json(checks: list[Check]) -> list[dict[str, object]]:
    """Numbers as numbers (``value``, ``threshold``; null where there is none), the shown text beside them."""
    return [{"check": c.check, "ok": c.ok, "warn": c.warn, "value": c.measured, "threshold": c.limit, "unit": c.unit,
             "text": c.value, "threshold_text": c.threshold} for c in checks]

