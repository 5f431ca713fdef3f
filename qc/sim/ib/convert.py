"""Broker engine values ↔ wire codec values, and broker events → framed messages.

Pure: the session and the server call these to turn ``SimBroker`` snapshots, executions and
portfolio rows into the codec's ``Wire*`` inputs and ``bytes`` frames (ref ib-api-protocol.md §3,
§6), and a decoded ``PlaceOrder`` into the engine's ``OrderRequest``. Order and execution frames
change layout with the server version, so their builders take the session's negotiated ``sv``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from qc.core.clock import NEW_YORK
from qc.sim.broker.orders import ContractKey, OrderRequest, OrderSnapshot
from qc.sim.broker.reports import AccountValue, CommissionReport, Execution, PortfolioRow
from qc.sim.ib import encode as enc
from qc.sim.ib import wire_orders as wo
from qc.sim.ib.wire_place_order import PlaceOrder
from qc.sim.ib.wire_types import WireCommission, WireContract, WireExecution, WireOrder, WireOrderState, WirePosition


def ib_time(ts: datetime) -> str:
    """``YYYYMMDD HH:MM:SS US/Eastern``: what ib_async's parseIBDatetime reads (ref §3 execDetails)."""
    return f"{ts.astimezone(NEW_YORK):%Y%m%d %H:%M:%S} US/Eastern"


def order_request(p: PlaceOrder, key: ContractKey, client_id: int) -> OrderRequest | str:
    """placeOrder → the engine's request, or the reason it cannot be one."""
    action = p.action.upper()
    if action not in ("BUY", "SELL"):
        return f"Invalid action {p.action!r}"
    side: Literal["BUY", "SELL"] = "BUY" if action == "BUY" else "SELL"
    return OrderRequest(
        order_id=p.order_id, client_id=client_id, account=p.account, contract=key, action=side,
        quantity=p.total_quantity, order_type=p.order_type.upper(), lmt_price=p.lmt_price, aux_price=p.aux_price,
        trailing_percent=p.trailing_percent, trail_stop_price=p.trail_stop_price,
        lmt_price_offset=p.lmt_price_offset, tif=p.tif or "DAY", oca_group=p.oca_group, oca_type=p.oca_type,
        parent_id=p.parent_id, transmit=p.transmit, order_ref=p.order_ref, outside_rth=p.outside_rth)


def wire_order(s: OrderSnapshot, filled: bool = False) -> WireOrder:
    r = s.request
    return WireOrder(
        order_id=r.order_id, action=r.action, total_quantity=r.quantity, order_type=r.order_type,
        client_id=r.client_id, perm_id=s.perm_id, lmt_price=r.lmt_price,
        aux_price=r.aux_price, tif=r.tif, oca_group=r.oca_group, oca_type=r.oca_type, account=r.account,
        order_ref=r.order_ref, outside_rth=r.outside_rth, transmit=r.transmit, parent_id=r.parent_id,
        parent_perm_id=s.parent_perm_id, trail_stop_price=s.trail_stop_price, trailing_percent=r.trailing_percent,
        filled_quantity=s.filled if filled else None)


def order_frames(s: OrderSnapshot, contract: WireContract, *, sv: int) -> bytes:
    """openOrder + orderStatus for one order state (ref §6), in server version ``sv``'s layout."""
    state = WireOrderState(status=s.status, commission=s.commission or None,
                           commission_currency="USD" if s.commission else "")
    status = wo.order_status(s.order_id, s.status, s.filled, s.remaining, s.avg_fill_price, s.perm_id,
                             s.parent_id, s.last_fill_price, s.client_id, s.why_held)
    return wo.open_order(wire_order(s), contract, state, sv=sv) + status


def completed_frame(s: OrderSnapshot, contract: WireContract, *, sv: int) -> bytes:
    changed = s.last_change
    state = WireOrderState(status=s.status, completed_time="" if changed is None else ib_time(changed),
                           completed_status=s.status)
    return wo.completed_order(wire_order(s, filled=True), contract, state, sv=sv)


def execution_frame(req_id: int, e: Execution, contract: WireContract, *, sv: int) -> bytes:
    ex = WireExecution(
        order_id=e.order_id, exec_id=e.exec_id, time=ib_time(e.time), account=e.account, exchange=e.exchange,
        side=e.side, shares=e.shares, price=e.price, perm_id=e.perm_id, client_id=e.client_id, cum_qty=e.cum_qty,
        avg_price=e.avg_price, order_ref=e.order_ref, liquidation=e.liquidation)
    return wo.exec_details(req_id, contract, ex, sv=sv)


def commission_frame(c: CommissionReport) -> bytes:
    return wo.commission_report(WireCommission(c.exec_id, c.commission, c.currency or "USD", c.realized_pnl))


def wire_position(row: PortfolioRow, contract: WireContract) -> WirePosition:
    return WirePosition(account=row.account, contract=contract, position=row.position, avg_cost=row.average_cost,
                        market_price=row.market_price, market_value=row.market_value,
                        unrealized_pnl=row.unrealized_pnl, realized_pnl=row.realized_pnl)


def position_frame(row: PortfolioRow, contract: WireContract) -> bytes:
    return enc.position(wire_position(row, contract))


def portfolio_frame(row: PortfolioRow, contract: WireContract) -> bytes:
    return enc.update_portfolio(wire_position(row, contract))


def account_value_frames(values: tuple[AccountValue, ...]) -> bytes:
    return b"".join(enc.update_account_value(v.tag, v.value, v.currency, v.account) for v in values)


def account_multi_frames(req_id: int, values: tuple[AccountValue, ...]) -> bytes:
    return b"".join(enc.account_update_multi(req_id, v.account, "", v.tag, v.value, v.currency) for v in values)


def account_summary_frames(req_id: int, values: tuple[AccountValue, ...], tags: frozenset[str]) -> bytes:
    """accountSummary rows for the requested tags (``$LEDGER`` groups are answered by the plain tags)."""
    return b"".join(enc.account_summary(req_id, v.account, v.tag, v.value, v.currency)
                    for v in values if v.tag in tags)
