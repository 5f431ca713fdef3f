"""5-second bars rolled into minutes: volume conserved, VWAP weighted, gaps flagged incomplete."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.models import Bar, FiveSecondBar
from qc.ingest.bars import MinuteRoller, five_second_refusal, history_bar, merge_history, roll_up, valid_bars

T0 = 1_773_153_000  # a minute boundary (multiple of 60)


def bar(start: int, price: float = 100.0, volume: float = 10.0, count: int = 2) -> FiveSecondBar:
    return FiveSecondBar(start, price, price + 0.1, price - 0.1, price, volume, price, count)


@given(st.lists(st.tuples(st.floats(1, 500), st.integers(0, 100_000).map(float)), min_size=1, max_size=12))
def test_roll_up_conserves_volume_and_weights_vwap(rows: list[tuple[float, float]]) -> None:
    bars = [bar(T0 + 5 * i, price=p, volume=v) for i, (p, v) in enumerate(rows)]
    m = roll_up(T0, bars)
    assert math.isclose(m.volume, sum(v for _, v in rows), rel_tol=1e-12, abs_tol=1e-9)
    assert m.low - 1e-9 <= m.vwap <= m.high + 1e-9
    assert m.count == 2 * len(rows)
    assert m.open == bars[0].open and m.close == bars[-1].close
    assert m.complete == (len(rows) == 12)


def test_vwap_is_volume_weighted_and_falls_back_to_close_without_volume() -> None:
    m = roll_up(T0, [bar(T0, 100.0, 100.0), bar(T0 + 5, 110.0, 300.0)])
    assert m.vwap == (100.0 * 100 + 110.0 * 300) / 400
    assert roll_up(T0, [bar(T0, 100.0, 0.0), bar(T0 + 5, 101.0, 0.0)]).vwap == 101.0


def test_a_minute_closes_on_the_first_bar_of_the_next() -> None:
    roller = MinuteRoller()
    assert all(roller.add(bar(T0 + 5 * i)) == [] for i in range(12))
    (done,) = roller.add(bar(T0 + 60))
    assert (done.start, done.five_second_bars, done.complete, done.volume) == (T0, 12, True, 120.0)
    assert json.loads(done.to_redis())["complete"] is True


def test_a_minute_missing_bars_is_flagged_incomplete() -> None:
    roller = MinuteRoller()
    for i in (0, 1, 2, 9, 10, 11):  # 15 s lost to a reconnect
        roller.add(bar(T0 + 5 * i))
    (done,) = roller.add(bar(T0 + 60))
    assert (done.five_second_bars, done.complete) == (6, False)


def test_silent_bars_close_the_minute_after_the_grace() -> None:
    roller = MinuteRoller(grace_s=10)
    roller.add(bar(T0))
    assert roller.close_through(T0 + 69) == []
    (done,) = roller.close_through(T0 + 70)
    assert not done.complete
    assert roller.close_through(T0 + 200) == []


def test_a_resent_bar_is_not_counted_twice_and_a_late_one_is_dropped() -> None:
    roller = MinuteRoller()
    roller.add(bar(T0, volume=10))
    roller.add(bar(T0, volume=10))
    (done,) = roller.add(bar(T0 + 60))
    assert done.volume == 10
    assert roller.add(bar(T0 + 5)) == []  # belongs to the minute already written


def minute(start: int, close: float = 100.0, complete: bool = True, parts: int | None = None) -> Bar:
    return Bar(datetime.fromtimestamp(start, timezone.utc), close, close + 1, close - 1, close, 10.0, close, 3,
               complete, parts)


def test_history_merges_under_live_minutes_once_per_start_in_order_and_bounded() -> None:
    stored = [minute(T0 + 120, 200.0, parts=12), minute(T0 + 180, 201.0, complete=False, parts=4)]
    history = [minute(T0 + 60 * i, 100.0 + i) for i in range(6)]  # T0 .. T0+300
    merged = merge_history(stored, history, now_epoch=T0 + 300, keep=10, live_from=T0 + 240)
    assert [b.start for b in merged] == [T0, T0 + 60, T0 + 120, T0 + 180]  # T0+240 on: live or not over yet
    assert merged[2].close == 200.0  # a complete live minute wins
    assert merged[3].close == 103.0 and merged[3].complete  # an incomplete live minute yields to IB's whole one
    assert [b.start for b in merge_history(stored, history, now_epoch=T0 + 1e6, keep=2)] == [T0 + 240, T0 + 300]
    assert merge_history(stored, history, now_epoch=T0, keep=0) == []


@given(st.lists(st.integers(0, 50), max_size=30), st.lists(st.integers(0, 50), max_size=30), st.integers(1, 40))
def test_merge_is_sorted_unique_bounded_and_keeps_every_complete_stored_minute(
        stored_at: list[int], history_at: list[int], keep: int) -> None:
    stored = [minute(T0 + 60 * i, 1.0 + i) for i in stored_at]
    merged = merge_history(stored, [minute(T0 + 60 * i, 500.0) for i in history_at], now_epoch=T0 + 1e6, keep=keep)
    starts = [b.start for b in merged]
    assert starts == sorted(set(starts)) and len(merged) <= keep
    kept = {b.start: b for b in merged}
    assert all(kept[b.start] == b for b in stored if b.start in kept)


def test_ib_history_bars_are_validated_like_the_list_reader_would() -> None:
    at = datetime.fromtimestamp(T0, timezone.utc)
    good = history_bar(at, 10.0, 10.5, 9.5, 10.2, 100, 0.0, -1)
    assert (good.vwap, good.count, good.complete, good.five_second_bars) == (10.2, 0, True, None)
    bars, rejected = valid_bars([good, history_bar(at, 10.0, 9.0, 9.5, 10.2, 100, 10.0, 1),
                                 history_bar(at, math.nan, 10.5, 9.5, 10.2, 100, 10.0, 1),
                                 history_bar(at + timedelta(seconds=30), 10.0, 10.5, 9.5, 10.2, 100, 10.0, 1)])
    assert bars == [good] and sum(rejected.values()) == 3
    assert dict(rejected) == {"high_below_low": 1, "price_not_finite": 1, "bad_start": 1}


@pytest.mark.parametrize(("change", "why"), [
    ({"open": math.nan}, "price_not_finite"), ({"high": math.inf}, "price_not_finite"),
    ({"low": -1.0}, "price_not_positive"), ({"low": 0.0}, "price_not_positive"),
    ({"high": 9.0, "low": 9.5}, "high_below_low"), ({"close": 10.6}, "open_close_outside_range"),
    ({"volume": math.nan}, "volume_not_finite"), ({"volume": -1.0}, "negative_volume"),
    ({"wap": math.inf}, "wap_not_finite"), ({"wap": -1.0}, "negative_wap"), ({"count": -1}, "negative_count"),
    ({"start": 0}, "bad_start"),
])
def test_a_bad_five_second_bar_is_refused_with_its_reason(change: dict[str, float], why: str) -> None:
    fields = {"start": T0, "open": 10.0, "high": 10.5, "low": 9.5, "close": 10.2, "volume": 100.0, "wap": 10.1,
              "count": 3, **change}
    assert five_second_refusal(FiveSecondBar(**fields)) == why  # type: ignore[arg-type]
    assert five_second_refusal(bar(T0)) is None


def test_a_minute_whose_sums_leave_the_float_range_still_has_a_finite_vwap() -> None:
    huge = [FiveSecondBar(T0 + 5 * i, 10.0, 10.0, 10.0, 10.0, 1e308, 10.0, 1) for i in range(3)]
    m = roll_up(T0, huge)
    assert m.volume == math.inf and m.vwap == 10.0  # the volume is refused by the codec check downstream
    assert valid_bars([m]) == ([], Counter({"volume_not_finite": 1}))
