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
from collections.abc import Iterator

import pytest

from qc.core import clock, keys

from .conftest import eventually
from .execute_harness import (
    ACCOUNT,
    assert_broker_consistent,
    liquid_call,
    make_signal,
    marketable,
    publish,
    start_stack,
    trading,
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


def start_executor(stack: Stack, n: int) -> None:
    stack.store.hset(keys.execution_status(ACCOUNT), {"state": "starting"})
    stack.start(f"execute#{n}")
    eventually(lambda: trading(stack.store), timeout_s=60, every_s=0.05)


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
    states = assert_broker_consistent(stack, ids)
    print("intent states after the kills:", dict(states))
    assert states["protected"] >= KILLS // 2, states  # most reached the broker before the kill
