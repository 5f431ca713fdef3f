"""Option lifecycle through the simulated gateway with the real ib_async client: a same-day option
bought before the close is exercised or expires when the (fake) clock crosses 16:00 New York, and the
client sees it as position changes plus settlement executions (orderId 0, permId 0, no orderRef)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from ib_async import IB, MarketOrder, Option, Stock, Trade

from qc.core.clock import NEW_YORK, FakeClock
from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    ACCOUNT,
    Gateway,
    client_loop_fixture,
    ib_eventually,
    start_gateway,
    stop_gateway,
)

BEFORE_CLOSE = datetime(2026, 3, 10, 15, 58, tzinfo=NEW_YORK).astimezone(timezone.utc)  # a Tuesday session
EXPIRY = "20260310"


@pytest.fixture(name="late")
def late_fixture(client_loop: object) -> Iterator[tuple[Gateway, FakeClock]]:
    """A gateway two minutes before the close whose time moves only when the test advances it."""
    clk = FakeClock(BEFORE_CLOSE)
    gw = start_gateway(clk, start=BEFORE_CLOSE)
    yield gw, clk
    stop_gateway(gw)


def _same_day(ib: IB, gw: Gateway, right: str, offset: float) -> Option:
    """Today's SPY option of ``right`` whose strike is the listed one nearest spot + ``offset``."""
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    assert EXPIRY in chain.expirations
    spot = gw.call(lambda: gw.model.spot("SPY"))
    strike = min(chain.strikes, key=lambda k: abs(k - (spot + offset)))
    opt = Option("SPY", EXPIRY, strike, right, "SMART")
    assert ib.qualifyContracts(opt) == [opt]
    return opt


def _buy(ib: IB, gw: Gateway, opt: Option, price: float) -> Trade:
    gw.server.set_quote(opt.conId, price, price + 0.05, price).result(5)
    trade = ib.placeOrder(opt, MarketOrder("BUY", 1, orderRef="qc-lifecycle"))
    ib_eventually(ib, lambda: trade.orderStatus.status == "Filled", what="the option fills")
    return trade


def test_same_day_options_settle_at_the_close(late: tuple[Gateway, FakeClock]) -> None:
    gw, clk = late
    ib = gw.client(51)
    call = _same_day(ib, gw, "C", -8.0)  # deep in the money: exercised
    put = _same_day(ib, gw, "P", -8.0)   # far out of the money: expires
    _buy(ib, gw, call, 8.0)
    _buy(ib, gw, put, 0.05)
    ib_eventually(ib, lambda: {p.contract.conId for p in ib.positions()} == {call.conId, put.conId})
    spy_id = gw.call(lambda: gw.server.catalog.stock_con_id("SPY"))

    clk.advance(150)  # past 16:00: on_close, end_of_day, settlement
    ib_eventually(ib, lambda: [(p.contract.conId, p.position) for p in ib.positions()] == [(spy_id, 100.0)],
                  timeout_s=10, what="the option positions become 100 shares")
    [stock] = ib.positions()
    assert stock.avgCost == call.strike  # bought at the strike
    close = gw.call(lambda: gw.server.closing_prices()["SPY"])
    assert close - call.strike >= 0.01 and put.strike - close < 0.01

    settled = [f for f in ib.reqExecutions() if f.execution.permId == 0]
    rows = sorted((f.contract.conId, f.execution.side, f.execution.shares, f.execution.price) for f in settled)
    assert rows == sorted([(call.conId, "SLD", 1.0, 0.0), (put.conId, "SLD", 1.0, 0.0),
                           (spy_id, "BOT", 100.0, call.strike)])
    for f in settled:
        assert (f.execution.orderId, f.execution.orderRef, f.commissionReport.commission) == (0, "", 0.0)
    assert {f.execution.execId for f in ib.fills()} >= {f.execution.execId for f in settled}  # also sent live
    ours = [f for f in ib.reqExecutions() if f.execution.orderRef == "qc-lifecycle"]
    assert len(ours) == 2


def test_settle_now_settles_before_the_close_at_the_pinned_underlying(late: tuple[Gateway, FakeClock]) -> None:
    gw, _clk = late
    ib = gw.client(52)
    put = _same_day(ib, gw, "P", 0.0)
    _buy(ib, gw, put, 1.00)
    ib_eventually(ib, lambda: [p.position for p in ib.positions()] == [1.0])
    gw.server.set_quote("SPY", put.strike - 2.01, put.strike - 1.99, put.strike - 2.0).result(5)
    events = gw.call(gw.server.settle_now)
    assert events
    spy_id = gw.call(lambda: gw.server.catalog.stock_con_id("SPY"))
    ib_eventually(ib, lambda: [(p.contract.conId, p.position) for p in ib.positions()] == [(spy_id, -100.0)],
                  what="the long put was exercised into a short stock position")
    [row] = gw.call(lambda: gw.broker.positions(ACCOUNT))
    assert row.average_cost == put.strike and row.market_price == pytest.approx(put.strike - 2.0)
