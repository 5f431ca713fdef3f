"""Handlers of the simulated gateway's contract and market-data requests (ref ib-api-protocol.md §3, §5).

Each handler takes the session and the decoded request, answers on the session (in the session's
negotiated server version where a layout depends on it) and registers market-data subscriptions
with ``server.feeds`` (the pump streams them). A stock's reqMktData answers generic ticks 225
(auction imbalance) and 100/101/104/106 (the option chain's volume, open interest, historical and
implied volatility). Errors use IB's codes and texts: 200 unknown contract, 309 depth limit, 310
unknown depth cancel, 10092 depth on an option, 162 historical pacing, 420 real-time bars not
available, 10189 tick-by-tick not available.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from qc.core import clock
from qc.sim.ib import decode as dec
from qc.sim.ib import encode as enc
from qc.sim.ib import history as hist
from qc.sim.ib import ticks
from qc.sim.ib.catalog import OPTION_EXCHANGES, Resolved
from qc.sim.ib.feeds import OPTION_REFRESH, Sub
from qc.sim.ib.wire_types import WireDepthExchange
from qc.sim.market.params import VENUES

if TYPE_CHECKING:
    from qc.sim.ib.session import IBSession

log = logging.getLogger(__name__)

NO_SECURITY = "No security definition has been found for the request"
DEPTH_LIMIT = "Max number ({n}) of market depth requests has been reached"
DEPTH_NOT_SUPPORTED = "Deep market data is not supported for this combination of security type/exchange"
DEPTH_NOTICE = ("Exchanges - Depth: ARCA; ISLAND; BATS; IEX; DRCTEDGE; NYSE; MEMX; BYX; EDGEA; CHX; "
                "Top: AMEX; PEARL; LTSE; Need additional market data permissions - Depth: NYSENAT;")
TICK_TYPES = {"Last": "last", "AllLast": "alllast", "BidAsk": "bidask", "MidPoint": "mid"}
BBO_EXCHANGE = "9c0001"
IMBALANCE_TICK = 225


def _resolve(s: IBSession, req_id: int, contract: Any) -> Resolved | None:
    found = s.server.catalog.resolve(contract, s.server.clock.now())
    if found is None:
        s.error(req_id, 200, NO_SECURITY)
    return found


def current_time(s: IBSession, req: dec.NoArgs) -> None:
    s.send("currentTime", enc.current_time(int(s.server.clock.epoch())))


def contract_details(s: IBSession, req: dec.ReqContractDetails) -> None:
    found = s.server.catalog.details(req.contract, s.server.clock.now())
    if not found:
        s.error(req.req_id, 200, NO_SECURITY)
        return
    s.send("contractDetails", *[enc.contract_details(req.req_id, d, sv=s.version) for d in found])
    s.send("contractDetailsEnd", enc.contract_details_end(req.req_id))


def sec_def_opt_params(s: IBSession, req: dec.ReqSecDefOptParams) -> None:
    found = s.server.catalog.sec_def(req.underlying_symbol, s.server.clock.now())
    if found is not None:
        con_id, expirations, strikes = found
        s.send("secDefOptParams", *[enc.sec_def_opt_params(req.req_id, exchange, con_id, req.underlying_symbol,
                                                              "100", expirations, strikes)
                                    for exchange in OPTION_EXCHANGES])
    s.send("secDefOptParamsEnd", enc.sec_def_opt_params_end(req.req_id))


def mkt_depth(s: IBSession, req: dec.ReqMktDepth) -> None:
    found = _resolve(s, req.req_id, req.contract)
    if found is None:
        return
    if found.option is not None:
        s.error(req.req_id, 10092, DEPTH_NOT_SUPPORTED)
        return
    feeds, limit = s.server.feeds, s.server.depth_limit
    if feeds.count(s, "depth") >= limit:
        s.error(req.req_id, 309, DEPTH_LIMIT.format(n=limit))
        return
    sub = Sub(s, req.req_id, found.symbol, "depth", rows=max(req.num_rows, 1), version=s.version)
    feeds.add(sub)
    s.out.extend(feeds.depth_snapshot(sub))
    if not s.depth_notice_sent:
        s.depth_notice_sent = True
        s.error(req.req_id, 2152, DEPTH_NOTICE)


def cancel_mkt_depth(s: IBSession, req: dec.CancelMktDepth) -> None:
    if s.server.feeds.remove(s, req.req_id) is None:
        s.error(req.req_id, 310, f"Can't find the subscribed market depth with tickerId:{req.req_id}")


def depth_exchanges(s: IBSession, req: dec.NoArgs) -> None:
    rows = [WireDepthExchange(v, "STK", "", "Deep2", 1) for v in VENUES]
    s.send("mktDepthExchanges", enc.mkt_depth_exchanges(rows))


def real_time_bars(s: IBSession, req: dec.ReqRealTimeBars) -> None:
    found = _resolve(s, req.req_id, req.contract)
    if found is None:
        return
    if found.option is not None or req.bar_size != ticks.BAR_SECONDS:
        s.error(req.req_id, 420, "Invalid Real-time Query:only 5-second TRADES bars of stocks are simulated")
        return
    s.server.feeds.add(Sub(s, req.req_id, found.symbol, "bars", version=s.version))


def tick_by_tick(s: IBSession, req: dec.ReqTickByTickData) -> None:
    found = _resolve(s, req.req_id, req.contract)
    if found is None:
        return
    kind = TICK_TYPES.get(req.tick_type)
    if kind is None or found.option is not None:
        s.error(req.req_id, 10189, f"Failed to request tick-by-tick data:{req.tick_type} is not available for "
                                   f"{found.key.sec_type}")
        return
    s.server.feeds.add(Sub(s, req.req_id, found.symbol, kind, version=s.version))
    q = s.server.model.quote(found.symbol)
    epoch = int(q.ts.timestamp())
    if kind == "bidask":
        s.send(kind, enc.tick_by_tick_bid_ask(req.req_id, epoch, q.bid, q.ask, q.bid_size, q.ask_size))
    elif kind == "mid":
        s.send(kind, enc.tick_by_tick_mid(req.req_id, epoch, 0.5 * (q.bid + q.ask)))


def mkt_data(s: IBSession, req: dec.ReqMktData) -> None:
    found = _resolve(s, req.req_id, req.contract)
    if found is None:
        return
    s.send("tickReqParams", enc.tick_req_params(req.req_id, 0.01, BBO_EXCHANGE, 3))
    s.send("marketDataType", enc.market_data_type(req.req_id, s.market_data_type))
    model, now = s.server.model, s.server.clock.now()
    if found.option is not None:
        q = s.server.feeds.option_quote(found.option, now)  # a pinned quote wins (IBGatewayServer.set_quote)
        if q is not None:
            s.send("opt", *ticks.option_ticks(req.req_id, q, model.spot(found.symbol)))
        sub = Sub(s, req.req_id, found.symbol, "opt", option=found.option, next_refresh=now + OPTION_REFRESH,
                  version=s.version)
    else:
        session = clock.most_recent_session(now)
        prev = model.history(found.symbol, session.open, 1)
        quote = model.quote(found.symbol)
        s.send("l1", *ticks.l1_snapshot(req.req_id, quote, prev[-1].close if prev else None))
        sub = Sub(s, req.req_id, found.symbol, "l1", imbalance=IMBALANCE_TICK in req.generic_tick_list,
                  version=s.version, generic=frozenset(req.generic_tick_list) & ticks.UNDERLYING_GENERIC_TICKS)
        s.server.feeds.send_underlying(sub, now)  # generic ticks 100/101/104/106 (ticks.underlying_ticks)
    if req.snapshot or req.regulatory_snapshot:
        s.send("tickSnapshotEnd", enc.tick_snapshot_end(req.req_id))
    else:
        s.server.feeds.add(sub)


def market_data_type(s: IBSession, req: dec.ReqMarketDataType) -> None:
    s.market_data_type = req.data_type
    s.send("marketDataType", enc.market_data_type(-1, req.data_type))


def historical_data(s: IBSession, req: dec.ReqHistoricalData) -> None:
    found = _resolve(s, req.req_id, req.contract)
    if found is None:
        return
    if hist.paced(s.history_pacing, f"{found.key.con_id}:{req.what_to_show}", clock.monotonic()):
        s.error(req.req_id, 162, hist.PACING_TEXT)
        return
    if req.bar_size.strip() not in ("1 min", "1 mins") or found.option is not None:
        s.error(req.req_id, 162, "Historical Market Data Service error message:only 1-minute bars of stocks "
                                 "are simulated")
        return
    now = s.server.clock.now()
    try:
        end = min(hist.parse_end(req.end_date_time, now), now)
        frame = hist.historical_frame(s.server.model, req.req_id, found.symbol, end, req.duration, req.format_date)
    except hist.HistoryError as exc:
        s.error(req.req_id, 321, f"Error validating request:-'bH' : cause - {exc}")
        return
    s.send("historicalData", frame)


def cancel_feed(s: IBSession, req: dec.Cancel) -> None:
    if s.server.feeds.remove(s, req.req_id) is None:
        log.info("ib sim: client %s cancelled unknown subscription %d", s.client_id, req.req_id)


HANDLERS: dict[type, Any] = {
    dec.ReqContractDetails: contract_details, dec.ReqSecDefOptParams: sec_def_opt_params,
    dec.ReqMktDepth: mkt_depth, dec.CancelMktDepth: cancel_mkt_depth, dec.ReqRealTimeBars: real_time_bars,
    dec.ReqTickByTickData: tick_by_tick, dec.ReqMktData: mkt_data, dec.ReqMarketDataType: market_data_type,
    dec.ReqHistoricalData: historical_data,
}
BY_MSG_ID: dict[int, Any] = {49: current_time, 82: depth_exchanges, 2: cancel_feed, 51: cancel_feed, 98: cancel_feed,
                             25: lambda s, req: None}
