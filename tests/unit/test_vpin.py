"""VPIN: hand-computed buckets, XNYS session bars, and properties of batch, streaming and true-sign."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qc.analytics.bars import build_bars, session_ns
from qc.analytics.vpin import (
    StreamingVpin,
    bucket_volume,
    bvc_buy_fraction,
    in_session,
    price_change_sigma,
    vpin_batch,
    vpin_from_bars,
    vpin_from_buys,
    vpin_true_sign,
)
from qc.core.clock import NEW_YORK

NS = 1_000_000_000
TUE = date(2026, 11, 24)


def ny_ns(day: date, hh: int, mm: int, ss: int = 0) -> int:
    return int(datetime.combine(day, time(hh, mm, ss), NEW_YORK).timestamp()) * NS


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --- a case small enough to do by hand -------------------------------------------------------------
# bars 09:30 .. 09:33: closes 100, 101, (empty → 101), 99; volumes 40, 60, 0, 100
HAND_TS = [ny_ns(TUE, 9, 30, 10), ny_ns(TUE, 9, 31, 20), ny_ns(TUE, 9, 33, 5)]
HAND_PX = [100.0, 101.0, 99.0]
HAND_SZ = [40.0, 60.0, 100.0]


def test_hand_case_bars_carry_the_empty_minute() -> None:
    bars = build_bars(HAND_TS, HAND_PX, HAND_SZ)
    assert bars.close.tolist() == [100.0, 101.0, 101.0, 99.0]
    assert bars.volume.tolist() == [40.0, 60.0, 0.0, 100.0]
    assert bars.end_ns.tolist() == [ny_ns(TUE, 9, m) for m in (31, 32, 33, 34)]


def test_hand_case_bvc_split_buckets_and_vpin() -> None:
    # changes of bars 2..4: +1, 0, -2 → sample variance ((4/3)² + (1/3)² + (5/3)²)/2 = 7/3
    sigma = math.sqrt(7.0 / 3.0)
    assert price_change_sigma(np.array([100.0, 101.0, 101.0, 99.0])) == pytest.approx(sigma, rel=1e-15)
    f1, f3 = phi(1.0 / sigma), phi(-2.0 / sigma)
    # V = 50: bucket 1 = bar 0 (40, half buy) + 10 of bar 1; bucket 2 = 50 of bar 1; buckets 3, 4 = bar 3
    buys = [20.0 + 10.0 * f1, 50.0 * f1, 50.0 * f3, 50.0 * f3]
    oi = [abs(50.0 - 2.0 * b) for b in buys]
    ts, vpin = vpin_batch(HAND_TS, HAND_PX, HAND_SZ, bucket_volume=50.0, n_buckets=2)
    assert ts.tolist() == [ny_ns(TUE, 9, 32), ny_ns(TUE, 9, 34), ny_ns(TUE, 9, 34)]
    expected = [(oi[0] + oi[1]) / 100.0, (oi[1] + oi[2]) / 100.0, (oi[2] + oi[3]) / 100.0]
    assert vpin == pytest.approx(expected, abs=1e-15)


def test_fewer_than_n_buckets_gives_no_value() -> None:
    ts, vpin = vpin_batch(HAND_TS, HAND_PX, HAND_SZ, bucket_volume=50.0, n_buckets=5)
    assert ts.size == 0
    assert vpin.size == 0
    _, four = vpin_batch(HAND_TS, HAND_PX, HAND_SZ, bucket_volume=50.0, n_buckets=4)
    assert four.size == 1  # the 4th (last complete) bucket is the first with a value


def test_zero_sigma_takes_the_limit() -> None:
    # a constant +1 drift: σ = 0, every bar after the first is all buys
    ts, vpin = vpin_from_bars(np.arange(1, 5, dtype=np.int64), np.array([1.0, 2.0, 3.0, 4.0]),
                              np.array([0.0, 10.0, 10.0, 10.0]), bucket_volume=10.0, n_buckets=3)
    assert ts.tolist() == [4]
    assert vpin.tolist() == [1.0]


@pytest.mark.parametrize("bad", [{"bucket_volume": 0.0}, {"n_buckets": 0}])
def test_rejects_bad_parameters(bad: dict[str, float]) -> None:
    args: dict[str, float] = {"bucket_volume": 10.0, "n_buckets": 2} | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        vpin_batch(HAND_TS, HAND_PX, HAND_SZ, args["bucket_volume"], int(args["n_buckets"]))


def test_rejects_negative_size() -> None:
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        vpin_from_bars(np.array([1, 2]), np.array([1.0, 1.0]), np.array([5.0, -1.0]), 1.0, 1)


# --- sessions ---------------------------------------------------------------------------------------


def test_overnight_produces_no_bars_and_after_hours_trades_are_dropped() -> None:
    mon = date(2026, 11, 23)
    ts = [ny_ns(mon, 15, 59, 30), ny_ns(mon, 17, 0), ny_ns(TUE, 4, 0), ny_ns(TUE, 9, 30, 30)]
    bars = build_bars(ts, [10.0, 11.0, 12.0, 13.0], [1.0, 100.0, 100.0, 2.0])
    assert bars.start_ns.tolist() == [ny_ns(mon, 15, 59), ny_ns(TUE, 9, 30)]
    assert bars.end_ns.tolist() == [ny_ns(mon, 16, 0), ny_ns(TUE, 9, 31)]
    assert bars.close.tolist() == [10.0, 13.0]
    assert bars.volume.tolist() == [1.0, 2.0]


def test_early_close_day_ends_at_13_and_the_holiday_has_no_bars() -> None:
    wed, fri = date(2026, 11, 25), date(2026, 11, 27)  # Thu 26th: Thanksgiving; Fri 27th closes 13:00
    ts = [ny_ns(wed, 15, 0, 1), ny_ns(fri, 12, 59, 59), ny_ns(fri, 13, 30)]
    bars = build_bars(ts, [5.0, 6.0, 7.0], [3.0, 4.0, 50.0])
    assert bars.end_ns[-1] == ny_ns(fri, 13, 0)
    assert bars.close.size == 60 + 210  # Wed 15:00-16:00, Fri 09:30-13:00
    assert bars.volume.sum() == 7.0
    assert bars.close[59] == 5.0  # Wed's last minute carries forward
    assert bars.close[60] == 5.0  # so does Fri's open, until its first trade
    assert bars.start_ns[60] == ny_ns(fri, 9, 30)


# --- properties -------------------------------------------------------------------------------------

OPEN_NS = ny_ns(TUE, 9, 30)
# offsets from Tuesday's open: from 30 min before it to past Wednesday's close (some outside sessions)
offsets_s = arrays(np.int64, st.integers(1, 120), elements=st.integers(-1_800, 24 * 3600 + 25_000))
prices = st.floats(50.0, 150.0)
sizes = st.integers(0, 1_000).map(float)


@st.composite
def tapes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ts = np.sort(draw(offsets_s)) * NS + OPEN_NS
    px = draw(arrays(np.float64, ts.size, elements=prices))
    sz = draw(arrays(np.float64, ts.size, elements=sizes))
    return ts, px, sz


def in_session_volume(ts: np.ndarray, sz: np.ndarray) -> float:
    total = 0.0
    for day in (TUE, TUE + timedelta(days=1)):
        bounds = session_ns(day)
        assert bounds is not None
        total += float(sz[(ts >= bounds[0]) & (ts < bounds[1])].sum())
    return total


@given(tapes())
def test_bars_conserve_in_session_volume(tape: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    ts, px, sz = tape
    bars = build_bars(ts, px, sz)
    assert bars.volume.sum() == in_session_volume(ts, sz)
    assert np.all(np.diff(bars.start_ns) > 0)
    assert not np.any(np.isnan(bars.close))


@given(tapes(), st.integers(1, 3_000), st.integers(1, 8))
def test_vpin_in_unit_interval_and_buckets_conserve_volume(
        tape: tuple[np.ndarray, np.ndarray, np.ndarray], bucket_volume: int, n: int) -> None:
    ts, px, sz = tape
    stamps, vpin = vpin_batch(ts, px, sz, float(bucket_volume), n)
    assert np.all((vpin >= 0.0) & (vpin <= 1.0))
    completed = int(in_session_volume(ts, sz) // bucket_volume)  # integer sizes: exact
    assert vpin.size == max(completed - n + 1, 0)
    assert np.all(np.diff(stamps) >= 0)


@given(tapes(), st.integers(1, 3_000), st.integers(1, 8))
def test_streaming_equals_batch_given_the_same_sigma(
        tape: tuple[np.ndarray, np.ndarray, np.ndarray], bucket_volume: int, n: int) -> None:
    ts, px, sz = tape
    bars = build_bars(ts, px, sz)
    batch_ts, batch = vpin_batch(ts, px, sz, float(bucket_volume), n)
    last_per_stamp = dict(zip(batch_ts.tolist(), batch.tolist(), strict=True))
    live = StreamingVpin(float(bucket_volume), n, sigma=price_change_sigma(bars.close))
    got = {}
    for end, close, vol in zip(bars.end_ns.tolist(), bars.close.tolist(), bars.volume.tolist(), strict=True):
        value = live.update_bar(end, close, vol)
        if value is not None:
            got[end] = value
    assert got.keys() == last_per_stamp.keys()
    assert np.allclose([got[k] for k in got], [last_per_stamp[k] for k in got], rtol=0.0, atol=1e-12)


@given(tapes(), st.integers(1, 3_000), st.integers(1, 8))
def test_streaming_from_trades_builds_the_same_bars(
        tape: tuple[np.ndarray, np.ndarray, np.ndarray], bucket_volume: int, n: int) -> None:
    ts, px, sz = tape
    bars = build_bars(ts, px, sz)
    _, batch = vpin_batch(ts, px, sz, float(bucket_volume), n)
    live = StreamingVpin(float(bucket_volume), n, sigma=price_change_sigma(bars.close))
    last = None
    for t, p, s in zip(ts.tolist(), px.tolist(), sz.tolist(), strict=True):
        value = live.update_trade(t, p, s)
        last = value if value is not None else last
    if bars.end_ns.size:
        value = live.advance(int(bars.end_ns[-1]))
        last = value if value is not None else last
    assert live.buckets_completed == int(bars.volume.sum() // bucket_volume)
    if batch.size:
        assert last == pytest.approx(float(batch[-1]), abs=1e-12)
    else:
        assert last is None


def test_streaming_trailing_sigma_is_causal_and_ends_at_the_batch_sigma() -> None:
    rng = np.random.default_rng(7)
    close = 100.0 + np.cumsum(rng.normal(0.0, 0.05, 400))
    live = StreamingVpin(bucket_volume=1_000.0, n_buckets=5)
    seen = []
    for i, c in enumerate(close):
        live.update_bar(i + 1, float(c), 300.0)
        seen.append(live.sigma)
    assert math.isnan(seen[1])  # one change: no sample std yet, so no look-ahead fill-in
    assert seen[10] == pytest.approx(price_change_sigma(close[:11]), rel=1e-12)
    assert seen[-1] == pytest.approx(price_change_sigma(close), rel=1e-12)


def test_streaming_advance_closes_quiet_minutes_with_zero_volume() -> None:
    live = StreamingVpin(bucket_volume=10.0, n_buckets=1, sigma=1.0)
    assert live.update_trade(ny_ns(TUE, 9, 30, 5), 100.0, 10.0) is None
    assert live.advance(ny_ns(TUE, 9, 30, 59)) is None  # the bar is still open
    assert live.advance(ny_ns(TUE, 9, 31)) == pytest.approx(0.0)  # first bar: ΔP = 0, half-half
    live.advance(ny_ns(TUE, 9, 40))
    assert live.buckets_completed == 1
    assert live.update_trade(ny_ns(TUE, 9, 40, 1), 101.0, 10.0) is None
    # 9 empty bars at 100 then this one: ΔP = +1, σ = 1 → buy share Φ(1)
    assert live.advance(ny_ns(TUE, 9, 41)) == pytest.approx(abs(1.0 - 2.0 * phi(1.0)), abs=1e-15)


# --- true sign --------------------------------------------------------------------------------------


@given(tapes(), st.integers(1, 500), st.integers(1, 5), st.booleans())
def test_true_sign_one_sided_is_one_and_balanced_is_zero(
        tape: tuple[np.ndarray, np.ndarray, np.ndarray], bucket_volume: int, n: int, buys: bool) -> None:
    ts, _, sz = tape
    zero = np.zeros_like(sz)
    _, one_sided = vpin_true_sign(ts, sz if buys else zero, zero if buys else sz, float(bucket_volume), n)
    assert np.all(one_sided == 1.0)
    _, balanced = vpin_true_sign(ts, sz, sz, float(bucket_volume), n)
    assert np.allclose(balanced, 0.0, atol=1e-12)
    assert balanced.size == max(int(2.0 * in_session_volume(ts, sz) // bucket_volume) - n + 1, 0)


def test_true_sign_hand_case() -> None:
    # bar 0: 30 buy, 10 sell; bar 1: 0 buy, 40 sell.  V = 40, n = 2: bucket 1 = bar 0, bucket 2 = bar 1
    ts = [ny_ns(TUE, 10, 0, 1), ny_ns(TUE, 10, 0, 2), ny_ns(TUE, 10, 1, 0)]
    stamps, vpin = vpin_true_sign(ts, [30.0, 0.0, 0.0], [0.0, 10.0, 40.0], 40.0, 2)
    assert stamps.tolist() == [ny_ns(TUE, 10, 2)]
    assert vpin.tolist() == [pytest.approx((20.0 + 40.0) / 80.0)]


# --- bucket size, sessions, known buy volume -----------------------------------------------------------


@pytest.mark.parametrize("adv", [0.0, -1.0, math.nan, math.inf, -math.inf])
def test_bucket_volume_needs_a_finite_positive_adv(adv: float) -> None:
    assert bucket_volume(adv) is None


@given(st.floats(1e-6, 1e12), st.integers(1, 500))
def test_bucket_volume_is_adv_over_buckets_per_day(adv: float, per_day: int) -> None:
    assert bucket_volume(adv) == adv / 50
    assert bucket_volume(adv, per_day) == adv / per_day


def test_in_session_marks_regular_session_minutes_only() -> None:
    thu, fri = date(2026, 11, 26), date(2026, 11, 27)  # Thanksgiving; Friday closes at 13:00
    starts = [ny_ns(TUE, 9, 29), ny_ns(TUE, 9, 30), ny_ns(TUE, 15, 59), ny_ns(TUE, 16, 0), ny_ns(thu, 10, 0),
              ny_ns(fri, 12, 59), ny_ns(fri, 13, 0)]
    assert in_session(starts).tolist() == [False, True, True, False, False, True, False]


@given(tapes(), st.integers(1, 500), st.integers(1, 5))
def test_vpin_from_buys_is_vpin_from_bars_given_the_bvc_buys(
        tape: tuple[np.ndarray, np.ndarray, np.ndarray], bucket_volume_: int, n: int) -> None:
    ts, px, sz = tape
    bars = build_bars(ts, px, sz)
    dp = np.diff(bars.close, prepend=bars.close[:1])
    buys = bars.volume * bvc_buy_fraction(dp, price_change_sigma(bars.close))
    got_ts, got = vpin_from_buys(bars.end_ns, bars.volume, buys, float(bucket_volume_), n)
    want_ts, want = vpin_from_bars(bars.end_ns, bars.close, bars.volume, float(bucket_volume_), n)
    assert got_ts.tolist() == want_ts.tolist()
    assert np.allclose(got, want, rtol=0.0, atol=1e-12)
