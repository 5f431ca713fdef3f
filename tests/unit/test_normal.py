"""Φ and φ against the standard library's erfc/exp, in the bulk and in both tails."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qc.analytics.normal import norm_cdf, norm_pdf


def _ref_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def test_cdf_matches_math_erfc_on_a_dense_grid() -> None:
    # the grid crosses every branch boundary of Cody's approximation (|x|/√2 = 0.46875, 4, 26.5)
    x = np.linspace(-40.0, 40.0, 40_001)
    ref = np.array([_ref_cdf(v) for v in x])
    got = norm_cdf(x)
    assert np.max(np.abs(got - ref)) <= 1e-15


def test_cdf_keeps_relative_accuracy_in_the_lower_tail() -> None:
    x = np.linspace(-8.0, -1.0, 7_001)
    ref = np.array([_ref_cdf(v) for v in x])
    assert np.max(np.abs(norm_cdf(x) / ref - 1.0)) <= 5e-14
    far = np.array([-20.0, -30.0, -37.0])
    assert np.allclose(norm_cdf(far), [_ref_cdf(v) for v in far], rtol=1e-12, atol=0.0)


@pytest.mark.parametrize(("x", "expected"), [
    (0.0, 0.5), (1.0, 0.8413447460685429), (-1.959963984540054, 0.025),
    (np.inf, 1.0), (-np.inf, 0.0), (-50.0, 0.0), (50.0, 1.0),
])
def test_cdf_known_values(x: float, expected: float) -> None:
    assert float(norm_cdf(x)) == pytest.approx(expected, abs=1e-16, rel=1e-14)


def test_cdf_propagates_nan_and_keeps_shape() -> None:
    x = np.array([[0.0, np.nan], [1.0, -1.0]])
    got = norm_cdf(x)
    assert got.shape == (2, 2)
    assert np.isnan(got[0, 1])
    assert got[1, 0] + got[1, 1] == pytest.approx(1.0, abs=1e-16)


@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-30.0, 30.0)))
def test_cdf_symmetry_and_monotonicity(x: np.ndarray) -> None:
    assert np.all(np.abs(norm_cdf(x) + norm_cdf(-x) - 1.0) <= 2e-16)
    xs = np.sort(x)
    assert np.all(np.diff(norm_cdf(xs)) >= 0.0)


def test_pdf_matches_math_exp() -> None:
    x = np.linspace(-10.0, 10.0, 2_001)
    ref = np.array([math.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi) for v in x])
    assert np.allclose(norm_pdf(x), ref, rtol=1e-15, atol=0.0)
