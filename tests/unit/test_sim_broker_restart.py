"""A gateway restart that reissues order ids (LEAN-IB#242): finished ids come back as new orders."""

from __future__ import annotations

from datetime import timedelta

from qc.sim.broker.engine import SimBroker
from qc.sim.broker.orders import CANCELLED, FILLED, INACTIVE, PRE_SUBMITTED, SUBMITTED
from qc.sim.broker.reports import CANNOT_MODIFY_FILLED, DUPLICATE_ORDER_ID
from tests.unit.sim_broker_helpers import CALL, SPY, T0, bracket, errors, fills, last_state, new_broker, order, states


def _quote(b: SimBroker, bid: float, ask: float, minutes: int = 1) -> None:
    b.on_market(CALL.con_id, bid, ask, 0.0, T0 + timedelta(minutes=minutes))


def _three_orders() -> SimBroker:
    """Client 1: order 1 working, 2 filled (ref "A"), 3 cancelled; client 2: order 1 filled."""
    b = new_broker()
    _quote(b, 2.00, 2.10, 0)
    assert states(b.submit(1, order(1, "BUY", 1, "LMT", lmt_price=1.00), T0)) == [(1, SUBMITTED)]
    assert fills(b.submit(1, order(2, "BUY", 1, "LMT", lmt_price=2.10, order_ref="A"), T0)) == [(2, 1, 2.10)]
    b.submit(1, order(3, "BUY", 1, "LMT", lmt_price=1.00), T0)
    assert states(b.cancel(1, 3, T0)) == [(3, CANCELLED)]
    assert fills(b.submit(2, order(1, "BUY", 1, "LMT", lmt_price=2.10, client_id=2), T0)) == [(1, 1, 2.10)]
    return b


def test_without_a_restart_finished_ids_stay_taken() -> None:
    b = _three_orders()
    assert b.next_valid_id(1) == 4
    assert errors(b.submit(1, order(2, "BUY", 1, "LMT", lmt_price=2.10), T0)) == [(2, CANNOT_MODIFY_FILLED)]
    assert errors(b.submit(1, order(3, "BUY", 1, "LMT", lmt_price=2.10), T0)) == [(3, DUPLICATE_ORDER_ID)]


def test_restart_rolls_next_valid_id_back_to_above_the_working_orders() -> None:
    b = _three_orders()
    assert b.forget_finished_ids() == 3
    assert b.next_valid_id(1) == 2  # only order 1 still works
    assert b.next_valid_id(2) == 1  # nothing works for client 2
    assert b.forget_finished_ids() == 0


def test_a_reissued_id_is_a_new_order_and_shares_its_order_id_in_the_executions() -> None:
    b = _three_orders()
    old = b.order(1, 2)
    assert old is not None and old.status == FILLED
    b.forget_finished_ids()
    events = b.submit(1, order(2, "BUY", 3, "LMT", lmt_price=2.10, order_ref="B"), T0 + timedelta(minutes=2))
    assert errors(events) == [] and fills(events) == [(2, 3, 2.10)]
    new = last_state(events, 2)
    assert new.perm_id != old.perm_id and new.status == FILLED and new.request.order_ref == "B"
    both = [(o.order_id, o.perm_id, o.request.order_ref) for o in b.all_orders() if o.order_id == 2
            and o.client_id == 1]
    assert both == [(2, old.perm_id, "A"), (2, new.perm_id, "B")]
    assert [(o.order_id, o.perm_id) for o in b.completed_orders() if o.client_id == 1 and o.order_id == 2] == [
        (2, old.perm_id), (2, new.perm_id)]
    rows = [(x.execution.order_id, x.execution.perm_id, x.execution.order_ref)
            for x in b.executions(T0 + timedelta(minutes=3), client_id=1)]
    assert rows == [(2, old.perm_id, "A"), (2, new.perm_id, "B")]  # the executor's hazard: same orderId


def test_working_orders_keep_their_ids_across_the_restart() -> None:
    b = _three_orders()
    working = b.order(1, 1)
    assert working is not None
    b.forget_finished_ids()
    modified = b.submit(1, order(1, "BUY", 1, "LMT", lmt_price=1.50), T0)
    assert last_state(modified, 1).perm_id == working.perm_id
    assert last_state(modified, 1).request.lmt_price == 1.50
    assert states(b.cancel(1, 1, T0)) == [(1, CANCELLED)]
    assert errors(b.submit(2, order(1, "SELL", 1, "LMT", lmt_price=9.0, client_id=2), T0)) == []  # client 2's id 1


def test_a_rejected_order_id_is_reissued_too() -> None:
    b = new_broker()
    b.reject_next("no")
    assert states(b.submit(1, order(1, "BUY", 1, "LMT", lmt_price=1.0), T0)) == []
    assert b.order(1, 1) is not None and b.order(1, 1).status == INACTIVE  # type: ignore[union-attr]
    b.forget_finished_ids()
    assert b.next_valid_id(1) == 1 and b.order(1, 1) is None
    assert states(b.submit(1, order(1, "BUY", 1, "LMT", lmt_price=1.0), T0)) == [(1, SUBMITTED)]


def test_a_new_order_on_a_finished_parents_id_does_not_adopt_its_children() -> None:
    b = new_broker()
    _quote(b, 2.05, 2.10, 0)
    for req in bracket(1, 2, entry=2.10, take=2.50, stop=1.60):
        b.submit(1, req, T0)
    assert b.order(1, 1).status == FILLED  # type: ignore[union-attr]
    assert b.order(1, 3).status == PRE_SUBMITTED  # type: ignore[union-attr]
    b.forget_finished_ids()
    assert b.next_valid_id(1) == 4
    assert states(b.submit(1, order(1, "BUY", 1, "LMT", SPY, lmt_price=1.0), T0)) == [(1, SUBMITTED)]
    assert states(b.cancel(1, 1, T0)) == [(1, CANCELLED)]  # the children are not its children
    assert {o.order_id for o in b.open_orders(1)} == {2, 3}
    _quote(b, 2.55, 2.60)  # the take-profit fills; its sibling stop is cancelled as before
    assert b.order(1, 2).status == FILLED and b.order(1, 3).status == CANCELLED  # type: ignore[union-attr]
