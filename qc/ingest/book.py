"""qc's own L2 book, rebuilt from IB depth operations with TWS semantics, validated at the boundary.

ib_async's book deviates (ref ib-api-protocol.md §7): its insert overwrites a row and its delete
leaves a gap. Here an insert at ``position`` shifts the rows below it down, a delete shifts them
up, an update replaces in place; a side never holds more than ``max_rows`` rows (the row pushed
past the end by an insert falls off, as it does in TWS's ``numRows`` window). Pure: no clock, no I/O.

Validation (every refusal is returned as a short reason for the caller to count):

- A structurally impossible operation (unknown side or operation, a position outside
  ``[0, max_rows)`` or past the end of the side) is not applied: there is no row to apply it to.
- An insert or update whose *value* is bad (price not finite or not > 0, size not finite or < 0)
  still takes its row, as a *hole* (``None``): IB addresses rows by position, so dropping the row
  would shift every later operation onto the wrong level. A hole is never written; IB's next
  update or delete of that row fills or removes it.
- A size-0 insert or update is IB's row with nothing resting at it (IB documents no special
  meaning for it; some feeds send it before the delete). It keeps its row for the same positional
  reason, but is not a level: it is not written, not counted by ``HLEN`` and never the best price.

What is written (:meth:`levels`, :meth:`fields`) is therefore IB's book minus holes and empty rows,
best first. A book whose best bid is at or above its best ask (locked or crossed: SMART depth
aggregates venues whose feeds arrive at different latencies, so this happens briefly) is kept as
IB sent it, never repaired by guessing which side is stale, and marked: :meth:`crossed`, and
``"crossed":true`` in the JSON of each level at or through the opposite best price (see
``qc.ingest.codec.book_fields``). Readers treat such a book as not tradable until it uncrosses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qc.core.models import DepthLevel
from qc.ingest.codec import FIELD_NAMES, book_fields, level_json

ASK, BID = 0, 1  # IB's side codes
INSERT, UPDATE, DELETE = 0, 1, 2  # IB's operation codes
Row = DepthLevel | None  # None: a hole, IB's row whose value was refused
Text = tuple[DepthLevel, str] | None  # a row and its level JSON, cached by the row's identity


def value_refusal(price: float, size: float) -> str | None:
    """Why an insert/update's price and size cannot be a level (None when they can)."""
    if not math.isfinite(price):
        return "price_not_finite"
    if price <= 0:
        return "price_not_positive"
    if not math.isfinite(size):
        return "size_not_finite"
    if size < 0:
        return "negative_size"
    return None


@dataclass
class DepthBook:
    """Both sides of one symbol's book, best row first, as IB numbers them (holes included)."""

    max_rows: int = 10
    sides: tuple[list[Row], list[Row]] = field(default_factory=lambda: ([], []))
    resetting: bool = False  # cleared and nothing applied since: IB is about to re-send the book
    texts: tuple[list[Text], list[Text]] = field(default_factory=lambda: ([], []), repr=False, compare=False)

    def apply(self, side: int, position: int, operation: int, price: float, size: float, venue: str) -> str | None:
        """Apply one depth operation; None when it applied cleanly, else the reason it was refused.

        A refused *value* still leaves a hole at its row (see the module docstring)."""
        if side not in (ASK, BID):
            return "unknown_side"
        if operation not in (INSERT, UPDATE, DELETE):
            return "unknown_operation"
        rows = self.sides[side]
        if not 0 <= position < self.max_rows or position > len(rows) or (
                operation == DELETE and position == len(rows)):
            return "position_out_of_range"
        self.resetting = False
        texts = self.texts[side]  # kept in step with the rows, so a shifted row keeps its cached JSON
        if operation == DELETE:
            del rows[position]
            del texts[position:position + 1]
            return None
        why = value_refusal(price, size)
        row = None if why is not None else DepthLevel(price, size, venue)
        if operation == INSERT:
            rows.insert(position, row)
            del rows[self.max_rows:]
            texts.insert(position, None)
            del texts[self.max_rows:]
        elif position < len(rows):
            rows[position] = row
        else:  # an update one past the end extends the side, as TWS does
            rows.append(row)
        return why

    def clear(self) -> None:
        """Empty both sides (IB error 317 RESET, a resubscription, a reconnect): IB re-sends the book."""
        for rows in (*self.sides, *self.texts):
            rows.clear()
        self.resetting = True

    def levels(self, side: int) -> list[DepthLevel]:
        """The side as written: IB's rows without holes and size-0 rows, best first."""
        return [row for row in self.sides[side] if row is not None and row.size > 0]

    def best(self, side: int) -> DepthLevel | None:
        """The best written level of ``side``."""
        for row in self.sides[side]:
            if row is not None and row.size > 0:
                return row
        return None

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (locked or crossed): not a tradable book."""
        bid, ask = self.best(BID), self.best(ASK)
        return bid is not None and ask is not None and bid.price >= ask.price

    def level_count(self) -> int:
        """Levels on both sides: what ``HLEN market:{sym}:book`` returns once written."""
        return len(self.levels(ASK)) + len(self.levels(BID))

    def fields(self) -> dict[str, str]:
        """The book as the Redis hash stores it: exactly ``qc.ingest.codec.book_fields`` of its levels.

        The writer asks for it on every flush that touches the book (at 100 symbols, ~18,000 times a
        second) while a flush changes one or two rows of it: each row's JSON is kept beside the row
        and reused while that very row object (``is``) stands at that position, which cost a quarter of
        `qc stream`'s CPU when rendered through ``level_json``'s cache. Whoever changed ``sides``
        behind ``apply``'s back only costs the cache hits (the identity check fails, the JSON is made
        again). A locked or crossed book (its levels carry marks) takes ``book_fields`` itself.
        """
        if self.crossed():
            return book_fields(self.levels(ASK), self.levels(BID))
        out: dict[str, str] = {}
        for side, name in ((ASK, "ask"), (BID, "bid")):
            rows, texts = self.sides[side], self.texts[side]
            if len(texts) != len(rows):
                texts[:] = [None] * len(rows)
            names, i = FIELD_NAMES[name], 0
            for k, row in enumerate(rows):
                if row is not None and row.size > 0:  # as ``levels``: no holes, no empty rows
                    cached = texts[k]
                    if cached is None or cached[0] is not row:
                        cached = texts[k] = (row, level_json(row.price, row.size, row.venue))
                    out[names[i] if i < len(names) else f"{name}:{i}"] = cached[1]
                    i += 1
        return out
