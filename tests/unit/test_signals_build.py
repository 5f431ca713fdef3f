"""From a firing decision to the signal: the dedup fingerprint, the option's BUY LMT bracket (cents, time
stop capped at the expiry's settlement, 13:00 on an early close), and MOC's contra-side shares with a
LOC limit and the next session's open as the time stop."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.core.clock import NEW_YORK
from qc.signals.build import build_signal, fingerprint
from qc.signals.codec import Signal, is_signal_id
from qc.signals.contracts import limit_price, share_contract
from qc.signals.model import (
    ORDER_FLOW,
    BracketParams,
    Choice,
    Contract,
    Contribution,
    Decision,
    Gate,
    Quote,
    Score,
    StrategyName,
)
from qc.signals.params import DEFAULTS

D0 = date(2026, 12, 3)  # a Thursday: 09:30-16:00
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=NEW_YORK)
CALL = Contract("SPY", "OPT", D0, 600.0, "C", 100, "SMART", "ARCA")
PUT = Contract("SPY", "OPT", D0, 595.0, "P", 100, "SMART", "ARCA")
GATES = (Gate("session", True), Gate("0dte_cutoff", True, "", datetime(2026, 12, 3, 15, 30, tzinfo=NEW_YORK)))
INPUTS = {ORDER_FLOW: {"buy": 600.0, "sell": 100.0}}
LINEAGE = {"source": "qc signals", "cycle": 3}


def ny(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=NEW_YORK)


def decision(direction: int, strategy: StrategyName = "0dte", notes: tuple[str, ...] = ()) -> Decision:
    parts = (Contribution(ORDER_FLOW, 0.6 * direction, 3.0, 0.4 * direction, 1.0),)
    return Decision(strategy, "SPY", direction, Score(0.55 * direction, "momentum", 0.75, parts), GATES, "", notes)


def option_choice(contract: Contract = CALL, bid: float = 2.36, ask: float = 2.41) -> Choice:
    return Choice(contract, Quote(bid, ask, round((bid + ask) / 2, 4), 0.47, 1000, 500, 60.0), {"delta_band": 4})


def build(direction: int = 1, choice: Choice | None = None, strategy: StrategyName = "0dte",
          now: datetime = NOW, **bracket: Any) -> Signal:
    params = DEFAULTS[strategy]
    if bracket:
        params = replace(params, bracket=replace(params.bracket, **bracket))
    got = choice or option_choice(CALL if direction > 0 else PUT)
    return build_signal(decision(direction, strategy), got, params, now, INPUTS, LINEAGE)


# --- fingerprint ----------------------------------------------------------------------------------

def test_fingerprint_is_stable() -> None:
    got = fingerprint(CALL, 1, "0dte")
    assert got == fingerprint(Contract("SPY", "OPT", D0, 600.0, "C", 100, "SMART", "ARCA"), 1, "0dte")
    assert len(got) == 24 and all(c in "0123456789abcdef" for c in got)
    # the documented formula: a restart or an upgrade must not change the dedup unit of a live signal
    assert got == hashlib.sha256(b"SPY|2026-12-03|600.0|C|1|0dte").hexdigest()[:24]


@pytest.mark.parametrize(("contract", "direction", "strategy"), [
    (replace(CALL, symbol="QQQ"), 1, "0dte"),
    (replace(CALL, expiry=date(2026, 12, 4)), 1, "0dte"),
    (replace(CALL, strike=601.0), 1, "0dte"),
    (replace(CALL, strike=600.5), 1, "0dte"),
    (replace(CALL, right="P"), 1, "0dte"),
    (CALL, -1, "0dte"),
    (CALL, 1, "1dte"),
    (CALL, 1, "14dte"),
])
def test_fingerprint_differs_when_any_part_differs(contract: Contract, direction: int, strategy: str) -> None:
    assert fingerprint(contract, direction, strategy) != fingerprint(CALL, 1, "0dte")


def test_fingerprint_ignores_what_is_not_the_contracts_identity() -> None:
    other_route = replace(CALL, exchange="CBOE", primary_exchange="", multiplier=10)
    assert fingerprint(other_route, 1, "0dte") == fingerprint(CALL, 1, "0dte")


def test_share_fingerprints_differ_by_direction_and_symbol() -> None:
    spy, qqq = share_contract("SPY"), share_contract("QQQ")
    assert fingerprint(spy, 1, "moc") != fingerprint(spy, -1, "moc")
    assert fingerprint(spy, -1, "moc") != fingerprint(qqq, -1, "moc")


@given(st.integers(1, 99_999), st.integers(1, 99_999))
def test_strikes_on_the_cent_never_share_a_fingerprint(a_cents: int, b_cents: int) -> None:
    a, b = replace(CALL, strike=a_cents / 100), replace(CALL, strike=b_cents / 100)
    assert (fingerprint(a, 1, "0dte") == fingerprint(b, 1, "0dte")) == (a_cents == b_cents)


def test_strikes_differing_in_the_seventh_significant_digit_differ() -> None:
    assert fingerprint(replace(CALL, strike=1234.125), 1, "0dte") != fingerprint(replace(CALL, strike=1234.12), 1,
                                                                                  "0dte")


def test_two_signals_built_at_different_instants_share_the_fingerprint_not_the_id() -> None:
    first, later = build(now=NOW), build(now=NOW + timedelta(minutes=5))
    assert first.fingerprint == later.fingerprint == fingerprint(CALL, 1, "0dte")
    assert first.id != later.id and first.id < later.id
    assert is_signal_id(first.id) and is_signal_id(later.id)


# --- options: BUY LMT with a bracket on the premium ---------------------------------------------------

def test_an_option_signal_buys_at_the_limit_with_its_bracket() -> None:
    choice = option_choice(CALL, 2.36, 2.41)
    got = build(1, choice, take_profit_pct=0.5, stop_pct=0.25, time_stop_min=60.0)
    assert got.limit == limit_price(choice.quote) == 2.40  # a quarter of the spread through the mid
    assert (got.side, got.order_type, got.direction) == ("BUY", "LMT", 1)
    assert got.take_profit == 3.60  # limit x (1 + 0.50)
    assert got.stop == 1.80         # limit x (1 - 0.25)
    assert got.time_stop == ny(2026, 12, 3, 11, 0)
    assert got.contract == CALL and got.quote == choice.quote
    assert got.strategy == "0dte" and got.created_at == NOW


def test_a_bearish_option_signal_buys_the_put() -> None:
    got = build(-1, option_choice(PUT, 1.00, 1.04), take_profit_pct=0.5, stop_pct=0.25)
    assert (got.side, got.order_type, got.direction, got.contract.right) == ("BUY", "LMT", -1, "P")
    assert got.limit == 1.03
    assert got.take_profit > got.limit > got.stop  # a bought put profits as its premium rises
    assert (got.take_profit, got.stop) == (1.55, 0.77)  # 1.545 and 0.7725, to the cent


@pytest.mark.parametrize(("bid", "ask", "tp", "stop", "expected_tp", "expected_stop"), [
    (2.00, 2.04, 0.50, 0.25, 3.05, 1.52),   # limit 2.03: 3.045 is a tie, taken up; 1.5225 down
    (0.10, 0.12, 0.50, 0.25, 0.18, 0.09),   # limit 0.12 (0.115 taken up): 0.18 and 0.09
    (1.00, 1.00, 1.00, 0.50, 2.00, 0.50),
    (0.01, 0.01, 0.50, 0.99, 0.02, 0.01),   # a stop never under a cent
])
def test_the_bracket_is_rounded_to_the_cent(bid: float, ask: float, tp: float, stop: float, expected_tp: float,
                                            expected_stop: float) -> None:
    choice = option_choice(CALL, bid, ask)
    got = build(1, choice, take_profit_pct=tp, stop_pct=stop)
    limit = limit_price(choice.quote)
    assert got.limit == limit
    assert (got.take_profit, got.stop) == (expected_tp, expected_stop)
    assert got.take_profit == round(got.take_profit, 2) and got.stop == round(got.stop, 2)


def test_the_time_stop_never_passes_the_expirys_settlement() -> None:
    got = build(1, now=ny(2026, 12, 3, 15, 30), time_stop_min=60.0)  # a 0DTE at 15:30: 16:30 would be after
    assert got.time_stop == ny(2026, 12, 3, 16, 0) == clock.settlement_instant(D0)


def test_on_an_early_close_the_time_stop_ends_at_13_00() -> None:
    early = replace(CALL, expiry=date(2026, 11, 27))
    got = build(1, option_choice(early), now=ny(2026, 11, 27, 12, 30), time_stop_min=60.0)
    assert got.time_stop == ny(2026, 11, 27, 13, 0)


def test_a_time_stop_before_settlement_is_now_plus_the_minutes() -> None:
    swing = replace(CALL, expiry=date(2026, 12, 17))
    got = build(1, option_choice(swing), strategy="14dte", now=NOW)
    assert DEFAULTS["14dte"].bracket.time_stop_min == 1440.0
    assert got.time_stop == NOW + timedelta(minutes=1440)
    got = build(1, option_choice(swing), strategy="14dte", now=NOW, time_stop_min=90.0)
    assert got.time_stop == ny(2026, 12, 3, 11, 30)


def test_the_signal_carries_the_decisions_lineage_and_explanation() -> None:
    d = decision(1, notes=("a note",))
    params = DEFAULTS["0dte"]
    got = build_signal(d, option_choice(), params, NOW, INPUTS, LINEAGE)
    assert got.score == 0.55 and got.threshold == params.threshold
    assert (got.mode, got.size_multiplier) == ("momentum", 0.75)
    assert got.contributions == d.score.contributions and got.gates == GATES
    assert got.factor_inputs == INPUTS and got.lineage == LINEAGE and got.notes == ("a note",)
    assert Signal.from_redis(got.to_redis(), key="k") == got


def test_a_non_firing_decision_cannot_become_a_signal() -> None:
    quiet = Decision("0dte", "SPY", 0, Score(0.1, "neutral", 1.0, ()), GATES, "below threshold")
    with pytest.raises(AssertionError):
        build_signal(quiet, option_choice(), DEFAULTS["0dte"], NOW, INPUTS, LINEAGE)


# --- MOC: shares, contra-side, limit-on-close, out at the next open ------------------------------------

def share_choice(mark: float = 600.0) -> Choice:
    return Choice(share_contract("SPY"), Quote(mark - 0.01, mark + 0.01, mark, None, 0, 0, 1.0), {})


def test_a_bearish_moc_decision_sells_the_shares_with_the_take_profit_below() -> None:
    got = build(-1, share_choice(600.0), strategy="moc", now=ny(2026, 12, 3, 15, 45), take_profit_pct=0.005,
                stop_pct=0.005)
    assert (got.side, got.order_type, got.direction) == ("SELL", "LOC", -1)
    assert got.contract == share_contract("SPY") and got.contract.sec_type == "STK"
    assert got.limit == 600.00
    assert got.take_profit == 597.00  # the price falling is the profit of a sale
    assert got.stop == 603.00
    assert got.time_stop == ny(2026, 12, 4, 9, 30)


def test_a_bullish_moc_decision_buys_the_shares_with_the_take_profit_above() -> None:
    got = build(1, share_choice(600.0), strategy="moc", now=ny(2026, 12, 3, 15, 45), take_profit_pct=0.005,
                stop_pct=0.005)
    assert (got.side, got.order_type, got.direction) == ("BUY", "LOC", 1)
    assert (got.limit, got.take_profit, got.stop) == (600.00, 603.00, 597.00)


def test_the_moc_limit_is_the_mark_on_the_cent() -> None:
    got = build(-1, share_choice(123.456), strategy="moc", now=ny(2026, 12, 3, 15, 45))
    assert got.limit == 123.46


def test_after_an_early_close_the_moc_time_stop_is_mondays_open() -> None:
    got = build(-1, share_choice(), strategy="moc", now=ny(2026, 11, 27, 12, 45))  # Friday, close 13:00
    assert got.time_stop == ny(2026, 11, 30, 9, 30)


def test_the_moc_time_stop_reads_the_new_york_date() -> None:
    # 15:45 New York on Thursday is 20:45 UTC, and already Friday 10:45 at UTC+14: out at Friday's open
    for now in (datetime(2026, 12, 3, 20, 45, tzinfo=timezone.utc),
                datetime(2026, 12, 4, 10, 45, tzinfo=timezone(timedelta(hours=14)))):
        got = build(-1, share_choice(), strategy="moc", now=now)
        assert got.time_stop == ny(2026, 12, 4, 9, 30)


def test_the_moc_time_stop_ignores_time_stop_min() -> None:
    got = build(-1, share_choice(), strategy="moc", now=ny(2026, 12, 3, 15, 45), time_stop_min=5.0)
    assert got.time_stop == ny(2026, 12, 4, 9, 30)


def test_a_moc_bracket_is_what_the_params_say() -> None:
    params = DEFAULTS["moc"]
    assert params.bracket == BracketParams(0.005, 0.005, 0.0)
    got = build_signal(decision(-1, "moc"), share_choice(600.0), params, ny(2026, 12, 3, 15, 45), {}, {})
    assert (got.take_profit, got.stop) == (597.00, 603.00)
