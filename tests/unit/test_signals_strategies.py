"""The strategies' verdicts: a closed gate blocks (and still shows the score), missing core inputs, no
score, below the threshold, the lead factor's confirmation, firing with the score's sign, and MOC's
contra-side auction view with its imbalance floor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qc.signals.model import (
    AUCTION,
    BOOK_IMBALANCE,
    DIRECTIONAL,
    FLOW_CLUSTER,
    GAMMA_MODE,
    LAST_HALF_HOUR,
    MICROPRICE,
    NEWS,
    ORDER_FLOW,
    SKEW_0DTE,
    VPIN_LEVEL,
    WALLS,
    Decision,
    Factor,
    Gate,
    StrategyParams,
)
from qc.signals.params import DEFAULTS, MOC_MIN_IMBALANCE_RATIO
from qc.signals.strategies import NO_AUCTION_NOTE, block_key, evaluate, moc_view

ZERO = DEFAULTS["0dte"]   # order flow leads; book imbalance, VPIN and gamma are required
ONE = DEFAULTS["1dte"]
SWING = DEFAULTS["14dte"]
MOC = DEFAULTS["moc"]
OPEN = (Gate("session", True), Gate("0dte_cutoff", True))
# The defaults are tuning priors that change; these tests read weights, thresholds and lead_min from them
# and choose inputs far from the boundaries, so they test the rules, not today's numbers.
LOW = replace(ZERO, threshold=0.1)  # the 0DTE rules (lead, lead_min, required) with an easy threshold


def f(name: str, value: float | None, reason: str = "") -> Factor:
    return Factor(name, value, 2.0, {"raw": value}, reason or ("" if value is not None else "stale"))


def flow_inputs(**values: float | None) -> dict[str, Factor]:
    """The 0/1DTE core present and neutral (gamma 0, VPIN level +1: the flow filter keeps full weight), then
    the given directional factors."""
    base = {GAMMA_MODE: 0.0, VPIN_LEVEL: 1.0}
    return {n: f(n, v) for n, v in {**base, **values}.items()}


def mean(params: StrategyParams, **values: float) -> float:
    """The weighted mean of ``values`` under ``params``' weights (neutral gamma, full-weight flow)."""
    w = params.weights
    return sum(w[n] * v for n, v in values.items()) / sum(w[n] for n in values)


def fires(decision: Decision) -> Decision:
    assert decision.fires, decision.reason
    return decision


def test_the_defaults_have_the_shape_these_tests_rely_on() -> None:
    for p in (ZERO, ONE):
        assert p.lead == ORDER_FLOW and p.lead_min > 0
        assert set(p.required) == {BOOK_IMBALANCE, VPIN_LEVEL, GAMMA_MODE}
        assert p.min_factors == 2
    assert SWING.lead is None or SWING.lead_min == 0
    assert MOC.lead is None and MOC.required == () and MOC.min_factors == 1
    assert set(MOC.weights) == {AUCTION, LAST_HALF_HOUR, GAMMA_MODE}


# --- firing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("sign", [1, -1])
def test_fires_with_the_scores_sign(sign: int) -> None:
    got = fires(evaluate(ZERO, "SPY", flow_inputs(order_flow=0.9 * sign, book_imbalance=0.7 * sign), OPEN))
    assert got.score.score == pytest.approx(sign * mean(ZERO, order_flow=0.9, book_imbalance=0.7))
    assert got.direction == sign
    assert got.reason == "" and got.notes == ()
    assert (got.strategy, got.symbol, got.gates) == ("0dte", "SPY", OPEN)
    assert block_key(got) == "below_threshold"  # documented for non-firing decisions only; no special key


def test_exactly_at_the_threshold_fires_and_just_under_does_not() -> None:
    params = replace(ZERO, threshold=0.5, lead_min=0.0)  # 0.5: exact in binary, so the boundary is the boundary
    at = evaluate(params, "SPY", flow_inputs(book_imbalance=0.5, microprice=0.5), OPEN)
    assert at.score.score == 0.5
    assert fires(at).direction == 1
    under = evaluate(params, "SPY", flow_inputs(book_imbalance=0.5, microprice=0.4999), OPEN)
    assert block_key(under) == "below_threshold"


# --- gates ---------------------------------------------------------------------------------------

def test_a_closed_gate_blocks_names_itself_and_the_score_is_still_computed() -> None:
    shut = (Gate("session", True), Gate("0dte_cutoff", False, "0DTE entries closed at 15:30"))
    got = evaluate(ZERO, "SPY", flow_inputs(order_flow=0.9, book_imbalance=0.7), shut)
    assert got.direction == 0 and not got.fires
    assert got.reason == "gate 0dte_cutoff: 0DTE entries closed at 15:30"
    assert block_key(got) == "0dte_cutoff"
    assert got.score.score == pytest.approx(mean(ZERO, order_flow=0.9, book_imbalance=0.7))  # what it stopped
    assert got.gates == shut


def test_the_first_closed_gate_is_the_one_named() -> None:
    shut = (Gate("session", False, "market closed"), Gate("open_delay", False, "opening prints"))
    got = evaluate(ZERO, "SPY", flow_inputs(order_flow=0.9, book_imbalance=0.7), shut)
    assert got.reason == "gate session: market closed"
    assert block_key(got) == "session"


def test_a_gate_outranks_every_other_reason() -> None:
    shut = (Gate("moc_window", False, "before 15:30"),)
    got = evaluate(MOC, "SPY", {}, shut, moc_min_ratio=0.2)
    assert block_key(got) == "moc_window"
    assert got.score.score is None  # no inputs at all, yet the gate is what it says
    assert got.notes == (NO_AUCTION_NOTE,)


# --- missing core inputs, no score, threshold --------------------------------------------------------

def test_a_missing_core_input_blocks_and_names_each_one() -> None:
    factors = {n: f(n, v) for n, v in {ORDER_FLOW: 0.9, BOOK_IMBALANCE: 0.9}.items()}
    factors[VPIN_LEVEL] = f(VPIN_LEVEL, None, "vpin 200 s old > 120 s")
    got = evaluate(ZERO, "SPY", factors, OPEN)
    assert got.direction == 0
    assert got.score.score == pytest.approx(0.9)  # the score is there; the core input is not
    missing = {VPIN_LEVEL: "vpin_level abstains (vpin 200 s old > 120 s)",
               GAMMA_MODE: "gamma_mode abstains (not computed)"}
    assert got.reason == "missing input: " + "; ".join(missing[n] for n in ZERO.required if n in missing)
    assert block_key(got) == "missing_input"


def test_too_few_factors_give_no_score() -> None:
    configured = sum(1 for n, w in ZERO.weights.items() if n in DIRECTIONAL and w > 0)
    got = evaluate(ZERO, "SPY", flow_inputs(book_imbalance=0.9), OPEN)  # one directional factor, 0DTE needs 2
    assert got.score.score is None
    assert got.direction == 0
    assert got.reason.startswith(f"no score: only 1 of {configured} directional factors present (need 2)")
    assert block_key(got) == "no_score"


@pytest.mark.parametrize("sign", [1, -1])
def test_below_threshold_does_not_fire(sign: int) -> None:
    assert ZERO.threshold > 0.05
    got = evaluate(ZERO, "SPY", flow_inputs(order_flow=0.05 * sign, book_imbalance=0.05 * sign), OPEN)
    assert got.score.score == pytest.approx(0.05 * sign)
    assert got.direction == 0
    assert got.reason == f"below threshold: |{0.05 * sign:+.3f}| < {ZERO.threshold:.2f}"
    assert block_key(got) == "below_threshold"


def test_the_threshold_is_the_params() -> None:
    inputs = flow_inputs(order_flow=0.6, book_imbalance=0.6)  # score 0.6, whatever the weights
    assert fires(evaluate(replace(ZERO, threshold=0.59), "SPY", inputs, OPEN)).direction == 1
    got = evaluate(replace(ZERO, threshold=0.61), "SPY", inputs, OPEN)
    assert block_key(got) == "below_threshold" and got.reason == "below threshold: |+0.600| < 0.61"


# --- the lead factor ----------------------------------------------------------------------------------

def test_an_abstaining_lead_blocks() -> None:
    got = evaluate(LOW, "SPY", flow_inputs(order_flow=None, book_imbalance=0.8, microprice=0.8), OPEN)
    assert got.score.score == pytest.approx(0.8)
    assert got.direction == 0
    assert block_key(got) == "no_lead"
    assert got.reason == (f"no lead: order_flow abstains does not confirm +0.800 "
                          f"(needs the same sign and |value| ≥ {ZERO.lead_min:.2f})")


def test_a_lead_missing_from_the_mapping_blocks() -> None:
    got = evaluate(LOW, "SPY", flow_inputs(book_imbalance=0.8, microprice=0.8), OPEN)
    assert block_key(got) == "no_lead"
    assert "order_flow abstains" in got.reason


@pytest.mark.parametrize("sign", [1, -1])
def test_a_lead_of_the_opposite_sign_blocks(sign: int) -> None:
    lead = -sign * max(0.35, ZERO.lead_min)  # strong enough: only its sign is wrong
    others = {BOOK_IMBALANCE: sign, MICROPRICE: sign, FLOW_CLUSTER: sign, WALLS: sign, SKEW_0DTE: sign, NEWS: sign}
    got = evaluate(LOW, "SPY", flow_inputs(order_flow=lead, **others), OPEN)
    expected = mean(ZERO, order_flow=lead, **others)
    assert got.score.score == pytest.approx(expected)
    assert expected * sign >= LOW.threshold
    assert block_key(got) == "no_lead"
    assert f"order_flow {lead:+.3f} does not confirm {expected:+.3f}" in got.reason


def test_a_lead_too_weak_blocks_and_lead_min_zero_disables_the_check() -> None:
    weak = ZERO.lead_min * 0.5
    inputs = flow_inputs(order_flow=weak, book_imbalance=0.8, microprice=0.8)
    got = evaluate(LOW, "SPY", inputs, OPEN)
    assert got.score.score == pytest.approx(mean(ZERO, order_flow=weak, book_imbalance=0.8, microprice=0.8))
    assert block_key(got) == "no_lead"
    assert f"order_flow {weak:+.3f} does not confirm" in got.reason
    assert fires(evaluate(replace(LOW, lead_min=0.0), "SPY", inputs, OPEN)).direction == 1


def test_a_lead_exactly_at_lead_min_confirms() -> None:
    params = replace(LOW, lead_min=0.5)
    got = evaluate(params, "SPY", flow_inputs(order_flow=0.5, book_imbalance=0.8, microprice=0.8), OPEN)
    assert fires(got).direction == 1
    got = evaluate(params, "SPY", flow_inputs(order_flow=0.4999, book_imbalance=0.8, microprice=0.8), OPEN)
    assert block_key(got) == "no_lead"


def test_the_lead_threshold_is_the_strategys() -> None:
    assert ZERO.lead_min != ONE.lead_min
    between = 0.5 * (ZERO.lead_min + ONE.lead_min)
    inputs = flow_inputs(order_flow=between, book_imbalance=0.9, microprice=0.9, last_half_hour=0.9)
    stricter, looser = sorted((replace(ZERO, threshold=0.1), replace(ONE, threshold=0.1)), key=lambda p: -p.lead_min)
    assert block_key(evaluate(stricter, "SPY", inputs, OPEN)) == "no_lead"
    assert fires(evaluate(looser, "SPY", inputs, OPEN)).direction == 1


def test_14dte_has_no_lead_requirement() -> None:
    values = {ORDER_FLOW: -0.1, WALLS: 0.9, NEWS: 0.9, SKEW_0DTE: 0.9, FLOW_CLUSTER: 0.9}
    inputs = {n: f(n, v) for n, v in {GAMMA_MODE: 0.0, **values}.items()}
    expected = mean(SWING, **values)
    assert expected >= SWING.threshold
    got = fires(evaluate(SWING, "SPY", inputs, OPEN))
    assert got.direction == 1 and got.score.score == pytest.approx(expected)


# --- MOC: the contra-side auction view ----------------------------------------------------------------

@pytest.mark.parametrize("auction", [None, f(AUCTION, None, "no tick 225")])
def test_moc_without_auction_data_says_so(auction: Factor | None) -> None:
    factors = {LAST_HALF_HOUR: f(LAST_HALF_HOUR, 0.5), GAMMA_MODE: f(GAMMA_MODE, 0.0)}
    if auction is not None:
        factors[AUCTION] = auction
    view, notes = moc_view(factors, MOC_MIN_IMBALANCE_RATIO)
    assert notes == (NO_AUCTION_NOTE,)
    assert view == factors
    got = evaluate(MOC, "SPY", factors, (), moc_min_ratio=MOC_MIN_IMBALANCE_RATIO)
    assert got.notes == (NO_AUCTION_NOTE,)
    assert got.score.score == pytest.approx(0.5)  # on the last half hour alone (MOC needs one factor): momentum
    assert fires(got).direction == 1


@pytest.mark.parametrize("ratio", [0.1, -0.1, 0.19])
def test_moc_auction_below_the_floor_abstains_with_the_floor_in_the_reason(ratio: float) -> None:
    factors = {AUCTION: f(AUCTION, ratio)}
    view, notes = moc_view(factors, 0.25)
    assert view[AUCTION].value is None
    assert view[AUCTION].reason == f"|imbalance| / paired {abs(ratio):.3f} below the floor 0.250"
    assert notes == (f"auction imbalance too small to provide against ({abs(ratio):.3f} < 0.250)",)
    assert factors[AUCTION].value == ratio  # the caller's mapping is untouched
    got = evaluate(MOC, "SPY", factors, (), moc_min_ratio=0.25)
    assert block_key(got) == "no_score" and got.score.score is None


@pytest.mark.parametrize(("ratio", "expected"), [(0.6, -0.6), (-0.6, 0.6), (0.2, -0.2), (-0.2, 0.2)])
def test_moc_auction_at_or_above_the_floor_enters_contra_side(ratio: float, expected: float) -> None:
    factors = {AUCTION: f(AUCTION, ratio)}
    view, notes = moc_view(factors, 0.20)
    assert view[AUCTION].value == expected
    assert view[AUCTION].inputs == {"raw": ratio, "side": "contra"}
    assert notes == ("contra-side liquidity against the closing imbalance",)


def test_a_buy_imbalance_makes_a_bearish_moc_decision_when_it_dominates() -> None:
    factors = {AUCTION: f(AUCTION, 0.6), LAST_HALF_HOUR: f(LAST_HALF_HOUR, 0.05), GAMMA_MODE: f(GAMMA_MODE, 0.0)}
    expected = mean(MOC, auction=-0.6, last_half_hour=0.05)
    assert expected <= -MOC.threshold  # the auction dominates a small up move into the close
    got = evaluate(MOC, "SPY", factors, (Gate("moc_window", True),), moc_min_ratio=MOC_MIN_IMBALANCE_RATIO)
    assert got.score.score == pytest.approx(expected)
    assert fires(got).direction == -1
    assert got.notes == ("contra-side liquidity against the closing imbalance",)
    auction = next(c for c in got.score.contributions if c.name == AUCTION)
    assert auction.value == -0.6 and auction.contribution < 0


def test_a_sell_imbalance_makes_a_bullish_moc_decision() -> None:
    got = evaluate(MOC, "SPY", {AUCTION: f(AUCTION, -0.5)}, (), moc_min_ratio=MOC_MIN_IMBALANCE_RATIO)
    assert got.score.score == pytest.approx(0.5)
    assert fires(got).direction == 1


def test_a_strong_last_half_hour_can_outweigh_the_auction() -> None:
    factors = {AUCTION: f(AUCTION, 0.3), LAST_HALF_HOUR: f(LAST_HALF_HOUR, 1.0)}
    expected = mean(MOC, auction=-0.3, last_half_hour=1.0)
    got = evaluate(MOC, "SPY", factors, (), moc_min_ratio=MOC_MIN_IMBALANCE_RATIO)
    assert got.score.score == pytest.approx(expected)
    assert got.direction == (0 if abs(expected) < MOC.threshold else 1)
    assert expected > -0.3  # pulled up from the auction's contra -0.3


def test_the_auction_is_not_inverted_for_the_option_strategies() -> None:
    factors = flow_inputs(order_flow=0.9, book_imbalance=0.7)
    factors[AUCTION] = f(AUCTION, 0.6)
    got = evaluate(ZERO, "SPY", factors, OPEN, moc_min_ratio=0.2)
    assert got.notes == ()
    assert all(c.name != AUCTION for c in got.score.contributions)  # 0DTE does not weigh the auction
    assert got.direction == 1


def test_moc_ignores_flow_factors() -> None:
    factors = {ORDER_FLOW: f(ORDER_FLOW, 0.9), BOOK_IMBALANCE: f(BOOK_IMBALANCE, 0.9),
               MICROPRICE: f(MICROPRICE, 0.9), FLOW_CLUSTER: f(FLOW_CLUSTER, 0.9)}
    got = evaluate(MOC, "SPY", factors, (), moc_min_ratio=0.2)
    assert got.score.score is None and block_key(got) == "no_score"
