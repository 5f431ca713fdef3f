"""Black-Scholes-Merton prices and Greeks with a continuous dividend yield, and time to expiry.

Units (DESIGN.md §6: stated here once, used everywhere in qc):

============  ==========================================================================
spot, strike  $ per share
t_years       years of 365 days of 86,400 s, measured to the settlement instant
rate, yield   continuous, annualised decimals (0.05 = 5 %)
vol           annualised decimal (0.25 = 25 %)
price         $ per share (multiply by the contract multiplier yourself)
delta         ∂V/∂S, per $1 of spot (call in (0, e^{-qT}), put in (-e^{-qT}, 0))
gamma         ∂²V/∂S², delta per $1 of spot
vega          ∂V/∂σ per 1 vol point (σ + 0.01), $
theta         ∂V/∂t per calendar day (annual theta / 365), $, calendar time t running forward
rho           ∂V/∂r per 1 % of rate (r + 0.01), $
vanna         ∂Δ/∂σ per 1 vol point (σ + 0.01)
charm         ∂Δ/∂t per calendar day (annual charm / 365), calendar time t running forward
============  ==========================================================================

These are Alpha Vantage's units for the Greeks it sends (reference §1.5); exposures built on
them (analytics/exposure.py) are in dollars per 1 % move of the underlying.

Time: ``years_to_expiry`` measures to the XNYS close of the expiry day in New York (16:00, or
13:00 on an early close; a holiday expiry settles at the previous session's close), to the
second, so 0DTE Greeks are right at 15:59. A contract at or past settlement gets T ≤ 0 and
``bsm``/``implied_vol`` return NaN for it: the caller drops expired contracts; nothing here floors T.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

from qc.analytics.iv import implied_vol
from qc.analytics.normal import norm_cdf_given_pdf, norm_pdf
from qc.core.clock import settlement_instant

__all__ = ["SECONDS_PER_YEAR", "Greeks", "OneGreeks", "bsm", "bsm_one", "implied_vol", "years_to_expiry"]

FloatArray = npt.NDArray[np.float64]
SECONDS_PER_YEAR = 365.0 * 86_400.0
PER_VOL_POINT = 0.01
PER_RATE_PERCENT = 0.01
DAYS_PER_YEAR = 365.0
_STAND_INS = (1.0, 1.0, 1.0, 1.0, 0.0, 0.0)  # s, k, t, σ, r, q where the model is undefined


@dataclass(frozen=True)
class Greeks:
    """BSM value and sensitivities, float64 arrays of the broadcast input shape, in qc units."""

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray
    theta: FloatArray
    rho: FloatArray
    vanna: FloatArray
    charm: FloatArray


def bsm(spot: npt.ArrayLike, strike: npt.ArrayLike, t_years: npt.ArrayLike, rate: npt.ArrayLike,
        div_yield: npt.ArrayLike, vol: npt.ArrayLike, is_call: npt.ArrayLike) -> Greeks:
    """Price and Greeks of European options under BSM with yield q; inputs broadcast like ufuncs.

    NaN wherever the model is undefined: T ≤ 0 (expired: drop it), σ ≤ 0, S ≤ 0, K ≤ 0 or any
    non-finite input. Closed forms are the reference's §2.7 table.
    """
    s, k, t, r, q, sig, call = np.broadcast_arrays(
        *(np.asarray(a, dtype=np.float64) for a in (spot, strike, t_years, rate, div_yield, vol)),
        np.asarray(is_call, dtype=bool))
    invalid = ~((t > 0) & (sig > 0) & (s > 0) & (k > 0) & np.isfinite(s + k + t + r + q + sig))
    if any_invalid := bool(invalid.any()):  # computed on harmless stand-ins, then set to NaN
        s, k, t, sig, r, q = (np.where(invalid, fill, a)
                              for a, fill in zip((s, k, t, sig, r, q), _STAND_INS, strict=True))
    w = np.where(call, 1.0, -1.0)
    sqrt_t = np.sqrt(t)
    vst = sig * sqrt_t
    carry = (r - q) * t
    d1 = (np.log(s / k) + carry) / vst + 0.5 * vst
    d2 = d1 - vst
    dq = np.exp(-q * t)
    dr = np.exp(-r * t)
    n_d = norm_pdf(np.stack([d1, d2]))
    cdf = norm_cdf_given_pdf(np.stack([w * d1, w * d2]), n_d)  # one call: Φ(w·d1), Φ(w·d2)
    sdq_n1, kdr_n2, dq_n1 = s * dq * cdf[0], k * dr * cdf[1], dq * n_d[0]
    fields = {
        "price": w * (sdq_n1 - kdr_n2),
        "delta": w * dq * cdf[0],
        "gamma": dq_n1 / (s * vst),
        "vega": s * dq_n1 * sqrt_t * PER_VOL_POINT,
        "theta": (-s * dq_n1 * sig / (2.0 * sqrt_t) - w * r * kdr_n2 + w * q * sdq_n1) / DAYS_PER_YEAR,
        "rho": w * k * t * dr * cdf[1] * PER_RATE_PERCENT,
        "vanna": -dq_n1 * d2 / sig * PER_VOL_POINT,
        "charm": (w * q * dq * cdf[0] - dq_n1 * (2.0 * carry - d2 * vst) / (2.0 * t * vst)) / DAYS_PER_YEAR,
    }
    out = {name: np.asarray(value) for name, value in fields.items()}  # 0-d arrays for scalar inputs
    for value in out.values() if any_invalid else ():
        value[invalid] = np.nan  # every field is a fresh array of the broadcast shape
    return Greeks(**out)


class OneGreeks(NamedTuple):
    """:class:`Greeks` of one contract, as plain floats (same units)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    vanna: float
    charm: float


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def bsm_one(spot: float, strike: float, t_years: float, rate: float, div_yield: float, vol: float,
            is_call: bool) -> OneGreeks | None:
    """:func:`bsm` for one contract in plain floats, None where ``bsm`` gives NaN.

    Written beside the vectorised form because one contract is what a pre-trade check prices: numpy's
    per-call overhead makes ``bsm`` on one element ~180 µs, this ~5 µs (measured in
    benchmarks/bench_risk.py). Same closed forms; Φ from ``math.erfc``, which ``qc.analytics.normal``
    matches to 2.3e-16 (tests/unit/test_greeks_one.py holds the two forms together).
    """
    s, k, t, r, q, sig = (float(x) for x in (spot, strike, t_years, rate, div_yield, vol))
    if not (t > 0 and sig > 0 and s > 0 and k > 0 and math.isfinite(s + k + t + r + q + sig)):
        return None
    w = 1.0 if is_call else -1.0
    sqrt_t = math.sqrt(t)
    vst = sig * sqrt_t
    carry = (r - q) * t
    d1 = (math.log(s / k) + carry) / vst + 0.5 * vst
    d2 = d1 - vst
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    n1 = _INV_SQRT_2PI * math.exp(-0.5 * d1 * d1)
    c1, c2 = 0.5 * math.erfc(-w * d1 * _SQRT_HALF), 0.5 * math.erfc(-w * d2 * _SQRT_HALF)
    sdq_n1, kdr_n2, dq_n1 = s * dq * c1, k * dr * c2, dq * n1
    return OneGreeks(
        price=w * (sdq_n1 - kdr_n2),
        delta=w * dq * c1,
        gamma=dq_n1 / (s * vst),
        vega=s * dq_n1 * sqrt_t * PER_VOL_POINT,
        theta=(-s * dq_n1 * sig / (2.0 * sqrt_t) - w * r * kdr_n2 + w * q * sdq_n1) / DAYS_PER_YEAR,
        rho=w * k * t * dr * c2 * PER_RATE_PERCENT,
        vanna=-dq_n1 * d2 / sig * PER_VOL_POINT,
        charm=(w * q * dq * c1 - dq_n1 * (2.0 * carry - d2 * vst) / (2.0 * t * vst)) / DAYS_PER_YEAR,
    )


@overload
def years_to_expiry(now: datetime, expiry_date: date) -> float: ...
@overload
def years_to_expiry(now: datetime, expiry_date: Sequence[date] | npt.NDArray[np.generic]) -> FloatArray: ...


def years_to_expiry(now: datetime, expiry_date: date | Sequence[date] | npt.NDArray[np.generic],
                    ) -> float | FloatArray:
    """T in years from ``now`` to each expiry's settlement instant (XNYS close, New York time).

    T = seconds / (365 × 86,400), exact to the second across DST and early closes. T ≤ 0 means
    the contract has settled: the caller drops it (nothing is floored here). A sequence of dates
    is resolved once per unique date: a chain has thousands of rows but a handful of expiries.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("years_to_expiry: `now` must be timezone-aware (ask qc.core.clock for it)")
    if isinstance(expiry_date, date):
        return _years(now, _as_date(expiry_date))
    days = np.asarray(expiry_date, dtype="datetime64[D]")
    unique, inverse = np.unique(days.reshape(-1), return_inverse=True)
    per_unique = np.array([_years(now, d.astype(date)) for d in unique], dtype=np.float64)
    out: FloatArray = per_unique[inverse].reshape(days.shape)
    return out


def _as_date(day: date) -> date:
    if isinstance(day, datetime):
        raise TypeError("years_to_expiry: pass the expiry as a date; its instant comes from the calendar")
    return day


def _years(now: datetime, expiry: date) -> float:
    return (settlement_instant(expiry) - now).total_seconds() / SECONDS_PER_YEAR
