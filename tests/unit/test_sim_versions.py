"""The simulated gateway speaks every server version it negotiates (157..178), read back by ib_async.

Frames are decoded by ib_async 2.1.0's own ``Decoder`` built as a real client builds it
(``Decoder(IB().wrapper, serverVersion)``), and by a real ``IB`` client whose handshake answered the
version, so ib_async's own version branches (faProfile below 177, pendingPriceRevision at 178, the
contractDetails layout below 164, advancedOrderRejectJson from 166 …) pick the fields. Every decoded
value is compared with what was sent, so a field shifted by one slot fails; the field-count tables
below were counted by hand from ib_async's and ibapi's decoders (a trailing extra field, which
ib_async would silently ignore, fails them). Negative controls decode one version's frame at
another version and show the tests would see the shift. Also: the generic ticks 100/101/104/106.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from ib_async import IB, Stock
from ib_async.decoder import Decoder
from ib_async.objects import TickByTickMidPoint

from qc.core.clock import NEW_YORK, new_york_date
from qc.sim.ib import encode as enc
from qc.sim.ib import ticks
from qc.sim.ib import wire_orders as orders
from qc.sim.ib.feeds import Feeds, Sub
from qc.sim.ib.versions import MAX_SERVER_VERSION, MIN_SERVER_VERSION, SUPPORTED_VERSIONS, check
from qc.sim.ib.wire import FrameSplitter, Handshake, encode_handshake_reply, negotiate_version
from qc.sim.ib.wire_types import (
    WireBar,
    WireCommission,
    WireContract,
    WireContractDetails,
    WireExecution,
    WireOrder,
    WireOrderState,
    WirePosition,
    option_wire_contract,
)
from qc.sim.market.market import SimMarket
from qc.sim.market.models import OptionContract, OptionQuote, Right
from qc.sim.market.params import SimParams

ACCOUNT = "DU7654321"
CLIENT_ID = 7
FIRST_ID = 100
VERSIONS = list(SUPPORTED_VERSIONS)
KEY_VERSIONS = [157, 176, 178]
SPY_ID = 756733
SPY = WireContract(SPY_ID, "SPY", "STK", exchange="SMART", primary_exchange="ARCA", currency="USD",
                   local_symbol="SPY", trading_class="SPY")
OPT = OptionContract("SPY", date(2024, 1, 19), 450.0, "C")
OPT_WIRE = option_wire_contract(OPT, con_id=654321)

# Field counts (message id included) of a plain order / fill / notice, by server version.
OPEN_ORDER_FIELDS = {157: 120, 158: 121, 159: 121, 160: 122, 161: 122, **dict.fromkeys(range(162, 170), 123),
                     **dict.fromkeys(range(170, 177), 128), 177: 127, 178: 127}
COMPLETED_ORDER_FIELDS = {**dict.fromkeys(range(157, 170), 92), **dict.fromkeys(range(170, 177), 97),
                          177: 96, 178: 96}
EXEC_DETAILS_FIELDS = {**dict.fromkeys(range(157, 178), 31), 178: 32}
ERROR_FIELDS = {**dict.fromkeys(range(157, 166), 5), **dict.fromkeys(range(166, 179), 6)}
CONTRACT_DETAILS_FIELDS = {**dict.fromkeys(range(157, 163), 41), **dict.fromkeys(range(163, 179), 42)}  # 1 secId


class _Errors(logging.Handler):
    """ib_async's decoder logs (and swallows) every message it cannot read: collect them."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


@pytest.fixture(name="errors")
def errors_fixture() -> Iterator[_Errors]:
    handler = _Errors()
    logger = logging.getLogger("ib_async")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture(name="loop")
def loop_fixture() -> Iterator[asyncio.AbstractEventLoop]:
    """The test thread's loop: ib_async's wrapper creates its request futures on it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture(name="ib")
def ib_fixture(loop: asyncio.AbstractEventLoop) -> IB:
    """A real client, never connected: frames reach it through its Decoder or its socket callback."""
    ib = IB()
    ib.wrapper.clientId = CLIENT_ID
    ib.client.clientId = CLIENT_ID
    return ib


def fields_of(frame: bytes) -> list[str]:
    (out,) = FrameSplitter().feed(frame)
    return out


def start_request(ib: IB, key: object) -> asyncio.Future[Any]:
    """What an ib_async request does first: register the future its end marker completes."""
    wrapper: Any = ib.wrapper
    future: asyncio.Future[Any] = wrapper.startReq(key)
    return future


def decode(ib: IB, sv: int, *frames: bytes) -> None:
    """Run ``frames`` through ib_async's Decoder at server version ``sv`` into ``ib``'s wrapper."""
    decoder: Any = Decoder(ib.wrapper, sv)  # untyped: ib_async annotates neither argument
    for frame in frames:
        decoder.interpret(fields_of(frame))


# An order whose every carried field has a distinct, non-default value, so a shifted field shows.
ORDER = WireOrder(
    order_id=42, action="SELL", total_quantity=300, order_type="STP LMT", client_id=CLIENT_ID, perm_id=987_654,
    lmt_price=449.5, aux_price=450.0, tif="GTC", oca_group="oca-7", oca_type=2, account=ACCOUNT, order_ref="qc-42",
    outside_rth=True, parent_id=41, parent_perm_id=987_653, trail_stop_price=448.0, trailing_percent=0.75,
    good_after_time="20240119 09:45:00 US/Eastern", good_till_date="20240126 16:00:00 US/Eastern", display_size=100,
    all_or_none=True, min_qty=50, trigger_method=2)
EXECUTION = WireExecution(
    order_id=42, exec_id="0001f4e8.65aa1b2c.01.01", time="20240119 10:31:02 US/Eastern", account=ACCOUNT,
    exchange="CBOE", side="SLD", shares=3, price=3.05, perm_id=987_654, client_id=CLIENT_ID, cum_qty=5,
    avg_price=3.04, order_ref="qc-42", liquidation=0, ev_rule="aaa", ev_multiplier=2.5, model_code="m1",
    last_liquidity=2, pending_price_revision=True)


def _order(**kw: Any) -> WireOrder:
    return replace(ORDER, **kw)


def _execution(**kw: Any) -> WireExecution:
    return replace(EXECUTION, **kw)


def _order_tuple(o: Any) -> tuple[Any, ...]:
    """The ib_async ``Order`` fields a WireOrder carries, in ``_sent_tuple`` order."""
    return (o.action, o.totalQuantity, o.orderType, o.lmtPrice, o.auxPrice, o.tif, o.ocaGroup, o.ocaType,
            o.account, o.orderRef, o.outsideRth, o.hidden, o.permId, o.trailStopPrice, o.trailingPercent,
            o.goodAfterTime, o.goodTillDate, o.displaySize, o.allOrNone, o.minQty, o.triggerMethod, o.whatIf)


def _sent_tuple(w: WireOrder) -> tuple[Any, ...]:
    return (w.action, w.total_quantity, w.order_type, w.lmt_price, w.aux_price, w.tif, w.oca_group, w.oca_type,
            w.account, w.order_ref, w.outside_rth, w.hidden, w.perm_id, w.trail_stop_price, w.trailing_percent,
            w.good_after_time, w.good_till_date, w.display_size, w.all_or_none, w.min_qty, w.trigger_method,
            False)


def _contract_tuple(c: Any) -> tuple[Any, ...]:
    return (c.conId, c.symbol, c.secType, c.lastTradeDateOrContractMonth, c.strike, c.right, c.multiplier,
            c.exchange, c.currency, c.localSymbol, c.tradingClass)


def _wire_contract_tuple(c: WireContract) -> tuple[Any, ...]:
    return (c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, c.multiplier, c.exchange,
            c.currency, c.local_symbol, c.trading_class)


# --- negotiation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("lo", "hi", "server", "expected"), [
    (157, 178, 178, 178), (157, 176, 178, 176), (100, 157, 178, 157), (157, 178, 176, 176),
    (157, 178, 157, 157), (100, 156, 178, None), (179, 200, 178, None), (177, 178, 176, None)])
def test_negotiation_stays_inside_the_versions_the_simulator_speaks(lo: int, hi: int, server: int,
                                                                     expected: int | None) -> None:
    assert negotiate_version(Handshake(lo, hi), server) == expected


def test_encoders_refuse_versions_they_have_no_layout_for() -> None:
    assert (MIN_SERVER_VERSION, MAX_SERVER_VERSION, check(170)) == (157, 178, 170)
    for bad in (156, 179):
        with pytest.raises(ValueError, match=r"outside 157\.\.178"):
            enc.error(-1, 2104, "x", sv=bad)
        with pytest.raises(ValueError, match="outside"):
            orders.open_order(_order(), SPY, WireOrderState("Submitted"), sv=bad)


# --- openOrder / completedOrder / execDetails / error / contractDetails at every version ----------


@pytest.mark.parametrize("sv", VERSIONS)
def test_open_order_decodes_field_for_field(sv: int, ib: IB, errors: _Errors) -> None:
    sent = _order()
    frame = orders.open_order(sent, OPT_WIRE, WireOrderState("PreSubmitted"), sv=sv)
    assert len(fields_of(frame)) == OPEN_ORDER_FIELDS[sv]
    assert fields_of(frame).index(sent.good_till_date) == (36 if sv < 177 else 35)  # after faProfile, if any
    decode(ib, sv, frame)
    assert errors.records == []
    trade = ib.wrapper.trades[(CLIENT_ID, 42)]
    o = trade.order
    assert (o.orderId, o.clientId, o.parentId) == (42, CLIENT_ID, 41)
    assert _order_tuple(o) == _sent_tuple(sent)
    assert _contract_tuple(trade.contract) == _wire_contract_tuple(OPT_WIRE)
    assert trade.orderStatus.status == "PreSubmitted"
    assert o.faProfile == ""  # read from its slot below 177 (empty: FA profiles are not simulated)
    assert (o.modelCode, o.autoCancelParent, o.usePriceMgmtAlgo) == ("", False, False)


@pytest.mark.parametrize("sv", VERSIONS)
def test_completed_order_decodes_field_for_field(sv: int, ib: IB, errors: _Errors) -> None:
    sent = _order(filled_quantity=300)
    st = WireOrderState("Filled", completed_time="20240119 10:31:02 US/Eastern", completed_status="Filled")
    frame = orders.completed_order(sent, SPY, st, sv=sv)
    assert len(fields_of(frame)) == COMPLETED_ORDER_FIELDS[sv]
    assert fields_of(frame).index(sent.good_till_date) == (33 if sv < 177 else 32)  # after faProfile, if any
    done = start_request(ib, "completedOrders")
    decode(ib, sv, frame, orders.completed_orders_end())
    assert errors.records == []
    (trade,) = done.result()
    o = trade.order
    assert _order_tuple(o) == _sent_tuple(sent)
    assert (o.filledQuantity, o.parentPermId, trade.orderStatus.status) == (300, 987_653, "Filled")
    assert _contract_tuple(trade.contract) == _wire_contract_tuple(SPY)


@pytest.mark.parametrize("sv", VERSIONS)
def test_exec_details_decodes_field_for_field(sv: int, ib: IB, errors: _Errors) -> None:
    ex = _execution()
    frame = orders.exec_details(-1, OPT_WIRE, ex, sv=sv)
    assert len(fields_of(frame)) == EXEC_DETAILS_FIELDS[sv]
    decode(ib, sv, frame, orders.commission_report(WireCommission(ex.exec_id, 1.3, "USD", realized_pnl=40.5)))
    assert errors.records == []
    fill = ib.wrapper.fills[ex.exec_id]
    e = fill.execution
    assert (e.orderId, e.execId, e.acctNumber, e.exchange, e.side, e.shares, e.price) == (
        42, ex.exec_id, ACCOUNT, "CBOE", "SLD", 3, 3.05)
    assert (e.permId, e.clientId, e.liquidation, e.cumQty, e.avgPrice, e.orderRef) == (
        987_654, CLIENT_ID, 0, 5, 3.04, "qc-42")
    assert (e.evRule, e.evMultiplier, e.modelCode, e.lastLiquidity) == ("aaa", 2.5, "m1", 2)
    assert e.time == datetime(2024, 1, 19, 15, 31, 2, tzinfo=timezone.utc)
    assert e.pendingPriceRevision is (sv >= 178)  # only version 178 carries it
    assert _contract_tuple(fill.contract) == _wire_contract_tuple(OPT_WIRE)
    assert (fill.commissionReport.commission, fill.commissionReport.realizedPNL) == (1.3, 40.5)


@pytest.mark.parametrize("sv", VERSIONS)
def test_error_carries_advanced_reject_json_from_166(sv: int, ib: IB) -> None:
    seen: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: seen.append((req_id, code, msg))
    reject = enc.error(42, 201, "Order rejected - reason:", '{"rejectCode":"X"}', sv=sv)
    assert len(fields_of(reject)) == ERROR_FIELDS[sv]
    decode(ib, sv, orders.open_order(_order(), SPY, WireOrderState("Submitted"), sv=sv),
           enc.error(-1, 2104, "Market data farm connection is OK:usfarm", sv=sv), reject)
    assert seen == [(-1, 2104, "Market data farm connection is OK:usfarm"), (42, 201, "Order rejected - reason:")]
    trade = ib.wrapper.trades[(CLIENT_ID, 42)]
    assert trade.orderStatus.status == "Cancelled"
    assert trade.advancedError == ('{"rejectCode":"X"}' if sv >= 166 else "")


def _details(contract: WireContract, **kw: Any) -> WireContractDetails:
    return WireContractDetails(
        contract, market_name="SPY", min_tick=0.01, under_con_id=SPY_ID, long_name="SPDR S&P 500 ETF TRUST",
        contract_month="202401", industry="Funds", time_zone_id="US/Eastern", last_trade_time="16:00",
        sec_ids=(("ISIN", "US78462F1030"),), under_symbol="SPY", under_sec_type="STK", market_rule_ids="26,26",
        real_expiration_date="20240119", stock_type="ETF", min_size=1.0, size_increment=1.0,
        suggested_size_increment=100.0, **kw)


@pytest.mark.parametrize("sv", VERSIONS)
def test_contract_details_decodes_field_for_field(sv: int, ib: IB, errors: _Errors) -> None:
    d = _details(OPT_WIRE)
    frame = enc.contract_details(FIRST_ID, d, sv=sv)
    assert len(fields_of(frame)) == CONTRACT_DETAILS_FIELDS[sv]
    done = start_request(ib, FIRST_ID)
    decode(ib, sv, frame, enc.contract_details_end(FIRST_ID))
    assert errors.records == []
    (cd,) = done.result()
    assert _contract_tuple(cd.contract) == _wire_contract_tuple(OPT_WIRE)
    assert (cd.marketName, cd.minTick, cd.underConId, cd.longName, cd.contractMonth, cd.industry) == (
        "SPY", 0.01, SPY_ID, "SPDR S&P 500 ETF TRUST", "202401", "Funds")
    assert (cd.lastTradeTime, cd.timeZoneId, [(t.tag, t.value) for t in cd.secIdList]) == (
        "16:00", "US/Eastern", [("ISIN", "US78462F1030")])
    assert (cd.underSymbol, cd.underSecType, cd.marketRuleIds, cd.realExpirationDate, cd.stockType) == (
        "SPY", "STK", "26,26", "20240119", "ETF")
    sizes = (cd.minSize, cd.sizeIncrement, cd.suggestedSizeIncrement)
    if sv >= 164:
        assert sizes == (1, 1, 100)
    elif sv == 163:  # one size field, which ib_async reads as suggestedSizeIncrement
        assert sizes[2] == 100
    else:
        assert sizes[2] != 100  # no size fields at all


# --- negative controls: a neighbouring version's layout is visibly wrong -------------------------


@pytest.mark.parametrize(("sent_as", "read_as"), [(176, 178), (178, 176), (169, 170), (157, 159)])
def test_an_open_order_read_at_a_neighbouring_version_is_refused_or_shifted(sent_as: int, read_as: int, ib: IB,
                                                                             errors: _Errors) -> None:
    decode(ib, read_as, orders.open_order(_order(), SPY, WireOrderState("Submitted"), sv=sent_as))
    trade = ib.wrapper.trades.get((CLIENT_ID, 42))
    if trade is None:
        assert any("Error handling fields" in r for r in errors.records)
    else:
        assert _order_tuple(trade.order) != _sent_tuple(ORDER) or trade.order.parentId != 41


def test_a_178_execution_read_as_176_loses_nothing_but_a_176_one_read_as_178_fails(ib: IB, errors: _Errors) -> None:
    ex = _execution(exec_id="e-178")
    decode(ib, 176, orders.exec_details(-1, SPY, ex, sv=178))  # a trailing extra is ignored by ib_async…
    assert errors.records == [] and "e-178" in ib.wrapper.fills
    assert len(fields_of(orders.exec_details(-1, SPY, ex, sv=176))) == 31  # …which is why counts are checked
    decode(ib, 178, orders.exec_details(-1, SPY, _execution(exec_id="e-176"), sv=176))
    assert "e-176" not in ib.wrapper.fills
    assert any("execDetails" in r or "Error handling fields" in r for r in errors.records)


def test_a_164_contract_details_read_as_163_is_refused(ib: IB, errors: _Errors) -> None:
    start_request(ib, FIRST_ID)
    decode(ib, 163, enc.contract_details(FIRST_ID, _details(SPY), sv=164))
    assert errors.records  # the missing message version shifts every field: ib_async cannot read it


# --- a real client whose handshake answered an older version ---------------------------------------


class VersionedClient:
    """A real ``IB`` fed our bytes through its socket callback after a handshake answering ``sv``.

    ib_async's own ``Client`` reads the handshake and sets its decoder to ``sv``; requests it sends
    are dropped (no transport), and ``request`` answers them with our frames.
    """

    def __init__(self, ib: IB, loop: asyncio.AbstractEventLoop, sv: int) -> None:
        self.ib, self.loop = ib, loop
        self.conn: Any = ib.client.conn  # ib_async is untyped; this is the socket's data callback
        self.feed(encode_handshake_reply(sv, "20240119 09:30:00 EST"), enc.managed_accounts([ACCOUNT]),
                  enc.next_valid_id(FIRST_ID))
        assert ib.client.isReady()
        assert ib.client.serverVersion() == sv == ib.client.decoder.serverVersion

    def feed(self, *frames: bytes) -> None:
        self.conn.data_received(b"".join(frames))

    def request(self, start: Callable[[], Awaitable[Any]], *frames: bytes) -> Any:
        async def go() -> Any:
            task = asyncio.ensure_future(start())
            await asyncio.sleep(0)  # let the request register its future
            self.feed(*frames)
            return await asyncio.wait_for(task, 2)

        return self.loop.run_until_complete(go())


@pytest.mark.parametrize("sv", KEY_VERSIONS)
def test_every_other_message_reads_the_same_at_157_176_and_178(sv: int, ib: IB, loop: asyncio.AbstractEventLoop,
                                                               errors: _Errors) -> None:
    c = VersionedClient(ib, loop, sv)
    stock = Stock("SPY", "SMART", "USD", conId=SPY_ID)
    r = FIRST_ID  # ib_async hands out request ids from nextValidId on, one per request below
    ticker = ib.reqMktData(stock, "100,101,104,106,225")
    stats = ticks.UnderlyingStats(ticks.ChainStats(1200, 800, 50_000, 70_000, 0.1834), 0.1512)
    c.feed(enc.tick_req_params(r, 0.01, "9c0001", 3), enc.market_data_type(r, 1),
           enc.tick_price(r, 1, 450.01, 300), enc.tick_size(r, 0, 300), enc.tick_price(r, 2, 450.02, 100),
           enc.tick_price(r, 4, 450.015, 7), enc.tick_size(r, 8, 1_234_567), enc.tick_string(r, 45, "1705676400"),
           *ticks.underlying_ticks(r, frozenset({100, 101, 104, 106}), stats, None),
           enc.tick_size(r, 34, 5000), enc.tick_price(r, 35, 450.5), enc.tick_size(r, 36, 200))
    assert (ticker.bid, ticker.ask, ticker.last, ticker.volume) == (450.01, 450.02, 450.015, 1_234_567)
    assert (ticker.callVolume, ticker.putVolume, ticker.callOpenInterest, ticker.putOpenInterest) == (
        1200, 800, 50_000, 70_000)
    assert (ticker.histVolatility, ticker.impliedVolatility, ticker.auctionVolume) == (0.1512, 0.1834, 5000)
    depth = ib.reqMktDepth(stock, 5, isSmartDepth=True)
    bars = ib.reqRealTimeBars(stock, 5, "TRADES", False)
    mids = ib.reqTickByTickData(stock, "MidPoint")
    c.feed(enc.market_depth_l2(r + 1, 0, "ARCA", 0, 1, 450.01, 300),
           enc.realtime_bar(r + 2, 1705676400, 450.0, 450.5, 449.75, 450.25, 12_300, 450.1, 42),
           enc.tick_by_tick_mid(r + 3, 1705676400, 450.005))
    assert [(lvl.price, lvl.size, lvl.marketMaker) for lvl in depth.domBids] == [(450.01, 300, "ARCA")]
    assert (bars[0].close, bars[0].volume, bars[0].count) == (450.25, 12_300, 42)
    assert [t.midPoint for t in mids.tickByTicks if isinstance(t, TickByTickMidPoint)] == [450.005]
    positions = c.request(ib.reqPositionsAsync, enc.position(WirePosition(ACCOUNT, OPT_WIRE, 3, 250.5)),
                          enc.position_end())
    assert [(p.contract.localSymbol, p.position, p.avgCost) for p in positions] == [(OPT.occ_symbol, 3, 250.5)]
    bar = WireBar("20240119 09:30:00 US/Eastern", 450, 451, 449, 450.5, 9000, 450.2, 30)
    hist = c.request(lambda: ib.reqHistoricalDataAsync(stock, "", "1 D", "1 min", "TRADES", True),
                     enc.historical_data(r + 4, bar.date, "20240119 09:31:00 US/Eastern", [bar]))
    assert [(b.close, b.volume, b.barCount) for b in hist] == [(450.5, 9000, 30)]
    (cd,) = c.request(lambda: ib.reqContractDetailsAsync(stock), enc.contract_details(r + 5, _details(SPY), sv=sv),
                      enc.contract_details_end(r + 5))
    assert (cd.contract.conId, cd.contract.primaryExchange, cd.longName) == (SPY_ID, "ARCA", "SPDR S&P 500 ETF TRUST")
    ex = _execution(order_id=0, perm_id=1, exec_id="x1")
    (fill,) = c.request(ib.reqExecutionsAsync, orders.exec_details(r + 6, SPY, ex, sv=sv),
                        orders.commission_report(WireCommission("x1", 0.65)), orders.exec_details_end(r + 6))
    assert (fill.execution.execId, fill.execution.shares, fill.commissionReport.commission) == ("x1", 3, 0.65)
    assert errors.records == []


# --- generic ticks 100, 101, 104, 106 --------------------------------------------------------------


def _q(expiry: date, strike: float, right: Right, iv: float, oi: int, volume: int) -> OptionQuote:
    return OptionQuote(OptionContract("SPY", expiry, strike, right), 1.0, 1.1, 1.05, iv, 0.5, 0.01, 0.1, -0.05,
                       oi, volume)


def test_chain_stats_sum_the_chain_and_interpolate_a_30_day_atm_vol() -> None:
    today = date(2024, 1, 2)
    near, far = today + timedelta(days=20), today + timedelta(days=40)
    chain = [_q(near, 445, "C", 0.50, 10, 1), _q(near, 450, "C", 0.20, 20, 2), _q(near, 450, "P", 0.22, 30, 3),
             _q(far, 450, "C", 0.25, 40, 4), _q(far, 450, "P", 0.25, 50, 5), _q(far, 455, "P", 0.60, 60, 6),
             _q(today, 450, "C", 0.90, 70, 7)]  # expiring today: counted in volume/OI, not in the 30-day IV
    st = ticks.chain_stats(chain, 449.0, today)
    assert (st.call_volume, st.put_volume, st.call_open_interest, st.put_open_interest) == (14, 14, 140, 140)
    w = 0.21**2 * 20 + (0.25**2 * 40 - 0.21**2 * 20) * (30 - 20) / (40 - 20)
    assert st.implied_vol == round(math.sqrt(w / 30), 6)
    assert ticks.atm_implied_vol(chain[:3], 449.0, today) == pytest.approx(0.21)  # all before 30 days: nearest
    assert ticks.atm_implied_vol([], 449.0, today) is None


def test_historical_vol_is_annualised_close_to_close() -> None:
    closes = [100.0, 101.0, 100.0, 102.0]
    rets = [math.log(101 / 100), math.log(100 / 101), math.log(102 / 100)]
    mean = sum(rets) / 3
    expected = math.sqrt(sum((r - mean) ** 2 for r in rets) / 2 * 252)
    assert ticks.historical_vol(closes) == round(expected, 6)
    assert ticks.historical_vol([100.0, 101.0]) is None


def test_underlying_ticks_send_only_what_was_asked_and_what_changed() -> None:
    a = ticks.UnderlyingStats(ticks.ChainStats(10, 20, 30, 40, 0.2), 0.15)
    b = ticks.UnderlyingStats(ticks.ChainStats(11, 20, 30, 40, 0.2), 0.15)
    first = [fields_of(f) for f in ticks.underlying_ticks(5, frozenset({100, 104}), a, None)]
    assert first == [["2", "6", "5", "29", "10"], ["2", "6", "5", "30", "20"], ["45", "6", "5", "23", "0.15"]]
    assert [fields_of(f) for f in ticks.underlying_ticks(5, frozenset({100, 101, 104, 106}), b, a)] == [
        ["2", "6", "5", "29", "11"]]
    assert ticks.underlying_ticks(5, frozenset(), b, None) == []


class _Sink:
    def __init__(self) -> None:
        self.out: list[bytes] = []


def test_feeds_answer_generic_ticks_from_the_simulated_markets_own_figures() -> None:
    start = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK)
    market = SimMarket(start, SimParams(seed=3, symbols=("SPY",), depth_rate_hz=10.0))
    now = start + timedelta(seconds=1)
    market.events_until(now)
    feeds = Feeds(market, Counter())
    sink = _Sink()
    sub = Sub(sink, 9, "SPY", "l1", generic=frozenset({100, 101, 104, 106}))
    feeds.send_underlying(sub, now)
    got = {(int(f[0]), int(f[3])): float(f[4]) for f in map(fields_of, sink.out)}
    chain = market.option_chain("SPY", now)
    calls, puts = [q for q in chain if q.contract.right == "C"], [q for q in chain if q.contract.right == "P"]
    assert got[(2, 29)] == sum(q.volume for q in calls) > 0
    assert got[(2, 30)] == sum(q.volume for q in puts) > 0
    assert got[(2, 27)] == sum(q.open_interest for q in calls) > 0
    assert got[(2, 28)] == sum(q.open_interest for q in puts) > 0
    assert got[(45, 24)] == ticks.chain_stats(chain, market.spot("SPY"), new_york_date(now)).implied_vol
    assert 0.5 * 0.15 < got[(45, 24)] < 2 * 0.15  # SPY's model vol is 0.15
    assert 0.3 * 0.15 < got[(45, 23)] < 3 * 0.15
    sink.out.clear()
    feeds.send_underlying(sub, now)  # nothing changed (cached figures): nothing re-sent
    assert sink.out == []


def test_a_depth_reset_goes_out_in_the_subscribers_version() -> None:
    start = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK)
    market = SimMarket(start, SimParams(seed=3, symbols=("SPY",), depth_rate_hz=10.0))
    market.events_until(start + timedelta(seconds=1))
    feeds, old, new = Feeds(market, Counter()), _Sink(), _Sink()
    feeds.add(Sub(old, 1, "SPY", "depth", rows=2, version=157))
    feeds.add(Sub(new, 2, "SPY", "depth", rows=2, version=178))
    feeds.resync_depth("SPY")
    assert fields_of(old.out[0])[:4] == ["4", "2", "1", "317"] and len(fields_of(old.out[0])) == 5
    assert fields_of(new.out[0])[:4] == ["4", "2", "2", "317"] and len(fields_of(new.out[0])) == 6
    assert len(old.out) == len(new.out) == 5  # the notice, then two asks and two bids
