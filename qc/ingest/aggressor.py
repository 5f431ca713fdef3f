"""Aggressor side of a print, inferred against the book at the time (for true-sign VPIN).

Quote rule first: a print at or above the ask was a buyer lifting it (+1), at or below the bid a
seller hitting it (−1). Inside the spread (or with no book) the tick rule decides: above the
previous print +1, below −1, at the same price the previous print's side (zero-tick continuation),
0 when nothing is known. A locked or crossed book (ask ≤ bid: SMART depth briefly aggregates venues
out of step) says nothing about who crossed the spread, so the tick rule decides then. Pure.
"""

from __future__ import annotations

BUY, SELL, UNKNOWN = 1, -1, 0


def infer_side(price: float, bid: float | None, ask: float | None, prev_price: float | None,
               prev_side: int) -> int:
    """+1 buyer-initiated, −1 seller-initiated, 0 unknown."""
    if ask is not None and bid is not None and ask > bid:
        if price >= ask:
            return BUY
        if price <= bid:
            return SELL
    if prev_price is None:
        return UNKNOWN
    if price > prev_price:
        return BUY
    if price < prev_price:
        return SELL
    return prev_side
