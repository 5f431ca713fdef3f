"""TWS API wire codec for `qc sim`: order, execution and commission messages the server sends.

openOrder and completedOrder are long positional layouts, so they are written as tables (ref
ib-api-protocol.md §4, checked field by field against ib_async 2.1.0's ``Decoder.openOrder`` /
``Decoder.completedOrder`` and the official ibapi order decoder). Table tokens: ``o.x`` a
``WireOrder`` attribute, ``c.x`` a ``WireContract`` attribute, ``s.x`` a ``WireOrderState``
attribute, ``-`` an empty field, anything else a literal. A table is a sequence of runs, each with
the ``ib_versions.Gate`` of the server versions that carry it, so one table holds every layout of
157..178 (openOrder: 120 fields at 157, 128 at 170..176, 127 at 177..178) and is compiled once per
version. The tables describe a plain order: no combo legs, scale, hedge, algo, delta-neutral, PEG
BENCH or conditions (their counts are ``0``). The layout-changing encoders take the session's
negotiated version as the required ``sv`` keyword. Sequencing for a fill (ref §6): execDetails →
openOrder + orderStatus → commissionReport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

from qc.sim.ib import versions as v
from qc.sim.ib.versions import ALWAYS, Gate, before, since
from qc.sim.ib.wire import enc, frame_text
from qc.sim.ib.wire_types import WireCommission, WireContract, WireExecution, WireOrder, WireOrderState

Layout = Sequence[tuple[Gate, str]]

_CONTRACT = ("c.con_id c.symbol c.sec_type c.last_trade_date c.strike c.right c.multiplier c.exchange "
             "c.currency c.local_symbol c.trading_class")
_FA_PROFILE = (before(v.MIN_SERVER_VER_FA_PROFILE_DESUPPORT), "-")
_PEG_OFFSETS = (since(v.MIN_SERVER_VER_PEGBEST_PEGMID_OFFSETS),
                "- - - - -")  # minTradeQty, minCompeteSize, competeAgainstBestOffset, midOffsetAtWhole/Half

# §4 (indices at sv 178): 0-12, 13-33, 34-62, 63-69, 70-72, 73-75, 76-82, 83-101, 102, 103-118, 119-121, 122-126.
OPEN_ORDER_LAYOUT: Layout = (
    (ALWAYS, " ".join([
        "5 o.order_id", _CONTRACT,
        "o.action o.total_quantity o.order_type o.lmt_price o.aux_price o.tif o.oca_group o.account",
        "o.open_close o.origin o.order_ref o.client_id o.perm_id o.outside_rth o.hidden 0",
        "o.good_after_time - - - -",  # sharesAllocation (ignored), faGroup, faMethod, faPercentage
    ])),
    _FA_PROFILE,
    (ALWAYS, " ".join([
        "- o.good_till_date - - - 0 - -",  # modelCode … exemptCode
        "0 - - - - - o.display_size 0 0 o.all_or_none o.min_qty o.oca_type 0 0 -",
        "o.parent_id o.trigger_method - - - -",  # parentId (57 at sv 178) … deltaNeutralAuxPrice
        "0 - o.trail_stop_price o.trailing_percent - - -",  # continuousUpdate … comboLegsDescrip
        "0 0 0",  # comboLegs, orderComboLegs, smartComboRoutingParams
        "- - -",  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (empty: no scale block)
        "- 0 - - 0 0 -",  # hedgeType, optOutSmartRouting, clearing x2, notHeld, dncPresent, algoStrategy
        "0 0 s.status - - - - - - - - -",  # solicited, whatIf (must be 0), status, 9 margin fields
        "s.commission s.min_commission s.max_commission s.commission_currency s.warning_text 0 0",
        "0",  # conditionsCount
        "None - o.trail_stop_price - - - - 0 - - - - 0 0 0 0",  # adjustedOrderType … usePriceMgmtAlgo
    ])),
    (since(v.MIN_SERVER_VER_DURATION), "-"),
    (since(v.MIN_SERVER_VER_POST_TO_ATS), "-"),
    (since(v.MIN_SERVER_VER_AUTO_CANCEL_PARENT), "0"),
    _PEG_OFFSETS,
)

COMPLETED_ORDER_LAYOUT: Layout = (
    (ALWAYS, " ".join([
        "101", _CONTRACT,
        "o.action o.total_quantity o.order_type o.lmt_price o.aux_price o.tif o.oca_group o.account",
        "o.open_close o.origin o.order_ref o.perm_id o.outside_rth o.hidden 0 o.good_after_time - - -",
    ])),
    _FA_PROFILE,
    (ALWAYS, " ".join([
        "- o.good_till_date - - - 0 - - - - - - - o.display_size 0 o.all_or_none o.min_qty o.oca_type",
        "o.trigger_method - - - -",  # triggerMethod, volatility, volatilityType, deltaNeutral x2
        "0 - o.trail_stop_price o.trailing_percent -",  # continuousUpdate … comboLegsDescrip
        "0 0 0 - - - -",  # combo counts, scale x3, hedgeType
        "- - 0 0 -",  # clearingAccount, clearingIntent, notHeld, dncPresent, algoStrategy
        "0 s.status 0 0 0",  # solicited, status, randomizeSize, randomizePrice, conditionsCount
        "o.trail_stop_price - - 0 0 - o.filled_quantity 0 0 - 0 0 o.parent_perm_id",
        "s.completed_time s.completed_status",
    ])),
    _PEG_OFFSETS,
)

_Getter = Callable[[WireOrder, WireContract, WireOrderState], str]


def _getter(token: str) -> _Getter:
    """Compile one table token into a function of (order, contract, state)."""
    kind, _, name = token.partition(".")
    if kind == "o" and name:
        return lambda o, c, s: enc(getattr(o, name))
    if kind == "c" and name:
        return lambda o, c, s: enc(getattr(c, name))
    if kind == "s" and name:
        return lambda o, c, s: enc(getattr(s, name))
    literal = "" if token == "-" else token
    return lambda o, c, s: literal


def compile_table(table: str) -> tuple[_Getter, ...]:
    """A whitespace-separated table → one getter per field."""
    return tuple(_getter(t) for t in table.split())


def layout_table(layout: Layout, sv: int) -> str:
    """The runs of ``layout`` that server version ``sv`` carries, as one table."""
    v.check(sv)
    return " ".join(tokens for gate, tokens in layout if gate.open(sv))


@cache
def _open_order(sv: int) -> tuple[_Getter, ...]:
    return compile_table(layout_table(OPEN_ORDER_LAYOUT, sv))


@cache
def _completed_order(sv: int) -> tuple[_Getter, ...]:
    return compile_table(layout_table(COMPLETED_ORDER_LAYOUT, sv))


def _render(getters: tuple[_Getter, ...], o: WireOrder, c: WireContract, s: WireOrderState) -> bytes:
    return frame_text("".join([g(o, c, s) + "\0" for g in getters]))


def open_order(order: WireOrder, contract: WireContract, state: WireOrderState, *, sv: int) -> bytes:
    """openOrder (5) in version ``sv``'s layout (127 fields at 178). ib_async links later fills and
    commissions through its permId.

    trailStopPrice goes in both of its slots (65 and 105 at sv 178; the second overwrites the first).
    """
    return _render(_open_order(sv), order, contract, state)


def open_order_end() -> bytes:
    """openOrderEnd (53): ends the reqOpenOrders startup sync."""
    return frame_text("53\x001\x00")


def completed_order(order: WireOrder, contract: WireContract, state: WireOrderState, *, sv: int) -> bytes:
    """completedOrder (101) in version ``sv``'s layout: no orderId; ib_async keys the trade by permId."""
    return _render(_completed_order(sv), order, contract, state)


def completed_orders_end() -> bytes:
    """completedOrdersEnd (102): the marker is the message id alone."""
    return frame_text("102\x00")


def order_status(order_id: int, status: str, filled: float, remaining: float, avg_fill_price: float,
                 perm_id: int, parent_id: int, last_fill_price: float, client_id: int,
                 why_held: str = "", mkt_cap_price: float = 0.0) -> bytes:
    """orderStatus (3): 12 fields, no version at sv >= 131."""
    values = (3, order_id, status, float(filled), float(remaining), float(avg_fill_price), perm_id, parent_id,
              float(last_fill_price), client_id, why_held, float(mkt_cap_price))
    return frame_text("".join([enc(x) + "\0" for x in values]))


def exec_details(req_id: int, contract: WireContract, ex: WireExecution, *, sv: int) -> bytes:
    """execDetails (11): 31 fields, plus pendingPriceRevision from sv 178; ``req_id`` -1 for a live fill."""
    c = contract
    values: tuple[object, ...] = (
        11, req_id, ex.order_id, c.con_id, c.symbol, c.sec_type, c.last_trade_date, c.strike, c.right,
        c.multiplier, c.exchange, c.currency, c.local_symbol, c.trading_class, ex.exec_id, ex.time, ex.account,
        ex.exchange, ex.side, float(ex.shares), float(ex.price), ex.perm_id, ex.client_id, ex.liquidation,
        float(ex.cum_qty), float(ex.avg_price), ex.order_ref, ex.ev_rule, ex.ev_multiplier, ex.model_code,
        ex.last_liquidity)
    if v.check(sv) >= v.MIN_SERVER_VER_PENDING_PRICE_REVISION:
        values += (ex.pending_price_revision,)
    return frame_text("".join([enc(x) + "\0" for x in values]))


def exec_details_end(req_id: int) -> bytes:
    """execDetailsEnd (55)."""
    return frame_text(f"55\x001\x00{req_id}\x00")


def commission_report(r: WireCommission) -> bytes:
    """commissionReport (59), strict 8 fields; ib_async attaches it to the fill with this execId."""
    values = (59, 1, r.exec_id, float(r.commission), r.currency, r.realized_pnl, r.yield_,
              r.yield_redemption_date)
    return frame_text("".join([enc(x) + "\0" for x in values]))
