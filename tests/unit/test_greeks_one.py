"""``bsm_one`` (plain floats, one contract) agrees with the vectorised ``bsm`` everywhere ``bsm`` is defined."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.analytics.greeks import OneGreeks, bsm, bsm_one

spots = st.floats(1.0, 5000.0)


@given(s=spots, moneyness=st.floats(0.3, 3.0), t=st.floats(1e-5, 3.0), r=st.floats(-0.02, 0.1),
       q=st.floats(0.0, 0.08), vol=st.floats(0.01, 3.0), call=st.booleans())
def test_one_contract_agrees_with_the_vectorised_form(s: float, moneyness: float, t: float, r: float, q: float,
                                                      vol: float, call: bool) -> None:
    k = s * moneyness
    one = bsm_one(s, k, t, r, q, vol, call)
    many = bsm(np.array([s]), np.array([k]), np.array([t]), np.array([r]), np.array([q]), np.array([vol]),
               np.array([call]))
    assert one is not None
    for name in OneGreeks._fields:
        want = float(getattr(many, name)[0])
        assert getattr(one, name) == pytest.approx(want, rel=1e-9, abs=1e-12 * max(1.0, s)), name


@pytest.mark.parametrize("args", [(100.0, 100.0, 0.0, 0.0, 0.0, 0.2), (100.0, 100.0, -1.0, 0.0, 0.0, 0.2),
                                  (100.0, 100.0, 1.0, 0.0, 0.0, 0.0), (0.0, 100.0, 1.0, 0.0, 0.0, 0.2),
                                  (100.0, 0.0, 1.0, 0.0, 0.0, 0.2), (math.inf, 100.0, 1.0, 0.0, 0.0, 0.2),
                                  (100.0, 100.0, 1.0, math.nan, 0.0, 0.2)])
def test_undefined_where_bsm_is_nan(args: tuple[float, float, float, float, float, float]) -> None:
    s, k, t, r, q, vol = args
    assert bsm_one(s, k, t, r, q, vol, True) is None
    one = bsm(np.array([s]), np.array([k]), np.array([t]), np.array([r]), np.array([q]), np.array([vol]),
              np.array([True]))
    assert math.isnan(float(one.price[0]))


def test_an_at_the_money_call_a_year_out_by_hand() -> None:
    got = bsm_one(100.0, 100.0, 1.0, 0.0, 0.0, 0.2, True)
    assert got is not None
    assert got.delta == pytest.approx(0.5 * (1.0 + math.erf(0.1 / math.sqrt(2.0))), rel=1e-15)  # Φ(0.1)
    assert got.vega == pytest.approx(100.0 * math.exp(-0.005) / math.sqrt(2.0 * math.pi) * 0.01, rel=1e-14)
