"""Handlers of the simulated gateway's order, execution, position and account requests.

Orders go to ``SimBroker`` (contract by con_id from the catalogue; unknown → error 200) and the
events it returns are routed by the server (``IBGatewayServer.route``): order states, executions
and commissions to the owning client, positions and account values to subscribed sessions. The
startup-sync answers (ref ib-api-protocol.md §2.5) end with their markers through
``IBSession.end_marker`` so tests can delay or withhold them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qc.core.clock import NEW_YORK
from qc.sim.broker.reports import rejected_message
from qc.sim.ib import convert as cv
from qc.sim.ib import decode as dec
from qc.sim.ib import encode as enc
from qc.sim.ib import wire_orders as wo
from qc.sim.ib.history import HistoryError, parse_end
from qc.sim.ib.req_market import NO_SECURITY

if TYPE_CHECKING:
    from qc.sim.ib.session import IBSession

log = logging.getLogger(__name__)

AUTO_BIND_ONLY_0 = "Only API connections with clientId set to 0 can set the auto bind TWS orders property."


def _client(s: IBSession) -> int:
    assert s.client_id is not None  # handlers only run after startApi
    return s.client_id


def place_order(s: IBSession, req: dec.PlaceOrder) -> None:
    server, now = s.server, s.server.clock.now()
    if req.what_if:
        s.error(req.order_id, 201, rejected_message("what-if orders are not simulated"))
        return
    found = server.catalog.resolve(req.contract, now)
    if found is None:
        s.error(req.order_id, 200, NO_SECURITY)
        return
    request = cv.order_request(req, found.key, _client(s))
    if isinstance(request, str):
        s.error(req.order_id, 201, rejected_message(request))
        return
    if found.option is not None:
        server.quote_option_now(found.key.con_id, found.option, now)
    server.route(server.broker.submit(_client(s), request, now, received_at=s.received_at))


def cancel_order(s: IBSession, req: dec.CancelOrder) -> None:
    s.server.route(s.server.broker.cancel(_client(s), req.order_id, s.server.clock.now()))


def global_cancel(s: IBSession, req: dec.NoArgs) -> None:
    s.server.route(s.server.broker.global_cancel(s.server.clock.now()))


def open_orders(s: IBSession, req: dec.NoArgs) -> None:
    """reqOpenOrders (5): this client's working orders; reqAllOpenOrders (16): every client's."""
    server = s.server
    snaps = server.broker.open_orders(_client(s) if req.msg_id == 5 else None)
    wire = server.catalog.wire
    s.send("openOrder", *[cv.order_frames(o, wire(o.request.contract), sv=s.version) for o in snaps])
    s.end_marker("openOrderEnd", wo.open_order_end())


def auto_open_orders(s: IBSession, req: dec.ReqAutoOpenOrders) -> None:
    if _client(s) != 0:
        s.error(-1, 327, AUTO_BIND_ONLY_0)


def completed_orders(s: IBSession, req: dec.ReqCompletedOrders) -> None:
    server = s.server
    snaps = server.broker.completed_orders()
    wire = server.catalog.wire
    s.send("completedOrder", *[cv.completed_frame(o, wire(o.request.contract), sv=s.version) for o in snaps])
    s.end_marker("completedOrdersEnd", wo.completed_orders_end())


def _since(text: str, now: datetime) -> datetime | None:
    if not text.strip():
        return None
    try:
        return parse_end(text, now)
    except HistoryError:
        log.info("ib sim: ignoring unreadable execution filter time %r", text)
        return None


def executions(s: IBSession, req: dec.ReqExecutions) -> None:
    """reqExecutions: each execDetails followed by its commissionReport (ref §6), then execDetailsEnd."""
    server, now = s.server, s.server.clock.now()
    records = server.broker.executions(
        now, client_id=req.client_id or None, account=req.account or None, since=_since(req.time, now),
        symbol=req.symbol or None, sec_type=req.sec_type or None, side=req.side or None)
    for r in records:
        e = r.execution
        if req.exchange and e.exchange != req.exchange:
            continue
        frame = cv.execution_frame(req.req_id, e, server.catalog.wire(e.contract), sv=s.version)
        s.send("execDetails", frame)
        s.send("commissionReport", cv.commission_frame(r.commission))
    s.end_marker("execDetailsEnd", wo.exec_details_end(req.req_id))


def req_ids(s: IBSession, req: dec.ReqIds) -> None:
    s.send("nextValidId", enc.next_valid_id(s.server.next_id(_client(s))))


def managed_accounts(s: IBSession, req: dec.NoArgs) -> None:
    s.send("managedAccounts", enc.managed_accounts(s.server.accounts))


def positions(s: IBSession, req: dec.NoArgs) -> None:
    server = s.server
    s.positions_sub = True
    for account in server.accounts:
        rows = server.broker.positions(account)
        s.send("position", *[cv.position_frame(r, server.catalog.wire(r.contract)) for r in rows])
    s.end_marker("positionEnd", enc.position_end())


def cancel_positions(s: IBSession, req: dec.NoArgs) -> None:
    s.positions_sub = False


def account_updates(s: IBSession, req: dec.ReqAccountUpdates) -> None:
    server = s.server
    account = req.account or server.accounts[0]
    if not req.subscribe:
        s.account_updates.discard(account)
        return
    if account not in server.accounts:
        s.error(-1, 321, f"Error validating request:-'bb' : cause - unknown account {account}")
        return
    s.account_updates.add(account)
    s.send("updateAccountValue", cv.account_value_frames(server.broker.account_values(account)))
    rows = server.broker.portfolio(account)
    s.send("updatePortfolio", *[cv.portfolio_frame(r, server.catalog.wire(r.contract)) for r in rows])
    s.send("updateAccountTime", enc.update_account_time(f"{server.clock.now().astimezone(NEW_YORK):%H:%M}"))
    s.end_marker("accountDownloadEnd", enc.account_download_end(account))


def account_updates_multi(s: IBSession, req: dec.ReqAccountUpdatesMulti) -> None:
    server = s.server
    wanted = [a for a in server.accounts if req.account in ("", "All", a)]
    s.account_multi[req.req_id] = req.account
    for account in wanted:
        s.send("accountUpdateMulti", cv.account_multi_frames(req.req_id, server.broker.account_values(account)))
    s.end_marker("accountUpdateMultiEnd", enc.account_update_multi_end(req.req_id))


def account_summary(s: IBSession, req: dec.ReqAccountSummary) -> None:
    server = s.server
    tags = frozenset(req.tags)
    s.account_summary[req.req_id] = tags
    for account in server.accounts:
        s.send("accountSummary", cv.account_summary_frames(req.req_id, server.broker.account_values(account), tags))
    s.end_marker("accountSummaryEnd", enc.account_summary_end(req.req_id))


def cancel_account(s: IBSession, req: dec.Cancel) -> None:
    s.account_summary.pop(req.req_id, None)
    s.account_multi.pop(req.req_id, None)


HANDLERS: dict[type, Any] = {
    dec.PlaceOrder: place_order, dec.CancelOrder: cancel_order, dec.ReqAutoOpenOrders: auto_open_orders,
    dec.ReqCompletedOrders: completed_orders, dec.ReqExecutions: executions, dec.ReqIds: req_ids,
    dec.ReqAccountUpdates: account_updates, dec.ReqAccountUpdatesMulti: account_updates_multi,
    dec.ReqAccountSummary: account_summary,
}
BY_MSG_ID: dict[int, Any] = {5: open_orders, 16: open_orders, 17: managed_accounts, 58: global_cancel,
                             61: positions, 64: cancel_positions, 63: cancel_account, 77: cancel_account}
