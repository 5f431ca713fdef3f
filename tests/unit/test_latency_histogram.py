"""`qc stream`'s latency histogram: counted on the hot path, round-tripped through Redis's codec, and the
percentile of a window read from two readings, checked against the samples themselves."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from qc.core.codec import Absent
from qc.ingest.cycle.stream_writer import LatencyStats
from qc.runtime.codec import LATENCY_BOUNDS_MS, LatencyHistogram

KEY = "monitoring:ingest:latency:hist"
latencies = st.lists(st.floats(0.0, 3000.0, allow_nan=False), min_size=1, max_size=400)


def counted(samples: list[float], feed: str = "depth") -> LatencyStats:
    stats = LatencyStats(1_700_000_000.0)
    for ms in samples:
        stats.add(feed, ms)
    return stats


def nearest_rank(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@settings(max_examples=300, deadline=None)
@given(latencies, st.sampled_from([0.5, 0.9, 0.99, 1.0]))
def test_the_quantile_lies_in_the_bucket_of_the_samples_own_quantile(samples: list[float], q: float) -> None:
    h = counted(samples).histogram().feeds["depth"]
    assert h.count == len(samples) and math.isclose(h.sum_ms, sum(samples), rel_tol=1e-9, abs_tol=1e-9)
    true = nearest_rank(samples, q)
    got = h.quantile_ms(q)
    upper = next((b for b in LATENCY_BOUNDS_MS if true <= b), math.inf)
    lower = max((b for b in LATENCY_BOUNDS_MS if b < true), default=0.0)
    if upper == math.inf:
        assert got == LATENCY_BOUNDS_MS[-1]  # beyond the last bound: reported as the floor it is
    else:
        assert lower <= got <= upper


@settings(max_examples=200, deadline=None)
@given(latencies, latencies)
def test_a_window_is_the_difference_of_two_readings_and_survives_redis(before: list[float],
                                                                       during: list[float]) -> None:
    stats = counted(before)
    first = LatencyHistogram.from_redis(stats.histogram().to_redis(), key=KEY)
    for ms in during:
        stats.add("depth", ms)
    second = LatencyHistogram.from_redis(stats.histogram().to_redis(), key=KEY)
    assert isinstance(first, LatencyHistogram) and isinstance(second, LatencyHistogram)
    window = second.feeds["depth"].minus(first.feeds["depth"])
    assert window.cumulative == counted(during).histogram().feeds["depth"].cumulative
    assert window.share_within(5.0) == sum(ms <= 5.0 for ms in during) / len(during)  # exact, no estimate


def test_the_target_bound_is_a_bucket_edge_so_the_target_is_judged_exactly() -> None:
    h = counted([4.99] * 99 + [5.01]).histogram().feeds["depth"]
    assert h.share_within(5.0) == 0.99 and h.quantile_ms(0.99) <= 5.0
    h = counted([4.99] * 98 + [5.01] * 2).histogram().feeds["depth"]
    assert h.share_within(5.0) == 0.98 and h.quantile_ms(0.99) > 5.0


def test_unit_mistakes_and_garbage_are_refused_not_read() -> None:
    good = counted([0.3, 2.0, 8.0]).histogram().to_redis()
    assert isinstance(LatencyHistogram.from_redis(good, key=KEY), LatencyHistogram)
    decreasing = {**good, "depth_le_inf": "1"}  # fewer in +Inf than under 10 ms
    stray = {**good, "depth_p99": "3"}
    negative_sum = {**good, "depth_sum_ms": "-1"}
    millis_start = {**good, "started": "1700000000000"}  # a start in ms, not s
    for bad in (decreasing, stray, negative_sum, millis_start, {"v": "1"} | {"depth_le_inf": "x"}):
        got = LatencyHistogram.from_redis(bad, key=KEY)
        assert isinstance(got, Absent), bad


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "started", "depth_le_5.0", "depth_le_inf", "depth_sum_ms", "x_le_1.0",
                                        "depth_p99"]) | st.text(max_size=12),
                       st.sampled_from(["nan", "inf", "-1", "1e400", "", "3", "0"]) | st.text(max_size=8)))
def test_garbage_in_the_hash_is_refused_or_read_finite_and_non_negative(raw: dict[str, str]) -> None:
    got = LatencyHistogram.from_redis(raw, key=KEY)
    if isinstance(got, Absent):
        return
    assert math.isfinite(got.started) and got.started >= 0
    for h in got.feeds.values():
        assert all(n >= 0 for n in h.cumulative) and list(h.cumulative) == sorted(h.cumulative)
        assert math.isfinite(h.sum_ms) and h.sum_ms >= 0
