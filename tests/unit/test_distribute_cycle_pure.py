"""The pure parts of `qc distribute`'s Redis layer: the clock map and the bucket-shape rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.distribute.cycle.buckets import SLACK_FRACTION, BucketShape
from qc.distribute.cycle.clockmap import IDENTITY, TimeMap, fmt


@given(real_epoch=st.floats(1.6e9, 2.0e9), sim_epoch=st.floats(1.6e9, 2.0e9), speed=st.floats(0.01, 1000.0),
       dt=st.floats(-1e5, 1e5))
def test_the_map_is_the_sim_anchor_and_inverts(real_epoch: float, sim_epoch: float, speed: float, dt: float) -> None:
    tm = TimeMap(real_epoch, sim_epoch, speed)
    real = real_epoch + dt
    assert tm.qc_at(real) == clock.SimAnchor(real_epoch, sim_epoch, speed).sim_at(real)
    assert tm.real_at(tm.qc_at(real)) == pytest.approx(real, abs=1e-4 * max(1.0, 1 / speed))


def test_production_maps_to_itself_and_floats_travel_exactly() -> None:
    assert IDENTITY.qc_at(1_795_000_000.123456) == 1_795_000_000.123456
    assert IDENTITY.args() == ["0", "0", "1"]
    for value in (1_795_000_000.1234567, 0.1, 1 / 3, 29 / 1.25):
        assert float(fmt(value)) == value
    with pytest.raises(ValueError, match="speed"):
        TimeMap(0.0, 0.0, 0.0)


@given(limit=st.integers(1, 10_000), window_s=st.floats(0.1, 86_400.0), burst_share=st.floats(0.0, 1.0),
       jitter_s=st.floats(0.0, 5.0), speed=st.floats(0.1, 100.0))
def test_every_shape_obeys_the_rule(limit: int, window_s: float, burst_share: float, jitter_s: float,
                                    speed: float) -> None:
    burst = max(1, round(burst_share * limit))
    shape = BucketShape.within(limit, window_s, burst=burst, jitter_s=jitter_s, speed=speed)
    slack = max(jitter_s * speed, SLACK_FRACTION * window_s)
    assert shape.burst + shape.refill_per_s * (window_s + slack) == pytest.approx(limit + 1, rel=1e-12)
    assert shape.max_grants(window_s) <= limit  # any closed window of W: at most N
    assert shape.max_grants(window_s + slack * 0.999) <= limit  # and with arrivals jittered by under S


def test_the_limits_of_the_channels() -> None:
    telegram = BucketShape.within(30, 1.0)  # ~30 messages/s per bot
    assert telegram.refill_per_s == pytest.approx(24.0) and telegram.max_grants(1.0) == 25
    per_chat = BucketShape.within(1, 1.0)  # ~1/s per chat: the naive refill 1/W would allow 2 in [0, 1]
    assert per_chat.burst == 1 and per_chat.max_grants(1.0) == 1
    channel = BucketShape.within(20, 60.0)  # 20 per minute per channel
    assert channel.max_grants(60.0) == 20 and channel.max_grants(62.9) == 20
    x = BucketShape.within(100, 900.0, burst=10)  # X: 100 posts per 15 min
    assert x.max_grants(900.0) == 96  # the 45 s slack costs 4 posts per window
    sim = BucketShape.within(30, 1.0, speed=60.0)  # 0.25 real s of jitter is 15 s of a 60x simulated clock
    assert sim.refill_per_s == pytest.approx(30 / 16) and sim.max_grants(15.9) == 30 and sim.max_grants(1.0) == 2


@pytest.mark.parametrize(("limit", "window_s", "burst"), [(0, 1.0, 1), (5, 0.0, 1), (5, 1.0, 0), (5, 1.0, 6)])
def test_impossible_shapes_are_refused(limit: int, window_s: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"limit|burst"):
        BucketShape.within(limit, window_s, burst=burst)
    with pytest.raises(ValueError, match="refill"):
        BucketShape(1, math.inf)
