"""qc's own L2 book, rebuilt from IB depth operations with TWS semantics.

ib_async's book deviates (ref ib-api-protocol.md §7): its insert overwrites a row and its delete
leaves a gap. Here an insert at ``position`` shifts the rows below it down, a delete shifts them
up, an update replaces in place; a side never holds more than ``max_rows`` rows (the row pushed
past the end by an insert falls off, as it does in TWS's ``numRows`` window). Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qc.core.models import DepthLevel
from qc.ingest.codec import book_fields

ASK, BID = 0, 1  # IB's side codes
INSERT, UPDATE, DELETE = 0, 1, 2  # IB's operation codes
INF = float("inf")


@dataclass
class DepthBook:
    """Both sides of one symbol's book, best level first."""

    max_rows: int = 10
    sides: tuple[list[DepthLevel], list[DepthLevel]] = field(default_factory=lambda: ([], []))

    def apply(self, side: int, position: int, operation: int, price: float, size: float, venue: str) -> bool:
        """Apply one depth operation; False when it cannot apply (bad side/op, position out of range, or
        an insert/update whose price is not > 0 or whose size is below 0 or NaN: never stored as a level)."""
        if side not in (ASK, BID) or position < 0:
            return False
        if operation != DELETE and not (price > 0 and size >= 0 and price != INF and size != INF):
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
        """The book as the Redis hash stores it (``qc.ingest.codec.book_fields``: cached JSON per level)."""
        return book_fields(self.sides[ASK], self.sides[BID])
