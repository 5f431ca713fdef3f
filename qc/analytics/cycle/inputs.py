"""Redis → arrays: what ingestion wrote (`qc stream`, `qc chains`), parsed once for the tasks.

Formats are ingestion's (qc/ingest/cycle/stream_writer.py, chains_cycle.py); a malformed item raises
ValueError/KeyError, which the caller logs and counts rather than turning into a zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from qc.analytics.exposure import Chain, chain_at
from qc.core import keys
from qc.runtime.store import Store

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class ChainInput:
    """An option chain as the library wants it, plus the stamps the gex hash reports."""

    chain: Chain
    doc: dict[str, Any]
    as_of_epoch: float
    expiries: list[str]


def read_chain(store: Store, symbol: str, now: datetime) -> ChainInput | None:
    """``options:{sym}:chain`` valued at ``now``; None when the key is absent."""
    raw = store.get(keys.option_chain(symbol))
    if raw is None:
        return None
    doc = json.loads(raw)
    rows = doc["rows"]
    chain = chain_at(now, float(doc["spot"]), [r["strike"] for r in rows],
                     np.array([r["expiry"] for r in rows], dtype="datetime64[D]"),
                     [r["right"] == "C" for r in rows],
                     [np.nan if r["iv"] is None else r["iv"] for r in rows],
                     [r["open_interest"] for r in rows],
                     rate=float(doc.get("rate", 0.0)), div_yield=float(doc.get("div_yield", 0.0)))
    return ChainInput(chain, doc, float(doc["as_of_epoch"]), list(doc.get("expiries", [])))


@dataclass(frozen=True)
class Book:
    bid_px: FloatArray
    bid_sz: FloatArray
    ask_px: FloatArray
    ask_sz: FloatArray


def read_book(store: Store, symbol: str) -> Book | None:
    """``market:{sym}:book`` ("{side}:{level}" → JSON) as level-ordered arrays; None when a side is empty."""
    fields = store.hgetall(keys.book(symbol))
    sides: dict[str, list[tuple[int, float, float]]] = {"bid": [], "ask": []}
    for name, value in fields.items():
        side, level = name.split(":")
        row = json.loads(value)
        sides[side].append((int(level), float(row["price"]), float(row["size"])))
    if not sides["bid"] or not sides["ask"]:
        return None
    bid, ask = sorted(sides["bid"]), sorted(sides["ask"])
    return Book(np.array([r[1] for r in bid]), np.array([r[2] for r in bid]),
                np.array([r[1] for r in ask]), np.array([r[2] for r in ask]))


def quote_as_of(store: Store, symbol: str) -> float | None:
    """Clock epoch of the last quote/book update `qc stream` stamped, the age proxy for the book."""
    value = store.hget(keys.quote(symbol), "as_of")
    return float(value) if value else None


@dataclass(frozen=True)
class Bars:
    """1-minute bars, oldest first: start epoch (s) and OHLCV."""

    start: FloatArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.start.size)


def bars_from_rows(rows: list[dict[str, Any]]) -> Bars:
    rows = sorted(rows, key=lambda r: float(r["start"]))
    cols = [np.array([float(r[n]) for r in rows], dtype=np.float64)
            for n in ("start", "open", "high", "low", "close", "volume")]
    return Bars(*cols)


def read_bars(store: Store, symbol: str) -> Bars:
    """``market:{sym}:bars:1min`` (JSON per minute, complete minutes only)."""
    raw = store.client.lrange(keys.bars_1min(symbol).name, 0, -1)
    rows = [json.loads(r) for r in raw]
    return bars_from_rows([r for r in rows if r.get("complete", True)])


@dataclass(frozen=True)
class Trades:
    """New prints from ``market:{sym}:trades``: clock epoch, price, size, aggressor side (+1/−1/0)."""

    ts: FloatArray
    price: FloatArray
    size: FloatArray
    side: FloatArray


def trades_from_entries(entries: list[tuple[str, dict[str, str]]]) -> Trades:
    cols = [np.array([float(f[n]) for _, f in entries], dtype=np.float64) for n in ("ts", "price", "size")]
    side = np.array([float(f.get("side") or 0) for _, f in entries], dtype=np.float64)
    return Trades(cols[0], cols[1], cols[2], side)


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
        for name, entries in store.client.xread(streams, count=limit) or []:
            sym = by_key[name]
            since[sym] = str(entries[-1][0])
            got.setdefault(sym, []).extend(entries)
            full = full or len(entries) == limit
        if not full:
            break
    return {sym: trades_from_entries(entries) for sym, entries in got.items()}
