"""A 10-level contiguous-tick L2 book spread over venues, and the IB depth operations that move it.

The book is a ladder: bids at best_bid − i ticks, asks at best_ask + i ticks, one venue and one
displayed size per level. Every change is emitted as an IB depth operation (insert shifts lower
levels down, delete shifts them up, update replaces in place), and the ladder only changes through
the same operation it emits, so replaying the emitted ops on an empty book reproduces it exactly.
A tick move is a delete on the front of one side plus an insert at its back, and the mirror on the
other side; the pair keeps ten levels per side between events.
"""

from __future__ import annotations

from datetime import datetime

from qc.core.models import DepthLevel, Trade
from qc.sim.market.events import ASK, BID, DELETE, INSERT, UPDATE, DepthOp, MarketEvent, QuoteEvent, TradeEvent
from qc.sim.market.models import Quote

MIN_TOP_SIZE = 100.0


class Ladder:
    """One symbol's book plus its last print and session volume."""

    def __init__(self, symbol: str, tick: float, levels: int, spread_ticks: int = 1) -> None:
        self.symbol, self.tick, self.levels, self.spread = symbol, tick, levels, spread_ticks
        self.best_bid = 0
        self.px: tuple[list[float], list[float]] = ([], [])  # indexed by side: ASK 0, BID 1
        self.sz: tuple[list[float], list[float]] = ([], [])
        self.venue: tuple[list[str], list[str]] = ([], [])
        self.last = 0.0
        self.last_size = 0.0
        self.volume = 0.0

    def price(self, ticks: int) -> float:
        return round(ticks * self.tick, 6)

    def mid(self) -> float:
        return 0.5 * (self.px[BID][0] + self.px[ASK][0]) if self.px[BID] else self.last

    def side_levels(self, side: int) -> list[DepthLevel]:
        return [DepthLevel(p, s, v) for p, s, v in zip(self.px[side], self.sz[side], self.venue[side], strict=True)]

    def quote(self, ts: datetime) -> Quote:
        bid, ask = self.px[BID], self.px[ASK]
        if not bid:
            return Quote(ts, self.last, self.last, 0.0, 0.0, self.last, self.last_size, self.volume)
        return Quote(ts, bid[0], ask[0], self.sz[BID][0], self.sz[ASK][0], self.last, self.last_size, self.volume)

    def reset_session(self, price: float) -> None:
        """A new session: last print at the open price, volume from zero."""
        self.last, self.last_size, self.volume = price, 0.0, 0.0

    def open_at(self, ts: datetime, price: float, sizes: list[float], venues: list[str],
                out: list[MarketEvent]) -> None:
        """Lay the ladder around ``price``: inserts into an empty book, in-place updates otherwise.

        ``sizes`` and ``venues`` hold ``2 × levels`` entries: bids first, best first, then asks.
        """
        self.best_bid = round(price / self.tick - 0.5 * self.spread)
        n = self.levels
        for k, side in enumerate((BID, ASK)):
            op = UPDATE if self.px[side] else INSERT
            start = self.best_bid if side == BID else self.best_bid + self.spread
            step = -1 if side == BID else 1
            self.px[side][:] = [self.price(start + step * i) for i in range(n)]
            self.sz[side][:] = sizes[k * n:(k + 1) * n]
            self.venue[side][:] = venues[k * n:(k + 1) * n]
            for i in range(n):
                out.append(DepthOp(self.symbol, ts, side, i, op, self.px[side][i], self.sz[side][i],
                                   self.venue[side][i]))

    def _delete(self, ts: datetime, side: int, pos: int, out: list[MarketEvent]) -> None:
        p, v = self.px[side].pop(pos), self.venue[side].pop(pos)
        self.sz[side].pop(pos)
        out.append(DepthOp(self.symbol, ts, side, pos, DELETE, p, 0.0, v))

    def _insert(self, ts: datetime, side: int, pos: int, ticks: int, size: float, venue: str,
                out: list[MarketEvent]) -> None:
        p = self.price(ticks)
        self.px[side].insert(pos, p)
        self.sz[side].insert(pos, size)
        self.venue[side].insert(pos, venue)
        out.append(DepthOp(self.symbol, ts, side, pos, INSERT, p, size, venue))

    def shift(self, ts: datetime, up: bool, sizes: tuple[float, float], venues: tuple[str, str],
              out: list[MarketEvent]) -> None:
        """Move the whole ladder one tick: one side loses its front and gains a back level, the other
        gains a new front and drops its back. ``sizes`` and ``venues`` are (new front, new back)."""
        n, bb, ba = self.levels, self.best_bid, self.best_bid + self.spread
        lose, gain = (ASK, BID) if up else (BID, ASK)
        step = 1 if up else -1
        self._delete(ts, lose, 0, out)
        self._insert(ts, lose, n - 1, (ba if up else bb) + step * n, sizes[1], venues[1], out)
        self._delete(ts, gain, n - 1, out)
        self._insert(ts, gain, 0, (bb if up else ba) + step, sizes[0], venues[0], out)
        self.best_bid = bb + step

    def update(self, ts: datetime, side: int, pos: int, size: float, venue: str, out: list[MarketEvent]) -> None:
        """Replace one level's size and venue in place (refresh, cancel, re-post)."""
        self.sz[side][pos] = size
        self.venue[side][pos] = venue
        out.append(DepthOp(self.symbol, ts, side, pos, UPDATE, self.px[side][pos], size, venue))

    def print_trade(self, ts: datetime, aggressor: int, size: float, out: list[MarketEvent]) -> float:
        """A print against the front level: the buyer lifts the ask (+1), the seller hits the bid (−1).

        Returns the displayed size left in front; the caller decides between refreshing it and
        sweeping the level away.
        """
        side = ASK if aggressor > 0 else BID
        price, venue = self.px[side][0], self.venue[side][0]
        self.last, self.last_size = price, size
        self.volume += size
        out.append(TradeEvent(self.symbol, Trade(ts, price, size, venue, aggressor)))
        return self.sz[side][0] - size

    def sweep(self, ts: datetime, up: bool, sizes: tuple[float, float], venues: tuple[str, str],
              out: list[MarketEvent]) -> None:
        """An aggressor takes the whole front level, then the ladder moves one tick that way."""
        side = ASK if up else BID
        self.print_trade(ts, 1 if up else -1, self.sz[side][0], out)
        self.shift(ts, up, sizes, venues, out)
        out.append(QuoteEvent(self.symbol, self.quote(ts)))

    def trade(self, ts: datetime, aggressor: int, size: float, refill: float, out: list[MarketEvent]) -> None:
        """A print smaller than the front level; the front shows what is left (or a refill)."""
        side = ASK if aggressor > 0 else BID
        size = min(size, self.sz[side][0])
        left = self.print_trade(ts, aggressor, size, out)
        self.update(ts, side, 0, left if left >= MIN_TOP_SIZE else refill, self.venue[side][0], out)
        out.append(QuoteEvent(self.symbol, self.quote(ts)))


def apply_op(bids: list[DepthLevel], asks: list[DepthLevel], op: DepthOp) -> None:
    """Apply one IB depth operation to a book (the reference replay the model's own book uses)."""
    levels = bids if op.side == BID else asks
    if op.operation == INSERT:
        levels.insert(op.position, DepthLevel(op.price, op.size, op.venue))
    elif op.operation == UPDATE:
        levels[op.position] = DepthLevel(op.price, op.size, op.venue)
    elif op.operation == DELETE:
        del levels[op.position]
    else:
        raise ValueError(f"unknown depth operation {op.operation}")
