"""Expiry settlement at the session close: lapse, exercise, assignment; cash, P&L, events, execution rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from qc.sim.broker.engine import SimBroker
from qc.sim.broker.orders import CANCELLED, SUBMITTED, ContractKey
from qc.sim.broker.reports import (
    AccountChanged,
    BrokerEvent,
    PositionChanged,
    SettlementExecuted,
)
from qc.sim.broker.settlement import decide, expires_by, intrinsic
from qc.sim.broker.views import settlement_rows
from tests.unit.sim_broker_helpers import ACCT, CASH, DAY, SPY, T0, at, kinds, order, states

CLOSE = at(16)


def _option(con_id: int, right: str, strike: float = 600.0, days: int = 0) -> ContractKey:
    return ContractKey(con_id, "SPY", "OPT", 100.0, expiry=DAY + timedelta(days=days), strike=strike, right=right,
                       under_con_id=SPY.con_id)


C600 = _option(910001, "C")
P600 = _option(910002, "P")
C600_LATER = _option(910003, "C", days=1)


def _open(b: SimBroker, contract: ContractKey, action: str, quantity: float, price: float, order_id: int,
          account: str = ACCT) -> None:
    """Trade ``quantity`` of ``contract`` at ``price`` (the touch is pinned around it; the order takes it)."""
    b.on_market(contract.con_id, price, price, price, T0)
    req = replace(order(order_id, action, quantity, "LMT", contract, lmt_price=price), account=account)
    events = b.submit(1, req, T0)
    assert states(events)[-1] == (order_id, "Filled")


def _settle(b: SimBroker, close: float) -> list[BrokerEvent]:
    return b.settle_expiring(DAY, {"SPY": close}, CLOSE)


def _qty(b: SimBroker, con_id: int, account: str = ACCT) -> float:
    return next((r.position for r in b.positions(account) if r.contract.con_id == con_id), 0.0)


def _row(b: SimBroker, con_id: int, account: str = ACCT) -> tuple[float, float, float]:
    r = next(r for r in b.portfolio(account) if r.contract.con_id == con_id)
    return r.position, r.average_cost, r.realized_pnl


# --- the pure rule ------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "qty", "close", "outcome", "shares"), [
    (C600, 1, 605.0, "exercised", 100.0),     # long call: buy at the strike
    (C600, -2, 605.0, "assigned", -200.0),    # short call: sell at the strike
    (P600, 1, 595.0, "exercised", -100.0),    # long put: sell at the strike
    (P600, -3, 595.0, "assigned", 300.0),     # short put: buy at the strike
    (C600, 1, 599.0, "expired", 0.0),         # out of the money
    (P600, -1, 600.0, "expired", 0.0),        # at the money
    (C600, 1, 600.01, "exercised", 100.0),    # in by exactly a cent (0.00999… in binary)
    (C600, 1, 600.009, "expired", 0.0),       # in by less than a cent
    (P600, 1, 599.99, "exercised", -100.0),
    (P600, -1, 599.991, "expired", 0.0),
])
def test_decide_follows_exercise_by_exception(option: ContractKey, qty: float, close: float, outcome: str,
                                              shares: float) -> None:
    s = decide(ACCT, option, qty, close)
    assert (s.outcome, s.stock_quantity) == (outcome, shares)
    assert (s.stock is None) == (outcome == "expired")
    if s.stock is not None:
        assert (s.stock.con_id, s.stock.sec_type, s.stock.multiplier) == (SPY.con_id, "STK", 1.0)


def test_pure_helpers_refuse_what_they_cannot_settle() -> None:
    assert intrinsic(P600, 590.0) == 10.0 and intrinsic(C600, 590.0) == -10.0
    assert expires_by(C600, DAY) and not expires_by(C600_LATER, DAY) and not expires_by(SPY, DAY)
    with pytest.raises(ValueError, match="no right"):
        intrinsic(ContractKey(1, "SPY", "OPT", 100.0, expiry=DAY), 1.0)
    with pytest.raises(ValueError, match="underlying"):
        decide(ACCT, ContractKey(1, "SPY", "OPT", 100.0, expiry=DAY, strike=1.0, right="C"), 1, 5.0)
    with pytest.raises(ValueError, match="0"):
        decide(ACCT, C600, 0, 605.0)


# --- booked by the broker -----------------------------------------------------------------------

def test_long_call_in_the_money_is_exercised_into_stock_at_the_strike() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 2.10, 1)  # 210 premium + 1.00 commission
    assert b.ledger.cash(ACCT) == pytest.approx(CASH - 211.0)
    events = _settle(b, 605.0)
    assert kinds(events) == ["SettlementExecuted", "PositionChanged", "SettlementExecuted", "PositionChanged",
                             "AccountChanged"]
    assert _qty(b, C600.con_id) == 0 and _row(b, C600.con_id)[2] == pytest.approx(-211.0)
    assert _row(b, SPY.con_id) == (100.0, 600.0, 0.0)
    assert b.ledger.cash(ACCT) == pytest.approx(CASH - 211.0 - 60_000.0)
    spy = next(r for r in b.positions(ACCT) if r.contract.con_id == SPY.con_id)
    assert spy.market_price == 605.0 and spy.unrealized_pnl == pytest.approx(500.0)  # marked at the close
    values = {v.tag: v.value for v in b.account_values(ACCT)}
    assert values["RealizedPnL"] == "-211.00"


def test_short_put_in_the_money_is_assigned_and_the_premium_is_realised() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, P600, "SELL", 2, 1.90, 1)  # +380 premium − 1.30 commission
    _settle(b, 595.0)
    assert _qty(b, P600.con_id) == 0 and _row(b, P600.con_id)[2] == pytest.approx(378.70)
    assert _row(b, SPY.con_id)[:2] == (200.0, 600.0)
    assert b.ledger.cash(ACCT) == pytest.approx(CASH + 378.70 - 120_000.0)


def test_short_call_assigned_against_held_stock_closes_it_with_exact_pnl() -> None:
    b = SimBroker({ACCT: CASH})
    b.on_market("SPY", 590.0, 590.0, 590.0, T0)
    assert states(b.submit(1, order(1, "BUY", 100, "LMT", SPY, lmt_price=590.0), T0))[-1] == (1, "Filled")
    _open(b, C600, "SELL", 1, 3.00, 2)  # covered call: +300 − 1.00
    cash_before = b.ledger.cash(ACCT)
    _settle(b, 610.0)
    assert _qty(b, SPY.con_id) == 0 and _qty(b, C600.con_id) == 0
    assert _row(b, SPY.con_id)[2] == pytest.approx(60_000.0 - 59_001.0)  # sold at 600, bought at 590 + 1.00
    assert _row(b, C600.con_id)[2] == pytest.approx(299.0)
    assert b.ledger.cash(ACCT) == pytest.approx(cash_before + 60_000.0)


def test_long_put_in_the_money_sells_shares_short_at_the_strike() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, P600, "BUY", 1, 1.50, 1)
    _settle(b, 590.0)
    assert _row(b, SPY.con_id)[:2] == (-100.0, 600.0)
    assert b.ledger.cash(ACCT) == pytest.approx(CASH - 151.0 + 60_000.0)


@pytest.mark.parametrize(("option", "action", "close", "realised"), [
    (C600, "BUY", 599.0, -211.0),     # long lapses: the cost is lost
    (C600, "SELL", 600.009, 209.0),   # short lapses: the premium (2.10 × 100 − 1.00) is kept
    (P600, "BUY", 600.0, -211.0),
    (P600, "SELL", 650.0, 209.0),
])
def test_out_of_the_money_expires_worthless(option: ContractKey, action: str, close: float, realised: float) -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, option, action, 1, 2.10, 1)
    cash = b.ledger.cash(ACCT)
    events = _settle(b, close)
    assert kinds(events) == ["SettlementExecuted", "PositionChanged", "AccountChanged"]
    assert _row(b, option.con_id)[0] == 0 and _row(b, option.con_id)[2] == pytest.approx(realised)
    assert b.ledger.cash(ACCT) == cash and all(r.contract.sec_type == "OPT" for r in b.portfolio(ACCT))
    [position] = [e for e in events if isinstance(e, PositionChanged)]
    assert position.row.position == 0 and position.client_id == 0


def test_exactly_one_cent_in_the_money_is_exercised_and_less_expires() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 0.05, 1)
    assert [r["outcome"] for r in settlement_rows(_settle(b, 600.01))] == ["exercised"]
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 0.05, 1)
    assert [r["outcome"] for r in settlement_rows(_settle(b, 600.009))] == ["expired"]


def test_every_account_is_settled_and_other_expiries_are_untouched() -> None:
    other = "DU7654321"
    b = SimBroker({ACCT: CASH, other: CASH})
    _open(b, C600, "BUY", 1, 2.00, 1)
    _open(b, C600, "SELL", 1, 2.00, 2, account=other)
    _open(b, C600_LATER, "BUY", 1, 3.00, 3)
    _open(b, P600, "BUY", 1, 0.50, 4, account=other)
    rows = settlement_rows(_settle(b, 604.0))
    assert [(r["account"], r["conId"], r["qty"], r["outcome"], r["shares"]) for r in rows] == [
        (ACCT, C600.con_id, 1.0, "exercised", 100.0),
        (other, C600.con_id, -1.0, "assigned", -100.0),
        (other, P600.con_id, 1.0, "expired", 0.0),
    ]
    assert _qty(b, C600_LATER.con_id) == 1 and _qty(b, SPY.con_id) == 100 and _qty(b, SPY.con_id, other) == -100
    assert _settle(b, 604.0) == []  # nothing left to settle today


def test_open_orders_on_the_expiring_option_are_cancelled_first() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 2.00, 1)
    assert states(b.submit(1, order(2, "SELL", 1, "LMT", C600, lmt_price=9.0, tif="GTC"), T0)) == [(2, SUBMITTED)]
    assert states(b.submit(1, order(3, "SELL", 1, "LMT", C600_LATER, lmt_price=9.0, tif="GTC"), T0)) == [
        (3, SUBMITTED)]
    events = _settle(b, 599.0)
    assert states(events) == [(2, CANCELLED)]
    assert kinds(events)[1:] == ["SettlementExecuted", "PositionChanged", "AccountChanged"]
    assert [o.order_id for o in b.open_orders()] == [3]


def test_settlement_executions_belong_to_no_order_and_are_replayed_that_day() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 2, 2.10, 7)
    events = _settle(b, 603.5)
    legs = [e for e in events if isinstance(e, SettlementExecuted)]
    assert [(e.leg, e.outcome) for e in legs] == [("option", "exercised"), ("stock", "exercised")]
    option, stock = (e.record.execution for e in legs)
    assert (option.side, option.shares, option.price, option.contract) == ("SLD", 2, 0.0, C600)
    assert (stock.side, stock.shares, stock.price, stock.contract.con_id) == ("BOT", 200, 600.0, SPY.con_id)
    for leg in legs:
        e = leg.record.execution
        assert (e.order_id, e.perm_id, e.client_id, e.order_ref, e.time) == (0, 0, 0, "", CLOSE)
        assert leg.record.commission.commission == 0.0
    assert legs[0].record.commission.realized_pnl == pytest.approx(-421.30)
    assert legs[1].record.commission.realized_pnl is None  # opened a position
    today = b.executions(CLOSE + timedelta(minutes=5))
    assert [x.execution.order_id for x in today] == [7, 0, 0]
    assert b.executions(CLOSE + timedelta(days=1)) == []  # reqExecutions: since midnight only
    [account] = [e for e in events if isinstance(e, AccountChanged)]
    assert account.account == ACCT


def test_a_delivered_stock_position_is_marked_by_later_quotes() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 2.10, 1)
    _settle(b, 605.0)
    b.on_market("SPY", 606.00, 606.02, 606.01, CLOSE + timedelta(days=1, hours=-6))
    spy = next(r for r in b.positions(ACCT) if r.contract.con_id == SPY.con_id)
    assert spy.market_price == pytest.approx(606.01)
    assert spy.unrealized_pnl == pytest.approx(601.0)


def test_missing_close_leaves_the_position_alone() -> None:
    b = SimBroker({ACCT: CASH})
    _open(b, C600, "BUY", 1, 2.10, 1)
    assert b.settle_expiring(DAY, {"QQQ": 500.0}, CLOSE) == []
    assert _qty(b, C600.con_id) == 1
