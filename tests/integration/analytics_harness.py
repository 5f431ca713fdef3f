"""Populate Redis from the simulator as ingestion would (chain via `qc chains`' cycle, trades, bars, book)."""

from __future__ import annotations

from datetime import datetime

from qc.core import keys
from qc.ingest.codec import Book, Quote
from qc.runtime.store import Store
from qc.sim.market.events import TradeEvent
from qc.sim.market.market import SimMarket


def put_bars(store: Store, market: SimMarket, symbol: str, end: datetime, minutes: int) -> None:
    """Past minutes as `qc stream` stores them (the bars-list codec; complete only)."""
    rows = [b.to_redis() for b in market.history(symbol, end, minutes) if b.complete]
    store.client.rpush(keys.bars_1min(symbol).name, *rows)


def put_trades(store: Store, market: SimMarket, symbols: str | tuple[str, ...], until: datetime) -> int:
    """The simulator's prints up to ``until`` XADDed with `qc stream`'s fields (aggressor side included).

    All symbols in one pass: ``events_until`` reveals each event once, so a second call for another
    symbol would find nothing.
    """
    wanted = (symbols,) if isinstance(symbols, str) else symbols
    pipe = store.client.pipeline(transaction=False)
    n = 0
    for e in market.events_until(until):
        if isinstance(e, TradeEvent) and e.symbol in wanted:
            pipe.xadd(keys.trades(e.symbol).name, dict(e.trade.to_redis()))
            n += 1
    pipe.execute()
    return n


def put_book(store: Store, market: SimMarket, symbol: str, now: datetime) -> None:
    bids, asks = market.book(symbol)
    store.client.hset(keys.book(symbol).name, mapping=Book(tuple(bids), tuple(asks)).to_redis())
    store.client.hset(keys.quote(symbol).name, mapping=Quote(as_of=now.timestamp()).to_redis())
