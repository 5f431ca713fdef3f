"""Live VPIN is the batch VPIN: ``StreamingVpin`` fed a tape trade by trade (as the worker feeds it)
reads, after every trade, what ``vpin_batch`` (BVC) or ``vpin_true_sign`` (aggressor known) give on
the same bars up to that instant, to 1e-12; a warm start from past bars continued live equals the
batch on the whole tape."""

from __future__ import annotations

import math
from datetime import date, datetime, time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qc.analytics import bars as _bars
from qc.analytics.bars import build_bars, session_ns
from qc.analytics.vpin import (
    StreamingVpin,
    VpinReading,
    bvc_buy_fraction,
    in_session,
    price_change_sigma,
    vpin_batch,
    vpin_from_buys,
    vpin_true_sign,
)
from qc.core.clock import NEW_YORK

NS = 1_000_000_000
MINUTE_NS = 60 * NS
TUE, WED, FRI = date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 27)  # Thu 26th: Thanksgiving
TOL = 1e-12


def ny_ns(day: date, hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime.combine(day, time(hh, mm, ss), NEW_YORK).timestamp()) * NS


OPEN_NS = ny_ns(TUE, 9, 30)
Tape = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@st.composite
def tapes(draw: st.DrawFn) -> Tape:
    """Trades from before Tuesday's open to past Friday's 13:00 early close: three sessions, the
    holiday and the nights between them (prints there are dropped), clustered in a few minutes."""
    n = draw(st.integers(1, 150))
    minutes = draw(arrays(np.int64, draw(st.integers(1, 12)), elements=st.integers(-30, 3 * 1440 + 240)))
    picks = draw(arrays(np.int64, n, elements=st.integers(0, minutes.size - 1)))
    seconds = draw(arrays(np.int64, n, elements=st.integers(0, 59)))
    ts = np.sort(OPEN_NS + minutes[picks] * MINUTE_NS + seconds * NS)
    px = draw(arrays(np.float64, n, elements=st.floats(50.0, 150.0)))
    sz = draw(arrays(np.float64, n, elements=st.integers(0, 1_000).map(float)))  # integer sizes: exact sums
    side = draw(arrays(np.int64, n, elements=st.sampled_from([-1, 0, 1])))
    return ts, px, sz, side


bucket_volumes = st.integers(1, 3_000).map(float)
windows = st.integers(1, 8)


def split_sizes(sz: np.ndarray, side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Buy and sell size per trade: the aggressor's side, an unknown side half-half."""
    buy = np.where(side > 0, sz, np.where(side == 0, 0.5 * sz, 0.0))
    return buy, sz - buy


def batch_at(stamps: np.ndarray, values: np.ndarray, t: int) -> float | None:
    """The batch's latest VPIN stamped at or before ``t`` (bars that ended by then)."""
    k = int(np.searchsorted(stamps, t, side="right"))
    return None if k == 0 else float(values[k - 1])


def same(live: float | None, batch: float | None) -> bool:
    return (live is None and batch is None) or (
        live is not None and batch is not None and abs(live - batch) <= TOL)


def replay_and_check(live: StreamingVpin, ts: np.ndarray, px: np.ndarray, sz: np.ndarray,
                     side: np.ndarray | None, stamps: np.ndarray, values: np.ndarray) -> None:
    """Feed trade by trade, close bars on the clock as the worker does, compare after every trade."""
    for i, t in enumerate(ts.tolist()):
        live.update_trade(t, float(px[i]), float(sz[i]), None if side is None else int(side[i]))
        live.advance(t)
        assert same(live.reading().value, batch_at(stamps, values, t)), (i, live.reading(), t)
    end = int(ts[-1]) + 2 * 86_400 * NS  # past the last bar: every bar closed
    live.advance(end)
    assert same(live.reading().value, batch_at(stamps, values, end))


@given(tapes(), bucket_volumes, windows)
def test_live_trade_by_trade_equals_vpin_batch(tape: Tape, v: float, n: int) -> None:
    ts, px, sz, _ = tape
    stamps, values = vpin_batch(ts, px, sz, v, n)
    live = StreamingVpin(v, n, sigma=price_change_sigma(build_bars(ts, px, sz).close))
    replay_and_check(live, ts, px, sz, None, stamps, values)
    assert live.reading().mode == "bvc"


@given(tapes(), bucket_volumes, windows)
def test_live_trade_by_trade_equals_vpin_true_sign(tape: Tape, v: float, n: int) -> None:
    ts, px, sz, side = tape
    stamps, values = vpin_true_sign(ts, *split_sizes(sz, side), v, n)
    live = StreamingVpin(v, n)  # σ plays no part once every bar's trades carry a side
    replay_and_check(live, ts, px, sz, side, stamps, values)
    signed = bool(np.any(in_session(ts) & (side != 0)))
    assert live.reading().mode == ("true_sign" if signed else "bvc")


def session_minute(day: date, k: int) -> int:
    bounds = session_ns(day)
    assert bounds is not None
    return min(bounds[0] + k * MINUTE_NS, bounds[1])


splits = st.builds(session_minute, st.sampled_from([TUE, WED, FRI]), st.integers(0, 400))


@given(tapes(), bucket_volumes, windows, splits)
def test_warm_start_then_live_bvc_equals_vpin_batch_on_the_whole_tape(
        tape: Tape, v: float, n: int, split: int) -> None:
    ts, px, sz, _ = tape
    past = ts < split
    warm = build_bars(ts[past], px[past], sz[past])
    stamps, values = vpin_batch(ts, px, sz, v, n)
    live = StreamingVpin(v, n, sigma=price_change_sigma(build_bars(ts, px, sz).close))
    live.warm(warm.start_ns, warm.close, warm.volume)
    assert same(live.reading().value, batch_at(stamps, values, split))
    if (~past).any():
        replay_and_check(live, ts[~past], px[~past], sz[~past], None, stamps, values)


@given(tapes(), bucket_volumes, windows, splits)
def test_warm_by_bvc_then_live_true_sign_equals_batch_on_those_bars(
        tape: Tape, v: float, n: int, split: int) -> None:
    """The worker's case: past bars classified by BVC (their own σ), live minutes by aggressor."""
    ts, px, sz, side = tape
    past = ts < split
    warm = build_bars(ts[past], px[past], sz[past])
    whole = build_bars(ts, px, sz)
    _, ends, lo, hi = _bars.assign_bars(ts, 60)
    true_buy = _bars.sum_per_bar(split_sizes(sz, side)[0], lo, hi)
    dp = np.diff(whole.close, prepend=whole.close[:1])
    bvc_buy = whole.volume * bvc_buy_fraction(dp, price_change_sigma(warm.close))
    stamps, values = vpin_from_buys(whole.end_ns, whole.volume, np.where(ends <= split, bvc_buy, true_buy), v, n)
    live = StreamingVpin(v, n)
    live.warm(warm.start_ns, warm.close, warm.volume)
    if warm.close.size > 2:
        assert live.sigma == pytest.approx(price_change_sigma(warm.close), rel=1e-12)
    if (~past).any():
        replay_and_check(live, ts[~past], px[~past], sz[~past], side[~past], stamps, values)


# --- by hand ----------------------------------------------------------------------------------------


def test_aggressor_side_decides_and_unknown_splits_half_half() -> None:
    # minute 10:00: buy 30, sell 10, unknown 20 → buy 40 of 60; V = 60, n = 1: OI = |60 − 80| = 20
    live = StreamingVpin(bucket_volume=60.0, n_buckets=1, sigma=1.0)
    for sec, size, side in ((1, 30.0, 1), (2, 10.0, -1), (3, 20.0, 0)):
        live.update_trade(ny_ns(TUE, 10, 0, sec), 100.0, size, side)
    assert live.reading().value is None
    assert live.advance(ny_ns(TUE, 10, 1)) == pytest.approx(20.0 / 60.0, abs=1e-15)
    value = live.reading().value
    assert value == pytest.approx(20.0 / 60.0, abs=1e-15)
    assert live.reading() == VpinReading(value, 60.0, 1, "true_sign", "")
    assert live.signed_trades == 2


def test_a_bar_without_sides_is_classified_by_bvc() -> None:
    live = StreamingVpin(bucket_volume=10.0, n_buckets=1, sigma=1.0)
    live.update_trade(ny_ns(TUE, 10, 0), 100.0, 10.0)
    live.update_trade(ny_ns(TUE, 10, 1), 101.0, 10.0)  # ΔP = +1 = σ: buy share Φ(1)
    value = live.advance(ny_ns(TUE, 10, 2))
    assert value == pytest.approx(abs(1.0 - 2.0 * 0.5 * math.erfc(-1.0 / math.sqrt(2.0))), abs=1e-15)
    assert live.reading().mode == "bvc"


def test_reading_says_how_many_buckets_are_still_missing() -> None:
    live = StreamingVpin(bucket_volume=10.0, n_buckets=3)
    live.update_bar(1, 100.0, 25.0)
    assert live.reading() == VpinReading(None, 10.0, 2, "bvc", "2 of 3 buckets complete")


def test_warm_drops_bars_outside_sessions_and_resumes_the_grid() -> None:
    starts = [ny_ns(TUE, 8, 0), ny_ns(TUE, 15, 58), ny_ns(TUE, 15, 59), ny_ns(TUE, 16, 0)]
    live = StreamingVpin(bucket_volume=10.0, n_buckets=1)
    live.warm(starts, [1.0, 100.0, 100.0, 7.0], [1_000.0, 10.0, 10.0, 1_000.0])
    assert live.buckets_completed == 2  # the 08:00 and 16:00 bars are not session minutes
    assert live.reading().value == 0.0  # σ = NaN with one change: both bars half-half
    live.update_trade(ny_ns(WED, 9, 30, 1), 100.0, 10.0, 1)  # Wednesday's open continues the grid
    assert live.advance(ny_ns(WED, 9, 31)) == 1.0


def test_warm_only_before_live_input_and_buy_volume_within_the_bar() -> None:
    live = StreamingVpin(bucket_volume=10.0, n_buckets=1)
    live.update_bar(1, 100.0, 5.0)
    with pytest.raises(ValueError, match="only before"):
        live.warm([OPEN_NS], [100.0], [5.0])
    with pytest.raises(ValueError, match="buy volume"):
        live.update_bar(2, 100.0, 5.0, buy_volume=6.0)


def test_live_minutes_after_warm_continue_its_grid_quiet_minutes_included() -> None:
    live = StreamingVpin(bucket_volume=1_000.0, n_buckets=1)
    live.warm([ny_ns(TUE, 10, m) for m in (0, 1, 2)], [100.0, 101.0, 99.0], [1.0, 1.0, 1.0])
    live.update_trade(ny_ns(TUE, 10, 5, 10), 100.0, 1.0)
    live.advance(ny_ns(TUE, 10, 6))
    # 10:03 and 10:04 had no trades: they carry 99 forward and their zero changes count in σ
    assert live.sigma == pytest.approx(price_change_sigma(np.array([100.0, 101.0, 99.0, 99.0, 99.0, 100.0])),
                                       rel=1e-12)
