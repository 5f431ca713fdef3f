"""qc's trailing stop: a ratchet that follows the best premium and never loosens."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.execute.bracket import TICK
from qc.execute.trail import TrailStep, step

FAST = settings(max_examples=200, deadline=None)
quotes = st.floats(0.05, 50.0, allow_nan=False, allow_infinity=False)
pcts = st.floats(0.5, 60.0)
EPS = 1e-9


def floor_cent(x: float) -> float:
    return math.floor(x * 100 + 1e-7) / 100


def ceil_cent(x: float) -> float:
    return math.ceil(x * 100 - 1e-7) / 100


def run(sign: int, stop: float, best: float, prices: list[float], pct: float) -> list[TrailStep]:
    out = []
    for p in prices:
        s = step(sign, stop, best, p, pct)
        out.append(s)
        stop, best = s.stop, s.best
    return out


# --- examples ---------------------------------------------------------------------------------------------


def test_a_long_s_stop_follows_the_best_bid_down_by_the_trail() -> None:
    s = step(+1, 1.50, 2.00, 2.50, 20.0)
    assert s == TrailStep(best=2.50, stop=2.00, moved=True)
    s = step(+1, s.stop, s.best, 2.20, 20.0)  # a dip: nothing moves
    assert s == TrailStep(best=2.50, stop=2.00, moved=False)
    s = step(+1, s.stop, s.best, 3.01, 10.0)
    assert s.best == 3.01 and s.stop == 2.70 and s.moved  # 2.709 rounded down to the cent


def test_a_short_s_stop_follows_the_best_ask_up_by_the_trail() -> None:
    s = step(-1, 2.50, 2.00, 1.50, 20.0)
    assert s == TrailStep(best=1.50, stop=1.80, moved=True)
    s = step(-1, s.stop, s.best, 1.70, 20.0)  # a rally against the short: nothing moves
    assert s == TrailStep(best=1.50, stop=1.80, moved=False)
    s = step(-1, s.stop, s.best, 1.01, 10.0)
    assert s.best == 1.01 and s.stop == 1.12 and s.moved  # 1.111 rounded up to the cent


def test_a_short_with_no_best_yet_takes_the_first_ask() -> None:
    s = step(-1, 2.50, 0.0, 2.00, 10.0)
    assert s.best == 2.00 and s.stop == 2.20 and s.moved


def test_a_short_s_stop_is_above_the_premium_and_a_long_s_below() -> None:
    assert step(-1, 9.99, 0.0, 2.00, 5.0).stop > 2.00
    assert step(+1, 0.01, 0.0, 2.00, 5.0).stop < 2.00


def test_the_stop_does_not_move_until_the_trail_passes_it() -> None:
    assert step(+1, 1.80, 2.00, 2.10, 20.0) == TrailStep(best=2.10, stop=1.80, moved=False)  # 1.68 < 1.80
    assert step(-1, 2.20, 2.00, 1.95, 20.0) == TrailStep(best=1.95, stop=2.20, moved=False)  # 2.34 > 2.20


def test_less_than_a_tick_is_not_a_move() -> None:
    # best 2.00 → 2.005: the candidate stays 1.80 on the cent; no modify is sent
    assert step(+1, 1.80, 2.00, 2.005, 10.0).moved is False


@pytest.mark.parametrize("price", [math.nan, math.inf, -math.inf, 0.0, -1.0])
@pytest.mark.parametrize("sign", [1, -1])
def test_a_bad_quote_changes_nothing(price: float, sign: int) -> None:
    assert step(sign, 1.5, 2.0, price, 10.0) == TrailStep(2.0, 1.5, False)


@pytest.mark.parametrize("pct", [0.0, -5.0])
def test_no_trail_is_a_fixed_stop(pct: float) -> None:
    assert step(+1, 1.5, 2.0, 9.0, pct) == TrailStep(2.0, 1.5, False)
    assert step(-1, 2.5, 2.0, 0.5, pct) == TrailStep(2.0, 2.5, False)


# --- properties -------------------------------------------------------------------------------------------


@FAST
@given(st.lists(quotes, min_size=1, max_size=20), pcts, st.floats(0.01, 5.0), st.floats(0.0, 5.0))
def test_a_long_s_stop_never_loosens(prices: list[float], pct: float, stop0: float, best0: float) -> None:
    stop, best = round(stop0, 2) or 0.01, best0
    for s, p in zip(run(+1, stop, best, prices, pct), prices, strict=True):
        assert s.stop >= stop - EPS, "a long's stop moved down"
        assert s.best == max(best, p)
        bound = floor_cent(s.best * (1 - pct / 100))
        assert s.stop <= max(stop, bound, TICK) + EPS, "the stop is above best × (1 − pct) on the cent"
        assert s.stop == pytest.approx(max(stop, bound, TICK) if bound > stop else stop)
        assert round(s.stop * 100, 6).is_integer() or s.stop == stop
        if s.stop != stop:
            assert s.stop < s.best, "a long's stop moved to or above the best bid"
        assert s.moved == (s.stop >= stop + TICK - EPS)
        stop, best = s.stop, s.best


@FAST
@given(st.lists(quotes, min_size=1, max_size=20), pcts, st.floats(0.05, 80.0))
def test_a_short_s_stop_never_loosens(prices: list[float], pct: float, stop0: float) -> None:
    stop, best = round(stop0, 2), 0.0
    for s, p in zip(run(-1, stop, best, prices, pct), prices, strict=True):
        assert s.stop <= stop + EPS, "a short's stop moved up"
        assert s.best == (p if best <= 0 else min(best, p))
        bound = ceil_cent(s.best * (1 + pct / 100))
        assert s.stop >= min(stop, bound) - EPS, "the stop is below best × (1 + pct) on the cent"
        assert s.stop == pytest.approx(min(stop, bound))
        if s.stop != stop:
            assert s.stop > s.best, "a short's stop moved to or below the best ask"
        assert s.moved == (s.stop <= stop - TICK + EPS)
        stop, best = s.stop, s.best


@FAST
@given(st.lists(quotes, min_size=1, max_size=20), pcts, st.sampled_from([1, -1]))
def test_the_stop_never_moves_away_from_the_price(prices: list[float], pct: float, sign: int) -> None:
    """Whatever the quotes, the distance from each new quote to the stop shrinks or the stop holds still."""
    stop = 0.01 if sign > 0 else 1_000.0
    best = 0.0
    for p in prices:
        s = step(sign, stop, best, p, pct)
        assert sign * (s.stop - stop) >= -EPS
        stop, best = s.stop, s.best
    # and at the end the stop sits on the safe side of the best premium seen
    if sign > 0:
        assert stop <= max(best, TICK)
    else:
        assert stop >= best


@FAST
@given(st.lists(quotes, min_size=2, max_size=20), pcts)
def test_the_order_of_the_quotes_after_the_best_does_not_matter(prices: list[float], pct: float) -> None:
    """The stop depends only on the best premium seen (and where it started): a restart replays to the same stop."""
    forward = run(+1, 0.01, 0.0, prices, pct)[-1]
    backward = run(+1, 0.01, 0.0, list(reversed(prices)), pct)[-1]
    assert forward.best == backward.best and forward.stop == backward.stop
    resumed = run(+1, forward.stop, forward.best, prices, pct)[-1]
    assert resumed.stop == forward.stop
