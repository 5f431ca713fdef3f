"""Everything one scoring cycle reads, in one pipelined round trip, through the owners' codecs.

Per symbol: the analytics hashes (gex, vpin, imbalance, regime), the flow clusters, the quote, the
closing-auction hash and news from ingestion, new prints since the last cycle (XREAD) and the
newest minute bars. Prints and bars are kept between cycles (a window of ``KEEP_PRINTS_S`` of
prints, two sessions of bars), so a cycle decodes only what is new; a full bar reload every
``BARS_RELOAD_S`` picks up a history merge after a reconnect. The option chain is read separately
and only when a strategy fires (it is the one large value), cached by its ``as_of``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from qc.analytics.codec import FlowClusters, GexPending, GexSnapshot, Imbalance, Regime, Vpin, gex_from_redis
from qc.core import keys
from qc.core.codec import Absent
from qc.core.models import Bar
from qc.ingest.codec import AuctionImbalance, NewsSentiment, OptionChain, Quote, TradeRow, decode_bars, decode_trades
from qc.runtime.store import Store
from qc.signals.factor_set import SymbolInputs

log = logging.getLogger(__name__)
KEEP_PRINTS_S = 120.0       # prints kept: the order-flow window (factor_set.FLOW_WINDOW_S, 30 s) with room
BARS_KEEP = 900             # two sessions of minutes
BARS_TAIL = 5               # minutes re-read every cycle (the current one is still being written)
BARS_RELOAD_S = 300.0
TRADES_FIRST_READ = 20_000  # prints read back at start (the newest), then XREAD from there


@dataclass
class SymbolMemory:
    """What a symbol's inputs keep between cycles."""

    trades: deque[TradeRow] = field(default_factory=deque)
    trades_since: str | None = None
    bars: dict[datetime, Bar] = field(default_factory=dict)
    bars_loaded_at: float = float("-inf")
    vpin_history: deque[tuple[datetime, float]] = field(default_factory=lambda: deque(maxlen=1200))


def _gex(raw: Mapping[str, str], key: str) -> GexSnapshot | Absent:
    got = gex_from_redis(raw or None, key=key)
    return Absent(key, f"no positioning yet: {got.reason}") if isinstance(got, GexPending) else got


HASHES = ("gex", "vpin", "imbalance", "regime", "quote", "auction", "news")


def _hash_keys(symbol: str) -> list[keys.Key]:
    return [keys.gex(symbol), keys.vpin(symbol), keys.book_imbalance(symbol), keys.regime(symbol),
            keys.quote(symbol), keys.auction_imbalance(symbol), keys.news_sentiment(symbol)]


class InputReader:
    """Reads every symbol's inputs each cycle; keeps prints, bars and VPIN readings between cycles."""

    def __init__(self, store: Store, symbols: Sequence[str]) -> None:
        self.store, self.symbols = store, tuple(symbols)
        self.memory = {s: SymbolMemory() for s in self.symbols}
        self._chains: dict[str, tuple[str, OptionChain | Absent]] = {}
        self._chains_this_cycle: dict[str, OptionChain | Absent] = {}

    def read(self, now: datetime) -> dict[str, SymbolInputs]:
        self._chains_this_cycle = {}
        self._prime_trades()
        now_s = now.timestamp()
        pipe = self.store.client.pipeline(transaction=False)
        reload = {s: now_s - self.memory[s].bars_loaded_at >= BARS_RELOAD_S for s in self.symbols}
        for sym in self.symbols:
            for key in _hash_keys(sym):
                pipe.hgetall(key.name)
            pipe.get(keys.flow_clusters(sym).name)
            full = reload[sym]
            pipe.lrange(keys.bars_1min(sym).name, -BARS_KEEP if full else -BARS_TAIL, -1)
        for s in self.symbols:  # one XREAD per stream: a Cluster refuses one over two symbols' slots
            pipe.xread({keys.trades(s).name: self.memory[s].trades_since or "0-0"}, count=TRADES_FIRST_READ)
        replies = pipe.execute()
        per = len(HASHES) + 2
        new_trades = self._new_trades([item for reply in replies[per * len(self.symbols):] for item in reply or []])
        out: dict[str, SymbolInputs] = {}
        for i, sym in enumerate(self.symbols):
            r = replies[i * per:(i + 1) * per]
            names = [k.name for k in _hash_keys(sym)]
            mem = self.memory[sym]
            self._merge_bars(sym, r[len(HASHES) + 1], full=reload[sym], now_s=now_s)
            self._merge_trades(sym, new_trades.get(sym, []), now_s)
            vpin = Vpin.from_redis(r[1] or None, key=names[1])
            self._remember_vpin(mem, vpin)
            out[sym] = SymbolInputs(
                sym, _gex(r[0], names[0]), vpin, Imbalance.from_redis(r[2] or None, key=names[2]),
                Regime.from_redis(r[3] or None, key=names[3]),
                FlowClusters.from_redis(r[len(HASHES)], key=keys.flow_clusters(sym).name),
                Quote.from_redis(r[4] or None, key=names[4]), AuctionImbalance.from_redis(r[5] or None, key=names[5]),
                NewsSentiment.from_redis(r[6] or None, key=names[6]), tuple(mem.trades),
                [mem.bars[t] for t in sorted(mem.bars)], tuple(mem.vpin_history))
        return out

    @staticmethod
    def _remember_vpin(mem: SymbolMemory, vpin: Vpin | Absent) -> None:
        """A fresh VPIN reading joins the history ``vpin_change`` reads (once per writer timestamp)."""
        if isinstance(vpin, Absent) or vpin.value is None or vpin.stale_reason:
            return
        if not mem.vpin_history or mem.vpin_history[-1][0] != vpin.as_of:
            mem.vpin_history.append((vpin.as_of, vpin.value))

    def chain(self, symbol: str) -> OptionChain | Absent:
        """The stored chain: one GET per symbol and cycle, decoded again only when `qc chains` rewrote it."""
        if symbol in self._chains_this_cycle:
            return self._chains_this_cycle[symbol]
        self._chains_this_cycle[symbol] = got = self._read_chain(symbol)
        return got

    def _read_chain(self, symbol: str) -> OptionChain | Absent:
        key = keys.option_chain(symbol).name
        raw = self.store.client.get(key)
        if raw is None:
            return Absent(key, "missing (is `qc chains` running?)")
        cached = self._chains.get(symbol)
        if cached is not None and cached[0] == raw:
            return cached[1]
        chain = OptionChain.from_redis(raw, key=key)
        self._chains[symbol] = (raw, chain)
        return chain

    def _prime_trades(self) -> None:
        """At start: the newest prints (the flow window's worth and more), then XREAD from the newest id."""
        for sym in self.symbols:
            mem = self.memory[sym]
            if mem.trades_since is not None:
                continue
            key = keys.trades(sym).name
            entries = self.store.client.xrevrange(key, count=TRADES_FIRST_READ)
            mem.trades_since = str(entries[0][0]) if entries else "0-0"
            rows, rejected = decode_trades(reversed(entries), key=key)
            if rejected:
                log.warning("%s: %d prints dropped (%s)", key, sum(rejected.values()), dict(rejected))
            mem.trades.extend(rows)

    def _new_trades(self, reply: Any) -> dict[str, list[TradeRow]]:
        by_key = {keys.trades(s).name: s for s in self.symbols}
        out: dict[str, list[TradeRow]] = {}
        for name, entries in reply or []:
            sym = by_key[str(name)]
            self.memory[sym].trades_since = str(entries[-1][0])
            rows, rejected = decode_trades(entries, key=str(name))
            if rejected:
                log.warning("%s: %d prints dropped (%s)", name, sum(rejected.values()), dict(rejected))
            out[sym] = rows
        return out

    def _merge_trades(self, symbol: str, rows: list[TradeRow], now_s: float) -> None:
        kept = self.memory[symbol].trades
        kept.extend(rows)
        while kept and kept[0][0] < now_s - KEEP_PRINTS_S:
            kept.popleft()

    def _merge_bars(self, symbol: str, items: list[str], *, full: bool, now_s: float) -> None:
        mem = self.memory[symbol]
        key = keys.bars_1min(symbol).name
        bars, rejected = decode_bars(items, key=key)
        if rejected:
            log.warning("%s: %d bars dropped (%s)", key, sum(rejected.values()), dict(rejected))
        if full:
            mem.bars = {}
            mem.bars_loaded_at = now_s
        mem.bars.update((b.ts, b) for b in bars)
        if len(mem.bars) > BARS_KEEP:
            for t in sorted(mem.bars)[:-BARS_KEEP]:
                del mem.bars[t]


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)
