"""Simulated option chains: ordering, parity, IVs qc re-solves, and the documented dealer positioning."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from qc.analytics.greeks import bsm, implied_vol, years_to_expiry
from qc.core.clock import NEW_YORK
from qc.sim.market.market import SimMarket
from qc.sim.market.models import OptionContract, OptionQuote
from qc.sim.market.params import SimParams

NOW = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK).astimezone(timezone.utc)


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return SimMarket(NOW, SimParams(depth_rate_hz=50.0))


@pytest.fixture(scope="module")
def spy(market: SimMarket) -> list[OptionQuote]:
    return market.option_chain("SPY", NOW)


def arrays(chain: list[OptionQuote]) -> dict[str, np.ndarray]:
    return {
        "k": np.array([q.contract.strike for q in chain]),
        "call": np.array([q.contract.right == "C" for q in chain]),
        "t": years_to_expiry(NOW, [q.contract.expiry for q in chain]),
        "iv": np.array([q.iv for q in chain]),
        "oi": np.array([q.open_interest for q in chain], dtype=float),
        "bid": np.array([q.bid for q in chain]),
        "ask": np.array([q.ask for q in chain]),
    }


def test_chain_is_sorted_listed_and_greeks_are_qcs_bsm(market: SimMarket, spy: list[OptionQuote]) -> None:
    keys = [(q.contract.expiry, q.contract.strike, q.contract.right) for q in spy]
    assert keys == sorted(keys)
    expiries = sorted({q.contract.expiry for q in spy})
    assert expiries[0] == NOW.astimezone(NEW_YORK).date()  # 0DTE listed
    assert len(expiries) >= 30
    assert (expiries[-1] - expiries[0]).days > 300
    assert all(e.weekday() < 5 for e in expiries)
    a = arrays(spy)
    ref = market.reference_price("SPY", NOW.astimezone(NEW_YORK).date())
    assert a["k"].min() <= ref * 0.86 and a["k"].max() >= ref * 1.14
    up = market.params.underlying("SPY")
    g = bsm(market.spot("SPY"), a["k"], a["t"], market.params.rate, up.div_yield, a["iv"], a["call"])
    assert np.allclose([q.delta for q in spy], g.delta, atol=1e-12)
    assert np.allclose([q.gamma for q in spy], g.gamma, atol=1e-12)
    assert np.all(a["bid"] < a["ask"])
    assert np.all(a["bid"] >= 0)


def test_put_call_parity_on_mids_within_the_spread(market: SimMarket, spy: list[OptionQuote]) -> None:
    a = arrays(spy)
    c, p = slice(0, None, 2), slice(1, None, 2)
    assert np.all(a["call"][c]) and not np.any(a["call"][p])
    up, s = market.params.underlying("SPY"), market.spot("SPY")
    t, k = a["t"][c], a["k"][c]
    forward = s * np.exp(-up.div_yield * t) - k * np.exp(-market.params.rate * t)
    mids = (a["bid"] + a["ask"]) / 2
    gap = np.abs(mids[c] - mids[p] - forward)
    assert np.all(gap <= (a["ask"][c] - a["bid"][c] + a["ask"][p] - a["bid"][p]) / 2 + 1e-9)


def test_iv_resolved_from_the_mid_is_the_surface_to_the_quote_rounding(market: SimMarket,
                                                                        spy: list[OptionQuote]) -> None:
    a = arrays(spy)
    up, s = market.params.underlying("SPY"), market.spot("SPY")
    mid = (a["bid"] + a["ask"]) / 2
    ok = a["bid"] > 0
    def solve(price: np.ndarray) -> np.ndarray:
        return implied_vol(price, s, a["k"][ok], a["t"][ok], market.params.rate, up.div_yield, a["call"][ok])

    # the mid is the BSM price rounded outward to cents, so at most half a cent off: the surface IV
    # must lie between the IVs qc solves from mid ± half a cent
    iv, lo, hi = solve(mid[ok]), solve(mid[ok] - 0.0051), solve(mid[ok] + 0.0051)
    wellposed = np.isfinite(lo) & np.isfinite(hi) & (hi - lo < 0.01)
    assert wellposed.sum() > 0.5 * ok.sum()
    surface = a["iv"][ok][wellposed]
    assert np.all((lo[wellposed] <= surface + 1e-9) & (surface <= hi[wellposed] + 1e-9))
    assert np.all(np.abs(iv[wellposed] - surface) < 0.01)
    skew = a["iv"][(a["t"] > 0.05) & (a["t"] < 0.1)]
    assert skew[0] > skew[-1]  # lowest strike's put-side vol above the highest strike's


def _profile(levels: np.ndarray, a: dict[str, np.ndarray], rate: float, q: float) -> np.ndarray:
    sign = np.where(a["call"], 1.0, -1.0)
    gamma = bsm(levels[:, None], a["k"], a["t"], rate, q, a["iv"], a["call"]).gamma
    out: np.ndarray = np.nansum(sign * gamma * a["oi"] * 100.0, axis=1) * levels**2 * 0.01
    return out


@pytest.mark.parametrize("symbol", ["SPY", "IWM"])
def test_documented_positioning_holds(market: SimMarket, symbol: str) -> None:
    chain = market.option_chain(symbol, NOW)
    a = arrays(chain)
    up, s = market.params.underlying(symbol), market.spot(symbol)
    expect = market.positioning_levels(symbol, NOW.astimezone(NEW_YORK).date())
    gex = _profile(np.array([s]), a, market.params.rate, up.div_yield)[0]
    assert (gex > 0) == (s > expect["zero_gamma"])
    levels = np.linspace(0.95 * s, 1.05 * s, 101)
    prof = _profile(levels, a, market.params.rate, up.div_yield)
    cross = np.flatnonzero(np.sign(prof[:-1]) != np.sign(prof[1:]))
    flips = levels[cross] - prof[cross] * (levels[cross + 1] - levels[cross]) / (prof[cross + 1] - prof[cross])
    flip = flips[np.argmin(np.abs(flips - s))]
    assert flip == pytest.approx(expect["zero_gamma"], rel=0.003)
    sign = np.where(a["call"], 1.0, -1.0)
    per = sign * bsm(s, a["k"], a["t"], market.params.rate, up.div_yield, a["iv"], a["call"]).gamma * a["oi"]
    strikes, inv = np.unique(a["k"], return_inverse=True)
    by_strike = np.bincount(inv, np.nan_to_num(per))
    above, below = strikes >= s, strikes <= s
    assert strikes[above][np.argmax(by_strike[above])] == expect["call_wall"]
    assert strikes[below][np.argmin(by_strike[below])] == expect["put_wall"]


def test_zero_gamma_stays_put_late_in_the_day() -> None:
    late = NOW + timedelta(hours=4, minutes=50)  # 15:50 New York, 0DTE nearly gone
    m = SimMarket(late, SimParams(depth_rate_hz=50.0))
    a = {**arrays(m.option_chain("SPY", late))}
    a["t"] = years_to_expiry(late, [q.contract.expiry for q in m.option_chain("SPY", late)])
    up = m.params.underlying("SPY")
    expect = m.positioning_levels("SPY", late.astimezone(NEW_YORK).date())["zero_gamma"]
    prof = _profile(np.array([expect * 0.997, expect * 1.003]), a, m.params.rate, up.div_yield)
    assert prof[0] < 0 < prof[1]


def test_option_quote_matches_the_chain_and_oi_is_deterministic(market: SimMarket, spy: list[OptionQuote]) -> None:
    row = spy[len(spy) // 2]
    assert market.option_quote(row.contract, NOW) == row
    again = SimMarket(NOW - timedelta(hours=1), SimParams(depth_rate_hz=50.0)).option_chain("SPY", NOW)
    assert [q.open_interest for q in again] == [q.open_interest for q in spy]
    other = SimMarket(NOW, SimParams(seed=7)).option_chain("SPY", NOW)
    assert [q.open_interest for q in other] != [q.open_interest for q in spy]
    missing = OptionContract("SPY", row.contract.expiry, row.contract.strike + 0.5, "C")
    assert market.option_quote(missing, NOW) is None
    expired = OptionContract("SPY", NOW.astimezone(NEW_YORK).date(), row.contract.strike, "C")
    assert market.option_quote(expired, NOW + timedelta(hours=6)) is None
