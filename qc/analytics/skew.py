"""0DTE skew of one expiry: 25Δ risk reversal in delta, normalised by ATM IV, and a moneyness variant.

Definitions (reference §4), vols as decimals, positive when puts are richer than calls:

- ``skew_25d`` = IV(25Δ put) − IV(25Δ call), the OptionMetrics 0DTE skew. Each IV is interpolated
  linearly *in delta* between the two quoted strikes whose BSM deltas (from their own IVs, qc's T)
  bracket −0.25 (puts) or +0.25 (calls).
- ``normalised_25d`` = skew_25d / IV_ATM (Mixon), with IV_ATM = the call IV interpolated in delta at
  +0.50 (Mixon's IV50Δ), so it compares across vol regimes.
- ``moneyness_skew`` = IV(K/S = 0.99) − IV(K/S = 1.01), each interpolated linearly *in strike* on
  the out-of-the-money side (put IVs below spot, call IVs above). Late on expiry day the 25Δ
  strikes run into spot; fixed moneyness keeps a stable reading.

Nothing is extrapolated: a target outside the quoted strikes gives None and a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from qc.analytics.exposure import Chain
from qc.analytics.greeks import bsm

FloatArray = npt.NDArray[np.float64]

WING_DELTA = 0.25
ATM_DELTA = 0.50
MONEYNESS_LOW = 0.99
MONEYNESS_HIGH = 1.01


@dataclass(frozen=True)
class ZeroDteSkew:
    """Skew figures of one expiry; a None figure comes with the reason in ``reasons``."""

    iv_25d_put: float | None
    iv_25d_call: float | None
    iv_atm: float | None
    skew_25d: float | None
    normalised_25d: float | None
    moneyness_skew: float | None
    reasons: tuple[str, ...]


def zero_dte_skew(strikes: npt.ArrayLike, call_ivs: npt.ArrayLike, put_ivs: npt.ArrayLike, spot: float,
                  t_years: float, rate: float, div_yield: float) -> ZeroDteSkew:
    """Compute the skew figures of one expiry's smile (NaN IVs are treated as not quoted)."""
    k = np.asarray(strikes, dtype=np.float64)
    c_iv = np.asarray(call_ivs, dtype=np.float64)
    p_iv = np.asarray(put_ivs, dtype=np.float64)
    if not k.shape == c_iv.shape == p_iv.shape or k.ndim != 1:
        raise ValueError("zero_dte_skew: strikes, call_ivs and put_ivs must be 1-D of one length")
    if not t_years > 0:
        reason = f"t_years = {t_years} ≤ 0: the expiry has settled"
        return ZeroDteSkew(None, None, None, None, None, None, (reason,))
    order = np.argsort(k)
    k, c_iv, p_iv = k[order], c_iv[order], p_iv[order]
    c_delta = bsm(spot, k, t_years, rate, div_yield, c_iv, True).delta
    p_delta = bsm(spot, k, t_years, rate, div_yield, p_iv, False).delta
    reasons: list[str] = []
    iv_put = _interp_or_reason(p_delta, p_iv, -WING_DELTA, "25Δ put", "delta", reasons)
    iv_call = _interp_or_reason(c_delta, c_iv, WING_DELTA, "25Δ call", "delta", reasons)
    iv_atm = _interp_or_reason(c_delta, c_iv, ATM_DELTA, "50Δ call (ATM)", "delta", reasons)
    low = _interp_or_reason(k, p_iv, MONEYNESS_LOW * spot, "put at K/S 0.99", "strike", reasons)
    high = _interp_or_reason(k, c_iv, MONEYNESS_HIGH * spot, "call at K/S 1.01", "strike", reasons)
    skew = None if iv_put is None or iv_call is None else iv_put - iv_call
    normalised = None
    if skew is not None and iv_atm is not None:
        if iv_atm > 0:
            normalised = skew / iv_atm
        else:
            reasons.append(f"ATM IV {iv_atm} is not positive: normalised skew undefined")
    moneyness = None if low is None or high is None else low - high
    return ZeroDteSkew(iv_put, iv_call, iv_atm, skew, normalised, moneyness, tuple(reasons))


def skew_of_nearest(chain: Chain) -> ZeroDteSkew:
    """Skew of the nearest unexpired expiry (0DTE on an expiry day), calls and puts matched by strike."""
    live = chain.t_years > 0
    if not live.any():
        return ZeroDteSkew(None, None, None, None, None, None, ("no unexpired contracts",))
    expiry = chain.expiry[live].min()
    on = live & (chain.expiry == expiry)
    strikes = np.unique(chain.strike[on])
    ivs = {}
    for is_call in (True, False):
        side = on & (chain.is_call == is_call)
        iv = np.full(strikes.shape, np.nan)
        iv[np.searchsorted(strikes, chain.strike[side])] = chain.iv[side]
        ivs[is_call] = iv
    t = float(chain.t_years[on][0])
    return zero_dte_skew(strikes, ivs[True], ivs[False], chain.spot, t, chain.rate, chain.div_yield)


def atm_iv(chain: Chain, nearest: bool) -> float:
    """Mean call/put IV at the strike nearest spot on the nearest (or farthest) unexpired expiry with
    a quoted IV: the two ends of the term structure. NaN when nothing unexpired is quoted."""
    live = (chain.t_years > 0) & np.isfinite(chain.iv)
    if not live.any():
        return math.nan
    expiry = chain.expiry[live].min() if nearest else chain.expiry[live].max()
    on = live & (chain.expiry == expiry)
    k = chain.strike[on][np.argmin(np.abs(chain.strike[on] - chain.spot))]
    return float(np.mean(chain.iv[on & (chain.strike == k)]))


def _interp_or_reason(xs: FloatArray, ivs: FloatArray, target: float, what: str, axis: str,
                      reasons: list[str]) -> float | None:
    found = interpolate_bracketed(xs, ivs, target)
    if found is None:
        usable = np.isfinite(xs) & np.isfinite(ivs) & (ivs > 0)
        span = (f"[{np.min(xs[usable]):.4g}, {np.max(xs[usable]):.4g}]" if usable.any()
                else "nothing (no usable quote)")
        reasons.append(f"{what}: {axis} {target:.4g} is outside the quoted {axis}s {span}; not extrapolated")
    return found


def interpolate_bracketed(xs: FloatArray, ys: FloatArray, target: float) -> float | None:
    """y at ``target`` by linear interpolation between the first neighbouring pair bracketing it.

    ``xs`` are in strike order (deltas need not be sorted ascending); points with a non-finite or
    non-positive IV are skipped. None when no pair brackets the target: never an extrapolation.
    """
    usable = np.isfinite(xs) & np.isfinite(ys) & (ys > 0)
    x, y = xs[usable], ys[usable]
    hit = np.flatnonzero(x == target)
    if hit.size:
        return float(y[hit[0]])
    crossing = np.flatnonzero((x[:-1] - target) * (x[1:] - target) < 0)
    if crossing.size == 0:
        return None
    i = int(crossing[0])
    weight = (target - x[i]) / (x[i + 1] - x[i])
    return float(y[i] + weight * (y[i + 1] - y[i]))
