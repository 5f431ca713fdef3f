"""Circuit breakers: each trips at its limit and not below it; regime breakers clear with hysteresis."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from qc.risk.breakers import (
    BreakerLimits,
    Clear,
    Trip,
    account_breakers,
    broker_breaker,
    redis_breaker,
    side_of_flip,
    vpin_breaker,
    zero_gamma_breaker,
)
from qc.risk.state import Latch, TradingState, clear, escalate

NOW = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)
L = BreakerLimits()


def causes(trips: list[Trip]) -> list[str]:
    return [t.cause for t in trips]


def test_daily_loss_trips_at_the_limit_not_a_dollar_before() -> None:
    assert causes(account_breakers(-4_999.0, 0.0, -4_999.0, [], NOW, L)) == []
    trips = account_breakers(-5_000.0, 0.0, -5_000.0, [], NOW, L)
    assert causes(trips) == ["daily_loss"] and trips[0].state is TradingState.REDUCING
    assert trips[0].context == "pnl=-5000 limit=-5000"


def test_drawdown_from_the_day_high_trips_even_with_a_positive_day() -> None:
    assert causes(account_breakers(+1_000.0, 108_499.0, 101_000.0, [], NOW, L)) == []
    assert causes(account_breakers(+1_000.0, 108_500.0, 101_000.0, [], NOW, L)) == ["drawdown"]


def test_rejects_inside_the_window_halt() -> None:
    inside = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert causes(account_breakers(0, 0, 0, inside, NOW, L)) == []
    assert causes(account_breakers(0, 0, 0, [*inside, NOW - timedelta(minutes=10)], NOW, L)) == []  # at the edge
    trips = account_breakers(0, 0, 0, [*inside, NOW - timedelta(minutes=9, seconds=59)], NOW, L)
    assert causes(trips) == ["rejects"] and trips[0].state is TradingState.HALTED


def test_zero_gamma_cross_trips_on_a_change_of_side_and_clears_away_from_the_flip() -> None:
    assert side_of_flip(501.0, 500.0) == 1 and side_of_flip(499.0, 500.0) == -1 and side_of_flip(500.0, 500.0) == 0
    got = zero_gamma_breaker("SPY", +1, 499.9, 500.0, L)
    assert isinstance(got, Trip) and got.scope == "SPY" and got.cause == "zero_gamma_cross"
    assert zero_gamma_breaker("SPY", +1, 500.1, 500.0, L) is None  # same side, still near the flip
    assert zero_gamma_breaker("SPY", 0, 499.9, 500.0, L) is None  # no earlier side: nothing crossed
    assert zero_gamma_breaker("SPY", -1, 498.7, 500.0, L) == Clear("SPY", "zero_gamma_cross")  # 0.26 % away
    assert zero_gamma_breaker("SPY", -1, 498.8, 500.0, L) is None  # 0.24 %: not yet
    assert zero_gamma_breaker("SPY", +1, 499.0, None, L) is None  # no flip level: no reading


def test_a_move_through_zero_gamma_reduces_the_underlying_and_back() -> None:
    latch, side = Latch(), side_of_flip(502.0, 500.0)
    for spot in (501.0, 500.5, 499.5, 499.0, 498.0):  # down through the flip, then away from it
        got = zero_gamma_breaker("SPY", side, spot, 500.0, L)
        if isinstance(got, Trip):
            latch = escalate(latch, got.state, got.cause, f"breaker:{got.cause}", got.context, NOW)
            assert latch.state is TradingState.REDUCING
        elif isinstance(got, Clear):
            latch = clear(latch, got.cause, NOW)
        side = side_of_flip(spot, 500.0) or side
    assert latch.state is TradingState.ACTIVE and latch.cause == "cleared"


@pytest.mark.parametrize(("vpin", "expected"), [(0.61, "trip"), (0.60, "trip"), (0.55, None), (0.50, None),
                                                (0.49, "clear"), (None, None)])
def test_vpin_breaker_has_hysteresis(vpin: float | None, expected: str | None) -> None:
    got = vpin_breaker("QQQ", vpin, L)
    kind = {Trip: "trip", Clear: "clear"}.get(type(got)) if got is not None else None
    assert kind == expected


@pytest.mark.parametrize(("field", "value"), [("daily_loss_usd", -1.0), ("drawdown_usd", 0.0), ("rejects_n", 0),
                                              ("flip_clear_pct", 0.0), ("vpin_trip", 1.5), ("vpin_clear", 0.7)])
def test_bad_limits_are_refused_naming_the_field(field: str, value: float) -> None:
    changed: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field.split("_")[0]):
        replace(BreakerLimits(), **changed)


def test_broker_breaker_reduces_while_down_and_clears_when_up() -> None:
    down = broker_breaker(False)
    assert isinstance(down, Trip) and down.state is TradingState.REDUCING and down.scope == "account"
    assert broker_breaker(True) == Clear("account", "broker_disconnected")
    assert broker_breaker(None) is None


def test_redis_breaker_trips_only_on_a_different_server() -> None:
    assert redis_breaker(None, "abc") is None and redis_breaker("abc", "abc") is None
    trip = redis_breaker("abc", "def")
    assert isinstance(trip, Trip) and trip.cause == "redis_restarted" and trip.state is TradingState.REDUCING
