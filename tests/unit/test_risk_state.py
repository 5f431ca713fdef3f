"""The trading-state latch: only raised by breakers, lowered by an operator's resume or a regime clearing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.risk.state import (
    REDIS_RESTARTED,
    Latch,
    TradingState,
    clear,
    effective,
    escalate,
    lowered_after_reconcile,
    resume,
)

T0 = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
states = st.sampled_from(list(TradingState))


def test_a_breaker_raises_and_records_its_cause() -> None:
    got = escalate(Latch(), REDUCING, "daily_loss", "breaker:daily_loss", "pnl=-5200 limit=-5000", T0)
    assert (got.state, got.cause, got.by, got.since) == (REDUCING, "daily_loss", "breaker:daily_loss", T0)


@given(states, states)
def test_a_request_never_lowers_the_latch(current: TradingState, requested: TradingState) -> None:
    latch = Latch(current, "x", "breaker:x", "", T0)
    got = escalate(latch, requested, "y", "breaker:y", "", T0 + timedelta(seconds=1))
    assert got.state == max(current, requested)
    if requested <= current:
        assert got is latch  # unchanged: no transition to log


def test_only_resume_with_a_reason_leaves_halted() -> None:
    halted = escalate(Latch(), HALTED, "rejects", "breaker:rejects", "rejects=5 window_min=10", T0)
    assert escalate(halted, ACTIVE, "x", "breaker:x", "", T0) is halted
    assert clear(halted, "rejects", T0) is halted
    with pytest.raises(ValueError, match=r"^reason"):
        resume(halted, "ops", "  ", T0)
    back = resume(halted, "ops", "broker fixed, positions reconciled", T0 + timedelta(minutes=5))
    assert (back.state, back.by, back.reason) == (ACTIVE, "operator:ops", "broker fixed, positions reconciled")


def test_a_regime_latch_clears_itself_and_only_its_own_cause() -> None:
    crossed = escalate(Latch(), REDUCING, "zero_gamma_cross", "breaker:zero_gamma_cross", "spot=501 flip=500", T0)
    assert clear(crossed, "vpin_high", T0) is crossed
    got = clear(crossed, "zero_gamma_cross", T0 + timedelta(minutes=3))
    assert (got.state, got.cause) == (ACTIVE, "cleared")
    loss = escalate(Latch(), REDUCING, "daily_loss", "breaker:daily_loss", "", T0)
    assert clear(loss, "daily_loss", T0) is loss  # an account breaker waits for the operator


def test_a_stricter_latch_over_a_regime_one_is_not_cleared_by_the_regime() -> None:
    crossed = escalate(Latch(), REDUCING, "vpin_high", "breaker:vpin_high", "", T0)
    halted = escalate(crossed, HALTED, "operator", "operator:ops", "fat finger", T0)
    assert clear(halted, "vpin_high", T0) is halted


@given(states, states)
def test_an_order_meets_the_stricter_of_account_and_underlying(account: TradingState,
                                                               underlying: TradingState) -> None:
    assert effective(Latch(account), Latch(underlying)) == max(account, underlying)


def test_the_executor_lowers_only_a_redis_restart_latch_set_before_its_clean_reconciliation() -> None:
    """What the executor's reconciliation after a Redis restart may lower, and what it must leave alone."""
    tripped = escalate(Latch(), REDUCING, "redis_restarted", "breaker:redis_restarted", "run_id=a->b", T0)
    began = T0 + timedelta(seconds=2)
    later = T0 + timedelta(seconds=9)
    by, why = "executor:1@h:ab", "reconciled"
    got = lowered_after_reconcile(tripped, REDIS_RESTARTED, by, why, began, later)
    assert (got.state, got.cause, got.by, got.reason, got.since) == (ACTIVE, "reconciled", by, why, later)
    assert lowered_after_reconcile(tripped, REDIS_RESTARTED, by, why, T0, later).state is ACTIVE  # same instant
    # set after the reconciliation began (a later restart's): stays for the next one
    assert lowered_after_reconcile(tripped, REDIS_RESTARTED, by, why, T0 - timedelta(seconds=1), later) is tripped
    # stricter, another cause, an operator's, a regime latch, or nothing latched: unchanged
    halted = escalate(tripped, HALTED, "rejects", "breaker:rejects", "rejects=5", T0)
    operator = escalate(Latch(), REDUCING, "operator_halt", "operator:ops", "look", T0)
    loss = escalate(Latch(), REDUCING, "daily_loss", "breaker:daily_loss", "pnl=-5200", T0)
    disconnected = escalate(Latch(), REDUCING, "broker_disconnected", "breaker:broker_disconnected", "", T0)
    for latch in (halted, operator, loss, disconnected, Latch(), Latch(REDUCING, "redis_restarted")):
        assert lowered_after_reconcile(latch, REDIS_RESTARTED, by, why, began, later) is latch
    # the rule is for the Redis restart only: no other cause can be named to lower its latch
    assert lowered_after_reconcile(loss, "daily_loss", by, why, began, later) is loss
