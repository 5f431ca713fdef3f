"""Redis → arrays: what ingestion wrote (`qc stream`, `qc chains`), decoded by its codecs for the tasks.

Every value goes through ``qc.ingest.codec``: a missing, partial, old-version or malformed value
comes back as :class:`~qc.core.codec.Absent` with the reason (the caller logs it or writes it into
its output), and bad list items or stream entries are dropped, counted and logged, never raised.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qc.analytics.regime import MinuteBars
from qc.core import keys
from qc.core.codec import Absent
from qc.ingest import codec
from qc.ingest.codec import OptionChain, Quote, TradeRow
from qc.runtime.store import Store

log = logging.getLogger(__name__)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
Bars = MinuteBars  # 1-minute OHLCV bars: the library's type (realised vol reads it), the tasks' name


class ChainReader:
    """``options:{sym}:chain`` decoded (bad rows dropped and counted in ``rejected``), or why not.

    Decodes only when the stored text changed: `qc chains` rewrites a chain every ~5 minutes and the
    positioning task reads it every 30 s, so nine reads in ten reuse the last decode (one string
    comparison instead of ~3,000 validated rows).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last: dict[str, tuple[str, OptionChain | Absent]] = {}

    def __call__(self, symbol: str) -> OptionChain | Absent:
        key = keys.option_chain(symbol)
        raw = self.store.get(key)
        last = self._last.get(symbol)
        if raw is not None and last is not None and last[0] == raw:
            return last[1]
        got = OptionChain.from_redis(raw, key=key.name)
        if raw is None:
            self._last.pop(symbol, None)
        else:
            self._last[symbol] = (raw, got)
        if isinstance(got, OptionChain) and got.rejected:
            log.warning("%s: %d chain rows rejected (%s)", key.name, sum(got.rejected.values()), dict(got.rejected))
        return got


@dataclass(frozen=True)
class Book:
    bid_px: FloatArray
    bid_sz: FloatArray
    ask_px: FloatArray
    ask_sz: FloatArray


def read_book(store: Store, symbol: str) -> Book | Absent:
    """``market:{sym}:book`` as level-ordered arrays; Absent when missing, malformed, one-sided or crossed.

    A locked or crossed book (IB's SMART depth merging venues at different speeds) has no meaningful
    imbalance or microprice: the figures wait for the book to uncross rather than report nonsense.
    """
    key = keys.book(symbol)
    return book_of(store.hgetall(key), key.name)


def books_and_quote_times(store: Store, symbols: Sequence[str]) -> dict[str, tuple[Book | Absent, float | None]]:
    """Every symbol's book (as :func:`read_book`) and its quote's ``as_of`` (as :func:`quote_as_of`), in one
    round trip: the 1-s imbalance task made two per symbol, 200 a second at 100 symbols, each a wake-up of
    Redis beside `qc stream`'s writes."""
    raw = store.hgetall_many([k for s in symbols for k in (keys.book(s), keys.quote(s))])
    out: dict[str, tuple[Book | Absent, float | None]] = {}
    for i, sym in enumerate(symbols):
        quote = Quote.from_redis(raw[2 * i + 1], key=keys.quote(sym).name)
        out[sym] = (book_of(raw[2 * i], keys.book(sym).name), None if isinstance(quote, Absent) else quote.as_of)
    return out


def book_of(raw: Mapping[str, str], name: str) -> Book | Absent:
    """A book hash as arrays (see :func:`read_book`)."""
    got = codec.Book.from_redis(raw, key=name)
    if isinstance(got, Absent):
        return got
    if not got.two_sided:
        return Absent(name, f"one-sided ({len(got.bids)} bid, {len(got.asks)} ask levels)")
    if got.crossed:
        return Absent(name, f"crossed (best bid {got.bids[0].price:g} >= best ask {got.asks[0].price:g})")
    return Book(np.array([lv.price for lv in got.bids]), np.array([lv.size for lv in got.bids]),
                np.array([lv.price for lv in got.asks]), np.array([lv.size for lv in got.asks]))


def read_quote(store: Store, symbol: str) -> Quote | Absent:
    key = keys.quote(symbol)
    return Quote.from_redis(store.hgetall(key), key=key.name)


def quote_as_of(store: Store, symbol: str) -> float | None:
    """Clock epoch of the last quote update `qc stream` stamped (the age proxy for the book); None without one."""
    got = read_quote(store, symbol)
    return None if isinstance(got, Absent) else got.as_of


def bars_of(bars: Sequence[codec.Bar]) -> Bars:
    """Decoded bars (time order) as columns."""
    cols = [np.array([getattr(b, n) for b in bars], dtype=np.float64)
            for n in ("start", "open", "high", "low", "close", "volume")]
    return Bars(*cols)


def read_bars(store: Store, symbol: str) -> Bars:
    """``market:{sym}:bars:1min``: complete minutes, one per start, oldest first (bad items logged, dropped)."""
    key = keys.bars_1min(symbol)
    bars, rejected = codec.decode_bars(store.client.lrange(key.name, 0, -1), key=key.name)
    _log_rejected(key.name, "bars", rejected)
    return bars_of([b for b in bars if b.complete])


@dataclass(frozen=True)
class Trades:
    """New prints from ``market:{sym}:trades``: clock epoch, price, size, aggressor side (+1/−1/0)."""

    ts: FloatArray
    price: FloatArray
    size: FloatArray
    side: FloatArray


def trades_of(rows: Sequence[TradeRow]) -> Trades:
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), 4)
    return Trades(cols[:, 0].copy(), cols[:, 1].copy(), cols[:, 2].copy(), cols[:, 3].copy())


def trades_from_entries(entries: list[tuple[str, dict[str, str]]], key: str = "trades") -> Trades:
    """Stream entries as columns; a malformed entry is dropped, counted and logged."""
    rows, rejected = codec.decode_trades(entries, key=key)
    _log_rejected(key, "trade entries", rejected)
    return trades_of(rows)


def last_trade_id(store: Store, symbol: str) -> str:
    """The id to XREAD after: the newest entry now (prints before start are covered by warm bars)."""
    got = store.client.xrevrange(keys.trades(symbol).name, count=1)
    return str(got[0][0]) if got else "0-0"


def read_trades(store: Store, since: dict[str, str], limit: int = 20_000, rounds: int = 50) -> dict[str, Trades]:
    """XREAD (non-blocking) every symbol's stream after its last id, advancing ``since`` in place.

    Pages of ``limit`` until a stream is drained (at most ``rounds`` pages a cycle: a backlog after a
    pause is caught up over a few cycles rather than in one unbounded read).
    """
    by_key = {keys.trades(sym).name: sym for sym in since}
    got: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for _ in range(rounds):
        streams = {keys.trades(sym).name: last for sym, last in since.items()}
        full = False
        for name, entries in store.xread_each(streams, count=limit):
            sym = by_key[name]
            since[sym] = str(entries[-1][0])
            got.setdefault(sym, []).extend(entries)
            full = full or len(entries) == limit
        if not full:
            break
    return {sym: trades_from_entries(entries, keys.trades(sym).name) for sym, entries in got.items()}


def _log_rejected(key: str, what: str, rejected: Counter[str]) -> None:
    if rejected:
        log.warning("%s: %d %s dropped (%s)", key, sum(rejected.values()), what, dict(rejected))
