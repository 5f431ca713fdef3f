"""Populate Redis from the simulator as ingestion would (chain via `qc chains`' cycle, trades, bars, book)."""

from __future__ import annotations

import json
from datetime import datetime

from qc.core import keys
from qc.runtime.store import Store
from qc.sim.market.events import TradeEvent
from qc.sim.market.market import SimMarket


def put_bars(store: Store, market: SimMarket, symbol: str, end: datetime, minutes: int) -> None:
    """Past minutes in `qc stream`'s MinuteBar JSON shape (complete only)."""
    rows = [json.dumps({"start": b.ts.timestamp(), "open": b.open, "high": b.high, "low": b.low, "close": b.close,
                        "volume": b.volume, "vwap": b.vwap, "count": b.count, "bars": 12, "complete": True})
            for b in market.history(symbol, end, minutes) if b.complete]
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
            t = e.trade
            pipe.xadd(keys.trades(e.symbol).name, {"ts": f"{t.ts.timestamp():.3f}", "price": repr(t.price),
                                                    "size": repr(t.size), "venue": t.venue, "side": str(t.side)})
            n += 1
    pipe.execute()
    return n


def put_book(store: Store, market: SimMarket, symbol: str, now: datetime) -> None:
    bids, asks = market.book(symbol)
    fields = {f"{side}:{i}": json.dumps({"price": lv.price, "size": lv.size, "venue": lv.venue})
              for side, rows in (("bid", bids), ("ask", asks)) for i, lv in enumerate(rows)}
    store.client.hset(keys.book(symbol).name, mapping=fields)
    store.client.hset(keys.quote(symbol).name, mapping={"as_of": repr(now.timestamp())})
