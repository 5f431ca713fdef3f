"""Plain inputs and outputs of the TWS wire codec: contracts, orders, executions, bars.

Small frozen dataclasses in snake_case whose fields map one-to-one onto ib_async's camelCase
objects (``con_id`` ↔ ``conId``). Floats and ints left ``None`` travel as empty fields, which
ib_async reads as "unset" (ref ib-api-protocol.md §2). The server builds these from its engine
state; ``ib_decode`` returns ``WireContract`` inside parsed requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from qc.sim.market.models import OptionContract


@dataclass(frozen=True, slots=True)
class WireContract:
    """IB's contract block (ref §5 "contract(12)"). Requests may leave most fields empty (wildcards)."""

    con_id: int = 0
    symbol: str = ""
    sec_type: str = ""
    last_trade_date: str = ""  # YYYYMMDD for options, empty for stock
    strike: float = 0.0
    right: str = ""  # "C", "P" or ""
    multiplier: str = ""
    exchange: str = ""
    primary_exchange: str = ""
    currency: str = ""
    local_symbol: str = ""
    trading_class: str = ""


def option_wire_contract(opt: OptionContract, con_id: int, exchange: str = "SMART") -> WireContract:
    """An option's contract as IB reports it: OCC localSymbol, multiplier ``100``, USD (ref §3)."""
    return WireContract(
        con_id=con_id, symbol=opt.underlying, sec_type="OPT", last_trade_date=f"{opt.expiry:%Y%m%d}",
        strike=opt.strike, right=opt.right, multiplier=str(opt.multiplier), exchange=exchange,
        currency="USD", local_symbol=opt.occ_symbol, trading_class=opt.underlying,
    )


@dataclass(frozen=True, slots=True)
class WireContractDetails:
    """contractDetails (10) payload beyond the contract (ref §3 "Contracts").

    ``last_trade_time`` + ``time_zone_id`` make the expiry travel as ``YYYYMMDD 16:00 US/Eastern``,
    from which ib_async fills ``lastTradeTime`` and ``timeZoneId``.
    """

    contract: WireContract
    market_name: str = ""
    min_tick: float = 0.01
    order_types: str = "ACTVTIME,ADJUST,ALERT,ALLOC,LMT,MKT,MOC,LOC,STP,STPLMT,TRAIL,TRAILLIMIT"
    valid_exchanges: str = "SMART"
    price_magnifier: int = 1
    under_con_id: int = 0
    long_name: str = ""
    contract_month: str = ""
    industry: str = ""
    category: str = ""
    subcategory: str = ""
    time_zone_id: str = "US/Eastern"
    trading_hours: str = ""
    liquid_hours: str = ""
    last_trade_time: str = ""  # e.g. "16:00" for an option expiring at the close
    ev_rule: str = ""
    ev_multiplier: float | None = None
    sec_ids: tuple[tuple[str, str], ...] = ()
    agg_group: int = 1
    under_symbol: str = ""
    under_sec_type: str = ""
    market_rule_ids: str = ""
    real_expiration_date: str = ""
    stock_type: str = ""
    min_size: float = 1.0
    size_increment: float = 1.0
    suggested_size_increment: float = 1.0


@dataclass(frozen=True, slots=True)
class WireOrder:
    """The order fields openOrder/completedOrder carry that qc's engine fills in (ref §4)."""

    order_id: int
    action: str  # BUY / SELL
    total_quantity: float
    order_type: str
    client_id: int = 0
    perm_id: int = 0
    lmt_price: float | None = None
    aux_price: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    account: str = ""
    open_close: str = ""
    origin: int = 0
    order_ref: str = ""
    outside_rth: bool = False
    hidden: bool = False
    transmit: bool = True
    parent_id: int = 0
    parent_perm_id: int = 0
    trail_stop_price: float | None = None
    trailing_percent: float | None = None
    good_after_time: str = ""
    good_till_date: str = ""
    display_size: int = 0
    all_or_none: bool = False
    min_qty: int | None = None
    trigger_method: int = 0
    filled_quantity: float | None = None  # completedOrder only


@dataclass(frozen=True, slots=True)
class WireOrderState:
    """openOrder's OrderState part: the status plus what-if fields qc leaves empty (ref §4)."""

    status: str
    commission: float | None = None
    min_commission: float | None = None
    max_commission: float | None = None
    commission_currency: str = ""
    warning_text: str = ""
    completed_time: str = ""  # completedOrder only, e.g. "20240119 10:31:02 US/Eastern"
    completed_status: str = ""


@dataclass(frozen=True, slots=True)
class WireExecution:
    """execDetails (11) fields besides the contract (ref §3 "Orders and executions").

    ``time`` must parse with ib_async's ``parseIBDatetime``: ``YYYYMMDD HH:MM:SS US/Eastern``.
    """

    order_id: int
    exec_id: str
    time: str
    account: str
    exchange: str
    side: str  # BOT / SLD
    shares: float
    price: float
    perm_id: int
    client_id: int
    cum_qty: float
    avg_price: float
    order_ref: str = ""
    liquidation: int = 0
    ev_rule: str = ""
    ev_multiplier: float | None = None
    model_code: str = ""
    last_liquidity: int = 1  # 1 added, 2 removed
    pending_price_revision: bool = False


@dataclass(frozen=True, slots=True)
class WireCommission:
    """commissionReport (59); ``None`` PNL/yield go out empty (ref §3)."""

    exec_id: str
    commission: float
    currency: str = "USD"
    realized_pnl: float | None = None
    yield_: float | None = None
    yield_redemption_date: int | None = None


@dataclass(frozen=True, slots=True)
class WireBar:
    """One historical bar; ``date`` is already in the requested formatDate (see ``ib_bar_date``)."""

    date: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(frozen=True, slots=True)
class WireDepthExchange:
    """One mktDepthExchanges (80) row."""

    exchange: str
    sec_type: str
    listing_exchange: str = ""
    service_data_type: str = "Deep2"
    agg_group: int | None = None


@dataclass(frozen=True, slots=True)
class WirePosition:
    """position (61) / updatePortfolio (7) inputs."""

    account: str
    contract: WireContract
    position: float
    avg_cost: float
    market_price: float = 0.0
    market_value: float = 0.0
    unrealized_pnl: float = 0.0
    realized_pnl: float = 0.0
