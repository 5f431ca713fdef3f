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
ALL = 1 << 30  # a changed-rows range that reaches past the last row


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
    """Both sides of one symbol's book, best row first, as IB numbers them (holes included).

    Change ``sides`` through :meth:`apply` and :meth:`clear` only: :meth:`changes` trusts them to have
    noted every row they touched (:meth:`fields` re-reads every row and so tolerates anything).
    """

    max_rows: int = 10
    sides: tuple[list[Row], list[Row]] = field(default_factory=lambda: ([], []))
    resetting: bool = False  # cleared and nothing applied since: IB is about to re-send the book
    texts: tuple[list[Text], list[Text]] = field(default_factory=lambda: ([], []), repr=False, compare=False)
    # the fields as last rendered, per side, and the rows changed since (per side: lowest, past the highest)
    _out: tuple[dict[str, str], dict[str, str]] = field(default_factory=lambda: ({}, {}), init=False, repr=False,
                                                        compare=False)
    _dirty: list[int] = field(default_factory=lambda: [0, ALL, 0, ALL], init=False, repr=False, compare=False)
    _marked: bool = field(default=False, init=False, repr=False, compare=False)  # the last render was crossed

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
        dirty, at = self._dirty, 2 * side  # dirty[at]: the side's lowest changed row, dirty[at + 1]: past its highest
        if position < dirty[at]:
            dirty[at] = position
        if operation == DELETE:
            del rows[position]
            del texts[position:position + 1]
            dirty[at + 1] = ALL  # every row below moved up
            return None
        why = value_refusal(price, size)
        row = None if why is not None else DepthLevel(price, size, venue)
        if operation == INSERT:
            rows.insert(position, row)
            del rows[self.max_rows:]
            texts.insert(position, None)
            del texts[self.max_rows:]
            dirty[at + 1] = ALL  # every row below moved down
        elif position < len(rows):
            old = rows[position]
            rows[position] = row
            if (old is not None and old.size > 0) != (row is not None and row.size > 0):
                dirty[at + 1] = ALL  # a level appeared or vanished: every written level below renumbers
            elif dirty[at + 1] <= position:
                dirty[at + 1] = position + 1
        else:  # an update one past the end extends the side, as TWS does
            rows.append(row)
            texts.append(None)
            dirty[at + 1] = ALL
        return why

    def clear(self) -> None:
        """Empty both sides (IB error 317 RESET, a resubscription, a reconnect): IB re-sends the book."""
        for rows in (*self.sides, *self.texts):
            rows.clear()
        self._dirty[:] = [0, ALL, 0, ALL]
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

        Every row is read again (whatever changed ``sides``, and however); the result is also the base
        the next :meth:`changes` is counted from.
        """
        for out in self._out:
            out.clear()
        self._dirty[:] = [0, ALL, 0, ALL]
        self._marked = False
        self.changes()
        return {**self._out[ASK], **self._out[BID]}

    def changes(self) -> tuple[dict[str, str], list[str]]:
        """What :meth:`fields` gained or changed, and the field names it lost, since the previous
        :meth:`fields` or :meth:`changes`: HSET the first and HDEL the second over what was written then.

        The writer asks on every flush that touches the book (at 100 symbols, ~18,000 times a second),
        and a flush changes a row or two: only the rows :meth:`apply` marked since are read (an update
        that leaves a level a level, just its row; anything that renumbers the levels, from its row down),
        and each row's JSON is kept beside the row while that very row object (``is``) stands there, so a
        shifted row is not encoded again. Reading all 20 rows and comparing all 20 fields was a fifth
        of `qc stream`'s CPU. A locked or crossed book (its levels carry marks that depend on the other
        side), and the first book after one, is compared whole against ``book_fields``.
        """
        sides, texts, out, dirty = self.sides, self.texts, self._out, self._dirty
        if len(texts[ASK]) != len(sides[ASK]) or len(texts[BID]) != len(sides[BID]):  # rows changed behind our back
            texts[ASK][:], texts[BID][:] = [None] * len(sides[ASK]), [None] * len(sides[BID])
            dirty[:] = [0, ALL, 0, ALL]
        if self.crossed():
            return self._compare_whole(book_fields(self.levels(ASK), self.levels(BID)), marked=True)
        if self._marked:
            dirty[:] = [0, ALL, 0, ALL]
            self._marked = False
        changed: dict[str, str] = {}
        gone: list[str] = []
        for side, name in ((ASK, "ask"), (BID, "bid")):
            lo, hi = dirty[2 * side], dirty[2 * side + 1]
            if lo >= hi:
                continue
            rows, side_texts, side_out, names = sides[side], texts[side], out[side], FIELD_NAMES[name]
            i = sum(1 for row in rows[:lo] if row is not None and row.size > 0)  # the written index of row lo
            for k in range(lo, min(hi, len(rows))):
                row = rows[k]
                if row is not None and row.size > 0:  # as ``levels``: no holes, no empty rows
                    cached = side_texts[k]
                    if cached is None or cached[0] is not row:
                        cached = side_texts[k] = (row, level_json(row.price, row.size, row.venue))
                    key = names[i] if i < len(names) else f"{name}:{i}"
                    if side_out.get(key) != cached[1]:
                        changed[key] = side_out[key] = cached[1]
                    i += 1
            if hi == ALL:  # the level count may have changed: the names past the last level are gone
                for j in range(i, len(side_out)):
                    key = names[j] if j < len(names) else f"{name}:{j}"
                    del side_out[key]
                    gone.append(key)
            dirty[2 * side], dirty[2 * side + 1] = ALL, 0  # rendered (a value that failed to encode left it dirty)
        return changed, gone

    def _compare_whole(self, fields: dict[str, str], *, marked: bool) -> tuple[dict[str, str], list[str]]:
        """The changes from the last render to ``fields`` (the whole book), which becomes the last render."""
        old = {**self._out[ASK], **self._out[BID]}
        self._out[ASK].clear()
        self._out[BID].clear()
        for key, text in fields.items():
            self._out[ASK if key.startswith("ask") else BID][key] = text
        self._dirty[:] = [ALL, 0, ALL, 0]
        self._marked = marked
        return {k: v for k, v in fields.items() if old.get(k) != v}, [k for k in old if k not in fields]
