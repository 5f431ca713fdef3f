"""A marketable limit for the chaos run's own signals: the option's live ask at the simulated gateway.

Why: the chain in Redis is minutes old in market time (seconds at 30x, but options move fast at
that speed), so a signal priced off it is mostly refused by the executor's price band and never
reaches the broker, and a run without orders proves nothing about duplicates, stops or fills.
Like ``tests.integration.execute_harness.marketable``, the pump asks the gateway itself (a
read-only ib_async client of its own) and prices one cent over the ask; when the gateway does not
answer (a fault in play) the chain's price is kept and the signal is published anyway.
"""

from __future__ import annotations

import asyncio
import math

from ib_async import IB, Option

from qc.core import clock
from qc.signals.model import Contract

CLIENT_ID = 41  # not `qc up`'s: stream 1, execute 7
WAIT_S = 5.0


def _loop() -> None:
    """ib_async's sync calls need an event loop in this (non-main) thread."""
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def live_ask(port: int, contract: Contract) -> float | None:
    """The option's ask at the gateway on ``port`` now; None when there is no two-sided quote in time."""
    _loop()
    ib = IB()
    try:
        ib.connect("127.0.0.1", port, clientId=CLIENT_ID, timeout=WAIT_S, readonly=True)
        option = Option(contract.symbol, contract.expiry.strftime("%Y%m%d") if contract.expiry else "",
                        contract.strike or 0.0, contract.right or "", "SMART")
        ib.qualifyContracts(option)
        if not option.conId:
            return None
        ticker = ib.reqMktData(option, "", False, False)
        deadline = clock.monotonic() + WAIT_S
        while not (math.isfinite(ticker.ask) and ticker.ask > 0) and clock.monotonic() < deadline:
            ib.sleep(0.05)
        return float(ticker.ask) if math.isfinite(ticker.ask) and ticker.ask > 0 else None
    finally:
        ib.disconnect()
