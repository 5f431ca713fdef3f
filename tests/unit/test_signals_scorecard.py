"""The scorecard: each signal judged on its own exits (take profit, stop, time stop, unpriced after the
grace), signs inverted for a sale, and the per strategy and symbol summary with its blocked counters."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.signals.codec import Outcome, Signal
from qc.signals.model import Contract, Quote, StrategyName
from qc.signals.scorecard import UNPRICED_GRACE, judge, summarize

UTC = timezone.utc
T0 = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)  # 10:00 New York
STOP_AT = T0 + timedelta(hours=1)


def option(limit: float = 1.00, take_profit: float = 1.50, stop: float = 0.75, sid: str = "1796310000000aaaaaaaa",
           strategy: StrategyName = "0dte", symbol: str = "SPY") -> Signal:
    return Signal(
        id=sid, created_at=T0, strategy=strategy,
        contract=Contract(symbol, "OPT", date(2026, 12, 3), 600.0, "C", 100, "SMART", "ARCA"), side="BUY",
        direction=1, order_type="LMT", limit=limit, take_profit=take_profit, stop=stop, time_stop=STOP_AT,
        score=0.5, threshold=0.3, mode="neutral", size_multiplier=1.0, quote=Quote(0.98, 1.01, 0.995, 0.5, 1000,
                                                                                   500, 10.0),
        contributions=(), factor_inputs={}, gates=(), fingerprint="f")


def moc_sale(limit: float = 600.0) -> Signal:
    """A bearish MOC signal: shares sold at 600, take profit 597 below, stop 603 above."""
    return replace(option(limit, 597.0, 603.0), strategy="moc", side="SELL", direction=-1, order_type="LOC",
                   contract=Contract("SPY", "STK", None, None, None, 1, "SMART", "ARCA"))


def outcome(signal: Signal, mark: float | None, now: datetime) -> Outcome:
    got = judge(signal, mark, now)
    assert got is not None
    return got


# --- judge: a bought option ------------------------------------------------------------------------

def test_a_mark_at_or_above_the_take_profit_takes_profit() -> None:
    got = outcome(option(), 1.60, T0 + timedelta(minutes=10))
    assert got.exit_reason == "take_profit"
    assert got.return_pct == pytest.approx(0.60)
    assert (got.entry, got.exit_price, got.held_s, got.decided_at) == (1.00, 1.60, 600.0, T0 + timedelta(minutes=10))
    assert (got.signal_id, got.symbol, got.strategy) == ("1796310000000aaaaaaaa", "SPY", "0dte")
    assert got.hit
    assert outcome(option(), 1.50, T0 + timedelta(minutes=1)).exit_reason == "take_profit"  # exactly at it


def test_a_mark_at_or_below_the_stop_stops() -> None:
    got = outcome(option(), 0.70, T0 + timedelta(minutes=5))
    assert got.exit_reason == "stop"
    assert got.return_pct == pytest.approx(-0.30)
    assert not got.hit
    assert outcome(option(), 0.75, T0 + timedelta(minutes=1)).exit_reason == "stop"  # exactly at it


def test_between_the_exits_before_the_time_stop_the_signal_is_open() -> None:
    assert judge(option(), 1.20, T0 + timedelta(minutes=59)) is None
    assert judge(option(), 0.76, STOP_AT - timedelta(microseconds=1)) is None


@pytest.mark.parametrize(("mark", "expected"), [(1.20, 0.20), (0.80, -0.20), (1.00, 0.0)])
def test_between_the_exits_at_or_past_the_time_stop_exits_at_the_mark(mark: float, expected: float) -> None:
    for now in (STOP_AT, STOP_AT + timedelta(minutes=3)):
        got = outcome(option(), mark, now)
        assert got.exit_reason == "time_stop"
        assert got.exit_price == mark
        assert got.return_pct == pytest.approx(expected)
        assert got.held_s == (now - T0).total_seconds()


def test_a_worthless_option_is_a_full_loss_not_unpriced() -> None:
    got = outcome(option(), 0.0, T0 + timedelta(minutes=1))
    assert (got.exit_reason, got.exit_price, got.return_pct) == ("stop", 0.0, -1.0)


def test_the_first_mark_past_the_time_stop_ends_it_as_a_time_stop_even_beyond_an_exit() -> None:
    got = outcome(option(), 2.00, STOP_AT)
    assert got.exit_reason == "time_stop" and got.return_pct == pytest.approx(1.0)


@pytest.mark.parametrize("mark", [None, -1.0])
def test_no_mark_is_open_until_the_grace_after_the_time_stop_then_unpriced(mark: float | None) -> None:
    assert judge(option(), mark, T0 + timedelta(minutes=1)) is None
    assert judge(option(), mark, STOP_AT) is None
    assert judge(option(), mark, STOP_AT + UNPRICED_GRACE - timedelta(seconds=1)) is None
    got = outcome(option(), mark, STOP_AT + UNPRICED_GRACE)
    assert got.exit_reason == "unpriced"
    assert got.exit_price is None and got.return_pct is None
    assert got.entry == 1.00
    assert got.held_s == (STOP_AT + UNPRICED_GRACE - T0).total_seconds()
    assert not got.hit


def test_the_grace_is_fifteen_minutes() -> None:
    assert timedelta(minutes=15) == UNPRICED_GRACE


def test_a_mark_judged_before_creation_holds_zero_seconds() -> None:
    got = outcome(option(), 1.60, T0 - timedelta(seconds=5))
    assert got.held_s == 0.0


# --- judge: a sale (MOC bearish): signs invert ---------------------------------------------------------

def test_a_sale_takes_profit_when_the_price_falls() -> None:
    got = outcome(moc_sale(), 596.0, T0 + timedelta(minutes=10))
    assert got.exit_reason == "take_profit"
    assert got.return_pct == pytest.approx((600.0 - 596.0) / 600.0)
    assert got.return_pct is not None and got.return_pct > 0 and got.hit
    assert outcome(moc_sale(), 597.0, T0 + timedelta(minutes=10)).exit_reason == "take_profit"


def test_a_sale_stops_when_the_price_rises() -> None:
    got = outcome(moc_sale(), 604.0, T0 + timedelta(minutes=10))
    assert got.exit_reason == "stop"
    assert got.return_pct == pytest.approx(-4.0 / 600.0)
    assert outcome(moc_sale(), 603.0, T0 + timedelta(minutes=10)).exit_reason == "stop"


def test_a_sale_between_its_exits() -> None:
    assert judge(moc_sale(), 601.0, T0 + timedelta(minutes=10)) is None
    got = outcome(moc_sale(), 601.0, STOP_AT)
    assert got.exit_reason == "time_stop"
    assert got.return_pct == pytest.approx(-1.0 / 600.0)
    got = outcome(moc_sale(), 598.5, STOP_AT)
    assert got.return_pct == pytest.approx(1.5 / 600.0) and got.hit


@given(st.floats(min_value=0.01, max_value=1000.0), st.floats(min_value=0.001, max_value=10_000.0))
def test_a_buys_return_is_the_marks_change_over_the_limit(limit: float, mark: float) -> None:
    signal = option(limit, take_profit=limit * 1.5, stop=limit * 0.75)
    got = outcome(signal, mark, STOP_AT)  # at the time stop every priced mark ends it
    assert got.return_pct == pytest.approx((mark - limit) / limit, rel=1e-12, abs=1e-12)
    assert got.exit_price == mark and got.entry == limit


@given(st.floats(min_value=0.01, max_value=1000.0), st.floats(min_value=0.001, max_value=10_000.0))
def test_a_sales_return_is_the_marks_change_over_the_limit_negated(limit: float, mark: float) -> None:
    signal = replace(option(limit, take_profit=limit * 0.995, stop=limit * 1.005), side="SELL", direction=-1)
    got = outcome(signal, mark, STOP_AT)
    assert got.return_pct == pytest.approx((limit - mark) / limit, rel=1e-12, abs=1e-12)


# --- summarize ----------------------------------------------------------------------------------------

def ids(n: int) -> list[str]:
    return [f"{1796310000000 + i:013d}{i:08x}" for i in range(n)]


def test_summarize_counts_hits_returns_and_exits() -> None:
    a, b, c, d, e = ids(5)
    signals = [option(sid=a), option(sid=b), option(sid=c), option(sid=d), option(sid=e)]
    outcomes = {
        a: Outcome(a, "SPY", "0dte", "take_profit", 1.0, 1.6, 0.6, 600.0, T0),
        b: Outcome(b, "SPY", "0dte", "stop", 1.0, 0.7, -0.3, 300.0, T0),
        c: Outcome(c, "SPY", "0dte", "time_stop", 1.0, 1.3, 0.3, 3600.0, T0),
        d: Outcome(d, "SPY", "0dte", "unpriced", 1.0, None, None, 4500.0, T0),
        # e: still open
    }
    (line,) = summarize(signals, outcomes, {})
    assert (line.strategy, line.symbol) == ("0dte", "SPY")
    assert (line.count, line.decided, line.hits) == (5, 4, 2)
    assert line.hit_rate == pytest.approx(2 / 3)  # over the three priced outcomes, not the four decided
    assert line.mean_return == pytest.approx((0.6 - 0.3 + 0.3) / 3)
    assert line.median_return == pytest.approx(0.3)
    assert line.median_held_s == 600.0  # of the priced ones
    assert line.exits == {"take_profit": 1, "stop": 1, "time_stop": 1, "unpriced": 1}
    assert line.blocked == {}
    doc = line.as_dict()
    assert doc["open"] == 1 and doc["decided"] == 4 and doc["hit_rate"] == pytest.approx(2 / 3)


def test_a_zero_return_is_not_a_hit() -> None:
    (a,) = ids(1)
    (line,) = summarize([option(sid=a)], {a: Outcome(a, "SPY", "0dte", "time_stop", 1.0, 1.0, 0.0, 60.0, T0)}, {})
    assert (line.hits, line.hit_rate, line.mean_return) == (0, 0.0, 0.0)


def test_a_line_with_no_priced_outcome_has_no_rates() -> None:
    a, b = ids(2)
    (line,) = summarize([option(sid=a), option(sid=b)],
                        {a: Outcome(a, "SPY", "0dte", "unpriced", 1.0, None, None, 60.0, T0)}, {})
    assert (line.count, line.decided, line.hits) == (2, 1, 0)
    assert line.hit_rate is None and line.mean_return is None and line.median_return is None
    assert line.median_held_s is None
    assert line.exits == {"unpriced": 1}


def test_outcomes_of_other_signals_are_ignored() -> None:
    a, b = ids(2)
    (line,) = summarize([option(sid=a)], {b: Outcome(b, "SPY", "0dte", "stop", 1.0, 0.7, -0.3, 60.0, T0)}, {})
    assert (line.count, line.decided, line.returns) == (1, 0, [])


def test_blocked_counters_are_parsed_from_symbol_strategy_reason_keys() -> None:
    blocked = {"SPY:0dte:0dte_cutoff": 5, "SPY:0dte:below_threshold": 7, "SPY:0dte:filter:spread": 2,
               "SPY:0dte:filter:open_interest": 1, "QQQ:moc:moc_window": 30, "IWM:1dte:no_score": 4,
               "SPY:0dte": 9, "garbage": 1}
    lines = summarize([], {}, blocked)
    by = {(line.strategy, line.symbol): line for line in lines}
    assert set(by) == {("0dte", "SPY"), ("moc", "QQQ"), ("1dte", "IWM")}  # keys without a reason are skipped
    assert by[("0dte", "SPY")].blocked == {"0dte_cutoff": 5, "below_threshold": 7, "filter:spread": 2,
                                           "filter:open_interest": 1}
    assert by[("moc", "QQQ")].blocked == {"moc_window": 30}
    assert by[("1dte", "IWM")].blocked == {"no_score": 4}
    assert all(line.count == 0 for line in lines)


def test_blocked_counts_land_on_the_signals_line() -> None:
    (a,) = ids(1)
    (line,) = summarize([option(sid=a, strategy="1dte", symbol="QQQ")], {}, {"QQQ:1dte:cooldown": 3})
    assert (line.strategy, line.symbol, line.count, line.blocked) == ("1dte", "QQQ", 1, {"cooldown": 3})


def test_lines_are_sorted_by_strategy_then_symbol() -> None:
    a, b, c, d = ids(4)
    signals = [option(sid=a, strategy="moc", symbol="SPY"), option(sid=b, strategy="0dte", symbol="SPY"),
               option(sid=c, strategy="0dte", symbol="IWM"), option(sid=d, strategy="14dte", symbol="QQQ")]
    lines = summarize(signals, {}, {"AAA:1dte:no_score": 1})
    assert [(line.strategy, line.symbol) for line in lines] == [
        ("0dte", "IWM"), ("0dte", "SPY"), ("14dte", "QQQ"), ("1dte", "AAA"), ("moc", "SPY")]


def test_lines_split_by_strategy_and_symbol() -> None:
    a, b, c = ids(3)
    signals = [option(sid=a), option(sid=b, symbol="QQQ"), option(sid=c, strategy="1dte")]
    outcomes = {a: Outcome(a, "SPY", "0dte", "take_profit", 1.0, 1.6, 0.6, 60.0, T0)}
    lines = summarize(signals, outcomes, {})
    assert [(line.strategy, line.symbol, line.count, line.hits) for line in lines] == [
        ("0dte", "QQQ", 1, 0), ("0dte", "SPY", 1, 1), ("1dte", "SPY", 1, 0)]
