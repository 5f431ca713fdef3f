"""Simulated broker accounting: positions, IB average cost, realized P&L, commissions, executions log."""

from __future__ import annotations

import pytest

from qc.sim.broker.account import CommissionSchedule, Ledger
from qc.sim.broker.reports import (
    AccountChanged,
    AccountValue,
    CommissionReported,
    ExecutionRecord,
    ExecutionReported,
    PositionChanged,
)
from tests.unit.sim_broker_helpers import ACCT, CALL, CASH, PUT, SPY, T0, at, new_broker, order


def values(rows: tuple[AccountValue, ...]) -> dict[str, str]:
    return {v.tag: v.value for v in rows}


def test_option_round_trip_positions_average_cost_and_realized_pnl() -> None:
    b = new_broker()
    b.on_market(CALL.con_id, 1.95, 2.00, 0.0, T0)
    opened = b.submit(1, order(1, "BUY", 2, "MKT"), T0)
    (pos,) = b.positions(ACCT)
    assert pos.position == 2
    assert pos.average_cost == pytest.approx((2 * 200 + 1.30) / 2)  # IB: the commission is in the cost
    assert [e.commission.realized_pnl for e in opened if isinstance(e, CommissionReported)] == [None]
    b.on_market(CALL.con_id, 2.50, 2.55, 0.0, at(11))
    assert b.positions(ACCT)[0].unrealized_pnl == pytest.approx(2 * 252.5 - 401.30)
    closed = b.submit(1, order(2, "SELL", 2, "MKT"), at(11))
    report = next(e.commission for e in closed if isinstance(e, CommissionReported))
    assert report.commission == pytest.approx(1.30)
    assert report.realized_pnl == pytest.approx(500 - 401.30 - 1.30)
    assert b.positions(ACCT) == []
    (row,) = b.portfolio(ACCT)  # IB keeps the closed row for the session, with its realized P&L
    assert row.position == 0
    assert row.realized_pnl == pytest.approx(97.40)
    acct = values(b.account_values(ACCT))
    assert acct["RealizedPnL"] == "97.40" and acct["TotalCashValue"] == f"{CASH + 97.40:.2f}"
    assert acct["NetLiquidation"] == acct["TotalCashValue"]


def test_short_then_flip_long_splits_realized_and_opening_cost() -> None:
    ledger = Ledger({ACCT: 0.0})
    ledger.apply_fill(ACCT, PUT, -1, 3.00, 1.00)  # short 1 at 3.00: basis −299
    realized = ledger.apply_fill(ACCT, PUT, 3, 2.00, 3.00)  # close 1, open 2 long
    assert realized == pytest.approx(300 - 1 - 200 - 1)
    row = ledger.row(ACCT, PUT.con_id)
    assert row.position == 2
    assert row.average_cost == pytest.approx((400 + 2) / 2)
    assert ledger.cash(ACCT) == pytest.approx(300 - 1 - 600 - 3)


def test_stock_commission_per_share_with_minimum_and_cap() -> None:
    schedule = CommissionSchedule()
    assert schedule.order_total(SPY, 100, 100 * 500.0) == pytest.approx(1.00)
    assert schedule.order_total(SPY, 1000, 1000 * 500.0) == pytest.approx(5.00)
    assert schedule.order_total(SPY, 1000, 1000 * 0.05) == pytest.approx(0.50)  # 1 % of trade value
    assert schedule.order_total(CALL, 1, 10.0) == pytest.approx(1.00)
    assert schedule.order_total(CALL, 10, 100.0) == pytest.approx(6.50)


def test_buying_an_option_costs_available_funds_and_a_stock_needs_margin() -> None:
    b = new_broker()
    b.on_market(CALL.con_id, 4.90, 5.00, 0.0, T0)
    b.on_market("SPY", 499.9, 500.1, 500.0, T0)
    b.submit(1, order(1, "BUY", 1, "MKT"), T0)
    acct = values(b.account_values(ACCT))
    assert float(acct["AvailableFunds"]) == pytest.approx(CASH - 501.0)  # long US options outside ELV
    assert float(acct["NetLiquidation"]) == pytest.approx(CASH - 501.0 + 495.0)  # marked at mid 4.95
    events = b.submit(1, order(2, "BUY", 100, "MKT", SPY), T0)
    tags = values(next(e.values for e in events if isinstance(e, AccountChanged)))
    assert float(tags["InitMarginReq"]) == pytest.approx(0.5 * 100 * 500.0)
    assert float(tags["MaintMarginReq"]) == pytest.approx(0.25 * 100 * 500.0)
    assert float(tags["BuyingPower"]) == pytest.approx(4 * float(tags["AvailableFunds"]))
    assert float(tags["GrossPositionValue"]) == pytest.approx(495.0 + 50_000.0)


def test_position_event_carries_the_portfolio_row() -> None:
    b = new_broker()
    b.on_market(CALL.con_id, 1.95, 2.05, 0.0, T0)
    events = b.submit(1, order(1, "SELL", 3, "MKT"), T0)
    row = next(e.row for e in events if isinstance(e, PositionChanged))
    assert row.position == -3
    assert row.market_price == pytest.approx(2.0)
    assert row.market_value == pytest.approx(-600.0)
    assert row.average_cost == pytest.approx((3 * 195 - 1.95) / 3)


def ids(rows: list[ExecutionRecord]) -> list[tuple[int, int]]:
    return [(r.execution.client_id, r.execution.order_id) for r in rows]


def test_executions_filters_and_since_midnight_new_york() -> None:
    b = new_broker()
    b.on_market(CALL.con_id, 1.95, 2.00, 0.0, at(15, day_offset=-1))
    b.on_market("SPY", 499.9, 500.1, 500.0, at(15, day_offset=-1))
    b.submit(1, order(1, "BUY", 1, "MKT"), at(15, day_offset=-1))  # yesterday: never reported today
    b.submit(1, order(2, "BUY", 1, "MKT"), at(0, 0, 1))
    b.submit(2, order(1, "SELL", 1, "MKT", client_id=2), at(10))
    b.submit(1, order(3, "BUY", 10, "MKT", SPY, order_ref="qc:abc:entry:1"), at(11))
    now = at(12)
    assert ids(b.executions(now)) == [(1, 2), (2, 1), (1, 3)]
    assert ids(b.executions(now, client_id=2)) == [(2, 1)]
    assert ids(b.executions(now, symbol="SPY", sec_type="STK")) == [(1, 3)]
    assert ids(b.executions(now, side="SELL")) == [(2, 1)]
    assert ids(b.executions(now, since=at(10, 30))) == [(1, 3)]
    assert ids(b.executions(at(23, 59), account="DU999")) == []
    assert ids(b.executions(at(15, day_offset=-1))) == [(1, 1)]
    last = b.executions(now)[-1]
    assert last.execution.order_ref == "qc:abc:entry:1" and last.commission.exec_id == last.execution.exec_id
    assert (last.execution.side, last.execution.exchange, last.commission.commission) == ("BOT", "ARCA", 1.00)


def test_execution_ids_and_perm_ids_are_deterministic() -> None:
    def run() -> list[tuple[str, int]]:
        b = new_broker()
        b.on_market(CALL.con_id, 1.95, 2.00, 0.0, T0)
        events = b.submit(1, order(1, "BUY", 1, "MKT"), T0) + b.submit(1, order(2, "SELL", 1, "MKT"), T0)
        return [(e.execution.exec_id, e.execution.perm_id) for e in events if isinstance(e, ExecutionReported)]

    first = run()
    assert first == run()
    assert first[0][0] == "0000e0d5.6565f2a1.01.01" and first[1][0] == "0000e0d5.6565f2a2.01.01"
