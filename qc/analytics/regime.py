"""Volatility regime: realised-vol estimators, implied vs realised, term structure, gamma regime, label.

Conventions
- Estimators take OHLC numpy arrays (oldest first, prices > 0 and finite, low ≤ open, close ≤ high)
  and return the *annualised* volatility as a decimal (0.20 = 20 vol points):
  sqrt(per-bar variance × ``periods_per_year``). ``periods_per_year`` is the number of bars in a
  year of the bars passed: ``DAILY`` (252) for daily bars, ``MINUTE`` (252 × 390 = 98,280) for
  regular-session 1-minute bars. Use the same year as the IV it is compared with.
- Too few bars returns NaN, never 0 (a 0 would read as "dead calm"); 0 is returned only when
  prices really did not move. Malformed bars raise ValueError naming the field.
- Estimator formulas as in TTR ``volatility()`` (search.r-project.org/CRAN/refmans/TTR): close-to-close
  = sample s.d. of log returns; Parkinson (1980) σ² = mean(ln(H/L)²)/(4 ln 2); Garman-Klass (1980)
  σ² = mean(½ ln(H/L)² − (2 ln 2 − 1) ln(C/O)²); Rogers-Satchell (1991)
  σ² = mean(ln(H/C) ln(H/O) + ln(L/C) ln(L/O)); Yang-Zhang (2000) σ² = σ²_overnight + k σ²_open-close
  + (1 − k) σ²_RS with k = 0.34/(1.34 + (n+1)/(n−1)). Parkinson and Garman-Klass assume no drift;
  Rogers-Satchell is drift-free; Yang-Zhang adds the overnight gap (the default for daily equity
  bars; for intraday bars Rogers-Satchell alone is the usual choice).
- Implied vols are annualised decimals too. Variance risk premium = ATM IV − realised (vol points,
  not variance). Term-structure ratio = near IV / far IV: > 1 backwardation, ≤ 1 contango.
- Gamma regime uses the dealer sign of ``analytics/exposure.py`` (SqueezeMetrics naive: positive net
  GEX = dealers long gamma, dampening). Regime table (see ``regime_label``), after
  reference/alpha-vantage-and-dealer-positioning.md §4: positive gamma + calm = mean_reversion,
  negative gamma + stressed = expansion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import Enum
from typing import Final, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from qc.analytics.bars import ny_date

FloatArray = NDArray[np.float64]

TRADING_DAYS: Final = 252
SESSION_MINUTES: Final = 390
DAILY: Final = float(TRADING_DAYS)
MINUTE: Final = float(TRADING_DAYS * SESSION_MINUTES)
MIN_BARS: Final = 30  # fewer 1-minute bars than this give NaN realised vol, not a noisy figure

VolBand = Literal["low", "normal", "high", "unknown"]
TermState = Literal["contango", "backwardation", "unknown"]
RegimeLabel = Literal["mean_reversion", "pinned_stress", "trend", "expansion", "unknown"]

_PARKINSON_K: Final = 1.0 / (4.0 * math.log(2.0))
_GK_C: Final = 2.0 * math.log(2.0) - 1.0
_YZ_ALPHA: Final = 0.34


class GammaRegime(str, Enum):
    """Dealer gamma regime: positive dampens moves, negative chases them."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    UNKNOWN = "unknown"


def _prices(name: str, values: ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise ValueError(f"{name}: prices must be finite and > 0")
    return arr


def _ohlc(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    named = (("open", open_), ("high", high), ("low", low), ("close", close))
    o, h, lo, c = (_prices(name, values) for name, values in named)
    if not o.size == h.size == lo.size == c.size:
        raise ValueError(f"open/high/low/close: lengths differ ({o.size}, {h.size}, {lo.size}, {c.size})")
    # A relative slack of 1e-12 forgives float noise in bars rebuilt from ticks.
    if np.any(h < np.maximum(o, c) * (1 - 1e-12)) or np.any(lo > np.minimum(o, c) * (1 + 1e-12)):
        raise ValueError("high/low: every bar needs low <= open, close <= high")
    return o, h, lo, c


def _annualise(variance: float, periods_per_year: float) -> float:
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year: must be > 0, got {periods_per_year}")
    return math.sqrt(max(variance, 0.0) * periods_per_year)


def close_to_close(close: ArrayLike, *, periods_per_year: float) -> float:
    """Sample s.d. of log close-to-close returns, annualised; NaN with fewer than 2 returns."""
    c = _prices("close", close)
    if c.size < 3:
        return math.nan
    r = np.diff(np.log(c))
    return _annualise(float(np.var(r, ddof=1)), periods_per_year)


def parkinson(high: ArrayLike, low: ArrayLike, *, periods_per_year: float) -> float:
    """High-low range estimator (≈5x as efficient as close-to-close, no drift, no gaps); NaN if no bars."""
    h, lo = _prices("high", high), _prices("low", low)
    if h.size != lo.size or np.any(h < lo):
        raise ValueError("high/low: same length and high >= low required")
    if h.size == 0:
        return math.nan
    return _annualise(_PARKINSON_K * float(np.mean(np.log(h / lo) ** 2)), periods_per_year)


def garman_klass(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, *, periods_per_year: float
) -> float:
    """Garman-Klass OHLC estimator (no drift, no overnight gap); NaN if no bars."""
    o, h, lo, c = _ohlc(open_, high, low, close)
    if o.size == 0:
        return math.nan
    per_bar = 0.5 * np.log(h / lo) ** 2 - _GK_C * np.log(c / o) ** 2
    return _annualise(float(np.mean(per_bar)), periods_per_year)


def _rs_terms(o: FloatArray, h: FloatArray, lo: FloatArray, c: FloatArray) -> FloatArray:
    terms: FloatArray = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)
    return terms


def rogers_satchell(
    open_: ArrayLike, high: ArrayLike, low: ArrayLike, close: ArrayLike, *, periods_per_year: float
) -> float:
    """Rogers-Satchell OHLC estimator, unbiased under drift (the intraday choice); NaN if no bars."""
    o, h, lo, c = _ohlc(open_, high, low, close)
    if o.size == 0:
        return math.nan
    return _annualise(float(np.mean(_rs_terms(o, h, lo, c))), periods_per_year)


def yang_zhang(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    *,
    periods_per_year: float,
    prev_close: float | None = None,
) -> float:
    """Yang-Zhang: overnight + open-close + Rogers-Satchell, robust to drift and gaps.

    The overnight return of bar i uses the close of bar i−1. With ``prev_close`` (the close
    before the first bar) all n bars count; without it the first bar only lends its close.
    NaN when fewer than 2 bars count.
    """
    o, h, lo, c = _ohlc(open_, high, low, close)
    if prev_close is None:
        prev, o, h, lo, c = c[:-1], o[1:], h[1:], lo[1:], c[1:]
    else:
        prev = np.concatenate([_prices("prev_close", [prev_close]), c[:-1]])
    n = o.size
    if n < 2:
        return math.nan
    k = _YZ_ALPHA / (1.34 + (n + 1) / (n - 1))
    var_overnight = float(np.var(np.log(o / prev), ddof=1))
    var_open_close = float(np.var(np.log(c / o), ddof=1))
    var_rs = float(np.mean(_rs_terms(o, h, lo, c)))
    return _annualise(var_overnight + k * var_open_close + (1 - k) * var_rs, periods_per_year)


@dataclass(frozen=True)
class MinuteBars:
    """1-minute bars, oldest first: start epoch (s) and OHLCV (the worker's warm and live windows)."""

    start: FloatArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return int(self.start.size)


def realised_vol(bars: MinuteBars, last: int = SESSION_MINUTES) -> float:
    """Annualised Rogers-Satchell vol of the last ``last`` minutes; NaN with fewer than ``MIN_BARS`` bars."""
    if len(bars) < MIN_BARS:
        return math.nan
    sl = slice(-last, None)
    return rogers_satchell(bars.open[sl], bars.high[sl], bars.low[sl], bars.close[sl], periods_per_year=MINUTE)


def daily_vols(bars: MinuteBars) -> dict[date, float]:
    """Realised vol per New York date in ``bars`` (the history RV percentiles rank against);
    dates with fewer than ``MIN_BARS`` minutes are skipped."""
    days = np.array([ny_date(int(s * 1e9)).toordinal() for s in bars.start.tolist()], dtype=np.int64)
    out: dict[date, float] = {}
    for d in np.unique(days).tolist():
        on = days == d
        if on.sum() >= MIN_BARS:
            out[date.fromordinal(d)] = rogers_satchell(bars.open[on], bars.high[on], bars.low[on], bars.close[on],
                                                       periods_per_year=MINUTE)
    return out


def variance_risk_premium(atm_iv: float, realised: float) -> float:
    """ATM implied minus realised vol (vol points as decimals); > 0 means options price more movement."""
    return float(atm_iv - realised)


def term_structure_ratio(near_iv: float, far_iv: float) -> float:
    """Near IV / far IV (VIX/VIX3M style): > 1 backwardation (near-term stress); NaN if undefined."""
    if not (math.isfinite(near_iv) and math.isfinite(far_iv)) or far_iv <= 0 or near_iv < 0:
        return math.nan
    return near_iv / far_iv


def term_structure_state(ratio: float) -> TermState:
    """Backwardation above 1, contango at or below 1 (flat counts as calm), unknown for NaN."""
    if not math.isfinite(ratio):
        return "unknown"
    return "backwardation" if ratio > 1.0 else "contango"


def gamma_regime(spot: float, zero_gamma: float | None, net_gex: float) -> GammaRegime:
    """Positive when spot is above zero gamma and net GEX > 0, negative when both say the opposite.

    Unknown when zero gamma is None (no flip in the profile), when spot sits exactly on it, when
    net GEX is 0 or NaN, or when the two disagree (a profile with an unusual shape: conflicting
    evidence is not a regime).
    """
    if zero_gamma is None or not (math.isfinite(spot) and math.isfinite(zero_gamma)):
        return GammaRegime.UNKNOWN
    side = np.sign(spot - zero_gamma)
    if math.isfinite(net_gex) and side != 0 and side == np.sign(net_gex):
        return GammaRegime.POSITIVE if side > 0 else GammaRegime.NEGATIVE
    return GammaRegime.UNKNOWN


def percentile_rank(value: float, history: ArrayLike) -> float:
    """Percent of the trailing window below ``value`` (ties count half), in [0, 100]; NaN if empty.

    NaNs in the window are ignored; the window may include today's value.
    """
    h = np.asarray(history, dtype=np.float64)
    h = h[np.isfinite(h)]
    if h.size == 0 or not math.isfinite(value):
        return math.nan
    below = np.count_nonzero(h < value)
    ties = np.count_nonzero(h == value)
    return float(100.0 * (below + 0.5 * ties) / h.size)


def vol_band(percentile: float, *, low: float = 20.0, high: float = 80.0) -> VolBand:
    """Band of a percentile rank: < low is low, > high is high, between (inclusive) normal."""
    if not 0.0 <= low <= high <= 100.0:
        raise ValueError(f"low/high: need 0 <= low <= high <= 100, got {low}, {high}")
    if not math.isfinite(percentile):
        return "unknown"
    if percentile < low:
        return "low"
    return "high" if percentile > high else "normal"


def _stress(band: VolBand, term: TermState) -> bool | None:
    if band == "unknown" and term == "unknown":
        return None
    return band == "high" or term == "backwardation"


def regime_label(gamma: GammaRegime, band: VolBand, term_ratio: float) -> RegimeLabel:
    """Combine dealer gamma with vol stress into one label.

    Stressed = vol band high or term structure in backwardation; calm = neither (an unknown input
    defers to the other; both unknown is unknown).

    | gamma \\ vol | calm            | stressed        |
    |-------------|-----------------|-----------------|
    | positive    | mean_reversion  | pinned_stress   |
    | negative    | trend           | expansion       |
    | unknown     | unknown         | unknown         |

    pinned_stress: vol is bid but dealers still dampen (often a post-shock vol crush);
    trend: dealers chase moves in a calm tape, so breakouts run (ranges widen below the flip).
    """
    stressed = _stress(band, term_structure_state(term_ratio))
    if gamma is GammaRegime.UNKNOWN or stressed is None:
        return "unknown"
    if gamma is GammaRegime.POSITIVE:
        return "pinned_stress" if stressed else "mean_reversion"
    return "expansion" if stressed else "trend"
