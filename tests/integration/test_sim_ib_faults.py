"""The simulated gateway's fault switches as the real ib_async client experiences them."""

from __future__ import annotations

import pytest
from ib_async import IB, Stock

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
