"""Bracket, protective pair and closing order plans: linked legs, sides, quantities, prices on the cent."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.execute.bracket import (
    TICK,
    bracket,
    closing_order,
    oca_group,
    protective_pair,
    stop_price,
    time_in_force,
    to_tick,
)
from qc.execute.cycle.ibtypes import ib_order
from qc.execute.model import Intent
from qc.risk.model import Side
from tests.unit.execute_helpers import leg, make_intent

FAST = settings(max_examples=200, deadline=None)
prices = st.floats(0.01, 500.0, allow_nan=False, allow_infinity=False)
sides = st.sampled_from(["BUY", "SELL"])


def cents(x: float) -> bool:
    return math.isclose(x * 100, round(x * 100), abs_tol=1e-6)


def _intent(side: str, quantity: int = 3, limit: float = 2.0, tp: float = 3.0, stop: float = 1.5) -> Intent:
    s: Side = "BUY" if side == "BUY" else "SELL"
    return make_intent(s, quantity, limit=limit, take_profit=tp, stop=stop)


# --- to_tick ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("price", "direction", "want"), [
    (1.234, 0, 1.23), (1.236, 0, 1.24), (1.234, 1, 1.24), (1.236, -1, 1.23), (1.23, 1, 1.23), (1.23, -1, 1.23),
    (0.29, -1, 0.29), (0.29, 1, 0.29), (0.57, -1, 0.57), (1.15, 1, 1.15), (2.675, -1, 2.67), (2.675, 1, 2.68),
    (0.001, -1, 0.01), (0.0, 0, 0.01), (0.004, 0, 0.01), (123.456, -1, 123.45), (123.451, 1, 123.46)])
def test_to_tick(price: float, direction: int, want: float) -> None:
    assert to_tick(price, direction) == want


@FAST
@given(prices, st.sampled_from([-1, 0, 1]))
def test_to_tick_is_on_the_cent_within_a_tick_and_in_its_direction(price: float, direction: int) -> None:
    got = to_tick(price, direction)
    assert cents(got) and got >= TICK
    assert abs(got - price) <= TICK + 1e-9
    if direction > 0:
        assert got >= price - 1e-9
    if direction < 0 and price >= TICK:
        assert got <= price + 1e-9
    assert to_tick(got, direction) == got  # idempotent


# --- the bracket ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_a_bracket_is_linked(side: str) -> None:
    intent = _intent(side, 5, tp=3.0 if side == "BUY" else 1.0, stop=1.5 if side == "BUY" else 2.5)
    e, tp, stop = bracket(intent, 100)
    # ids in sequence, the entry first; children hang off the entry and share one OCA group
    assert [p.order.order_id for p in (e, tp, stop)] == [100, 101, 102]
    assert [p.order.leg for p in (e, tp, stop)] == ["entry", "tp", "stop"]
    assert e.order.parent_id == 0 and e.order.oca_group == ""
    assert tp.order.parent_id == stop.order.parent_id == e.order.order_id
    assert tp.order.oca_group == stop.order.oca_group != ""
    # only the last leg transmits: IB releases the three together
    assert [p.transmit for p in (e, tp, stop)] == [False, False, True]
    # the whole quantity on every leg; the exits on the other side
    assert e.order.quantity == tp.order.quantity == stop.order.quantity == 5
    assert e.order.action == side
    assert tp.order.action == stop.order.action == ("SELL" if side == "BUY" else "BUY") == intent.exit_side
    assert (e.order.order_type, tp.order.order_type, stop.order.order_type) == ("LMT", "LMT", "STP")
    assert stop.order.aux is not None and stop.order.limit is None
    assert tp.order.limit is not None and e.order.limit is not None
    # reduce-on-fill OCA, so a partial take-profit shrinks the stop (never a cancel of both)
    assert tp.oca_type == stop.oca_type == 3
    assert all(p.order.status == "" and p.order.filled == 0 and p.order.perm_id == 0 for p in (e, tp, stop))


def test_the_bracket_s_order_references_name_the_intent_leg_and_attempt() -> None:
    intent = _intent("BUY")
    refs = [p.order.order_ref(intent.id) for p in bracket(intent, 7)]
    assert refs == ["qc:sig1:entry:0", "qc:sig1:tp:0", "qc:sig1:stop:0"]


def test_a_long_s_stop_is_below_and_its_take_profit_above_the_entry() -> None:
    e, tp, stop = bracket(_intent("BUY", limit=2.0, tp=3.004, stop=1.506), 1)
    assert stop.order.aux == 1.50  # rounded down, away from the premium
    assert tp.order.limit == 3.01  # rounded up
    assert e.order.limit == 2.0


def test_a_short_s_stop_is_above_and_its_take_profit_below_the_entry() -> None:
    e, tp, stop = bracket(_intent("SELL", limit=2.0, tp=1.006, stop=2.504), 1)
    assert stop.order.aux == 2.51  # rounded up, away from the premium
    assert tp.order.limit == 1.00  # rounded down
    assert e.order.limit == 2.0


@FAST
@given(sides, st.integers(1, 500), prices, st.floats(0.01, 0.99), st.floats(0.01, 3.0), st.integers(0, 10**6))
def test_every_bracket_is_linked_and_on_the_safe_sides(side: str, quantity: int, limit: float, stop_frac: float,
                                                        tp_frac: float, first_id: int) -> None:
    long = side == "BUY"
    stop = limit * (1 - stop_frac) if long else limit * (1 + stop_frac)
    tp = limit * (1 + tp_frac) if long else limit * (1 - stop_frac)
    intent = _intent(side, quantity, limit, max(tp, 0.01), max(stop, 0.01))
    e, t, s = bracket(intent, first_id)
    assert t.order.parent_id == s.order.parent_id == e.order.order_id == first_id
    assert t.order.oca_group == s.order.oca_group != ""
    assert [p.transmit for p in (e, t, s)] == [False, False, True]
    assert e.order.quantity == t.order.quantity == s.order.quantity == quantity
    assert t.order.action == s.order.action != e.order.action == side
    assert s.order.aux is not None and t.order.limit is not None and e.order.limit is not None
    assert cents(s.order.aux) and cents(t.order.limit) and cents(e.order.limit)
    assert abs(s.order.aux - intent.stop) <= TICK + 1e-9 and abs(t.order.limit - intent.take_profit) <= TICK + 1e-9
    if long:
        assert s.order.aux <= intent.stop + 1e-9 and t.order.limit >= intent.take_profit - 1e-9
    elif intent.stop >= TICK:
        assert s.order.aux >= intent.stop - 1e-9 and t.order.limit <= max(intent.take_profit, TICK) + 1e-9


@FAST
@given(sides, prices)
def test_stop_price_is_never_on_the_wrong_side(side: str, price: float) -> None:
    got = stop_price(_intent(side), price)
    if side == "BUY":
        assert got <= price + 1e-9 or got == TICK
    else:
        assert got >= price - 1e-9


def test_a_re_attempted_bracket_gets_the_next_attempt_on_every_leg() -> None:
    intent = _intent("BUY")
    first = tuple(p.order for p in bracket(intent, 10))
    again = bracket(replace(intent, orders=first), 20)
    assert [p.order.attempt for p in again] == [1, 1, 1]
    assert [p.order.order_ref(intent.id) for p in again] == ["qc:sig1:entry:1", "qc:sig1:tp:1", "qc:sig1:stop:1"]


def test_a_re_attempted_bracket_gets_its_own_oca_group() -> None:
    """a re-placed bracket (the first proven lost, attempt+1) must not share the lost one's OCA group.

    bracket() always uses ``oca_group(intent, 0)``: a re-attempt reuses ``qc:<id>:0``, so a fill of a
    (supposedly lost but in fact live) first bracket's child would reduce or cancel the new bracket's exits —
    what protective_pair() avoids for pairs with a fresh group per attempt.
    """
    intent = _intent("BUY")
    first = tuple(p.order for p in bracket(intent, 10))
    again = bracket(replace(intent, orders=first), 20)
    assert again[1].order.oca_group != first[1].oca_group


# --- the protective pair ----------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_a_protective_pair_stands_alone(side: str) -> None:
    intent = _intent(side, 5, tp=3.0 if side == "BUY" else 1.0, stop=1.5 if side == "BUY" else 2.5)
    stop, tp = protective_pair(intent, 2, 50)
    assert (stop.order.leg, tp.order.leg) == ("stop", "tp")  # the stop first: it matters most
    assert (stop.order.order_id, tp.order.order_id) == (50, 51)
    assert stop.order.parent_id == tp.order.parent_id == 0
    assert stop.order.quantity == tp.order.quantity == 2
    assert stop.order.action == tp.order.action == intent.exit_side != side
    assert stop.transmit and tp.transmit
    assert stop.oca_type == tp.oca_type == 3
    assert stop.order.oca_group == tp.order.oca_group == oca_group(intent, stop.order.attempt)
    assert stop.order.order_type == "STP" and tp.order.order_type == "LMT"
    assert stop.order.aux == stop_price(intent, intent.stop)
    if side == "BUY":
        assert stop.order.aux is not None and stop.order.aux <= intent.stop
    else:
        assert stop.order.aux is not None and stop.order.aux >= intent.stop


def test_each_protective_pair_gets_a_new_attempt_and_a_fresh_oca_group() -> None:
    intent = _intent("BUY")
    brk = tuple(p.order for p in bracket(intent, 10))
    intent = replace(intent, orders=brk)
    seen_groups = {brk[1].oca_group}
    seen_attempts: set[int] = set()
    for n in range(4):
        stop, tp = protective_pair(intent, 3, 100 + 2 * n)
        assert stop.order.attempt == tp.order.attempt
        assert stop.order.attempt not in seen_attempts and stop.order.attempt > 0
        assert stop.order.oca_group not in seen_groups
        seen_attempts.add(stop.order.attempt)
        seen_groups.add(stop.order.oca_group)
        intent = replace(intent, orders=(*intent.orders, stop.order, tp.order))
    assert sorted(seen_attempts) == [1, 2, 3, 4]


def test_a_pair_s_attempt_passes_both_legs_previous_attempts() -> None:
    intent = replace(_intent("BUY"), orders=(leg("stop", attempt=2, order_type="STP"), leg("tp", attempt=5)))
    stop, tp = protective_pair(intent, 1, 1)
    assert stop.order.attempt == tp.order.attempt == 6
    assert stop.order.oca_group == "qc:sig1:6"


# --- the closing order ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "price", "want"), [("BUY", 1.237, 1.23), ("SELL", 1.231, 1.24),
                                                     ("BUY", 0.05, 0.05), ("SELL", 0.05, 0.05)])
def test_a_closing_order_is_a_marketable_limit_on_the_cent(side: str, price: float, want: float) -> None:
    intent = _intent(side, 4, tp=3.0 if side == "BUY" else 1.0, stop=1.5 if side == "BUY" else 2.5)
    p = closing_order(intent, 4, price, 77)
    o = p.order
    assert (o.leg, o.order_id, o.quantity, o.order_type) == ("exit", 77, 4, "LMT")
    assert o.action == intent.exit_side != side
    assert o.limit == want
    assert o.parent_id == 0 and o.oca_group == "" and p.transmit


@FAST
@given(sides, prices, st.integers(1, 100))
def test_a_closing_limit_never_rounds_away_from_the_market(side: str, price: float, quantity: int) -> None:
    intent = _intent(side)
    o = closing_order(intent, quantity, price, 1).order
    assert o.limit is not None and cents(o.limit) and o.quantity == quantity
    if side == "BUY":  # selling out of a long: at or below the price asked for
        assert o.limit <= price + 1e-9 or o.limit == TICK
        assert o.limit > price - TICK - 1e-9
    else:  # buying back a short: at or above
        assert o.limit >= price - 1e-9
        assert o.limit < price + TICK + 1e-9


def test_each_closing_order_gets_the_next_attempt() -> None:
    intent = _intent("BUY")
    first = closing_order(intent, 3, 1.0, 1).order
    second = closing_order(replace(intent, orders=(first,)), 3, 1.0, 2).order
    assert (first.attempt, second.attempt) == (0, 1)
    assert second.order_ref(intent.id) == "qc:sig1:exit:1"


# --- time in force ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_the_protective_legs_rest_gtc_and_the_entry_and_closing_orders_are_day(side: str) -> None:
    """A DAY stop expires at the close and leaves a held position naked overnight; an entry must not rest."""
    intent = _intent(side)
    entry, tp, stop = bracket(intent, 10)
    pair = protective_pair(intent, 2, 20)
    close = closing_order(intent, 2, 1.9, 30)
    sent = {(p.order.leg, p.order.order_id): ib_order(p, intent.id, "DU1") for p in (entry, tp, stop, *pair, close)}
    assert {k: o.tif for k, o in sent.items()} == {
        ("entry", 10): "DAY", ("tp", 11): "GTC", ("stop", 12): "GTC",
        ("stop", 20): "GTC", ("tp", 21): "GTC", ("exit", 30): "DAY"}
    assert [time_in_force(leg(name)) for name in ("entry", "stop", "tp", "exit")] == ["DAY", "GTC", "GTC", "DAY"]
