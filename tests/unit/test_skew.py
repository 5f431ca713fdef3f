"""0DTE skew: sign, zero on a flat smile, agreement with a directly solved 25Δ strike, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from qc.analytics.greeks import bsm
from qc.analytics.skew import interpolate_bracketed, zero_dte_skew

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
