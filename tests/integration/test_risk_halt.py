"""`qc risk halt` and `flatten` against `qc sim` with a hung executor: the out-of-band kill switch.

A stand-in executor (``standin_executor``: the real ib_async, the executor's client id, qc's order
references) places two working entries, a filled entry with its stop and take-profit, and two
orders that are not qc's, claims the account's fence, and is then frozen with SIGSTOP. `qc risk
halt` (a real `python -m qc` process) must latch HALTED, fence the executor off, end it, connect as
its client id and cancel exactly the entries. An observer client (another client id) reads the
broker's side as an operator would: every client's open orders and the completed ones, by permId.
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
from ib_async import IB, LimitOrder, Stock

from qc.core import clock, keys
from qc.core.order_ref import OrderRef
from qc.risk.codec import latch_from_redis
from qc.risk.state import Latch, TradingState
from qc.runtime import fence
from qc.runtime.store import Store
from tests.integration.ib_sim_harness import client_loop_fixture, ib_eventually  # noqa: F401 (fixture)

from .conftest import RedisServer
from .stream_harness import SimProcess, start_sim, stop_process

ROOT = Path(__file__).parents[2]
EXECUTOR_CLIENT_ID = 7
OBSERVER_CLIENT_ID = 31
ACCOUNT_SCOPE = "default"
SIM = ["--start", "2026-12-03 10:30", "--speed", "5", "--seed", "11", "--symbols", "SPY,QQQ", "--depth-rate", "20"]
Executor = tuple[subprocess.Popen[str], dict[str, int]]
WORKING = ("Submitted", "PreSubmitted")


@pytest.fixture
def sim(store: Store, redis_server: RedisServer, tmp_path: Path) -> Iterator[SimProcess]:
    running = start_sim(redis_server.url, tmp_path, SIM)  # after `store` flushed Redis: its clock anchor stays
    yield running
    stop_process(running.proc)


def qc_env(redis_url: str, sim: SimProcess, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return {**env, "QC_REDIS_URL": redis_url, "QC_IB_PORT": str(sim.port("ib")), "QC_IB_HOST": "127.0.0.1",
            "QC_EXECUTE_CLIENT_ID": str(EXECUTOR_CLIENT_ID), "QC_RISK_HALT_ACK_S": "1",
            "QC_DATA_DIR": str(tmp_path / "var"), "QC_SYMBOLS": "SPY,QQQ", **extra}


def qc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qc", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def executor(sim: SimProcess, redis_server: RedisServer, store: Store) -> Iterator[Executor]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.standin_executor", str(sim.port("ib")),
                             redis_server.url, ACCOUNT_SCOPE, str(EXECUTOR_CLIENT_ID)],
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


@pytest.fixture
def observer(sim: SimProcess, client_loop: object) -> Iterator[IB]:
    ib = IB()
    ib.RequestTimeout = 10
    ib.connect("127.0.0.1", sim.port("ib"), clientId=OBSERVER_CLIENT_ID, timeout=10, readonly=False)
    yield ib
    ib.disconnect()


def statuses(ib: IB) -> dict[int, str]:
    """permId -> status, every client's: the open orders, then the completed ones."""
    got = {t.order.permId: t.orderStatus.status for t in ib.reqCompletedOrders(apiOnly=True)}
    got.update({t.order.permId: t.orderStatus.status for t in ib.reqAllOpenOrders()})
    return got


def account_latch(store: Store) -> Latch:
    key = keys.trading_state(ACCOUNT_SCOPE)
    latch = latch_from_redis(store.hget(key, "account"), key=key.name)
    assert isinstance(latch, Latch), latch
    return latch


def test_halt_cancels_a_frozen_executors_entries_and_leaves_stops_and_foreign_orders(
        sim: SimProcess, redis_server: RedisServer, store: Store, tmp_path: Path, executor: Executor,
        observer: IB) -> None:
    proc, placed = executor
    spy = Stock("SPY", "SMART", "USD")
    observer.qualifyContracts(spy)
    [tick] = observer.reqTickers(spy)
    other = observer.placeOrder(spy, LimitOrder("BUY", 5, round(tick.midpoint() * 0.8, 2),
                                                orderRef=str(OrderRef("sigZ", "entry"))))
    ib_eventually(observer, lambda: other.orderStatus.status == "Submitted")  # another client's, under a qc ref
    token_before = fence.holder(store, ACCOUNT_SCOPE)
    assert isinstance(token_before, fence.FenceHolder) and token_before.pid == proc.pid

    os.kill(proc.pid, signal.SIGSTOP)  # hung: holds its socket and client id, answers nothing
    started = clock.monotonic()
    halted = qc(qc_env(redis_server.url, sim, tmp_path), "risk", "halt", "--reason", "drill", "--by", "tester")
    took = clock.monotonic() - started
    print(f"qc risk halt took {took:.2f} s (ack wait 1 s included)\n{halted.stdout}")
    assert halted.returncode == 0, halted.stdout + halted.stderr

    now = statuses(observer)
    assert [now[placed[n]] for n in ("entry_call", "entry_put")] == ["Cancelled", "Cancelled"]
    assert now[placed["entry_shares"]] == "Filled"
    for name in ("stop_shares", "take_profit_shares", "manual", "other_system"):
        assert now[placed[name]] in WORKING, (name, now[placed[name]])
    assert now[other.order.permId] == "Submitted"
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
        sim: SimProcess, redis_server: RedisServer, store: Store, tmp_path: Path, executor: Executor,
        observer: IB) -> None:
    proc, placed = executor
    env = qc_env(redis_server.url, sim, tmp_path, QC_RISK_HALT_ACK_S="20")
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
    assert statuses(observer)[placed["entry_call"]] == "Submitted"  # its own job now
    assert account_latch(store).state is TradingState.HALTED


def test_resume_needs_a_reason_and_lowers_the_latch(redis_server: RedisServer, store: Store, tmp_path: Path,
                                                     sim: SimProcess) -> None:
    env = qc_env(redis_server.url, sim, tmp_path)
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
        sim: SimProcess, redis_server: RedisServer, store: Store, tmp_path: Path, executor: Executor,
        observer: IB) -> None:
    proc, placed = executor
    os.kill(proc.pid, signal.SIGSTOP)
    env = qc_env(redis_server.url, sim, tmp_path)  # the CLI adopts the simulator's clock: inside the session
    dry = qc(env, "risk", "flatten")
    assert dry.returncode == 2 and "would close: SPY shares +100" in dry.stdout and "--confirm" in dry.stderr
    assert statuses(observer)[placed["stop_shares"]] in WORKING  # nothing sent
    flat = qc(env, "risk", "flatten", "--confirm", "--reason", "drill", "--by", "tester")
    print(flat.stdout)
    assert flat.returncode == 0, flat.stdout + flat.stderr
    assert "1 position(s) closed" in flat.stdout
    now = statuses(observer)
    for name in ("entry_call", "entry_put", "stop_shares", "take_profit_shares"):
        assert now[placed[name]] == "Cancelled", name
    for name in ("manual", "other_system"):
        assert now[placed[name]] == "Submitted", name
    held = [p.position for p in observer.reqPositions() if p.contract.symbol == "SPY" and p.contract.secType == "STK"]
    assert held in ([], [0.0])  # flat: the sale filled at the bid
    assert account_latch(store).cause == "operator_flatten"
