"""ib_async's per-read events turned into plain values for ``StreamState`` (no I/O, no clock).

One socket read gives each touched ``Ticker`` the lists ``domTicks``, ``tickByTicks`` and ``ticks``
(ib_async splits them, so their relative order within the read is lost). Prints are applied
first, against the book as it stood before this read's depth operations, then the depth
operations in order (clearing the book where IB said 317 RESET), then the level-one ticks.

Level one is read from the read's ``TickData`` (tick type, price, size), not from the ``Ticker``'s
attributes, so each value is judged as IB sent it (``ib.tick``): a price not finite or not > 0, or
a size not finite or < 0, is refused and counted. ib_async's own "empty" marker is not a refusal:
when IB says a side has size 0 it sets that side's price and size to NaN (``defaultEmptyPrice``),
which here means "no bid (ask) now" and blanks the field instead of keeping a stale quote.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from ib_async import RealTimeBarList, TickByTickAllLast, TickData, Ticker

from qc.core.models import FiveSecondBar
from qc.ingest.book import value_refusal
from qc.ingest.state import StreamState

QUOTE_TICKS = frozenset({0, 1, 2, 3, 4, 5, 8})  # bid/ask/last sizes and prices, volume
AUCTION_TICKS = frozenset({34, 35, 36, 61})  # generic tick 225: auction volume, price, imbalance
PRICE_SIZE = {1: ("bid", "bid_size"), 2: ("ask", "ask_size")}  # a price tick carries its side's size
SIZE_ONLY = {0: ("bid", "bid_size"), 3: ("ask", "ask_size")}
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, VOLUME = 0, 1, 2, 3, 4, 5, 8


def deliver_tickers(state: StreamState, tickers: Iterable[Ticker], resets: dict[str, list[int]],
                    arrival: float, part: Callable[[list[str]], None] | None = None, part_size: int = 16) -> None:
    """Everything one socket read changed, symbol by symbol; ``resets`` are consumed.

    ``part`` is handed each ``part_size`` symbols delivered while more follow (the writer sends them
    to Redis while the rest of the read is delivered); the last symbols are left to the flush."""
    done: list[str] = []
    for t in tickers:
        symbol = t.contract.symbol if t.contract is not None else ""
        if symbol not in state.by_symbol:
            continue
        if part is not None and len(done) == part_size:
            part(done)
            done = []
        done.append(symbol)
        prints = [(x.price, x.size, x.exchange) for x in t.tickByTicks if isinstance(x, TickByTickAllLast)]
        if prints:
            state.trades(symbol, prints, arrival)
        at = resets.pop(symbol, [])
        if t.domTicks or at:
            ops = [(d.side, d.position, d.operation, d.price, d.size, d.marketMaker) for d in t.domTicks]
            state.depth(symbol, ops, at, arrival)
        if t.ticks:
            _level_one(state, symbol, t, arrival)


def _level_one(state: StreamState, symbol: str, t: Ticker, arrival: float) -> None:
    types = {tick.tickType for tick in t.ticks}
    if types & QUOTE_TICKS:
        fields, refused = quote_fields_of(t.ticks)
        if refused:
            state.refuse(symbol, "ib.tick", refused)
        if fields:
            state.quote(symbol, fields, arrival)
    if types & AUCTION_TICKS:
        state.auction(symbol, finite(imbalance=t.auctionImbalance, paired=t.auctionVolume,
                                     indicative_price=t.auctionPrice, regulatory_imbalance=t.regulatoryImbalance),
                      arrival)


def _empty(price: float, size: float) -> bool:
    """ib_async's marker for a side IB emptied (size 0): price NaN, size NaN (its default) or 0."""
    return math.isnan(price) and (math.isnan(size) or size == 0)


def _size_refusal(size: float) -> str | None:
    if not math.isfinite(size):
        return "size_not_finite"
    return "negative_size" if size < 0 else None


def quote_fields_of(ticks: Sequence[TickData]) -> tuple[dict[str, float | None], Counter[str]]:
    """The quote fields one read's level-one ticks set, in order (None: IB emptied the field), and the
    ticks refused by reason. Last size is validated but not stored (the quote has no such field)."""
    fields: dict[str, float | None] = {}
    refused: Counter[str] = Counter()
    for tick in ticks:
        kind, price, size = tick.tickType, tick.price, tick.size
        if kind in PRICE_SIZE or kind in SIZE_ONLY:
            price_name, size_name = PRICE_SIZE.get(kind) or SIZE_ONLY[kind]
            if _empty(price, size) or (kind in SIZE_ONLY and size == 0):
                fields[price_name] = fields[size_name] = None
                continue
            why = value_refusal(price, size) if kind in PRICE_SIZE else _size_refusal(size)
            if why is not None:
                refused[why] += 1
                continue
            if kind in PRICE_SIZE:
                fields[price_name] = price
            fields[size_name] = size
        elif kind == LAST:
            if _empty(price, size):
                continue  # IB's "no last" (price −1, size 0): nothing traded yet, not a refusal
            why = value_refusal(price, 0.0 if math.isnan(size) else size)
            if why is not None:
                refused[why] += 1
                continue
            fields["last"] = price
        elif kind in (LAST_SIZE, VOLUME):
            why = _size_refusal(size)
            if why is not None:
                refused[why] += 1
            elif kind == VOLUME:
                fields["volume"] = size
    return fields, refused


def deliver_bar(state: StreamState, bars: RealTimeBarList, arrival: float) -> None:
    """The newest 5-s bar; older ones are dropped from ib_async's list (it keeps a whole day)."""
    symbol = bars.contract.symbol if bars.contract is not None else ""
    if not bars or symbol not in state.by_symbol:
        return
    b = bars[-1]
    del bars[:-1]
    state.bar(symbol, FiveSecondBar(int(b.time.timestamp()), b.open_, b.high, b.low, b.close, float(b.volume),
                                    float(b.wap), count_of(b.count)), arrival)


def count_of(raw: float) -> int:
    """IB's trade count as an int; a value that is not a finite number becomes −1, which the bar check refuses."""
    return int(raw) if isinstance(raw, int) or math.isfinite(raw) else -1


def finite(**values: float) -> dict[str, float]:
    """The values that are numbers (ib_async marks unknown ones NaN)."""
    return {k: float(v) for k, v in values.items() if v is not None and v == v and abs(v) != float("inf")}
