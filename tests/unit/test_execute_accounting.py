"""Positions from fills: average cost, realised P&L (signs, the ×100 multiplier), crossing zero, commissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.execute.accounting import apply_commission, apply_fill, unrealised_usd
from qc.risk.model import ContractKey, Position, stock
from qc.risk.position_codec import PositionRecord, position_from_redis, position_to_redis
from tests.unit.execute_helpers import CALL, T0

FAST = settings(max_examples=200, deadline=None)
T1, T2, T3 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=3)
px = st.floats(0.01, 100.0, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 2))


def fills(rec: PositionRecord | None, *trades: tuple[int, float], contract: ContractKey = CALL) -> PositionRecord:
    for n, (qty, price) in enumerate(trades):
        rec = apply_fill(rec, 9, contract, qty, price, "0dte", T0 + timedelta(minutes=n))
    assert rec is not None
    return rec


def test_a_first_fill_opens_a_position() -> None:
    rec = apply_fill(None, 9, CALL, 2, 1.25, "0dte", T0)
    assert rec == PositionRecord(9, Position(CALL, 2, 1.25, "0dte"), 0.0, T0)


def test_a_first_sell_opens_a_short() -> None:
    rec = apply_fill(None, 9, CALL, -2, 1.25, "1dte", T0)
    assert rec.position.quantity == -2 and rec.position.avg_cost == 1.25 and rec.position.bucket == "1dte"
    assert rec.realised_today_usd == 0.0 and rec.opened == T0


def test_adding_moves_the_average_and_keeps_the_open_time() -> None:
    rec = fills(None, (1, 1.00), (3, 2.00))
    assert rec.position.quantity == 4
    assert rec.position.avg_cost == pytest.approx(1.75)
    assert rec.realised_today_usd == 0.0 and rec.opened == T0


def test_adding_to_a_short_moves_the_average() -> None:
    rec = fills(None, (-2, 3.00), (-2, 2.00))
    assert rec.position.quantity == -4 and rec.position.avg_cost == pytest.approx(2.50)


def test_reducing_a_long_realises_with_the_multiplier_and_keeps_the_average() -> None:
    rec = fills(None, (3, 1.00), (-2, 1.50))
    assert rec.position.quantity == 1 and rec.position.avg_cost == 1.00
    assert rec.realised_today_usd == pytest.approx(0.50 * 2 * 100)  # $100, not $1
    assert rec.opened == T0


def test_a_losing_long_realises_a_loss() -> None:
    rec = fills(None, (2, 2.00), (-2, 1.25))
    assert rec.realised_today_usd == pytest.approx(-150.0)


def test_buying_back_a_short_cheaper_is_a_gain() -> None:
    rec = fills(None, (-2, 3.00), (1, 2.00))
    assert rec.position.quantity == -1 and rec.position.avg_cost == 3.00
    assert rec.realised_today_usd == pytest.approx(+100.0)


def test_buying_back_a_short_dearer_is_a_loss() -> None:
    rec = fills(None, (-2, 3.00), (2, 3.40))
    assert rec.realised_today_usd == pytest.approx(-80.0)


def test_crossing_zero_realises_the_closed_part_and_opens_the_rest_at_the_fill_price() -> None:
    rec = fills(None, (2, 1.00), (-5, 1.60))
    assert rec.position.quantity == -3 and rec.position.avg_cost == 1.60
    assert rec.realised_today_usd == pytest.approx(0.60 * 2 * 100)
    assert rec.opened == T1  # a new position
    back = fills(rec, (4, 1.10))
    assert back.position.quantity == 1 and back.position.avg_cost == 1.10
    assert back.realised_today_usd == pytest.approx(120.0 + 0.50 * 3 * 100)


def test_closing_to_flat_resets_the_average_and_keeps_what_was_realised() -> None:
    rec = fills(None, (2, 1.00), (-2, 1.30))
    assert rec.position.quantity == 0 and rec.position.avg_cost == 0.0 and rec.opened is None
    assert rec.realised_today_usd == pytest.approx(60.0)
    again = apply_fill(rec, 9, CALL, 1, 2.00, "1dte", T3)
    assert again.position.quantity == 1 and again.position.avg_cost == 2.00 and again.opened == T3
    assert again.position.bucket == "1dte"  # a new position takes the new bucket
    assert again.realised_today_usd == pytest.approx(60.0)


def test_an_open_position_keeps_its_bucket() -> None:
    rec = apply_fill(apply_fill(None, 9, CALL, 1, 1.0, "0dte", T0), 9, CALL, 1, 1.0, "14dte", T1)
    assert rec.position.bucket == "0dte"


def test_shares_use_their_multiplier_of_one() -> None:
    rec = fills(None, (100, 500.00), (-100, 501.25), contract=stock("SPY"))
    assert rec.realised_today_usd == pytest.approx(125.0)


def test_a_mini_option_uses_its_multiplier() -> None:
    mini = ContractKey("SPY", "OPT", CALL.expiry, 600.0, "C", multiplier=10)
    rec = fills(None, (1, 2.00), (-1, 3.00), contract=mini)
    assert rec.realised_today_usd == pytest.approx(10.0)


def test_commission_lowers_realised() -> None:
    rec = fills(None, (2, 1.00))
    rec = apply_commission(rec, 1.30)
    assert rec.realised_today_usd == pytest.approx(-1.30)
    rec = apply_commission(fills(rec, (-2, 1.50)), 1.30)
    assert rec.realised_today_usd == pytest.approx(100.0 - 2.60)
    assert rec.position.quantity == 0 and rec.con_id == 9


def test_commission_keeps_the_position() -> None:
    rec = fills(None, (-3, 2.00))
    after = apply_commission(rec, 2.0)
    assert after.position == rec.position and after.opened == rec.opened and after.con_id == rec.con_id


@pytest.mark.parametrize(("qty", "mark", "want"), [(2, 1.50, 100.0), (2, 0.50, -100.0), (-2, 0.50, 100.0),
                                                   (-2, 1.50, -100.0), (0, 5.00, 0.0)])
def test_unrealised_has_the_right_sign_and_multiplier(qty: int, mark: float, want: float) -> None:
    rec = PositionRecord(9, Position(CALL, qty, 1.00 if qty else 0.0, "0dte"), 0.0, T0 if qty else None)
    assert unrealised_usd(rec, mark) == pytest.approx(want)


def test_every_record_stores_and_reads_back() -> None:
    rec = fills(None, (2, 1.00), (-5, 1.6), (1, 1.234))
    assert position_from_redis(position_to_redis(rec), key="positions:open:DU1:9") == rec


# --- properties -------------------------------------------------------------------------------------------


@FAST
@given(st.lists(st.tuples(st.integers(1, 20), px, px), min_size=1, max_size=8), st.sampled_from([1, 10, 100]),
       st.booleans())
def test_a_round_trip_realises_the_price_difference_times_quantity_times_multiplier(
        legs: list[tuple[int, float, float]], multiplier: int, short_first: bool) -> None:
    """buy then sell (or sell then buy) the same quantities: realised = Σ (sell − buy) × qty × multiplier."""
    contract = ContractKey("SPY", "OPT", CALL.expiry, 600.0, "C", multiplier)
    rec: PositionRecord | None = None
    sign = -1 if short_first else 1
    for qty, buy, sell in legs:  # open everything first …
        rec = apply_fill(rec, 9, contract, sign * qty, sell if short_first else buy, "0dte", T0)
    for qty, buy, sell in legs:  # … then close it
        rec = apply_fill(rec, 9, contract, -sign * qty, buy if short_first else sell, "0dte", T1)
    assert rec is not None
    want = sum((sell - buy) * qty * multiplier for qty, buy, sell in legs)
    assert rec.position.quantity == 0 and rec.position.avg_cost == 0.0 and rec.opened is None
    assert rec.realised_today_usd == pytest.approx(want, rel=1e-9, abs=1e-4)


@FAST
@given(st.lists(st.tuples(st.integers(-20, 20).filter(bool), px), min_size=1, max_size=12),
       st.sampled_from([1, 100]))
def test_any_sequence_that_ends_flat_realises_its_cash_flow(trades: list[tuple[int, float]], multiplier: int) -> None:
    """Whatever the order (adding, reducing, crossing zero), once flat realised is the net cash received."""
    contract = ContractKey("SPY", "OPT", CALL.expiry, 600.0, "C", multiplier)
    net = sum(q for q, _ in trades)
    closing = [(-net, 1.00)] if net else []
    rec: PositionRecord | None = None
    for n, (qty, price) in enumerate([*trades, *closing]):
        rec = apply_fill(rec, 9, contract, qty, price, "0dte", T0 + timedelta(seconds=n))
        held = sum(q for q, _ in [*trades, *closing][: n + 1])
        assert rec.position.quantity == held
        assert rec.position.avg_cost >= 0.0
        assert (rec.opened is None) == (held == 0)
    assert rec is not None
    cash = -sum(q * p for q, p in [*trades, *closing]) * multiplier
    assert rec.realised_today_usd == pytest.approx(cash, rel=1e-9, abs=1e-4)


@FAST
@given(st.integers(1, 50), px, st.integers(1, 50), px)
def test_the_average_of_a_position_built_in_two_fills_is_between_the_prices(q1: int, p1: float, q2: int,
                                                                            p2: float) -> None:
    for sign in (1, -1):
        rec = fills(None, (sign * q1, p1), (sign * q2, p2))
        assert min(p1, p2) - 1e-9 <= rec.position.avg_cost <= max(p1, p2) + 1e-9
        assert rec.position.avg_cost == pytest.approx((q1 * p1 + q2 * p2) / (q1 + q2))
        assert rec.realised_today_usd == 0.0
