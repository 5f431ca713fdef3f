"""`qc execute` through broker faults, whole processes against `qc sim`: the gateway drops, loses connectivity,
restarts and reissues order ids; a second executor stands by, takes over, and fences the stale leader.

Every test ends with the broker-side audit (``assert_broker_consistent``): no order reference twice,
no option position without qc's stops for all of it, every execution recorded once, qc's positions
equal to the broker's.
"""

from __future__ import annotations

import signal as signals
from collections.abc import Iterator

import pytest
from ib_async import IB, LimitOrder, Option

from qc.core import clock, keys
from qc.execute.model import Intent, State
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    EXECUTOR_CLIENT_ID,
    assert_broker_consistent,
    broker_orders,
    intent,
    liquid_call,
    live_ask,
    make_signal,
    marketable,
    publish,
    start_stack,
    trading,
    wait_state,
)
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 10:30", "--speed", "1", "--seed", "29", "--depth-rate", "20")
SETTLED = ("protected", "lost", "rejected", "cancelled", "closed")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute-faults"), SIM)
    s.start("execute")
    eventually(lambda: trading(s.store), timeout_s=60)
    yield s
    s.close()


def account_active(stack: Stack) -> bool:
    return latches.load(stack.store, ACCOUNT).get("account", Latch()).state is TradingState.ACTIVE


def status(stack: Stack, field: str) -> str:
    return stack.store.hget(keys.execution_status(ACCOUNT), field) or ""


def resting(stack: Stack) -> tuple[str, int, float]:
    """A working entry a little under the ask (inside the price band); returns (intent id, conId, its limit)."""
    eventually(lambda: account_active(stack), timeout_s=60)  # risk holds REDUCING while IB was down
    row = liquid_call(stack)
    limit = round(live_ask(stack, row) * 0.95, 2)
    signal = make_signal(stack, row, limit=limit)
    publish(stack, signal)
    got = wait_state(stack, signal.id, "working", "rejected", timeout_s=60)
    assert got.state is State.WORKING, got.history
    return signal.id, got.con_id, limit


def test_a_gateway_drop_mid_order_is_resolved_by_reconciliation(stack: Stack) -> None:
    ids = []
    for delay in (0.0, 0.005, 0.02):
        eventually(lambda: account_active(stack), timeout_s=60)
        row = liquid_call(stack)
        signal = make_signal(stack, row, limit=marketable(stack, row))
        publish(stack, signal)
        ids.append(signal.id)
        clock.real_sleep(delay)
        stack.sim.ctl("drop-sockets")
        got = wait_state(stack, signal.id, *SETTLED, timeout_s=60)
        assert got.state is not State.UNKNOWN
        eventually(lambda: trading(stack.store), timeout_s=60)
    states = assert_broker_consistent(stack, ids)
    assert set(states) <= {"protected", "lost", "rejected"}, states
    for i in ids:  # a refusal may only be risk's, while it held REDUCING for the broker's outage
        final = intent(stack, i)
        assert isinstance(final, Intent)
        assert final.state is not State.REJECTED or all(r.startswith("TRADING_REDUCING") for r in final.reasons), final


def test_fills_while_the_gateway_is_unreachable_are_recovered(stack: Stack) -> None:
    intent_id, con_id, limit = resting(stack)
    stack.sim.ctl("refuse", "4")
    stack.sim.ctl("drop-sockets")
    eventually(lambda: status(stack, "state") == "disconnected", timeout_s=10)
    try:
        stack.sim.ctl("pin-quote", str(con_id), f"{limit - 0.05:.2f}", f"{limit - 0.01:.2f}")  # the entry fills
        eventually(lambda: any(o["orderRef"] == f"qc:{intent_id}:entry:0" and o["status"] == "Filled"
                               for o in broker_orders(stack)), timeout_s=10)
        got = wait_state(stack, intent_id, "protected", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(con_id))
    assert got.filled_qty == got.quantity and got.entry_avg <= limit
    assert_broker_consistent(stack, [intent_id])


def test_connectivity_lost_with_data_lost_recovers_the_fills_made_meanwhile(stack: Stack) -> None:
    intent_id, con_id, limit = resting(stack)
    reconciled = status(stack, "last_reconcile")
    stack.sim.ctl("connectivity-lost", "2", "--data-lost")
    try:
        stack.sim.ctl("pin-quote", str(con_id), f"{limit - 0.05:.2f}", f"{limit - 0.01:.2f}")
        got = wait_state(stack, intent_id, "protected", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(con_id))
    eventually(lambda: status(stack, "last_reconcile") != reconciled, timeout_s=30)
    assert got.filled_qty == got.quantity
    assert_broker_consistent(stack, [intent_id])


def everything(stack: Stack) -> dict[str, tuple[str, int, int, float]]:
    """Every intent's (state, filled, exited, entry average), by id."""
    out = {}
    for intent_id in stack.store.client.zrange(keys.order_intents_log().name, 0, -1):
        got = intent(stack, intent_id)
        if isinstance(got, Intent):
            out[intent_id] = (got.state.value, got.filled_qty, got.exit_qty, got.entry_avg)
    return out


def test_a_gateway_restart_that_reissues_order_ids_does_not_confuse_two_orders(stack: Stack) -> None:
    eventually(lambda: account_active(stack), timeout_s=60)
    row = liquid_call(stack)
    first = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, first)
    done = wait_state(stack, first.id, "protected", timeout_s=60)
    tp = done.current("tp")
    assert tp is not None and tp.limit is not None
    try:  # close it: its three order ids are now finished, the highest ones this client used
        stack.sim.ctl("pin-quote", str(done.con_id), f"{tp.limit + 0.05:.2f}", f"{tp.limit + 0.10:.2f}")
        wait_state(stack, first.id, "closed", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(done.con_id))
    before = everything(stack)
    stack.sim.ctl("restart-gateway", "--down", "1")
    eventually(lambda: status(stack, "state") != "trading", timeout_s=10)
    eventually(lambda: trading(stack.store), timeout_s=60)
    eventually(lambda: account_active(stack), timeout_s=60)  # risk latched REDUCING while IB was down
    second = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, second)
    again = wait_state(stack, second.id, "protected", timeout_s=60)
    ids = {o.order_id for o in again.orders}
    mine = {o.order_ref(second.id) for o in again.orders}
    reused = [o for o in broker_orders(stack)
              if o["clientId"] == EXECUTOR_CLIENT_ID and o["orderId"] in ids and o["orderRef"] not in mine]
    assert reused, f"the gateway did not reissue any of {sorted(ids)}"
    after = everything(stack)
    assert {k: v for k, v in after.items() if k in before} == before  # no earlier intent took the new fills
    assert again.filled_qty == again.quantity and again.open_qty == again.quantity
    assert_broker_consistent(stack, list(after))


def test_a_standby_takes_over_and_the_stale_leader_is_fenced(stack: Stack) -> None:
    leader = stack.procs["execute"]
    stack.start("execute#standby")
    eventually(lambda: status(stack, "standby") != "", timeout_s=30)
    standby_id = status(stack, "standby")
    leader.send_signal(signals.SIGSTOP)  # a paused leader: its lease lapses, the standby takes the account
    try:
        eventually(lambda: status(stack, "leader") == standby_id, timeout_s=30)
    finally:
        leader.send_signal(signals.SIGCONT)  # it wakes with a stale token: its next write is refused
    assert leader.wait(timeout=60) == 1
    stack.procs.pop("execute")
    eventually(lambda: trading(stack.store) and account_active(stack), timeout_s=60)
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", timeout_s=60)
    assert got.token > 0
    assert_broker_consistent(stack, [signal.id])


def test_a_position_the_broker_reports_and_qc_cannot_explain_locks_the_contract(stack: Stack) -> None:
    eventually(lambda: account_active(stack), timeout_s=60)
    row = liquid_call(stack)
    first = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, first)
    held = wait_state(stack, first.id, "protected", timeout_s=60)
    manual_trade(stack, held.con_id, "BUY", round(live_ask(stack, row) + 0.05, 2))
    eventually(lambda: locked(stack, held.con_id), timeout_s=30)
    alerts = [f["kind"] for _, f in stack.store.client.xrange(keys.execution_alerts().name)]
    assert "position_mismatch" in alerts
    second = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, second)
    refused = wait_state(stack, second.id, "rejected", "protected", timeout_s=60)
    assert refused.state is State.REJECTED and refused.reasons[0].startswith("POSITION_LOCKED"), refused.reasons
    manual_trade(stack, held.con_id, "SELL", 0.01)  # the operator undoes it: the books agree, the lock lifts
    eventually(lambda: not locked(stack, held.con_id), timeout_s=30)


def locked(stack: Stack, con_id: int) -> bool:
    return str(con_id) in stack.store.client.hgetall(keys.execution_locked(ACCOUNT).name)


def manual_trade(stack: Stack, con_id: int, side: str, limit: float) -> None:
    """One contract traded on the account by another client (a manual ticket): not qc's order."""
    manual = IB()
    manual.connect("127.0.0.1", stack.sim.port("ib"), clientId=33, timeout=10)
    try:
        option = Option(conId=con_id, exchange="SMART")
        manual.qualifyContracts(option)
        trade = manual.placeOrder(option, LimitOrder(side, 1, limit))
        deadline = clock.monotonic() + 30
        while trade.orderStatus.status != "Filled" and clock.monotonic() < deadline:
            manual.sleep(0.05)
        assert trade.orderStatus.status == "Filled", trade.orderStatus
    finally:
        manual.disconnect()
