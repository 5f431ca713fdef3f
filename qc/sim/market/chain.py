"""Listed options: expiries, strikes, the IV surface, each morning's open interest, and quotes.

Everything but the quote is fixed for a session and a pure function of (seed, symbol, session day):
the listing, the sticky-strike IV surface and the open interest. Quotes are BSM at the live spot with
qc's own ``bsm`` and ``years_to_expiry``, so qc re-solving IV from a mid gets the surface back (to
the half-cent rounding of the quote).

Open interest is shaped for dealer positioning under qc's convention (dealers long calls, short
puts; ``analytics/exposure.py``). Around the flip level L* = open × (1 − flip_offset) calls dominate
above and puts below (call share 0.5 + 0.45·tanh(ln(K/L*)/1 %)), the call wall strike (open ×
(1 + call_wall_offset)) and the put wall strike (open × (1 − put_wall_offset)) carry
``wall_multiple`` × the base OI on top, and each expiry's puts are then scaled so that expiry's own
spot-shift GEX is exactly zero at L* at the session open. The chain's zero gamma is therefore at
≈ L*, its net GEX at spot is positive while spot is above L*, and qc's gamma walls sit on the two
wall strikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from qc.analytics.greeks import bsm, years_to_expiry
from qc.sim.market import underlying as und
from qc.sim.market.models import OptionContract, OptionQuote
from qc.sim.market.params import SimParams, UnderlyingParams, rng_for

FloatArray = npt.NDArray[np.float64]
OI_STREAM = 7
DAILY_SESSIONS = 30
WEEKLY_DAYS = 42
MONTHLIES = 13
FLIP_WIDTH = 0.01
SKEW, SMILE, Z_CLIP = 0.12, 0.02, 3.0


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def monthly_expiries(day: date) -> frozenset[date]:
    """3rd-Friday expiries for about a year from ``day``, a holiday moved to the session before."""
    out = set()
    for k in range(MONTHLIES):
        y, m = divmod(day.month - 1 + k, 12)
        out.add(und.previous_session(third_friday(day.year + y, m + 1) + timedelta(days=1)).day)
    return frozenset(out)


def listed_expiries(up: UnderlyingParams, day: date) -> tuple[date, ...]:
    """Dailies (next 30 sessions) or Friday weeklies (6 weeks), plus the monthlies, for a year."""
    found: set[date] = set(monthly_expiries(day))
    if up.daily_expiries:
        d = day
        for _ in range(DAILY_SESSIONS):
            found.add(d)
            d = und.next_session(d).day
    else:
        fridays = (day + timedelta(days=k) for k in range(WEEKLY_DAYS))
        found.update(f for f in fridays if f.weekday() == 4)
    sessions = {und.previous_session(d + timedelta(days=1)).day for d in found}  # holiday → day before
    return tuple(sorted(d for d in sessions if day <= d <= day + timedelta(days=370)))


def strikes(up: UnderlyingParams, ref: float) -> FloatArray:
    step = up.strike_step
    lo, hi = math.ceil(ref * (1 - up.strike_range) / step), math.floor(ref * (1 + up.strike_range) / step)
    return np.round(np.arange(lo, hi + 1) * step, 4)


def nearest_strike(up: UnderlyingParams, price: float) -> float:
    return round(round(price / up.strike_step) * up.strike_step, 4)


def surface_iv(up: UnderlyingParams, ref: float, strike: FloatArray, t_open: FloatArray, level: float) -> FloatArray:
    """Sticky-strike IV: ATM term structure (short end cheaper) times a put-rich skew in z-moneyness."""
    atm = up.vol * level * (0.88 + 0.22 * (1.0 - np.exp(-t_open / 0.25)))
    z = np.clip(np.log(strike / ref) / (atm * np.sqrt(np.maximum(t_open, 2.0 / 365.0))), -Z_CLIP, Z_CLIP)
    out: FloatArray = atm * (1.0 - SKEW * z + SMILE * z * z)
    return out


@dataclass(frozen=True)
class ChainTable:
    """One session's listing for one symbol, rows sorted by expiry, strike, right (C before P)."""

    day: date
    ref: float
    expiry: npt.NDArray[np.datetime64]
    strike: FloatArray
    is_call: npt.NDArray[np.bool_]
    iv: FloatArray
    open_interest: npt.NDArray[np.int64]
    volume_share: FloatArray  # share of OI that trades over the whole session
    rows: dict[tuple[date, float, str], int]


def _grid(exps: tuple[date, ...], ks: FloatArray) -> tuple[npt.NDArray[np.datetime64], FloatArray,
                                                             npt.NDArray[np.bool_]]:
    e = np.repeat(np.array(exps, dtype="datetime64[D]"), ks.size * 2)
    k = np.tile(np.repeat(ks, 2), len(exps))
    call = np.tile(np.array([True, False]), len(exps) * ks.size)
    return e, k, call


ZERO_DTE_TURNOVER = 10.0  # a 0DTE strike's session volume over its open interest, relative to other expiries


def _base_oi(up: UnderlyingParams, day: date, e: npt.NDArray[np.datetime64], k: FloatArray,
             call: npt.NDArray[np.bool_], ref: float, atm_width: FloatArray,
             rng: np.random.Generator) -> FloatArray:
    monthly = np.isin(e, np.array(sorted(monthly_expiries(day)), dtype="datetime64[D]"))
    w = up.oi_scale * np.where(monthly, 3.0, 1.0) * np.exp(-0.5 * (np.log(k / ref) / atm_width) ** 2)
    flip = ref * (1.0 - up.flip_offset)
    share = 0.5 + 0.45 * np.tanh(np.log(k / flip) / FLIP_WIDTH)
    oi = w * np.where(call, share, 1.0 - share) * rng.lognormal(0.0, 0.25, k.size)
    walls = ((k == nearest_strike(up, ref * (1 + up.call_wall_offset))) & call) | (
        (k == nearest_strike(up, ref * (1 - up.put_wall_offset))) & ~call)
    out: FloatArray = oi + np.where(walls, up.wall_multiple * w, 0.0)
    return out


def _balance_at_flip(oi: FloatArray, e: npt.NDArray[np.datetime64], k: FloatArray, call: npt.NDArray[np.bool_],
                     t_open: FloatArray, iv: FloatArray, flip: float, params: SimParams,
                     up: UnderlyingParams) -> FloatArray:
    """Scale each expiry's puts so that expiry's dealer GEX at L* is zero at the open."""
    gamma = bsm(flip, k, t_open, params.rate, up.div_yield, iv, call).gamma
    signed = np.where(call, 1.0, 0.0) * gamma * oi
    put_g = np.where(call, 0.0, 1.0) * gamma * oi
    _, inv = np.unique(e, return_inverse=True)
    alpha = np.bincount(inv, signed) / np.maximum(np.bincount(inv, put_g), 1e-300)
    out: FloatArray = np.where(call, oi, oi * alpha[inv])
    return out


def chain_table(params: SimParams, symbol: str, day: date) -> ChainTable:
    """The session's listing, surface and open interest (deterministic from seed, symbol, day)."""
    up = params.underlying(symbol)
    s = und.session(day)
    assert s is not None, f"{day} is not a session"
    ref = und.reference_price(params.seed, symbol, up, day)
    exps = listed_expiries(up, day)
    e, k, call = _grid(exps, strikes(up, ref))
    t_open = years_to_expiry(s.open, e)
    rng = rng_for(params.seed, symbol, OI_STREAM, day.toordinal())
    iv = surface_iv(up, ref, k, t_open, float(np.exp(0.05 * rng.standard_normal())))
    width = np.maximum(0.03, 1.5 * up.vol * np.sqrt(t_open))
    oi = _base_oi(up, day, e, k, call, ref, width, rng)
    oi = _balance_at_flip(oi, e, k, call, t_open, iv, ref * (1 - up.flip_offset), params, up)
    rows = {(d, float(kk), "C" if c else "P"): i
            for i, (d, kk, c) in enumerate(zip(e.astype(date).tolist(), k.tolist(), call.tolist(), strict=True))}
    share = rng.uniform(0.02, 0.3, k.size)
    # Same-day expiries turn over several times their open interest (0DTE is > 40 % of SPX volume, Cboe
    # 2023): without this the simulator's 0DTE strikes would fail any realistic volume filter until noon.
    share = np.where(e == np.datetime64(day, "D"), share * ZERO_DTE_TURNOVER, share)
    return ChainTable(day, ref, e, k, call, iv, np.round(oi).astype(np.int64), share, rows)


def quotes(params: SimParams, symbol: str, table: ChainTable, now: datetime, spot: float,
           rows: npt.NDArray[np.int64] | None = None) -> list[OptionQuote]:
    """Quotes for ``rows`` (default all) at ``now`` and ``spot``; settled contracts are left out."""
    up = params.underlying(symbol)
    idx = np.arange(table.strike.size) if rows is None else rows
    t = years_to_expiry(now, table.expiry[idx])
    idx, t = idx[t > 0], t[t > 0]
    k, call, iv = table.strike[idx], table.is_call[idx], table.iv[idx]
    g = bsm(spot, k, t, params.rate, up.div_yield, iv, call)
    half = np.minimum(0.25, 0.005 + 0.004 * g.price)
    bid = np.maximum(0.0, np.floor((g.price - half) * 100.0 + 1e-9) / 100.0)
    ask = np.maximum(np.ceil((g.price + half) * 100.0 - 1e-9) / 100.0, bid + 0.01)
    s = und.session(table.day)
    assert s is not None
    elapsed = min(1.0, max(0.0, (now - s.open) / (s.close - s.open)))
    vol = np.round(table.open_interest[idx] * table.volume_share[idx] * elapsed).astype(np.int64)
    cols = zip(table.expiry[idx].astype(date).tolist(), k.tolist(), call.tolist(), bid.tolist(), ask.tolist(),
               np.round(g.price, 2).tolist(), iv.tolist(), g.delta.tolist(), g.gamma.tolist(), g.vega.tolist(),
               g.theta.tolist(), table.open_interest[idx].tolist(), vol.tolist(), strict=True)
    return [OptionQuote(OptionContract(symbol, d, kk, "C" if c else "P"), b, a, last, v, de, ga, ve, th, oi, n)
            for d, kk, c, b, a, last, v, de, ga, ve, th, oi, n in cols]
