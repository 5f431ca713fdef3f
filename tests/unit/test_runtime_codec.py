"""The monitoring codecs: every value round-trips, and a missing, partial, old or malformed one is Absent."""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Mapping
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import keys
from qc.core.clock import SimAnchor
from qc.core.codec import EPOCH_MAX, MISSING, Absent
from qc.runtime.codec import (
    AV_TOTALS,
    AlphaVantageMetrics,
    ChainHealth,
    ChildStatus,
    FeedLatency,
    HashUpdate,
    Heartbeat,
    IbkrConnected,
    IngestLatency,
    IngestRecoveries,
    SimClockAnchor,
    StaleFeeds,
    SupervisorChildren,
    WorkerEntry,
    WorkerErrors,
    WorkerRegistry,
)
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import Store

KEY = "k"

# --- strategies -------------------------------------------------------------------------------

millis_epochs = st.integers(0, int(EPOCH_MAX * 1000)).map(lambda ms: ms / 1000)  # what ".3f" carries exactly
epochs = st.floats(0, EPOCH_MAX)
counts = st.integers(0, 2**53)
names = st.text(min_size=1, max_size=12)
symbols = st.text(string.ascii_uppercase, min_size=1, max_size=5)
feeds = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8)
symbol_feeds = st.builds(StaleFeeds.field, symbols, feeds)
ms = st.floats(0, 1e6)

worker_entries = st.builds(WorkerEntry, st.integers(1, 2**22), names, epochs, counts)
child_statuses = st.builds(ChildStatus, st.none() | st.integers(1, 2**22), names, counts,
                           st.none() | st.integers(-255, 255))


@st.composite
def feed_latencies(draw: st.DrawFn) -> FeedLatency:
    p50, p99, top = sorted(draw(st.lists(ms, min_size=3, max_size=3)))
    return FeedLatency(p50, p99, top, draw(st.integers(1, 10**6)))


reserved = {"v", "tokens_left", *AV_TOTALS}
response_classes = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12).filter(lambda k: k not in reserved)
chain_healths = st.builds(ChainHealth, st.none() | millis_epochs, st.none() | counts, st.none() | counts,
                          st.none() | counts, st.none() | st.text(max_size=40)).filter(
    lambda c: any(v is not None for v in (c.ok_at, c.age_s, c.rows, c.divergent, c.last_error)))
av_metrics = st.builds(AlphaVantageMetrics, st.none() | counts, counts, counts, counts,
                       st.dictionaries(response_classes, counts, max_size=4),
                       st.dictionaries(names, counts, max_size=3),
                       st.dictionaries(symbols, chain_healths, max_size=3))


# --- round trips ------------------------------------------------------------------------------


@given(millis_epochs)
def test_heartbeat_round_trips_as_a_bare_unix_time(at: float) -> None:
    raw = Heartbeat(at).to_redis()
    assert float(raw) == at  # `redis-cli get heartbeat:ibkr_ingestion`: a timestamp, nothing else
    assert Heartbeat.from_redis(raw, key=KEY) == Heartbeat(at)


@given(st.booleans())
def test_connection_flag_round_trips(connected: bool) -> None:
    assert IbkrConnected.from_redis(IbkrConnected(connected).to_redis(), key=KEY) == IbkrConnected(connected)


@given(st.dictionaries(names, worker_entries, min_size=1, max_size=4))
def test_worker_registry_round_trips(workers: dict[str, WorkerEntry]) -> None:
    registry = WorkerRegistry(workers)
    assert WorkerRegistry.from_redis(registry.to_redis(), key=KEY) == registry


@given(st.dictionaries(names, child_statuses, min_size=1, max_size=4))
def test_supervisor_children_round_trip(children: dict[str, ChildStatus]) -> None:
    value = SupervisorChildren(children)
    assert SupervisorChildren.from_redis(value.to_redis(), key=KEY) == value


@given(st.dictionaries(names, counts, min_size=1, max_size=4))
def test_worker_errors_round_trip(errors: dict[str, int]) -> None:
    assert WorkerErrors.from_redis(WorkerErrors(errors).to_redis(), key=KEY) == WorkerErrors(errors)


@given(st.dictionaries(symbol_feeds, millis_epochs, min_size=1, max_size=6))
def test_stale_feeds_round_trip(since: dict[str, float]) -> None:
    assert StaleFeeds.from_redis(StaleFeeds(since).to_redis(), key=KEY) == StaleFeeds(since)


@given(counts, st.dictionaries(symbol_feeds, counts, max_size=4))
def test_ingest_recoveries_round_trip(reconnects: int, resubscriptions: dict[str, int]) -> None:
    value = IngestRecoveries(reconnects, resubscriptions)
    assert IngestRecoveries.from_redis(value.to_redis(), key=KEY) == value


@given(counts, st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=8), feed_latencies(), max_size=4))
def test_ingest_latency_round_trips_and_reads_the_writers_summary(writes: int, feeds: dict[str, FeedLatency]) -> None:
    value = IngestLatency(writes, feeds)
    assert IngestLatency.from_redis(value.to_redis(), key=KEY) == value
    summary = {name: float(raw) for name, raw in value.to_redis().items() if name != "v"}  # the writer's floats
    assert IngestLatency.from_summary(summary, key=KEY) == value


@given(av_metrics)
def test_alpha_vantage_metrics_round_trip(metrics: AlphaVantageMetrics) -> None:
    assert AlphaVantageMetrics.from_redis(metrics.to_redis(), key=KEY) == metrics


@given(epochs, epochs, st.floats(0.01, 1e6), st.integers(1, 65535), st.integers(1, 65535))
def test_sim_clock_anchor_round_trips_into_the_clock(real: float, sim: float, speed: float, ib: int,
                                                     av: int) -> None:
    value = SimClockAnchor(real, sim, speed, ib, av)
    read = SimClockAnchor.from_redis(value.to_redis(), key=KEY)
    assert read == value
    assert isinstance(read, SimClockAnchor) and SimClockAnchor.of(read.anchor, ib_port=ib, av_port=av) == value


# --- the writers' increments, applied as Redis would --------------------------------------------


def apply(fields: dict[str, str], update: HashUpdate) -> None:
    """HSET then HINCRBY, as ``Store.hupdate`` sends them."""
    fields.update(update.fields)
    for name, n in update.increments.items():
        fields[name] = str(int(fields.get(name, "0")) + n)


updates = st.one_of(
    st.builds(AlphaVantageMetrics.tokens, st.integers(0, 1000)),
    st.builds(AlphaVantageMetrics.response, response_classes),
    st.builds(AlphaVantageMetrics.chain_refreshed, symbols, millis_epochs, counts, counts,
              st.dictionaries(names, st.integers(0, 100), max_size=3)),
    st.builds(AlphaVantageMetrics.chain_kept, symbols, st.none() | st.floats(allow_nan=True), st.text(max_size=400)),
    st.just(AlphaVantageMetrics.news_failed()),
)


@given(st.lists(updates, min_size=1, max_size=12))
def test_any_sequence_of_chains_updates_reads_back_with_consistent_counters(seq: list[HashUpdate]) -> None:
    fields: dict[str, str] = {}
    for update in seq:
        apply(fields, update)
    metrics = AlphaVantageMetrics.from_redis(fields, key=KEY)
    assert isinstance(metrics, AlphaVantageMetrics), metrics
    assert metrics.requests == sum(metrics.responses.values())
    assert metrics.chain_failures == sum(1 for u in seq if "chain_failures" in u.increments)
    assert all(len(c.last_error or "") <= 300 for c in metrics.chains.values())


def test_a_response_class_cannot_overwrite_another_metric() -> None:
    for kind in ("requests", "tokens_left", "v", "dropped:x"):
        with pytest.raises(ValueError, match="cannot be a response class"):
            AlphaVantageMetrics.response(kind)


def test_worker_errors_are_counted_by_increment() -> None:
    assert WorkerErrors.counted("analytics", 3) == HashUpdate({}, {"analytics": 3})


def test_a_writers_nan_latency_is_refused_not_stored() -> None:
    summary = {"writes": 3.0, "depth_p50_ms": math.nan, "depth_p99_ms": 1.0, "depth_max_ms": 2.0, "depth_n": 3.0}
    refused = IngestLatency.from_summary(summary, key=KEY)
    assert isinstance(refused, Absent) and "not finite" in refused.reason


# --- absent, partial, old, malformed, non-finite ------------------------------------------------

GOOD_ENTRY = WorkerEntry(7, "h", 1.8e9, 2).to_redis()
GOOD_CHILD = ChildStatus(7, "running", 0).to_redis()
LATENCY = {"v": "1", "writes": "5", "depth_p50_ms": "0.5", "depth_p99_ms": "0.9", "depth_max_ms": "1.2",
           "depth_n": "5"}
ANCHOR = {"real_epoch": "1800000000.0", "sim_epoch": "1790000000.0", "speed": "10.0", "ib_port": "4002",
          "av_port": "8765"}
Reader = Callable[..., Any]

CASES: list[tuple[str, Reader, Any, str]] = [
    # heartbeat:{module}
    ("heartbeat missing", Heartbeat.from_redis, None, MISSING),
    ("heartbeat empty", Heartbeat.from_redis, "", MISSING),
    ("heartbeat text", Heartbeat.from_redis, "yesterday", "not a number"),
    ("heartbeat nan", Heartbeat.from_redis, "nan", "not finite"),
    ("heartbeat inf", Heartbeat.from_redis, "inf", "not finite"),
    ("heartbeat in ms", Heartbeat.from_redis, "1800000000000", "outside"),
    ("heartbeat negative", Heartbeat.from_redis, "-1", "outside"),
    # ibkr:connected
    ("connected missing", IbkrConnected.from_redis, None, MISSING),
    ("connected word", IbkrConnected.from_redis, "true", "not one of 0, 1"),
    # monitoring:workers (entries; the hash itself only misses)
    ("registry missing", WorkerRegistry.from_redis, {}, MISSING),
    ("entry missing", WorkerEntry.from_redis, None, MISSING),
    ("entry partial", WorkerEntry.from_redis, '{"v":1,"pid":7,"host":"h","cycles":2}', "started missing (partial"),
    ("entry old", WorkerEntry.from_redis, '{"pid":7,"host":"h","cycles":2}', "old version"),
    ("entry newer", WorkerEntry.from_redis, GOOD_ENTRY.replace('"v":1', '"v":2'), "old version"),
    ("entry not json", WorkerEntry.from_redis, "{pid", "JSONDecodeError"),
    ("entry a list", WorkerEntry.from_redis, "[]", "not an object"),
    ("entry pid zero", WorkerEntry.from_redis, GOOD_ENTRY.replace('"pid":7', '"pid":0'), "pid is 0"),
    ("entry host empty", WorkerEntry.from_redis, GOOD_ENTRY.replace('"host":"h"', '"host":""'), "host"),
    ("entry cycles bool", WorkerEntry.from_redis, GOOD_ENTRY.replace('"cycles":2', '"cycles":true'), "boolean"),
    ("entry started inf", WorkerEntry.from_redis, GOOD_ENTRY.replace("1800000000.0", "1e999"), "not finite"),
    # monitoring:supervisor
    ("children missing", SupervisorChildren.from_redis, None, MISSING),
    ("child partial", ChildStatus.from_redis, '{"v":1,"pid":7,"restarts":0}', "state missing (partial"),
    ("child old", ChildStatus.from_redis, '{"pid":7,"state":"running","restarts":0}', "old version"),
    ("child restarts negative", ChildStatus.from_redis, GOOD_CHILD.replace('"restarts":0', '"restarts":-1'),
     "outside"),
    # monitoring:errors
    ("errors missing", WorkerErrors.from_redis, {}, MISSING),
    ("errors text", WorkerErrors.from_redis, {"analytics": "many"}, "not an integer"),
    ("errors negative", WorkerErrors.from_redis, {"analytics": "-2"}, "outside"),
    # monitoring:data:stale
    ("stale missing", StaleFeeds.from_redis, None, MISSING),
    ("stale field", StaleFeeds.from_redis, {"SPY": "1800000000"}, "'{symbol}:{feed}'"),
    ("stale empty since", StaleFeeds.from_redis, {"SPY:depth": ""}, "is empty"),
    ("stale nan", StaleFeeds.from_redis, {"SPY:depth": "nan"}, "not finite"),
    # monitoring:ingest:recoveries
    ("recoveries missing", IngestRecoveries.from_redis, {}, MISSING),
    ("recoveries old", IngestRecoveries.from_redis, {"reconnects": "1"}, "old version"),
    ("recoveries partial", IngestRecoveries.from_redis, {"v": "1", "SPY:depth": "1"}, "reconnects missing"),
    ("recoveries field", IngestRecoveries.from_redis, {"v": "1", "reconnects": "1", "depth": "2"}, "'{symbol}:"),
    # monitoring:ingest:latency
    ("latency missing", IngestLatency.from_redis, None, MISSING),
    ("latency old", IngestLatency.from_redis, {k: v for k, v in LATENCY.items() if k != "v"}, "old version"),
    ("latency partial feed", IngestLatency.from_redis, {k: v for k, v in LATENCY.items() if k != "depth_p99_ms"},
     "depth_p99_ms missing (partial"),
    ("latency no writes", IngestLatency.from_redis, {k: v for k, v in LATENCY.items() if k != "writes"},
     "writes missing"),
    ("latency negative", IngestLatency.from_redis, {**LATENCY, "depth_p50_ms": "-0.5"}, "outside"),
    ("latency inf", IngestLatency.from_redis, {**LATENCY, "depth_max_ms": "inf"}, "not finite"),
    ("latency disorder", IngestLatency.from_redis, {**LATENCY, "depth_p50_ms": "1.0"}, "out of order"),
    ("latency stray field", IngestLatency.from_redis, {**LATENCY, "depth": "1"}, "is not a '{feed}_"),
    # monitoring:alpha_vantage:metrics
    ("metrics missing", AlphaVantageMetrics.from_redis, {}, MISSING),
    ("metrics old", AlphaVantageMetrics.from_redis, {"tokens_left": "40", "requests": "3"}, "old version"),
    ("metrics tokens nan", AlphaVantageMetrics.from_redis, {"v": "1", "tokens_left": "nan"}, "not an integer"),
    ("metrics counter text", AlphaVantageMetrics.from_redis, {"v": "1", "ok": "lots"}, "not an integer"),
    ("metrics stray field", AlphaVantageMetrics.from_redis, {"v": "1", "spot:SPY": "1"}, "not a metrics field"),
    ("metrics no symbol", AlphaVantageMetrics.from_redis, {"v": "1", "rows:": "1"}, "names no symbol"),
    ("metrics ok_at inf", AlphaVantageMetrics.from_redis, {"v": "1", "chain_ok_at:SPY": "inf"}, "not finite"),
    ("metrics age negative", AlphaVantageMetrics.from_redis, {"v": "1", "chain_age_s:SPY": "-3"}, "outside"),
    # monitoring:sim:clock
    ("anchor missing", SimClockAnchor.from_redis, {}, MISSING),
    ("anchor partial", SimClockAnchor.from_redis, {"real_epoch": "1", "sim_epoch": "2"}, "speed missing (partial"),
    ("anchor text", SimClockAnchor.from_redis, {**ANCHOR, "real_epoch": "x"}, "not a number"),
    ("anchor speed zero", SimClockAnchor.from_redis, {**ANCHOR, "speed": "0"}, "outside"),
    ("anchor speed nan", SimClockAnchor.from_redis, {**ANCHOR, "speed": "nan"}, "not finite"),
    ("anchor sim inf", SimClockAnchor.from_redis, {**ANCHOR, "sim_epoch": "-inf"}, "not finite"),
]


@pytest.mark.parametrize(("reader", "raw", "why"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_value_reads_as_absent_with_its_reason(reader: Reader, raw: Any, why: str) -> None:
    value = reader(raw, key="the:key")
    assert isinstance(value, Absent), value
    assert value.key == "the:key" and why in value.reason
    assert not value  # `if value:` reads as "is there a value"


def test_one_bad_registry_entry_does_not_hide_the_others() -> None:
    registry = WorkerRegistry.from_redis({"stream": GOOD_ENTRY, "analytics": "{}"}, key="monitoring:workers")
    assert isinstance(registry, WorkerRegistry)
    assert set(registry.workers) == {"stream"} and registry.modules == {"stream", "analytics"}
    assert str(registry.unreadable["analytics"]).startswith("monitoring:workers[analytics]: malformed")


def test_an_empty_chain_age_means_no_chain_is_kept() -> None:
    fields: dict[str, str] = {}
    apply(fields, AlphaVantageMetrics.chain_kept("SPY", None, "boom"))
    assert fields["chain_age_s:SPY"] == ""  # a null the reader sees, never a silent 0
    metrics = AlphaVantageMetrics.from_redis(fields, key=KEY)
    assert isinstance(metrics, AlphaVantageMetrics)
    assert metrics.chains["SPY"] == ChainHealth(age_s=None, last_error="boom") and metrics.chain_failures == 1


# --- the sim clock's reader -------------------------------------------------------------------


class AnchorStore:
    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)

    def hgetall(self, key: keys.Key) -> dict[str, str]:
        assert key == keys.sim_clock()
        return self.fields


@pytest.mark.parametrize(("fields", "expected"), [
    (ANCHOR, SimAnchor(1.8e9, 1.79e9, 10.0)),
    ({}, None),
    ({"real_epoch": "1.8e9", "sim_epoch": "1.79e9"}, None),  # partial
    ({**ANCHOR, "speed": "-1"}, None),  # a time running backwards
    ({**ANCHOR, "real_epoch": "nan"}, None),
])
def test_read_sim_anchor_uses_only_a_good_anchor(fields: dict[str, str], expected: SimAnchor | None) -> None:
    read = read_sim_anchor(cast(Store, AnchorStore(fields)))
    assert (read.anchor if read is not None else None) == expected
