"""Every server-message encoder, read back by ib_async 2.1.0's own Decoder and Wrapper (ref §3, §4).

Each test drives the real ``IB`` API (reqMktDepth, placeOrder, reqContractDetailsAsync …) so
that ib_async registers the request exactly as in production, answers it with our frames and
asserts on the objects ib_async built: every field we meant must land where we meant it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from ib_async import LimitOrder, Option, Order, Stock
from ib_async.objects import DOMLevel, TickByTickAllLast, TickByTickBidAsk, TickByTickMidPoint

from qc.sim.ib import encode as enc
from qc.sim.ib import wire_orders as orders
from qc.sim.ib.wire import SERVER_VERSION, FrameSplitter
from qc.sim.ib.wire_types import (
    WireBar,
    WireCommission,
    WireContract,
    WireContractDetails,
    WireDepthExchange,
    WireExecution,
    WireOrder,
    WireOrderState,
    WirePosition,
    option_wire_contract,
)
from qc.sim.market.events import DepthOp
from qc.sim.market.models import OptionContract
from tests.unit.ib_session import ACCOUNT, CLIENT_ID, FIRST_ID, Session

SPY_ID = 756733
SV = SERVER_VERSION  # ib_session.Session negotiates the newest version
UTC = timezone.utc
SPY = WireContract(SPY_ID, "SPY", "STK", exchange="SMART", primary_exchange="ARCA", currency="USD",
                   local_symbol="SPY", trading_class="SPY")
OPT = OptionContract("SPY", date(2024, 1, 19), 450.0, "C")
OPT_WIRE = option_wire_contract(OPT, con_id=654321)


@pytest.fixture
def s() -> Iterator[Session]:
    session = Session()
    yield session
    session.close()


def fields_of(frame: bytes) -> list[str]:
    (out,) = FrameSplitter().feed(frame)
    return out


def stk() -> Stock:
    return Stock("SPY", "SMART", "USD", conId=SPY_ID)


def test_handshake_and_startup_messages_make_the_client_ready(s: Session) -> None:
    assert s.ib.client.getAccounts() == [ACCOUNT]
    assert s.ib.client.getReqId() == FIRST_ID
    assert [len(fields_of(m)) for m in (enc.next_valid_id(1), enc.managed_accounts(["A", "B"]))] == [3, 3]


def test_error_notice_and_order_reject_with_advanced_json(s: Session) -> None:
    seen: list[tuple[int, int, str]] = []
    s.ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code, msg))
    s.feed(enc.error(-1, 2104, "Market data farm connection is OK:usfarm", sv=SV))
    trade = s.ib.placeOrder(stk(), LimitOrder("BUY", 10, 1.0))
    s.feed(enc.error(trade.order.orderId, 201, "Order rejected - reason:", '{"rejectCode":"X"}', sv=SV),
           allow_errors=True)
    assert seen == [(-1, 2104, "Market data farm connection is OK:usfarm"),
                    (FIRST_ID, 201, "Order rejected - reason:")]
    assert trade.orderStatus.status == "Cancelled"
    assert trade.advancedError == '{"rejectCode":"X"}'
    assert len(fields_of(enc.error(-1, 2104, "x", sv=SV))) == 6


def test_current_time(s: Session) -> None:
    got = s.request(s.ib.reqCurrentTimeAsync, enc.current_time(1705674600))
    assert got == datetime(2024, 1, 19, 14, 30, tzinfo=UTC)


def _option_details() -> WireContractDetails:
    return WireContractDetails(
        OPT_WIRE, market_name="SPY", min_tick=0.01, under_con_id=SPY_ID, long_name="SPDR S&P 500 ETF TRUST",
        last_trade_time="16:00", time_zone_id="US/Eastern", sec_ids=(("ISIN", "US78462F1030"),),
        under_symbol="SPY", under_sec_type="STK", market_rule_ids="26,26", real_expiration_date="20240119")


def test_contract_details_option_has_occ_symbol_and_expiry_time(s: Session) -> None:
    query = Option("SPY", "20240119", 0.0, "", "SMART")
    got = s.request(lambda: s.ib.reqContractDetailsAsync(query),
                    enc.contract_details(FIRST_ID, _option_details(), sv=SV), enc.contract_details_end(FIRST_ID))
    (cd,) = got
    c = cd.contract
    assert (c.conId, c.symbol, c.secType, c.strike, c.right, c.multiplier) == (654321, "SPY", "OPT", 450.0, "C", "100")
    assert c.localSymbol == "SPY   240119C00450000" == OPT.occ_symbol
    assert (c.lastTradeDateOrContractMonth, cd.lastTradeTime, cd.timeZoneId) == ("20240119", "16:00", "US/Eastern")
    assert (c.exchange, c.currency, c.tradingClass, cd.marketName) == ("SMART", "USD", "SPY", "SPY")
    assert (cd.underConId, cd.underSymbol, cd.underSecType, cd.minTick) == (SPY_ID, "SPY", "STK", 0.01)
    assert cd.longName == "SPDR S&P 500 ETF TRUST"
    assert [(t.tag, t.value) for t in cd.secIdList] == [("ISIN", "US78462F1030")]
    assert (cd.marketRuleIds, cd.realExpirationDate, cd.minSize, cd.sizeIncrement) == ("26,26", "20240119", 1, 1)


def test_contract_details_stock_and_unknown_contract(s: Session) -> None:
    d = WireContractDetails(SPY, long_name="SPDR", industry="Funds", stock_type="ETF", valid_exchanges="SMART,ARCA")
    (cd,) = s.request(lambda: s.ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD")),
                      enc.contract_details(FIRST_ID, d, sv=SV), enc.contract_details_end(FIRST_ID))
    c = cd.contract
    assert (c.conId, c.primaryExchange, c.lastTradeDateOrContractMonth, cd.lastTradeTime) == (SPY_ID, "ARCA", "", "")
    assert (cd.industry, cd.stockType, cd.validExchanges, cd.timeZoneId) == ("Funds", "ETF", "SMART,ARCA", "US/Eastern")
    s.ib.RaiseRequestErrors = False
    none = s.request(lambda: s.ib.reqContractDetailsAsync(Stock("XXXX", "SMART", "USD")),
                     enc.error(FIRST_ID + 1, 200, "No security definition has been found for the request", sv=SV),
                     allow_errors=True)
    assert none == []


def test_sec_def_opt_params(s: Session) -> None:
    chains = s.request(lambda: s.ib.reqSecDefOptParamsAsync("SPY", "", "STK", SPY_ID),
                       enc.sec_def_opt_params(FIRST_ID, "SMART", SPY_ID, "SPY", "100", ["20240119", "20240126"],
                                              [445.0, 447.5, 450.0]),
                       enc.sec_def_opt_params(FIRST_ID, "CBOE", SPY_ID, "SPY", "100", ["20240119"], [450.0]),
                       enc.sec_def_opt_params_end(FIRST_ID))
    assert [(c.exchange, c.underlyingConId, c.tradingClass, c.multiplier) for c in chains] == [
        ("SMART", str(SPY_ID), "SPY", "100"), ("CBOE", str(SPY_ID), "SPY", "100")]
    assert chains[0].expirations == ["20240119", "20240126"]
    assert chains[0].strikes == [445.0, 447.5, 450.0]


def test_market_depth_l2_builds_dom_with_market_makers(s: Session) -> None:
    ticker = s.ib.reqMktDepth(stk(), 5, isSmartDepth=True)
    ts = datetime(2024, 1, 19, 15, tzinfo=UTC)
    s.feed(enc.market_depth_l2(FIRST_ID, 0, "ARCA", 0, 1, 450.01, 300),
           enc.market_depth_l2(FIRST_ID, 1, "NSDQ", 0, 1, 450.0, 200.5),
           enc.depth_op(FIRST_ID, DepthOp("SPY", ts, 0, 0, 0, 450.02, 100, "BATS")),
           enc.market_depth_l2(FIRST_ID, 0, "IEX", 1, 1, 450.01, 400))
    assert ticker.domBids == [DOMLevel(450.01, 400, "IEX"), DOMLevel(450.0, 200.5, "NSDQ")]
    assert ticker.domAsks == [DOMLevel(450.02, 100, "BATS")]
    assert [(t.position, t.operation, t.side, t.marketMaker) for t in ticker.domTicks] == [
        (0, 0, 1, "ARCA"), (1, 0, 1, "NSDQ"), (0, 0, 0, "BATS"), (0, 1, 1, "IEX")]
    s.feed(enc.market_depth_l2(FIRST_ID, 1, "NSDQ", 2, 1, 450.0, 0), enc.market_depth(FIRST_ID, 1, 0, 0, 450.03, 50))
    assert ticker.domBids == [DOMLevel(450.01, 400, "IEX")]
    assert ticker.domAsks == [DOMLevel(450.02, 100, "BATS"), DOMLevel(450.03, 50, "")]
    assert fields_of(enc.market_depth_l2(9000, 0, "OVERNIGHT", 0, 1, 235.84, 300)) == \
        ["13", "1", "9000", "0", "OVERNIGHT", "0", "1", "235.84", "300", "1"]  # a real capture (ref §3)


def test_realtime_bar(s: Session) -> None:
    bars = s.ib.reqRealTimeBars(stk(), 5, "TRADES", False)
    s.feed(enc.realtime_bar(FIRST_ID, 1705676400, 450.0, 450.5, 449.75, 450.25, 12_300, 450.1, 42))
    (bar,) = bars
    assert bar.time == datetime(2024, 1, 19, 15, tzinfo=UTC)
    assert (bar.open_, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count) == (
        450.0, 450.5, 449.75, 450.25, 12_300, 450.1, 42)


def test_tick_by_tick_all_last_bid_ask_mid(s: Session) -> None:
    last = s.ib.reqTickByTickData(stk(), "AllLast")
    quotes = s.ib.reqTickByTickData(Stock("QQQ", "SMART", "USD", conId=320227571), "BidAsk")
    mids = s.ib.reqTickByTickData(Stock("IWM", "SMART", "USD", conId=9579970), "MidPoint")
    s.feed(enc.tick_by_tick_last(FIRST_ID, 1705676400, 450.12, 100, "ARCA", "", unreported=True),
           enc.tick_by_tick_bid_ask(FIRST_ID + 1, 1705676400, 410.1, 410.12, 300, 200, ask_past_high=True),
           enc.tick_by_tick_mid(FIRST_ID + 2, 1705676400, 195.505))
    (t,) = last.tickByTicks
    assert isinstance(t, TickByTickAllLast)
    assert (t.tickType, t.price, t.size, t.exchange, t.specialConditions) == (2, 450.12, 100, "ARCA", "")
    assert (t.tickAttribLast.pastLimit, t.tickAttribLast.unreported) == (False, True)
    (q,) = quotes.tickByTicks
    assert isinstance(q, TickByTickBidAsk)
    assert (q.bidPrice, q.askPrice, q.bidSize, q.askSize) == (410.1, 410.12, 300, 200)
    assert (q.tickAttribBidAsk.bidPastLow, q.tickAttribBidAsk.askPastHigh) == (False, True)
    (m,) = mids.tickByTicks
    assert isinstance(m, TickByTickMidPoint)
    assert m.midPoint == 195.505
    assert fields_of(enc.tick_by_tick_last(1, 5, 1.5, 2, "X", all_last=False))[2] == "1"


def test_level1_ticks_market_data_type_and_req_params(s: Session) -> None:
    ticker = s.ib.reqMktData(stk(), "100,101,106,225")
    r = FIRST_ID
    s.feed(enc.market_data_type(r, 3), enc.tick_req_params(r, 0.01, "9c0001", 3),
           enc.tick_price(r, 1, 450.01, 300), enc.tick_price(r, 2, 450.02, 100), enc.tick_price(r, 4, 450.015, 7),
           enc.tick_size(r, 8, 1_234_567), enc.tick_string(r, 84, "P"), enc.tick_string(r, 45, "1705676400"),
           enc.tick_generic(r, 24, 0.1534))
    assert (ticker.marketDataType, ticker.minTick, ticker.bboExchange, ticker.snapshotPermissions) == (
        3, 0.01, "9c0001", 3)
    assert (ticker.bid, ticker.bidSize, ticker.ask, ticker.askSize, ticker.last, ticker.lastSize) == (
        450.01, 300, 450.02, 100, 450.015, 7)
    assert (ticker.volume, ticker.lastExchange, ticker.impliedVolatility) == (1_234_567, "P", 0.1534)
    assert ticker.lastTimestamp == datetime(2024, 1, 19, 15, tzinfo=UTC)
    assert len(fields_of(enc.tick_price(r, 1, 1.0))) == 7


def test_tick_option_computation_model_and_unknown_values(s: Session) -> None:
    ticker = s.ib.reqMktData(Option("SPY", "20240119", 450, "C", "SMART", conId=654321))
    s.feed(enc.tick_option_computation(FIRST_ID, 13, 0.15, 0.52, 3.1, 0.0, 0.045, 0.21, -0.35, 450.2),
           enc.tick_option_computation(FIRST_ID, 10, None, None, 3.05, None, None, None, None, 450.2, tick_attrib=1))
    m, b = ticker.modelGreeks, ticker.bidGreeks
    assert m is not None and b is not None
    assert (m.impliedVol, m.delta, m.optPrice, m.pvDividend, m.gamma, m.vega, m.theta, m.undPrice) == (
        0.15, 0.52, 3.1, 0.0, 0.045, 0.21, -0.35, 450.2)
    assert (b.tickAttrib, b.impliedVol, b.delta, b.optPrice, b.gamma, b.undPrice) == (1, None, None, 3.05, None, 450.2)
    assert len(fields_of(enc.tick_option_computation(1, 13, 1, 1, 1, 1, 1, 1, 1, 1))) == 12


def test_mkt_depth_exchanges(s: Session) -> None:
    got = s.request(s.ib.reqMktDepthExchangesAsync, enc.mkt_depth_exchanges(
        [WireDepthExchange("ARCA", "STK", "", "Deep2", 1), WireDepthExchange("IEX", "STK", "", "Deep", 2)]))
    assert [(d.exchange, d.secType, d.listingExch, d.serviceDataType, d.aggGroup) for d in got] == [
        ("ARCA", "STK", "", "Deep2", 1), ("IEX", "STK", "", "Deep", 2)]


def test_positions_and_zero_position_removal(s: Session) -> None:
    p = WirePosition(ACCOUNT, OPT_WIRE, 3, 250.5)
    got = s.request(s.ib.reqPositionsAsync, enc.position(p), enc.position(WirePosition(ACCOUNT, SPY, -100, 449.9)),
                    enc.position_end())
    assert [(x.account, x.contract.conId, x.position, x.avgCost) for x in got] == [
        (ACCOUNT, 654321, 3, 250.5), (ACCOUNT, SPY_ID, -100, 449.9)]
    assert got[0].contract.localSymbol == "SPY   240119C00450000"
    assert (got[0].contract.lastTradeDateOrContractMonth, got[0].contract.right) == ("20240119", "C")
    s.feed(enc.position(WirePosition(ACCOUNT, SPY, 0, 0)))
    assert [x.contract.conId for x in s.ib.positions()] == [654321]
    assert len(fields_of(enc.position(p))) == 16


def test_account_summary(s: Session) -> None:
    s.request(s.ib.reqAccountSummaryAsync, enc.account_summary(FIRST_ID, ACCOUNT, "NetLiquidation", "100000.5", "USD"),
              enc.account_summary_end(FIRST_ID))
    (v,) = s.ib.accountSummary()
    assert (v.account, v.tag, v.value, v.currency) == (ACCOUNT, "NetLiquidation", "100000.5", "USD")


def test_account_updates_portfolio_time_and_download_end(s: Session) -> None:
    item = WirePosition(ACCOUNT, SPY, 100, 449.5, market_price=450.0, market_value=45_000, unrealized_pnl=50,
                        realized_pnl=12.5)
    s.request(lambda: s.ib.reqAccountUpdatesAsync(ACCOUNT),
              enc.update_account_value("NetLiquidation", "100000.5", "USD", ACCOUNT), enc.update_portfolio(item),
              enc.update_account_time("15:30"), enc.account_download_end(ACCOUNT))
    (v,) = s.ib.accountValues()
    assert (v.tag, v.value, v.currency, v.account) == ("NetLiquidation", "100000.5", "USD", ACCOUNT)
    (pi,) = s.ib.portfolio()
    assert (pi.contract.conId, pi.contract.primaryExchange, pi.position, pi.marketPrice, pi.marketValue) == (
        SPY_ID, "ARCA", 100, 450.0, 45_000)
    assert (pi.averageCost, pi.unrealizedPNL, pi.realizedPNL, pi.account) == (449.5, 50, 12.5, ACCOUNT)
    assert len(fields_of(enc.update_portfolio(item))) == 20


def test_account_update_multi(s: Session) -> None:
    s.request(lambda: s.ib.reqAccountUpdatesMultiAsync(ACCOUNT),
              enc.account_update_multi(FIRST_ID, ACCOUNT, "", "BuyingPower", "400000", "USD"),
              enc.account_update_multi_end(FIRST_ID))
    (v,) = s.ib.accountValues()
    assert (v.account, v.tag, v.value, v.currency, v.modelCode) == (ACCOUNT, "BuyingPower", "400000", "USD", "")


def test_historical_one_minute_bars_and_update(s: Session) -> None:
    t0 = datetime(2024, 1, 19, 14, 30, tzinfo=UTC)
    date1 = enc.ib_bar_date(t0, 1)
    assert date1 == "20240119 09:30:00 US/Eastern"
    bars = [WireBar(date1, 450.0, 450.5, 449.5, 450.25, 10_000, 450.1, 55),
            WireBar(enc.ib_bar_date(t0.replace(minute=31), 1), 450.25, 451, 450, 450.75, 8_000, 450.5, 40)]
    got = s.request(lambda: s.ib.reqHistoricalDataAsync(stk(), "", "1 D", "1 min", "TRADES", True, keepUpToDate=True),
                    enc.historical_data(FIRST_ID, "20240119 09:30:00 US/Eastern", "20240119 09:32:00 US/Eastern", bars))
    assert [b.date for b in got] == [t0.astimezone(ZoneInfo("US/Eastern")), datetime(2024, 1, 19, 9, 31,
                                                                                      tzinfo=ZoneInfo("US/Eastern"))]
    b = got[0]
    assert (b.open, b.high, b.low, b.close, b.volume, b.average, b.barCount) == (450.0, 450.5, 449.5, 450.25,
                                                                                 10_000, 450.1, 55)
    s.feed(enc.historical_data_update(FIRST_ID, WireBar(bars[1].date, 450.25, 451.5, 450, 451.25, 9_000, 450.6, 41)))
    assert (got[-1].high, got[-1].close, got[-1].volume, got[-1].barCount) == (451.5, 451.25, 9_000, 41)
    assert enc.ib_bar_date(t0, 2) == "1705674600"


def _wire_order(order_id: int, **kw: object) -> WireOrder:
    base: dict[str, object] = {"order_id": order_id, "action": "BUY", "total_quantity": 100, "order_type": "LMT",
                               "client_id": CLIENT_ID, "perm_id": 5_000 + order_id, "lmt_price": 450.25,
                               "account": ACCOUNT, "tif": "DAY"}
    return WireOrder(**{**base, **kw})  # type: ignore[arg-type]


def test_order_lifecycle_fill_commission_linked_through_perm_id(s: Session) -> None:
    trade = s.ib.placeOrder(stk(), LimitOrder("BUY", 100, 450.25, account=ACCOUNT))
    oid = trade.order.orderId
    o = _wire_order(oid)
    s.feed(orders.open_order(o, SPY, WireOrderState("Submitted"), sv=SV),
           orders.order_status(oid, "Submitted", 0, 100, 0, o.perm_id, 0, 0, CLIENT_ID))
    assert (trade.orderStatus.status, trade.order.permId) == ("Submitted", o.perm_id)
    ex = WireExecution(oid, "0001f4e8.65aa1b2c.01.01", "20240119 10:31:02 US/Eastern", ACCOUNT, "ARCA", "BOT",
                       100, 450.2, o.perm_id, CLIENT_ID, 100, 450.2, order_ref="qc-1")
    s.feed(orders.exec_details(-1, SPY, ex, sv=SV), orders.open_order(o, SPY, WireOrderState("Filled"), sv=SV),
           orders.order_status(oid, "Filled", 100, 0, 450.2, o.perm_id, 0, 450.2, CLIENT_ID),
           orders.commission_report(WireCommission(ex.exec_id, 1.0, "USD")))
    (fill,) = trade.fills
    e = fill.execution
    assert (e.execId, e.orderId, e.shares, e.price, e.side, e.exchange, e.acctNumber) == (
        ex.exec_id, oid, 100, 450.2, "BOT", "ARCA", ACCOUNT)
    assert (e.permId, e.clientId, e.cumQty, e.avgPrice, e.orderRef, e.lastLiquidity) == (
        o.perm_id, CLIENT_ID, 100, 450.2, "qc-1", 1)
    assert e.time == datetime(2024, 1, 19, 15, 31, 2, tzinfo=UTC)
    assert (fill.commissionReport.commission, fill.commissionReport.currency) == (1.0, "USD")
    assert fill.commissionReport.realizedPNL == 0.0
    assert (trade.orderStatus.status, trade.orderStatus.filled, trade.orderStatus.avgFillPrice) == (
        "Filled", 100, 450.2)
    assert len(fields_of(orders.exec_details(-1, SPY, ex, sv=SV))) == 32
    assert len(fields_of(orders.commission_report(WireCommission("x", 1.0)))) == 8
    assert len(fields_of(orders.order_status(1, "Submitted", 0, 1, 0, 1, 0, 0, 1))) == 12


def test_open_orders_rebuild_trail_and_bracket_child_after_restart(s: Session) -> None:
    trail = _wire_order(142, action="SELL", order_type="TRAIL", lmt_price=None, aux_price=1.25, trail_stop_price=448.75,
                        parent_id=141, oca_group="qc-oca-141", oca_type=1, tif="GTC", order_ref="qc-141-stop",
                        outside_rth=True, transmit=True)
    pct = _wire_order(143, action="SELL", order_type="TRAIL", lmt_price=None, trailing_percent=0.5,
                      trail_stop_price=447.0)
    got = s.request(s.ib.reqOpenOrdersAsync, orders.open_order(trail, SPY, WireOrderState("PreSubmitted"), sv=SV),
                    orders.order_status(142, "PreSubmitted", 0, 100, 0, trail.perm_id, 141, 0, CLIENT_ID),
                    orders.open_order(pct, SPY, WireOrderState("Submitted"), sv=SV), orders.open_order_end())
    t, p = got
    o = t.order
    assert (o.orderId, o.clientId, o.permId, o.action, o.totalQuantity, o.orderType) == (
        142, CLIENT_ID, trail.perm_id, "SELL", 100, "TRAIL")
    assert (o.auxPrice, o.trailStopPrice, o.parentId, o.ocaGroup, o.ocaType) == (1.25, 448.75, 141, "qc-oca-141", 1)
    assert (o.tif, o.account, o.orderRef, o.outsideRth, o.whatIf) == ("GTC", ACCOUNT, "qc-141-stop", True, False)
    assert (t.orderStatus.status, t.orderStatus.parentId, t.contract.conId) == ("PreSubmitted", 141, SPY_ID)
    assert (p.order.trailingPercent, p.order.trailStopPrice, p.orderStatus.status) == (0.5, 447.0, "Submitted")
    assert len(fields_of(orders.open_order(trail, SPY, WireOrderState("Submitted"), sv=SV))) == 127
    assert s.ib.client.getReqId() == 144  # ib_async bumps its ids past every orderId it sees


def test_executions_request_with_commission(s: Session) -> None:
    ex = WireExecution(9, "e1", "20240119 10:31:02 US/Eastern", ACCOUNT, "CBOE", "SLD", 2, 3.05, 77, CLIENT_ID, 2,
                       3.05)
    fills = s.request(s.ib.reqExecutionsAsync, orders.exec_details(FIRST_ID, OPT_WIRE, ex, sv=SV),
                      orders.commission_report(WireCommission("e1", 1.3, "USD", realized_pnl=40.5)),
                      orders.exec_details_end(FIRST_ID))
    (f,) = fills
    assert (f.contract.localSymbol, f.contract.strike, f.execution.side, f.execution.shares) == (
        OPT.occ_symbol, 450.0, "SLD", 2)
    assert f.time == datetime(2024, 1, 19, 15, 31, 2, tzinfo=UTC)
    assert (f.commissionReport.commission, f.commissionReport.realizedPNL) == (1.3, 40.5)


def test_completed_orders(s: Session) -> None:
    o = _wire_order(0, perm_id=9001, order_type="STP", lmt_price=None, aux_price=440.5, action="SELL",
                    filled_quantity=100, parent_perm_id=9000, oca_group="g")
    st = WireOrderState("Filled", completed_time="20240119 10:31:02 US/Eastern", completed_status="Filled")
    (t,) = s.request(lambda: s.ib.reqCompletedOrdersAsync(False), orders.completed_order(o, SPY, st, sv=SV),
                     orders.completed_orders_end())
    assert (t.order.permId, t.order.orderType, t.order.auxPrice, t.order.action, t.order.totalQuantity) == (
        9001, "STP", 440.5, "SELL", 100)
    o2 = t.order
    assert (o2.filledQuantity, o2.parentPermId, o2.ocaGroup, o2.account) == (100, 9000, "g", ACCOUNT)
    assert (t.orderStatus.status, t.contract.conId) == ("Filled", SPY_ID)
    assert s.ib.wrapper.trades[9001] is t


def test_encoders_never_emit_nul_inside_a_field_for_plain_values() -> None:
    frame = orders.open_order(_wire_order(1), OPT_WIRE, WireOrderState("Submitted"), sv=SV)
    assert frame[4:].count(b"\0") == 127
    assert Order().whatIf is False  # the openOrder whatIf slot must stay 0 (ref §4)
