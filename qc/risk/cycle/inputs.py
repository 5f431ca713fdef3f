"""What one risk cycle reads, through the owners' codecs: positions, quotes, positioning, VPIN, chains, new signals.

Positions are found by SCAN (the executor writes one hash per contract); everything per underlying
comes in one pipelined round trip. A chain (the one large value, ~1 MB) is fetched only when the stamp
`qc chains` writes after storing it has moved (or when no stamp exists: a chain written by hand), and
decoded again only when its text changed. New signals are read from ``signals:{execution}:SYM`` with XREAD from the
last id seen (no consumer group: the executor owns that stream's group; risk only looks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from qc.analytics.codec import GexPending, Vpin, gex_from_redis
from qc.core import keys
from qc.core.codec import Absent
from qc.ingest.codec import OptionChain, Quote
from qc.risk.market import UnderlyingInputs
from qc.risk.position_codec import PositionRecord, position_from_redis
from qc.runtime.codec import AlphaVantageMetrics, IbkrConnected
from qc.runtime.store import Store
from qc.signals.codec import Signal

log = logging.getLogger(__name__)
SCAN_COUNT = 500
SIGNALS_PER_READ = 100


class RiskInputs:
    """Reads the cycle's inputs; keeps decoded chains and the signal streams' positions between cycles."""

    def __init__(self, store: Store, account: str) -> None:
        self.store, self.account = store, account
        self._chains: dict[str, tuple[str, OptionChain | Absent]] = {}
        self._chain_stamps: dict[str, str] = {}  # symbol -> the stamp its cached chain was fetched under
        self._signals_since: dict[str, str] = {}
        self.unreadable = 0  # values refused so far (positions, signals): counted, logged, skipped

    def positions(self) -> list[PositionRecord]:
        names = sorted(self.store.client.scan_iter(match=keys.position_open_pattern(self.account),
                                                   count=SCAN_COUNT))
        pipe = self.store.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(name)
        out: list[PositionRecord] = []
        for name, fields in zip(names, pipe.execute(), strict=True):
            got = position_from_redis(fields, key=name)
            if isinstance(got, Absent):
                if fields:  # vanished between SCAN and HGETALL: closed, not garbage
                    self.unreadable += 1
                    log.error("position skipped: %s", got)
                continue
            out.append(got)
        return out

    def underlyings(self, symbols: Iterable[str]) -> dict[str, UnderlyingInputs]:
        wanted = sorted(set(symbols))
        metrics = keys.alpha_vantage_metrics().name
        pipe = self.store.client.pipeline(transaction=False)
        for sym in wanted:
            pipe.hgetall(keys.quote(sym).name)
            pipe.hgetall(keys.gex(sym).name)
            pipe.hgetall(keys.vpin(sym).name)
            pipe.hget(metrics, AlphaVantageMetrics.chain_stamp_field(sym))
            pipe.exists(keys.option_chain(sym).name)
        replies = pipe.execute()
        stamps = {sym: replies[5 * i + 3] for i, sym in enumerate(wanted)}
        chains = self._fetch_chains([s for s in wanted if stamps[s] is None or stamps[s] != self._chain_stamps.get(s)])
        out: dict[str, UnderlyingInputs] = {}
        for i, sym in enumerate(wanted):
            quote_raw, gex_raw, vpin_raw, stamp, exists = replies[5 * i:5 * i + 5]
            if sym in chains:
                chain_raw = chains[sym]
                if stamp is not None and chain_raw is not None:
                    self._chain_stamps[sym] = stamp  # set before the chain it names: never newer than it
            else:
                chain_raw = self._chains[sym][0] if exists and sym in self._chains else None
            gex_key = keys.gex(sym).name
            gex = gex_from_redis(gex_raw or None, key=gex_key)
            out[sym] = UnderlyingInputs(
                Quote.from_redis(quote_raw or None, key=keys.quote(sym).name),
                Absent(gex_key, f"no positioning yet: {gex.reason}") if isinstance(gex, GexPending) else gex,
                Vpin.from_redis(vpin_raw or None, key=keys.vpin(sym).name),
                self._chain(sym, chain_raw))
        return out

    def _fetch_chains(self, symbols: list[str]) -> dict[str, str | None]:
        if not symbols:
            return {}
        pipe = self.store.client.pipeline(transaction=False)
        for sym in symbols:
            pipe.get(keys.option_chain(sym).name)
        return dict(zip(symbols, pipe.execute(), strict=True))

    def _chain(self, symbol: str, raw: str | None) -> OptionChain | Absent:
        key = keys.option_chain(symbol).name
        if raw is None:
            return Absent(key, "missing (is `qc chains` running?)")
        cached = self._chains.get(symbol)
        if cached is not None and cached[0] == raw:
            return cached[1]
        chain = OptionChain.from_redis(raw, key=key)
        self._chains[symbol] = (raw, chain)
        return chain

    def new_signals(self, symbols: Sequence[str]) -> list[Signal]:
        """Signals published since the last call (on the first call: since now; history is not re-judged)."""
        if not self._signals_since:
            pipe = self.store.client.pipeline(transaction=False)
            for sym in symbols:
                pipe.xrevrange(keys.signals_execution(sym).name, count=1)
            for sym, last in zip(symbols, pipe.execute(), strict=True):
                self._signals_since[sym] = last[0][0] if last else "0-0"
            return []
        streams = {keys.signals_execution(s).name: self._signals_since.get(s, "0-0") for s in symbols}
        reply = self.store.xread_each(streams, count=SIGNALS_PER_READ)
        by_stream = {keys.signals_execution(s).name: s for s in symbols}
        out: list[Signal] = []
        for stream, entries in reply:
            sym = by_stream[stream]
            for entry_id, fields in entries:
                self._signals_since[sym] = entry_id
                signal = Signal.from_redis(fields.get("signal"), key=f"{stream}#{entry_id}")
                if isinstance(signal, Absent):
                    self.unreadable += 1
                    log.error("signal skipped: %s", signal)
                    continue
                out.append(signal)
        return out

    def reject_times(self, since: datetime) -> list[datetime]:
        """When orders failed or were rejected since ``since`` (the executor logs them by time)."""
        members = self.store.client.zrangebyscore(keys.orders_failed_log().name, since.timestamp(), "+inf",
                                                  withscores=True)
        return [datetime.fromtimestamp(score, tz=timezone.utc) for _, score in members]

    def broker_connected(self) -> bool | None:
        """IB connectivity as ingestion reports it; None when nothing says (stream not running)."""
        key = keys.ibkr_connected()
        got = IbkrConnected.from_redis(self.store.get(key), key=key.name)
        return got.connected if isinstance(got, IbkrConnected) else None
