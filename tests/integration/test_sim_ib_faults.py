"""The simulated gateway's fault switches as the real ib_async client experiences them."""

from __future__ import annotations

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from qc.core import clock
from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    Gateway,
    LogCapture,
    client_loop_fixture,
    errors_of,
    gateway_fixture,
    ib_eventually,
    ib_log_fixture,
)


def test_drop_all_then_refused_retry_then_reconnect(gateway: Gateway) -> None:
    ib = gateway.client(31)
    dropped: list[bool] = []
    ib.disconnectedEvent += lambda: dropped.append(True)
    gateway.server.refuse_for(1.0)
    gateway.server.drop_all()
    ib_eventually(ib, lambda: dropped and not ib.isConnected(), what="disconnectedEvent")
    with pytest.raises((TimeoutError, ConnectionError)):
        ib.connect("127.0.0.1", gateway.port, clientId=31, timeout=0.5)  # closed right after accept
    for _ in range(20):
        try:
            ib.connect("127.0.0.1", gateway.port, clientId=31, timeout=0.5)
            break
        except (TimeoutError, ConnectionError):
            ib.sleep(0.1)
    assert ib.isConnected() and gateway.server.sessions == (31,)


def test_connectivity_lost_with_data_lost_drops_subscriptions(gateway: Gateway) -> None:
    ib = gateway.client(32)
    errors = errors_of(ib)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    ib.reqMktDepth(spy, 10, isSmartDepth=True)
    ib.sleep(0.2)
    gateway.server.connectivity_lost(0.5, data_lost=True)
    ib_eventually(ib, lambda: any(code == 1101 for _, code, _ in errors))
    codes = [code for _, code, _ in errors]
    assert codes.index(1100) < codes.index(1101)
    after = gateway.server.stats()["depth"]
    ib.sleep(0.3)
    assert gateway.server.stats()["depth"] == after  # the server dropped the subscription: resubscribe
    ib.cancelMktDepth(spy, isSmartDepth=True)
    ib.reqMktDepth(spy, 10, isSmartDepth=True)
    ib_eventually(ib, lambda: gateway.server.stats()["depth"] > after + 20)


def test_connectivity_lost_with_data_maintained_resumes(gateway: Gateway) -> None:
    ib = gateway.client(33)
    errors = errors_of(ib)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    ticker = ib.reqMktDepth(spy, 10, isSmartDepth=True)
    ib.sleep(0.2)
    gateway.server.connectivity_lost(0.4, data_lost=False)
    ib_eventually(ib, lambda: any(code == 1102 for _, code, _ in errors))
    assert [c for _, c, _ in errors if c in (1100, 1101, 1102)] == [1100, 1102]
    n = gateway.server.stats()["depth"]
    ib_eventually(ib, lambda: gateway.server.stats()["depth"] > n + 20)
    ib_eventually(ib, lambda: len(ticker.domBids) == 10)


def test_withheld_end_marker_makes_the_startup_sync_time_out(gateway: Gateway, ib_log: LogCapture) -> None:
    gateway.server.delay_end_markers(None, {"execDetailsEnd"})
    ib = IB()
    gateway.clients.append(ib)
    ib.sleep(0.05)
    ib.connect("127.0.0.1", gateway.port, clientId=34, timeout=0.7)
    assert any("executions request timed out" in m for m in ib_log.messages())
    ib.disconnect()
    gateway.server.delay_end_markers(0)
    ib.sleep(0.05)
    ib_log.records.clear()
    ib.connect("127.0.0.1", gateway.port, clientId=34, timeout=2)
    assert not [m for m in ib_log.messages() if "timed out" in m]


def _reconnect(gateway: Gateway, client_id: int, within_s: float = 10.0) -> IB:
    """Connect again as soon as the gateway accepts (it refuses while it is down)."""
    deadline = clock.monotonic() + within_s
    while True:
        try:
            return gateway.client(client_id, timeout=0.5)
        except (TimeoutError, ConnectionError):
            if clock.monotonic() > deadline:
                raise
            gateway.clients[-1].sleep(0.1)


def test_restart_gateway_reissues_the_ids_of_finished_orders(gateway: Gateway) -> None:
    ib = gateway.client(33)
    qqq = Stock("QQQ", "SMART", "USD")
    ib.qualifyContracts(qqq)
    gateway.server.set_quote(qqq.conId, 50.00, 50.02, 50.01).result(5)
    working = ib.placeOrder(qqq, LimitOrder("BUY", 10, 40.0, orderRef="qc-working"))
    old = ib.placeOrder(qqq, MarketOrder("BUY", 10, orderRef="qc-old"))
    ib_eventually(ib, lambda: old.orderStatus.status == "Filled" and working.orderStatus.status == "Submitted")
    reused, old_perm = old.order.orderId, old.order.permId
    assert reused == working.order.orderId + 1

    gateway.server.restart_gateway(1.0)
    ib_eventually(ib, lambda: not ib.isConnected(), what="the restart drops the socket")
    assert gateway.call(gateway.server.refusing)
    again = _reconnect(gateway, 33)
    assert gateway.server.handed_ids[33] == reused  # nextValidId rolled back onto the filled order's id
    assert [t.order.permId for t in again.openTrades()] == [working.order.permId]

    new_order = MarketOrder("BUY", 5, orderRef="qc-new")
    new_order.orderId = reused
    new = again.placeOrder(qqq, new_order)
    ib_eventually(again, lambda: new.orderStatus.status == "Filled", what="the reissued id is a new order")
    assert new.order.permId not in (0, old_perm)
    same_id = sorted((f.execution.orderRef, f.execution.permId, f.execution.shares)
                     for f in again.reqExecutions() if f.execution.orderId == reused)
    assert same_id == [("qc-new", new.order.permId, 5.0), ("qc-old", old_perm, 10.0)]

    [still] = again.openTrades()
    still.order.lmtPrice = 41.0
    again.placeOrder(qqq, still.order)  # the working order kept its id: this modifies it

    def limit() -> float | None:
        snap = gateway.broker.order(33, working.order.orderId)
        return None if snap is None else snap.request.lmt_price

    ib_eventually(again, lambda: gateway.call(limit) == 41.0, what="the modification")
    assert [o.perm_id for o in gateway.call(gateway.broker.open_orders)] == [working.order.permId]
