"""Dollar Greeks of positions and orders, per underlying and per strategy bucket, with qc's own BSM.

Pure. Greeks come from ``qc.analytics.greeks.bsm`` at the underlying's live spot, the contract's
own implied vol, the underlying's rate and yield, and T measured to the expiry's exact settlement
instant (the XNYS close of the expiry day, 13:00 New York on an early close). Shares have delta 1
and no other Greek.

Units, stated once (S = spot in $, m = multiplier, q = signed quantity, Greeks in qc's units):

=====  =========================================  ========================================
delta  $ per 1 % move of the underlying           Δ × m × q × S × 0.01
gamma  $ of delta per 1 % move, per 1 % move      Γ × m × q × (S × 0.01)²
vega   $ per vol point (σ + 0.01)                 vega × m × q   (qc's vega is per point)
charm  $ of delta (per 1 %) per calendar day      charm × m × q × S × 0.01
=====  =========================================  ========================================

So gamma is how much the $ delta changes when the underlying moves 1 %, and charm how much it
drifts in a day with spot still. A settled contract (T ≤ 0) has no Greeks left: zeros. A contract
that cannot be priced (no spot, no quote, no positive IV) has ``None`` Greeks; its underlying and
bucket are recorded as **unpriced** so the check can refuse to add risk it cannot see.

:class:`PortfolioExposure` is everything the pre-trade check derives from the positions, built
once per market snapshot (one vectorised BSM call) and cached by the caller, so a check only adds
the order's Greeks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

import numpy as np

from qc.analytics.greeks import SECONDS_PER_YEAR, bsm, bsm_one
from qc.core.clock import settlement_instant
from qc.risk.model import BUCKETS, Bucket, ContractKey, MarketSnapshot, Position

ONE_PCT = 0.01
VECTORISE_FROM = 16  # options priced at once: below, one float call each beats numpy's overhead (bench_risk)


@dataclass(frozen=True, slots=True)
class DollarGreeks:
    """Dollar delta, gamma, vega and charm in the module's units; addable and scalable."""

    delta: float = 0.0
    gamma: float = 0.0
    vega: float = 0.0
    charm: float = 0.0

    def __add__(self, other: DollarGreeks) -> DollarGreeks:
        return DollarGreeks(self.delta + other.delta, self.gamma + other.gamma, self.vega + other.vega,
                            self.charm + other.charm)

    def scaled(self, quantity: float) -> DollarGreeks:
        return DollarGreeks(self.delta * quantity, self.gamma * quantity, self.vega * quantity,
                            self.charm * quantity)


ZERO = DollarGreeks()
GREEKS: tuple[str, ...] = ("delta", "gamma", "vega", "charm")


@functools.lru_cache(maxsize=4096)
def settles(expiry: date) -> datetime:
    """``qc.core.clock.settlement_instant``, cached: its calendar lookup costs ~10 µs of a 200 µs budget."""
    return settlement_instant(expiry)


def years_to_settlement(now: datetime, expiry: date) -> float:
    """T in years to the expiry's settlement instant: ``qc.analytics.greeks.years_to_expiry``, cached."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be tz-aware, got naive {now!r}")
    return (settles(expiry) - now).total_seconds() / SECONDS_PER_YEAR


def unit_greeks(contracts: Iterable[ContractKey], market: MarketSnapshot,
                now: datetime) -> dict[ContractKey, DollarGreeks | None]:
    """Dollar Greeks of +1 unit (one contract, or one share) of each instrument; None where unpriceable.

    The options go through one vectorised ``bsm`` call, or, fewer than :data:`VECTORISE_FROM` of
    them (an order being checked), through ``bsm_one`` each: same closed forms, no numpy overhead.
    """
    out: dict[ContractKey, DollarGreeks | None] = {}
    rows: list[ContractKey] = []
    cols: list[tuple[float, float, float, float, float, float]] = []
    for key in dict.fromkeys(contracts):
        und = market.underlyings.get(key.underlying)
        if und is None or not (math.isfinite(und.spot) and und.spot > 0):
            out[key] = None
        elif key.sec_type == "STK":
            out[key] = DollarGreeks(delta=key.multiplier * und.spot * ONE_PCT)
        else:
            assert key.expiry is not None and key.strike is not None
            t = years_to_settlement(now, key.expiry)
            quote = market.quotes.get(key)
            if t <= 0:
                out[key] = ZERO  # settled: nothing left to move
            elif quote is None or quote.iv is None or not (math.isfinite(quote.iv) and quote.iv > 0):
                out[key] = None
            else:
                rows.append(key)
                cols.append((und.spot, key.strike, t, und.rate, und.div_yield, quote.iv))
    if rows and len(rows) < VECTORISE_FROM:  # an order or two: plain floats, no numpy call overhead
        for key, (spot, strike, t, rate, div_yield, iv) in zip(rows, cols, strict=True):
            one = bsm_one(spot, strike, t, rate, div_yield, iv, key.right == "C")
            mult = key.multiplier
            values = (() if one is None else
                      (one.delta * mult * spot * ONE_PCT, one.gamma * mult * (spot * ONE_PCT) ** 2, one.vega * mult,
                       one.charm * mult * spot * ONE_PCT))
            out[key] = DollarGreeks(*values) if values and all(math.isfinite(v) for v in values) else None
    elif rows:
        s, k, years, r, q, vol = (np.array(col, dtype=np.float64) for col in zip(*cols, strict=True))
        is_call = np.array([key.right == "C" for key in rows])
        g = bsm(s, k, years, r, q, vol, is_call)
        m = np.array([key.multiplier for key in rows], dtype=np.float64)
        d_usd = (g.delta * m * s * ONE_PCT).tolist()
        g_usd = (g.gamma * m * (s * ONE_PCT) ** 2).tolist()
        v_usd = (g.vega * m).tolist()
        c_usd = (g.charm * m * s * ONE_PCT).tolist()
        for i, key in enumerate(rows):
            values = (d_usd[i], g_usd[i], v_usd[i], c_usd[i])
            out[key] = DollarGreeks(*values) if all(math.isfinite(v) for v in values) else None
    return out


def dollar_greeks(contract: ContractKey, quantity: float, market: MarketSnapshot,
                  now: datetime) -> DollarGreeks | None:
    """Dollar Greeks of a signed ``quantity`` of one instrument (a position, or an order's signed size)."""
    unit = unit_greeks((contract,), market, now)[contract]
    return None if unit is None else unit.scaled(quantity)


@dataclass(frozen=True, slots=True)
class PortfolioExposure:
    """What the positions add up to at one snapshot: cache it per snapshot; ``check`` only adds the order.

    ``position`` is the net signed quantity per instrument (positions of one instrument in several
    buckets summed); ``gross_per_underlying`` is Σ |contract equivalents| per underlying. Unpriced
    positions add nothing to the sums and mark their underlying and bucket in ``unpriced_*``.
    """

    as_of: datetime
    per_underlying: Mapping[str, DollarGreeks]
    per_bucket: Mapping[str, DollarGreeks]
    unit: Mapping[ContractKey, DollarGreeks | None]
    position: Mapping[ContractKey, int]
    gross_per_underlying: Mapping[str, float]
    unpriced_underlyings: frozenset[str]
    unpriced_buckets: frozenset[str]

    def underlying(self, name: str) -> DollarGreeks:
        return self.per_underlying.get(name, ZERO)

    def bucket(self, name: str) -> DollarGreeks:
        return self.per_bucket.get(name, ZERO)


def portfolio_exposure(positions: Iterable[Position], market: MarketSnapshot, now: datetime,
                       extra: Iterable[ContractKey] = ()) -> PortfolioExposure:
    """The positions' dollar Greeks per underlying and per bucket at ``now`` on ``market``.

    ``extra`` instruments (say the chain's candidates) are priced into ``unit`` too, so a check of
    an order in one of them needs no BSM call of its own.
    """
    held = tuple(positions)
    unit = unit_greeks([*(p.contract for p in held), *extra], market, now)
    per_underlying: dict[str, DollarGreeks] = {}
    per_bucket: dict[str, DollarGreeks] = {}
    position: dict[ContractKey, int] = {}
    unpriced_und: set[str] = set()
    unpriced_bucket: set[str] = set()
    for p in held:
        position[p.contract] = position.get(p.contract, 0) + p.quantity
        greeks = unit[p.contract]
        if greeks is None:
            if p.quantity:
                unpriced_und.add(p.contract.underlying)
                unpriced_bucket.add(p.bucket)
            continue
        exposure = greeks.scaled(p.quantity)
        per_underlying[p.contract.underlying] = per_underlying.get(p.contract.underlying, ZERO) + exposure
        per_bucket[p.bucket] = per_bucket.get(p.bucket, ZERO) + exposure
    gross: dict[str, float] = {}
    for key, qty in position.items():
        gross[key.underlying] = gross.get(key.underlying, 0.0) + abs(key.equivalents(qty))
    return PortfolioExposure(now, MappingProxyType(per_underlying), MappingProxyType(per_bucket),
                             MappingProxyType(unit), MappingProxyType(position), MappingProxyType(gross),
                             frozenset(unpriced_und), frozenset(unpriced_bucket))


@dataclass(frozen=True, slots=True)
class PostTrade:
    """Before and after one order, for its underlying and its bucket (``None`` Greeks: the order is unpriced)."""

    underlying_before: DollarGreeks
    bucket_before: DollarGreeks
    order: DollarGreeks | None

    @property
    def underlying_after(self) -> DollarGreeks | None:
        return None if self.order is None else self.underlying_before + self.order

    @property
    def bucket_after(self) -> DollarGreeks | None:
        return None if self.order is None else self.bucket_before + self.order


def post_trade(exposure: PortfolioExposure, contract: ContractKey, signed_quantity: float, bucket: Bucket,
               market: MarketSnapshot, now: datetime) -> PostTrade:
    """Current exposure plus the order's: the order's unit Greeks from the cache, else priced at ``now``."""
    if bucket not in BUCKETS:
        raise ValueError(f"bucket: must be one of {', '.join(BUCKETS)}, got {bucket!r}")
    unit = exposure.unit[contract] if contract in exposure.unit else unit_greeks((contract,), market, now)[contract]
    order = None if unit is None else unit.scaled(signed_quantity)
    return PostTrade(exposure.underlying(contract.underlying), exposure.bucket(bucket), order)
