"""Prometheus `/metrics` for `qc dashboard`: the figures operators alert on, read from Redis at each scrape.

Why a custom collector and no counters of our own: every figure already lives in Redis, written by the
worker that owns it, so a scrape reads those keys in two pipelined round trips (the second for what the
first names: the registered modules' heartbeats, each distribution lane's latencies, today's blocked
counters) and decodes every value through the codec its writer uses (``qc.runtime.codec``,
``qc.distribute.codec``, ``qc.risk.codec``). The series are declared once in ``metrics_catalog``.

A scrape never raises: a missing value yields no sample (and ``qc_source_up{source} 0``), one its codec
refuses also ``qc_source_unreadable{source} 1``, a bug in one group of series sets
``qc_metrics_section_failed{section} 1`` and leaves the others, and Redis unreachable answers
``qc_redis_up 0`` alone. Ages are wall clock, as in ``qc status`` (liveness is about processes); the day
of the signals' blocked counters is qc's clock's New York day (simulated under `qc sim`). The thresholds
operators alert on stay in ``qc.runtime.health`` and ``deploy/prometheus/qc-alerts.yml``, not here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from redis.exceptions import RedisClusterException

from qc.core import clock, keys
from qc.core.codec import Absent, decode, need, req_float, req_int
from qc.core.config import Settings
from qc.core.errors import QcError
from qc.core.keys import Key
from qc.dashboard.metrics_catalog import BY_NAME, Spec
from qc.distribute import codec as distribution
from qc.risk.codec import latches_from_redis
from qc.risk.state import TradingState
from qc.runtime.codec import (
    LATENCY_BOUNDS_MS,
    AlphaVantageMetrics,
    CycleTimes,
    Heartbeat,
    IbkrConnected,
    IngestLatency,
    IngestRecoveries,
    InputRejects,
    LatencyHistogram,
    SimClockAnchor,
    StaleFeeds,
    SupervisorChildren,
    WorkerErrors,
    WorkerRegistry,
    is_missing,
)
from qc.runtime.health import CHILD_MODULES, HOUR_S, INGESTION_MODULE
from qc.runtime.simclock import steers
from qc.runtime.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_SERIES = 256  # label sets per family: qc's are a few dozen; more means foreign fields in a qc hash
ANALYTICS_MODULE = "analytics"
ACCOUNT_SCOPE = "account"  # the trading state's account-wide scope (the others are underlyings)
WHOLE_CYCLE = "cycle"  # the CycleTimes task that is the whole cycle
SCRAPE_ERRORS = (redis.RedisError, RedisClusterException, QcError)
Family = GaugeMetricFamily | CounterMetricFamily | SummaryMetricFamily | HistogramMetricFamily


def registry(store_factory: Callable[[], Store], settings: Settings) -> CollectorRegistry:
    """A registry of its own holding only qc's collector (no process or platform metrics of the server)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(QcCollector(store_factory, settings))
    return reg


class QcCollector:
    """``collect()`` reads Redis and yields the catalog's families; ``store_factory`` is called on the first
    scrape (and again after it failed), its Store then reused: redis-py reconnects by itself."""

    def __init__(self, store_factory: Callable[[], Store], settings: Settings) -> None:
        self._factory = store_factory
        self._settings = settings
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._down: str | None = None  # why the last scrape could not read Redis (logged once per outage)

    def collect(self) -> Iterator[Family]:
        scrape = Scrape()
        scrape.add("qc_redis_up", 1)  # first in the page; the whole scrape is replaced if Redis fails it
        try:
            read_into(scrape, self._connected(), self._settings, clock.wall_epoch())
        except SCRAPE_ERRORS as exc:
            self._note(f"{type(exc).__name__}: {exc}")
            scrape = Scrape()
            scrape.add("qc_redis_up", 0)
        else:
            self._note(None)
        yield from scrape.families()

    def _connected(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = self._factory()
            return self._store

    def _note(self, down: str | None) -> None:
        if down is not None and self._down is None:
            log.warning("/metrics: Redis unreadable (%s); answering qc_redis_up 0 until it is back", down)
        elif down is None and self._down is not None:
            log.info("/metrics: Redis readable again")
        self._down = down


class Scrape:
    """The families of one scrape, created from the catalog on first use; label sets bounded per family."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._series: dict[str, int] = {}
        self.dropped = 0

    def add(self, name: str, value: float, *labels: str) -> None:
        family = self._family(name, labels)
        if isinstance(family, SummaryMetricFamily | HistogramMetricFamily):
            raise ValueError(f"{name} is a {type(family).__name__}: use Scrape.summary or Scrape.histogram")
        if family is not None:
            family.add_metric(list(labels), float(value))

    def summary(self, name: str, count: int, total: float, *labels: str) -> None:
        family = self._family(name, labels)
        if family is not None and not isinstance(family, SummaryMetricFamily):
            raise ValueError(f"{name} is no summary: use Scrape.add")
        if family is not None:
            family.add_metric(list(labels), count, total)

    def histogram(self, name: str, buckets: list[tuple[str, float]], total: float, *labels: str) -> None:
        """``buckets``: (upper bound, cumulative count) in order, the last ``+Inf``."""
        family = self._family(name, labels)
        if family is not None and not isinstance(family, HistogramMetricFamily):
            raise ValueError(f"{name} is no histogram: use Scrape.add")
        if family is not None:
            family.add_metric(list(labels), buckets, total)

    def source(self, key: str, value: object, *, empty_ok: bool = False) -> None:
        """Record how the value read at ``key`` fared; ``empty_ok``: its absence means "none", not "down"."""
        absent = isinstance(value, Absent)
        unreadable = absent and not is_missing(value)
        self.add("qc_source_up", float(not unreadable and (empty_ok or not absent)), key)
        self.add("qc_source_unreadable", float(unreadable), key)

    def families(self) -> list[Family]:
        return list(self._families.values())

    def _family(self, name: str, labels: tuple[str, ...]) -> Family | None:
        spec = BY_NAME[name]
        if len(labels) != len(spec.labels):
            raise ValueError(f"{name} takes labels {spec.labels}, got {labels}")
        seen = self._series.get(name, 0)
        if seen >= MAX_SERIES:
            self.dropped += 1
            return None
        self._series[name] = seen + 1
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _new_family(spec)
        return family


def _new_family(spec: Spec) -> Family:
    if spec.kind == "counter":
        return CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "summary":
        return SummaryMetricFamily(spec.name, spec.help, labels=spec.labels)
    if spec.kind == "histogram":
        return HistogramMetricFamily(spec.name, spec.help, labels=spec.labels)
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


# --- reading -----------------------------------------------------------------------------------


class Batch:
    """Reads queued on one non-transactional pipeline (one round trip; Cluster splits it by node)."""

    def __init__(self, client: Any) -> None:
        self._pipe = client.pipeline(transaction=False)
        self._names: list[str] = []

    def queue(self, command: str, key: Key, *args: Any) -> None:
        getattr(self._pipe, command)(key.name, *args)
        self._names.append(key.name)

    def run(self) -> dict[str, Any]:
        """Replies by key name; a command Redis refused (a wrong type) is its exception, not raised."""
        if not self._names:
            return {}
        return dict(zip(self._names, self._pipe.execute(raise_on_error=False), strict=True))


@dataclass
class Replies:
    """One scrape's replies, decoded on demand through the writers' codecs, each read recorded as a source."""

    scrape: Scrape
    raw: dict[str, Any]

    def value(self, key: Key, from_redis: Callable[..., T | Absent], *, empty_ok: bool = False,
              record: bool = True) -> T | Absent:
        reply = self.raw.get(key.name)
        if isinstance(reply, Exception):  # WRONGTYPE and the like: a foreign value under a qc key
            got: T | Absent = Absent(key.name, f"unreadable: {reply}")
        else:
            got = from_redis(reply, key=key.name)
        if record:
            self.scrape.source(key.name, got, empty_ok=empty_ok)
        return got

    def count(self, key: Key) -> int | None:
        """A ZCOUNT/LLEN/XLEN/SCARD/HLEN/ZCARD reply (0 for a key that is not there)."""
        reply = self.raw.get(key.name)
        got = reply if isinstance(reply, int) else Absent(key.name, f"unreadable: {reply}")
        self.scrape.source(key.name, got)
        return got if isinstance(got, int) else None


def counters_from_redis(raw: Mapping[str, str] | None, *, key: str) -> dict[str, int] | Absent:
    """A hash of HINCRBY counters (name -> whole number ≥ 0): the signals' and the executor's metrics."""
    return decode(key, raw, lambda fields: {str(n): req_int(v, str(n), lo=0) for n, v in fields.items()})


def count_from_redis(raw: str | None, *, key: str) -> int | Absent:
    """An INCR counter (``orders:failed:count``, ``risk:breaches:count``)."""
    return decode(key, raw, lambda text: req_int(text, "value", lo=0))


def bucket_from_redis(raw: Mapping[str, str] | None, *, key: str) -> tuple[float, float] | Absent:
    """The shared Alpha Vantage bucket's ``tokens`` and ``capacity`` (written by `qc chains`' Lua script)."""
    return decode(key, raw, lambda f: (req_float(need(f, "tokens"), "tokens", lo=0.0),
                                       req_float(need(f, "capacity"), "capacity", lo=0.0)))


def trading_states_from_redis(raw: Mapping[str, str] | None, *, key: str) -> dict[str, TradingState] | Absent:
    """``risk:state:{account}``: scope -> its latched state; a latch that does not decode reads HALTED, as
    `qc risk` reads it (garbage is never permission to trade). A scope with no field is ACTIVE."""
    def parse(fields: Mapping[str, str]) -> dict[str, TradingState]:
        return {scope: TradingState.HALTED if isinstance(latch, Absent) else latch.state
                for scope, latch in latches_from_redis(fields, key=key).items()}

    return decode(key, raw, parse)


def account_of(settings: Settings) -> str:
    """The account the risk and execution keys are scoped by (as `qc risk` and `qc execute` name it)."""
    return settings.ib_account or "default"


HASHES = (keys.worker_registry(), keys.supervisor_children(), keys.data_stale(), keys.ingest_latency(),
          keys.ingest_latency_histogram(),
          keys.ingest_recoveries(), keys.worker_errors(), keys.input_rejects(), keys.cycle_times(ANALYTICS_MODULE),
          keys.signals_metrics(), keys.execution_metrics(), keys.distribution_metrics(),
          keys.alpha_vantage_metrics(), keys.av_token_bucket(), keys.sim_clock())
STRINGS = (keys.ibkr_connected(), keys.orders_failed_count(), keys.risk_breaches_count())


def read_into(scrape: Scrape, store: Store, settings: Settings, now: float) -> None:
    """Read everything in two round trips and add every group of series to ``scrape`` (Redis errors raise)."""
    account = account_of(settings)
    first = Batch(store.client)
    for key in (*HASHES, keys.trading_state(account), keys.trading_state_counts(account)):
        first.queue("hgetall", key)
    for key in STRINGS:
        first.queue("get", key)
    for key in (keys.orders_failed_log(), keys.risk_breaches_log()):
        first.queue("zcount", key, now - HOUR_S, "+inf")
    first.queue("zcard", keys.order_intents_open(account))
    first.queue("hlen", keys.execution_locked(account))
    first.queue("xlen", keys.distribution_dead())
    first.queue("scard", keys.distribution_disabled())
    for symbol in settings.symbols:
        first.queue("llen", keys.signals_pending(symbol))
    r = Replies(scrape, first.run())

    modules, expected = _modules(r)
    lanes = r.value(keys.distribution_metrics(), distribution.metrics_from_redis)
    rows = lanes if isinstance(lanes, tuple) else ()
    day = keys.signals_blocked(_market_day(r, settings, now))
    second = Batch(store.client)
    for module in modules:
        second.queue("get", keys.heartbeat(module))
    for row in rows:
        second.queue("lrange", keys.distribution_latency(row.tier, row.channel), 0, -1)
    second.queue("hgetall", day)
    r.raw |= second.run()

    sections: dict[str, Callable[[], None]] = {
        "liveness": lambda: _liveness(r, now, modules, expected),
        "ingest": lambda: _ingest(r, now),
        "analytics": lambda: _analytics(r),
        "signals": lambda: _signals(r, settings, day),
        "execution": lambda: _execution(r, account),
        "risk": lambda: _risk(r, account, settings),
        "distribution": lambda: _distribution(r, rows),
        "alpha_vantage": lambda: _alpha_vantage(r, now),
    }
    for name, build in sections.items():
        failed = 0
        try:
            build()
        except Exception:  # a bug in one group must not blank the others; logged with its traceback, and counted
            log.exception("/metrics: building the %s series failed", name)
            failed = 1
        scrape.add("qc_metrics_section_failed", failed, name)
    if scrape.dropped:
        log.warning("/metrics: %d series over the per-family bound of %d left out", scrape.dropped, MAX_SERIES)
    scrape.add("qc_metrics_series_dropped", scrape.dropped)


def _modules(r: Replies) -> tuple[list[str], set[str]]:
    """The modules whose heartbeat to read, as `qc status` picks them: registered workers, `qc up`'s children,
    and the ingestion module (its beat shown when present); and those expected to beat."""
    registry_ = r.value(keys.worker_registry(), WorkerRegistry.from_redis)
    children = r.value(keys.supervisor_children(), SupervisorChildren.from_redis)
    registered = registry_.modules if isinstance(registry_, WorkerRegistry) else set()
    supervised = ({CHILD_MODULES.get(name, name) for name in children.children}
                  if isinstance(children, SupervisorChildren) else set())
    expected = registered | supervised
    return sorted(expected | {INGESTION_MODULE}), expected


def _market_day(r: Replies, settings: Settings, now: float) -> str:
    """Today in New York on qc's clock: the simulator's when it steers this stack, else the wall clock's."""
    anchor = r.value(keys.sim_clock(), SimClockAnchor.from_redis, record=False)
    epoch = anchor.anchor.sim_at(now) if isinstance(anchor, SimClockAnchor) and steers(anchor, settings) else now
    return clock.new_york_date(datetime.fromtimestamp(epoch, timezone.utc)).isoformat()


# --- the groups of series ----------------------------------------------------------------------


def _liveness(r: Replies, now: float, modules: list[str], expected: set[str]) -> None:
    s = r.scrape
    for module in modules:
        beat = r.value(keys.heartbeat(module), Heartbeat.from_redis, record=False)
        if isinstance(beat, Heartbeat):
            s.add("qc_heartbeat_age_seconds", max(0.0, now - beat.at_epoch), module)
            s.add("qc_heartbeat_up", 1, module)
        elif module in expected or not is_missing(beat):
            s.add("qc_heartbeat_up", 0, module)
    registry_ = r.value(keys.worker_registry(), WorkerRegistry.from_redis, record=False)
    for module, entry in sorted(registry_.workers.items() if isinstance(registry_, WorkerRegistry) else ()):
        s.add("qc_worker_cycles_total", entry.cycles, module)
        s.add("qc_worker_start_time_seconds", entry.started, module)
    errors = r.value(keys.worker_errors(), WorkerErrors.from_redis, empty_ok=True)
    for module, n in sorted(errors.counts.items() if isinstance(errors, WorkerErrors) else ()):
        s.add("qc_worker_errors_total", n, module)
    children = r.value(keys.supervisor_children(), SupervisorChildren.from_redis, record=False)
    for name, child in sorted(children.children.items() if isinstance(children, SupervisorChildren) else ()):
        s.add("qc_supervisor_child_running", float(child.state == "running"), name)
        s.add("qc_supervisor_child_restarts_total", child.restarts, name)


def _ingest(r: Replies, now: float) -> None:
    s = r.scrape
    connected = r.value(keys.ibkr_connected(), IbkrConnected.from_redis)
    if isinstance(connected, IbkrConnected):
        s.add("qc_ibkr_connected", float(connected.connected))
    stale = r.value(keys.data_stale(), StaleFeeds.from_redis, empty_ok=True)
    if isinstance(stale, StaleFeeds) or is_missing(stale):
        since = stale.since if isinstance(stale, StaleFeeds) else {}
        s.add("qc_stale_feeds", len(since))
        for name, at in sorted(since.items()):
            symbol, _, feed = name.partition(":")
            s.add("qc_stale_feed_age_seconds", max(0.0, now - at), symbol, feed)
    latency = r.value(keys.ingest_latency(), IngestLatency.from_redis)
    if isinstance(latency, IngestLatency):
        s.add("qc_ingest_writes_total", latency.writes)
        for feed, f in sorted(latency.feeds.items()):
            s.add("qc_ingest_latency_p50_seconds", f.p50_ms / 1000, feed)
            s.add("qc_ingest_latency_p99_seconds", f.p99_ms / 1000, feed)
            s.add("qc_ingest_latency_max_seconds", f.max_ms / 1000, feed)
            s.add("qc_ingest_latency_samples", f.n, feed)
    histogram = r.value(keys.ingest_latency_histogram(), LatencyHistogram.from_redis)
    if isinstance(histogram, LatencyHistogram):
        bounds = [*(repr(b / 1000) for b in LATENCY_BOUNDS_MS), "+Inf"]
        for feed, h in sorted(histogram.feeds.items()):
            s.histogram("qc_ingest_latency_seconds", list(zip(bounds, map(float, h.cumulative), strict=True)),
                        h.sum_ms / 1000, feed)
    recoveries = r.value(keys.ingest_recoveries(), IngestRecoveries.from_redis)
    if isinstance(recoveries, IngestRecoveries):
        s.add("qc_ibkr_reconnects_total", recoveries.reconnects)
        for name, n in sorted(recoveries.resubscriptions.items()):
            symbol, _, feed = name.partition(":")
            s.add("qc_feed_resubscriptions_total", n, symbol, feed)
    rejects = r.value(keys.input_rejects(), InputRejects.from_redis, empty_ok=True)
    for surface, reasons in sorted(rejects.by_surface().items() if isinstance(rejects, InputRejects) else ()):
        for reason, n in sorted(reasons.items()):
            s.add("qc_input_rejects_total", n, surface, reason)


def _analytics(r: Replies) -> None:
    s = r.scrape
    times = r.value(keys.cycle_times(ANALYTICS_MODULE), CycleTimes.from_redis)
    for task, t in sorted(times.tasks.items() if isinstance(times, CycleTimes) else ()):
        if task == WHOLE_CYCLE:
            s.summary("qc_analytics_cycle_seconds", t.count, t.sum_us / 1e6)
            s.add("qc_analytics_cycle_last_seconds", t.last_us / 1e6)
        else:
            s.summary("qc_analytics_task_seconds", t.count, t.sum_us / 1e6, task)
            s.add("qc_analytics_task_last_seconds", t.last_us / 1e6, task)


SIGNAL_COUNTERS = {"cycles": "qc_signals_cycles_total", "emitted": "qc_signals_emitted_total",
                   "duplicate": "qc_signals_duplicates_total", "healed": "qc_signals_healed_total",
                   "outcomes": "qc_signals_outcomes_total"}
CONTRACT_REJECTED = "rejected:"


def _signals(r: Replies, settings: Settings, day: Key) -> None:
    s = r.scrape
    metrics = r.value(keys.signals_metrics(), counters_from_redis)
    if isinstance(metrics, dict):
        for field, name in SIGNAL_COUNTERS.items():  # a counter never incremented is 0, not absent
            s.add(name, metrics.get(field, 0))
        for field, n in sorted(metrics.items()):
            if field.startswith(CONTRACT_REJECTED):
                s.add("qc_signals_contract_rejections_total", n, field.removeprefix(CONTRACT_REJECTED))
    blocked = r.value(day, counters_from_redis, empty_ok=True)
    for field, n in sorted(blocked.items() if isinstance(blocked, dict) else ()):
        parts = field.split(":", 2)  # "{symbol}:{strategy}:{what blocked}", the last may be "filter:<reason>"
        if len(parts) == 3:
            s.add("qc_signals_blocked_total", n, *parts)
    for symbol in settings.symbols:
        pending = r.count(keys.signals_pending(symbol))
        if pending is not None:
            s.add("qc_signals_pending", pending, symbol)


EXECUTION_COUNTERS = {"orders_sent": "qc_orders_sent_total", "state_rejected": "qc_orders_rejected_total",
                      "fills": "qc_execution_fills_total", "errors": "qc_execution_errors_total"}
STATE_PREFIX = "state_"


def _execution(r: Replies, account: str) -> None:
    s = r.scrape
    metrics = r.value(keys.execution_metrics(), counters_from_redis)
    if isinstance(metrics, dict):
        for field, name in EXECUTION_COUNTERS.items():
            s.add(name, metrics.get(field, 0))
        for field, n in sorted(metrics.items()):
            if field.startswith(STATE_PREFIX):
                s.add("qc_execution_intent_states_total", n, field.removeprefix(STATE_PREFIX))
            elif field not in EXECUTION_COUNTERS:
                s.add("qc_execution_events_total", n, field)
    failed = r.value(keys.orders_failed_count(), count_from_redis, empty_ok=True)
    if isinstance(failed, int) or is_missing(failed):  # none today: the key is not there
        s.add("qc_orders_failed_total", failed if isinstance(failed, int) else 0)
    for name, key in (("qc_orders_failed_last_hour", keys.orders_failed_log()),
                      ("qc_execution_open_intents", keys.order_intents_open(account)),
                      ("qc_execution_locked_contracts", keys.execution_locked(account))):
        got = r.count(key)
        if got is not None:
            s.add(name, got)


def _risk(r: Replies, account: str, settings: Settings) -> None:
    s = r.scrape
    latches = r.value(keys.trading_state(account), trading_states_from_redis, empty_ok=True)
    if isinstance(latches, dict) or is_missing(latches):  # no hash: nothing ever latched, all ACTIVE
        found = latches if isinstance(latches, dict) else {}
        for scope in dict.fromkeys((ACCOUNT_SCOPE, *settings.symbols, *sorted(found))):
            s.add("qc_risk_trading_state", int(found.get(scope, TradingState.ACTIVE)), account, scope)
    breaches = r.value(keys.risk_breaches_count(), count_from_redis, empty_ok=True)
    if isinstance(breaches, int) or is_missing(breaches):
        s.add("qc_risk_breaches_total", breaches if isinstance(breaches, int) else 0)
    last_hour = r.count(keys.risk_breaches_log())
    if last_hour is not None:
        s.add("qc_risk_breaches_last_hour", last_hour)
    counts = r.value(keys.trading_state_counts(account), counters_from_redis, empty_ok=True)
    for field, n in sorted(counts.items() if isinstance(counts, dict) else ()):
        cause, _, state = field.rpartition(":")
        s.add("qc_risk_state_transitions_total", n, account, cause, state)


def _distribution(r: Replies, rows: tuple[distribution.ChannelMetrics, ...]) -> None:
    s = r.scrape
    for row in rows:
        lane = (row.tier, row.channel)
        for counter in distribution.COUNTERS:
            s.add(f"qc_distribution_{counter}_total", row.count(counter), *lane)
        if row.retry_after_s is not None:
            s.add("qc_distribution_retry_after_seconds", row.retry_after_s, *lane)
        recent = r.value(keys.distribution_latency(*lane), distribution.latencies_from_redis)
        summary = distribution.summarize(recent) if isinstance(recent, tuple) else None
        if summary is not None:
            s.add("qc_distribution_latency_p50_seconds", summary.p50, *lane)
            s.add("qc_distribution_latency_p99_seconds", summary.p99, *lane)
            s.add("qc_distribution_latency_max_seconds", summary.max, *lane)
            s.add("qc_distribution_latency_samples", summary.count, *lane)
    for name, key in (("qc_distribution_dead_letters", keys.distribution_dead()),
                      ("qc_distribution_disabled_targets", keys.distribution_disabled())):
        n = r.count(key)
        if n is not None:
            s.add(name, n)


def _alpha_vantage(r: Replies, now: float) -> None:
    s = r.scrape
    av = r.value(keys.alpha_vantage_metrics(), AlphaVantageMetrics.from_redis)
    if isinstance(av, AlphaVantageMetrics):
        if av.tokens_left is not None:
            s.add("qc_alpha_vantage_tokens_left", av.tokens_left)
        s.add("qc_alpha_vantage_requests_total", av.requests)
        s.add("qc_alpha_vantage_chain_failures_total", av.chain_failures)
        s.add("qc_alpha_vantage_news_failures_total", av.news_failures)
        for response, n in sorted(av.responses.items()):
            s.add("qc_alpha_vantage_responses_total", n, response)
        for reason, n in sorted(av.dropped.items()):
            s.add("qc_alpha_vantage_rows_dropped_total", n, reason)
        for symbol, chain in sorted(av.chains.items()):
            if chain.ok_at is not None:
                s.add("qc_option_chain_age_seconds", max(0.0, now - chain.ok_at), symbol)
    bucket = r.value(keys.av_token_bucket(), bucket_from_redis)
    if isinstance(bucket, tuple):
        s.add("qc_alpha_vantage_bucket_tokens", bucket[0])
        s.add("qc_alpha_vantage_bucket_capacity", bucket[1])
