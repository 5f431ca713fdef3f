"""Market data from the simulated gateway through the real ib_async client: depth, bars, ticks, greeks."""

from __future__ import annotations

import itertools
import math

from ib_async import IB, MktDepthData, Option, Stock, TickByTickAllLast, TickByTickBidAsk, Ticker

from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    Gateway,
    client_loop_fixture,
    errors_of,
    gateway_fixture,
    ib_eventually,
)

VENUES = {"ARCA", "ISLAND", "BATS", "IEX", "DRCTEDGE", "NYSE", "MEMX", "BYX", "EDGEA", "CHX"}


def _stock(ib: IB, symbol: str) -> Stock:
    c = Stock(symbol, "SMART", "USD")
    ib.qualifyContracts(c)
    return c


def _near_option(gw: Gateway, ib: IB, right: str = "C") -> Option:
    spy = _stock(ib, "SPY")
    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    spot = gw.call(lambda: gw.model.spot("SPY"))
    strike = min(chain.strikes, key=lambda k: abs(k - spot))
    opt = Option("SPY", chain.expirations[2], strike, right, "SMART")
    assert ib.qualifyContracts(opt) == [opt]
    return opt


def test_smart_depth_has_venues_and_a_sorted_ten_level_book(gateway: Gateway) -> None:
    ib = gateway.client(11)
    errors = errors_of(ib)
    got: list[MktDepthData] = []

    def collect(tickers: set[Ticker]) -> None:
        for tk in tickers:
            got.extend(tk.domTicks)

    ib.pendingTickersEvent += collect
    t = ib.reqMktDepth(_stock(ib, "SPY"), numRows=10, isSmartDepth=True)
    ib_eventually(ib, lambda: len(got) >= 100)
    asks, bids = got[:10], got[10:20]  # the book as inserts, best first
    assert [(d.operation, d.side, d.position) for d in asks] == [(0, 0, i) for i in range(10)]
    assert [(d.operation, d.side, d.position) for d in bids] == [(0, 1, i) for i in range(10)]
    assert [d.price for d in asks] == sorted(d.price for d in asks)
    assert [d.price for d in bids] == sorted((d.price for d in bids), reverse=True)
    assert bids[0].price < asks[0].price
    assert {d.marketMaker for d in got} <= VENUES and len({d.marketMaker for d in got}) > 3
    assert {lvl.marketMaker for lvl in t.domBids + t.domAsks} <= VENUES
    ib_eventually(ib, lambda: any(code == 2152 for _, code, _ in errors))


def test_fourth_depth_request_is_309_and_option_depth_is_10092(gateway: Gateway) -> None:
    ib = gateway.client(12)
    errors = errors_of(ib)
    spy, qqq = _stock(ib, "SPY"), _stock(ib, "QQQ")
    for c in (spy, qqq, Stock("SPY", "ARCA", "USD", conId=spy.conId)):
        ib.reqMktDepth(c, 5, isSmartDepth=c.exchange == "SMART")
    ib.sleep(0.2)
    ib.reqMktDepth(Stock("QQQ", "ARCA", "USD", conId=qqq.conId), 5)
    ib_eventually(ib, lambda: any(code == 309 for _, code, _ in errors))
    [msg] = [m for _, code, m in errors if code == 309]
    assert msg == "Max number (3) of market depth requests has been reached"
    ib.cancelMktDepth(spy, isSmartDepth=True)  # frees a slot
    opt = _near_option(gateway, ib)
    ib.reqMktDepth(opt, 5)
    ib_eventually(ib, lambda: any(code == 10092 for _, code, _ in errors))


def test_silenced_depth_stops_one_symbol_while_others_flow(gateway: Gateway) -> None:
    ib = gateway.client(13)
    got: dict[str, int] = {"SPY": 0, "QQQ": 0}

    def count(tickers: set[Ticker]) -> None:
        for tk in tickers:
            if tk.contract is not None:
                got[tk.contract.symbol] += len(tk.domTicks)

    ib.pendingTickersEvent += count
    spy, qqq = _stock(ib, "SPY"), _stock(ib, "QQQ")
    ib.reqMktDepth(spy, 10, isSmartDepth=True)
    ib.reqMktDepth(qqq, 10, isSmartDepth=True)
    ib_eventually(ib, lambda: got["SPY"] > 30 and got["QQQ"] > 30)
    gateway.server.silence_feed("SPY", "depth", None)
    ib.sleep(0.3)  # let the switch land and what was in flight arrive
    before = dict(got)
    ib_eventually(ib, lambda: got["QQQ"] > before["QQQ"] + 50, what="QQQ keeps flowing")
    assert got["SPY"] == before["SPY"]
    gateway.server.silence_feed("SPY", "depth", 0)  # cleared: 317 RESET + the book again, then updates
    ib_eventually(ib, lambda: got["SPY"] > before["SPY"] + 20)


def test_five_second_bars_are_aligned_and_complete(gateway: Gateway) -> None:
    ib = gateway.client(14)
    bars = ib.reqRealTimeBars(_stock(ib, "SPY"), 5, "TRADES", False)
    ib_eventually(ib, lambda: len(bars) >= 3, timeout_s=8)
    starts = [int(b.time.timestamp()) for b in bars]
    assert all(s % 5 == 0 for s in starts)
    assert all(b - a == 5 for a, b in itertools.pairwise(starts))
    assert all(b.low <= min(b.open_, b.close) <= max(b.open_, b.close) <= b.high for b in bars)
    assert starts[-1] + 5 <= gateway.clock.epoch()  # emitted once the interval ended


def test_tick_by_tick_all_last_and_bid_ask(gateway: Gateway) -> None:
    ib = gateway.client(15)
    spy = _stock(ib, "SPY")
    ticker = ib.reqTickByTickData(spy, "AllLast")
    assert ib.reqTickByTickData(spy, "BidAsk") is ticker  # ib_async keys tickers by contract
    seen_last: list[TickByTickAllLast] = []
    seen_quotes: list[TickByTickBidAsk] = []

    def collect(tickers: set[Ticker]) -> None:
        for t in ticker.tickByTicks if ticker in tickers else []:
            if isinstance(t, TickByTickAllLast):
                seen_last.append(t)
            elif isinstance(t, TickByTickBidAsk):
                seen_quotes.append(t)

    ib.pendingTickersEvent += collect
    ib_eventually(ib, lambda: len(seen_last) >= 5 and len(seen_quotes) >= 5)
    assert all(t.exchange in VENUES and t.size > 0 and t.price > 0 and t.tickType == 2 for t in seen_last)
    assert all(q.bidPrice < q.askPrice for q in seen_quotes), [q for q in seen_quotes if q.bidPrice >= q.askPrice]


def test_stock_market_data_and_option_greeks(gateway: Gateway) -> None:
    ib = gateway.client(16)
    spy_t = ib.reqMktData(_stock(ib, "SPY"))
    ib_eventually(ib, lambda: spy_t.bid > 0 and spy_t.ask > 0 and spy_t.last > 0 and spy_t.close > 0)
    assert spy_t.bid < spy_t.ask
    opt = _near_option(gateway, ib)
    opt_t = ib.reqMktData(opt)
    ib_eventually(ib, lambda: opt_t.modelGreeks is not None and opt_t.bidGreeks is not None)
    g = opt_t.modelGreeks
    assert g is not None and g.delta is not None and g.gamma is not None and g.vega is not None
    assert g.theta is not None and g.impliedVol is not None and g.undPrice is not None
    assert 0.0 < g.delta < 1.0 and g.gamma > 0 and g.vega > 0 and g.theta < 0 and 0.02 < g.impliedVol < 1.0
    assert math.isclose(g.undPrice, spy_t.midpoint(), rel_tol=0.01)
    assert 0 < opt_t.bid < opt_t.ask
    first = opt_t.modelGreeks
    ib_eventually(ib, lambda: opt_t.modelGreeks is not first, what="greeks refresh about every simulated second")


def test_historical_one_minute_bars_and_pacing_162(gateway: Gateway) -> None:
    ib = gateway.client(17)
    errors = errors_of(ib)
    spy = _stock(ib, "SPY")
    bars = ib.reqHistoricalData(spy, "", "3600 S", "1 min", "TRADES", True)
    assert len(bars) == 60
    assert all((b2.date - b1.date).total_seconds() == 60 for b1, b2 in itertools.pairwise(bars))
    two_days = ib.reqHistoricalData(spy, "", "2 D", "1 min", "TRADES", True)
    assert len({str(b.date)[:10] for b in two_days}) == 2 and len(two_days) > 390
    assert not [e for e in errors if e[1] == 162]
    for _ in range(5):  # 6 requests for one contract and tick type within 2 s: the 6th is refused
        assert len(ib.reqHistoricalData(spy, "", "60 S", "1 min", "MIDPOINT", True)) == 1
    assert len(ib.reqHistoricalData(spy, "", "60 S", "1 min", "MIDPOINT", True)) == 0
    ib_eventually(ib, lambda: any(code == 162 for _, code, _ in errors))
    [msg] = [m for _, code, m in errors if code == 162]
    assert msg == "Historical Market Data Service error message:Historical data request pacing violation"


def test_farm_flap_pauses_market_data_and_reports_2103_2104(gateway: Gateway) -> None:
    ib = gateway.client(18)
    errors = errors_of(ib)
    ib.reqMktDepth(_stock(ib, "SPY"), 10, isSmartDepth=True)
    ib.sleep(0.3)
    gateway.server.farm_flap(0.8)
    ib_eventually(ib, lambda: any(code == 2103 for _, code, _ in errors))
    ib.sleep(0.1)
    during = gateway.server.stats()["depth"]
    ib.sleep(0.4)
    assert gateway.server.stats()["depth"] == during  # nothing sent while the farm is down
    ib_eventually(ib, lambda: any(code == 2104 for _, code, _ in errors))
    codes = [code for _, code, _ in errors]
    assert codes.index(2103) < codes.index(2105) < codes.index(2104) < codes.index(2106)
    ib_eventually(ib, lambda: gateway.server.stats()["depth"] > during + 20)
