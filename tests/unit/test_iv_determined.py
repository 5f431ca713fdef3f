"""implied_vol returns σ wherever the price determines it, short-dated in the money included.

Determined: a price error ε_P = 1e-15·S + 1e-14·P (bsm's own float64 noise, with room) moves σ by
at most 1e-9, i.e. ε_P / vega ≤ 1e-9 with vega = ∂P/∂σ per 1.00 σ (qc's ``Greeks.vega`` is per vol
point, so ×100). There σ must come back to 1e-8. Elsewhere the answer is NaN or within a tolerance
proportional to that sensitivity, never a made-up σ. Prices outside the no-arbitrage bounds are NaN.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.analytics.greeks import bsm, implied_vol

FloatArray = npt.NDArray[np.float64]

MINUTE = 1.0 / (365.0 * 24.0 * 60.0)
DETERMINED = 1e-9  # σ moved by at most this under the price noise: σ is determined
ACCURACY = 1e-8  # |σ error| allowed where determined
UNDETERMINED_SLACK = 10.0  # elsewhere, a returned σ is within this many sensitivities

# (S, K, T, r, q, σ, call): in the money, short dated; each returned NaN once
EXAMPLES = [
    (206.54, 200.06, 0.00092, 0.0560, 0.0021, 0.2497, True),
    (60.18, 60.93, 0.00014, 0.0462, 0.0005, 0.2697, False),
    (557.72, 518.92, 0.09875, 0.0585, 0.0226, 0.0511, True),
    (289.50, 312.18, 0.00019, 0.0564, 0.0162, 1.3810, False),
]


def _sensitivity(price: FloatArray, spot: FloatArray, vega_per_point: FloatArray) -> FloatArray:
    """σ moved by the price noise 1e-15·S + 1e-14·P: noise / (∂P/∂σ per 1.00 σ); inf where vega is 0."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a subnormal vega: inf
        sens: FloatArray = np.where(vega_per_point > 0,
                                    (1e-15 * spot + 1e-14 * price) / (100.0 * vega_per_point), np.inf)
    return sens


def _check_round_trip(s: FloatArray, k: FloatArray, t: FloatArray, r: FloatArray, q: FloatArray,
                      sigma: FloatArray, call: npt.NDArray[np.bool_]) -> int:
    """Asserts the rule on each option; returns how many were determined."""
    g = bsm(s, k, t, r, q, sigma, call)
    iv = implied_vol(g.price, s, k, t, r, q, call)
    sens = _sensitivity(g.price, s, g.vega)
    determined = sens <= DETERMINED
    err = np.abs(iv - sigma)
    bad = determined & ~(err <= ACCURACY)  # NaN counts as bad
    assert not bad.any(), list(zip(s[bad], k[bad], t[bad], r[bad], q[bad], sigma[bad], call[bad],
                                   iv[bad], sens[bad], strict=True))[:5]
    made_up = ~determined & np.isfinite(iv) & ~(err / UNDETERMINED_SLACK <= sens)
    assert not made_up.any(), list(zip(s[made_up], k[made_up], t[made_up], sigma[made_up], iv[made_up],
                                       sens[made_up], strict=True))[:5]
    return int(determined.sum())


@pytest.mark.parametrize(("s", "k", "t", "r", "q", "sigma", "call"), EXAMPLES)
def test_short_dated_in_the_money_examples(s: float, k: float, t: float, r: float, q: float, sigma: float,
                                           call: bool) -> None:
    g = bsm(s, k, t, r, q, sigma, call)
    assert _sensitivity(g.price, np.array(s), g.vega) <= DETERMINED  # each is determined
    assert float(implied_vol(g.price, s, k, t, r, q, call)) == pytest.approx(sigma, abs=ACCURACY)


option = st.tuples(
    st.floats(10.0, 1000.0),  # S
    st.floats(0.5, 1.5),  # K / S
    st.floats(math.log(MINUTE), math.log(2.0)),  # ln T: a minute to two years
    st.floats(0.05, 2.0),  # σ
    st.floats(0.0, 0.08),  # r
    st.floats(0.0, 0.04),  # q
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(option)
def test_sigma_returned_wherever_the_price_determines_it(o: tuple[float, ...]) -> None:
    s, m, log_t, sigma, r, q, call = o
    spot, strike, t, rate, div, vol = (np.array([v]) for v in (s, s * m, math.exp(log_t), r, q, sigma))
    _check_round_trip(spot, strike, t, rate, div, vol, np.array([bool(call)]))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_sigma_returned_wherever_determined_on_random_chains(seed: int) -> None:
    """Vectors of 4,000 options: enough to land near the edge of the determined region (ITM, short T)."""
    rng = np.random.default_rng(seed)
    n = 4_000
    s = rng.uniform(10.0, 1000.0, n)
    t = np.exp(rng.uniform(math.log(MINUTE), math.log(2.0), n))
    determined = _check_round_trip(s, s * rng.uniform(0.5, 1.5, n), t, rng.uniform(0.0, 0.08, n),
                                   rng.uniform(0.0, 0.04, n), rng.uniform(0.05, 2.0, n), rng.random(n) < 0.5)
    assert determined > n // 4  # the rule is not vacuous


@settings(max_examples=300, deadline=None)
@given(option, st.floats(1e-12, 0.5))
def test_nan_outside_no_arbitrage_bounds(o: tuple[float, ...], frac: float) -> None:
    """Below the discounted intrinsic value S e^{−qT} − K e^{−rT} (call) / K e^{−rT} − S e^{−qT} (put),
    at or above the upper bound S e^{−qT} (call) / K e^{−rT} (put), zero or negative: NaN."""
    s, m, log_t, _, r, q, is_call = o
    k, t, call = s * m, math.exp(log_t), bool(is_call)
    s_disc, k_disc = s * math.exp(-q * t), k * math.exp(-r * t)
    intrinsic = max(s_disc - k_disc, 0.0) if call else max(k_disc - s_disc, 0.0)
    upper = s_disc if call else k_disc
    prices = [upper, upper * (1.0 + frac), 2.0 * upper, 0.0, -frac * s]
    if intrinsic > 0:
        prices += [intrinsic * (1.0 - frac), intrinsic - frac * 1e-3 * s]
    got = implied_vol(np.array(prices), s, k, t, r, q, call)
    assert np.all(np.isnan(got)), list(zip(prices, got, strict=True))
