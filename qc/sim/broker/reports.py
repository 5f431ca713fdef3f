"""What the simulated broker reports: executions, commissions, positions, account values, errors.

Each event names the client it belongs to and the account; the server routes them (fills and
order states to the owning client, positions and account values to every subscribed client). For
one fill the engine returns them in IB's wire order (ib-api-protocol.md §6): ``ExecutionReported``
→ ``OrderStateChanged`` → ``CommissionReported`` → ``PositionChanged`` → ``AccountChanged``.

``SettlementExecuted`` is the odd one out: an execution no client ordered (an option lapsing,
exercised or assigned at expiry, ``qc.sim.broker.settlement``), with orderId 0, permId 0, clientId 0
and an empty orderRef; the server sends it (execDetails + commissionReport) to every connected
session, since it belongs to no client.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qc.sim.broker.orders import ContractKey, OrderSnapshot

# IB message codes (ib-api-protocol.md §6, ib-execution-and-risk.md §8).
DUPLICATE_ORDER_ID = 103
CANNOT_MODIFY_FILLED = 104
MODIFY_MISMATCH = 105
ORDER_REJECTED = 201
VALIDATION_ERROR = 321
ORDER_CANCELLED = 202
CANCEL_NOT_FOUND = 10147
CANCEL_NOT_CANCELLABLE = 10148


def rejected_message(reason: str) -> str:
    return f"Order rejected - reason:{reason}"


def cancelled_message(reason: str = "") -> str:
    return f"Order Canceled - reason:{reason}"


def not_found_message(order_id: int) -> str:
    return f"OrderId {order_id} that needs to be cancelled is not found."


def not_cancellable_message(order_id: int, state: str) -> str:
    return f"OrderId {order_id} that needs to be cancelled cannot be cancelled, state: {state}."


@dataclass(frozen=True, slots=True)
class Execution:
    """One execDetails (11) row; ``side`` is IB's BOT/SLD, ``time`` tz-aware."""

    exec_id: str
    order_id: int
    client_id: int
    perm_id: int
    account: str
    contract: ContractKey
    time: datetime
    exchange: str
    side: str
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    order_ref: str
    liquidation: int = 0


@dataclass(frozen=True, slots=True)
class CommissionReport:
    """One commissionReport (59); ``realized_pnl`` is None when the fill opened or added (IB sends UNSET)."""

    exec_id: str
    commission: float
    currency: str
    realized_pnl: float | None


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    """An execution with its commission: what reqExecutions replays, the two messages back to back (§6)."""

    execution: Execution
    commission: CommissionReport


@dataclass(frozen=True, slots=True)
class PortfolioRow:
    """One position (61) / updatePortfolio (7) row. ``average_cost`` is IB's: per contract, so an
    option bought twice at 2.00 with 1.30 commission shows 200.65; ``market_price`` is per unit."""

    account: str
    contract: ContractKey
    position: float
    market_price: float
    market_value: float
    average_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class AccountValue:
    """One account value: reqAccountSummary tag or updateAccountValue key, value as IB's string."""

    account: str
    tag: str
    value: str
    currency: str


@dataclass(frozen=True, slots=True)
class OrderStateChanged:
    """openOrder (5) + orderStatus (3) for ``order``."""

    client_id: int
    account: str
    order: OrderSnapshot


@dataclass(frozen=True, slots=True)
class ExecutionReported:
    client_id: int
    account: str
    execution: Execution


@dataclass(frozen=True, slots=True)
class CommissionReported:
    client_id: int
    account: str
    commission: CommissionReport


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """The position after a fill; ``client_id`` is the client whose fill moved it."""

    client_id: int
    account: str
    row: PortfolioRow


@dataclass(frozen=True, slots=True)
class AccountChanged:
    client_id: int
    account: str
    values: tuple[AccountValue, ...]


@dataclass(frozen=True, slots=True)
class SettlementExecuted:
    """One leg of an expiry settlement: the option closed at 0 (``leg`` "option") or the shares
    delivered at the strike (``leg`` "stock"); ``outcome`` is expired, exercised or assigned."""

    account: str
    outcome: str
    leg: str
    record: ExecutionRecord


@dataclass(frozen=True, slots=True)
class BrokerError:
    """An error (4) message for ``order_id`` sent to ``client_id``."""

    client_id: int
    account: str
    order_id: int
    code: int
    message: str


BrokerEvent = (
    OrderStateChanged | ExecutionReported | CommissionReported | PositionChanged | AccountChanged | BrokerError
    | SettlementExecuted
)
