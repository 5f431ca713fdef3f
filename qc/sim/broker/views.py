"""The broker's state as plain JSON rows, for `qc sim ctl orders|positions|executions|settle-now`.

Whole-process tests (the executor's among them) count and check what the broker holds without an
IB client of their own: duplicate orders by orderRef, positions after an expiry, executions that
share an orderId after a gateway restart. Field names follow ib_async's (camelCase), numbers stay
numbers, absent prices are null, times are ISO 8601 UTC, except an order's ``receivedAt``: the real
wall-clock epoch seconds (float) the gateway read its first placement, for latency benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qc.sim.broker.orders import ContractKey, OrderSnapshot
from qc.sim.broker.reports import BrokerEvent, ExecutionRecord, PortfolioRow, SettlementExecuted

Row = dict[str, Any]


def _terms(c: ContractKey) -> Row:
    return {"conId": c.con_id, "symbol": c.symbol, "secType": c.sec_type,
            "expiry": "" if c.expiry is None else f"{c.expiry:%Y%m%d}", "strike": c.strike, "right": c.right}


def order_row(o: OrderSnapshot) -> Row:
    """One order: ids, reference, state, terms, the live trail stop and its links (parent, OCA)."""
    r = o.request
    return {
        "clientId": r.client_id, "orderId": r.order_id, "permId": o.perm_id, "orderRef": r.order_ref,
        "status": o.status, "action": r.action, "totalQuantity": r.quantity, "filled": o.filled,
        "remaining": o.remaining, "avgFillPrice": o.avg_fill_price, "orderType": r.order_type,
        "lmtPrice": r.lmt_price, "auxPrice": r.aux_price, "trailingPercent": r.trailing_percent,
        "trailStopPrice": o.trail_stop_price, "tif": r.tif, "parentId": r.parent_id,
        "parentPermId": o.parent_perm_id, "ocaGroup": r.oca_group, "ocaType": r.oca_type,
        "conId": r.contract.con_id, "symbol": r.contract.symbol, "secType": r.contract.sec_type,
        "account": r.account, "receivedAt": o.received_at,
    }


def position_row(p: PortfolioRow) -> Row:
    """One position: account, contract terms, signed quantity, IB's average cost (per contract)."""
    return {"account": p.account, **_terms(p.contract), "qty": p.position, "avgCost": p.average_cost}


def execution_row(x: ExecutionRecord) -> Row:
    """One execution with its commission; orderId/permId 0 and an empty orderRef mark a settlement."""
    e, c = x.execution, x.commission
    return {
        "execId": e.exec_id, "orderId": e.order_id, "permId": e.perm_id, "clientId": e.client_id,
        "orderRef": e.order_ref, "account": e.account, "conId": e.contract.con_id, "symbol": e.contract.symbol,
        "secType": e.contract.sec_type, "side": e.side, "shares": e.shares, "price": e.price,
        "time": e.time.isoformat(), "commission": c.commission, "realizedPnl": c.realized_pnl,
    }


def settlement_rows(events: Sequence[BrokerEvent]) -> list[Row]:
    """What an expiry settlement did, one row per option position: the signed quantity it held,
    the outcome, and the signed shares delivered (0 when it expired)."""
    rows: list[Row] = []
    for ev in events:
        if not isinstance(ev, SettlementExecuted):
            continue
        e = ev.record.execution
        signed = e.shares if e.side == "BOT" else -e.shares
        if ev.leg == "option":
            rows.append({"account": ev.account, **_terms(e.contract), "qty": -signed, "outcome": ev.outcome,
                         "shares": 0.0, "realizedPnl": ev.record.commission.realized_pnl})
        elif rows:
            rows[-1]["shares"] = signed
    return rows
