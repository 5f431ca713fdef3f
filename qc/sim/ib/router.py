"""Routing of the broker's events to sessions (ref ib-api-protocol.md §6).

Order states, executions, commissions and order errors go to the owning client's session if it is
connected (otherwise the broker keeps them for the reconciliation after a reconnect); positions
go to sessions that called reqPositions, portfolio rows and account values to sessions subscribed
to that account (reqAccountUpdates, reqAccountUpdatesMulti, reqAccountSummary). An expiry
settlement's executions belong to no client (orderId 0, permId 0, empty orderRef): they go to every
connected session as live execDetails (reqId −1) + commissionReport.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qc.sim.broker.reports import (
    AccountChanged,
    BrokerError,
    BrokerEvent,
    CommissionReported,
    ExecutionReported,
    OrderStateChanged,
    PositionChanged,
    SettlementExecuted,
)
from qc.sim.ib import convert as cv

if TYPE_CHECKING:
    from qc.sim.ib.server import IBGatewayServer


def route(server: IBGatewayServer, events: list[BrokerEvent]) -> None:
    for ev in events:
        if isinstance(ev, PositionChanged):
            _position(server, ev)
        elif isinstance(ev, AccountChanged):
            _account(server, ev)
        elif isinstance(ev, SettlementExecuted):
            _settlement(server, ev)
        else:
            _owned(server, ev)


def _settlement(server: IBGatewayServer, ev: SettlementExecuted) -> None:
    e = ev.record.execution
    contract = server.catalog.wire(e.contract)
    for s in list(server.client_sessions.values()):
        s.send("execDetails", cv.execution_frame(-1, e, contract, sv=s.version))
        s.send("commissionReport", cv.commission_frame(ev.record.commission))


def _owned(
    server: IBGatewayServer,
    ev: OrderStateChanged | ExecutionReported | CommissionReported | BrokerError,
) -> None:
    s = server.client_sessions.get(ev.client_id)
    if s is None:
        return
    if isinstance(ev, OrderStateChanged):
        contract = server.catalog.wire(ev.order.request.contract)
        s.send("openOrder", cv.order_frames(ev.order, contract, sv=s.version))
    elif isinstance(ev, ExecutionReported):
        contract = server.catalog.wire(ev.execution.contract)
        s.send("execDetails", cv.execution_frame(-1, ev.execution, contract, sv=s.version))
    elif isinstance(ev, CommissionReported):
        s.send("commissionReport", cv.commission_frame(ev.commission))
    elif isinstance(ev, BrokerError):
        s.error(ev.order_id, ev.code, ev.message)


def _position(server: IBGatewayServer, ev: PositionChanged) -> None:
    contract = server.catalog.wire(ev.row.contract)
    for s in list(server.client_sessions.values()):
        if s.positions_sub:
            s.send("position", cv.position_frame(ev.row, contract))
        if ev.account in s.account_updates:
            s.send("updatePortfolio", cv.portfolio_frame(ev.row, contract))


def _account(server: IBGatewayServer, ev: AccountChanged) -> None:
    for s in list(server.client_sessions.values()):
        if ev.account in s.account_updates:
            s.send("updateAccountValue", cv.account_value_frames(ev.values))
        for req_id, account in s.account_multi.items():
            if account in ("", "All", ev.account):
                s.send("accountUpdateMulti", cv.account_multi_frames(req_id, ev.values))
        for req_id, tags in s.account_summary.items():
            s.send("accountSummary", cv.account_summary_frames(req_id, ev.values, tags))
