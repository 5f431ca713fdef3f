"""`kill -9` of `qc execute` at seeded random moments of an order's life, then a restart: nothing duplicated or naked.

For each of ``KILLS`` rounds a marketable signal is published and the executor is SIGKILLed after a
seeded random delay (0–60 ms: before the socket write, between the legs, before the ack, between the
entry's fill and the children's activation), then started again. After every round the restarted
executor must settle the intent (protected, or lost/rejected/cancelled when nothing reached the
broker). At the end, at the simulated broker (read with `qc sim ctl`, as an operator would):

- 0 duplicate orders: every qc order reference appears once;
- 0 positions without a full protective stop: each option position qc holds has working stops of
  qc's for all of it;
- every execution of qc's orders recorded once in Redis (the fills hash is keyed by execId), and
  qc's positions equal the broker's.
"""

from __future__ import annotations

import random
import signal as signals
from collections import Counter
from collections.abc import Iterator

import pytest

from qc.core import clock, keys
from qc.core.order_ref import parse
from qc.execute.codec import fill_from_redis
from qc.execute.model import Fill, Intent
from qc.risk.position_codec import PositionRecord, position_from_redis

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    broker_orders,
    intent,
    liquid_call,
    make_signal,
    marketable,
    publish,
    sim_ctl_json,
    start_stack,
    wait_state,
)
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 10:30", "--speed", "1", "--seed", "13", "--depth-rate", "20")
KILLS = 20
SEED = 20261204
SETTLED = ("protected", "lost", "rejected", "cancelled", "closed")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute-crash"), SIM)
    yield s
    s.close()


def trading(stack: Stack) -> bool:
    return stack.store.hget(keys.execution_status(ACCOUNT), "state") == "trading"


def start_executor(stack: Stack, n: int) -> None:
    stack.store.hset(keys.execution_status(ACCOUNT), {"state": "starting"})
    stack.start(f"execute#{n}")
    eventually(lambda: trading(stack), timeout_s=60, every_s=0.05)


def test_kill_minus_nine_at_random_moments_never_duplicates_or_leaves_a_position_naked(stack: Stack) -> None:
    rng = random.Random(SEED)
    ids: list[str] = []
    start_executor(stack, 0)
    for n in range(KILLS):
        row = liquid_call(stack)
        sig = make_signal(stack, row, limit=marketable(stack, row))
        delay = rng.uniform(0.0, 0.06)
        publish(stack, sig)
        ids.append(sig.id)
        clock.real_sleep(delay)  # the seeded moment: the kill lands wherever the executor then is
        proc = stack.procs.pop(f"execute#{n}")
        proc.send_signal(signals.SIGKILL)
        proc.wait()
        start_executor(stack, n + 1)
        wait_state(stack, sig.id, *SETTLED, timeout_s=60)
    stack.stop(f"execute#{KILLS}")
    print(f"{KILLS} kills, delays seeded {SEED}")
    intents = [intent(stack, i) for i in ids]
    assert all(isinstance(i, Intent) for i in intents), intents
    states = Counter(i.state.value for i in intents if isinstance(i, Intent))
    print("intent states after the kills:", dict(states))
    assert states["protected"] >= KILLS // 2, states  # most reached the broker before the kill

    orders = broker_orders(stack)
    refs = Counter(o["orderRef"] for o in orders if parse(o["orderRef"]))
    assert [r for r, k in refs.items() if k > 1] == [], "duplicate orders at the broker"
    mine = [ref for ref in (parse(r) for r in refs) if ref is not None and ref.intent in ids]
    assert len(mine) >= 3 * states["protected"]

    positions = {p["conId"]: p for p in sim_ctl_json(stack, "positions")["positions"] if p["secType"] == "OPT"}
    working = [o for o in orders if o["status"] in ("Submitted", "PreSubmitted") and parse(o["orderRef"])]
    for con_id, p in positions.items():
        if p["qty"] == 0:
            continue
        stops = [o for o in working if o["conId"] == con_id and getattr(parse(o["orderRef"]), "leg", "") == "stop"]
        stop_qty = sum(o["remaining"] for o in stops)
        assert stop_qty == abs(p["qty"]), f"conId {con_id}: {p['qty']} held, {stop_qty} under stops"

    executions = [e for e in sim_ctl_json(stack, "executions")["executions"] if parse(e["orderRef"])]
    raw = stack.store.client.hgetall(keys.fills("SPY").name)
    fills = [fill_from_redis(v, key=k) for k, v in raw.items()]
    recorded = Counter(f.exec_id for f in fills if isinstance(f, Fill))
    assert {e["execId"] for e in executions} <= set(recorded), "a fill of qc's orders was not recorded"
    assert max(recorded.values(), default=1) == 1

    for con_id, p in positions.items():
        key = keys.position_open(ACCOUNT, con_id)
        ours = position_from_redis(stack.store.hgetall(key), key=key.name)
        assert isinstance(ours, PositionRecord) and ours.position.quantity == p["qty"], (con_id, p, ours)
