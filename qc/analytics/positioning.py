"""The dealer-positioning snapshot: every figure of ``exposure`` and ``profile`` for one chain, labelled.

A ``Positioning`` carries, beside its numbers, every choice that moves them (convention, gamma
source, expiries used, DTE window, dropped contracts), because numbers without their inputs are
how public GEX tools mislead (reference §3.2). ``to_dict`` is the JSON/Redis form, units in names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Any

import numpy as np

from qc.analytics.exposure import (
    CONVENTION_SOURCE,
    DEALER_CONVENTION,
    GAMMA_WALL_BAND,
    OI_WALL_BAND,
    ByExpiry,
    ByStrike,
    Chain,
    ContractExposures,
    Convention,
    DateArray,
    GammaSource,
    Walls,
    by_expiry,
    by_strike,
    contract_exposures,
    near_share,
    select_contracts,
    walls,
)
from qc.analytics.profile import (
    DEFAULT_HALF_RANGE,
    DEFAULT_LEVELS,
    GammaProfile,
    ZeroGamma,
    gamma_profile,
    spot_levels,
    zero_gamma,
)


@dataclass(frozen=True)
class Positioning:
    """A dealer-positioning snapshot, labelled with every choice that moves its numbers."""

    spot: float
    multiplier: float
    convention: Convention
    convention_source: str
    gamma_source: GammaSource
    delta_source: GammaSource
    profile_gamma_source: str
    expiries_used: DateArray
    max_dte_days: int | None
    contracts_used: int
    dropped: Mapping[str, int]
    gex_usd_per_1pct: float
    dex_usd: float
    vanna_usd_per_volpt: float
    charm_usd_per_day: float
    by_strike: ByStrike
    by_expiry: ByExpiry
    profile: GammaProfile
    zero_gamma: ZeroGamma
    walls: Walls
    share_0_1dte_abs_gex: float | None
    share_0_1dte_abs_charm: float | None
    contracts: ContractExposures = field(repr=False)

    def to_dict(self, include_contracts: bool = False) -> dict[str, Any]:
        """JSON-ready dict: snake_case keys with units, lists for arrays, ISO dates, NaN → None."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "contracts"}
        if include_contracts:
            out["contracts"] = _plain(self.contracts)
        return out


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return value.astype("datetime64[D]").astype(str).tolist()
        return [_finite(v) for v in value.tolist()]  # tolist: one C pass, not a Python call per item
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, np.datetime64):
        return str(value.astype("datetime64[D]"))
    return _finite(value.item() if isinstance(value, np.generic) else value)


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def positioning(
    chain: Chain, *, convention: Convention = DEALER_CONVENTION,
    gamma_source: GammaSource = GammaSource.MODEL, max_dte: int | None = None,
    n_levels: int = DEFAULT_LEVELS, half_range: float = DEFAULT_HALF_RANGE,
    gamma_band: float = GAMMA_WALL_BAND, oi_band: float = OI_WALL_BAND,
) -> Positioning:
    """Compute the full dealer-positioning snapshot of one chain under one convention."""
    if gamma_source is GammaSource.VENDOR and chain.vendor_gamma is None:
        raise ValueError("gamma_source=vendor needs chain.vendor_gamma")
    keep, dropped = select_contracts(chain, gamma_source, max_dte)
    cx = contract_exposures(chain, keep, convention, gamma_source)
    bs, be = by_strike(chain, cx), by_expiry(chain, cx)
    levels = spot_levels(chain.spot, half_range, n_levels)
    i = cx.index
    weight = cx.sign * chain.open_interest[i] * chain.multiplier
    prof = gamma_profile(levels, chain.strike[i], chain.t_years[i], chain.iv[i], weight,
                         chain.rate, chain.div_yield)
    zg = zero_gamma(levels, prof, chain.spot) if i.size else ZeroGamma(None, (), "no contracts left")
    vendor_delta = gamma_source is GammaSource.VENDOR and chain.vendor_delta is not None
    delta_source = GammaSource.VENDOR if vendor_delta else GammaSource.MODEL
    return Positioning(
        chain.spot, chain.multiplier, convention, CONVENTION_SOURCE, gamma_source, delta_source,
        "bsm_from_iv_sticky_strike", be.expiry, max_dte, int(i.size), dropped,
        float(cx.gex_usd_per_1pct.sum()), float(cx.dex_usd.sum()), float(cx.vanna_usd_per_volpt.sum()),
        float(cx.charm_usd_per_day.sum()), bs, be, GammaProfile(levels, prof), zg,
        walls(bs, chain.spot, gamma_band, oi_band),
        near_share(be.gex_usd_per_1pct, be.dte_days), near_share(be.charm_usd_per_day, be.dte_days), cx,
    )
