"""Plays `qc execute` for the kill-switch tests (issue 15 builds the real one): places orders under qc's
order references with the executor's client id through the real ib_async, claims the account's fence
with its own pid, prints one JSON line of what it placed, then waits to be stopped or killed.

Run as ``python -m tests.integration.standin_executor PORT REDIS_URL ACCOUNT CLIENT_ID``; it prints each
order's permId by name (permIds are unique at the broker, so any client can look them up).
"""

from __future__ import annotations

import json
import os
import socket
import sys

from ib_async import IB, LimitOrder, Option, Order, Stock

from qc.core import clock, keys
from qc.core.config import Settings
from qc.core.order_ref import OrderRef
from qc.risk.model import Position, stock
from qc.risk.position_codec import PositionRecord, position_to_redis
from qc.runtime import fence
from qc.runtime.store import connect


def _wait(ib: IB, condition: object, what: str, timeout_s: float = 15.0) -> None:
    deadline = clock.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if clock.monotonic() > deadline:
            raise SystemExit(f"standin executor: not within {timeout_s} s: {what}")
        ib.sleep(0.02)


def main(port: int, redis_url: str, account: str, client_id: int) -> None:
    ib = IB()
    ib.connect("127.0.0.1", port, clientId=client_id, timeout=10, readonly=False)
    spy = Stock("SPY", "SMART", "USD")
    ib.qualifyContracts(spy)
    [tick] = ib.reqTickers(spy)
    spot = tick.midpoint()
    [chain] = [c for c in ib.reqSecDefOptParams("SPY", "", "STK", spy.conId) if c.exchange == "SMART"]
    strike = min(chain.strikes, key=lambda k: abs(k - spot))
    call = Option("SPY", chain.expirations[1], strike, "C", "SMART")
    put = Option("SPY", chain.expirations[1], strike, "P", "SMART")
    ib.qualifyContracts(call, put)
    placed: dict[str, int] = {}

    def place(name: str, contract: Stock | Option, order: Order, ref: str) -> None:
        order.orderRef = ref
        order.tif = "DAY"
        trade = ib.placeOrder(contract, order)
        _wait(ib, lambda: trade.orderStatus.status in ("Submitted", "PreSubmitted", "Filled"), f"{name} acked")
        placed[name] = trade.order.permId

    # two working entries (bids far below the market), one filled entry with its protective stop
    place("entry_call", call, LimitOrder("BUY", 2, 0.05), str(OrderRef("sigA", "entry")))
    place("entry_put", put, LimitOrder("BUY", 1, 0.05), str(OrderRef("sigB", "entry", 1)))
    place("entry_shares", spy, LimitOrder("BUY", 100, round(spot * 1.01, 2)), str(OrderRef("sigC", "entry")))
    _wait(ib, lambda: any(p.contract.conId == spy.conId and p.position == 100 for p in ib.positions()), "fill")
    place("stop_shares", spy, Order(action="SELL", totalQuantity=100, orderType="STP",
                                    auxPrice=round(spot * 0.9, 2)), str(OrderRef("sigC", "stop")))
    place("take_profit_shares", spy, LimitOrder("SELL", 100, round(spot * 1.2, 2)), str(OrderRef("sigC", "tp")))
    place("manual", spy, LimitOrder("BUY", 10, round(spot * 0.8, 2)), "")  # not qc's: a manual ticket
    place("other_system", spy, LimitOrder("BUY", 10, round(spot * 0.8, 2)), "algo7:xyz")
    store = connect(Settings(redis_url=redis_url))
    [held] = [p for p in ib.positions() if p.contract.conId == spy.conId]
    record = PositionRecord(spy.conId, Position(stock("SPY"), int(held.position), held.avgCost, "other"))
    store.hset(keys.position_open(account, spy.conId), position_to_redis(record))  # as `qc execute` records a fill
    token = fence.claim(store, account, pid=os.getpid(), host=socket.gethostname(), client_id=client_id,
                        now_epoch=clock.wall_epoch())
    print(json.dumps({"orders": placed, "token": token}), flush=True)
    while True:
        ib.sleep(1.0)


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
