"""What `qc execute` keeps per order intent: the intent, its state, the orders of its bracket, its fills.

An **intent** is one signal turned into one bracket (entry, take-profit, protective stop) on one
instrument; its id is the signal's id, so a signal delivered twice is one intent. Pure frozen
dataclasses: the state machine (``machine.py``) returns new values, the codec (``codec.py``)
stores them, the glue (``cycle/``) persists each one **before** the socket write it announces.

Units: prices are $ per share (an option's premium as quoted), quantities are unsigned contracts
or shares with ``side`` giving the sign, money is $.

States (ib-execution-and-risk.md §7)::

    proposed → approved → submitting → acknowledged → working → partially_filled → protected
             → exiting → closed
    side states: rejected, cancelled, unknown (no ack by the deadline, or a disconnect: only
    reconciliation resolves it), lost (absent at the broker on two queries ≥ 30 s apart),
    orphaned (a position without a full protective stop), expired / exercised / assigned (the
    option's lifecycle ended it), external (not qc's order reference: never touched)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from qc.core.order_ref import Leg, OrderRef
from qc.risk.model import Bucket, ContractKey, Side


class State(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    SUBMITTING = "submitting"
    ACKNOWLEDGED = "acknowledged"
    WORKING = "working"
    PARTIAL = "partially_filled"
    PROTECTED = "protected"
    EXITING = "exiting"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"
    LOST = "lost"
    ORPHANED = "orphaned"
    EXPIRED = "expired"
    EXERCISED = "exercised"
    ASSIGNED = "assigned"
    EXTERNAL = "external"


TERMINAL: frozenset[State] = frozenset({State.CLOSED, State.REJECTED, State.CANCELLED, State.LOST,
                                        State.EXPIRED, State.EXERCISED, State.ASSIGNED, State.EXTERNAL})
HOLDING: frozenset[State] = frozenset({State.PARTIAL, State.PROTECTED, State.EXITING, State.ORPHANED})

# IB order statuses (orderStatus.status) as the executor keeps them on a leg ("" = not yet sent)
UNSENT = ""
WORKING_STATUSES = frozenset({"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"})
DONE_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass(frozen=True, slots=True)
class LegOrder:
    """One order qc sent (or is about to send) for one leg of one intent, as last heard from IB."""

    leg: Leg
    attempt: int
    order_id: int                  # this connection's id when sent; never a key (a gateway restart reuses ids)
    action: Side
    quantity: int
    order_type: str                # LMT, STP
    limit: float | None = None
    aux: float | None = None       # the STP trigger
    parent_id: int = 0
    oca_group: str = ""
    perm_id: int = 0               # the broker's id, unique server-wide: set on the first openOrder
    status: str = UNSENT
    filled: int = 0
    avg_price: float = 0.0

    def order_ref(self, intent_id: str) -> str:
        return str(OrderRef(intent_id, self.leg, self.attempt))

    @property
    def live(self) -> bool:
        """Sent and not known to be finished: it may still work at the broker."""
        return self.status != UNSENT and self.status not in DONE_STATUSES

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES


@dataclass(frozen=True, slots=True)
class Transition:
    at: datetime
    state: State
    why: str


@dataclass(frozen=True, slots=True)
class Intent:
    """One signal's bracket on one instrument, from proposal to close."""

    id: str                         # the signal id (also the order reference's intent part)
    account: str
    symbol: str
    strategy: str
    bucket: Bucket
    contract: ContractKey
    side: Side                      # the entry's side: BUY opens a long
    quantity: int                   # contracts (or shares), > 0
    limit: float                    # the entry limit, $ per share
    take_profit: float              # the take-profit limit
    stop: float                     # the protective stop trigger (moves up for a long as the trail ratchets)
    trail_pct: float                # 0: a fixed stop; > 0: qc trails the stop this % below the best premium
    time_stop: datetime             # flatten at this instant
    hard_close: datetime | None     # 0DTE: flatten at this instant before the session ends (None: none)
    created: datetime
    state: State = State.PROPOSED
    con_id: int = 0                 # the broker's contract id once qualified
    token: int = 0                  # the fencing token that approved it
    orders: tuple[LegOrder, ...] = ()
    filled_qty: int = 0             # entry contracts filled
    entry_avg: float = 0.0
    exit_qty: int = 0               # contracts closed by take-profit, stop or an exit order
    exit_avg: float = 0.0
    commission_usd: float = 0.0
    best_premium: float = 0.0       # the trail's high-water mark (the best bid for a long)
    reasons: tuple[str, ...] = ()   # why rejected, or what reconciliation concluded
    exit_reason: str = ""
    absent_since: datetime | None = None  # first reconciliation that found its orders nowhere at the broker
    history: tuple[Transition, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("limit", "take_profit", "stop"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"Intent.{name}: must be a finite price > 0, got {value!r}")
        if isinstance(self.quantity, bool) or self.quantity <= 0:
            raise ValueError(f"Intent.quantity: must be a whole number > 0, got {self.quantity!r}")
        if not (math.isfinite(self.trail_pct) and 0 <= self.trail_pct < 100):
            raise ValueError(f"Intent.trail_pct: must be in [0, 100), got {self.trail_pct!r}")
        if self.created.utcoffset() is None:
            raise ValueError("Intent.created: must be tz-aware")

    @property
    def exit_side(self) -> Side:
        return "SELL" if self.side == "BUY" else "BUY"

    @property
    def sign(self) -> int:
        """+1 when the entry opens a long, −1 a short."""
        return 1 if self.side == "BUY" else -1

    @property
    def open_qty(self) -> int:
        """Contracts held now because of this intent (entry fills minus exits), ≥ 0."""
        return max(0, self.filled_qty - self.exit_qty)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def current(self, leg: Leg) -> LegOrder | None:
        """The latest attempt of ``leg`` (None when never planned)."""
        found = [o for o in self.orders if o.leg == leg]
        return max(found, key=lambda o: o.attempt) if found else None

    def live_orders(self, *legs: Leg) -> list[LegOrder]:
        return [o for o in self.orders if o.live and (not legs or o.leg in legs)]

    def protected_qty(self) -> int:
        """Contracts covered by a working protective stop (the latest stop attempt that is live)."""
        stop = self.current("stop")
        if stop is None or not stop.live:
            return 0
        return max(0, stop.quantity - stop.filled)

    def find(self, order_ref: str | None = None, perm_id: int = 0) -> LegOrder | None:
        """The order by qc's reference, then by permId; never by orderId alone."""
        if order_ref:
            for o in self.orders:
                if o.order_ref(self.id) == order_ref:
                    return o
        if perm_id:
            for o in self.orders:
                if o.perm_id == perm_id:
                    return o
        return None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution (IB execId), with its commission once the report came. Exactly once per ``exec_id``."""

    exec_id: str
    account: str
    symbol: str
    con_id: int
    side: Side                      # BUY (IB "BOT") or SELL ("SLD")
    quantity: int
    price: float                    # $ per share
    at: datetime
    order_ref: str = ""             # "" for the broker's own (exercise, assignment, expiry)
    perm_id: int = 0
    order_id: int = 0
    intent_id: str = ""
    leg: str = ""
    commission_usd: float | None = None
    kind: str = "trade"             # trade, exercise, assignment, expiry

    def __post_init__(self) -> None:
        if not self.exec_id:
            raise ValueError("Fill.exec_id: must be set")
        if isinstance(self.quantity, bool) or self.quantity <= 0:
            raise ValueError(f"Fill.quantity: must be a whole number > 0, got {self.quantity!r}")
        if not (math.isfinite(self.price) and self.price >= 0):
            raise ValueError(f"Fill.price: must be a finite price ≥ 0, got {self.price!r}")
        if self.commission_usd is not None and not math.isfinite(self.commission_usd):
            raise ValueError(f"Fill.commission_usd: must be finite, got {self.commission_usd!r}")
        if self.at.utcoffset() is None:
            raise ValueError("Fill.at: must be tz-aware")

    @property
    def signed_qty(self) -> int:
        return self.quantity if self.side == "BUY" else -self.quantity
