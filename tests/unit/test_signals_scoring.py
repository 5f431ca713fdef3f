"""The composite score: a weighted mean over present directional factors, VPIN-filtered flow, the gamma
mode's reweighting and size, and the key property that an abstaining factor is renormalised away."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from qc.signals.model import (
    ALL_FACTORS,
    AUCTION,
    BOOK_IMBALANCE,
    CONDITIONERS,
    DIRECTIONAL,
    FLOW_CLUSTER,
    GAMMA_MODE,
    IV_RV,
    LAST_HALF_HOUR,
    MICROPRICE,
    NEWS,
    ORDER_FLOW,
    SKEW_0DTE,
    VPIN_CHANGE,
    VPIN_LEVEL,
    WALLS,
    Factor,
    StrategyParams,
)
from qc.signals.scoring import score


def f(name: str, value: float | None, reason: str = "") -> Factor:
    return Factor(name, value, 1.0, {}, reason or ("" if value is not None else "missing"))


def params(weights: Mapping[str, float], min_factors: int = 1) -> StrategyParams:
    return StrategyParams("0dte", threshold=0.3, weights=weights, min_factors=min_factors)


def factors(**values: float | None) -> dict[str, Factor]:
    return {n: f(n, v) for n, v in values.items()}


# --- the weighted mean --------------------------------------------------------------------------


def test_score_is_the_weighted_mean_of_present_directional_factors() -> None:
    got = score(factors(news=0.5, skew_0dte=-0.1), params({NEWS: 3.0, SKEW_0DTE: 1.0}))
    assert got.score == pytest.approx((3 * 0.5 - 0.1) / 4)
    assert got.reason == ""


def test_an_abstaining_factor_is_renormalised_away_not_counted_as_zero() -> None:
    weights = {NEWS: 3.0, SKEW_0DTE: 1.0, WALLS: 2.0}
    got = score(factors(news=0.5, skew_0dte=-0.1, walls=None), params(weights))
    without = score(factors(news=0.5, skew_0dte=-0.1), params({NEWS: 3.0, SKEW_0DTE: 1.0}))
    assert got.score == without.score == pytest.approx((3 * 0.5 - 0.1) / 4)


def test_a_configured_factor_missing_from_the_mapping_abstains() -> None:
    got = score(factors(news=0.5), params({NEWS: 1.0, WALLS: 1.0}))
    assert got.score == 0.5
    walls = next(c for c in got.contributions if c.name == WALLS)
    assert (walls.value, walls.contribution, walls.reason) == (None, 0.0, "not computed")


def test_too_few_present_factors_give_no_score_and_say_why() -> None:
    got = score(factors(news=0.5, walls=None, skew_0dte=None), params({NEWS: 1, WALLS: 1, SKEW_0DTE: 1}, 2))
    assert got.score is None
    assert "only 1 of 3 directional factors present (need 2)" in got.reason
    assert "walls: missing" in got.reason


def test_no_directional_factor_configured() -> None:
    got = score(factors(gamma_mode=0.5), params({GAMMA_MODE: 1.0}))
    assert got.score is None
    assert got.reason == "no directional factor configured"


def test_zero_and_negative_weights_are_not_configured() -> None:
    got = score(factors(news=0.5, walls=-1.0), params({NEWS: 1.0, WALLS: 0.0, SKEW_0DTE: -1.0}))
    assert got.score == 0.5
    assert [c.name for c in got.contributions] == [NEWS]


def test_unknown_factor_names_are_refused() -> None:
    with pytest.raises(ValueError, match="vpn_level"):
        score({}, params({"vpn_level": 1.0, NEWS: 1.0}))


def test_an_out_of_range_value_abstains_rather_than_skews_the_mean() -> None:
    got = score(factors(news=0.5, walls=3.0), params({NEWS: 1.0, WALLS: 1.0}))
    assert got.score == 0.5
    assert "outside [-1, 1]" in next(c.reason for c in got.contributions if c.name == WALLS)


# --- the VPIN filter ----------------------------------------------------------------------------

FLOW_AND_NEWS = {ORDER_FLOW: 1.0, NEWS: 1.0, VPIN_LEVEL: 1.0, VPIN_CHANGE: 1.0}


@pytest.mark.parametrize(("level", "flow_factor"), [(-1.0, 0.5), (0.0, 0.75), (1.0, 1.0)])
def test_low_toxicity_halves_flow_weights(level: float, flow_factor: float) -> None:
    got = score(factors(order_flow=1.0, news=-1.0, vpin_level=level), params(FLOW_AND_NEWS))
    assert got.score == pytest.approx((flow_factor - 1.0) / (flow_factor + 1.0))
    flow = next(c for c in got.contributions if c.name == ORDER_FLOW)
    assert flow.weight == pytest.approx(flow_factor)


def test_rising_vpin_trusts_flow_more_falling_changes_nothing() -> None:
    rising = score(factors(order_flow=1.0, news=-1.0, vpin_level=1.0, vpin_change=1.0), params(FLOW_AND_NEWS))
    falling = score(factors(order_flow=1.0, news=-1.0, vpin_level=1.0, vpin_change=-1.0), params(FLOW_AND_NEWS))
    assert rising.score == pytest.approx((1.25 - 1.0) / 2.25)
    assert falling.score == 0.0


def test_absent_vpin_is_exactly_no_filter() -> None:
    values = factors(order_flow=1.0, news=-0.2, vpin_level=None, vpin_change=1.0)
    unconfigured = score(factors(order_flow=1.0, news=-0.2), params({ORDER_FLOW: 1.0, NEWS: 1.0}))
    assert score(values, params(FLOW_AND_NEWS)).score == unconfigured.score == pytest.approx(0.4)


def test_vpin_filters_only_flow_factors() -> None:
    got = score(factors(news=1.0, walls=-1.0, vpin_level=-1.0), params({NEWS: 1.0, WALLS: 1.0, VPIN_LEVEL: 1.0}))
    assert got.score == 0.0


def test_an_unconfigured_vpin_is_ignored_even_when_present() -> None:
    got = score(factors(order_flow=1.0, news=-1.0, vpin_level=-1.0), params({ORDER_FLOW: 1.0, NEWS: 1.0}))
    assert got.score == 0.0


# --- the gamma mode -----------------------------------------------------------------------------

GAMMA_W = {ORDER_FLOW: 1.0, WALLS: 1.0, GAMMA_MODE: 1.0}


def test_long_gamma_favours_walls_over_momentum() -> None:
    got = score(factors(order_flow=1.0, walls=-1.0, gamma_mode=1.0), params(GAMMA_W))
    assert got.score == pytest.approx((0.75 - 1.5) / 2.25)  # flow × (1 − 0.25), walls × 1.5
    assert got.mode == "mean_reversion"
    assert got.size_multiplier == 1.0


def test_short_gamma_favours_momentum_and_cuts_size() -> None:
    got = score(factors(order_flow=1.0, walls=-1.0, gamma_mode=-1.0), params(GAMMA_W))
    assert got.score == pytest.approx((1.25 - 0.5) / 1.75)  # flow × 1.25, walls × 0.5
    assert got.mode == "momentum"
    assert got.size_multiplier == pytest.approx(0.5)


def test_momentum_factors_are_all_reweighted_by_gamma() -> None:
    for name in (ORDER_FLOW, LAST_HALF_HOUR, FLOW_CLUSTER, BOOK_IMBALANCE, MICROPRICE):
        got = score({name: f(name, 1.0), NEWS: f(NEWS, -1.0), GAMMA_MODE: f(GAMMA_MODE, -1.0)},
                    params({name: 1.0, NEWS: 1.0, GAMMA_MODE: 1.0}))
        assert got.score == pytest.approx(0.25 / 2.25), name


def test_abstaining_gamma_scores_as_unconfigured_but_halves_size() -> None:
    got = score(factors(order_flow=1.0, walls=-0.5, gamma_mode=None), params(GAMMA_W))
    unconfigured = score(factors(order_flow=1.0, walls=-0.5), params({ORDER_FLOW: 1.0, WALLS: 1.0}))
    assert got.score == unconfigured.score == pytest.approx(0.25)
    assert (got.mode, got.size_multiplier) == ("unknown", 0.5)
    assert (unconfigured.mode, unconfigured.size_multiplier) == ("neutral", 1.0)


def test_gamma_on_the_flip_is_neutral() -> None:
    got = score(factors(order_flow=1.0, walls=-0.5, gamma_mode=0.0), params(GAMMA_W))
    assert (got.mode, got.size_multiplier) == ("neutral", 1.0)


@pytest.mark.parametrize(("gamma", "iv", "size"), [(None, 1.0, 0.625), (0.5, 1.0, 1.25), (0.5, -1.0, 0.75),
                                                   (-1.0, -1.0, 0.375), (-0.5, 0.0, 0.75), (None, None, 0.5)])
def test_size_multiplier(gamma: float | None, iv: float | None, size: float) -> None:
    got = score(factors(news=0.5, gamma_mode=gamma, iv_rv=iv), params({NEWS: 1.0, GAMMA_MODE: 1.0, IV_RV: 1.0}))
    assert got.size_multiplier == pytest.approx(size)


def test_iv_rv_sizes_only_when_configured() -> None:
    assert score(factors(news=0.5, iv_rv=-1.0), params({NEWS: 1.0})).size_multiplier == 1.0


# --- contributions ------------------------------------------------------------------------------


def test_contributions_follow_all_factors_and_sum_to_the_score() -> None:
    weights = {AUCTION: 1.0, NEWS: 2.0, ORDER_FLOW: 1.0, WALLS: 1.0, GAMMA_MODE: 1.0, VPIN_LEVEL: 1.0}
    got = score(factors(auction=-0.4, news=0.6, order_flow=0.9, walls=None, gamma_mode=-0.5, vpin_level=0.2),
                params(weights))
    assert [c.name for c in got.contributions] == [n for n in ALL_FACTORS if n in weights]
    assert got.score is not None
    assert sum(c.contribution for c in got.contributions) == pytest.approx(got.score)
    by = {c.name: c for c in got.contributions}
    assert (by[WALLS].contribution, by[WALLS].reason) == (0.0, "missing")
    assert (by[GAMMA_MODE].value, by[GAMMA_MODE].contribution) == (-0.5, 0.0)
    assert by[ORDER_FLOW].weight == pytest.approx(1.0 * (0.5 + 0.5 * 1.2 / 2) * 1.125)
    assert by[NEWS].contribution > 0 > by[AUCTION].contribution


def test_no_score_means_no_contribution() -> None:
    got = score(factors(news=0.5), params({NEWS: 1.0, WALLS: 1.0}, 2))
    assert got.score is None
    assert all(c.contribution == 0.0 for c in got.contributions)


# --- properties ---------------------------------------------------------------------------------

values = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
weight_values = st.floats(min_value=0.01, max_value=100.0)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, Factor]]:
    names = draw(st.lists(st.sampled_from(ALL_FACTORS), unique=True, min_size=1))
    weights = {n: draw(weight_values) for n in names}
    readings = {n: f(n, draw(st.none() | values)) for n in names if draw(st.booleans()) or n in DIRECTIONAL}
    return weights, readings


def same_params(p: StrategyParams, weights: Mapping[str, float]) -> StrategyParams:
    return StrategyParams(p.name, p.threshold, weights, min_factors=p.min_factors)


@given(scenarios(), st.integers(0, 4))
def test_abstaining_factors_give_the_score_without_them(case: tuple[dict[str, float], dict[str, Factor]],
                                                         min_factors: int) -> None:
    weights, readings = case
    p = params(weights, min_factors)
    got = score(readings, p)
    abstaining = {n for n in weights if readings.get(n) is None or readings[n].value is None}
    kept = {n: w for n, w in weights.items() if n not in abstaining}
    present = {n: r for n, r in readings.items() if n not in abstaining}
    without = score(present, same_params(p, kept))
    assert got.score == without.score
    if got.score is not None and without.score is not None:
        assert math.copysign(1.0, got.score) == math.copysign(1.0, without.score)


@given(scenarios(), st.integers(0, 4))
def test_negating_every_directional_value_negates_the_score(case: tuple[dict[str, float], dict[str, Factor]],
                                                            min_factors: int) -> None:
    weights, readings = case
    flipped = {n: f(n, -r.value) if n in DIRECTIONAL and r.value is not None else r for n, r in readings.items()}
    got, neg = score(readings, params(weights, min_factors)), score(flipped, params(weights, min_factors))
    assert (got.score is None) == (neg.score is None)
    if got.score is not None and neg.score is not None:
        assert neg.score == -got.score
        assume(got.score != 0.0)
        assert (neg.score > 0) != (got.score > 0)


@given(scenarios(), st.integers(0, 4))
def test_score_and_size_stay_bounded(case: tuple[dict[str, float], dict[str, Factor]], min_factors: int) -> None:
    weights, readings = case
    got = score(readings, params(weights, min_factors))
    assert got.score is None or -1.0 <= got.score <= 1.0
    assert (got.score is None) == bool(got.reason)
    assert 0.25 <= got.size_multiplier <= 1.25
    assert got.mode in ("momentum", "mean_reversion", "neutral", "unknown")
    assert all(c.weight >= 0 for c in got.contributions)
    assert all(c.contribution == 0.0 for c in got.contributions if c.name in CONDITIONERS or c.value is None)
    if got.score is not None:
        assert sum(c.contribution for c in got.contributions) == pytest.approx(got.score, abs=1e-12)
