"""`qc execute` against `qc sim` with the real ib_async, whole processes: signal → bracket → fill → protected.

One stack per module (the data workers take a minute to publish positioning); each test publishes
its own signal for a near-the-money call and follows the intent through Redis and the broker.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from qc.core import keys
from qc.execute.codec import fill_from_redis
from qc.execute.model import Fill, Intent, State
from qc.risk.codec import HaltRequest
from qc.risk.position_codec import PositionRecord, position_from_redis

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    ROOT,
    broker_orders,
    intent,
    liquid_call,
    make_signal,
    marketable,
    publish,
    qc_json,
    sim_ctl_json,
    start_stack,
    trading,
    wait_state,
)
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 10:30", "--speed", "2", "--seed", "7", "--depth-rate", "20")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute"), SIM, {"QC_EXECUTE_QTY": "2"})
    s.start("execute")
    eventually(lambda: trading(s.store), timeout_s=60)
    yield s
    s.close()


def fills_of(stack: Stack, intent_id: str) -> list[Fill]:
    raw = stack.store.client.hgetall(keys.fills("SPY").name)
    got = [fill_from_redis(v, key=k) for k, v in raw.items()]
    return [f for f in got if isinstance(f, Fill) and f.intent_id == intent_id]


def position(stack: Stack, con_id: int) -> PositionRecord | None:
    key = keys.position_open(ACCOUNT, con_id)
    got = position_from_redis(stack.store.hgetall(key), key=key.name)
    return got if isinstance(got, PositionRecord) else None


def test_a_signal_becomes_a_protected_bracket(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
    assert got.state is State.PROTECTED, (got.reasons, got.history)
    entry, tp, stop = got.current("entry"), got.current("tp"), got.current("stop")
    assert entry is not None and tp is not None and stop is not None
    assert entry.status == "Filled" and entry.filled == got.quantity
    assert tp.parent_id == stop.parent_id == entry.order_id and tp.oca_group == stop.oca_group != ""
    assert tp.quantity == stop.quantity == got.filled_qty and stop.live and tp.live
    assert stop.aux is not None and stop.aux < got.entry_avg < (tp.limit or 0)
    eventually(lambda: len(fills_of(stack, signal.id)) >= 1, timeout_s=10)
    assert sum(f.quantity for f in fills_of(stack, signal.id)) == got.filled_qty
    pos = position(stack, got.con_id)
    assert pos is not None and pos.position.quantity == got.filled_qty
    assert abs(pos.position.avg_cost - got.entry_avg) < 1e-6


def test_a_signal_delivered_twice_is_one_intent(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=round(row.bid * 0.95, 2))  # below the bid, inside the band: rests
    publish(stack, signal)
    publish(stack, signal)
    got = wait_state(stack, signal.id, "working", "rejected", timeout_s=60)
    assert got.state is State.WORKING, (got.reasons, got.history)
    eventually(lambda: int(stack.store.hget(keys.execution_metrics(), "duplicates") or 0) >= 1, timeout_s=10)
    again = intent(stack, signal.id)
    assert isinstance(again, Intent) and len(again.orders) == 3


def books_agree(stack: Stack, con_id: int) -> bool:
    """qc's position in ``con_id`` equals the broker's (every test trades the same near-the-money call, so a
    pinned quote can trip earlier tests' stops too: the two books must agree, whatever closed)."""
    pos = position(stack, con_id)
    ours = 0 if pos is None else pos.position.quantity
    theirs = int(sum(p["qty"] for p in sim_ctl_json(stack, "positions")["positions"] if p["conId"] == con_id))
    return ours == theirs


def test_a_rejection_is_counted_and_recorded(stack: Stack) -> None:
    before = int(stack.store.get(keys.orders_failed_count()) or 0)
    stack.sim.ctl("reject-next", "no trading permissions")
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "rejected", "protected", timeout_s=60)
    assert got.state is State.REJECTED, got.history
    assert any("201" in r for r in got.reasons), got.reasons
    assert int(stack.store.get(keys.orders_failed_count()) or 0) == before + 1


def test_partial_fills_keep_the_stop_equal_to_the_filled_quantity(stack: Stack) -> None:
    stack.sim.ctl("partial-next", "0.5")
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
    assert got.state is State.PROTECTED, got.history
    assert any(t.state is State.PARTIAL for t in got.history), got.history
    stop = got.current("stop")
    assert stop is not None and stop.quantity - stop.filled == got.open_qty > 0


def pin(stack: Stack, con_id: int, bid: float, ask: float) -> None:
    stack.sim.ctl("pin-quote", str(con_id), f"{bid:.2f}", f"{ask:.2f}")


def test_the_take_profit_closes_the_position(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
    assert got.state is State.PROTECTED, got.history
    tp = got.current("tp")
    assert tp is not None and tp.limit is not None
    try:
        pin(stack, got.con_id, tp.limit + 0.05, tp.limit + 0.10)
        done = wait_state(stack, signal.id, "closed", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(got.con_id))
    assert done.exit_reason == "take_profit" and done.exit_qty == done.filled_qty
    assert done.exit_avg >= tp.limit
    eventually(lambda: books_agree(stack, got.con_id), timeout_s=10)


def test_the_stop_closes_the_position(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
    stop = got.current("stop")
    assert got.state is State.PROTECTED and stop is not None and stop.aux is not None, got.history
    try:
        pin(stack, got.con_id, max(0.01, stop.aux - 0.10), stop.aux - 0.05)
        done = wait_state(stack, signal.id, "closed", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(got.con_id))
    assert done.exit_reason == "stop" and done.exit_qty == done.filled_qty
    eventually(lambda: books_agree(stack, got.con_id), timeout_s=10)


def test_a_trailing_stop_follows_a_rising_premium_and_triggers_on_the_way_down(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row), tp_pct=3.0, trail_pct=20.0)
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
    stop = got.current("stop")
    assert got.state is State.PROTECTED and stop is not None and stop.aux is not None, got.history
    first = stop.aux
    high = round(got.entry_avg * 1.6, 2)
    try:
        pin(stack, got.con_id, high, high + 0.05)

        def trailed() -> bool:
            now = intent(stack, signal.id)
            s = now.current("stop") if isinstance(now, Intent) else None
            return s is not None and s.aux is not None and s.aux >= round(high * 0.8, 2) - 0.011

        eventually(trailed, timeout_s=30)
        moved = intent(stack, signal.id)
        assert isinstance(moved, Intent)
        new_stop = moved.current("stop")
        assert new_stop is not None and new_stop.aux is not None and new_stop.aux > first
        broker_stop = [o for o in broker_orders(stack) if o["orderRef"] == new_stop.order_ref(signal.id)]
        assert broker_stop and abs(broker_stop[0]["auxPrice"] - new_stop.aux) < 1e-9, broker_stop
        low = round(new_stop.aux - 0.10, 2)
        pin(stack, got.con_id, low, low + 0.05)
        done = wait_state(stack, signal.id, "closed", timeout_s=60)
    finally:
        stack.sim.ctl("unpin", str(got.con_id))
    assert done.exit_reason == "stop" and done.exit_avg > first  # sold above where a fixed stop would have


def test_the_time_stop_exits_at_a_marketable_price_keeping_the_stop_until_then(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=marketable(stack, row), hold_min=0.5)  # 30 simulated seconds
    publish(stack, signal)
    got = wait_state(stack, signal.id, "protected", "exiting", "closed", "rejected", timeout_s=60)
    assert got.state is not State.REJECTED, got.reasons
    done = wait_state(stack, signal.id, "closed", timeout_s=90)
    assert done.exit_reason == "time_stop" and done.exit_qty == done.filled_qty, done.history
    assert any(t.state is State.EXITING for t in done.history), done.history
    eventually(lambda: books_agree(stack, done.con_id), timeout_s=10)


def test_a_rejection_is_on_the_signals_lineage(stack: Stack) -> None:
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=round(row.bid * 0.5, 2))  # far under the mark: PRICE_BAND
    publish(stack, signal)
    got = wait_state(stack, signal.id, "rejected", timeout_s=60)
    assert any(r.startswith("PRICE_BAND") for r in got.reasons), got.reasons
    explained = qc_json(stack, "signals", "explain", signal.id)
    execution = explained["lineage"]["execution"]
    assert execution["state"] == "rejected" and any("PRICE_BAND" in r for r in execution["reasons"]), execution


def test_risk_halt_is_acknowledged_by_the_executor_which_cancels_its_entries_itself(stack: Stack) -> None:
    """Last in the module: the account stays halted until the resume at the end. The entry rests below the
    bid, but earlier tests move this option's premium: if it fills first, the halt must keep its stop."""
    row = liquid_call(stack)
    signal = make_signal(stack, row, limit=round(row.bid * 0.95, 2))
    publish(stack, signal)
    got = wait_state(stack, signal.id, "working", "protected", "rejected", timeout_s=60)
    assert got.state in (State.WORKING, State.PROTECTED), (got.reasons, got.history)
    env = {**stack.env, "QC_RISK_HALT_ACK_S": "20"}
    halted = subprocess.run([sys.executable, "-m", "qc", "risk", "halt", "--reason", "drill"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=90)
    assert halted.returncode == 0, halted.stdout + halted.stderr
    assert "qc execute acknowledged" in halted.stdout
    request = HaltRequest.from_redis(stack.store.get(keys.risk_halt_request(ACCOUNT)), key="halt")
    assert isinstance(request, HaltRequest)
    assert stack.store.get(keys.execute_halt_ack(ACCOUNT)) == request.id

    def settled() -> bool:
        it = intent(stack, signal.id)
        return isinstance(it, Intent) and not it.live_orders("entry") and it.state in (State.CANCELLED,
                                                                                      State.PROTECTED)
    eventually(settled, timeout_s=30)
    after = intent(stack, signal.id)
    assert isinstance(after, Intent)
    if after.state is State.PROTECTED:  # filled before the cancel: protective orders are never cancelled
        assert after.protected_qty() == after.open_qty > 0
    assert stack.procs["execute"].poll() is None  # acknowledged: not fenced off
    resumed = subprocess.run([sys.executable, "-m", "qc", "risk", "resume", "--reason", "drill over"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
