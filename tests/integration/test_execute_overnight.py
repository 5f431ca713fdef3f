"""`qc execute` past the close, whole processes against `qc sim`: what the chaos run found.

The session starts at 15:52 New York at 10x. A next-day call is bought and protected; then, in order:

- the close passes: the simulated broker expires DAY orders and keeps GTC ones, so the position's
  stop and take-profit (GTC) still rest at the broker afterwards, and reconciliation after the close
  finds the position protected (no ``unprotected_outside_session`` alert);
- Redis is killed and restarted from its AOF: `qc risk` latches the account REDUCING
  (``redis_restarted``) and the executor, once a clean reconciliation against the new server is done,
  lowers exactly that latch, recorded in the transition log as the executor's; an operator's latch
  set afterwards stays;
- the gateway answers every query ~4 s late, so a reconciliation takes longer than the 10-s lease:
  the lease is renewed meanwhile and the executor keeps leading with the same fencing token;
- the lease is taken from it in the middle of such a reconciliation: it stops at once (exit 1), that
  reconciliation with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis

from qc.core import clock, keys
from qc.core.order_ref import parse
from qc.execute.cycle.lease import TTL_MS
from qc.execute.model import State
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState, escalate
from qc.runtime import fence

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    assert_broker_consistent,
    broker_orders,
    liquid_call,
    live_ask,
    make_signal,
    option_con_id,
    publish,
    start_stack,
    wait_state,
)
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 15:52", "--speed", "10", "--seed", "7", "--depth-rate", "20")
ENV = {"QC_RISK_LIMITS": "zero_dte_cutoff_min=0,price_band_pct=50,max_spread_pct=off"}
WORKING = ("Submitted", "PreSubmitted")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
HELD: dict[str, str] = {}  # the held intent's id, for the tests after the first


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute-overnight"), SIM, ENV)
    s.start("execute")
    eventually(lambda: status(s).get("state") == "trading", timeout_s=60)
    yield s
    s.close()


def status(stack: Stack) -> dict[str, str]:
    try:
        return stack.store.hgetall(keys.execution_status(ACCOUNT))
    except redis.ConnectionError:
        return {}


def token(stack: Stack) -> int:
    got = fence.holder(stack.store, ACCOUNT)
    assert isinstance(got, fence.FenceHolder), got
    return got.token


def leg_of(ref: str) -> str:
    got = parse(ref)
    return got.leg if got is not None else ""


def account_latch(stack: Stack) -> Latch:
    return latches.load(stack.store, ACCOUNT).get(latches.ACCOUNT_SCOPE, Latch())


def reconciled_twice(stack: Stack) -> None:
    """Wait for two more completed reconciliations (the second began after this call)."""
    for _ in range(2):
        before = status(stack).get("last_reconcile")

        def moved(was: str | None = before) -> bool:
            return status(stack).get("last_reconcile") not in (None, was)

        eventually(moved, timeout_s=60, every_s=0.2)


def test_a_position_held_through_the_close_keeps_its_stop_resting_at_the_broker(stack: Stack) -> None:
    row = liquid_call(stack, days=1)
    mark = max(row.mark, 0.30)  # the quote held still: nothing but the close may touch the exits
    stack.sim.ctl("pin-quote", str(option_con_id(stack, row)), f"{mark - 0.02:.2f}", f"{mark + 0.02:.2f}")
    for _ in range(5):  # SPY's zero-gamma breaker may hold REDUCING (spot hovers at the flip): then again
        eventually(lambda: all(latch.state is TradingState.ACTIVE for latch in latches.load(stack.store, ACCOUNT)
                               .values()), timeout_s=60, every_s=0.2)
        signal = make_signal(stack, row, limit=round(live_ask(stack, row) + 0.02, 2), tp_pct=5.0, stop_pct=0.99,
                             hold_min=24 * 60)
        publish(stack, signal)
        held = wait_state(stack, signal.id, "protected", "rejected", timeout_s=60)
        if held.state is State.PROTECTED:
            break
        assert all(r.startswith("TRADING_REDUCING") for r in held.reasons), held.reasons
    assert held.state is State.PROTECTED, held.reasons
    HELD["id"] = held.id
    before = {leg_of(o["orderRef"]): o for o in broker_orders(stack) if o["orderRef"].startswith(f"qc:{held.id}:")}
    assert {leg: o["tif"] for leg, o in before.items()} == {"entry": "DAY", "tp": "GTC", "stop": "GTC"}

    session = clock.session(stack.sim_now().date())
    assert session is not None and stack.sim_now() < session.close, "the stack was ready after the close"
    eventually(lambda: stack.sim_now() > session.close + timedelta(minutes=1), timeout_s=120, every_s=0.5)
    reconciled_twice(stack)  # after the close

    after = {o["orderRef"]: o for o in broker_orders(stack) if o["orderRef"].startswith(f"qc:{held.id}:")}
    exits = {leg_of(ref): o for ref, o in after.items() if o["status"] in WORKING}
    assert set(exits) == {"stop", "tp"}, after
    assert all(o["tif"] == "GTC" and o["remaining"] == held.filled_qty for o in exits.values()), exits
    got = wait_state(stack, held.id, "protected")
    assert got.state is State.PROTECTED and got.protected_qty() == held.filled_qty
    alerts = [f for _, f in stack.store.client.xrange(keys.execution_alerts().name)]
    assert not [f for f in alerts if f.get("kind") == "unprotected_outside_session"], alerts
    assert_broker_consistent(stack, [held.id])


def test_the_executor_lowers_the_redis_restart_latch_once_reconciled_and_nothing_else(stack: Stack) -> None:
    assert account_latch(stack).state is TradingState.ACTIVE
    c = stack.store.client
    c.config_set("appendonly", "yes")  # this stack's Redis started without its AOF: written now, then kept

    def aof_written() -> bool:
        p = c.info("persistence")
        return bool(p["aof_enabled"] and not p["aof_rewrite_in_progress"] and not p["aof_rewrite_scheduled"])

    eventually(aof_written, timeout_s=30, every_s=0.2)
    claimed = token(stack)
    stack.redis.appendonly = True
    stack.redis.restart()
    stack.store.client.connection_pool.disconnect()

    def lowered() -> dict[str, object] | None:
        try:
            log = latches.transitions(stack.store, ACCOUNT, limit=50)
        except redis.ConnectionError:
            return None
        return next((e for e in log if e["cause"] == "reconciled"), None)

    eventually(lowered, timeout_s=120, every_s=0.5)
    entry = lowered()
    assert entry is not None and entry["from"] == "REDUCING" and entry["to"] == "ACTIVE", entry
    assert str(entry["by"]).startswith("executor:") and "Redis restart" in str(entry["reason"]), entry
    log = latches.transitions(stack.store, ACCOUNT, limit=50)
    trips = [e for e in log if e["cause"] == "redis_restarted"]
    assert trips and log.index(trips[0]) > log.index(entry), log  # tripped by risk first, then lowered
    assert account_latch(stack).state is TradingState.ACTIVE
    assert token(stack) == claimed  # the same leader all through
    assert "id" in HELD, "the first test held no position: its failure is the one to read"
    assert_broker_consistent(stack, [HELD["id"]])

    # an operator's REDUCING latch is not the executor's to lower, however many reconciliations pass
    latches.update(stack.store, ACCOUNT, latches.ACCOUNT_SCOPE,
                   lambda cur: escalate(cur, TradingState.REDUCING, "operator_halt", "operator:test", "look",
                                        stack.sim_now()), stack.sim_now())
    reconciled_twice(stack)
    latch = account_latch(stack)
    assert (latch.state, latch.cause) == (TradingState.REDUCING, "operator_halt")
    latches.update(stack.store, ACCOUNT, latches.ACCOUNT_SCOPE,
                   lambda cur: Latch(TradingState.ACTIVE, "resume", "operator:test", "test over", stack.sim_now()),
                   stack.sim_now())


def test_a_reconciliation_longer_than_the_lease_keeps_the_lease(stack: Stack) -> None:
    proc = stack.procs["execute"]
    lease_key = keys.execution_lease(ACCOUNT).name
    holder, claimed = stack.store.client.get(lease_key), token(stack)
    stack.sim.ctl("delay-end-markers", "--seconds", "4")  # every query's answer ends 4 s late: ≥ 12 s a run
    stack.sim.ctl("drop-sockets")  # the executor's next connection meets the delay

    def slow_periodic() -> bool:  # one the management loop ran (a connection's runs in the connection's task)
        s = status(stack)
        return (s.get("state"), s.get("why")) == ("trading", "periodic") \
            and int(s.get("last_reconcile_ms", "0")) > TTL_MS

    eventually(lambda: proc.poll() is not None or slow_periodic(), timeout_s=120, every_s=0.05)
    assert proc.poll() is None, stack.log("execute")[-3000:]  # a lease lapsed meanwhile fenced it off: exit 1
    ended = status(stack).get("last_reconcile")
    eventually(lambda: proc.poll() is not None or status(stack).get("last_reconcile") not in (None, ended),
               timeout_s=60, every_s=0.05)  # and it leads on: the next one ends too
    assert proc.poll() is None, stack.log("execute")[-3000:]
    assert stack.store.client.get(lease_key) == holder
    assert token(stack) == claimed


def test_a_lease_lost_in_the_middle_of_a_reconciliation_stops_the_executor(stack: Stack) -> None:
    proc = stack.procs["execute"]
    eventually(lambda: status(stack).get("state") == "reconciling", timeout_s=60, every_s=0.05)
    stack.store.client.set(keys.execution_lease(ACCOUNT).name, "1@elsewhere:0", px=60_000)  # taken by another
    eventually(lambda: proc.poll() is not None, timeout_s=30, every_s=0.1)
    assert proc.returncode == 1
    fenced = "the execution lease lapsed and another process holds it"
    assert fenced in stack.log("execute")
    assert "reconciled (" not in stack.log("execute").split(fenced)[-1]  # that reconciliation was stopped too
    stack.procs.pop("execute")
    stack.sim.ctl("delay-end-markers", "--seconds", "0")
