"""0DTE skew: sign, zero on a flat smile, agreement with a directly solved 25Δ strike, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qc.analytics.exposure import Chain
from qc.analytics.greeks import bsm
from qc.analytics.skew import atm_iv, interpolate_bracketed, skew_of_nearest, zero_dte_skew

SPOT, T, R, Q = 100.0, 3.0 / (365 * 24), 0.04, 0.01  # three hours before the close
STRIKES = np.round(np.arange(97.0, 103.0001, 0.05), 2)


def _put_skewed(k: np.ndarray) -> np.ndarray:
    return 0.20 - 2.0 * (k / SPOT - 1.0)  # richer downside: 22 % at K/S 0.99, 18 % at 1.01


def test_flat_smile_has_zero_skew() -> None:
    flat = np.full(STRIKES.shape, 0.2)
    out = zero_dte_skew(STRIKES, flat, flat, SPOT, T, R, Q)
    assert out.reasons == ()
    assert out.skew_25d == pytest.approx(0.0, abs=1e-15)
    assert out.normalised_25d == pytest.approx(0.0, abs=1e-15)
    assert out.moneyness_skew == pytest.approx(0.0, abs=1e-15)
    assert out.iv_atm == pytest.approx(0.2, abs=1e-15)


def test_put_skewed_smile_is_positive() -> None:
    iv = _put_skewed(STRIKES)
    out = zero_dte_skew(STRIKES, iv, iv, SPOT, T, R, Q)
    assert out.reasons == ()
    assert out.skew_25d is not None and out.skew_25d > 0
    assert out.normalised_25d is not None and out.iv_atm is not None
    assert out.normalised_25d == pytest.approx(out.skew_25d / out.iv_atm)
    assert out.moneyness_skew == pytest.approx(0.04, abs=1e-12)  # linear smile: exact in strike


def _strike_at_delta(target: float, is_call: bool) -> float:
    lo, hi = 90.0, 110.0
    for _ in range(100):  # bisection on the smile-consistent delta, independent of the code under test
        mid = 0.5 * (lo + hi)
        delta = float(bsm(SPOT, mid, T, R, Q, _put_skewed(np.array(mid)), is_call).delta)
        lo, hi = (mid, hi) if delta > target else (lo, mid)
    return 0.5 * (lo + hi)


def test_25d_ivs_match_directly_solved_strikes() -> None:
    iv = _put_skewed(STRIKES)
    out = zero_dte_skew(STRIKES, iv, iv, SPOT, T, R, Q)
    k_put, k_call = _strike_at_delta(-0.25, False), _strike_at_delta(0.25, True)
    assert k_put < SPOT < k_call
    assert out.iv_25d_put == pytest.approx(float(_put_skewed(np.array(k_put))), abs=2e-5)
    assert out.iv_25d_call == pytest.approx(float(_put_skewed(np.array(k_call))), abs=2e-5)


def test_missing_25d_gives_none_with_reason() -> None:
    near = np.round(np.arange(99.95, 100.0501, 0.05), 2)
    iv = _put_skewed(near)
    out = zero_dte_skew(near, iv, iv, SPOT, T, R, Q)
    assert out.skew_25d is None and out.normalised_25d is None
    assert out.moneyness_skew is None
    assert any("25Δ put" in r and "not extrapolated" in r for r in out.reasons)
    assert any("K/S 0.99" in r for r in out.reasons)


def test_unquoted_strikes_are_skipped_not_zeroed() -> None:
    iv = _put_skewed(STRIKES)
    holes = iv.copy()
    holes[::7] = np.nan
    full = zero_dte_skew(STRIKES, iv, iv, SPOT, T, R, Q)
    gappy = zero_dte_skew(STRIKES, holes, holes, SPOT, T, R, Q)
    assert gappy.skew_25d is not None and full.skew_25d is not None
    assert gappy.skew_25d == pytest.approx(full.skew_25d, abs=1e-3)


def test_settled_expiry_gives_reason() -> None:
    iv = _put_skewed(STRIKES)
    out = zero_dte_skew(STRIKES, iv, iv, SPOT, 0.0, R, Q)
    assert out.skew_25d is None and out.moneyness_skew is None
    assert "settled" in out.reasons[0]


def test_interpolate_bracketed_never_extrapolates() -> None:
    xs, ys = np.array([0.6, 0.4, 0.2]), np.array([0.2, 0.3, 0.5])
    assert interpolate_bracketed(xs, ys, 0.3) == pytest.approx(0.4)
    assert interpolate_bracketed(xs, ys, 0.4) == 0.3
    assert interpolate_bracketed(xs, ys, 0.1) is None
    assert interpolate_bracketed(xs, ys, 0.7) is None


def test_mismatched_inputs_raise() -> None:
    with pytest.raises(ValueError, match="1-D of one length"):
        zero_dte_skew([99.0, 100.0], [0.2], [0.2, 0.2], SPOT, T, R, Q)


# --- chain helpers: which expiry and strike they read ------------------------------------------------


def _chain(rows: list[tuple[str, float, float, bool, float]], spot: float = 100.0) -> Chain:
    """(expiry, years to it, strike, is_call, iv) rows; ≤ 0 years means settled."""
    exp, t, k, call, iv = zip(*rows, strict=True)
    return Chain(spot, np.array(k), np.array(exp, dtype="datetime64[D]"), np.array(t), np.array(call),
                 np.array(iv), np.ones(len(rows)), np.datetime64("2026-11-24", "D"))


TERM = _chain([
    ("2026-11-23", 0.0, 100.0, True, 0.90),  # settled yesterday: never read
    ("2026-11-24", 0.001, 99.0, True, 0.30), ("2026-11-24", 0.001, 101.5, True, 0.31),
    ("2026-11-24", 0.001, 99.0, False, 0.34), ("2026-11-24", 0.001, 101.5, False, 0.35),
    ("2026-12-18", 0.07, 95.0, True, 0.22), ("2026-12-18", 0.07, 100.5, True, 0.20),
    ("2026-12-18", 0.07, 100.5, False, 0.24), ("2026-12-18", 0.07, 105.0, False, 0.26),
    ("2027-01-15", 0.15, 100.0, True, float("nan")),  # farthest, but not quoted: skipped
])


def test_atm_iv_reads_the_strike_nearest_spot_on_the_nearest_and_farthest_quoted_expiry() -> None:
    assert atm_iv(TERM, nearest=True) == pytest.approx((0.30 + 0.34) / 2)  # 99 is nearer 100 than 101.5
    assert atm_iv(TERM, nearest=False) == pytest.approx((0.20 + 0.24) / 2)  # Dec 100.5, calls and puts


def test_atm_iv_is_nan_without_a_quoted_unexpired_contract() -> None:
    assert math.isnan(atm_iv(_chain([("2026-11-23", 0.0, 100.0, True, 0.2),
                                     ("2026-12-18", 0.07, 100.0, False, float("nan"))]), nearest=True))


def test_skew_of_nearest_is_the_nearest_unexpired_smile() -> None:
    chain = _chain([("2026-11-23", 0.0, k, c, 0.9) for k in STRIKES for c in (True, False)]
                   + [("2026-11-24", T, k, c, iv) for k, iv in zip(STRIKES, _put_skewed(STRIKES), strict=True)
                      for c in (True, False)]
                   + [("2026-12-18", 0.07, k, c, 0.2) for k in STRIKES for c in (True, False)], spot=SPOT)
    direct = zero_dte_skew(STRIKES, _put_skewed(STRIKES), _put_skewed(STRIKES), SPOT, T, 0.0, 0.0)
    assert skew_of_nearest(chain) == direct


def test_skew_of_nearest_matches_calls_and_puts_by_strike() -> None:
    calls_only_high = [("2026-11-24", T, k, True, 0.2) for k in STRIKES if k >= SPOT]
    puts_only_low = [("2026-11-24", T, k, False, 0.2) for k in STRIKES if k <= SPOT]
    got = skew_of_nearest(_chain(puts_only_low + calls_only_high, spot=SPOT))
    assert got.moneyness_skew == pytest.approx(0.0, abs=1e-15)  # OTM puts and calls line up on one grid


def test_skew_of_nearest_without_unexpired_contracts_says_so() -> None:
    got = skew_of_nearest(_chain([("2026-11-23", 0.0, 100.0, True, 0.2)]))
    assert got.skew_25d is None and got.reasons == ("no unexpired contracts",)
