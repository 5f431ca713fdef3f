"""`qc execute` against `qc sim` with the real ib_async, whole processes: signal → bracket → fill → protected.

One stack per module (the data workers take a minute to publish positioning); each test publishes
its own signal for a near-the-money call and follows the intent through Redis and the broker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from qc.core import keys
from qc.execute.codec import fill_from_redis
from qc.execute.model import Fill, Intent, State
from qc.risk.position_codec import PositionRecord, position_from_redis

from .conftest import eventually
from .execute_harness import ACCOUNT, intent, liquid_call, make_signal, publish, start_stack, wait_state
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 10:30", "--speed", "2", "--seed", "7", "--depth-rate", "20")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("execute"), SIM)
    s.start("execute")
    eventually(lambda: s.store.hget(keys.execution_status(ACCOUNT), "state") == "trading", timeout_s=60)
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
    signal = make_signal(stack, row, limit=round(row.ask * 1.02 + 0.01, 2))
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
