"""Standard normal CDF and PDF, vectorised, without scipy.

numpy has no ``erf`` and scipy is not a qc dependency, so Φ is computed here from W. J. Cody's
rational Chebyshev approximations of erf/erfc (Cody 1969, "Rational Chebyshev approximations for the
error function", Math. Comp. 23(107); coefficients from SPECFUN ``CALERF``). The three branches
(|z| ≤ 0.46875, ≤ 4, > 4 with z = x/√2) have relative error below ~1e-16 in erf/erfc, so
``norm_cdf`` agrees with ``0.5 * math.erfc(-x / sqrt(2))`` to ≤ 2.3e-16 absolute everywhere and keeps
*relative* accuracy in the lower tail (≤ ~1e-14 for x > -8; ≤ ~4e-13 down to Φ(-37) ≈ 6e-300, where
the rounding of x/√2 itself dominates), which a ``1 - Φ(-x)`` form would not.
About 3x faster than ``np.frompyfunc(math.erfc)`` on 1e6 points (measured; scipy's ndtr is faster
still, but scipy is not a dependency).

Used by ``vpin`` (bulk volume classification) and ``greeks`` (Black-Scholes-Merton).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)
_ERFC_ZERO_BEYOND = 26.543  # erfc(z) underflows to 0 for z above this (Cody's XBIG)
_CODY_SMALL, _CODY_MID = 0.46875, 4.0  # Cody's branch points, as erfc_pos uses them
_SQRT_HALF_PI = math.sqrt(0.5 * math.pi)

_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)


def _erf_small(z: FloatArray) -> FloatArray:
    zsq = z * z
    num = _A[4] * zsq
    den = zsq
    for a, b in zip(_A[:3], _B[:3], strict=True):
        num = (num + a) * zsq
        den = (den + b) * zsq
    out: FloatArray = z * (num + _A[3]) / (den + _B[3])
    return out


def _gauss_tail(y: FloatArray) -> FloatArray:
    ys = np.trunc(y * 16.0) / 16.0
    out: FloatArray = np.exp(-ys * ys) * np.exp(-(y - ys) * (y + ys))
    return out


def _erfc_mid(y: FloatArray) -> FloatArray:
    num = _C[8] * y
    den = y.copy()
    for c, d in zip(_C[:7], _D[:7], strict=True):
        num += c
        num *= y
        den += d
        den *= y
    num += _C[7]
    den += _D[7]
    num /= den
    # exp(-y²) directly: for y ≤ 4 the rounding of y² costs at most ~16 ulp relative
    num *= np.exp(-y * y)
    return num


def _erfc_large(y: FloatArray) -> FloatArray:
    ysq = 1.0 / (y * y)
    num = _P[5] * ysq
    den = ysq
    for p, q in zip(_P[:4], _Q[:4], strict=True):
        num = (num + p) * ysq
        den = (den + q) * ysq
    ratio = ysq * (num + _P[4]) / (den + _Q[4])
    out: FloatArray = (_INV_SQRT_PI - ratio) / y * _gauss_tail(y)
    return out


def erfc_pos(y: FloatArray) -> FloatArray:
    """erfc(y) for y ≥ 0 with full relative accuracy (no cancellation in the tail)."""
    out = np.empty_like(y)
    small = y <= 0.46875
    mid = (y > 0.46875) & (y <= 4.0)
    large = (y > 4.0) & (y < _ERFC_ZERO_BEYOND)
    out[small] = 1.0 - _erf_small(y[small])
    out[mid] = _erfc_mid(y[mid])
    out[large] = _erfc_large(y[large])
    out[y >= _ERFC_ZERO_BEYOND] = 0.0
    out[np.isnan(y)] = np.nan
    return out


def norm_cdf(x: npt.ArrayLike) -> FloatArray:
    """Φ(x) elementwise; the half of the real line below 0 is computed as a tail, not as 1 − tail."""
    xa = np.asarray(x, dtype=np.float64)
    z = xa * _SQRT_HALF
    tail = 0.5 * erfc_pos(np.abs(z).reshape(-1)).reshape(xa.shape)
    out: FloatArray = np.where(z < 0.0, tail, 1.0 - tail)
    return out


def norm_pdf(x: npt.ArrayLike) -> FloatArray:
    """φ(x) elementwise."""
    xa = np.asarray(x, dtype=np.float64)
    out: FloatArray = _INV_SQRT_2PI * np.exp(-0.5 * xa * xa)
    return out


def norm_cdf_given_pdf(z: FloatArray, pdf: FloatArray) -> FloatArray:
    """Φ(z) from φ(z) already at hand: the tail Φ(−|z|) = √(π/2)·φ(z)·erfcx(|z|/√2), no second exp.

    Agrees with ``normal.norm_cdf`` to ~1e-16 absolute and ~1e-14 relative in the tail (tested),
    including its flush to 0 where erfc underflows (|z|/√2 ≥ 26.543).
    """
    y = np.abs(z)
    y *= _SQRT_HALF
    tail = erfcx_pos(y)
    tail *= pdf
    tail *= _SQRT_HALF_PI
    tail[y >= _ERFC_ZERO_BEYOND] = 0.0
    out: FloatArray = np.where(z < 0.0, tail, 1.0 - tail)
    return out


def erfcx_pos(y: FloatArray) -> FloatArray:
    """e^{y²}·erfc(y) for y ≥ 0 (Cody's three branches, relative error ≲ 1e-15), NaN for NaN."""
    shape, y = y.shape, y.reshape(-1)
    out = np.empty_like(y)
    small, large = y <= _CODY_SMALL, y > _CODY_MID
    i_small, i_large = np.flatnonzero(small), np.flatnonzero(large)
    i_mid = np.flatnonzero(~(small | large))  # NaN lands here and stays NaN
    out[i_mid] = _erfcx_mid(y[i_mid])
    out[i_large] = _erfcx_large(y[i_large])
    out[i_small] = _erfcx_small(y[i_small])
    return out.reshape(shape)


def _erfcx_small(y: FloatArray) -> FloatArray:
    z = y * y
    out: FloatArray = (1.0 - y * _cody_ratio(z, _A, _B)) * np.exp(z)  # e^{y²}(1 − erf y)
    return out


def _erfcx_mid(y: FloatArray) -> FloatArray:
    num = _C[8] * y
    den = y + _D[0]
    for c, d in zip(_C[:7], _D[1:], strict=True):
        num += c
        num *= y
        den *= y
        den += d
    num += _C[7]
    num /= den
    return num


def _erfcx_large(y: FloatArray) -> FloatArray:
    with np.errstate(over="ignore"):  # y² overflows only where 1/y² is 0 anyway
        z = 1.0 / (y * y)
    out: FloatArray = (_INV_SQRT_PI - z * _cody_ratio(z, _P, _Q)) / y
    return out


def _cody_ratio(z: FloatArray, num_c: tuple[float, ...], den_c: tuple[float, ...]) -> FloatArray:
    """Cody's (n_top·zᵏ + n₀zᵏ⁻¹ + … + n_{k−1}) / (zᵏ + d₀zᵏ⁻¹ + … + d_{k−1}), n_top = num_c[-1]."""
    num = num_c[-1] * z
    den = z.copy()
    for a, b in zip(num_c[:-2], den_c[:-1], strict=True):
        num += a
        num *= z
        den += b
        den *= z
    num += num_c[-2]
    den += den_c[-1]
    num /= den
    return num
