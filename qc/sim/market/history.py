"""1-minute bars: generated for sessions before the live timeline, built from live prints after.

A generated session's bars follow ``underlying.minute_path`` (open continues from the previous
close, U-shaped volume), so they are a pure function of (seed, symbol, day). Minutes the live
process has covered are aggregated from its prints; a minute with no print carries the last
price with zero volume. A bar is only returned once its minute is over and revealed.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np

from qc.core import clock
from qc.core.models import Bar
from qc.sim.market import underlying as und
from qc.sim.market.params import UnderlyingParams, rng_for

BARS = 10
MINUTE = timedelta(minutes=1)


def generated_bars(seed: int, symbol: str, up: UnderlyingParams, s: clock.Session) -> list[Bar]:
    """Every minute bar of a generated session, oldest first."""
    path = und.minute_path(seed, symbol, up, s)
    n = path.close.size
    rng = rng_for(seed, symbol, BARS, s.day.toordinal())
    body_hi, body_lo = np.maximum(path.open, path.close), np.minimum(path.open, path.close)
    high = np.round(body_hi * np.exp(0.5 * path.sigma * np.abs(rng.standard_normal(n))), 2)
    low = np.round(body_lo * np.exp(-0.5 * path.sigma * np.abs(rng.standard_normal(n))), 2)
    per_day = up.trade_rate_hz * up.avg_trade_size * (s.close - s.open).total_seconds()
    u = und.intraday_profile((np.arange(n) + 0.5) / n)
    volume = np.round(per_day * u / u.sum() * rng.lognormal(-0.045, 0.3, n))
    vwap = np.round(np.clip((path.open + high + low + path.close) / 4.0, low, high), 4)
    count = np.maximum(1, np.round(volume / up.avg_trade_size)).astype(np.int64)
    return [Bar(s.open + i * MINUTE, o, h, lo, c, v, w, k)
            for i, (o, h, lo, c, v, w, k) in enumerate(zip(
                path.open.tolist(), high.tolist(), low.tolist(), path.close.tolist(), volume.tolist(),
                vwap.tolist(), count.tolist(), strict=True))]


class LiveBars:
    """Minute accumulators for the live prints of one symbol."""

    def __init__(self) -> None:
        self._acc: dict[datetime, list[float]] = {}  # minute start → [open, high, low, close, volume, pv, count]

    def add(self, second: datetime, prints: list[tuple[float, float]]) -> None:
        """Fold one second's prints into its minute."""
        if not prints:
            return
        minute = second.replace(second=0, microsecond=0)
        acc = self._acc.get(minute)
        prices = [p for p, _ in prints]
        volume = sum(q for _, q in prints)
        pv = sum(p * q for p, q in prints)
        if acc is None:
            self._acc[minute] = [prices[0], max(prices), min(prices), prices[-1], volume, pv, len(prints)]
            return
        acc[1], acc[2], acc[3] = max(acc[1], *prices), min(acc[2], *prices), prices[-1]
        acc[4] += volume
        acc[5] += pv
        acc[6] += len(prints)

    def bars(self, s: clock.Session, start: datetime, until: datetime, carry: float) -> list[Bar]:
        """Bars of session ``s`` for minutes starting at or after ``start`` and ending by ``until``."""
        out = []
        t = max(start, s.open)
        while t + MINUTE <= min(until, s.close):
            acc = self._acc.get(t)
            if acc is None:
                out.append(Bar(t, carry, carry, carry, carry, 0.0, carry, 0))
            else:
                o, h, lo, c, v, pv, n = acc
                out.append(Bar(t, o, h, lo, c, v, round(pv / v, 4) if v else c, int(n)))
                carry = c
            t += MINUTE
        return out


def minute_floor(t: datetime, s: clock.Session) -> datetime:
    """The start of the session minute containing ``t`` (sessions open on whole minutes)."""
    return s.open + MINUTE * math.floor((t - s.open) / MINUTE)


def sessions_back(end: datetime, minutes: int) -> list[clock.Session]:
    """Sessions, oldest first, whose minutes cover at least ``minutes`` up to ``end``."""
    day: date = clock.new_york_date(end)
    today = und.session(day)
    s = today if today is not None and today.open < end else und.previous_session(day)
    elapsed = int((min(end, s.close) - s.open) / MINUTE)  # a session still running covers only its past
    out, covered = [s], min(und.session_minutes(s), elapsed)
    while covered < minutes:
        s = und.previous_session(s.day)
        out.append(s)
        covered += und.session_minutes(s)
    return out[::-1]
