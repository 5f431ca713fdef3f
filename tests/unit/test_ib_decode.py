"""Every request parser, fed the bytes ib_async 2.1.0's real ``Client`` writes (ref §2, §5).

One module-scoped capture: a tiny asyncio server on 127.0.0.1 (our handshake reply, managed
accounts and nextValidId from the codec itself) records every frame an unmodified ``IB`` client
sends while the test drives its public API. Requests are issued in a known order, so frame *n*
after startApi is request *n*; each test parses one and asserts every field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from ib_async import (
    IB,
    ComboLeg,
    Contract,
    ExecutionFilter,
    LimitOrder,
    MarketOrder,
    Option,
    Order,
    PriceCondition,
    Stock,
    StopOrder,
    TagValue,
)

from qc.sim.ib import decode as dec
from qc.sim.ib import encode as enc
from qc.sim.ib.wire import FrameSplitter, Handshake, encode_handshake_reply, negotiate_version, split_handshake
from qc.sim.ib.wire_types import WireContract

ACCOUNT = "DU1234567"
CLIENT_ID = 11
FIRST_ID = 500
SPY = Stock("SPY", "SMART", "USD", conId=756733, primaryExchange="ARCA")
OPT = Option("SPY", "20240119", 450.0, "C", "SMART", conId=654321, multiplier="100", currency="USD",
             localSymbol="SPY   240119C00450000", tradingClass="SPY")


@dataclass
class Capture:
    raw_handshake: bytes = b""
    frames: list[list[str]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, label: str) -> list[str]:
        return self.frames[1 + self.labels.index(label)]  # frame 0 is startApi

    def parse(self, label: str) -> Any:
        return dec.parse_request(self[label])


class _Recorder(asyncio.Protocol):
    """Loopback server side: handshake, then record frames; answers only what connect needs."""

    def __init__(self, cap: Capture, want: Callable[[], int], done: asyncio.Event) -> None:
        self.cap, self.want, self.done = cap, want, done
        self.buf = b""
        self.splitter: FrameSplitter | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.splitter is None:
            self.buf += data
            got = split_handshake(self.buf)
            if got is None:
                return
            hello, data = got
            self.cap.raw_handshake = self.buf[: len(self.buf) - len(data)]
            version = negotiate_version(hello)
            assert version is not None
            self.splitter = FrameSplitter()
            self.transport.write(encode_handshake_reply(version, "20240119 09:30:00 EST")  # type: ignore[attr-defined]
                                 + enc.managed_accounts([ACCOUNT]) + enc.next_valid_id(FIRST_ID))
        self.cap.frames += self.splitter.feed(data)
        if len(self.cap.frames) >= self.want():
            self.done.set()


def _orders(ib: IB) -> list[tuple[str, Contract, Order]]:
    bracket = ib.bracketOrder("BUY", 2, 3.10, 4.20, 2.50, account=ACCOUNT)
    oca = ib.oneCancelsAll([LimitOrder("SELL", 100, 460.0), StopOrder("SELL", 100, 440.0)], "qc-oca-1", 1)
    algo = LimitOrder("BUY", 100, 450.0, algoStrategy="Adaptive", algoParams=[TagValue("adaptivePriority", "Normal")],
                      conditions=[PriceCondition(price=455.0, conId=756733, exch="SMART")], conditionsIgnoreRth=True)
    bag = Contract(secType="BAG", symbol="SPY", exchange="SMART", currency="USD",
                   comboLegs=[ComboLeg(conId=654321, ratio=1, action="BUY", exchange="SMART"),
                              ComboLeg(conId=654322, ratio=1, action="SELL", exchange="SMART")])
    return [
        ("lmt", SPY, LimitOrder("BUY", 100, 450.25, tif="GTC", account=ACCOUNT, orderRef="qc-1", outsideRth=True)),
        ("stp", SPY, StopOrder("SELL", 100, 440.5, account=ACCOUNT)),
        ("trail_amount", SPY, Order(orderType="TRAIL", action="SELL", totalQuantity=100, auxPrice=1.25,
                                    trailStopPrice=448.0)),
        ("trail_percent", SPY, Order(orderType="TRAIL", action="SELL", totalQuantity=100, trailingPercent=0.5,
                                     trailStopPrice=447.0)),
        ("mkt", SPY, MarketOrder("BUY", 10)),
        ("moc", SPY, Order(orderType="MOC", action="SELL", totalQuantity=10)),
        ("loc", SPY, Order(orderType="LOC", action="BUY", totalQuantity=10, lmtPrice=451.0)),
        ("parent", OPT, bracket.parent), ("take_profit", OPT, bracket.takeProfit), ("stop_loss", OPT, bracket.stopLoss),
        ("oca_a", SPY, oca[0]), ("oca_b", SPY, oca[1]),
        ("algo_condition", SPY, algo),
        ("peg_mid", Stock("SPY", "IBKRATS", "USD", conId=756733),
         Order(orderType="PEG MID", action="BUY", totalQuantity=5, minTradeQty=5, midOffsetAtWhole=0.01,
               midOffsetAtHalf=0.005)),
        ("bag", bag, LimitOrder("BUY", 1, 0.55)),
    ]


def _requests(ib: IB, cap: Capture) -> list[tuple[str, Callable[[], object]]]:
    c: Any = ib.client  # untyped in ib_async

    def rid(label: str) -> int:
        cap.ids[label] = c.getReqId()
        return cap.ids[label]

    return [
        ("mkt_depth", lambda: ib.reqMktDepth(SPY, 10, isSmartDepth=True)),
        ("real_time_bars", lambda: ib.reqRealTimeBars(SPY, 5, "TRADES", False)),
        ("tick_by_tick", lambda: ib.reqTickByTickData(SPY, "AllLast", 0, False)),
        ("mkt_data", lambda: ib.reqMktData(SPY, "100,101,106,225", False, False)),
        ("cd_stk", lambda: c.reqContractDetails(rid("cd_stk"), Stock("SPY", "SMART", "USD"))),
        ("cd_opt", lambda: c.reqContractDetails(rid("cd_opt"), Option("SPY", "20240119", 0.0, "", "SMART"))),
        ("sec_def", lambda: c.reqSecDefOptParams(rid("sec_def"), "SPY", "", "STK", 756733)),
        ("historical", lambda: c.reqHistoricalData(rid("historical"), SPY, "", "1 D", "1 min", "TRADES", 1, 1,
                                                   False, [])),
        ("executions", lambda: c.reqExecutions(rid("executions"), ExecutionFilter(
            clientId=CLIENT_ID, acctCode=ACCOUNT, time="20240119 09:30:00", symbol="SPY", secType="STK",
            exchange="SMART", side="BUY"))),
        ("cancel_order", lambda: c.cancelOrder(777, "")),
        ("global_cancel", ib.reqGlobalCancel),
        ("ids", lambda: c.reqIds(1)), ("current_time", c.reqCurrentTime),
        ("market_data_type", lambda: ib.reqMarketDataType(3)),
        ("account_summary", lambda: c.reqAccountSummary(rid("account_summary"), "All", "NetLiquidation,$LEDGER:ALL")),
        ("account_updates", lambda: c.reqAccountUpdates(True, ACCOUNT)),
        ("account_updates_multi", lambda: c.reqAccountUpdatesMulti(rid("account_updates_multi"), ACCOUNT, "", False)),
        ("positions", c.reqPositions), ("open_orders", c.reqOpenOrders), ("all_open_orders", c.reqAllOpenOrders),
        ("auto_open_orders", lambda: c.reqAutoOpenOrders(True)), ("completed", lambda: c.reqCompletedOrders(False)),
        ("depth_exchanges", c.reqMktDepthExchanges),
        ("cancel_depth", lambda: c.cancelMktDepth(1, True)),
        ("cancel_bars", lambda: c.cancelRealTimeBars(2)), ("cancel_tbt", lambda: c.cancelTickByTickData(3)),
        ("cancel_mkt_data", lambda: c.cancelMktData(4)), ("cancel_hist", lambda: c.cancelHistoricalData(5)),
        ("cancel_summary", lambda: c.cancelAccountSummary(6)), ("cancel_positions", c.cancelPositions),
        ("cancel_multi", lambda: c.cancelAccountUpdatesMulti(8)),
    ]


async def _capture() -> Capture:
    cap, done = Capture(), asyncio.Event()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Recorder(cap, lambda: 1 + len(cap.labels), done), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ib = IB()
    client: Any = ib.client
    client.MaxRequests = 0  # documented switch: no throttling, we send ~50 requests at once
    try:
        await client.connectAsync("127.0.0.1", port, CLIENT_ID, timeout=5)
        for label, contract, order in _orders(ib):
            cap.labels.append(label)
            ib.placeOrder(contract, order)
            cap.ids[label] = order.orderId
        for label, send in _requests(ib, cap):
            cap.labels.append(label)
            send()
        await asyncio.wait_for(done.wait(), 5)
    finally:
        client.disconnect()
        server.close()
        await server.wait_closed()
    return cap


@pytest.fixture(scope="module")
def cap() -> Iterator[Capture]:
    loop = asyncio.new_event_loop()
    try:
        yield loop.run_until_complete(_capture())
    finally:
        loop.close()


def test_handshake_and_start_api(cap: Capture) -> None:
    got = split_handshake(cap.raw_handshake)
    assert got == (Handshake(157, 178, ""), b"")
    assert dec.parse_request(cap.frames[0]) == dec.StartApi(CLIENT_ID, "")
    assert len(cap.frames) == 1 + len(cap.labels)


SPY_WIRE = WireContract(756733, "SPY", "STK", "", 0.0, "", "", "SMART", "ARCA", "USD", "", "")
OPT_WIRE = WireContract(654321, "SPY", "OPT", "20240119", 450.0, "C", "100", "SMART", "", "USD",
                        "SPY   240119C00450000", "SPY")


def _common(p: dec.PlaceOrder, label: str, cap: Capture) -> None:
    assert isinstance(p, dec.PlaceOrder), p
    assert p.order_id == cap.ids[label]
    assert p.what_if is False
    assert len(cap[label]) >= 114


def test_place_order_limit(cap: Capture) -> None:
    p = cap.parse("lmt")
    _common(p, "lmt", cap)
    assert len(cap["lmt"]) == 114
    assert p.contract == SPY_WIRE
    assert (p.action, p.total_quantity, p.order_type, p.lmt_price, p.aux_price) == ("BUY", 100, "LMT", 450.25, None)
    assert (p.tif, p.account, p.order_ref, p.outside_rth, p.transmit, p.parent_id) == (
        "GTC", ACCOUNT, "qc-1", True, True, 0)
    assert (p.oca_group, p.oca_type, p.trail_stop_price, p.trailing_percent, p.volatility) == ("", 0, None, None, None)
    assert (p.open_close, p.min_qty, p.duration, p.post_to_ats, p.auto_cancel_parent) == ("O", None, None, None, False)
    assert p.extra("exempt_code") == "-1" and p.extra("settling_firm") == ""


@pytest.mark.parametrize(("label", "order_type", "action", "lmt", "aux", "trail_stop", "trail_pct"), [
    ("stp", "STP", "SELL", None, 440.5, None, None),
    ("trail_amount", "TRAIL", "SELL", None, 1.25, 448.0, None),
    ("trail_percent", "TRAIL", "SELL", None, None, 447.0, 0.5),
    ("mkt", "MKT", "BUY", None, None, None, None),
    ("moc", "MOC", "SELL", None, None, None, None),
    ("loc", "LOC", "BUY", 451.0, None, None, None),
])
def test_place_order_types(cap: Capture, label: str, order_type: str, action: str, lmt: float | None,
                           aux: float | None, trail_stop: float | None, trail_pct: float | None) -> None:
    p = cap.parse(label)
    _common(p, label, cap)
    assert len(cap[label]) == 114
    assert (p.order_type, p.action, p.lmt_price, p.aux_price) == (order_type, action, lmt, aux)
    assert (p.trail_stop_price, p.trailing_percent, p.transmit, p.parent_id) == (trail_stop, trail_pct, True, 0)


def test_place_order_bracket_legs(cap: Capture) -> None:
    parent, tp, sl = cap.parse("parent"), cap.parse("take_profit"), cap.parse("stop_loss")
    for label, p in (("parent", parent), ("take_profit", tp), ("stop_loss", sl)):
        _common(p, label, cap)
        assert p.conditions == ()
        assert p.contract == OPT_WIRE
        assert p.account == ACCOUNT
    assert (parent.action, parent.order_type, parent.lmt_price, parent.transmit, parent.parent_id) == (
        "BUY", "LMT", 3.10, False, 0)
    assert (tp.action, tp.order_type, tp.lmt_price, tp.transmit, tp.parent_id) == (
        "SELL", "LMT", 4.20, False, parent.order_id)
    assert (sl.action, sl.order_type, sl.aux_price, sl.transmit, sl.parent_id) == (
        "SELL", "STP", 2.50, True, parent.order_id)
    assert tp.total_quantity == sl.total_quantity == 2


def test_place_order_oca(cap: Capture) -> None:
    a, b = cap.parse("oca_a"), cap.parse("oca_b")
    assert (a.oca_group, a.oca_type, a.order_type, a.lmt_price) == ("qc-oca-1", 1, "LMT", 460.0)
    assert (b.oca_group, b.oca_type, b.order_type, b.aux_price) == ("qc-oca-1", 1, "STP", 440.0)


def test_place_order_algo_and_condition_blocks_shift_the_cursor(cap: Capture) -> None:
    p = cap.parse("algo_condition")
    assert (p.algo_strategy, p.algo_params) == ("Adaptive", (("adaptivePriority", "Normal"),))
    (cond,) = p.conditions
    assert (cond.cond_type, cond.fields) == (1, ("a", "1", "455.0", "756733", "SMART", "0"))
    assert (p.conditions_ignore_rth, p.conditions_cancel_order) == (True, False)
    assert (p.lmt_price, p.delta_neutral, p.hedge_type) == (450.0, None, "")
    assert p.extra("use_price_mgmt_algo") == "0" and p.manual_order_time == ""


def test_place_order_peg_mid_on_ibkrats_reads_the_sv170_tail(cap: Capture) -> None:
    p = cap.parse("peg_mid")
    assert (p.order_type, p.contract.exchange, p.min_trade_qty) == ("PEG MID", "IBKRATS", 5)
    assert (p.mid_offset_at_whole, p.mid_offset_at_half) == (0.01, 0.005)
    assert len(cap["peg_mid"]) == 117


def test_place_order_bag(cap: Capture) -> None:
    p = cap.parse("bag")
    assert [(leg.con_id, leg.ratio, leg.action, leg.exchange) for leg in p.combo_legs] == [
        (654321, 1, "BUY", "SMART"), (654322, 1, "SELL", "SMART")]
    assert (p.order_combo_leg_prices, p.smart_combo_routing_params, p.lmt_price) == ((), (), 0.55)


def test_market_data_requests(cap: Capture) -> None:
    depth, bars, tbt, md = (cap.parse(x) for x in ("mkt_depth", "real_time_bars", "tick_by_tick", "mkt_data"))
    assert depth == dec.ReqMktDepth(FIRST_ID + 15, SPY_WIRE, 10, True, ())  # ids 500-514 went to the orders
    assert bars == dec.ReqRealTimeBars(FIRST_ID + 16, SPY_WIRE, 5, "TRADES", False, ())
    assert tbt == dec.ReqTickByTickData(FIRST_ID + 17, SPY_WIRE, "AllLast", 0, False)
    assert md == dec.ReqMktData(FIRST_ID + 18, SPY_WIRE, (), None, (100, 101, 106, 225), False, False, ())


def test_contract_details_and_option_params(cap: Capture) -> None:
    stk, opt = cap.parse("cd_stk"), cap.parse("cd_opt")
    assert stk == dec.ReqContractDetails(cap.ids["cd_stk"], WireContract(0, "SPY", "STK", exchange="SMART",
                                                                         currency="USD"), False, "", "", "")
    assert opt.contract == WireContract(0, "SPY", "OPT", "20240119", 0.0, "", "", "SMART", "", "", "", "")
    assert cap.parse("sec_def") == dec.ReqSecDefOptParams(cap.ids["sec_def"], "SPY", "", "STK", 756733)


def test_historical_and_executions(cap: Capture) -> None:
    assert cap.parse("historical") == dec.ReqHistoricalData(
        cap.ids["historical"], SPY_WIRE, False, "", "1 min", "1 D", True, "TRADES", 1, (), False, ())
    assert cap.parse("executions") == dec.ReqExecutions(
        cap.ids["executions"], CLIENT_ID, ACCOUNT, "20240119 09:30:00", "SPY", "STK", "SMART", "BUY")


def test_order_management_and_account_requests(cap: Capture) -> None:
    assert cap.parse("cancel_order") == dec.CancelOrder(777, "")
    assert cap.parse("global_cancel") == dec.NoArgs(58)
    assert cap.parse("ids") == dec.ReqIds(1)
    assert cap.parse("current_time").name == "reqCurrentTime"
    assert cap.parse("market_data_type") == dec.ReqMarketDataType(3)
    assert cap.parse("account_summary") == dec.ReqAccountSummary(cap.ids["account_summary"], "All",
                                                                 ("NetLiquidation", "$LEDGER:ALL"))
    assert cap.parse("account_updates") == dec.ReqAccountUpdates(True, ACCOUNT)
    assert cap.parse("account_updates_multi") == dec.ReqAccountUpdatesMulti(cap.ids["account_updates_multi"],
                                                                            ACCOUNT, "", False)
    names = [cap.parse(x).name for x in ("positions", "open_orders", "all_open_orders", "depth_exchanges",
                                         "cancel_positions")]
    assert names == ["reqPositions", "reqOpenOrders", "reqAllOpenOrders", "reqMktDepthExchanges", "cancelPositions"]
    assert cap.parse("auto_open_orders") == dec.ReqAutoOpenOrders(True)
    assert cap.parse("completed") == dec.ReqCompletedOrders(False)


def test_cancels(cap: Capture) -> None:
    assert cap.parse("cancel_depth") == dec.CancelMktDepth(1, True)
    got = [(r.name, r.req_id) for r in map(cap.parse, ("cancel_bars", "cancel_tbt", "cancel_mkt_data", "cancel_hist",
                                                       "cancel_summary", "cancel_multi"))]
    assert got == [("cancelRealTimeBars", 2), ("cancelTickByTickData", 3), ("cancelMktData", 4),
                   ("cancelHistoricalData", 5), ("cancelAccountSummary", 6), ("cancelAccountUpdatesMulti", 8)]


def test_unknown_and_malformed_never_raise() -> None:
    assert dec.parse_request(["84", "1", "BZ", "x", ""]) == dec.Unknown(84, ("84", "1", "BZ", "x", ""))
    assert dec.parse_request([]) == dec.Unknown(-1, ())
    assert dec.parse_request(["abc"]) == dec.Unknown(-1, ("abc",))
    bad = dec.parse_request(["10", "5", "1", "x"])
    assert isinstance(bad, dec.Malformed) and bad.msg_id == 10
    truncated = dec.parse_request(["3", "1", "0", "SPY"])
    assert isinstance(truncated, dec.Malformed) and "ended" in truncated.reason
    assert isinstance(dec.parse_request(["8", "1", "notanumber"]), dec.Malformed)
    assert dec.parse_request(["59", "1", "3"]) == dec.ReqMarketDataType(3)
