"""`qc risk halt` against the simulated gateway with a hung executor: the out-of-band kill switch.

A stand-in executor (``standin_executor``: the real ib_async, the executor's client id, qc's order
references) places two working entries, a filled entry with its stop and take-profit, and two
orders that are not qc's, claims the account's fence, and is then frozen with SIGSTOP. `qc risk
halt` (a real `python -m qc` process) must latch HALTED, fence the executor off, end it, connect
as its client id and cancel exactly the entries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ib_async import LimitOrder, Stock

from qc.core import clock, keys
from qc.core.clock import SimAnchor
from qc.core.order_ref import OrderRef
from qc.risk.codec import latch_from_redis
from qc.risk.state import Latch, TradingState
from qc.runtime import fence
from qc.runtime.codec import SimClockAnchor
from qc.runtime.store import Store
from tests.integration.ib_sim_harness import ACCOUNT as ACCOUNT_CODE
from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    SPEED,
    Gateway,
    client_loop_fixture,
    gateway_fixture,
    ib_eventually,
)

from .conftest import RedisServer

ROOT = Path(__file__).parents[2]
EXECUTOR_CLIENT_ID = 7
ACCOUNT_SCOPE = "default"


def qc_env(redis_url: str, gateway: Gateway, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return {**env, "QC_REDIS_URL": redis_url, "QC_IB_PORT": str(gateway.port), "QC_IB_HOST": "127.0.0.1",
            "QC_EXECUTE_CLIENT_ID": str(EXECUTOR_CLIENT_ID), "QC_RISK_HALT_ACK_S": "1",
            "QC_DATA_DIR": str(tmp_path / "var"), "QC_SYMBOLS": "SPY,QQQ", **extra}


def qc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qc", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


Executor = tuple[subprocess.Popen[str], dict[str, int]]


@pytest.fixture
def executor(gateway: Gateway, redis_server: RedisServer, store: Store) -> Iterator[Executor]:
    spot = gateway.call(lambda: gateway.model.spot("SPY"))
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.standin_executor", str(gateway.port),
                             redis_server.url, ACCOUNT_SCOPE, str(EXECUTOR_CLIENT_ID), repr(spot)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until it placed everything (or died)
    if not line:
        proc.wait(10)
        pytest.fail(f"stand-in executor died: {proc.stderr.read() if proc.stderr else ''}")
    yield proc, json.loads(line)["orders"]
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def status(gateway: Gateway, client_id: int, order_id: int) -> str:
    snap = gateway.call(lambda: gateway.broker.order(client_id, order_id))
    assert snap is not None, (client_id, order_id)
    return snap.status


def account_latch(store: Store) -> Latch:
    key = keys.trading_state(ACCOUNT_SCOPE)
    latch = latch_from_redis(store.hget(key, "account"), key=key.name)
    assert isinstance(latch, Latch), latch
    return latch


def test_halt_cancels_a_frozen_executors_entries_and_leaves_stops_and_foreign_orders(
        gateway: Gateway, redis_server: RedisServer, store: Store, tmp_path: Path,
        executor: Executor) -> None:
    proc, placed = executor
    other = gateway.client(31)  # another client's order under a qc reference: the executor's id cannot cancel it
    spy = Stock("SPY", "SMART", "USD")
    other.qualifyContracts(spy)
    spot = gateway.call(lambda: gateway.model.spot("SPY"))
    foreign_client = other.placeOrder(spy, LimitOrder("BUY", 5, round(spot * 0.8, 2),
                                                      orderRef=str(OrderRef("sigZ", "entry"))))
    ib_eventually(other, lambda: foreign_client.orderStatus.status == "Submitted")
    token_before = fence.holder(store, ACCOUNT_SCOPE)
    assert isinstance(token_before, fence.FenceHolder) and token_before.pid == proc.pid

    os.kill(proc.pid, signal.SIGSTOP)  # hung: holds its socket and client id, answers nothing
    started = clock.monotonic()
    halted = qc(qc_env(redis_server.url, gateway, tmp_path), "risk", "halt", "--reason", "drill", "--by", "tester")
    took = clock.monotonic() - started
    print(f"qc risk halt took {took:.2f} s (ack wait 1 s included)\n{halted.stdout}")
    assert halted.returncode == 0, halted.stdout + halted.stderr

    for name in ("entry_call", "entry_put"):
        assert status(gateway, EXECUTOR_CLIENT_ID, placed[name]) == "Cancelled", name
    assert status(gateway, EXECUTOR_CLIENT_ID, placed["entry_shares"]) == "Filled"
    for name in ("stop_shares", "take_profit_shares", "manual", "other_system"):
        assert status(gateway, EXECUTOR_CLIENT_ID, placed[name]) in ("Submitted", "PreSubmitted"), name
    assert status(gateway, 31, foreign_client.order.orderId) == "Submitted"
    assert "2 entry order(s) cancelled; 2 protective left working" in halted.stdout

    assert proc.wait(10) == -signal.SIGKILL  # ended: a frozen executor must not wake up and trade
    fenced = fence.holder(store, ACCOUNT_SCOPE)
    assert isinstance(fenced, fence.FenceHolder)
    assert fenced.token == token_before.token + 1 and fenced.fenced_by == "operator:tester"
    with pytest.raises(fence.Fenced):
        fence.check(store, ACCOUNT_SCOPE, token_before.token)
    latch = account_latch(store)
    assert (latch.state, latch.cause, latch.by, latch.reason) == (TradingState.HALTED, "operator_halt",
                                                                  "operator:tester", "drill")
    assert store.count_events(keys.risk_breaches_log(), 0) == 0  # an operator's halt is not a breach


def test_an_acknowledging_executor_is_left_to_do_its_own_cancels(
        gateway: Gateway, redis_server: RedisServer, store: Store, tmp_path: Path,
        executor: Executor) -> None:
    proc, placed = executor
    env = qc_env(redis_server.url, gateway, tmp_path, QC_RISK_HALT_ACK_S="20")
    halting = subprocess.Popen([sys.executable, "-m", "qc", "risk", "halt", "--reason", "ack drill"], env=env,
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    request_key = keys.risk_halt_request(ACCOUNT_SCOPE)

    def requested() -> str | None:
        raw = store.get(request_key)
        return None if raw is None else str(json.loads(raw)["id"])

    deadline = clock.monotonic() + 60
    while (request_id := requested()) is None:
        assert clock.monotonic() < deadline and halting.poll() is None, "no halt request published"
        clock.real_sleep(0.05)
    store.set(keys.execute_halt_ack(ACCOUNT_SCOPE), request_id)  # what `qc execute` does once it has acted
    out, err = halting.communicate(timeout=60)
    assert halting.returncode == 0, out + err
    assert "qc execute acknowledged" in out
    assert proc.poll() is None  # not killed
    assert status(gateway, EXECUTOR_CLIENT_ID, placed["entry_call"]) == "Submitted"  # its own job now
    assert account_latch(store).state is TradingState.HALTED


def test_resume_needs_a_reason_and_lowers_the_latch(redis_server: RedisServer, store: Store, tmp_path: Path,
                                                     gateway: Gateway) -> None:
    env = qc_env(redis_server.url, gateway, tmp_path)
    refused = qc(env, "risk", "resume", "--reason", "  ")
    assert refused.returncode == 2 and "--reason" in refused.stderr and "Traceback" not in refused.stderr
    assert qc(env, "risk", "resume", "--reason", "x").stdout.strip() == "account: already ACTIVE"
    halted = qc(env, "risk", "halt", "--symbol", "QQQ", "--reason", "qqq halt")  # nothing works under client 7
    assert "QQQ: HALTED" in halted.stdout
    resumed = qc(env, "risk", "resume", "--symbol", "QQQ", "--reason", "checked", "--by", "ops")
    assert resumed.returncode == 0 and "QQQ: ACTIVE (was HALTED: operator_halt" in resumed.stdout
    log = store.client.lrange(keys.trading_state_log(ACCOUNT_SCOPE).name, 0, -1)
    assert [json.loads(e)["to"] for e in log] == ["ACTIVE", "HALTED"]
    assert json.loads(log[0])["reason"] == "checked" and json.loads(log[0])["by"] == "operator:ops"


def test_flatten_closes_qcs_position_then_its_stops_and_keeps_what_is_not_qcs(
        gateway: Gateway, redis_server: RedisServer, store: Store, tmp_path: Path, executor: Executor) -> None:
    proc, placed = executor
    os.kill(proc.pid, signal.SIGSTOP)
    anchor = SimAnchor(clock.wall_epoch(), gateway.clock.epoch(), SPEED)  # the CLI reads the gateway's session time
    store.hset(keys.sim_clock(), SimClockAnchor.of(anchor, ib_port=gateway.port, av_port=1).to_redis())
    env = qc_env(redis_server.url, gateway, tmp_path)
    dry = qc(env, "risk", "flatten")
    assert dry.returncode == 2 and "would close: SPY shares +100" in dry.stdout and "--confirm" in dry.stderr
    assert status(gateway, EXECUTOR_CLIENT_ID, placed["stop_shares"]) == "Submitted"  # nothing sent
    flat = qc(env, "risk", "flatten", "--confirm", "--reason", "drill", "--by", "tester")
    print(flat.stdout)
    assert flat.returncode == 0, flat.stdout + flat.stderr
    assert "1 position(s) closed" in flat.stdout
    for name in ("entry_call", "entry_put", "stop_shares", "take_profit_shares"):
        assert status(gateway, EXECUTOR_CLIENT_ID, placed[name]) == "Cancelled", name
    for name in ("manual", "other_system"):
        assert status(gateway, EXECUTOR_CLIENT_ID, placed[name]) == "Submitted", name
    shares = gateway.call(lambda: [r.position for r in gateway.broker.ledger.positions(ACCOUNT_CODE)
                                   if r.contract.symbol == "SPY" and r.contract.multiplier == 1])
    assert shares == []  # flat: the sale filled at the bid
    assert account_latch(store).cause == "operator_flatten"
