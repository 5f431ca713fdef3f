"""Every Prometheus series `/metrics` can export: its name, type, labels and meaning, declared once.

Why a table: the collector (``metrics.py``) builds its families from it, the alert rules in
``deploy/prometheus/qc-alerts.yml`` may name only what is here (a unit test checks), and the README's
list is this table. Names follow Prometheus conventions: ``qc_`` prefix, base units in the name
(``_seconds``), counters end in ``_total``. A ``_total`` counter is read from a worker's Redis counter
(``HINCRBY``/``INCR`` on a key with a TTL, most of them "today"): it resets when that key expires, which
``rate()`` and ``increase()`` handle. Labels are bounded by code and configuration (modules, symbols,
feeds, strategies, reasons, tiers, channels); never a signal, order or fill id.

Pure: no I/O (the distribution counters' names come from distribution's codec).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from qc.distribute.codec import COUNTERS as DISTRIBUTION_COUNTERS

Kind = Literal["gauge", "counter", "summary", "histogram"]


@dataclass(frozen=True, slots=True)
class Spec:
    """One metric family: ``name`` as exposed (a counter's with ``_total``), type, labels, help text."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()

    @property
    def family(self) -> str:
        """The family name prometheus_client reports (a counter's without ``_total``)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    @property
    def samples(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this family."""
        if self.kind == "summary":
            return (f"{self.name}_count", f"{self.name}_sum")
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


def _g(name: str, help: str, *labels: str) -> Spec:
    return Spec(name, "gauge", help, labels)


def _c(name: str, help: str, *labels: str) -> Spec:
    return Spec(name, "counter", help, labels)


def _s(name: str, help: str, *labels: str) -> Spec:
    return Spec(name, "summary", help, labels)


def _h(name: str, help: str, *labels: str) -> Spec:
    return Spec(name, "histogram", help, labels)


LATENCY_STATS = ("p50", "p99", "max")

SPECS: tuple[Spec, ...] = (
    # --- the scrape itself ---
    _g("qc_redis_up", "1 when this scrape read Redis, 0 when Redis did not answer (no other qc_ series then)."),
    _g("qc_source_up", "1 when the Redis value behind a group of series was read and decoded, 0 when it is missing "
       "(its writer is not running) or unreadable: its series are then absent. A value whose absence means none "
       "(stale feeds, failed orders, latches, errors, rejects, blocks) counts as up when absent.", "source"),
    _g("qc_source_unreadable", "1 when the value is present but its codec refused it (malformed, another schema "
       "version, wrong Redis type): `qc status` shows why.", "source"),
    _g("qc_metrics_section_failed", "1 when building one group of series failed in the dashboard (logged with "
       "its traceback); the other groups are unaffected.", "section"),
    _g("qc_metrics_series_dropped", "Series left out of this scrape because one family exceeded its bound of "
       "label sets (a sign of foreign fields in a qc hash)."),
    # --- liveness ---
    _g("qc_heartbeat_age_seconds", "Seconds since the module's last heartbeat (wall clock).", "module"),
    _g("qc_heartbeat_up", "1 when the module's heartbeat is present and readable; 0 when a registered or "
       "supervised module has none (died more than 120 s ago) or an unreadable one.", "module"),
    _c("qc_worker_cycles_total", "Cycles the module's running process completed (resets on restart).", "module"),
    _g("qc_worker_start_time_seconds", "Unix time the module's running process started.", "module"),
    _c("qc_worker_errors_total", "Cycle errors the module logged and survived.", "module"),
    _g("qc_supervisor_child_running", "1 when the `qc up` child runs, 0 while it waits for a restart or exited.",
       "child"),
    _c("qc_supervisor_child_restarts_total", "Restarts of the `qc up` child.", "child"),
    # --- ingestion ---
    _g("qc_ibkr_connected", "1 while `qc stream`'s IB API socket is up, 0 otherwise."),
    _c("qc_ibkr_reconnects_total", "IB reconnects by `qc stream`."),
    _c("qc_feed_resubscriptions_total", "Resubscriptions of a silent feed by `qc stream`.", "symbol", "feed"),
    _g("qc_stale_feeds", "Feeds marked stale now (each with its age in qc_stale_feed_age_seconds)."),
    _g("qc_stale_feed_age_seconds", "Seconds since a stale feed's last live data (wall clock).", "symbol", "feed"),
    _g("qc_ingest_latency_p50_seconds", "Median message-arrival-to-Redis-write latency over `qc stream`'s "
       "recent window.", "feed"),
    _g("qc_ingest_latency_p99_seconds", "99th percentile arrival-to-Redis latency over the recent window.", "feed"),
    _g("qc_ingest_latency_max_seconds", "Worst arrival-to-Redis latency over the recent window.", "feed"),
    _g("qc_ingest_latency_samples", "Messages in the latency window behind the percentiles.", "feed"),
    _h("qc_ingest_latency_seconds", "Every `qc stream` write by arrival-to-Redis latency since the process started "
       "(buckets finest around the 5 ms target; resets on restart): `histogram_quantile` over any range.", "feed"),
    _c("qc_ingest_writes_total", "Redis write batches `qc stream` flushed (resets on restart)."),
    _c("qc_input_rejects_total", "Outside values refused at a boundary, by reason.", "surface", "reason"),
    _g("qc_option_chain_age_seconds", "Seconds since `qc chains` last stored a good option chain (wall clock).",
       "symbol"),
    # --- analytics ---
    _s("qc_analytics_cycle_seconds", "Real seconds per `qc analytics` cycle (all symbols, all tasks due)."),
    _g("qc_analytics_cycle_last_seconds", "Real seconds the last `qc analytics` cycle took."),
    _s("qc_analytics_task_seconds", "Real seconds per run of one analytics task over all symbols.", "task"),
    _g("qc_analytics_task_last_seconds", "Real seconds the task's last run took.", "task"),
    # --- signals ---
    _c("qc_signals_cycles_total", "`qc signals` cycles."),
    _c("qc_signals_emitted_total", "Signals emitted (claimed and published)."),
    _c("qc_signals_duplicates_total", "Firing evaluations that found their contract already claimed."),
    _c("qc_signals_healed_total", "Claimed signals a crash left unpublished, published later."),
    _c("qc_signals_outcomes_total", "Signals the scorecard judged (ended)."),
    _c("qc_signals_contract_rejections_total", "Contract candidates a filter refused, by reason.", "reason"),
    _c("qc_signals_blocked_total", "Evaluations blocked today (New York day of qc's clock), by what blocked them.",
       "symbol", "strategy", "reason"),
    _g("qc_signals_pending", "Signals in the pending list (`llen signals:pending:SYM`).", "symbol"),
    # --- execution ---
    _c("qc_orders_sent_total", "Orders `qc execute` placed at the broker."),
    _c("qc_orders_rejected_total", "Order intents rejected (by pre-trade risk or the broker, before any fill)."),
    _c("qc_orders_failed_total", "Orders the broker rejected or failed today (any leg)."),
    _g("qc_orders_failed_last_hour", "Orders rejected or failed in the last hour (the runbook's alert figure)."),
    _c("qc_execution_fills_total", "Executions recorded."),
    _c("qc_execution_errors_total", "Executor errors logged and survived."),
    _c("qc_execution_intent_states_total", "Order intents entering each state.", "state"),
    _c("qc_execution_events_total", "The executor's other counters (intents, duplicates, modifications, "
       "trail_moves, reconciliations, unreadable_signals).", "event"),
    _g("qc_execution_open_intents", "Order intents not yet in a terminal state (positions and working orders)."),
    _g("qc_execution_locked_contracts", "Contracts `qc execute` refuses to trade until an operator looks."),
    # --- risk ---
    _g("qc_risk_trading_state", "Latched trading state: 0 ACTIVE, 1 REDUCING, 2 HALTED (an unreadable latch "
       "reads 2, as `qc risk` treats it).", "account", "scope"),
    _c("qc_risk_breaches_total", "Risk-limit breaches (breaker trips) today."),
    _g("qc_risk_breaches_last_hour", "Risk breaches in the last hour (the runbook's alert figure)."),
    _c("qc_risk_state_transitions_total", "Trading-state changes today, by cause and new state.",
       "account", "cause", "state"),
    # --- distribution ---
    *(_c(f"qc_distribution_{name}_total", f"Deliveries counted {name} by `qc distribute`.", "tier", "channel")
      for name in DISTRIBUTION_COUNTERS),
    _g("qc_distribution_retry_after_seconds", "The last wait a rate-limited channel asked for.", "tier", "channel"),
    *(_g(f"qc_distribution_latency_{stat}_seconds", f"{stat} of recent delivery latencies (sent minus due, qc "
         "seconds).", "tier", "channel") for stat in LATENCY_STATS),
    _g("qc_distribution_latency_samples", "Deliveries in the latency window.", "tier", "channel"),
    _g("qc_distribution_dead_letters", "Dead letters kept (expired, permanent, exhausted, uncertain)."),
    _g("qc_distribution_disabled_targets", "Channel targets disabled until `qc distribute enable`."),
    # --- Alpha Vantage ---
    _g("qc_alpha_vantage_tokens_left", "Requests the plan still allows in the trailing minute, every `qc chains` "
       "counted (the runbook's alert figure)."),
    _c("qc_alpha_vantage_requests_total", "Alpha Vantage HTTP attempts."),
    _c("qc_alpha_vantage_responses_total", "Alpha Vantage answers by response class.", "response"),
    _c("qc_alpha_vantage_chain_failures_total", "Option chains not refreshed (the last good one kept)."),
    _c("qc_alpha_vantage_news_failures_total", "News sentiment requests that failed."),
    _c("qc_alpha_vantage_rows_dropped_total", "Chain rows dropped, by reason.", "reason"),
    _g("qc_alpha_vantage_bucket_tokens", "Burst tokens in the shared request bucket now (empties every healthy "
       "cycle: alert on qc_alpha_vantage_tokens_left instead)."),
    _g("qc_alpha_vantage_bucket_capacity", "Burst capacity of the shared request bucket."),
)

BY_NAME: dict[str, Spec] = {s.name: s for s in SPECS}
