"""Orders as the simulated gateway holds them: the request a client placed and its live state.

Statuses are exactly IB's (ib-api-protocol.md §6): a transmitted order is ``PreSubmitted`` (held at
IB: a bracket child waiting on its parent, or an IB-simulated stop/trail waiting on its trigger) or
``Submitted`` (working), then ``Filled``, ``Cancelled`` or ``Inactive`` (rejected). An order sent
with ``transmit=False`` sits as ``PendingSubmit`` inside the engine and is never reported: IB keeps
untransmitted orders out of sight until a transmitting order of the same group arrives (§6, §10).
Quantities are floats (IB sends Decimal); prices are per unit, not per contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Action = Literal["BUY", "SELL"]

PENDING_SUBMIT = "PendingSubmit"
PRE_SUBMITTED = "PreSubmitted"
SUBMITTED = "Submitted"
FILLED = "Filled"
CANCELLED = "Cancelled"
INACTIVE = "Inactive"
WORKING_STATUSES = frozenset({PRE_SUBMITTED, SUBMITTED})
DONE_STATUSES = frozenset({FILLED, CANCELLED, INACTIVE})

MKT, LMT, STP, STP_LMT = "MKT", "LMT", "STP", "STP LMT"
TRAIL, TRAIL_LIMIT, MOC, LOC = "TRAIL", "TRAIL LIMIT", "MOC", "LOC"
ORDER_TYPES = frozenset({MKT, LMT, STP, STP_LMT, TRAIL, TRAIL_LIMIT, MOC, LOC})
TRIGGERED_TYPES = frozenset({STP, STP_LMT, TRAIL, TRAIL_LIMIT})
AT_CLOSE_TYPES = frozenset({MOC, LOC})

WHY_HELD_CHILD = "child"


@dataclass(frozen=True, slots=True)
class ContractKey:
    """What the engine needs of a contract; the server keeps the full IB contract by ``con_id``.

    ``multiplier`` is 100 for US equity options and 1 for stock: every cash amount is
    quantity × price × multiplier. An option also carries its terms (``expiry``, ``strike``,
    ``right`` C/P) and its underlying's con_id: the broker settles it at expiry by itself
    (``qc.sim.broker.settlement``) and needs them to deliver the shares.
    """

    con_id: int
    symbol: str
    sec_type: str = "STK"
    multiplier: float = 1.0
    expiry: date | None = None
    strike: float = 0.0
    right: str = ""
    under_con_id: int = 0

    @property
    def is_option(self) -> bool:
        return self.sec_type in ("OPT", "FOP")


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One placeOrder as the wire codec decoded it (the fields of ib_async's ``Order`` qc uses).

    ``aux_price`` is the STP trigger or the TRAIL amount; ``trailing_percent`` (1.0 = 1 %) replaces
    the amount, never both (ib-execution-and-risk.md §1). ``lmt_price_offset`` is TRAIL LIMIT's
    distance from the moving stop to the limit. ``account`` may be empty: the broker's default account.
    """

    order_id: int
    client_id: int
    account: str
    contract: ContractKey
    action: Action
    quantity: float
    order_type: str
    lmt_price: float | None = None
    aux_price: float | None = None
    trailing_percent: float | None = None
    trail_stop_price: float | None = None
    lmt_price_offset: float | None = None
    tif: str = "DAY"
    oca_group: str = ""
    oca_type: int = 0
    parent_id: int = 0
    transmit: bool = True
    order_ref: str = ""
    outside_rth: bool = False

    @property
    def sign(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(frozen=True, slots=True)
class StatusChange:
    ts: datetime
    status: str
    filled: float


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """Everything openOrder (5) and orderStatus (3) carry for one order at one moment.

    ``request`` is the order as last placed or modified (a bracket sibling reduced by a fill shows
    its reduced ``quantity``). ``trail_stop_price`` is the live stop of a TRAIL order, which the
    server writes into both trailStopPrice slots of openOrder (ib-api-protocol.md §4, §6).
    ``commission`` is the total charged so far (openOrder's OrderState); ``parent_perm_id`` and
    ``last_change`` feed completedOrder. ``received_at`` is the real wall-clock time (epoch seconds) the
    gateway read the first placement's bytes (None when the caller did not say): for latency
    measurements only, never on the wire and never part of the broker's deterministic state.
    """

    request: OrderRequest
    perm_id: int
    status: str
    filled: float
    remaining: float
    avg_fill_price: float
    last_fill_price: float
    why_held: str
    trail_stop_price: float | None
    parent_perm_id: int
    commission: float
    history: tuple[StatusChange, ...]
    received_at: float | None = None

    @property
    def order_id(self) -> int:
        return self.request.order_id

    @property
    def client_id(self) -> int:
        return self.request.client_id

    @property
    def parent_id(self) -> int:
        return self.request.parent_id

    @property
    def account(self) -> str:
        return self.request.account

    @property
    def last_change(self) -> datetime | None:
        """When the status last changed: completedOrder's completedTime for a finished order."""
        return self.history[-1].ts if self.history else None


@dataclass(slots=True)
class OrderRecord:
    """The engine's mutable state of one order; only ``qc.sim.broker.engine`` changes it."""

    request: OrderRequest
    perm_id: int
    status: str
    seq: int
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    trail_stop: float | None = None
    triggered: bool = False
    why_held: str = ""
    parent_perm_id: int = 0
    commission: float = 0.0
    history: list[StatusChange] = field(default_factory=list)
    received_at: float | None = None  # wall epoch of the first placement's arrival; modifications keep it

    @property
    def key(self) -> tuple[int, int]:
        return (self.request.client_id, self.request.order_id)

    @property
    def remaining(self) -> float:
        return max(self.request.quantity - self.filled, 0.0)

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES

    @property
    def waits_on_parent(self) -> bool:
        """A bracket child stays held at IB until its parent has filled (§6)."""
        return self.request.parent_id != 0 and self.status == PRE_SUBMITTED and self.why_held == WHY_HELD_CHILD

    def set_status(self, status: str, ts: datetime) -> None:
        self.status = status
        self.history.append(StatusChange(ts, status, self.filled))

    def record_fill(self, quantity: float, price: float) -> None:
        total = self.filled + quantity
        self.avg_fill_price = (self.avg_fill_price * self.filled + price * quantity) / total
        self.filled = total
        self.last_fill_price = price

    def snapshot(self) -> OrderSnapshot:
        return OrderSnapshot(
            request=self.request, perm_id=self.perm_id, status=self.status, filled=self.filled,
            remaining=self.remaining, avg_fill_price=self.avg_fill_price,
            last_fill_price=self.last_fill_price, why_held=self.why_held,
            trail_stop_price=self.trail_stop, parent_perm_id=self.parent_perm_id,
            commission=self.commission, history=tuple(self.history), received_at=self.received_at,
        )
