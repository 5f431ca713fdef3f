"""qc's own L2 book, rebuilt from IB depth operations with TWS semantics.

ib_async's book deviates (ref ib-api-protocol.md §7): its insert overwrites a row and its delete
leaves a gap. Here an insert at ``position`` shifts the rows below it down, a delete shifts them
up, an update replaces in place; a side never holds more than ``max_rows`` rows (the row pushed
past the end by an insert falls off, as it does in TWS's ``numRows`` window). Pure: no clock, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

from qc.core.models import DepthLevel

ASK, BID = 0, 1  # IB's side codes
INSERT, UPDATE, DELETE = 0, 1, 2  # IB's operation codes
SIDE_NAMES = ("ask", "bid")


@dataclass
class DepthBook:
    """Both sides of one symbol's book, best level first."""

    max_rows: int = 10
    sides: tuple[list[DepthLevel], list[DepthLevel]] = field(default_factory=lambda: ([], []))

    def apply(self, side: int, position: int, operation: int, price: float, size: float, venue: str) -> bool:
        """Apply one depth operation; False when it cannot apply (bad side/op, position out of range)."""
        if side not in (ASK, BID) or position < 0:
            return False
        rows = self.sides[side]
        if operation == INSERT:
            if position > len(rows):
                return False
            rows.insert(position, DepthLevel(price, size, venue))
            del rows[self.max_rows:]
            return True
        if operation == UPDATE:
            if position < len(rows):
                rows[position] = DepthLevel(price, size, venue)
                return True
            if position == len(rows) and position < self.max_rows:  # an update that extends the side
                rows.append(DepthLevel(price, size, venue))
                return True
            return False
        if operation == DELETE and position < len(rows):
            del rows[position]
            return True
        return False

    def clear(self) -> None:
        """Empty both sides (IB error 317 RESET, a resubscription, a reconnect)."""
        self.sides[ASK].clear()
        self.sides[BID].clear()

    def best(self, side: int) -> DepthLevel | None:
        rows = self.sides[side]
        return rows[0] if rows else None

    def level_count(self) -> int:
        """Rows on both sides: what ``HLEN market:{sym}:book`` returns once written."""
        return len(self.sides[ASK]) + len(self.sides[BID])

    def fields(self) -> dict[str, str]:
        """The book as the Redis hash stores it: "{side}:{level}" -> JSON {price, size, venue}."""
        out: dict[str, str] = {}
        for side, name in enumerate(SIDE_NAMES):
            names = FIELD_NAMES[name]
            for i, lvl in enumerate(self.sides[side]):
                out[names[i] if i < len(names) else f"{name}:{i}"] = level_json(lvl.price, lvl.size, lvl.venue)
        return out


FIELD_NAMES = {name: [f"{name}:{i}" for i in range(50)] for name in SIDE_NAMES}


@lru_cache(maxsize=8192)
def level_json(price: float, size: float, venue: str) -> str:
    """One level as stored; cached, since a book write re-renders levels that mostly did not change."""
    return f'{{"price":{price!r},"size":{size!r},"venue":{json.dumps(venue)}}}'
