"""Book imbalance, microprice and venue attribution: hand cases and properties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qc.analytics.imbalance import (
    book_imbalance,
    level_weights,
    microprice,
    side_attribution,
    venue_attribution,
)

VENUES = ["ARCA", "ISLAND", "BATS", "IEX", "NYSE"]
depth = arrays(np.float64, 5, elements=st.integers(0, 10_000).map(float))


def test_level_weights() -> None:
    assert level_weights(3, "exp", 0.5) == pytest.approx([1.0, math.exp(-0.5), math.exp(-1.0)])
    assert level_weights(3, "inverse") == pytest.approx([1.0, 0.5, 1.0 / 3.0])
    assert level_weights(2, "exp", 0.0).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="decay"):
        level_weights(3, "exp", -1.0)


def test_imbalance_hand_case_uses_the_stated_weights() -> None:
    bid, ask = [100.0, 0.0, 50.0], [0.0, 100.0, 0.0]
    w = [1.0, 0.5, 1.0 / 3.0]
    b, a = 100.0 + 50.0 * w[2], 100.0 * w[1]
    assert float(book_imbalance(bid, ask, 3, "inverse")) == pytest.approx((b - a) / (b + a), abs=1e-15)
    # only the top level counts with n_levels=1; positive = bid-heavy
    assert float(book_imbalance(bid, ask, 1)) == 1.0


def test_imbalance_signs_and_empty_book() -> None:
    assert float(book_imbalance([5.0, 5.0], [0.0, 0.0])) == 1.0
    assert float(book_imbalance([0.0], [7.0])) == -1.0
    assert float(book_imbalance([], [3.0])) == -1.0
    assert math.isnan(float(book_imbalance([0.0], [0.0])))


def test_imbalance_is_vectorised_over_snapshots() -> None:
    bid = np.array([[1.0, 1.0], [3.0, 0.0]])
    ask = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert book_imbalance(bid, ask, 2, "exp", 0.0).tolist() == [0.0, 0.5]


@given(depth, st.integers(1, 5), st.floats(0.0, 3.0))
def test_symmetric_book_is_zero_and_swap_flips_sign(size: np.ndarray, n: int, decay: float) -> None:
    if size[:n].sum() > 0:
        assert float(book_imbalance(size, size, n, "exp", decay)) == 0.0
    other = size[::-1].copy()
    value = book_imbalance(size, other, n, "exp", decay)
    if not np.isnan(value):
        assert -1.0 <= float(value) <= 1.0
        assert float(book_imbalance(other, size, n, "exp", decay)) == pytest.approx(-float(value), abs=1e-15)


def test_microprice_hand_case_leans_to_the_thin_side() -> None:
    # 300 bid vs 100 ask: the ask is likelier to be taken out, so the fair price sits nearer the ask
    assert float(microprice(100.0, 300.0, 100.04, 100.0)) == pytest.approx(100.03, abs=1e-12)
    assert float(microprice(100.0, 0.0, 100.04, 0.0)) == pytest.approx(100.02, abs=1e-12)


@given(st.floats(1.0, 1_000.0), st.floats(0.01, 5.0), st.floats(0.0, 1e6), st.floats(0.0, 1e6))
def test_microprice_between_bid_and_ask(bid: float, spread: float, qb: float, qa: float) -> None:
    ask = bid + spread
    mp = float(microprice(bid, qb, ask, qa))
    assert bid <= mp <= ask
    if qb == qa:
        assert mp == pytest.approx(0.5 * (bid + ask), rel=1e-15)


def test_venue_attribution_hand_case() -> None:
    got = venue_attribution(["ARCA", "ISLAND", "ARCA"], [100.0, 300.0, 100.0],
                            ["IEX"], [50.0])
    assert got.bid.shares == pytest.approx({"ARCA": 0.4, "ISLAND": 0.6})
    assert got.bid.herfindahl == pytest.approx(0.4**2 + 0.6**2)
    assert got.ask.shares == {"IEX": 1.0}
    assert got.ask.herfindahl == 1.0
    top2 = side_attribution(["ARCA", "ISLAND", "ARCA"], [100.0, 300.0, 100.0], n_levels=2)
    assert top2.shares == pytest.approx({"ARCA": 0.25, "ISLAND": 0.75})


@pytest.mark.parametrize("as_input", [list, np.asarray], ids=["python path", "numpy path"])
def test_venue_attribution_empty_side_and_bad_input(as_input: Any) -> None:
    empty = side_attribution(as_input(["ARCA"]), as_input([0.0]))
    assert empty.shares == {}
    assert math.isnan(empty.herfindahl)
    with pytest.raises(ValueError, match="size must be >= 0"):
        side_attribution(as_input(["ARCA"]), as_input([-1.0]))
    with pytest.raises(ValueError, match="size must be >= 0"):
        side_attribution(as_input(["ARCA"]), as_input([float("nan")]))
    with pytest.raises(ValueError, match="equal length"):
        side_attribution(as_input(["ARCA", "IEX"]), as_input([1.0]))


@given(st.lists(st.sampled_from(VENUES), min_size=0, max_size=12).flatmap(
    lambda v: st.tuples(st.just(v), st.lists(st.floats(0, 1e6), min_size=len(v), max_size=len(v)))),
    st.none() | st.integers(0, 12))
def test_venue_attribution_python_path_equals_numpy_path(book: tuple[list[str], list[float]],
                                                          n_levels: int | None) -> None:
    venues, size = book
    small = side_attribution(venues, size, n_levels)  # the live book's path
    big = side_attribution(np.asarray(venues, dtype=np.str_), np.asarray(size), n_levels)
    assert list(small.shares) == list(big.shares)
    assert small.shares == pytest.approx(big.shares, rel=1e-12, abs=1e-300)
    assert small.herfindahl == pytest.approx(big.herfindahl, rel=1e-12, nan_ok=True)


@given(st.lists(st.sampled_from(VENUES), min_size=1, max_size=10).flatmap(
    lambda v: st.tuples(st.just(v), st.lists(st.integers(0, 5_000).map(float), min_size=len(v),
                                             max_size=len(v)))))
def test_venue_shares_sum_to_one_and_hhi_bounds(book: tuple[list[str], list[float]]) -> None:
    venues, size = book
    side = side_attribution(venues, size)
    if sum(size) == 0:
        assert side.shares == {}
        return
    assert sum(side.shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert 1.0 / len(side.shares) - 1e-12 <= side.herfindahl <= 1.0 + 1e-12
    for venue, share in side.shares.items():
        shown = sum(s for v, s in zip(venues, size, strict=True) if v == venue)
        assert share == pytest.approx(shown / sum(size), rel=1e-12)
