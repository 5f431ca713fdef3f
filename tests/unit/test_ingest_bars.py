"""5-second bars rolled into minutes: volume conserved, VWAP weighted, gaps flagged incomplete."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from qc.core.models import FiveSecondBar
from qc.ingest.bars import MinuteRoller, roll_up

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
    assert (done.start, done.bars, done.complete, done.volume) == (T0, 12, True, 120.0)
    assert json.loads(done.to_json())["complete"] is True


def test_a_minute_missing_bars_is_flagged_incomplete() -> None:
    roller = MinuteRoller()
    for i in (0, 1, 2, 9, 10, 11):  # 15 s lost to a reconnect
        roller.add(bar(T0 + 5 * i))
    (done,) = roller.add(bar(T0 + 60))
    assert (done.bars, done.complete) == (6, False)


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
