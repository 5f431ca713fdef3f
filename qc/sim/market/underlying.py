"""The underlying's price process at day and minute scale, and its intraday schedules.

Daily closes are a pure function of (seed, symbol, date): a few slow seeded sinusoids plus daily
noise around ``UnderlyingParams.price``, so any past day is computed directly, never walked to, and
the same bar is the same in every run. Each session opens at the previous session's close times an
overnight gap, then follows a Brownian bridge to its close with U-shaped minute volatility. The live
process (book.py) starts from this path and adds regimes and informed-flow bursts on top.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from qc.core import clock
from qc.sim.market.params import SimParams, UnderlyingParams, rng_for

FloatArray = npt.NDArray[np.float64]

DAILY, GAP, INTRADAY, REGIME, BURST = 1, 2, 3, 4, 5
_PERIODS_D = (9.0, 29.0, 97.0, 251.0)
_AMPLITUDES = (0.8, 1.6, 2.8, 4.0)  # × daily vol
TRADING_DAYS = 252.0
VOLATILE_VOL_MULT = 2.0
VOLATILE_RATE_MULT = 1.8


@functools.lru_cache(maxsize=4096)
def session(day: date) -> clock.Session | None:
    """The XNYS session of ``day`` (cached: the calendar lookup costs ~0.5 ms)."""
    return clock.session(day)


@functools.lru_cache(maxsize=4096)
def previous_session(day: date) -> clock.Session:
    """The last session strictly before ``day``."""
    return clock.session_on_or_before(day - timedelta(days=1))


@functools.lru_cache(maxsize=4096)
def next_session(day: date) -> clock.Session:
    """The first session strictly after ``day``."""
    return clock.next_session_after(day)


def session_at_or_after(now: datetime) -> clock.Session:
    """The session containing ``now``, or the next one to open."""
    day = clock.new_york_date(now)
    today = session(day)
    if today is not None and now < today.close:
        return today
    return next_session(day)


def daily_vol(up: UnderlyingParams) -> float:
    return up.vol / math.sqrt(TRADING_DAYS)


def daily_close(seed: int, symbol: str, up: UnderlyingParams, day: date) -> float:
    """The generated close of ``day``: slow seeded cycles plus that day's own noise."""
    phases = rng_for(seed, symbol, DAILY).uniform(0.0, 2.0 * math.pi, len(_PERIODS_D))
    n = day.toordinal()
    waves = zip(_AMPLITUDES, _PERIODS_D, phases, strict=True)
    cycles = sum(a * math.sin(2.0 * math.pi * n / p + ph) for a, p, ph in waves)
    noise = float(rng_for(seed, symbol, DAILY, n).standard_normal())
    return round(up.price * math.exp(daily_vol(up) * (cycles + 0.7 * noise)), 2)


def reference_price(seed: int, symbol: str, up: UnderlyingParams, day: date) -> float:
    """The session's open: the previous session's close times a seeded overnight gap."""
    prev = previous_session(day).day
    gap = 0.3 * daily_vol(up) * float(rng_for(seed, symbol, GAP, day.toordinal()).standard_normal())
    return round(daily_close(seed, symbol, up, prev) * math.exp(gap), 2)


def intraday_profile(x: FloatArray) -> FloatArray:
    """Relative activity at session fraction ``x`` in [0, 1]: U-shaped, mean ≈ 1 over the session."""
    u = 0.55 + 2.2 * np.exp(-x / 0.05) + 2.6 * np.exp(-(1.0 - x) / 0.04)
    return u / 0.764


def session_minutes(s: clock.Session) -> int:
    return int((s.close - s.open).total_seconds() // 60)


@dataclass(frozen=True)
class MinutePath:
    """A generated session at minute resolution: opens and closes of every minute."""

    open: FloatArray
    close: FloatArray
    sigma: FloatArray  # per-minute log-return std, for the bars' high/low


def minute_path(seed: int, symbol: str, up: UnderlyingParams, s: clock.Session) -> MinutePath:
    """A Brownian bridge from the session's open to its close, variance shaped by the U profile."""
    n = session_minutes(s)
    x = (np.arange(n) + 0.5) / n
    var = intraday_profile(x)
    var *= daily_vol(up) ** 2 / var.sum()
    rng = rng_for(seed, symbol, INTRADAY, s.day.toordinal())
    w = np.cumsum(rng.standard_normal(n) * np.sqrt(var))
    frac = np.cumsum(var) / var.sum()
    lo, lc = math.log(reference_price(seed, symbol, up, s.day)), math.log(daily_close(seed, symbol, up, s.day))
    log_close = lo + frac * (lc - lo) + (w - frac * w[-1])
    close = np.round(np.exp(log_close), 2)
    close[-1] = daily_close(seed, symbol, up, s.day)
    opens = np.concatenate(([reference_price(seed, symbol, up, s.day)], close[:-1]))
    return MinutePath(opens, close, np.sqrt(var))


def regime_schedule(seed: int, symbol: str, day: date, minutes: int) -> npt.NDArray[np.bool_]:
    """Per minute, True while volatile: a two-state Markov chain (calm spells ~2 h, volatile ~20 min)."""
    rng = rng_for(seed, symbol, REGIME, day.toordinal())
    u = rng.random(minutes)
    out = np.zeros(minutes, dtype=bool)
    volatile = bool(rng.random() < 0.1)
    for i in range(minutes):
        volatile = (u[i] >= 1.0 / 20.0) if volatile else (u[i] < 1.0 / 120.0)
        out[i] = volatile
    return out


@dataclass(frozen=True)
class Burst:
    """Informed flow: one-sided aggressors and drift in ``direction`` over [start, end)."""

    start: datetime
    end: datetime
    direction: int


def burst_schedule(seed: int, symbol: str, params: SimParams, s: clock.Session) -> list[Burst]:
    """Seeded bursts for one session: Poisson count, 2–5 minutes each, random side."""
    rng = rng_for(seed, symbol, BURST, s.day.toordinal())
    count = int(rng.poisson(params.bursts_per_session))
    span = (s.close - s.open).total_seconds() - 600.0
    out = []
    for _ in range(count):
        start = s.open + timedelta(seconds=int(rng.uniform(300.0, span)))
        duration = int(rng.uniform(120.0, 300.0))
        out.append(Burst(start, start + timedelta(seconds=duration), 1 if rng.random() < 0.5 else -1))
    return sorted(out, key=lambda b: b.start)
