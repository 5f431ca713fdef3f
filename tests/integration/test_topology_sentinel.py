"""A Sentinel failover in the middle of a trading session: nothing acknowledged lost, no worker restarted.

A real Sentinel group (primary with AOF, replica, three sentinels, quorum 2) and a stack that reaches
Redis only through ``redis+sentinel://``: `qc sim`, `qc stream`, `qc chains`, `qc analytics`, `qc risk`
and `qc execute`. The executor trades (buys at the ask: filled, bracketed), then the primary is
``kill -9``-ed. Proven, after the sentinels promote the replica:

- every worker carries on by itself: each one's heartbeat is written again after the promotion and no
  process exited (nothing restarted them; nothing could);
- the executor notices that Redis changed under it (run id / replication id) and reconciles with the broker
  before trading on;
- everything the broker has is in Redis: each of qc's orders at the broker (by order reference) belongs to a
  recorded intent, each execution is recorded once (by execId), each position equals qc's record, and no
  order reference is at the broker twice;
- `qc risk` saw the new server too and latched the account REDUCING (by design: README, Risk); the executor
  lowers that latch itself after a clean reconciliation against the new primary (no operator), and a new
  signal trades to a protected bracket through it.

The primary dies right after a signal was published, while the executor takes it: that signal either
trades (and is then held to the same checks) or never reached the replica (asynchronous replication)
and is not traded at all; an order at the broker that Redis does not know fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from qc.core import clock, keys
from qc.core.errors import StoreUnavailable
from qc.core.order_ref import parse
from qc.execute.model import Intent
from qc.risk.cycle import latches
from qc.risk.state import TradingState

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    EXEC_ENV,
    assert_broker_consistent,
    broker_orders,
    intent,
    liquid_call,
    make_signal,
    marketable,
    publish,
    wait_state,
)
from .topology_harness import SentinelGroup, TopologyStack, trade

SIM = ("--start", "2026-12-03 10:30", "--speed", "2", "--seed", "7", "--depth-rate", "20")
WORKERS = ("stream", "chains", "analytics", "risk", "execute")
HEARTBEATS = ("ibkr_ingestion", "chains", "analytics", "risk", "execute")
pytestmark = [pytest.mark.topology, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    g = SentinelGroup(tmp_path_factory.mktemp("sentinel"))
    g.start()
    yield g
    g.close()


@pytest.fixture(scope="module")
def stack(group: SentinelGroup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TopologyStack]:
    s = TopologyStack(tmp_path_factory.mktemp("sentinel-stack"), group.url, SIM, "SPY",
                      {**EXEC_ENV, "QC_EXECUTE_QTY": "1"})
    try:
        s.start_workers(WORKERS, ("SPY",))
        yield s
    finally:
        s.close()


def beats(s: TopologyStack) -> dict[str, float]:
    out = {}
    for name in HEARTBEATS:
        raw = s.store.get(keys.heartbeat(name))
        out[name] = float(raw) if raw else 0.0
    return out


def reachable(s: TopologyStack) -> bool:
    try:
        s.store.ping()
    except StoreUnavailable:
        return False
    return True


def test_a_primary_killed_mid_session_loses_nothing_and_nobody_restarts(stack: TopologyStack,
                                                                        group: SentinelGroup) -> None:
    before = [trade(stack), trade(stack)]
    row = liquid_call(stack)
    mid = make_signal(stack, row, limit=marketable(stack, row))
    publish(stack, mid)  # and at once, while the executor takes it: SIGKILL the primary
    old = group.kill_primary()
    killed_at = clock.wall_epoch()
    eventually(lambda: group.promoted(old) is not None, timeout_s=30, every_s=0.05)
    promoted_at = clock.wall_epoch()
    print(f"failover: primary {old} killed, replica promoted in {promoted_at - killed_at:.1f} s")

    eventually(lambda: reachable(stack), timeout_s=20)
    try:
        eventually(lambda: min(beats(stack).values()) > promoted_at, timeout_s=30, every_s=0.2)
    except AssertionError:
        late = [n for n, at in beats(stack).items() if at <= promoted_at]
        tails = {n: stack.log(v).splitlines()[-15:] for n, v in zip(HEARTBEATS, WORKERS, strict=True) if n in late}
        raise AssertionError(f"no heartbeat since the failover from {late}: {tails}") from None
    assert {n: c for n, c in stack.alive().items() if c is not None} == {}, "a worker exited"
    eventually(lambda: "Redis changed under us" in stack.log("execute"), timeout_s=20)
    sim_promoted = stack.sim_now()

    def reconciled() -> bool:
        status = stack.store.hgetall(keys.execution_status(ACCOUNT))
        last = status.get("last_reconcile")
        return status.get("state") == "trading" and last is not None and datetime.fromisoformat(last) > sim_promoted

    eventually(reconciled, timeout_s=30, every_s=0.2)

    # everything the broker has is in Redis: fills once each, positions equal, no duplicate reference, every
    # order of qc's at the broker (by reference) in a recorded intent
    # the signal published as the primary died: traded if its stream entry reached the replica (even when the
    # executor had taken delivery from the old primary and failed to write its intent: it reads it again)
    stream = keys.signals_execution("SPY").name
    survived = any(fields.get("id") == mid.id for _, fields in stack.store.client.xrange(stream))
    if survived:
        wait_state(stack, mid.id, "protected", "closed", "rejected", timeout_s=30)
    print(f"the signal published as the primary died: {'traded' if survived else 'lost with the primary'}")
    ids = [*(i.id for i in before), *([mid.id] if survived else [])]
    states = assert_broker_consistent(stack, ids)
    assert states["protected"] + states["closed"] + states["rejected"] == len(ids), states
    refs = {str(ref) for o in broker_orders(stack) if (ref := parse(o["orderRef"])) is not None}
    recorded = set()
    for i in ids:
        got = intent(stack, i)
        assert isinstance(got, Intent), got
        recorded |= {leg.order_ref(got.id) for leg in got.orders}
    assert refs <= recorded, f"orders at the broker that Redis does not know: {sorted(refs - recorded)}"

    # `qc risk` saw a new server too: REDUCING (no new risk) until the executor has reconciled cleanly against
    # it, which lowers that latch by itself (README, Risk); then trading goes on through the new primary
    def causes() -> list[object]:  # the account's transitions, oldest first
        log = latches.transitions(stack.store, ACCOUNT, 50)
        return [t.get("cause") for t in reversed(log) if t.get("scope") == latches.ACCOUNT_SCOPE]

    eventually(lambda: "redis_restarted" in causes(), timeout_s=30, every_s=0.2)

    def lowered_by_executor() -> bool:
        latch = latches.load(stack.store, ACCOUNT).get(latches.ACCOUNT_SCOPE)
        return latch is not None and latch.state is TradingState.ACTIVE and latch.by.startswith("executor:")

    eventually(lowered_by_executor, timeout_s=90, every_s=0.5)  # at most one periodic reconciliation later
    assert causes()[-2:] == ["redis_restarted", "reconciled"], causes()
    trade(stack)
    assert {n: c for n, c in stack.alive().items() if c is not None} == {}, "a worker exited"
