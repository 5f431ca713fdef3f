"""The one format of qc's IB order reference (``Order.orderRef``), shared by `qc execute` and `qc risk`.

``qc:<intent>:<leg>:<attempt>`` — ``intent`` is the signal (or operator intent) id the order serves,
``leg`` one of :data:`LEGS`, ``attempt`` a non-negative integer bumped only when an earlier attempt is
proven lost. IB echoes the reference on every open order, completed order and execution, so after a
restart qc finds its own orders by it, and an operator's kill switch can tell qc's working **entry**
orders (cancel them) from its protective **stop** and take-profit legs (leave them: a global cancel
would strip positions of their stops) and from orders that are not qc's at all (never touched).

Pure: parse and format only. A reference that does not parse is foreign (``parse`` returns None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Leg = Literal["entry", "stop", "tp", "exit"]
LEGS: tuple[Leg, ...] = ("entry", "stop", "tp", "exit")
PREFIX = "qc"
MAX_LEN = 64  # well inside what TWS keeps of an orderRef
_INTENT = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True, slots=True)
class OrderRef:
    """Which intent, which leg of its bracket, which attempt."""

    intent: str
    leg: Leg
    attempt: int = 0

    def __post_init__(self) -> None:
        if not _INTENT.fullmatch(self.intent):
            raise ValueError(f"intent {self.intent!r}: 1-40 of A-Z a-z 0-9 _ -")
        if self.leg not in LEGS:
            raise ValueError(f"leg {self.leg!r}: one of {', '.join(LEGS)}")
        if not 0 <= self.attempt < 10_000:
            raise ValueError(f"attempt {self.attempt!r}: 0-9999")

    def __str__(self) -> str:
        return f"{PREFIX}:{self.intent}:{self.leg}:{self.attempt}"

    @property
    def protective(self) -> bool:
        """Legs that protect an open position: a kill switch leaves them working."""
        return self.leg in ("stop", "tp")


def parse(raw: str | None) -> OrderRef | None:
    """qc's reference, or None for anything else (another system's order, a manual one, garbage)."""
    if not raw or len(raw) > MAX_LEN:
        return None
    parts = raw.split(":")
    if len(parts) != 4 or parts[0] != PREFIX or not parts[3].isascii() or not parts[3].isdigit():
        return None
    leg = next((x for x in LEGS if x == parts[2]), None)
    if leg is None:
        return None
    try:
        return OrderRef(parts[1], leg, int(parts[3]))
    except ValueError:
        return None
