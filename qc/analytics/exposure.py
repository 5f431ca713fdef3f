"""Dealer positioning from an option chain: GEX, DEX, vanna and charm exposure, walls, max pain.

Sign convention (the one place qc states it): the modelled dealer book is **long calls, short puts**,
s = +1 for calls and −1 for puts, applied identically to gamma, delta, vanna and charm. Source:
SqueezeMetrics, "Gamma Exposure (GEX)" white paper (squeezemetrics.com/download/white_paper.pdf),
the "naive GEX" of Perfiliev, gex-tracker and TazTheworld. Positive net GEX ⇒ dealers buy dips and
sell rallies. Open interest does not say who is long, so this is a model, and every result names it.
``Convention.CUSTOMER_LONG`` (s = −1 for everything: customers long every contract) is the switch.

Units, per contract (Γ, Δ from BSM with q at spot; vanna per vol point, charm per calendar day, as
``qc.analytics.greeks`` returns them): GEX = s·Γ·OI·M·S²·0.01 ($ per 1 % move), DEX = s·Δ·OI·M·S
($ delta), vanna exposure = s·vanna·OI·M·S ($ delta per vol point), charm exposure =
s·charm·OI·M·S ($ delta per calendar day). M is the contract multiplier; prices (strikes, spot,
levels) are in the underlying's price unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from qc.analytics.greeks import bsm, years_to_expiry
from qc.core.clock import NEW_YORK

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
DateArray = npt.NDArray[np.datetime64]

CONVENTION_SOURCE = "SqueezeMetrics GEX white paper (squeezemetrics.com/download/white_paper.pdf), naive GEX"
GAMMA_WALL_BAND = 0.15
OI_WALL_BAND = 0.30
NEAR_DTE_DAYS = 1


class Convention(Enum):
    """Who the model says is long each contract; the value is the label carried by every result."""

    DEALER_LONG_CALLS_SHORT_PUTS = "dealer_long_calls_short_puts"  # s: call +1, put −1
    CUSTOMER_LONG = "customer_long"  # s = −1 for every contract


DEALER_CONVENTION = Convention.DEALER_LONG_CALLS_SHORT_PUTS


class GammaSource(Enum):
    """Where spot gamma/delta come from; the profile is always re-priced from IV."""

    MODEL = "bsm_from_iv"
    VENDOR = "vendor"


def dealer_sign(is_call: BoolArray, convention: Convention = DEALER_CONVENTION) -> FloatArray:
    """The dealer sign vector s, one entry per contract."""
    if convention is Convention.CUSTOMER_LONG:
        return np.full(is_call.shape, -1.0)
    return np.where(is_call, 1.0, -1.0)


@dataclass(frozen=True)
class Chain:
    """One underlying's option chain as parallel arrays; time is passed in, never read."""

    spot: float
    strike: FloatArray
    expiry: DateArray  # datetime64[D]; ints are read as days since 1970-01-01
    t_years: FloatArray  # to the settlement instant, e.g. greeks.years_to_expiry
    is_call: BoolArray
    iv: FloatArray
    open_interest: FloatArray
    valuation_date: np.datetime64  # the exchange-local trading date, for DTE
    rate: float = 0.0
    div_yield: float = 0.0
    multiplier: float = 100.0
    vendor_gamma: FloatArray | None = None
    vendor_delta: FloatArray | None = None

    def __post_init__(self) -> None:
        """Coerce dtypes once and refuse misaligned arrays, so every later step can trust them."""
        put = object.__setattr__
        for name in ("strike", "t_years", "iv", "open_interest", "vendor_gamma", "vendor_delta"):
            value = getattr(self, name)
            if value is not None:
                put(self, name, np.asarray(value, dtype=np.float64))
        put(self, "is_call", np.asarray(self.is_call, dtype=bool))
        put(self, "expiry", np.asarray(self.expiry).astype("datetime64[D]"))
        put(self, "valuation_date", np.asarray(self.valuation_date).astype("datetime64[D]")[()])
        n = self.strike.shape
        for name in ("expiry", "t_years", "is_call", "iv", "open_interest", "vendor_gamma", "vendor_delta"):
            value = getattr(self, name)
            if value is not None and value.shape != n:
                raise ValueError(f"chain.{name} has shape {value.shape}, strike has {n}")
        for name in ("spot", "rate", "div_yield", "multiplier"):
            put(self, name, float(getattr(self, name)))
        if not (np.isfinite(self.spot) and self.spot > 0 and self.multiplier > 0):
            raise ValueError(f"spot={self.spot}, multiplier={self.multiplier}: both must be positive")

    @property
    def dte(self) -> IntArray:
        """Calendar days from the valuation date to each expiry date."""
        days: IntArray = (self.expiry - self.valuation_date).astype(np.int64)
        return days


def chain_at(
    now: datetime, spot: float, strike: npt.ArrayLike, expiry: npt.ArrayLike, is_call: npt.ArrayLike,
    iv: npt.ArrayLike, open_interest: npt.ArrayLike, **extra: Any,
) -> Chain:
    """Build a Chain valued at ``now``: T to each expiry's settlement instant, DTE from New York's date.

    ``extra`` passes rate, div_yield, multiplier, vendor_gamma, vendor_delta through to Chain.
    """
    days = np.asarray(expiry).astype("datetime64[D]")
    today = np.datetime64(now.astimezone(NEW_YORK).date(), "D")
    return Chain(spot, np.asarray(strike, dtype=np.float64), days, years_to_expiry(now, days),
                 np.asarray(is_call, dtype=bool), np.asarray(iv, dtype=np.float64),
                 np.asarray(open_interest, dtype=np.float64), today, **extra)


@dataclass(frozen=True)
class ContractExposures:
    """Per kept contract: its row in the chain, sign and the four dollar exposures."""

    index: IntArray
    sign: FloatArray
    gex_usd_per_1pct: FloatArray
    dex_usd: FloatArray
    vanna_usd_per_volpt: FloatArray
    charm_usd_per_day: FloatArray


@dataclass(frozen=True)
class ByStrike:
    """Exposures summed across the selected expiries, one row per strike (ascending).

    ``call_gamma``/``put_gamma`` are unsigned Γ·OI·M·S²·0.01 of that side: what walls rank.
    """

    strike: FloatArray
    gex_usd_per_1pct: FloatArray
    call_gamma_usd_per_1pct: FloatArray
    put_gamma_usd_per_1pct: FloatArray
    dex_usd: FloatArray
    vanna_usd_per_volpt: FloatArray
    charm_usd_per_day: FloatArray
    call_open_interest: FloatArray
    put_open_interest: FloatArray


@dataclass(frozen=True)
class ByExpiry:
    """Exposures per expiry (ascending), with that expiry's max-pain strike (None: no OI)."""

    expiry: DateArray
    dte_days: IntArray
    gex_usd_per_1pct: FloatArray
    dex_usd: FloatArray
    vanna_usd_per_volpt: FloatArray
    charm_usd_per_day: FloatArray
    max_pain_strike: tuple[float | None, ...]


@dataclass(frozen=True)
class Walls:
    """Gamma walls (largest call Γ$ at/above spot, largest put Γ$ at/below) and OI walls, apart."""

    call_gamma_strike: float | None
    put_gamma_strike: float | None
    call_oi_strike: float | None
    put_oi_strike: float | None
    gamma_band_pct: float
    oi_band_pct: float


def select_contracts(chain: Chain, gamma_source: GammaSource, max_dte: int | None) -> tuple[BoolArray, dict[str, int]]:
    """Which rows survive, and how many were dropped for each reason (first failing reason counts)."""
    t, iv, oi = chain.t_years, chain.iv, chain.open_interest
    tests: list[tuple[str, BoolArray]] = [
        ("strike_invalid", ~(np.isfinite(chain.strike) & (chain.strike > 0))),
        ("t_years_invalid", ~np.isfinite(t)),
        ("expired", t <= 0),
        ("iv_missing", ~(np.isfinite(iv) & (iv > 0))),
        ("open_interest_nonpositive", ~(np.isfinite(oi) & (oi > 0))),
    ]
    if gamma_source is GammaSource.VENDOR:
        assert chain.vendor_gamma is not None
        tests.append(("vendor_gamma_missing", ~np.isfinite(chain.vendor_gamma)))
    if max_dte is not None:
        tests.append(("outside_dte_window", chain.dte > max_dte))
    keep = np.ones(chain.strike.shape, dtype=bool)
    dropped: dict[str, int] = {}
    for reason, bad in tests:
        dropped[reason] = int(np.count_nonzero(bad & keep))
        keep &= ~bad
    return keep, dropped


def contract_exposures(
    chain: Chain, keep: BoolArray, convention: Convention, gamma_source: GammaSource,
) -> ContractExposures:
    """GEX/DEX/vanna/charm in dollars for the kept rows, Greeks from BSM with q at spot."""
    idx = np.flatnonzero(keep)
    s, spot = dealer_sign(chain.is_call[idx], convention), chain.spot
    g = bsm(spot, chain.strike[idx], chain.t_years[idx], chain.rate, chain.div_yield,
            chain.iv[idx], chain.is_call[idx])
    gamma, delta = g.gamma, g.delta
    if gamma_source is GammaSource.VENDOR:
        assert chain.vendor_gamma is not None
        gamma = chain.vendor_gamma[idx]
        if chain.vendor_delta is not None:
            delta = chain.vendor_delta[idx]
    w = s * chain.open_interest[idx] * chain.multiplier * spot  # dollars per unit of dealer delta
    return ContractExposures(idx.astype(np.int64), s, w * gamma * spot * 0.01, w * delta,
                             w * g.vanna, w * g.charm)


def _sum_by(inverse: IntArray, n: int, values: FloatArray) -> FloatArray:
    return np.asarray(np.bincount(inverse, weights=values, minlength=n), dtype=np.float64)


def by_strike(chain: Chain, cx: ContractExposures) -> ByStrike:
    """Sum the kept contracts' exposures by strike across every selected expiry."""
    strikes, inv = np.unique(chain.strike[cx.index], return_inverse=True)
    n, call = strikes.size, chain.is_call[cx.index]
    gamma_abs = cx.gex_usd_per_1pct * cx.sign  # unsigned Γ·OI·M·S²·0.01 (s² = 1)
    oi = chain.open_interest[cx.index]
    return ByStrike(
        strikes, _sum_by(inv, n, cx.gex_usd_per_1pct),
        _sum_by(inv, n, np.where(call, gamma_abs, 0.0)), _sum_by(inv, n, np.where(call, 0.0, gamma_abs)),
        _sum_by(inv, n, cx.dex_usd), _sum_by(inv, n, cx.vanna_usd_per_volpt),
        _sum_by(inv, n, cx.charm_usd_per_day),
        _sum_by(inv, n, np.where(call, oi, 0.0)), _sum_by(inv, n, np.where(call, 0.0, oi)),
    )


def max_pain(strike: FloatArray, is_call: BoolArray, open_interest: FloatArray, spot: float) -> float | None:
    """Listed strike X minimising Σ_calls OI·(X−K)⁺ + Σ_puts OI·(K−X)⁺ of one expiry; ties → nearer spot.

    The multiplier scales every candidate alike, so it is left out. O(n log n) via cumulative sums.
    """
    ks, inv = np.unique(strike, return_inverse=True)
    if ks.size == 0 or not np.any(open_interest > 0):
        return None
    c_oi = np.bincount(inv, weights=np.where(is_call, open_interest, 0.0), minlength=ks.size)
    p_oi = np.bincount(inv, weights=np.where(is_call, 0.0, open_interest), minlength=ks.size)
    calls = ks * np.cumsum(c_oi) - np.cumsum(c_oi * ks)
    puts = np.cumsum((p_oi * ks)[::-1])[::-1] - ks * np.cumsum(p_oi[::-1])[::-1]
    pain = calls + puts
    best = ks[pain == pain.min()]
    return float(best[np.argmin(np.abs(best - spot))])


def by_expiry(chain: Chain, cx: ContractExposures) -> ByExpiry:
    """Sum exposures per expiry and find each expiry's max pain (never mixed across expiries)."""
    expiries, inv = np.unique(chain.expiry[cx.index], return_inverse=True)
    n = expiries.size
    k, c, oi = chain.strike[cx.index], chain.is_call[cx.index], chain.open_interest[cx.index]
    order = np.argsort(inv, kind="stable")
    cuts = np.searchsorted(inv[order], np.arange(n + 1))
    rows = [order[lo:hi] for lo, hi in pairwise(cuts)]
    pains = tuple(max_pain(k[r], c[r], oi[r], chain.spot) for r in rows)
    return ByExpiry(
        expiries, (expiries - chain.valuation_date).astype(np.int64),
        _sum_by(inv, n, cx.gex_usd_per_1pct), _sum_by(inv, n, cx.dex_usd),
        _sum_by(inv, n, cx.vanna_usd_per_volpt), _sum_by(inv, n, cx.charm_usd_per_day), pains,
    )


def _wall(strikes: FloatArray, values: FloatArray, spot: float, band: float, above: bool) -> float | None:
    side = strikes >= spot if above else strikes <= spot
    ok = side & (np.abs(strikes / spot - 1.0) <= band) & (values > 0)
    if not ok.any():
        return None
    k, v = strikes[ok], values[ok]
    best = k[v == v.max()]
    return float(best[np.argmin(np.abs(best - spot))])


def walls(
    bs: ByStrike, spot: float, gamma_band: float = GAMMA_WALL_BAND, oi_band: float = OI_WALL_BAND,
) -> Walls:
    """Call wall: strike ≥ spot with the largest call Γ$; put wall: ≤ spot with the largest put Γ$.

    Both rank unsigned gamma exposure Γ·OI·M·S²·0.01 of that side only, summed by strike over the
    selected expiries (so the convention cannot move them), within ±band of spot; ties go to the
    strike nearer spot; None when that side has no positive exposure. Net GEX by strike would put
    the golden chain's call wall at 29,700; this ranking gives the reference's 29,600 / 28,900.
    OI walls rank raw call/put open interest the same way, within their own (wider) band.
    """
    return Walls(
        _wall(bs.strike, bs.call_gamma_usd_per_1pct, spot, gamma_band, above=True),
        _wall(bs.strike, bs.put_gamma_usd_per_1pct, spot, gamma_band, above=False),
        _wall(bs.strike, bs.call_open_interest, spot, oi_band, above=True),
        _wall(bs.strike, bs.put_open_interest, spot, oi_band, above=False),
        100.0 * gamma_band, 100.0 * oi_band,
    )


def near_share(per_expiry: FloatArray, dte_days: IntArray, max_days: int = NEAR_DTE_DAYS) -> float | None:
    """Σ|net per expiry| over expiries with DTE ≤ max_days, over Σ|net per expiry|; None if all zero.

    Equals TazTheworld's |near net| / |total net| when every expiry has the same sign, and unlike it
    stays within [0, 1] when expiries offset.
    """
    total = float(np.abs(per_expiry).sum())
    if total == 0.0:
        return None
    return float(np.abs(per_expiry[dte_days <= max_days]).sum()) / total
