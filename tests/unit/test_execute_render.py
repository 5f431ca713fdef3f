"""The pure rendering of `qc positions | orders | fills` and the executor's status lines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from qc.core.codec import MISSING, Absent
from qc.execute import render
from qc.execute.model import Fill, Intent, LegOrder, State, Transition
from qc.risk.model import ContractKey, Position
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import PositionView

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CALL = ContractKey("SPY", "OPT", date(2026, 3, 2), 600.0, "C")
MINI = ContractKey("SPY", "OPT", date(2026, 3, 2), 600.0, "C", multiplier=10)


def an_intent(side: Any = "BUY", **kw: Any) -> Intent:
    long = side == "BUY"
    base: dict[str, Any] = {
        "id": "sig1", "account": "DU1", "symbol": "SPY", "strategy": "0dte", "bucket": "0dte", "contract": CALL,
        "side": side, "quantity": 2, "limit": 2.0, "take_profit": 3.0 if long else 1.0,
        "stop": 1.5 if long else 2.5, "trail_pct": 0.0, "time_stop": T0 + timedelta(hours=2), "hard_close": None,
        "created": T0, "con_id": 1001,
    }
    base.update(kw)
    return Intent(**base)


@pytest.mark.parametrize(("side", "entry", "exit_", "qty", "commission", "contract", "expected"), [
    ("BUY", 2.0, 2.5, 2, 2.6, CALL, 97.4),       # long up: +0.50 × 2 × 100 − 2.60
    ("BUY", 2.0, 1.5, 2, 2.6, CALL, -102.6),     # long down
    ("SELL", 4.0, 3.0, 3, 3.9, CALL, 296.1),     # short bought back cheaper: a gain
    ("SELL", 4.0, 5.0, 3, 3.9, CALL, -303.9),    # short bought back dearer: a loss
    ("BUY", 2.0, 2.5, 2, 0.0, MINI, 10.0),       # the contract's own multiplier, not 100
    ("BUY", 2.0, 0.0, 0, 1.3, CALL, -1.3),       # nothing exited yet: only the entry's commission
])
def test_realised_pnl_sign_multiplier_and_commission(side: Any, entry: float, exit_: float, qty: int,
                                                      commission: float, contract: ContractKey,
                                                      expected: float) -> None:
    i = an_intent(side, contract=contract, filled_qty=max(qty, 2), entry_avg=entry, exit_qty=qty, exit_avg=exit_,
                  commission_usd=commission)
    assert render.realised_usd(i) == pytest.approx(expected)
    assert render.intent_json(i)["realised_usd"] == pytest.approx(expected)


def test_order_rows_and_leg_rows_carry_the_order_reference() -> None:
    orders = (LegOrder("entry", 0, 11, "BUY", 2, "LMT", 2.0, perm_id=501, status="Filled", filled=2, avg_price=2.0),
              LegOrder("stop", 1, 12, "SELL", 2, "STP", None, 1.5, perm_id=0, status=""))
    i = an_intent(state=State.PROTECTED, orders=orders, filled_qty=2, entry_avg=2.0)
    [row] = render.order_rows([i])
    assert row[0] == "sig1" and row[1] == "2026-03-02 10:00:00" and row[6] == "protected" and row[7] == "2 @2.00"
    legs = render.leg_rows([i])
    assert legs[0][3] == "qc:sig1:entry:0" and legs[0][4] == "501" and legs[0][11] == "2 @2.00"
    assert legs[1][3] == "qc:sig1:stop:1" and legs[1][5] == "(unsent)" and legs[1][10] == "1.50"
    doc = render.intent_json(i)
    assert [o["order_ref"] for o in doc["orders"]] == ["qc:sig1:entry:0", "qc:sig1:stop:1"]
    assert doc["contract"]["multiplier"] == 100 and doc["open_qty"] == 2


def test_positions_json_and_rows_join_marks_and_lineage() -> None:
    rec = PositionRecord(1001, Position(CALL, -2, 3.0, "0dte"), 12.5, T0)
    view = PositionView(CALL.describe(), 1001, "SPY", "0dte", -2, 3.0, 2.5, 100.0, None)
    line = render.PositionLine(rec, view, (an_intent("SELL", state=State.PROTECTED, entry_avg=3.0),))
    unmarked = render.PositionLine(PositionRecord(7, Position(CALL, 1, 1.0, "0dte")), None, ())
    got = render.Positions("DU1", T0, (line, unmarked), {7: "unexplained"}, T0, "", 0)
    doc = render.positions_json(got)
    assert doc["positions"][0]["qty"] == -2 and doc["positions"][0]["unrealised_usd"] == 100.0
    assert doc["positions"][0]["intents"][0]["signal_id"] == "sig1"
    assert doc["positions"][1]["mark"] is None and doc["locked"] == [{"con_id": 7, "reason": "unexplained"}]
    rows = render.position_rows(got.lines)
    assert rows[0][2] == "-2" and rows[0][5] == "+100.00" and rows[0][9] == "sig1 0dte protected @3.00"
    assert rows[1][4] == "" and rows[1][9] == "none (not qc's?)"
    assert render.locked_rows(got) == [["7", CALL.describe(), "unexplained"]]


def test_detail_shows_history_and_an_absent_signal() -> None:
    i = an_intent(history=(Transition(T0, State.APPROVED, "ok"),), reasons=("adopted",))
    f = Fill("e1", "DU1", "SPY", 1001, "BUY", 2, 2.0, T0, order_ref="qc:sig1:entry:0", intent_id="sig1",
             leg="entry")
    d = render.IntentDetail(i, (f,), Absent("signals:record:sig1", MISSING))
    doc = render.detail_json(d)
    assert doc["history"] == [{"at": T0.isoformat(), "state": "approved", "why": "ok"}]
    assert doc["fills"][0]["exec_id"] == "e1" and doc["fills"][0]["commission_usd"] is None
    assert "missing" in doc["signal"]["absent"]
    lines = render.detail_lines(d)
    assert lines[0].startswith("intent sig1") and any("reasons: adopted" in x for x in lines)
    assert any(x.startswith("  signal: ") for x in lines)
    assert render.history_rows(i) == [["2026-03-02 10:00:00", "approved", "ok"]]


def test_fill_rows_show_a_pending_commission() -> None:
    f = Fill("e1", "DU1", "SPY", 1001, "SELL", 1, 2.5, T0, kind="expiry")
    [row] = render.fill_rows([f, replace(f, commission_usd=0.65)][:1])
    assert row[7] == "pending" and row[11] == "expiry" and row[8] == ""
    assert render.fill_rows([replace(f, commission_usd=0.65)])[0][7] == "0.65"


def test_executor_lines() -> None:
    doc: dict[str, Any] = {
        "account": "DU1", "status": {"role": "standby", "state": "reconciling", "since": "t0"},
        "failed_orders_today": 2, "open_intents": 3,
        "failed_orders": [{"symbol": "SPY", "order_ref": "qc:a:entry:0", "code": 201, "message": "margin"}],
        "locked": [{"con_id": 9, "reason": "why"}], "alerts": [{"at": "t1", "kind": "k", "message": "m"}]}
    lines = render.executor_lines(doc)
    assert lines[0] == "executor (DU1): standby, reconciling since t0"
    assert lines[1] == "  open intents 3; failed orders today 2"
    assert "code 201: margin" in lines[2] and lines[3] == "  locked conId 9: why" and lines[4] == "  alert t1 k: m"
    empty = render.executor_lines({**doc, "status": {}, "failed_orders": [], "locked": [], "alerts": []})
    assert "no status" in empty[0] and len(empty) == 2
