"""The distribution codecs: the queued item, the delivery record on a signal's lineage and the metrics hash
round-trip, and NaN, negative or millisecond times, unknown channels or outcomes, another schema version
or a partial value read back as an Absent naming the field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.codec import MISSING, Absent
from qc.distribute.codec import (
    COUNTERS,
    SCHEMA,
    ChannelMetrics,
    DeliveryRecord,
    LatencySummary,
    deliveries_of,
    delivery_from_redis,
    delivery_to_redis,
    latencies_from_redis,
    latency_to_redis,
    metric_field,
    metrics_from_redis,
    metrics_to_redis,
    percentile,
    summarize,
    with_delivery,
)
from qc.distribute.model import CHANNELS, Delivery

KEY = "distribution:premium:queue"
T0 = 1_796_311_800.0

names = st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True)
epochs = st.floats(min_value=0.0, max_value=4_000_000_000.0, allow_nan=False)
offsets = st.floats(min_value=0.0, max_value=3600.0, allow_nan=False)


@st.composite
def deliveries(draw: st.DrawFn) -> Delivery:
    published = draw(epochs)
    first_due = published + draw(offsets)
    return Delivery(draw(st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True)),
                    draw(st.from_regex(r"[A-Z][A-Z0-9.]{0,9}", fullmatch=True)), draw(names),
                    draw(st.sampled_from(CHANNELS)), draw(names), first_due + draw(offsets), published,
                    draw(st.integers(1, 100)), first_due)


def absent(got: object) -> Absent:
    assert isinstance(got, Absent), got
    return got


def a_delivery(**changes: Any) -> Delivery:
    fields: dict[str, Any] = {"signal_id": "1796311800000a1b2c3d4", "symbol": "SPY", "tier": "basic",
                              "channel": "telegram", "target": "basic", "due": T0 + 65.5, "published": T0,
                              "attempt": 2, "first_due": T0 + 60}
    fields.update(changes)
    return Delivery(**fields)


# --- the queued item --------------------------------------------------------------------------------------

@given(deliveries())
def test_any_delivery_round_trips_to_the_same_text(d: Delivery) -> None:
    raw = delivery_to_redis(d)
    back = delivery_from_redis(raw, key=KEY)
    assert back == d and isinstance(back, Delivery) and delivery_to_redis(back) == raw


def test_equal_items_give_equal_members() -> None:
    assert delivery_to_redis(a_delivery()) == delivery_to_redis(a_delivery())
    whole = a_delivery(due=int(T0) + 66, published=int(T0), first_due=int(T0) + 60)
    assert delivery_to_redis(whole) == delivery_to_redis(a_delivery(due=T0 + 66, first_due=T0 + 60))
    doc = json.loads(delivery_to_redis(a_delivery()))
    assert doc == {"v": SCHEMA, "signal_id": "1796311800000a1b2c3d4", "symbol": "SPY", "tier": "basic",
                   "channel": "telegram", "target": "basic", "due": T0 + 65.5, "published": T0, "attempt": 2,
                   "first_due": T0 + 60}


def mutated(**changes: Any) -> str:
    doc: dict[str, Any] = json.loads(delivery_to_redis(a_delivery()))
    for name, value in changes.items():
        if value is ...:
            del doc[name]
        else:
            doc[name] = value
    return json.dumps(doc)


@pytest.mark.parametrize(("changes", "says"), [
    ({"due": math.nan}, "due is not finite"), ({"published": -1.0}, "published is -1.0, outside"),
    ({"due": (T0 + 65) * 1000}, "due is"), ({"first_due": "soon"}, "first_due is not a number"),
    ({"channel": "sms"}, "channel is 'sms', not one of"), ({"attempt": 0}, "attempt is 0"),
    ({"attempt": 1.5}, "attempt is not an integer"), ({"attempt": True}, "attempt is a boolean"),
    ({"tier": "Basic"}, "tier is 'Basic', not a tier"), ({"target": ""}, "target is empty"),
    ({"due": ...}, "due missing"), ({"v": 2}, "old version"), ({"v": ...}, "old version"),
    ({"due": T0 + 59}, "never early"), ({"symbol": "<b>"}, "symbol"), ({"signal_id": "a:b"}, "signal id"),
])
def test_a_bad_item_is_absent_naming_why(changes: dict[str, Any], says: str) -> None:
    got = absent(delivery_from_redis(mutated(**changes), key=KEY))
    assert got.key == KEY and says in got.reason, got.reason


@pytest.mark.parametrize("raw", [None, "", "[]", "{", "null", '"text"'])
def test_a_missing_or_broken_item_is_absent(raw: str | None) -> None:
    got = absent(delivery_from_redis(raw, key=KEY))
    assert got.reason == MISSING if not raw else got.reason.startswith("malformed")


# --- the delivery record on the lineage -------------------------------------------------------------------

records = st.builds(
    lambda d, outcome, extra, status, reason: DeliveryRecord.of(d, outcome, d.due + extra, status=status,
                                                                reason=reason),
    deliveries(), st.sampled_from(["sent", "done", "failed", "disabled", "uncertain", "expired"]), offsets,
    st.none() | st.integers(100, 599), st.text(max_size=400))


@given(records)
def test_any_record_round_trips(record: DeliveryRecord) -> None:
    assert DeliveryRecord.from_redis(record.to_redis(), key="k") == record
    assert len(record.reason) <= 300


def test_a_record_says_where_what_and_how_late() -> None:
    r = DeliveryRecord.of(a_delivery(), "sent", T0 + 66.0, status=200, reason="ok")
    assert r.field == "basic:telegram:basic" and r.attempts == 2 and r.latency_s == 0.5
    assert DeliveryRecord.of(a_delivery(), "expired", T0 + 300).latency_s is None


def test_lineage_keeps_one_record_per_target_and_the_rest_of_the_lineage() -> None:
    first = DeliveryRecord.of(a_delivery(), "uncertain", T0 + 70)
    other = DeliveryRecord.of(a_delivery(channel="webhook", target="alpha"), "sent", T0 + 66)
    lineage = with_delivery(with_delivery({"order_id": 12}, first), other)
    assert lineage["order_id"] == 12 and set(lineage["distribution"]) == {first.field, other.field}
    replaced = with_delivery(lineage, DeliveryRecord.of(a_delivery(), "done", T0 + 90))
    got = deliveries_of(json.loads(json.dumps(replaced)), key="signals:record:x")
    assert not isinstance(got, Absent)
    assert sorted(r.outcome for r in got) == ["done", "sent"]
    assert deliveries_of({"order_id": 12}, key="k") == ()


@pytest.mark.parametrize(("deliveries_value", "says"), [
    ("no", "distribution is not an object"), ({"basic:telegram:basic": 5}, "is not an object"),
    ({"premium:telegram:premium": None}, "is not an object"),
])
def test_a_broken_lineage_is_absent(deliveries_value: Any, says: str) -> None:
    assert says in absent(deliveries_of({"distribution": deliveries_value}, key="k")).reason


def test_a_record_filed_under_another_target_is_absent() -> None:
    doc = DeliveryRecord.of(a_delivery(), "sent", T0 + 66).to_doc()
    assert "holds the record of" in absent(deliveries_of({"distribution": {"free:x:account": doc}}, key="k")).reason


@pytest.mark.parametrize(("changes", "says"), [
    ({"outcome": "retry"}, "outcome is 'retry'"), ({"at": math.inf}, "at is not finite"),
    ({"status": 42}, "status is 42"), ({"attempts": 0}, "attempts is 0"), ({"channel": "fax"}, "channel"),
    ({"due": T0}, "due before first_due"), ({"reason": None}, "reason is a NoneType"),
])
def test_a_bad_record_is_absent(changes: dict[str, Any], says: str) -> None:
    doc = DeliveryRecord.of(a_delivery(), "sent", T0 + 66).to_doc()
    doc.update(changes)
    assert says in absent(DeliveryRecord.from_redis(json.dumps(doc), key="k")).reason


# --- metrics ----------------------------------------------------------------------------------------------

counts = st.integers(0, 2**40)
rows = st.builds(ChannelMetrics, names, st.sampled_from(CHANNELS), counts, counts, counts, counts, counts, counts,
                 counts, st.none() | st.floats(0.0, 86_400.0))


@given(st.lists(rows, max_size=6, unique_by=lambda r: (r.tier, r.channel)))
def test_any_metrics_round_trip(rows_: list[ChannelMetrics]) -> None:
    back = metrics_from_redis(metrics_to_redis(rows_), key="distribution:metrics")
    if not rows_:
        assert back == ()
        return
    assert back == tuple(sorted(rows_, key=lambda r: (r.tier, r.channel)))


def test_the_hash_fields_are_tier_channel_counter() -> None:
    raw = metrics_to_redis([ChannelMetrics("premium", "telegram", sent=3, rate_limited=1, retry_after_s=35.0)])
    assert raw["v"] == "1" and raw["premium:telegram:sent"] == "3" and raw["premium:telegram:retry_after_s"] == "35.0"
    assert set(raw) == {"v", "premium:telegram:retry_after_s", *(f"premium:telegram:{c}" for c in COUNTERS)}
    assert metric_field("free", "x", "expired") == "free:x:expired"
    with pytest.raises(ValueError, match="no metric field"):
        metric_field("free", "x", "bogus")


def test_counters_never_incremented_read_as_zero() -> None:
    got = metrics_from_redis({"v": "1", "basic:webhook:retried": "4"}, key="m")
    assert got == (ChannelMetrics("basic", "webhook", retried=4),)


@pytest.mark.parametrize(("raw", "says"), [
    ({"basic:webhook:sent": "1"}, "old version"), ({"v": "1", "basic:webhook:sent": "-1"}, "outside"),
    ({"v": "1", "basic:webhook:sent": "1.5"}, "not an integer"), ({"v": "1", "basic:sms:sent": "1"}, "field"),
    ({"v": "1", "basic:webhook:bogus": "1"}, "field"), ({"v": "1", "nonsense": "1"}, "field"),
    ({"v": "1", "basic:x:retry_after_s": "nan"}, "not finite"),
])
def test_a_bad_metrics_hash_is_absent(raw: dict[str, str], says: str) -> None:
    assert says in absent(metrics_from_redis(raw, key="distribution:metrics")).reason


def test_an_empty_metrics_hash_is_missing() -> None:
    assert absent(metrics_from_redis({}, key="m")).reason == MISSING


def test_latency_items_are_seconds_and_never_negative() -> None:
    assert latency_to_redis(0.25) == "0.250000"
    for bad in (-0.001, math.nan, 90_000.0):  # sent before due, garbage, or milliseconds
        with pytest.raises(ValueError, match="latency_s"):
            latency_to_redis(bad)
    assert latencies_from_redis(["0.250000", b"1.5"], key="l") == (0.25, 1.5)
    assert "latency[1]" in absent(latencies_from_redis(["0.1", "-2"], key="l")).reason
    assert absent(latencies_from_redis([], key="l")).reason == MISSING


def test_p50_and_p99_by_nearest_rank_over_the_window() -> None:
    got = summarize(float(n) for n in range(100, 0, -1))
    assert got == LatencySummary(100, 50.0, 99.0, 100.0)
    assert summarize([0.2]) == LatencySummary(1, 0.2, 0.2, 0.2) and summarize([]) is None
    assert percentile([1.0, 2.0, 3.0], 1.0) == 3.0
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 0.0)
    row = ChannelMetrics("premium", "telegram", sent=2).with_latencies([0.4, 0.1])
    assert row.latency == LatencySummary(2, 0.1, 0.4, 0.4) and row.sent == 2
