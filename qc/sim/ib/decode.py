"""TWS API wire codec for `qc sim`, layer 3: the requests the server parses (ref ib-api-protocol.md §5).

``parse_request(fields, server_version)`` turns one frame's fields (from ``ib_wire.FrameSplitter``)
into a typed, frozen dataclass. It never raises: an unknown message id gives ``Unknown`` (the
server logs it and answers nothing, as TWS ignores what it does not know) and a known id whose
fields cannot be read gives ``Malformed``. Each parser reads with a ``Cursor`` in exactly the
order ib_async 2.1.0's ``Client`` writes (tests capture the real client's bytes). placeOrder, the
long one, lives in ``ib_wire_place_order``. Version fields are skipped, not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qc.sim.ib import versions as v
from qc.sim.ib.wire import SERVER_VERSION, Cursor, WireError
from qc.sim.ib.wire_place_order import (
    ComboLegRef,
    DeltaNeutral,
    OrderConditionFields,
    PlaceOrder,
    parse_place_order,
    read_contract,
    read_tag_values,
)
from qc.sim.ib.wire_types import WireContract


@dataclass(frozen=True, slots=True)
class Unknown:
    """A message id this codec does not parse; the server logs it and answers nothing."""

    msg_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Malformed:
    """A known message id whose fields did not read (too few, not a number)."""

    msg_id: int
    fields: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class StartApi:
    client_id: int
    optional_capabilities: str


@dataclass(frozen=True, slots=True)
class ReqIds:
    num_ids: int


@dataclass(frozen=True, slots=True)
class NoArgs:
    """A request that carries nothing but its id: ``msg_id`` says which (see ``NO_ARG_NAMES``)."""

    msg_id: int

    @property
    def name(self) -> str:
        return NO_ARG_NAMES[self.msg_id]


NO_ARG_NAMES = {5: "reqOpenOrders", 16: "reqAllOpenOrders", 17: "reqManagedAccts", 49: "reqCurrentTime",
                58: "reqGlobalCancel", 61: "reqPositions", 64: "cancelPositions", 82: "reqMktDepthExchanges"}


@dataclass(frozen=True, slots=True)
class Cancel:
    """A cancel carrying only the request id: ``msg_id`` says which (see ``CANCEL_NAMES``)."""

    msg_id: int
    req_id: int

    @property
    def name(self) -> str:
        return CANCEL_NAMES[self.msg_id]


CANCEL_NAMES = {2: "cancelMktData", 25: "cancelHistoricalData", 51: "cancelRealTimeBars",
                63: "cancelAccountSummary", 77: "cancelAccountUpdatesMulti", 98: "cancelTickByTickData"}


@dataclass(frozen=True, slots=True)
class ReqContractDetails:
    req_id: int
    contract: WireContract
    include_expired: bool
    sec_id_type: str
    sec_id: str
    issuer_id: str


@dataclass(frozen=True, slots=True)
class ReqSecDefOptParams:
    req_id: int
    underlying_symbol: str
    fut_fop_exchange: str
    underlying_sec_type: str
    underlying_con_id: int


@dataclass(frozen=True, slots=True)
class ReqMktDepth:
    req_id: int
    contract: WireContract
    num_rows: int
    is_smart_depth: bool
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CancelMktDepth:
    req_id: int
    is_smart_depth: bool


@dataclass(frozen=True, slots=True)
class ReqRealTimeBars:
    req_id: int
    contract: WireContract
    bar_size: int
    what_to_show: str
    use_rth: bool
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReqTickByTickData:
    req_id: int
    contract: WireContract
    tick_type: str  # "Last" | "AllLast" | "BidAsk" | "MidPoint"
    number_of_ticks: int
    ignore_size: bool


@dataclass(frozen=True, slots=True)
class ReqMktData:
    req_id: int
    contract: WireContract
    combo_legs: tuple[ComboLegRef, ...]
    delta_neutral: DeltaNeutral | None
    generic_tick_list: tuple[int, ...]
    snapshot: bool
    regulatory_snapshot: bool
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ReqMarketDataType:
    data_type: int


@dataclass(frozen=True, slots=True)
class ReqHistoricalData:
    req_id: int
    contract: WireContract
    include_expired: bool
    end_date_time: str
    bar_size: str  # e.g. "1 min"
    duration: str  # e.g. "1 D"
    use_rth: bool
    what_to_show: str
    format_date: int
    combo_legs: tuple[ComboLegRef, ...]
    keep_up_to_date: bool
    chart_options: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CancelOrder:
    order_id: int
    manual_cancel_order_time: str


@dataclass(frozen=True, slots=True)
class ReqAutoOpenOrders:
    auto_bind: bool


@dataclass(frozen=True, slots=True)
class ReqCompletedOrders:
    api_only: bool


@dataclass(frozen=True, slots=True)
class ReqExecutions:
    """reqExecutions with its filter; empty strings and client_id 0 match everything."""

    req_id: int
    client_id: int
    account: str
    time: str
    symbol: str
    sec_type: str
    exchange: str
    side: str


@dataclass(frozen=True, slots=True)
class ReqAccountUpdates:
    subscribe: bool
    account: str


@dataclass(frozen=True, slots=True)
class ReqAccountUpdatesMulti:
    req_id: int
    account: str
    model_code: str
    ledger_and_nlv: bool


@dataclass(frozen=True, slots=True)
class ReqAccountSummary:
    req_id: int
    group: str
    tags: tuple[str, ...]


Request = (Unknown | Malformed | StartApi | ReqIds | NoArgs | Cancel | ReqContractDetails | ReqSecDefOptParams
           | ReqMktDepth | CancelMktDepth | ReqRealTimeBars | ReqTickByTickData | ReqMktData | ReqMarketDataType
           | ReqHistoricalData | PlaceOrder | CancelOrder | ReqAutoOpenOrders | ReqCompletedOrders
           | ReqExecutions | ReqAccountUpdates | ReqAccountUpdatesMulti | ReqAccountSummary)


def _legs4(cur: Cursor, contract: WireContract) -> tuple[ComboLegRef, ...]:
    """BAG legs as reqMktData/reqHistoricalData send them: count, then conId, ratio, action, exchange."""
    if contract.sec_type != "BAG":
        return ()
    return tuple(ComboLegRef(cur.i0(), cur.i0(), cur.s(), cur.s()) for _ in range(cur.i0()))


def _req_mkt_data(cur: Cursor, sv: int) -> ReqMktData:
    req_id, contract = cur.i0(), read_contract(cur)
    legs = _legs4(cur, contract)
    dnc = DeltaNeutral(cur.i0(), cur.f(), cur.f()) if cur.b() else None
    ticks = tuple(int(t) for t in cur.s().split(",") if t.strip())
    return ReqMktData(req_id, contract, legs, dnc, ticks, cur.b(), cur.b(), read_tag_values(cur.s()))


def _req_historical(cur: Cursor, sv: int) -> ReqHistoricalData:
    req_id, contract = cur.i0(), read_contract(cur)
    include_expired, end, bar_size, duration = cur.b(), cur.s(), cur.s(), cur.s()
    use_rth, what, fmt = cur.b(), cur.s(), cur.i0()
    legs = _legs4(cur, contract)
    return ReqHistoricalData(req_id, contract, include_expired, end, bar_size, duration, use_rth, what, fmt,
                             legs, cur.b(), read_tag_values(cur.s()))


def _req_contract_details(cur: Cursor, sv: int) -> ReqContractDetails:
    req_id, contract = cur.i0(), read_contract(cur)
    include_expired, sec_id_type, sec_id = cur.b(), cur.s(), cur.s()
    issuer_id = cur.s() if sv >= v.MIN_SERVER_VER_BOND_ISSUERID else ""
    return ReqContractDetails(req_id, contract, include_expired, sec_id_type, sec_id, issuer_id)


def _req_mkt_depth(cur: Cursor, sv: int) -> ReqMktDepth:
    req_id, contract = cur.i0(), read_contract(cur)
    return ReqMktDepth(req_id, contract, cur.i0(), cur.b(), read_tag_values(cur.s()))


def _req_real_time_bars(cur: Cursor, sv: int) -> ReqRealTimeBars:
    req_id, contract = cur.i0(), read_contract(cur)
    return ReqRealTimeBars(req_id, contract, cur.i0(), cur.s(), cur.b(), read_tag_values(cur.s()))


def _req_tick_by_tick(cur: Cursor, sv: int) -> ReqTickByTickData:
    req_id, contract = cur.i0(), read_contract(cur)
    return ReqTickByTickData(req_id, contract, cur.s(), cur.i0(), cur.b())


def _req_executions(cur: Cursor, sv: int) -> ReqExecutions:
    return ReqExecutions(cur.i0(), cur.i0(), cur.s(), cur.s(), cur.s(), cur.s(), cur.s(), cur.s())


def _cancel_order(cur: Cursor, sv: int) -> CancelOrder:
    order_id = cur.i0()
    return CancelOrder(order_id, cur.s() if sv >= v.MIN_SERVER_VER_MANUAL_ORDER_TIME and cur.remaining else "")


def _req_account_summary(cur: Cursor, sv: int) -> ReqAccountSummary:
    req_id, group = cur.i0(), cur.s()
    return ReqAccountSummary(req_id, group, tuple(t for t in cur.s().split(",") if t))


_Parser = Callable[[Cursor, int], Request]


def _no_args(msg_id: int) -> _Parser:
    return lambda cur, sv: NoArgs(msg_id)


def _cancel(msg_id: int) -> _Parser:
    return lambda cur, sv: Cancel(msg_id, cur.i0())


# msg id → (number of fields to skip after the id, i.e. the version field if any; parser)
_PARSERS: dict[int, tuple[int, _Parser]] = {
    1: (1, _req_mkt_data),
    3: (0, lambda cur, sv: parse_place_order(cur, sv)),
    4: (1, _cancel_order),
    6: (1, lambda cur, sv: ReqAccountUpdates(cur.b(), cur.s())),
    7: (1, _req_executions),
    8: (1, lambda cur, sv: ReqIds(cur.i0())),
    9: (1, _req_contract_details),
    10: (1, _req_mkt_depth),
    11: (1, lambda cur, sv: CancelMktDepth(cur.i0(), cur.b() if cur.remaining else False)),
    15: (1, lambda cur, sv: ReqAutoOpenOrders(cur.b())),
    20: (0, _req_historical),
    50: (1, _req_real_time_bars),
    59: (1, lambda cur, sv: ReqMarketDataType(cur.i0())),
    62: (1, _req_account_summary),
    71: (1, lambda cur, sv: StartApi(cur.i0(), cur.s() if cur.remaining else "")),
    76: (1, lambda cur, sv: ReqAccountUpdatesMulti(cur.i0(), cur.s(), cur.s(), cur.b())),
    78: (0, lambda cur, sv: ReqSecDefOptParams(cur.i0(), cur.s(), cur.s(), cur.s(), cur.i0())),
    97: (0, _req_tick_by_tick),
    99: (0, lambda cur, sv: ReqCompletedOrders(cur.b())),
}
_PARSERS.update({k: (0 if k == 82 else 1, _no_args(k)) for k in NO_ARG_NAMES})
_PARSERS.update({k: (0 if k == 98 else 1, _cancel(k)) for k in CANCEL_NAMES})


def parse_request(fields: list[str], server_version: int = SERVER_VERSION) -> Request:
    """One frame's fields → a typed request; ``Unknown``/``Malformed`` instead of raising (ref §5)."""
    try:
        msg_id = int(fields[0])
    except (IndexError, ValueError):
        return Unknown(-1, tuple(fields))
    entry = _PARSERS.get(msg_id)
    if entry is None:
        return Unknown(msg_id, tuple(fields))
    skip, parser = entry
    try:
        return parser(Cursor(fields, 1 + skip), server_version)
    except (WireError, ValueError) as exc:
        return Malformed(msg_id, tuple(fields), str(exc))


__all__ = [  # re-exported so the server needs only this module for requests
    "CANCEL_NAMES", "NO_ARG_NAMES", "Cancel", "CancelMktDepth", "CancelOrder", "ComboLegRef", "DeltaNeutral",
    "Malformed", "NoArgs", "OrderConditionFields", "PlaceOrder", "ReqAccountSummary", "ReqAccountUpdates",
    "ReqAccountUpdatesMulti", "ReqAutoOpenOrders", "ReqCompletedOrders", "ReqContractDetails", "ReqExecutions",
    "ReqHistoricalData", "ReqIds", "ReqMarketDataType", "ReqMktData", "ReqMktDepth", "ReqRealTimeBars",
    "ReqSecDefOptParams", "ReqTickByTickData", "Request", "StartApi", "Unknown", "parse_request",
]
