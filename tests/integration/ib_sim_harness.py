"""Run the simulated IB Gateway on its own event loop in a background thread, and drive the real,
unmodified ib_async ``IB`` client against it on 127.0.0.1 from the test's thread.

The client runs on a fresh event loop of the test thread (ib_async's sync API runs it); waiting is
always ``IB.sleep``-based (``ib_eventually``) so the client keeps reading while a test waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import pytest
from ib_async import IB

from qc.core import clock
from qc.core.clock import NEW_YORK, Clock, SimAnchor, SimClock
from qc.sim.broker.engine import SimBroker
from qc.sim.ib.server import IBGatewayServer
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

T = TypeVar("T")
ACCOUNT = "DU1234567"
START = datetime(2026, 3, 10, 10, 30, tzinfo=NEW_YORK).astimezone(timezone.utc)  # a Tuesday session
SPEED = 20.0
TEST_PARAMS = SimParams(seed=3, symbols=("SPY", "QQQ"), depth_rate_hz=60.0)


class ServerThread:
    """An ``IBGatewayServer`` on its own loop in a daemon thread."""

    def __init__(self, server: IBGatewayServer) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ib-sim", daemon=True)

    def start(self) -> int:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(20)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        return self.server.call(fn).result(timeout)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class Gateway:
    """One running simulated gateway plus handles on its parts."""

    thread: ServerThread
    model: SimMarket
    broker: SimBroker
    clock: Clock
    clients: list[IB] = field(default_factory=list)

    @property
    def server(self) -> IBGatewayServer:
        return self.thread.server

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, fn: Callable[[], T]) -> T:
        return self.thread.call(fn)

    def client(self, client_id: int = 1, timeout: float = 4.0, **kwargs: Any) -> IB:
        ib = IB()
        ib.RequestTimeout = 5
        self.clients.append(ib)
        ib.connect("127.0.0.1", self.port, clientId=client_id, timeout=timeout, **kwargs)
        return ib


def start_gateway(clk: Clock | None = None, params: SimParams = TEST_PARAMS, start: datetime = START,
                  **server_kwargs: Any) -> Gateway:
    model = SimMarket(start, params)
    broker = SimBroker({ACCOUNT: 1_000_000.0})
    clk = clk or SimClock(SimAnchor(clock.wall_epoch(), start.timestamp(), SPEED))
    thread = ServerThread(IBGatewayServer(model, broker, clk, accounts=(ACCOUNT,), **server_kwargs))
    thread.start()
    return Gateway(thread, model, broker, clk)


@pytest.fixture(name="client_loop")
def client_loop_fixture() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop for the test thread, where ib_async's sync API runs."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


def stop_gateway(gw: Gateway) -> None:
    for ib in gw.clients:
        if ib.isConnected():
            ib.disconnect()
    gw.thread.stop()


def ib_eventually(ib: IB, condition: Callable[[], object], timeout_s: float = 5.0, what: str = "") -> None:
    """Wait (running the client's loop) until ``condition()`` holds; fail after ``timeout_s``."""
    deadline = clock.monotonic() + timeout_s
    while clock.monotonic() < deadline:
        if condition():
            return
        try:
            ib.sleep(0.02)
        except ConnectionError:  # ib_async re-raises a socket drop from whatever it is running
            if condition():
                return
    raise AssertionError(f"not within {timeout_s} s: {what or condition}")


class LogCapture(logging.Handler):
    """Every ib_async log record at WARNING or above (timeouts, decode failures)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture(name="ib_log")
def ib_log_fixture() -> Iterator[LogCapture]:
    cap = LogCapture()
    logger = logging.getLogger("ib_async")
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(cap)
    yield cap
    logger.removeHandler(cap)
    logger.setLevel(old)


@pytest.fixture(name="gateway")
def gateway_fixture(client_loop: asyncio.AbstractEventLoop) -> Iterator[Gateway]:
    gw = start_gateway()
    yield gw
    stop_gateway(gw)


def errors_of(ib: IB) -> list[tuple[int, int, str]]:
    """Collect (reqId, code, message) of every errorEvent from now on."""
    got: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, contract: got.append((req_id, code, msg))
    return got
