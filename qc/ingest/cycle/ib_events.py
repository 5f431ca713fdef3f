"""ib_async's per-read events turned into plain values for ``StreamState`` (no I/O, no clock).

One socket read gives each touched ``Ticker`` the lists ``domTicks``, ``tickByTicks`` and ``ticks``
(ib_async splits them, so their relative order within the read is lost). Prints are applied
first, against the book as it stood before this read's depth operations, then the depth
operations in order (clearing the book where IB said 317 RESET), then the level-one ticks.
"""

from __future__ import annotations

from collections.abc import Iterable

from ib_async import RealTimeBarList, TickByTickAllLast, Ticker

from qc.core.models import FiveSecondBar
from qc.ingest.state import StreamState

QUOTE_TICKS = frozenset({0, 1, 2, 3, 4, 5, 8})  # bid/ask/last sizes and prices, volume
AUCTION_TICKS = frozenset({34, 35, 36, 61})  # generic tick 225: auction volume, price, imbalance


def deliver_tickers(state: StreamState, tickers: Iterable[Ticker], resets: dict[str, list[int]],
                    arrival: float) -> None:
    """Everything one socket read changed, symbol by symbol; ``resets`` are consumed."""
    for t in tickers:
        symbol = t.contract.symbol if t.contract is not None else ""
        if symbol not in state.by_symbol:
            continue
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
        state.quote(symbol, finite(bid=t.bid, ask=t.ask, bid_size=t.bidSize, ask_size=t.askSize, last=t.last,
                                   volume=t.volume), arrival)
    if types & AUCTION_TICKS:
        state.auction(symbol, finite(imbalance=t.auctionImbalance, paired=t.auctionVolume,
                                     indicative_price=t.auctionPrice, regulatory_imbalance=t.regulatoryImbalance),
                      arrival)


def deliver_bar(state: StreamState, bars: RealTimeBarList, arrival: float) -> None:
    """The newest 5-s bar; older ones are dropped from ib_async's list (it keeps a whole day)."""
    symbol = bars.contract.symbol if bars.contract is not None else ""
    if not bars or symbol not in state.by_symbol:
        return
    b = bars[-1]
    del bars[:-1]
    state.bar(symbol, FiveSecondBar(int(b.time.timestamp()), b.open_, b.high, b.low, b.close, float(b.volume),
                                    float(b.wap), int(b.count)), arrival)


def finite(**values: float) -> dict[str, float]:
    """The values that are numbers (ib_async marks unknown ones NaN)."""
    return {k: float(v) for k, v in values.items() if v is not None and v == v and abs(v) != float("inf")}
