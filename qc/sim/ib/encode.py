"""TWS API wire codec for `qc sim`, layer 2: the messages the server sends, one function each.

Layouts are those ib_async 2.1.0's ``Decoder`` reads (ref ib-api-protocol.md §3) at the session's
negotiated server version: ``error`` and ``contract_details`` change inside 157..178 and take it as
the required ``sv`` keyword (thresholds in ``ib_versions``); every other message here has one layout
across the whole range. Every function returns one framed message (``bytes``) and is tested by
feeding it to ib_async's real decoder. Order and execution messages live in ``ib_wire_orders``.
"Strict" messages (ref §3) are tuple-unpacked by ib_async, so their field counts are exact.
The depth and tick encoders are the hot path (thousands per second): they build the payload in
one f-string around precomputed constants and frame it once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from qc.sim.ib import versions as v
from qc.sim.ib.wire import enc, enc_float, frame_text
from qc.sim.ib.wire_types import WireBar, WireContract, WireContractDetails, WireDepthExchange, WirePosition
from qc.sim.market.events import DepthOp

_pack = frame_text


def _msg(*values: object) -> bytes:
    """Encode each value by type (``ib_wire.enc``), NUL-terminate, frame."""
    return _pack("".join([enc(v) + "\0" for v in values]))


def _num(value: float) -> str:
    """Hot-path number: ints and integral floats as ints (``300``), others by ``repr`` (round-trips)."""
    if value.__class__ is float:
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


# --- session (ref §2, §3 "Session / misc") ---------------------------------------------------


def next_valid_id(order_id: int) -> bytes:
    """nextValidId (9), strict 3 fields."""
    return _pack(f"9\x001\x00{order_id}\x00")


def managed_accounts(accounts: Sequence[str]) -> bytes:
    """managedAccounts (15), strict 3 fields: the accounts comma-joined."""
    return _msg(15, 1, ",".join(accounts))


def error(req_id: int, code: int, message: str, advanced_order_reject_json: str = "", *, sv: int) -> bytes:
    """error (4); the trailing advancedOrderRejectJson exists (and is mandatory) from sv 166 (ref §3)."""
    if v.check(sv) >= v.MIN_SERVER_VER_ADVANCED_ORDER_REJECT:
        return _msg(4, 2, req_id, code, message, advanced_order_reject_json)
    return _msg(4, 2, req_id, code, message)


def current_time(epoch_s: int) -> bytes:
    """currentTime (49)."""
    return _msg(49, 1, epoch_s)


# --- contracts (ref §3 "Contracts") ----------------------------------------------------------


def contract_details(req_id: int, d: WireContractDetails, *, sv: int) -> bytes:
    """contractDetails (10); expiry as ``date time zone``.

    From sv 164 (SIZE_RULES): no message version, and minSize/sizeIncrement/suggestedSizeIncrement
    at the end. Below it: version 8 after the id and the obsolete mdSizeMultiplier after minTick;
    at 163 only, one size field (sizeMinTick, which ib_async reads as suggestedSizeIncrement).
    """
    c = d.contract
    expiry = c.last_trade_date
    if expiry and d.last_trade_time:
        expiry = f"{expiry} {d.last_trade_time} {d.time_zone_id}"
    sec_ids: list[object] = [len(d.sec_ids)]
    for tag, value in d.sec_ids:
        sec_ids += [tag, value]
    size_rules = v.check(sv) >= v.MIN_SERVER_VER_SIZE_RULES
    head: tuple[object, ...] = (10,) if size_rules else (10, v.CONTRACT_DETAILS_MSG_VERSION)
    md_size: tuple[object, ...] = () if size_rules else (v.MD_SIZE_MULTIPLIER,)
    if size_rules:
        sizes: tuple[object, ...] = (d.min_size, d.size_increment, d.suggested_size_increment)
    elif sv >= v.MIN_SERVER_VER_FRACTIONAL_SIZE_SUPPORT:
        sizes = (d.suggested_size_increment,)
    else:
        sizes = ()
    return _msg(
        *head, req_id, c.symbol, c.sec_type, expiry, c.strike, c.right, c.exchange, c.currency,
        c.local_symbol, d.market_name, c.trading_class, c.con_id, d.min_tick, *md_size, c.multiplier,
        d.order_types, d.valid_exchanges, d.price_magnifier, d.under_con_id, d.long_name,
        c.primary_exchange, d.contract_month, d.industry, d.category, d.subcategory, d.time_zone_id,
        d.trading_hours, d.liquid_hours, d.ev_rule, d.ev_multiplier, *sec_ids, d.agg_group,
        d.under_symbol, d.under_sec_type, d.market_rule_ids, d.real_expiration_date, d.stock_type, *sizes,
    )


def contract_details_end(req_id: int) -> bytes:
    """contractDetailsEnd (52)."""
    return _msg(52, 1, req_id)


def sec_def_opt_params(req_id: int, exchange: str, under_con_id: int, trading_class: str,
                       multiplier: str, expirations: Iterable[str], strikes: Iterable[float]) -> bytes:
    """securityDefinitionOptionParameter (75): one message per exchange (ref §3)."""
    exps, ks = list(expirations), [enc_float(k) for k in strikes]
    return _msg(75, req_id, exchange, under_con_id, trading_class, multiplier, len(exps), *exps, len(ks), *ks)


def sec_def_opt_params_end(req_id: int) -> bytes:
    """securityDefinitionOptionParameterEnd (76): no version field."""
    return _msg(76, req_id)


# --- market data (ref §3 "Market data") ------------------------------------------------------


def market_depth(req_id: int, position: int, operation: int, side: int, price: float, size: float) -> bytes:
    """marketDepth (12): direct-routed depth without a market maker."""
    return _pack(f"12\x001\x00{req_id}\x00{position}\x00{operation}\x00{side}\x00{_num(price)}\x00{_num(size)}\x00")


def market_depth_l2(req_id: int, position: int, market_maker: str, operation: int, side: int,
                    price: float, size: float, is_smart_depth: bool = True) -> bytes:
    """marketDepthL2 (13): op 0 insert / 1 update / 2 delete, side 0 ask / 1 bid (ref §3, §7)."""
    p = _num(price)
    s = _num(size)
    payload = (f"13\x001\x00{req_id}\x00{position}\x00{market_maker}\x00{operation}\x00{side}\x00"
               f"{p}\x00{s}\x00{'1' if is_smart_depth else '0'}\x00").encode()
    return len(payload).to_bytes(4, "big") + payload


def depth_op(req_id: int, op: DepthOp, is_smart_depth: bool = True) -> bytes:
    """A simulated-market ``DepthOp`` as marketDepthL2; its venue becomes the marketMaker."""
    return market_depth_l2(req_id, op.position, op.venue, op.operation, op.side, op.price, op.size, is_smart_depth)


def realtime_bar(req_id: int, time_s: int, open_: float, high: float, low: float, close: float,
                 volume: float, wap: float, count: int) -> bytes:
    """realtimeBar (50): ``time_s`` is the bar start, an epoch multiple of 5."""
    return _pack(f"50\x003\x00{req_id}\x00{time_s}\x00{_num(open_)}\x00{_num(high)}\x00{_num(low)}\x00"
                 f"{_num(close)}\x00{_num(volume)}\x00{_num(wap)}\x00{count}\x00")


def tick_by_tick_last(req_id: int, time_s: int, price: float, size: float, exchange: str,
                      special_conditions: str = "", past_limit: bool = False, unreported: bool = False,
                      all_last: bool = True) -> bytes:
    """tickByTick (99) type 2 AllLast (or 1 Last); mask bit0 pastLimit, bit1 unreported."""
    mask = int(past_limit) | (int(unreported) << 1)
    return _pack(f"99\x00{req_id}\x00{2 if all_last else 1}\x00{time_s}\x00{_num(price)}\x00{_num(size)}\x00"
                 f"{mask}\x00{exchange}\x00{special_conditions}\x00")


def tick_by_tick_bid_ask(req_id: int, time_s: int, bid: float, ask: float, bid_size: float, ask_size: float,
                         bid_past_low: bool = False, ask_past_high: bool = False) -> bytes:
    """tickByTick (99) type 3 BidAsk; mask bit0 bidPastLow, bit1 askPastHigh."""
    mask = int(bid_past_low) | (int(ask_past_high) << 1)
    return _pack(f"99\x00{req_id}\x003\x00{time_s}\x00{_num(bid)}\x00{_num(ask)}\x00{_num(bid_size)}\x00"
                 f"{_num(ask_size)}\x00{mask}\x00")


def tick_by_tick_mid(req_id: int, time_s: int, mid: float) -> bytes:
    """tickByTick (99) type 4 MidPoint."""
    return _pack(f"99\x00{req_id}\x004\x00{time_s}\x00{_num(mid)}\x00")


def tick_price(req_id: int, tick_type: int, price: float, size: float = 0.0, attr_mask: int = 0) -> bytes:
    """tickPrice (1), strict 7 fields; ib_async drops a tick whose price field is empty."""
    return _pack(f"1\x006\x00{req_id}\x00{tick_type}\x00{_num(price)}\x00{_num(size)}\x00{attr_mask}\x00")


def tick_size(req_id: int, tick_type: int, size: float) -> bytes:
    """tickSize (2): 0 bid size, 3 ask size, 5 last size, 8 volume."""
    return _pack(f"2\x006\x00{req_id}\x00{tick_type}\x00{_num(size)}\x00")


def tick_string(req_id: int, tick_type: int, value: str) -> bytes:
    """tickString (46): 45 lastTimestamp, 48 RTVolume, 32/33/84 exchange letters."""
    return _msg(46, 6, req_id, tick_type, value)


def tick_generic(req_id: int, tick_type: int, value: float) -> bytes:
    """tickGeneric (45); only tick types ib_async maps (e.g. 23 histVolatility, 24 impliedVol)."""
    return _msg(45, 6, req_id, tick_type, value)


def market_data_type(req_id: int, data_type: int) -> bytes:
    """marketDataType (58): 1 live, 2 frozen, 3 delayed, 4 delayed-frozen."""
    return _msg(58, 1, req_id, data_type)


def tick_req_params(req_id: int, min_tick: float, bbo_exchange: str, snapshot_permissions: int) -> bytes:
    """tickReqParams (81), sent right after reqMktData."""
    return _msg(81, req_id, min_tick, bbo_exchange, snapshot_permissions)


def tick_option_computation(req_id: int, tick_type: int, implied_vol: float | None, delta: float | None,
                            opt_price: float | None, pv_dividend: float | None, gamma: float | None,
                            vega: float | None, theta: float | None, und_price: float | None,
                            tick_attrib: int = 0) -> bytes:
    """tickOptionComputation (21), no version at sv >= 156; unknowns go out as TWS's -1 / -2 (ref §3)."""
    def v(x: float | None, unknown: int) -> str:
        return str(unknown) if x is None else repr(float(x))

    return _pack(f"21\x00{req_id}\x00{tick_type}\x00{tick_attrib}\x00{v(implied_vol, -1)}\x00{v(delta, -2)}\x00"
                 f"{v(opt_price, -1)}\x00{v(pv_dividend, -1)}\x00{v(gamma, -2)}\x00{v(vega, -2)}\x00"
                 f"{v(theta, -2)}\x00{v(und_price, -1)}\x00")


def mkt_depth_exchanges(rows: Sequence[WireDepthExchange]) -> bytes:
    """mktDepthExchanges (80): count then 5 fields per venue."""
    flat: list[object] = []
    for r in rows:
        flat += [r.exchange, r.sec_type, r.listing_exchange, r.service_data_type, r.agg_group]
    return _msg(80, len(rows), *flat)


# --- positions and account (ref §3 "Positions and account") ----------------------------------


def _contract10(c: WireContract, exchange: str) -> tuple[object, ...]:
    return (c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right, c.multiplier, exchange,
            c.currency, c.local_symbol, c.trading_class)


def position(p: WirePosition) -> bytes:
    """position (61), strict 16 fields; a zero position removes it client-side."""
    return _msg(61, 3, p.account, *_contract10(p.contract, p.contract.exchange), p.position, p.avg_cost)


def position_end() -> bytes:
    return _msg(62, 1)


def account_summary(req_id: int, account: str, tag: str, value: str, currency: str) -> bytes:
    """accountSummary (63)."""
    return _msg(63, 1, req_id, account, tag, value, currency)


def account_summary_end(req_id: int) -> bytes:
    return _msg(64, 1, req_id)


def update_account_value(key: str, value: str, currency: str, account: str) -> bytes:
    """updateAccountValue (6)."""
    return _msg(6, 2, key, value, currency, account)


def update_portfolio(p: WirePosition) -> bytes:
    """updatePortfolio (7), strict 20 fields; carries primaryExchange where position has exchange."""
    return _msg(7, 8, *_contract10(p.contract, p.contract.primary_exchange), p.position, p.market_price,
                p.market_value, p.avg_cost, p.unrealized_pnl, p.realized_pnl, p.account)


def update_account_time(hh_mm: str) -> bytes:
    """updateAccountTime (8): ``HH:MM``."""
    return _msg(8, 1, hh_mm)


def account_download_end(account: str) -> bytes:
    """accountDownloadEnd (54): ends reqAccountUpdates' startup sync."""
    return _msg(54, 1, account)


def account_update_multi(req_id: int, account: str, model_code: str, key: str, value: str, currency: str) -> bytes:
    """accountUpdateMulti (73)."""
    return _msg(73, 1, req_id, account, model_code, key, value, currency)


def account_update_multi_end(req_id: int) -> bytes:
    return _msg(74, 1, req_id)


# --- historical bars -------------------------------------------------------------------------


def ib_bar_date(ts: datetime, format_date: int, tz: str = "US/Eastern") -> str:
    """A bar's date as reqHistoricalData asked: 1 → ``YYYYMMDD HH:MM:SS US/Eastern``, 2 → epoch s."""
    if format_date == 2:
        return str(int(ts.timestamp()))
    return f"{ts.astimezone(ZoneInfo(tz)):%Y%m%d %H:%M:%S} {tz}"


def historical_data(req_id: int, start: str, end: str, bars: Sequence[WireBar]) -> bytes:
    """historicalData (17): no version, all bars, and it is also the end marker (until sv 196)."""
    flat: list[object] = []
    for b in bars:
        flat += [b.date, b.open, b.high, b.low, b.close, b.volume, b.wap, b.count]
    return _msg(17, req_id, start, end, len(bars), *flat)


def historical_data_update(req_id: int, bar: WireBar) -> bytes:
    """historicalDataUpdate (90), for keepUpToDate requests: note the count-first field order."""
    return _msg(90, req_id, bar.count, bar.date, bar.open, bar.close, bar.high, bar.low, bar.wap, bar.volume)


def utc_epoch(ts: datetime) -> int:
    """Whole epoch seconds of a tz-aware time (naive times are taken as UTC)."""
    return int((ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).timestamp())


def tick_snapshot_end(req_id: int) -> bytes:
    """tickSnapshotEnd (57): ends a reqMktData snapshot (ib_async's reqTickers waits for it)."""
    return _msg(57, 1, req_id)
