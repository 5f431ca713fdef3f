"""What `qc stream` knows in memory between Redis writes: books, quotes, prints, bars, freshness.

The IB adapter (``ib_feed``) calls in with plain values and the monotonic *arrival* time of the
socket read that carried them; the writer (``stream_writer``) drains what changed. Each item keeps
the arrival of its *first* unwritten update (``pending``), so a coalesced write reports the latency
of the oldest message it carries. Memory is bounded whatever Redis does: books and quotes are
current state (overwritten), prints and finished minutes sit in capped deques (oldest dropped).
No Redis here; the market clock is injected.

Bad values from IB are refused here, at the boundary, and counted in ``rejects`` by
(surface, reason, symbol) for the writer to add to ``monitoring:rejects``: depth operations
(``ib.depth``, see ``qc.ingest.book``; also ``crossed``, once per episode of a locked/crossed book),
5-s bars and finished minutes (``ib.bar``), prints (``ib.trade``); level-one ticks are judged by the
adapter (``ib.tick``). Nothing refused reaches the book, the quote, the prints or the bars.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from qc.core.clock import Clock
from qc.core.models import Bar, FiveSecondBar
from qc.ingest import aggressor
from qc.ingest.bars import MinuteRoller, five_second_refusal, valid_bars
from qc.ingest.book import ASK, BID, DepthBook, value_refusal
from qc.ingest.codec import trade_fields
from qc.ingest.staleness import Freshness

DepthTick = tuple[int, int, int, float, float, str]  # side, position, operation, price, size, venue
Print = tuple[float, float, str]  # price, size, venue
TRADES_BUFFER = 10_000
BARS_BUFFER = 390
Reject = tuple[str, str, str]  # surface, reason, symbol


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
    crossed: bool = False  # the book was locked/crossed after the last depth read

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
        self.rejects: Counter[Reject] = Counter()  # refused IB values not yet counted in Redis
        self._market_for, self._market = -1.0, 0.0  # the market clock read for the read that arrived then

    def refuse(self, symbol: str, surface: str, reasons: Mapping[str, int]) -> None:
        """Note values refused at ``surface`` (the writer counts them into ``monitoring:rejects``)."""
        for reason, n in reasons.items():
            if n:
                self.rejects[(surface, reason, symbol)] += n
        if self.rejects:
            self.on_dirty()

    def _saw(self, state: SymbolState, feed: str, item: str, arrival: float, replay: bool = False) -> None:
        state.mark(item, arrival, max(arrival, self.handed_at))
        self.freshness.saw(state.symbol, feed, arrival, self._market_at(arrival), replay=replay)
        self.on_dirty()

    def _market_at(self, arrival: float) -> float:
        """The market clock when the read that arrived at ``arrival`` was delivered: read once per read, not
        once per symbol in it (a simulated clock costs two clock reads and a refresh check per call)."""
        if arrival != self._market_for:
            self._market_for, self._market = arrival, self.clock.epoch()
        return self._market

    def depth(self, symbol: str, ticks: Sequence[DepthTick], resets: Sequence[int], arrival: float) -> None:
        """Apply a socket read's depth operations in order; ``resets`` are indexes where IB said 317 RESET.

        Refused operations are counted; a book that ends the read locked or crossed is counted once per
        episode. A book left empty by a RESET is not written: IB re-sends it at once, and readers keep
        the last book (with its TTL running) rather than see "no liquidity" for a few milliseconds.
        """
        state = self.by_symbol[symbol]
        book = state.book
        refused: Counter[str] = Counter()
        if resets:
            at = set(resets)
            for i, tick in enumerate(ticks):
                if i in at:
                    book.clear()
                why = book.apply(*tick)
                if why is not None:
                    refused[why] += 1
            if any(r >= len(ticks) for r in at):
                book.clear()
        else:  # the usual read: no RESET in it
            apply = book.apply
            for tick in ticks:
                why = apply(*tick)
                if why is not None:
                    refused[why] += 1
        crossed = book.crossed()
        if crossed and not state.crossed:
            refused["crossed"] += 1
        state.crossed = crossed
        if refused:
            self.refuse(symbol, "ib.depth", refused)
        # inserts only: what a subscription's book snapshot looks like, so no proof the feed is alive
        replay = self.freshness.awaits_snapshot(symbol, "depth") and all(tick[2] == 0 for tick in ticks)
        self._saw(state, "depth", "book", arrival, replay=replay)
        if book.resetting:
            state.pending.pop("book", None)
            state.handed.pop("book", None)

    def clear_book(self, symbol: str, arrival: float) -> None:
        """A resubscription or reconnect: the server re-sends the whole book as inserts. Nothing is written
        until it does (the last written book stays, its TTL running), so a reader never sees it empty."""
        state = self.by_symbol[symbol]
        state.book.clear()
        state.crossed = False
        state.pending.pop("book", None)
        state.handed.pop("book", None)

    def trades(self, symbol: str, prints: Iterable[Print], arrival: float) -> None:
        """Prints, signed against the book as it stood before this read's depth operations; a print with a
        price not finite or not > 0, or a size not finite or < 0, is refused and counted (``ib.trade``)."""
        state = self.by_symbol[symbol]
        bid, ask = state.book.best(BID), state.book.best(ASK)
        bid_px = bid.price if bid is not None else state.quote.get("bid")
        ask_px = ask.price if ask is not None else state.quote.get("ask")
        market = f"{self.clock.epoch():.3f}"
        refused: Counter[str] = Counter()
        for price, size, venue in prints:
            why = value_refusal(price, size)
            if why is not None:
                refused[why] += 1
                continue
            side = aggressor.infer_side(price, bid_px, ask_px, state.prev_price, state.prev_side)
            state.prev_price, state.prev_side = price, side
            state.trades.append(trade_fields(market, price, size, venue, side))
        if refused:
            self.refuse(symbol, "ib.trade", refused)
        self._saw(state, "trades", "trades", arrival)

    def quote(self, symbol: str, fields: Mapping[str, float | None], arrival: float) -> None:
        """Top of book, last and volume, already validated by the caller; None: IB says the field is empty
        now (a side with no quote), so it is dropped from the quote rather than kept stale."""
        state = self.by_symbol[symbol]
        for name, value in fields.items():
            if value is None:
                state.quote.pop(name, None)
            else:
                state.quote[name] = value
        state.quote["as_of"] = self.clock.epoch()
        self._saw(state, "quotes", "quote", arrival)

    def auction(self, symbol: str, fields: dict[str, float], arrival: float) -> None:
        state = self.by_symbol[symbol]
        state.auction.update(fields)
        state.auction["as_of"] = self.clock.epoch()
        state.mark("auction", arrival, max(arrival, self.handed_at))
        self.on_dirty()

    def bar(self, symbol: str, bar: FiveSecondBar, arrival: float) -> None:
        """One 5-s bar: rolled up, or refused and counted (``ib.bar``); either way the feed is alive."""
        state = self.by_symbol[symbol]
        self._saw(state, "bars", "bars_seen", arrival)
        state.pending.pop("bars_seen", None)
        why = five_second_refusal(bar)
        if why is not None:
            self.refuse(symbol, "ib.bar", {why: 1})
            return
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
        """Queue finished minutes for the bars list; one the codec would refuse is counted instead."""
        if minutes:
            minutes, refused = valid_bars(minutes)
            if refused:
                self.refuse(state.symbol, "ib.bar", refused)
        if minutes:
            state.bars.extend(minutes)
            state.mark("bars", arrival)
            self.on_dirty()
