"""Orders through the simulated gateway with the real ib_async client: brackets, trails, restarts, faults.

Prices are driven deterministically with ``IBGatewayServer.set_quote``: it pins a con_id to a quote,
so the pump no longer quotes that contract from the model.
"""

from __future__ import annotations

from ib_async import IB, LimitOrder, MarketOrder, Option, Order, Stock, Trade

from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    ACCOUNT,
    Gateway,
    client_loop_fixture,
    errors_of,
    gateway_fixture,
    ib_eventually,
)


def _qualified(ib: IB, contract: Stock | Option) -> Stock | Option:
    assert ib.qualifyContracts(contract) == [contract]
    return contract


def _option(gw: Gateway, ib: IB) -> Option:
    spy = _qualified(ib, Stock("SPY", "SMART", "USD"))
    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    spot = gw.call(lambda: gw.model.spot("SPY"))
    strike = min(chain.strikes, key=lambda k: abs(k - spot))
    return _qualified(ib, Option("SPY", chain.expirations[3], strike, "C", "SMART"))  # type: ignore[return-value]


def _quote(gw: Gateway, con_id: int, bid: float, ask: float, last: float) -> None:
    gw.server.set_quote(con_id, bid, ask, last).result(5)


def _status(t: Trade) -> str:
    return str(t.orderStatus.status)


def test_option_bracket_fills_parent_then_children_cancel_each_other(gateway: Gateway) -> None:
    ib = gateway.client(21)
    opt = _option(gateway, ib)
    _quote(gateway, opt.conId, 2.00, 2.10, 2.05)
    parent, take, stop = ib.bracketOrder("BUY", 2, limitPrice=2.15, takeProfitPrice=2.60, stopLossPrice=1.60)
    trades = [ib.placeOrder(opt, o) for o in (parent, take, stop)]
    ib_eventually(ib, lambda: _status(trades[0]) == "Filled", what="marketable parent fills")
    assert trades[0].orderStatus.avgFillPrice == 2.10  # taker at the ask
    ib_eventually(ib, lambda: trades[0].fills and trades[0].fills[0].commissionReport.commission > 0)
    ib_eventually(ib, lambda: _status(trades[1]) == "Submitted" and _status(trades[2]) == "PreSubmitted")
    assert trades[1].order.parentId == trades[2].order.parentId == parent.orderId
    ib_eventually(ib, lambda: any(p.contract.conId == opt.conId and p.position == 2 for p in ib.positions()))
    _quote(gateway, opt.conId, 2.62, 2.70, 2.65)  # the take-profit's limit is crossed
    ib_eventually(ib, lambda: _status(trades[1]) == "Filled" and _status(trades[2]) == "Cancelled")
    assert trades[1].orderStatus.avgFillPrice == 2.60  # a resting limit fills at its own price
    ib_eventually(ib, lambda: not [p for p in ib.positions() if p.contract.conId == opt.conId and p.position])
    assert not ib.openTrades()


def test_trailing_stop_follows_the_price_and_triggers(gateway: Gateway) -> None:
    ib = gateway.client(22)
    qqq = _qualified(ib, Stock("QQQ", "SMART", "USD"))
    _quote(gateway, qqq.conId, 100.00, 100.02, 100.01)
    buy = ib.placeOrder(qqq, MarketOrder("BUY", 100))
    ib_eventually(ib, lambda: _status(buy) == "Filled")
    trail = ib.placeOrder(qqq, Order(action="SELL", totalQuantity=100, orderType="TRAIL", auxPrice=1.0))
    ib_eventually(ib, lambda: _status(trail) == "PreSubmitted")  # IB-simulated until triggered

    def stop() -> float | None:
        snap = gateway.broker.order(22, trail.order.orderId)
        return None if snap is None else snap.trail_stop_price

    assert gateway.call(stop) == 99.01
    _quote(gateway, qqq.conId, 102.00, 102.02, 102.01)
    assert gateway.call(stop) == 101.01  # followed the last trade up
    _quote(gateway, qqq.conId, 101.50, 101.52, 101.51)
    assert gateway.call(stop) == 101.01  # never moves back
    ib.sleep(0.1)
    assert _status(trail) == "PreSubmitted"
    _quote(gateway, qqq.conId, 100.90, 100.92, 100.91)  # above the first stop, below the moved one
    ib_eventually(ib, lambda: _status(trail) == "Filled")
    assert trail.orderStatus.avgFillPrice == 100.90


def test_restart_rebuilds_open_orders_and_executions_with_commissions(gateway: Gateway) -> None:
    ib = gateway.client(23)
    qqq = _qualified(ib, Stock("QQQ", "SMART", "USD"))
    _quote(gateway, qqq.conId, 50.00, 50.02, 50.01)
    parent, take, stop = ib.bracketOrder("BUY", 10, limitPrice=50.05, takeProfitPrice=55.0, stopLossPrice=45.0)
    trades = [ib.placeOrder(qqq, o) for o in (parent, take, stop)]
    ib_eventually(ib, lambda: _status(trades[0]) == "Filled" and _status(trades[2]) == "Submitted")
    exec_id = trades[0].fills[0].execution.execId
    ib.disconnect()
    ib_eventually(ib, lambda: gateway.server.sessions == (), what="server saw the disconnect")

    again = gateway.client(23)
    open_ids = sorted(t.order.orderId for t in again.openTrades())
    assert open_ids == [take.orderId, stop.orderId]
    assert {t.order.parentId for t in again.openTrades()} == {parent.orderId}
    [fill] = [f for f in again.fills() if f.execution.execId == exec_id]
    assert fill.execution.shares == 10 and fill.execution.price == 50.02
    assert fill.commissionReport.commission > 0
    assert [(p.contract.conId, p.position) for p in again.positions()] == [(qqq.conId, 10.0)]
    assert again.client.getReqId() > stop.orderId  # nextValidId beyond every id used before


def test_order_faults_and_unknown_contracts(gateway: Gateway) -> None:
    ib = gateway.client(24)
    errors = errors_of(ib)
    qqq = _qualified(ib, Stock("QQQ", "SMART", "USD"))
    _quote(gateway, qqq.conId, 80.00, 80.02, 80.01)
    gateway.server.reject_next_order("simulated margin check")
    rejected = ib.placeOrder(qqq, LimitOrder("BUY", 5, 80.05))
    ib_eventually(ib, lambda: _status(rejected) == "Cancelled")
    assert any(code == 201 and "simulated margin check" in msg for _, code, msg in errors)
    gateway.server.fill_next_partially(0.4)
    partial = ib.placeOrder(qqq, LimitOrder("BUY", 10, 80.05))
    ib_eventually(ib, lambda: _status(partial) == "Filled")  # the rest fills at the next look at the market
    assert [f.execution.shares for f in partial.fills] == [4.0, 6.0]
    resting = ib.placeOrder(qqq, LimitOrder("BUY", 10, 70.0))
    ib_eventually(ib, lambda: _status(resting) == "Submitted")
    ib.cancelOrder(resting.order)
    ib_eventually(ib, lambda: _status(resting) == "Cancelled")
    unknown = ib.placeOrder(Stock("NOPE", "SMART", "USD"), LimitOrder("BUY", 1, 1.0))
    ib_eventually(ib, lambda: _status(unknown) == "Cancelled")
    assert any(code == 200 for _, code, _ in errors)
    summary = ib.accountSummary(ACCOUNT)
    assert any(v.tag == "NetLiquidation" for v in summary)


def test_a_pinned_option_quote_is_what_its_market_data_reports(gateway: Gateway) -> None:
    ib = gateway.client(25)
    opt = _option(gateway, ib)
    ticker = ib.reqMktData(opt)
    ib_eventually(ib, lambda: ticker.bid > 0 and ticker.ask > 0, what="the model's quote")
    for bid, ask in ((40.00, 40.10), (41.00, 41.10)):  # walking the premium: far from the model's price
        _quote(gateway, opt.conId, bid, ask, bid)

        def shows(b: float = bid, a: float = ask) -> bool:
            return (ticker.bid, ticker.ask) == (b, a)

        ib_eventually(ib, shows, what=f"pinned {bid}")
    late = gateway.client(26)
    late_ticker = late.reqMktData(opt)
    ib_eventually(late, lambda: (late_ticker.bid, late_ticker.ask) == (41.00, 41.10), what="a pinned snapshot")
    seen = ticker.time
    ib_eventually(ib, lambda: ticker.time != seen, what="the next 1-s option refresh")
    assert (ticker.bid, ticker.ask) == (41.00, 41.10)  # the pin holds over the model's refresh
    assert gateway.server.unpin(opt.conId).result(5) is True
    ib_eventually(ib, lambda: ticker.bid < 40 and ticker.ask < 40, what="back to the model's quote")
    assert gateway.server.unpin(opt.conId).result(5) is False


def test_an_unpinned_stock_trades_at_the_models_price_again(gateway: Gateway) -> None:
    ib = gateway.client(27)
    qqq = _qualified(ib, Stock("QQQ", "SMART", "USD"))
    _quote(gateway, qqq.conId, 1.00, 1.01, 1.00)  # absurd on purpose: far from the model's QQQ
    assert gateway.server.unpin(qqq.conId).result(5) is True
    buy = ib.placeOrder(qqq, MarketOrder("BUY", 1))
    ib_eventually(ib, lambda: _status(buy) == "Filled")
    model_ask = gateway.call(lambda: gateway.model.quote("QQQ").ask)
    assert abs(buy.orderStatus.avgFillPrice - model_ask) < 0.05 * model_ask
