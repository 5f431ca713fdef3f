"""Simulated broker: brackets, OCA, order types, fault switches, cancels, ownership, reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qc.sim.broker.engine import SimBroker
from qc.sim.broker.orders import CANCELLED, FILLED, INACTIVE, PRE_SUBMITTED, SUBMITTED, WHY_HELD_CHILD
from qc.sim.broker.reports import BrokerError, BrokerEvent, CommissionReported, ExecutionReported, OrderStateChanged
from tests.unit.sim_broker_helpers import (
    ACCT,
    CALL,
    PUT,
    SPY,
    T0,
    at,
    bracket,
    errors,
    fills,
    kinds,
    last_state,
    new_broker,
    order,
    states,
)


def quote(b: SimBroker, bid: float, ask: float, last: float = 0.0, key: int | str = CALL.con_id,
          minutes: int = 1) -> list[BrokerEvent]:
    return b.on_market(key, bid, ask, last, T0 + timedelta(minutes=minutes))


# --- brackets -------------------------------------------------------------------------------------

def _placed_bracket() -> SimBroker:
    b = new_broker()
    quote(b, 2.05, 2.10, minutes=0)
    parent, take, stop = bracket(1, 2, entry=2.00, take=2.50, stop=1.60)
    assert b.submit(1, parent, T0) == []
    assert b.submit(1, take, T0) == []
    assert b.open_orders(1) == []
    events = b.submit(1, stop, T0)
    assert states(events) == [(1, SUBMITTED), (2, PRE_SUBMITTED), (3, PRE_SUBMITTED)]
    return b


def test_bracket_is_held_until_the_transmitting_child_then_children_wait_on_the_parent() -> None:
    b = _placed_bracket()
    open_ = {o.order_id: o for o in b.open_orders(1)}
    assert set(open_) == {1, 2, 3}
    assert open_[2].parent_id == 1 and open_[3].parent_id == 1
    assert open_[2].why_held == WHY_HELD_CHILD and open_[1].why_held == ""
    assert open_[2].parent_perm_id == open_[1].perm_id
    assert quote(b, 2.40, 2.45) == []  # children ignore the market while the parent works


def test_parent_fill_activates_children_then_take_profit_cancels_the_stop() -> None:
    b = _placed_bracket()
    events = quote(b, 1.95, 2.00)
    assert kinds(events)[:5] == ["ExecutionReported", "OrderStateChanged", "CommissionReported",
                                 "PositionChanged", "AccountChanged"]
    assert fills(events) == [(1, 2, 2.00)]  # resting limit fills at its limit
    assert states(events) == [(1, FILLED), (2, SUBMITTED), (3, PRE_SUBMITTED)]  # option stop: IB-simulated
    assert last_state(events, 3).why_held == ""
    events = quote(b, 2.55, 2.60)
    assert fills(events) == [(2, 2, 2.50)]
    assert states(events) == [(2, FILLED), (3, CANCELLED)]
    assert errors(events) == []  # an OCA cancel is a status, not a 202
    assert b.positions(ACCT) == []


def test_stop_fill_cancels_the_take_profit() -> None:
    b = _placed_bracket()
    quote(b, 1.95, 2.00)
    events = quote(b, 1.50, 1.55)
    assert fills(events) == [(3, 2, 1.50)]  # triggered on the bid, filled as market at the bid
    assert states(events) == [(3, FILLED), (2, CANCELLED)]


def test_partial_take_profit_reduces_the_stop_instead_of_cancelling_it() -> None:
    b = _placed_bracket()
    quote(b, 1.95, 2.00)
    b.fill_next_partially(quantity=1)
    events = quote(b, 2.55, 2.60)
    assert fills(events) == [(2, 1, 2.50)]
    stop = last_state(events, 3)
    assert (stop.status, stop.request.quantity, stop.remaining) == (PRE_SUBMITTED, 1, 1)
    events = quote(b, 1.40, 1.45, minutes=2)
    assert fills(events) == [(3, 1, 1.40)]
    assert states(events)[-1] == (2, CANCELLED)
    assert b.positions(ACCT) == []


def test_cancelling_the_parent_cancels_its_children_with_202_each() -> None:
    b = _placed_bracket()
    events = b.cancel(1, 1, T0)
    assert states(events) == [(1, CANCELLED), (2, CANCELLED), (3, CANCELLED)]
    assert errors(events) == [(1, 202), (2, 202), (3, 202)]
    assert b.open_orders(1) == []


def test_child_of_an_unknown_parent_is_rejected() -> None:
    b = new_broker()
    events = b.submit(1, order(5, "SELL", kind="STP", aux_price=1.0, parent_id=4), T0)
    assert errors(events) == [(5, 201)]


def test_oca_type_1_cancels_the_others_on_the_first_fill() -> None:
    b = new_broker()
    quote(b, 2.00, 2.10, minutes=0)
    b.submit(1, order(1, lmt_price=1.90, oca_group="g", oca_type=1, quantity=3), T0)
    b.submit(1, order(2, lmt_price=1.80, oca_group="g", oca_type=1, quantity=3), T0)
    b.fill_next_partially(quantity=1)
    events = quote(b, 1.80, 1.85)
    assert fills(events) == [(1, 1, 1.90)]
    assert states(events) == [(1, SUBMITTED), (2, CANCELLED)]


# --- order types ------------------------------------------------------------------------------------

def test_market_order_fills_at_the_touch_and_waits_for_a_quote() -> None:
    b = new_broker()
    assert fills(b.submit(1, order(1, kind="MKT"), T0)) == []  # no quote yet: keeps working
    assert fills(quote(b, 2.00, 2.10)) == [(1, 1, 2.10)]
    assert fills(b.submit(1, order(2, "SELL", kind="MKT"), T0)) == [(2, 1, 2.00)]


def test_limit_marketable_fills_at_the_touch_resting_fills_at_its_limit() -> None:
    b = new_broker()
    quote(b, 2.00, 2.05, minutes=0)
    assert fills(b.submit(1, order(1, lmt_price=2.10), T0)) == [(1, 1, 2.05)]  # price improvement
    assert states(b.submit(1, order(2, lmt_price=1.90), T0)) == [(2, SUBMITTED)]
    assert fills(quote(b, 1.85, 1.95)) == []
    assert fills(quote(b, 1.80, 1.85)) == [(2, 1, 1.90)]


def test_stop_triggers_on_last_for_stock_and_fills_as_market() -> None:
    b = new_broker()
    quote(b, 100.4, 100.5, 100.45, key="SPY", minutes=0)
    events = b.submit(1, order(1, "BUY", 10, "STP", SPY, aux_price=101.0), T0)
    assert states(events) == [(1, SUBMITTED)]  # stock stops are native, not held
    assert fills(quote(b, 100.9, 101.05, 100.95, key="SPY")) == []
    assert fills(quote(b, 101.1, 101.2, 101.15, key="SPY")) == [(1, 10, 101.2)]


def test_stop_limit_triggers_then_rests_as_a_limit() -> None:
    b = new_broker()
    quote(b, 1.60, 1.65, minutes=0)
    b.submit(1, order(1, "SELL", kind="STP LMT", aux_price=1.50, lmt_price=1.45), T0)
    events = quote(b, 1.40, 1.45)
    assert fills(events) == [] and states(events) == [(1, SUBMITTED)]  # triggered, limit not reached
    assert fills(quote(b, 1.47, 1.52)) == [(1, 1, 1.45)]


def test_sell_trail_by_amount_follows_the_bid_up_never_down_and_triggers() -> None:
    b = new_broker()
    quote(b, 2.00, 2.05, minutes=0)
    events = b.submit(1, order(1, "SELL", kind="TRAIL", aux_price=0.20), T0)
    assert last_state(events, 1).status == PRE_SUBMITTED
    assert last_state(events, 1).trail_stop_price == pytest.approx(1.80)
    assert last_state(quote(b, 2.50, 2.55), 1).trail_stop_price == pytest.approx(2.30)
    assert quote(b, 2.40, 2.45) == []  # the stop does not move down, nothing to report
    assert b.order(1, 1).trail_stop_price == pytest.approx(2.30)  # type: ignore[union-attr]
    assert fills(quote(b, 2.31, 2.36)) == []
    events = quote(b, 2.28, 2.33)
    assert fills(events) == [(1, 1, 2.28)]
    assert last_state(events, 1).trail_stop_price == pytest.approx(2.30)


def test_sell_trail_by_percent() -> None:
    b = new_broker()
    quote(b, 2.00, 2.05, minutes=0)
    events = b.submit(1, order(1, "SELL", kind="TRAIL", trailing_percent=10.0), T0)
    assert last_state(events, 1).trail_stop_price == pytest.approx(1.80)
    assert last_state(quote(b, 3.00, 3.05), 1).trail_stop_price == pytest.approx(2.70)
    assert fills(quote(b, 2.80, 2.85)) == []
    assert b.order(1, 1).trail_stop_price == pytest.approx(2.70)  # type: ignore[union-attr]
    assert fills(quote(b, 2.69, 2.75)) == [(1, 1, 2.69)]


def test_buy_trail_on_stock_follows_last_down() -> None:
    b = new_broker()
    quote(b, 99.9, 100.1, 100.0, key="SPY", minutes=0)
    events = b.submit(1, order(1, "BUY", 5, "TRAIL", SPY, aux_price=1.0, trail_stop_price=101.5), T0)
    assert last_state(events, 1).trail_stop_price == pytest.approx(101.0)
    assert last_state(quote(b, 97.9, 98.1, 98.0, key="SPY"), 1).trail_stop_price == pytest.approx(99.0)
    assert fills(quote(b, 98.4, 98.6, 98.5, key="SPY")) == []
    assert fills(quote(b, 99.0, 99.2, 99.1, key="SPY")) == [(1, 5, 99.2)]


def test_trail_limit_rests_at_the_stop_less_the_offset_when_the_market_gaps() -> None:
    b = new_broker()
    quote(b, 2.00, 2.05, minutes=0)
    b.submit(1, order(1, "SELL", kind="TRAIL LIMIT", aux_price=0.20, lmt_price_offset=0.05), T0)
    events = quote(b, 1.70, 1.75)  # gap through the 1.80 stop: limit 1.75 is not reached
    assert fills(events) == [] and states(events) == [(1, SUBMITTED)]
    assert last_state(events, 1).trail_stop_price == pytest.approx(1.80)
    assert fills(quote(b, 1.74, 1.79)) == []
    assert fills(quote(b, 1.76, 1.81)) == [(1, 1, 1.75)]


def test_trailing_stop_child_starts_trailing_only_once_the_parent_filled() -> None:
    b = new_broker()
    quote(b, 2.05, 2.10, minutes=0)
    b.submit(1, order(1, lmt_price=2.00, transmit=False), T0)
    b.submit(1, order(2, "SELL", kind="TRAIL", aux_price=0.30, parent_id=1), T0)
    assert b.order(1, 2).trail_stop_price is None  # type: ignore[union-attr]
    events = quote(b, 1.95, 2.00)
    assert last_state(events, 2).trail_stop_price == pytest.approx(1.65)
    assert fills(quote(b, 1.60, 1.65)) == [(2, 1, 1.60)]


def test_moc_fills_at_the_close_loc_only_when_the_close_is_good_enough() -> None:
    b = new_broker()
    quote(b, 100.0, 100.1, 100.05, key="SPY", minutes=0)
    assert states(b.submit(1, order(1, "BUY", 10, "MOC", SPY), T0)) == [(1, SUBMITTED)]
    b.submit(1, order(2, "BUY", 10, "LOC", SPY, lmt_price=100.0), T0)
    assert fills(quote(b, 99.0, 99.1, 99.05, key="SPY")) == []  # never before the close
    events = b.on_close("SPY", 101.23, at(16))
    assert fills(events) == [(1, 10, 101.23)]
    assert (2, CANCELLED) in states(events)


def test_moc_on_an_option_is_rejected() -> None:
    assert errors(new_broker().submit(1, order(1, kind="MOC"), T0)) == [(1, 201)]


# --- fault switches -----------------------------------------------------------------------------------

def test_partial_fill_switch_gives_two_executions_with_running_totals() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    b.fill_next_partially(quantity=3)
    first = b.submit(1, order(1, quantity=10, lmt_price=2.20), T0)
    second = quote(b, 2.05, 2.10)
    execs = [e.execution for e in first + second if isinstance(e, ExecutionReported)]
    assert [(x.shares, x.price, x.cum_qty) for x in execs] == [(3, 2.00, 3), (7, 2.20, 10)]
    assert execs[1].avg_price == pytest.approx((3 * 2.00 + 7 * 2.20) / 10)
    assert execs[0].exec_id != execs[1].exec_id
    assert last_state(first, 1).status == SUBMITTED and last_state(first, 1).remaining == 7
    assert last_state(second, 1).status == FILLED
    commissions = [e.commission.commission for e in first + second if isinstance(e, CommissionReported)]
    assert commissions == pytest.approx([3 * 0.65, 7 * 0.65])


def test_partial_switch_by_fraction_and_minimum_commission_per_order() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    b.fill_next_partially(fraction=0.5)
    first = b.submit(1, order(1, quantity=2, kind="MKT"), T0)
    second = quote(b, 1.95, 2.00)
    assert fills(first) == [(1, 1, 2.00)] and fills(second) == [(1, 1, 2.00)]
    commissions = [e.commission.commission for e in first + second if isinstance(e, CommissionReported)]
    assert commissions == pytest.approx([1.00, 0.30])  # $1 minimum per order, then up to 2 × 0.65


def test_reject_switch_rejects_the_next_order_with_201() -> None:
    b = new_broker()
    b.reject_next("Insufficient margin")
    events = b.submit(1, order(1, lmt_price=1.0), T0)
    assert events == [BrokerError(1, ACCT, 1, 201, "Order rejected - reason:Insufficient margin")]
    assert b.order(1, 1).status == INACTIVE  # type: ignore[union-attr]
    assert b.open_orders(1) == [] and [o.order_id for o in b.completed_orders()] == [1]
    assert states(b.submit(1, order(2, lmt_price=1.0), T0)) == [(2, SUBMITTED)]


# --- cancels, ids, ownership ----------------------------------------------------------------------------

def test_cancel_unknown_and_finished_orders() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    b.submit(1, order(1, lmt_price=1.00), T0)
    assert kinds(b.cancel(1, 1, T0)) == ["OrderStateChanged", "BrokerError"]
    assert b.cancel(1, 1, T0) == [BrokerError(
        1, ACCT, 1, 10148, "OrderId 1 that needs to be cancelled cannot be cancelled, state: Cancelled.")]
    assert b.cancel(1, 9, T0) == [BrokerError(1, "", 9, 10147, "OrderId 9 that needs to be cancelled is not found.")]
    b.submit(1, order(2, kind="MKT"), T0)
    assert errors(b.cancel(1, 2, T0)) == [(2, 10148)]
    assert b.cancel(1, 2, T0)[0].message.endswith("state: Filled.")  # type: ignore[union-attr]


def test_reusing_a_finished_order_id_is_103_and_a_filled_one_104() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    b.submit(1, order(1, lmt_price=1.00), T0)
    b.cancel(1, 1, T0)
    assert errors(b.submit(1, order(1, lmt_price=1.00), T0)) == [(1, 103)]
    b.submit(1, order(2, kind="MKT"), T0)
    assert errors(b.submit(1, order(2, kind="MKT"), T0)) == [(2, 104)]
    assert b.next_valid_id(1) == 3 and b.next_valid_id(2) == 1


def test_replacing_a_working_order_modifies_it() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    perm = last_state(b.submit(1, order(1, quantity=2, lmt_price=1.50), T0), 1).perm_id
    events = b.submit(1, order(1, quantity=3, lmt_price=1.60), T0)
    snap = last_state(events, 1)
    assert (snap.perm_id, snap.request.quantity, snap.request.lmt_price, snap.status) == (perm, 3, 1.60, SUBMITTED)
    assert fills(b.submit(1, order(1, quantity=3, lmt_price=2.05), T0)) == [(1, 3, 2.00)]
    assert errors(b.submit(1, order(3, lmt_price=1.0), T0) + b.submit(1, order(3, "SELL", lmt_price=1.0), T0)) \
        == [(3, 105)]


def test_global_cancel_cancels_every_clients_working_orders() -> None:
    b = new_broker()
    quote(b, 1.95, 2.00, minutes=0)
    b.submit(1, order(1, lmt_price=1.00), T0)
    b.submit(2, order(1, lmt_price=1.10, client_id=2), T0)
    b.submit(2, order(2, "SELL", kind="TRAIL", aux_price=0.1, client_id=2), T0)
    events = b.global_cancel(T0)
    assert sorted((e.client_id, e.code) for e in events if isinstance(e, BrokerError)) == [(1, 202), (2, 202), (2, 202)]
    assert b.open_orders() == []


def test_a_client_cannot_cancel_another_clients_order() -> None:
    b = new_broker()
    b.submit(1, order(7, lmt_price=1.00), T0)
    events = b.cancel(2, 7, T0)
    assert [(e.client_id, e.code) for e in events if isinstance(e, BrokerError)] == [(2, 10147)]
    assert [o.order_id for o in b.open_orders(1)] == [7]
    assert b.open_orders(2) == []


def test_the_connection_client_id_owns_the_order() -> None:
    b = new_broker()
    b.submit(3, order(1, lmt_price=1.00, client_id=99), T0)
    assert [o.client_id for o in b.open_orders(3)] == [3]


def test_end_of_day_expires_day_orders_but_keeps_gtc() -> None:
    b = new_broker()
    b.submit(1, order(1, lmt_price=1.00), T0)
    b.submit(1, order(2, lmt_price=1.00, tif="GTC"), T0)
    events = b.end_of_day(at(16))
    assert states(events) == [(1, CANCELLED)] and errors(events) == []
    assert [o.order_id for o in b.open_orders(1)] == [2]


# --- reconciliation -------------------------------------------------------------------------------------

def test_open_orders_after_a_restart_are_the_same_orders() -> None:
    b = _placed_bracket()
    b.submit(2, order(1, "SELL", kind="LMT", lmt_price=9.0, contract=PUT, client_id=2), T0)
    before = [(o.order_id, o.perm_id, o.parent_id, o.status) for o in b.open_orders(1)]
    quote(b, 2.20, 2.25)  # the market moves while the client is away: nothing fills
    after = [(o.order_id, o.perm_id, o.parent_id, o.status) for o in b.open_orders(1)]
    assert before == after and [p for _, _, p, _ in after] == [0, 1, 1]
    assert len({o.perm_id for o in b.open_orders()}) == 4  # permIds are unique across clients
    assert [o.client_id for o in b.open_orders()] == [1, 1, 1, 2]


def test_snapshot_history_records_each_transition() -> None:
    b = _placed_bracket()
    quote(b, 1.95, 2.00)
    history = b.order(1, 1).history  # type: ignore[union-attr]
    assert [h.status for h in history] == [SUBMITTED, FILLED]
    assert [h.filled for h in history] == [0, 2]
    snap = b.order(1, 1)
    assert snap is not None and snap.last_change == T0 + timedelta(minutes=1)
    events = b.cancel(1, 2, T0 + timedelta(minutes=2))
    assert isinstance(events[0], OrderStateChanged) and events[0].order.last_change == T0 + timedelta(minutes=2)


def test_received_at_is_kept_from_the_first_placement_and_decides_nothing() -> None:
    from qc.sim.broker.views import order_row

    with_time, without = new_broker(), new_broker()
    for b in (with_time, without):
        quote(b, 2.05, 2.10, minutes=0)
    for i, leg in enumerate(bracket(1, 2, entry=2.00, take=2.50, stop=1.60)):
        assert states(with_time.submit(1, leg, T0, received_at=1000.0 + i)) == states(without.submit(1, leg, T0))
    modified = with_time.submit(1, order(1, quantity=2, lmt_price=2.01), T0, received_at=2000.0)
    assert [o.received_at for o in with_time.all_orders()] == [1000.0, 1001.0, 1002.0]
    assert [o.received_at for o in without.all_orders()] == [None, None, None]
    assert last_state(modified, 1).received_at == 1000.0  # a modification is not a new arrival
    assert [order_row(o)["receivedAt"] for o in with_time.all_orders()] == [1000.0, 1001.0, 1002.0]
    without.submit(1, order(1, quantity=2, lmt_price=2.01), T0)
    strip = [(o.perm_id, o.status, o.request, o.history) for o in without.all_orders()]
    assert strip == [(o.perm_id, o.status, o.request, o.history) for o in with_time.all_orders()]
