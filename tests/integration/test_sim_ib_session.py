"""The simulated gateway's session life cycle and contract requests, through the real ib_async client."""

from __future__ import annotations

import pytest
from ib_async import IB, Contract, Option, Stock

from tests.integration.ib_sim_harness import (  # noqa: F401 (fixtures)
    ACCOUNT,
    Gateway,
    LogCapture,
    client_loop_fixture,
    errors_of,
    gateway_fixture,
    ib_eventually,
    ib_log_fixture,
)


def test_connect_runs_the_startup_sync_without_timeouts(gateway: Gateway, ib_log: LogCapture) -> None:
    ib = gateway.client(1)
    assert ib.isConnected()
    assert ib.managedAccounts() == [ACCOUNT]
    assert not [m for m in ib_log.messages() if "timed out" in m], ib_log.messages()
    assert any("Synchronization complete" in m for m in ib_log.messages())
    assert gateway.server.sessions == (1,)
    assert {a.tag for a in ib.accountValues()} >= {"NetLiquidation", "TotalCashValue", "BuyingPower"}
    sim_now = gateway.clock.now()
    t = ib.reqCurrentTime()
    assert abs((t - sim_now).total_seconds()) < 60  # simulated time (2026-03-10), not the wall clock
    assert ib.client.getReqId() >= 1


def test_qualify_stock_and_option_with_occ_local_symbol(gateway: Gateway) -> None:
    ib = gateway.client(2)
    spy = Stock("SPY", "SMART", "USD")
    assert ib.qualifyContracts(spy) == [spy]
    assert spy.conId == 756733 and spy.primaryExchange == "ARCA"
    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    assert int(chain.underlyingConId) == spy.conId and chain.multiplier == "100"  # ib_async keeps it a str
    assert chain.expirations == sorted(chain.expirations) and len(chain.strikes) > 20
    expiry = chain.expirations[1]
    strike = min(chain.strikes, key=lambda k: abs(k - gateway.call(lambda: gateway.model.spot("SPY"))))
    opt = Option("SPY", expiry, strike, "P", "SMART")
    assert ib.qualifyContracts(opt) == [opt]
    assert opt.localSymbol == f"SPY   {expiry[2:]}P{round(strike * 1000):08d}"
    assert opt.multiplier == "100" and opt.conId > 0
    [details] = ib.reqContractDetails(Option("SPY", expiry, strike, "P", "SMART"))
    assert details.lastTradeTime == "16:00" and details.timeZoneId == "US/Eastern"
    assert details.underConId == spy.conId
    by_id = Contract(conId=opt.conId)
    assert ib.qualifyContracts(by_id) == [by_id] and by_id.localSymbol == opt.localSymbol
    # wildcards: every strike and right of one expiry
    every = ib.reqContractDetails(Option("SPY", expiry, 0.0, "", "SMART"))
    listed = gateway.call(lambda: [q for q in gateway.model.option_chain("SPY", gateway.clock.now())
                                   if f"{q.contract.expiry:%Y%m%d}" == expiry])
    assert len(every) == len(listed) > 20
    assert {d.contract.right for d in every if d.contract} == {"C", "P"}


def test_unknown_contract_is_error_200(gateway: Gateway) -> None:
    ib = gateway.client(3)
    errors = errors_of(ib)
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == [None]  # ib_async 2.1: None per unknown
    ib_eventually(ib, lambda: any(code == 200 for _, code, _ in errors))
    assert any(msg == "No security definition has been found for the request" for _, _, msg in errors)


def test_duplicate_client_id_gets_326_and_is_closed(gateway: Gateway, ib_log: LogCapture) -> None:
    first = gateway.client(7)
    second = IB()
    gateway.clients.append(second)
    with pytest.raises((TimeoutError, ConnectionError)):
        second.connect("127.0.0.1", gateway.port, clientId=7, timeout=1.0)
    assert not second.isConnected()
    assert any("already in use" in m for m in ib_log.messages())
    assert first.isConnected() and gateway.server.sessions == (7,)
    assert gateway.server.stats()["errors"] >= 1


def test_flooding_client_gets_error_100_then_is_disconnected(gateway: Gateway) -> None:
    ib = gateway.client(4)
    ib.client.MaxRequests = 0  # the documented way to switch ib_async's own throttle off
    errors = errors_of(ib)
    for _ in range(60):
        ib.client.reqCurrentTime()  # type: ignore[no-untyped-call]
    ib_eventually(ib, lambda: any(code == 100 for _, code, _ in errors))
    [(req_id, _, msg)] = [e for e in errors if e[1] == 100]
    assert req_id == -1 and msg.startswith("Max rate of messages per second has been exceeded:max=50 rec=51")
    assert ib.isConnected()
    for _ in range(2):  # two more violations in later one-second windows: disconnected
        ib.sleep(1.05)
        for _ in range(60):
            ib.client.reqCurrentTime()  # type: ignore[no-untyped-call]
    ib_eventually(ib, lambda: not ib.isConnected(), what="disconnect after the 3rd violation")


def test_malformed_and_unknown_requests_do_not_kill_the_session(gateway: Gateway) -> None:
    ib = gateway.client(5)
    errors = errors_of(ib)
    ib.client.send(999, "garbage")  # type: ignore[no-untyped-call] # unknown message id: logged, no answer
    ib.client.send(8, 1, "notanumber")  # type: ignore[no-untyped-call] # reqIds with a broken field: 321 (a warning to ib_async)
    ib_eventually(ib, lambda: any(code == 321 for _, code, _ in errors))
    assert ib.isConnected()
    assert ib.reqCurrentTime() is not None
