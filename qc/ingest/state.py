"""What `qc stream` knows in memory between Redis writes: books, quotes, prints, bars, freshness.

The IB adapter (``ib_feed``) calls in with plain values and the monotonic *arrival* time of the
socket read that carried them; the writer (``stream_writer``) drains what changed. Each item keeps
the arrival of its *first* unwritten update (``pending``), so a coalesced write reports the latency
of the oldest message it carries. Memory is bounded whatever Redis does: books and quotes are
current state (overwritten), prints and finished minutes sit in capped deques (oldest dropped).
No Redis here; the market clock is injected.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from qc.core.clock import Clock
from qc.core.models import Bar, FiveSecondBar
from qc.ingest import aggressor
from qc.ingest.bars import MinuteRoller
from qc.ingest.book import ASK, BID, DepthBook
from qc.ingest.codec import trade_fields
from qc.ingest.staleness import Freshness

DepthTick = tuple[int, int, int, float, float, str]  # side, position, operation, price, size, venue
Print = tuple[float, float, str]  # price, size, venue
TRADES_BUFFER = 10_000
BARS_BUFFER = 390


@dataclass
class SymbolState:
    """One symbol's live state and what of it is not yet in Redis.

    ``pending`` holds the arrival (start of the socket read) of each item's first unwritten update,
    ``handed`` when ib_async handed that update to us after decoding the whole read.
    """

    symbol: str
    book: DepthBook
    roller: MinuteRoller = field(default_factory=MinuteRoller)
    quote: dict[str, float] = field(default_factory=dict)
    auction: dict[str, float] = field(default_factory=dict)
    trades: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=TRADES_BUFFER))
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=BARS_BUFFER))
    history: list[Bar] | None = None  # IB's historical minutes waiting to be merged into the bars list
    pending: dict[str, float] = field(default_factory=dict)  # item -> arrival of its first unwritten update
    handed: dict[str, float] = field(default_factory=dict)  # item -> when ib_async handed that update over
    prev_price: float | None = None
    prev_side: int = aggressor.UNKNOWN

    def mark(self, item: str, arrival: float, handed: float | None = None) -> None:
        if item not in self.pending:
            self.pending[item] = arrival
            self.handed[item] = arrival if handed is None else handed


class StreamState:
    """Every symbol's state; ``on_dirty`` is called when something new waits to be written."""

    def __init__(self, symbols: Sequence[str], clock: Clock, rows: int = 10,
                 on_dirty: Callable[[], None] = lambda: None) -> None:
        self.symbols = tuple(symbols)
        self.clock = clock
        self.on_dirty = on_dirty
        self.by_symbol = {s: SymbolState(s, DepthBook(rows)) for s in self.symbols}
        self.freshness = Freshness()
        self.connected = False
        self.farm_ok = True
        self.handed_at = 0.0  # monotonic time ib_async handed over the current batch (set by the feed)

    def _saw(self, state: SymbolState, feed: str, item: str, arrival: float) -> None:
        state.mark(item, arrival, max(arrival, self.handed_at))
        self.freshness.saw(state.symbol, feed, arrival, self.clock.epoch())
        self.on_dirty()

    def depth(self, symbol: str, ticks: Sequence[DepthTick], resets: Sequence[int], arrival: float) -> None:
        """Apply a socket read's depth operations in order; ``resets`` are indexes where IB said 317 RESET."""
        state = self.by_symbol[symbol]
        book, at = state.book, set(resets)
        for i, (side, position, operation, price, size, venue) in enumerate(ticks):
            if i in at:
                book.clear()
            book.apply(side, position, operation, price, size, venue)
        if any(r >= len(ticks) for r in at):
            book.clear()
        self._saw(state, "depth", "book", arrival)

    def clear_book(self, symbol: str, arrival: float) -> None:
        """A resubscription or reconnect: the server re-sends the whole book as inserts."""
        state = self.by_symbol[symbol]
        state.book.clear()
        state.mark("book", arrival)
        self.on_dirty()

    def trades(self, symbol: str, prints: Iterable[Print], arrival: float) -> None:
        """Prints, signed against the book as it stood before this read's depth operations."""
        state = self.by_symbol[symbol]
        bid, ask = state.book.best(BID), state.book.best(ASK)
        bid_px = bid.price if bid is not None else state.quote.get("bid")
        ask_px = ask.price if ask is not None else state.quote.get("ask")
        market = f"{self.clock.epoch():.3f}"
        for price, size, venue in prints:
            if not (price > 0 and size >= 0):  # also NaN: a print the trades codec would refuse
                continue
            side = aggressor.infer_side(price, bid_px, ask_px, state.prev_price, state.prev_side)
            state.prev_price, state.prev_side = price, side
            state.trades.append(trade_fields(market, price, size, venue, side))
        self._saw(state, "trades", "trades", arrival)

    def quote(self, symbol: str, fields: dict[str, float], arrival: float) -> None:
        """Top of book, last and volume (NaN fields are left out by the caller)."""
        state = self.by_symbol[symbol]
        state.quote.update(fields)
        state.quote["as_of"] = self.clock.epoch()
        self._saw(state, "quotes", "quote", arrival)

    def auction(self, symbol: str, fields: dict[str, float], arrival: float) -> None:
        state = self.by_symbol[symbol]
        state.auction.update(fields)
        state.auction["as_of"] = self.clock.epoch()
        state.mark("auction", arrival, max(arrival, self.handed_at))
        self.on_dirty()

    def bar(self, symbol: str, bar: FiveSecondBar, arrival: float) -> None:
        state = self.by_symbol[symbol]
        self._saw(state, "bars", "bars_seen", arrival)
        state.pending.pop("bars_seen", None)
        self._minutes(state, state.roller.add(bar), arrival)

    def close_minutes(self, market_epoch: float, mono: float) -> None:
        """Emit minutes whose 5-s bars stopped coming (called by the 1-s monitor)."""
        for state in self.by_symbol.values():
            self._minutes(state, state.roller.close_through(market_epoch), mono)

    def history(self, symbol: str, bars: list[Bar], arrival: float) -> None:
        """IB's historical minutes (validated, finished): merged into the bars list by the next flush."""
        state = self.by_symbol[symbol]
        state.history = bars
        state.mark("history", arrival)
        self.on_dirty()

    def _minutes(self, state: SymbolState, minutes: list[Bar], arrival: float) -> None:
        if minutes:
            state.bars.extend(minutes)
            state.mark("bars", arrival)
            self.on_dirty()
