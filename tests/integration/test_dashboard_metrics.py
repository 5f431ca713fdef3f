"""`/metrics` scraped against a real Redis: every catalogued series present, with the values the workers wrote.

Inputs go in through the workers' own writers (heartbeat, executor records, risk latches, distribution
metrics, the Alpha Vantage bucket, a real `qc analytics` cycle, the signals worker's write) or their codecs;
the scrape is ``prometheus_client.generate_latest`` parsed back with its own parser, as Prometheus would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import clock, keys
from qc.core.config import Settings
from qc.core.errors import StoreUnavailable
from qc.dashboard.metrics import registry
from qc.dashboard.metrics_catalog import SPECS
from qc.distribute.cycle import metrics as delivery
from qc.execute.cycle.records import Records
from qc.ingest.cycle.ratelimit import BucketShape, TokenBucket
from qc.ingest.cycle.stream_writer import LatencyStats
from qc.risk.cycle import latches
from qc.risk.state import TradingState, escalate
from qc.runtime.codec import (
    AlphaVantageMetrics,
    ChildStatus,
    FeedLatency,
    Heartbeat,
    IbkrConnected,
    IngestLatency,
    IngestRecoveries,
    StaleFeeds,
    SupervisorChildren,
    WorkerEntry,
    WorkerErrors,
)
from qc.runtime.store import Store, connect
from qc.runtime.worker import registry_entry, write_heartbeat
from qc.signals.cycle.loop import SignalsCycle
from qc.signals.cycle.publish import Publisher
from qc.signals.params import from_settings
from tests.integration.conftest import RedisServer, free_port
from tests.unit.test_signals_build import build

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
SLACK_S = 30.0  # a loaded machine between writing an input and scraping it


def scrape(store_factory: Callable[[], Store], settings: Settings) -> Samples:
    return parse(generate_latest(registry(store_factory, settings)).decode())


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def get(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not scraped; have {sorted(n for n, _ in samples if n == name)}"
    return samples[key]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def write_everything(store: Store, settings: Settings, now: float) -> None:
    """One input per group of series, through the writer the worker uses."""
    at = datetime.fromtimestamp(now, timezone.utc)
    # liveness: a live worker, a late one, one registered that stopped beating; `qc up`'s view of two
    write_heartbeat(store, "signals", registry_entry(now - 100.0, 7))
    store.set(keys.heartbeat("ibkr_ingestion"), Heartbeat(now - 45.0).to_redis())
    store.hset(keys.worker_registry(), {"ibkr_ingestion": WorkerEntry(4242, "h1", now - 300.0, 12).to_redis(),
                                        "risk": WorkerEntry(4343, "h1", now - 200.0, 3).to_redis()})
    store.hset(keys.supervisor_children(), SupervisorChildren({
        "stream": ChildStatus(4242, "running", 2), "risk": ChildStatus(None, "waiting", 5, 1)}).to_redis())
    store.hupdate(keys.worker_errors(), WorkerErrors.counted("signals", 2))
    # ingestion
    store.set(keys.ibkr_connected(), IbkrConnected(True).to_redis())
    store.hset(keys.data_stale(), StaleFeeds({StaleFeeds.field("SPY", "depth"): now - 20.0}).to_redis())
    store.hset(keys.ingest_latency(), IngestLatency(42, {"depth": FeedLatency(0.8, 3.5, 9.0, 120)}).to_redis())
    stream_latency = LatencyStats(now - 100.0)  # `qc stream`'s own counting
    for ms in (0.3, 0.8, 4.5, 12.0):
        stream_latency.add("depth", ms)
    store.hset(keys.ingest_latency_histogram(), stream_latency.histogram().to_redis())
    store.hset(keys.ingest_recoveries(), IngestRecoveries(2, {StaleFeeds.field("SPY", "depth"): 3}).to_redis())
    store.count_rejects("av.chain", {"negative_bid": 4})
    # Alpha Vantage: the metrics `qc chains` writes, and a real take from the shared bucket
    for update in (AlphaVantageMetrics.tokens(7), AlphaVantageMetrics.response("ok"),
                   AlphaVantageMetrics.response("ok"), AlphaVantageMetrics.response("throttled"),
                   AlphaVantageMetrics.chain_refreshed("SPY", now - 90.0, 500, 2, {"negative_oi": 3}),
                   AlphaVantageMetrics.chain_kept("QQQ", 400.0, "HTTP 503"), AlphaVantageMetrics.news_failed()):
        store.hupdate(keys.alpha_vantage_metrics(), update)
    assert TokenBucket(store, BucketShape(75)).take(now).granted
    # signals: the worker's own counters write, and two published signals
    cycle = SignalsCycle(store, settings.symbols, from_settings(settings))
    cycle.write(at, {}, Counter({"SPY:0dte:below_threshold": 5, "QQQ:1dte:filter:spread": 2}),
                Counter({"cycles": 3, "emitted": 2, "duplicate": 1, "rejected:spread": 4}))
    publisher = Publisher(store, 50)
    for signal in (build(1), build(-1)):
        publisher.publish(signal, 0)
    # execution: the executor's counters, two failed orders (one over an hour ago), an open intent, a lock
    records = Records(store, "default")
    for name, n in {"orders_sent": 3, "state_rejected": 1, "state_working": 2, "fills": 2, "intents": 4}.items():
        records.count(name, n)
    records.flush_counts()
    for when in (now - 30.0, now - 7200.0):
        store.record_event(keys.orders_failed_count(), keys.orders_failed_log(), when, f'{{"at": {when}}}')
    store.client.zadd(keys.order_intents_open("default").name, {"intent-1": now})
    store.client.hset(keys.execution_locked("default").name, "1234", "position_mismatch")
    # risk: a breaker halts the account (a breach), an operator reduces SPY (not one)
    latches.update(store, "default", "account", lambda cur: escalate(
        cur, TradingState.HALTED, "daily_loss", "breaker:daily_loss", "pnl=-5000", at), at)
    latches.update(store, "default", "SPY", lambda cur: escalate(
        cur, TradingState.REDUCING, "operator", "operator:alice", "looking", at), at)
    # distribution
    delivery.record(store, "premium", "telegram", {"sent": 5, "failed": 1, "uncertain": 1}, retry_after_s=3.0)
    for latency in (0.2, 0.4, 1.5):
        delivery.record_latency(store, "premium", "telegram", latency)
    delivery.dead_letter(store, "item", "premium", "telegram", delivery.DeadReason.UNCERTAIN, "timeout")
    store.client.sadd(keys.distribution_disabled().name, "webhook:ops")
    # analytics: one real cycle of the worker records its own time
    AnalyticsCycle(store, ("SPY",))(at)


def test_every_catalogued_series_is_scraped_with_what_the_workers_wrote(store: Store, settings: Settings) -> None:
    now = clock.wall_epoch()
    write_everything(store, settings, now)
    s = scrape(lambda: store, settings)

    missing = [name for spec in SPECS for name in spec.samples if name not in names(s)]
    assert missing == []
    assert get(s, "qc_redis_up") == 1
    assert {v for (n, _), v in s.items() if n in ("qc_metrics_section_failed", "qc_source_unreadable")} == {0}
    assert get(s, "qc_metrics_series_dropped") == 0

    # liveness
    assert 0 <= get(s, "qc_heartbeat_age_seconds", module="signals") <= SLACK_S
    assert 45 <= get(s, "qc_heartbeat_age_seconds", module="ibkr_ingestion") <= 45 + SLACK_S
    assert (get(s, "qc_heartbeat_up", module="signals"), get(s, "qc_heartbeat_up", module="risk")) == (1, 0)
    assert ("qc_heartbeat_age_seconds", (("module", "risk"),)) not in s  # no beat: no age, never a fresh zero
    assert get(s, "qc_worker_cycles_total", module="ibkr_ingestion") == 12
    assert get(s, "qc_worker_start_time_seconds", module="risk") == pytest.approx(now - 200.0, abs=1e-3)
    assert get(s, "qc_worker_errors_total", module="signals") == 2
    assert get(s, "qc_supervisor_child_running", child="stream") == 1
    assert get(s, "qc_supervisor_child_running", child="risk") == 0
    assert get(s, "qc_supervisor_child_restarts_total", child="risk") == 5
    # ingestion
    assert get(s, "qc_ibkr_connected") == 1
    assert get(s, "qc_stale_feeds") == 1
    assert 20 <= get(s, "qc_stale_feed_age_seconds", symbol="SPY", feed="depth") <= 20 + SLACK_S
    assert get(s, "qc_ingest_latency_p50_seconds", feed="depth") == pytest.approx(0.0008)
    assert get(s, "qc_ingest_latency_p99_seconds", feed="depth") == pytest.approx(0.0035)
    assert get(s, "qc_ingest_latency_max_seconds", feed="depth") == pytest.approx(0.009)
    assert get(s, "qc_ingest_latency_samples", feed="depth") == 120
    bucket = {le: get(s, "qc_ingest_latency_seconds_bucket", feed="depth", le=le)
              for le in ("0.00025", "0.0005", "0.001", "0.005", "0.01", "0.015", "+Inf")}
    assert bucket == {"0.00025": 0, "0.0005": 1, "0.001": 2, "0.005": 3, "0.01": 3, "0.015": 4, "+Inf": 4}
    assert get(s, "qc_ingest_latency_seconds_count", feed="depth") == 4
    assert get(s, "qc_ingest_latency_seconds_sum", feed="depth") == pytest.approx(0.0176)
    assert get(s, "qc_ingest_writes_total") == 42
    assert get(s, "qc_ibkr_reconnects_total") == 2
    assert get(s, "qc_feed_resubscriptions_total", symbol="SPY", feed="depth") == 3
    assert get(s, "qc_input_rejects_total", surface="av.chain", reason="negative_bid") == 4
    assert 90 <= get(s, "qc_option_chain_age_seconds", symbol="SPY") <= 90 + SLACK_S
    # analytics: one cycle, every task it ran inside it
    assert get(s, "qc_analytics_cycle_seconds_count") == 1
    cycle_s = get(s, "qc_analytics_cycle_seconds_sum")
    assert 0 < cycle_s < SLACK_S and get(s, "qc_analytics_cycle_last_seconds") == cycle_s
    tasks = {dict(labels)["task"]: v for (n, labels), v in s.items() if n == "qc_analytics_task_seconds_sum"}
    assert set(tasks) == {"vpin", "imbalance", "positioning", "flow"}
    assert 0 < sum(tasks.values()) <= cycle_s
    # signals
    assert get(s, "qc_signals_cycles_total") == 3
    assert get(s, "qc_signals_emitted_total") == 2
    assert get(s, "qc_signals_duplicates_total") == 1
    assert get(s, "qc_signals_healed_total") == 0
    assert get(s, "qc_signals_contract_rejections_total", reason="spread") == 4
    assert get(s, "qc_signals_blocked_total", symbol="SPY", strategy="0dte", reason="below_threshold") == 5
    assert get(s, "qc_signals_blocked_total", symbol="QQQ", strategy="1dte", reason="filter:spread") == 2
    assert (get(s, "qc_signals_pending", symbol="SPY"), get(s, "qc_signals_pending", symbol="QQQ")) == (2, 0)
    # execution
    assert get(s, "qc_orders_sent_total") == 3
    assert get(s, "qc_orders_rejected_total") == 1
    assert get(s, "qc_orders_failed_total") == 2
    assert get(s, "qc_orders_failed_last_hour") == 1
    assert get(s, "qc_execution_fills_total") == 2
    assert get(s, "qc_execution_errors_total") == 0
    assert get(s, "qc_execution_intent_states_total", state="working") == 2
    assert get(s, "qc_execution_events_total", event="intents") == 4
    assert get(s, "qc_execution_open_intents") == 1
    assert get(s, "qc_execution_locked_contracts") == 1
    # risk
    state = {dict(labels)["scope"]: v for (n, labels), v in s.items() if n == "qc_risk_trading_state"}
    assert state == {"account": TradingState.HALTED, "SPY": TradingState.REDUCING, "QQQ": 0, "IWM": 0}
    assert get(s, "qc_risk_breaches_total") == 1
    assert get(s, "qc_risk_breaches_last_hour") == 1
    assert get(s, "qc_risk_state_transitions_total", account="default", cause="daily_loss", state="HALTED") == 1
    assert get(s, "qc_risk_state_transitions_total", account="default", cause="operator", state="REDUCING") == 1
    # distribution
    lane = {"tier": "premium", "channel": "telegram"}
    assert (get(s, "qc_distribution_sent_total", **lane), get(s, "qc_distribution_failed_total", **lane),
            get(s, "qc_distribution_uncertain_total", **lane), get(s, "qc_distribution_dead_total", **lane)) == (
        5, 1, 1, 0)
    assert get(s, "qc_distribution_retry_after_seconds", **lane) == 3.0
    assert get(s, "qc_distribution_latency_p50_seconds", **lane) == pytest.approx(0.4)
    assert get(s, "qc_distribution_latency_p99_seconds", **lane) == pytest.approx(1.5)
    assert get(s, "qc_distribution_latency_max_seconds", **lane) == pytest.approx(1.5)
    assert get(s, "qc_distribution_latency_samples", **lane) == 3
    assert get(s, "qc_distribution_dead_letters") == 1
    assert get(s, "qc_distribution_disabled_targets") == 1
    # Alpha Vantage
    assert get(s, "qc_alpha_vantage_tokens_left") == 7
    assert get(s, "qc_alpha_vantage_requests_total") == 3
    assert get(s, "qc_alpha_vantage_responses_total", response="ok") == 2
    assert get(s, "qc_alpha_vantage_responses_total", response="throttled") == 1
    assert get(s, "qc_alpha_vantage_chain_failures_total") == 1
    assert get(s, "qc_alpha_vantage_news_failures_total") == 1
    assert get(s, "qc_alpha_vantage_rows_dropped_total", reason="negative_oi") == 3
    shape = BucketShape(75)
    assert get(s, "qc_alpha_vantage_bucket_capacity") == shape.capacity
    assert shape.capacity - 1 <= get(s, "qc_alpha_vantage_bucket_tokens") <= shape.capacity


def test_an_empty_redis_gives_no_fresh_zero_for_what_nobody_wrote(store: Store, settings: Settings) -> None:
    s = scrape(lambda: store, settings)
    assert get(s, "qc_redis_up") == 1
    for absent in ("qc_heartbeat_age_seconds", "qc_ibkr_connected", "qc_ingest_latency_p99_seconds",
                   "qc_analytics_cycle_last_seconds", "qc_signals_emitted_total", "qc_orders_sent_total",
                   "qc_alpha_vantage_tokens_left", "qc_distribution_sent_total"):
        assert absent not in names(s)
    assert get(s, "qc_source_up", source=keys.ibkr_connected().name) == 0
    assert get(s, "qc_source_up", source=keys.execution_metrics().name) == 0
    # where absence means "none": no stale feed, no failed order, nothing latched
    assert get(s, "qc_stale_feeds") == 0
    assert get(s, "qc_orders_failed_total") == 0
    assert get(s, "qc_risk_trading_state", account="default", scope="account") == 0


def test_an_unreadable_value_is_flagged_and_the_rest_still_scraped(store: Store, settings: Settings) -> None:
    store.client.set(keys.data_stale().name, "not a hash")  # a wrong type under a qc key
    store.set(keys.ibkr_connected(), "yes")  # a value its codec refuses
    store.hset(keys.worker_registry(), {"risk": WorkerEntry(4343, "h1", clock.wall_epoch(), 3).to_redis()})
    store.set(keys.heartbeat("risk"), "garbage")
    store.hset(keys.trading_state("default"), {"SPY": "{not json"})
    store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(25))
    s = scrape(lambda: store, settings)
    assert get(s, "qc_redis_up") == 1
    assert get(s, "qc_source_unreadable", source=keys.data_stale().name) == 1
    assert get(s, "qc_source_unreadable", source=keys.ibkr_connected().name) == 1
    assert "qc_stale_feeds" not in names(s) and "qc_ibkr_connected" not in names(s)
    assert get(s, "qc_heartbeat_up", module="risk") == 0
    assert get(s, "qc_risk_trading_state", account="default", scope="SPY") == TradingState.HALTED
    assert get(s, "qc_alpha_vantage_tokens_left") == 25
    assert {v for (n, _), v in s.items() if n == "qc_metrics_section_failed"} == {0}


def test_redis_down_answers_qc_redis_up_0_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    settings = Settings(redis_url=server.url, data_dir=str(tmp_path / "var"))
    store = connect(settings)
    try:
        store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(9))
        reg = registry(lambda: store, settings)
        up = parse(generate_latest(reg).decode())
        assert (get(up, "qc_redis_up"), get(up, "qc_alpha_vantage_tokens_left")) == (1, 9)
        server.kill()
        down = parse(generate_latest(reg).decode())
        assert down == {("qc_redis_up", ()): 0}
        server.restart()
        store.hupdate(keys.alpha_vantage_metrics(), AlphaVantageMetrics.tokens(11))
        back = parse(generate_latest(reg).decode())
        assert (get(back, "qc_redis_up"), get(back, "qc_alpha_vantage_tokens_left")) == (1, 11)
    finally:
        store.close()
        server.kill()


def test_a_store_factory_that_fails_answers_qc_redis_up_0_then_retries(tmp_path: Path) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", data_dir=str(tmp_path / "var"))
    calls: list[int] = []

    def factory() -> Store:
        calls.append(1)
        if len(calls) == 1:
            raise StoreUnavailable("Redis unreachable at 127.0.0.1", "start it")
        return connect(settings)  # nobody listens there: the reads fail

    reg = registry(factory, settings)
    assert parse(generate_latest(reg).decode()) == {("qc_redis_up", ()): 0}
    assert parse(generate_latest(reg).decode()) == {("qc_redis_up", ()): 0}
    assert len(calls) == 2
