"""Shared builders for the simulated broker's tests: one account, a stock and an option, New York times."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from qc.core.clock import NEW_YORK
from qc.sim.broker.engine import SimBroker
from qc.sim.broker.orders import ContractKey, OrderRequest, OrderSnapshot
from qc.sim.broker.reports import BrokerError, BrokerEvent, ExecutionReported, OrderStateChanged

ACCT = "DU1234567"
CASH = 100_000.0
SPY = ContractKey(756733, "SPY", "STK", 1.0)
CALL = ContractKey(900001, "SPY", "OPT", 100.0)
PUT = ContractKey(900002, "SPY", "OPT", 100.0)
DAY = date(2026, 11, 24)


def at(hh: int, mm: int = 0, ss: int = 0, day_offset: int = 0) -> datetime:
    """A New York wall time on the test day (tz-aware)."""
    return datetime.combine(DAY + timedelta(days=day_offset), time(hh, mm, ss), NEW_YORK)


T0 = at(10)


def new_broker() -> SimBroker:
    return SimBroker({ACCT: CASH})


def order(order_id: int, action: str = "BUY", quantity: float = 1, kind: str = "LMT",
          contract: ContractKey = CALL, client_id: int = 1, **fields: Any) -> OrderRequest:
    return OrderRequest(order_id=order_id, client_id=client_id, account=ACCT, contract=contract,
                        action=action, quantity=quantity, order_type=kind, **fields)  # type: ignore[arg-type]


def bracket(parent_id: int, quantity: float, entry: float, take: float, stop: float,
            contract: ContractKey = CALL, client_id: int = 1) -> list[OrderRequest]:
    """What ib_async's ``IB.bracketOrder`` sends for a BUY: entry, take-profit, stop; last one transmits."""
    return [
        order(parent_id, "BUY", quantity, "LMT", contract, client_id, lmt_price=entry, transmit=False),
        order(parent_id + 1, "SELL", quantity, "LMT", contract, client_id, lmt_price=take,
              parent_id=parent_id, transmit=False),
        order(parent_id + 2, "SELL", quantity, "STP", contract, client_id, aux_price=stop,
              parent_id=parent_id, transmit=True),
    ]


def states(events: list[BrokerEvent]) -> list[tuple[int, str]]:
    return [(e.order.order_id, e.order.status) for e in events if isinstance(e, OrderStateChanged)]


def errors(events: list[BrokerEvent]) -> list[tuple[int, int]]:
    return [(e.order_id, e.code) for e in events if isinstance(e, BrokerError)]


def fills(events: list[BrokerEvent]) -> list[tuple[int, float, float]]:
    return [(e.execution.order_id, e.execution.shares, e.execution.price)
            for e in events if isinstance(e, ExecutionReported)]


def kinds(events: list[BrokerEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def last_state(events: list[BrokerEvent], order_id: int) -> OrderSnapshot:
    return [e.order for e in events if isinstance(e, OrderStateChanged) and e.order.order_id == order_id][-1]
