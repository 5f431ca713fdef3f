"""The one way a stored option chain becomes the library's :class:`Chain`: at the live spot, valued now.

Used by the `qc analytics` worker every 30 s and by `qc gex --expiries` alike, so both give the
same numbers for the same inputs. Why the live spot: the chain is fetched every 5 minutes, but
at 15:59 the distance to zero gamma is what traders watch, so dealer positioning is recomputed
at the quote `qc stream` keeps fresh (mid, else last) and falls back to the chain's own spot, with
the reason, only when that quote is missing or older than :data:`QUOTE_MAX_AGE_S`.

Pure: decoded values and the time in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from qc.analytics.codec import SpotSource
from qc.analytics.exposure import DEALER_CONVENTION, Chain, Convention, GammaSource, chain_at
from qc.analytics.positioning import Positioning, positioning
from qc.core.codec import Absent
from qc.ingest.codec import OptionChain, Quote

QUOTE_MAX_AGE_S = 10.0  # clock seconds: an older quote no longer says where the underlying is
QUOTE_FUTURE_SLACK_S = 5.0  # a quote stamped further ahead than this is a clock problem, not a price
PROFILE_LEVELS = 401  # ±20 % of spot in ~0.1 % steps: the flip lands within a strike step ($1 on SPY)


@dataclass(frozen=True, slots=True)
class Spot:
    """The underlying price positioning is computed at, where it came from, its age and why not the quote."""

    value: float
    source: SpotSource
    age_s: float
    reason: str  # "" when the quote was used


def live_spot(quote: Quote | Absent, chain: OptionChain, now: datetime) -> Spot:
    """The fresh quote's mid (or last), else the chain's spot with the reason the quote was not used."""
    now_epoch = now.timestamp()
    chain_spot = Spot(chain.spot, "chain", max(0.0, now_epoch - chain.as_of_epoch), "")
    if isinstance(quote, Absent):
        return _fallback(chain_spot, f"no usable quote ({quote})")
    age = quote.age_s(now_epoch)
    price = quote.spot
    if price is None:
        return _fallback(chain_spot, "the quote has neither a two-sided market nor a last price")
    if age > QUOTE_MAX_AGE_S:
        return _fallback(chain_spot, f"the quote is {age:.0f} s old (> {QUOTE_MAX_AGE_S:.0f} s)")
    if age < -QUOTE_FUTURE_SLACK_S:
        return _fallback(chain_spot, f"the quote is stamped {-age:.0f} s in the future")
    return Spot(price, "quote", max(0.0, age), "")


def _fallback(chain_spot: Spot, reason: str) -> Spot:
    return Spot(chain_spot.value, chain_spot.source, chain_spot.age_s, reason)


def chain_for_positioning(chain: OptionChain, spot: float, now: datetime) -> Chain:
    """The chain's contracts valued at ``now`` and ``spot``: qc's IV per row (NaN where none), the
    vendor's Greeks beside them for ``gamma_source=vendor``, T and DTE from ``now``."""
    rows = chain.rows

    def column(name: str) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
        return np.array([np.nan if (v := getattr(r, name)) is None else v for r in rows], dtype=np.float64)

    return chain_at(now, spot, column("strike"), np.array([r.expiry for r in rows], dtype="datetime64[D]"),
                    np.array([r.right == "C" for r in rows], dtype=bool), column("iv"), column("open_interest"),
                    rate=chain.rate, div_yield=chain.div_yield, vendor_gamma=column("gamma_vendor"),
                    vendor_delta=column("delta_vendor"))


@dataclass(frozen=True, slots=True)
class LivePositioning:
    """Dealer positioning now, the spot it was computed at, and the valued chain (skew and ATM IV read it)."""

    pos: Positioning
    spot: Spot
    chain: Chain


def positioning_at_live_spot(chain: OptionChain, quote: Quote | Absent, now: datetime, *,
                             convention: Convention = DEALER_CONVENTION,
                             gamma_source: GammaSource = GammaSource.MODEL,
                             max_dte: int | None = None) -> LivePositioning:
    """The worker's computation, and `qc gex --expiries`' (which narrows ``max_dte``)."""
    spot = live_spot(quote, chain, now)
    valued = chain_for_positioning(chain, spot.value, now)
    pos = positioning(valued, convention=convention, gamma_source=gamma_source, max_dte=max_dte,
                      n_levels=PROFILE_LEVELS)
    return LivePositioning(pos, spot, valued)


def positioning_figures(p: Positioning) -> dict[str, float | None]:
    """The headline numbers of the gex contract (``total`` … walls, 0–1 DTE share) from one positioning:
    the one mapping, for the worker's hash and `qc gex`'s recompute alike."""
    zg = p.zero_gamma.level
    return {
        "total": p.gex_usd_per_1pct, "dex_usd": p.dex_usd, "vanna_usd_per_volpt": p.vanna_usd_per_volpt,
        "charm_usd_per_day": p.charm_usd_per_day, "zero_gamma": zg,
        "zero_gamma_distance_pct": None if zg is None else (zg / p.spot - 1.0) * 100.0,
        "call_wall": p.walls.call_gamma_strike, "put_wall": p.walls.put_gamma_strike,
        "call_oi_wall": p.walls.call_oi_strike, "put_oi_wall": p.walls.put_oi_strike,
        "share_0_1dte_abs_gex": p.share_0_1dte_abs_gex}
