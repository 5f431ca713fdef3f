"""The market as risk sees it: one :class:`~qc.risk.model.MarketSnapshot` from what ingestion and analytics stored.

Pure: decoded values in (through their owners' codecs), the snapshot out, ``now`` passed in.

- Spot is the live quote's (mid, else last); its age is the quote's. Without a usable quote the
  chain's spot is used and the spot's age is the chain's, so a stale chain can never pass for a
  live price.
- A contract's quote (bid, ask, mark, IV) comes from the option chain; its age is the chain's.
  Alpha Vantage refreshes chains every 5 minutes, so these quotes are good for marks and Greeks,
  not for pricing an order: `qc execute` replaces them with IB's live quote before it asks the
  pre-trade check (STALE_QUOTE refuses anything older than ``stale_quote_s``).
- The analytics age is dealer positioning's (``analytics:{sym}:gex``); missing analytics make it
  infinite, and so does a missing chain for the chain age.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from qc.analytics.codec import GexSnapshot, Vpin
from qc.core.codec import Absent
from qc.ingest.codec import OptionChain, Quote
from qc.risk.model import ContractKey, ContractQuote, MarketSnapshot, UnderlyingQuote

INF = math.inf


@dataclass(frozen=True, slots=True)
class UnderlyingInputs:
    """What one underlying's stored values decoded to (Absent where missing or unreadable)."""

    quote: Quote | Absent
    gex: GexSnapshot | Absent
    vpin: Vpin | Absent
    chain: OptionChain | Absent

    @property
    def zero_gamma(self) -> float | None:
        if isinstance(self.gex, Absent) or self.gex.stale_reason:
            return None
        level = self.gex.numbers.get("zero_gamma")
        return level if level is not None and math.isfinite(level) and level > 0 else None

    @property
    def vpin_value(self) -> float | None:
        if isinstance(self.vpin, Absent) or self.vpin.stale_reason:
            return None
        return self.vpin.value


def _underlying(inputs: UnderlyingInputs, now: datetime) -> UnderlyingQuote | None:
    now_s = now.timestamp()
    chain = inputs.chain if isinstance(inputs.chain, OptionChain) else None
    chain_age = (now - chain.as_of).total_seconds() if chain is not None else INF
    spot, spot_age = None, INF
    if isinstance(inputs.quote, Quote) and inputs.quote.spot is not None and inputs.quote.spot > 0:
        spot, spot_age = inputs.quote.spot, inputs.quote.age_s(now_s)
    elif chain is not None and chain.spot > 0:
        spot, spot_age = chain.spot, chain_age
    if spot is None:
        return None
    analytics_age = (now - inputs.gex.as_of).total_seconds() if isinstance(inputs.gex, GexSnapshot) else INF
    rate, div_yield = (chain.rate, chain.div_yield) if chain is not None else (0.0, 0.0)
    return UnderlyingQuote(spot, spot_age, analytics_age, chain_age, rate, div_yield)


def snapshot(inputs: Mapping[str, UnderlyingInputs], contracts: Iterable[ContractKey],
             now: datetime) -> MarketSnapshot:
    """Underlyings' spots and ages, and the chain's quote of every option in ``contracts`` it lists."""
    underlyings: dict[str, UnderlyingQuote] = {}
    for symbol, decoded in inputs.items():
        und = _underlying(decoded, now)
        if und is not None:
            underlyings[symbol] = und
    wanted: dict[str, set[ContractKey]] = {}
    for key in contracts:
        if key.sec_type == "OPT":
            wanted.setdefault(key.underlying, set()).add(key)
    quotes: dict[ContractKey, ContractQuote] = {}
    for symbol, keys_wanted in wanted.items():
        got = inputs.get(symbol)
        if got is None or not isinstance(got.chain, OptionChain):
            continue
        chain = got.chain
        age = (now - chain.as_of).total_seconds()
        index = {(k.expiry, k.right, k.strike): k for k in keys_wanted}
        for row in chain.rows:
            held = index.get((row.expiry, row.right, row.strike))
            if held is not None:
                quotes[held] = ContractQuote(row.bid, row.ask, row.mark, row.iv, age)
    return MarketSnapshot(underlyings, quotes)
