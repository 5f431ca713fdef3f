"""`qc positions | orders | fills` and the executor's part of `qc status`, as a subprocess against a real Redis.

Everything is written through the executor's own records (``Records``, behind a claimed fence token)
and codecs, then read back by the real CLI: P&L signs and the ×100 multiplier for a long and a short,
the lineage from a position to its intent and signal, the filters, and one-line errors with exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qc.core import clock, keys
from qc.execute.cycle.records import Records
from qc.execute.model import Fill, Intent, LegOrder, State, Transition
from qc.risk.model import ContractKey, Position
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import ExposureSnapshot, PositionView, snapshot_to_redis
from qc.runtime import fence
from qc.runtime.codec import Heartbeat, WorkerEntry, WorkerRegistry
from qc.runtime.store import Store
from qc.signals.codec import Signal
from qc.signals.model import Contract, Quote

from .conftest import RedisServer

NOW = datetime.fromtimestamp(clock.wall_epoch(), UTC).replace(microsecond=0)
EXPIRY = (NOW + timedelta(days=10)).date()
CALL = ContractKey("SPY", "OPT", EXPIRY, 600.0, "C")
PUT = ContractKey("QQQ", "OPT", EXPIRY, 500.0, "P")
LONG_ID = f"{int((NOW - timedelta(hours=1)).timestamp() * 1000):013d}a1b2c3d4"
SHORT_ID = f"{int((NOW - timedelta(hours=3)).timestamp() * 1000):013d}0badcafe"
OLD_ID = f"{int((NOW - timedelta(days=3)).timestamp() * 1000):013d}00000001"


def qc(redis_server: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QC_REDIS_URL": redis_server.url, "QC_SYMBOLS": "SPY,QQQ"}
    env.pop("QC_CONFIG", None)
    env.pop("QC_IB_ACCOUNT", None)
    return subprocess.run([sys.executable, "-m", "qc", *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)


def qc_json(redis_server: RedisServer, *args: str) -> Any:
    got = qc(redis_server, *args, "--json")
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def leg(name: Any, action: Any, qty: int, order_type: str, *, limit: float | None = None, aux: float | None = None,
        status: str = "Submitted", filled: int = 0, avg: float = 0.0, perm: int = 0, attempt: int = 0) -> LegOrder:
    return LegOrder(name, attempt, 10 + perm % 50, action, qty, order_type, limit, aux, perm_id=perm, status=status,
                    filled=filled, avg_price=avg)


def intent(intent_id: str, contract: ContractKey, side: Any, created: datetime, **kw: Any) -> Intent:
    long = side == "BUY"
    base: dict[str, Any] = {
        "id": intent_id, "account": "default", "symbol": contract.underlying, "strategy": "14dte",
        "bucket": "14dte", "contract": contract, "side": side, "quantity": 2, "limit": 2.0,
        "take_profit": 3.0 if long else 1.0, "stop": 1.5 if long else 2.5, "trail_pct": 0.0,
        "time_stop": created + timedelta(days=5), "hard_close": None, "created": created,
    }
    base.update(kw)
    return Intent(**base)


def fill(exec_id: str, symbol: str, con_id: int, side: Any, qty: int, price: float, at: datetime, intent_id: str,
         leg_name: str, attempt: int = 0) -> Fill:
    return Fill(exec_id, "default", symbol, con_id, side, qty, price, at,
                order_ref=f"qc:{intent_id}:{leg_name}:{attempt}", perm_id=900 + len(exec_id), intent_id=intent_id,
                leg=leg_name, commission_usd=1.30)


def alive(store: Store) -> None:
    """A registered worker with a fresh heartbeat, so every other check passes."""
    entry = WorkerEntry(pid=os.getpid(), host="test", started=clock.wall_epoch() - 60, cycles=1)
    store.hset(keys.worker_registry(), WorkerRegistry({"supervisor": entry}).to_redis())
    store.set(keys.heartbeat("supervisor"), Heartbeat(clock.wall_epoch()).to_redis())


def a_signal(signal_id: str, created: datetime) -> Signal:
    return Signal(
        id=signal_id, created_at=created, strategy="14dte",
        contract=Contract("SPY", "OPT", EXPIRY, 600.0, "C", 100, "SMART", "ARCA"), side="BUY", direction=1,
        order_type="LMT", limit=2.0, take_profit=3.0, stop=1.5, time_stop=created + timedelta(days=5), score=0.61,
        threshold=0.3, mode="neutral", size_multiplier=1.0, quote=Quote(1.98, 2.02, 2.0, 0.2, 100, 100, 5.0),
        contributions=(), factor_inputs={}, gates=(), fingerprint="fp1",
        lineage={"source": "qc signals", "execution": {"state": "approved", "intent": signal_id}})


@pytest.fixture
def book(store: Store) -> Records:
    """A long SPY call held (partly exited), a short QQQ put round trip closed, an old cancelled intent,
    their fills, positions (one flat, one unexplained and locked), marks, a failure, an alert, a status."""
    token = fence.claim(store, "default", pid=os.getpid(), host="test", client_id=7, now_epoch=clock.wall_epoch())
    rec = Records(store, "default", token)
    t_long, t_short, t_old = NOW - timedelta(hours=1), NOW - timedelta(hours=3), NOW - timedelta(days=3)

    long_i = intent(LONG_ID, CALL, "BUY", t_long, con_id=1001)
    rec.create(long_i)
    rec.save(replace(
        long_i, state=State.PROTECTED, filled_qty=2, entry_avg=2.0, exit_qty=1, exit_avg=2.5, commission_usd=2.6,
        orders=(leg("entry", "BUY", 2, "LMT", limit=2.0, status="Filled", filled=2, avg=2.0, perm=501),
                leg("tp", "SELL", 2, "LMT", limit=3.0, status="Submitted", perm=502),
                leg("stop", "SELL", 2, "STP", aux=1.5, status="Cancelled", perm=503),
                leg("stop", "SELL", 1, "STP", aux=1.5, status="Submitted", perm=504, attempt=1)),
        history=(Transition(t_long, State.APPROVED, "risk approved"),
                 Transition(t_long + timedelta(seconds=2), State.PROTECTED, "entry filled, stop working"))))

    short_i = intent(SHORT_ID, PUT, "SELL", t_short, quantity=3, limit=4.0, take_profit=3.0, stop=5.0, con_id=2002)
    rec.create(short_i)
    rec.save(replace(short_i, state=State.CLOSED, filled_qty=3, entry_avg=4.0, exit_qty=3, exit_avg=3.0,
                     commission_usd=3.9, exit_reason="take_profit",
                     orders=(leg("entry", "SELL", 3, "LMT", limit=4.0, status="Filled", filled=3, avg=4.0, perm=601),
                             leg("tp", "BUY", 3, "LMT", limit=3.0, status="Filled", filled=3, avg=3.0, perm=602))))

    old_i = intent(OLD_ID, CALL, "BUY", t_old, con_id=1001)
    rec.create(old_i)
    rec.save(replace(old_i, state=State.CANCELLED, exit_reason="time_stop"))

    for f in (fill("e1", "SPY", 1001, "BUY", 2, 2.0, t_long + timedelta(seconds=1), LONG_ID, "entry"),
              fill("e2", "SPY", 1001, "SELL", 1, 2.5, t_long + timedelta(minutes=30), LONG_ID, "tp"),
              fill("q1", "QQQ", 2002, "SELL", 3, 4.0, t_short + timedelta(seconds=1), SHORT_ID, "entry"),
              fill("q2", "QQQ", 2002, "BUY", 3, 3.0, t_short + timedelta(hours=1), SHORT_ID, "tp"),
              fill("old1", "SPY", 1001, "BUY", 1, 1.0, t_old, OLD_ID, "entry")):
        assert rec.add_fill(f)

    rec.save_position(PositionRecord(1001, Position(CALL, 1, 2.0, "14dte"), 47.4, t_long))
    rec.save_position(PositionRecord(2002, Position(PUT, 0, 0.0, "14dte"), 296.1, t_short))
    rec.save_position(PositionRecord(3003, Position(ContractKey("SPY", "STK", multiplier=1), 100, 590.0, "other"),
                                     0.0, None))
    rec.lock(3003, "broker reports 100 SPY shares qc cannot explain")
    views = (PositionView(CALL.describe(), 1001, "SPY", "14dte", 1, 2.0, 2.4, 40.0, None),
             PositionView("SPY shares", 3003, "SPY", "other", 100, 590.0, None, None, None))
    snap = ExposureSnapshot(NOW, views, 343.5, 40.0, 383.5, {}, {}, {}, (), (), (), {})
    store.set(keys.risk_exposure("default"), snapshot_to_redis(snap))
    key = keys.signal_record(LONG_ID)
    store.client.set(key.name, a_signal(LONG_ID, t_long).to_redis(), ex=key.ttl_s)

    bad = leg("entry", "BUY", 2, "LMT", limit=2.0, status="Inactive", perm=701)
    rec.order_failed(old_i, bad, 201, "Order rejected - reason: margin", clock.wall_epoch() - 60)
    rec.alert("position_mismatch", "SPY shares (conId 3003): unexplained; locked", NOW, con_id=3003)
    rec.status({"role": "leader", "state": "trading", "since": NOW.isoformat(), "last_reconcile": NOW.isoformat(),
                "last_reconcile_result": "adopted=0 mismatches=1"})
    return rec


def test_positions_marks_pnl_lineage_and_locks(book: Records, redis_server: RedisServer) -> None:
    doc = qc_json(redis_server, "positions")
    by_con = {p["con_id"]: p for p in doc["positions"]}
    assert set(by_con) == {1001, 3003} and doc["flat_hidden"] == 1  # the flat QQQ put only with --all
    call = by_con[1001]
    assert call["qty"] == 1 and call["avg_cost"] == 2.0 and call["mark"] == 2.4
    assert call["unrealised_usd"] == 40.0 and call["realised_today_usd"] == 47.4 and call["bucket"] == "14dte"
    assert call["contract"]["multiplier"] == 100 and call["opened"] is not None
    assert [(i["signal_id"], i["strategy"], i["state"], i["entry_avg"], i["open_qty"]) for i in call["intents"]] == [
        (LONG_ID, "14dte", "protected", 2.0, 1)]
    assert by_con[3003]["intents"] == [] and by_con[3003]["mark"] is None
    assert doc["locked"] == [{"con_id": 3003, "reason": "broker reports 100 SPY shares qc cannot explain"}]
    assert doc["marks_as_of"] is not None and doc["account"] == "default"

    every = qc_json(redis_server, "positions", "--all")
    flat = next(p for p in every["positions"] if p["con_id"] == 2002)
    assert flat["qty"] == 0 and flat["realised_today_usd"] == 296.1 and every["flat_hidden"] == 0

    table = qc(redis_server, "positions")
    assert table.returncode == 0, table.stderr
    assert f"{LONG_ID} 14dte protected @2.00" in table.stdout and "+40.00" in table.stdout
    assert "locked contracts" in table.stdout and "cannot explain" in table.stdout
    assert "1 flat position(s) not shown" in table.stdout


def test_orders_pnl_signs_multiplier_and_legs(book: Records, redis_server: RedisServer) -> None:
    doc = qc_json(redis_server, "orders")
    ids = [o["id"] for o in doc["orders"]]
    assert ids == [LONG_ID, SHORT_ID]  # newest first; the 3-day-old one is outside the default 1d
    long_o, short_o = doc["orders"]
    assert long_o["realised_usd"] == pytest.approx(47.4)    # (2.50 − 2.00) × 1 × 100 − 2.60
    assert short_o["realised_usd"] == pytest.approx(296.1)  # (3.00 − 4.00) × 3 × 100 × −1 − 3.90
    assert short_o["state"] == "closed" and short_o["exit_reason"] == "take_profit" and short_o["side"] == "SELL"
    refs = {(o["leg"], o["attempt"]): (o["order_ref"], o["perm_id"], o["status"]) for o in long_o["orders"]}
    assert refs[("stop", 1)] == (f"qc:{LONG_ID}:stop:1", 504, "Submitted")
    assert refs[("entry", 0)] == (f"qc:{LONG_ID}:entry:0", 501, "Filled")

    assert [o["id"] for o in qc_json(redis_server, "orders", "--open")["orders"]] == [LONG_ID]
    assert [o["id"] for o in qc_json(redis_server, "orders", "--since", "7d")["orders"]] == [LONG_ID, SHORT_ID, OLD_ID]
    assert [o["id"] for o in qc_json(redis_server, "orders", "--since", "2h")["orders"]] == [LONG_ID]
    assert qc_json(redis_server, "orders", "--open", "--since", "30m")["orders"] == []

    table = qc(redis_server, "orders")
    assert table.returncode == 0, table.stderr
    assert "+47.40" in table.stdout and "+296.10" in table.stdout and f"qc:{LONG_ID}:stop:1" in table.stdout


def test_one_order_with_history_fills_and_signal_lineage(book: Records, redis_server: RedisServer) -> None:
    doc = qc_json(redis_server, "orders", LONG_ID)
    assert [h["state"] for h in doc["history"]] == ["approved", "protected"]
    assert doc["history"][0]["why"] == "risk approved"
    assert [f["exec_id"] for f in doc["fills"]] == ["e2", "e1"]  # its own fills only, newest first
    assert doc["signal"]["strategy"] == "14dte" and doc["signal"]["score"] == 0.61
    assert doc["signal"]["execution"] == {"state": "approved", "intent": LONG_ID}
    table = qc(redis_server, "orders", LONG_ID)
    assert table.returncode == 0, table.stderr
    assert "history" in table.stdout and "risk approved" in table.stdout and "score +0.610" in table.stdout
    no_signal = qc_json(redis_server, "orders", SHORT_ID)
    assert "missing" in no_signal["signal"]["absent"]


def test_fills_newest_first_filtered_by_symbol_and_time(book: Records, redis_server: RedisServer) -> None:
    doc = qc_json(redis_server, "fills")
    assert [f["exec_id"] for f in doc["fills"]] == ["e2", "e1", "q2", "q1"]
    e1 = doc["fills"][1]
    assert (e1["symbol"], e1["con_id"], e1["side"], e1["quantity"], e1["price"], e1["commission_usd"],
            e1["order_ref"], e1["intent_id"], e1["leg"], e1["kind"]) == (
        "SPY", 1001, "BUY", 2, 2.0, 1.3, f"qc:{LONG_ID}:entry:0", LONG_ID, "entry", "trade")
    assert [f["exec_id"] for f in qc_json(redis_server, "fills", "--symbol", "qqq")["fills"]] == ["q2", "q1"]
    assert [f["exec_id"] for f in qc_json(redis_server, "fills", "--symbol", "SPY", "--since", "7d")["fills"]] == [
        "e2", "e1", "old1"]
    table = qc(redis_server, "fills", "--symbol", "SPY")
    assert table.returncode == 0 and "e2" in table.stdout and "old1" not in table.stdout


@pytest.mark.parametrize(("args", "code", "text"), [
    (("orders", "--since", "yesterday"), 2, "--since"),
    (("fills", "--since", "3x"), 2, "--since"),
    (("fills", "--symbol", "S P Y"), 2, "--symbol"),
    (("orders", "1796311800000deadbeef"), 1, "no order intent"),
    (("orders", "not/an:id"), 1, "not an intent id"),
])
def test_errors_are_one_line_with_their_exit_code(book: Records, redis_server: RedisServer, args: tuple[str, ...],
                                                  code: int, text: str) -> None:
    got = qc(redis_server, *args)
    assert got.returncode == code, (got.stdout, got.stderr)
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0] and "Traceback" not in got.stderr


def test_redis_down_is_one_line(redis_server: RedisServer) -> None:
    env = {**os.environ, "QC_REDIS_URL": "redis://127.0.0.1:1/0"}
    got = subprocess.run([sys.executable, "-m", "qc", "positions"], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    errors = [line for line in got.stderr.strip().splitlines() if " WARNING " not in line]  # the clock's log line
    assert got.returncode == 1 and len(errors) == 1 and "Traceback" not in got.stderr
    assert errors[0].startswith("Error: Redis unreachable at redis://127.0.0.1:1/0")


def test_empty_stack_says_so(store: Store, redis_server: RedisServer) -> None:
    assert "no open positions" in qc(redis_server, "positions").stdout
    assert "no intents" in qc(redis_server, "orders").stdout
    assert "no fills" in qc(redis_server, "fills").stdout
    assert qc_json(redis_server, "positions")["marks_problem"].startswith("no marks")


def test_status_shows_the_executor_and_warns_on_a_failed_order(book: Records, store: Store,
                                                                redis_server: RedisServer) -> None:
    alive(store)
    got = qc(redis_server, "status", "--json")
    doc = json.loads(got.stdout)
    assert got.returncode == 0, got.stdout  # a warning, not an alert
    assert doc["state"] == "warning" and doc["healthy"] is False
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["failed orders today"]["value"] == 1 and checks["failed orders today"]["warn"] is True
    assert checks["locked contracts"]["value"] == 1
    ex = doc["executor"]
    assert ex["failed_orders_today"] == 1 and ex["open_intents"] == 1
    assert ex["failed_orders"][0]["code"] == 201 and ex["failed_orders"][0]["intent"] == OLD_ID
    assert ex["status"]["role"] == "leader" and ex["status"]["state"] == "trading"
    assert ex["locked"] == [{"con_id": 3003, "reason": "broker reports 100 SPY shares qc cannot explain"}]
    assert ex["alerts"][0]["kind"] == "position_mismatch" and ex["alerts"][0]["context"] == {"con_id": 3003}
    table = qc(redis_server, "status")
    assert table.returncode == 0 and table.stdout.splitlines()[0].endswith("WARNING (look at the WARN rows)")
    assert "executor (default): leader, trading" in table.stdout and "code 201" in table.stdout
    assert "last reconciliation" in table.stdout and "alert" in table.stdout


def test_a_day_without_failures_stays_healthy(store: Store, redis_server: RedisServer) -> None:
    alive(store)
    doc = json.loads(qc(redis_server, "status", "--json").stdout)
    assert doc["state"] == "healthy" and doc["healthy"] is True
    assert doc["executor"]["failed_orders_today"] == 0 and doc["executor"]["status"] == {}
