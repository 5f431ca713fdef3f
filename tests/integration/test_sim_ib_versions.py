"""The simulated gateway end to end with the real ib_async client: older server versions and generic ticks.

ib_async 2.1 always advertises ``v157..178``, so to make it speak an older version the *gateway* is
capped (``IBGatewayServer(server_version=…)``, as an older TWS would be): the client's own handshake
code then sets its decoder to that version and reads every order, fill, error and contract detail
with that version's layout. Any message it cannot read is logged by ``ib_async.Decoder`` and fails
the test. Field-for-field checks at every version live in ``tests/unit/test_sim_versions.py``.
"""

from __future__ import annotations

import asyncio
import math
from datetime import date

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Option, Stock, Ticker

from qc.core import clock
from qc.sim.ib import ticks
from qc.sim.ib.history import SESSION_MINUTES
from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    ACCOUNT,
    Gateway,
    LogCapture,
    client_loop_fixture,
    errors_of,
    gateway_fixture,
    ib_eventually,
    ib_log_fixture,
    start_gateway,
    stop_gateway,
)

READY_S = 30.0  # generous: a loaded 2-core machine; every wait returns as soon as the condition holds


def _decoder_failures(log: LogCapture) -> list[str]:
    return [r.getMessage() for r in log.records if r.name == "ib_async.Decoder"]


def _stock(ib: IB, symbol: str) -> Stock:
    c = Stock(symbol, "SMART", "USD")
    assert ib.qualifyContracts(c) == [c]
    return c


@pytest.mark.parametrize("sv", [157, 176])
def test_an_older_gateway_version_serves_orders_fills_and_details(sv: int, client_loop: asyncio.AbstractEventLoop,
                                                                  ib_log: LogCapture) -> None:
    gw = start_gateway(server_version=sv)
    try:
        _orders_fills_and_details(gw, sv)
        assert _decoder_failures(ib_log) == []
    finally:
        stop_gateway(gw)


def _orders_fills_and_details(gw: Gateway, sv: int) -> None:
    ib = gw.client(50)
    assert ib.client.serverVersion() == sv
    assert gw.call(lambda: gw.server.client_sessions[50].version) == sv
    errors = errors_of(ib)
    spy = _stock(ib, "SPY")  # contractDetails in this version's layout
    gw.server.set_quote(spy.conId, 100.00, 100.02, 100.01).result(5)

    resting = ib.placeOrder(spy, LimitOrder("BUY", 10, 90.0, account=ACCOUNT, orderRef="rest", tif="GTC"))
    ib_eventually(ib, lambda: resting.orderStatus.status == "Submitted", READY_S, "resting order submitted")
    assert resting.order.permId > 0  # learnt from this version's openOrder

    buy = ib.placeOrder(spy, MarketOrder("BUY", 100, account=ACCOUNT, orderRef="v-test"))
    ib_eventually(ib, lambda: bool(buy.fills) and buy.fills[0].commissionReport.commission > 0, READY_S,
                  "market order filled with its commission")
    assert (buy.orderStatus.status, buy.orderStatus.filled, buy.orderStatus.avgFillPrice) == ("Filled", 100, 100.02)
    e = buy.fills[0].execution
    assert (e.orderId, e.clientId, e.permId, e.acctNumber, e.side, e.shares, e.price) == (
        buy.order.orderId, 50, buy.order.permId, ACCOUNT, "BOT", 100, 100.02)
    assert (e.cumQty, e.avgPrice, e.orderRef, e.pendingPriceRevision) == (100, 100.02, "v-test", False)
    assert buy.fills[0].contract.conId == spy.conId

    ib.cancelOrder(resting.order)
    ib_eventually(ib, lambda: resting.orderStatus.status == "Cancelled", READY_S, "cancel confirmed")
    ib_eventually(ib, lambda: any(code == 202 and rid == resting.order.orderId for rid, code, _ in errors), READY_S)

    done = {t.order.permId: t for t in ib.reqCompletedOrders(apiOnly=False)}
    filled = done[buy.order.permId]
    assert (filled.order.action, filled.order.totalQuantity, filled.order.orderType, filled.order.account) == (
        "BUY", 100, "MKT", ACCOUNT)
    assert (filled.order.filledQuantity, filled.orderStatus.status, filled.contract.conId) == (100, "Filled", spy.conId)
    assert done[resting.order.permId].order.lmtPrice == 90.0

    (again,) = [f for f in ib.reqExecutions() if f.execution.orderId == buy.order.orderId]
    assert (again.execution.execId, again.execution.price, again.execution.permId) == (e.execId, 100.02, e.permId)

    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    opt = Option("SPY", chain.expirations[1], chain.strikes[len(chain.strikes) // 2], "P", "SMART")
    assert ib.qualifyContracts(opt) == [opt]
    expiry = date(int(opt.lastTradeDateOrContractMonth[:4]), int(opt.lastTradeDateOrContractMonth[4:6]),
                  int(opt.lastTradeDateOrContractMonth[6:]))
    assert opt.localSymbol == f"SPY   {expiry:%y%m%d}P{round(opt.strike * 1000):08d}"
    (details,) = ib.reqContractDetails(opt)
    assert (details.underConId, details.underSymbol, details.minSize) == (spy.conId, "SPY", 1 if sv >= 164 else 0)


def test_option_generic_ticks_fill_the_underlyings_ticker(gateway: Gateway, ib_log: LogCapture) -> None:
    ib = gateway.client(51)
    spy = _stock(ib, "SPY")
    t = ib.reqMktData(spy, "100,101,104,106")

    def filled(tk: Ticker) -> bool:
        values = (tk.callVolume, tk.putVolume, tk.callOpenInterest, tk.putOpenInterest, tk.histVolatility,
                  tk.impliedVolatility)
        return not any(math.isnan(x) for x in values)

    ib_eventually(ib, lambda: filled(t), READY_S, "generic ticks 100, 101, 104, 106")
    seen = (t.callVolume, t.putVolume, t.callOpenInterest, t.putOpenInterest)

    def chain_now() -> tuple[ticks.ChainStats, float | None]:
        now = gateway.clock.now()
        chain = gateway.model.option_chain("SPY", now)
        session = clock.most_recent_session(now)
        bars = gateway.model.history("SPY", session.open, (ticks.VOL_DAYS + 1) * SESSION_MINUTES)
        hist = ticks.historical_vol(ticks.daily_closes(bars)[-(ticks.VOL_DAYS + 1):])
        return ticks.chain_stats(chain, gateway.model.spot("SPY"), clock.new_york_date(now)), hist

    later, hist_vol = gateway.call(chain_now)
    assert (seen[2], seen[3]) == (later.call_open_interest, later.put_open_interest)  # fixed for the session
    assert 0 < seen[0] <= later.call_volume and 0 < seen[1] <= later.put_volume  # volumes only grow
    assert t.histVolatility == hist_vol
    assert 0.5 * 0.15 < t.impliedVolatility < 2 * 0.15  # SPY's model vol is 0.15
    assert _decoder_failures(ib_log) == []
