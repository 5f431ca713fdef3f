"""The executor lowering the Redis-restart latch in a real Redis: only that latch, only one set before its
reconciliation began, recorded in the transition log as the executor's; raised again if Redis changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from qc.core import keys
from qc.execute.cycle.run import lower_redis_latch, relatch_redis
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState, escalate
from qc.runtime.store import Store

T0 = datetime(2026, 12, 3, 15, 0, tzinfo=timezone.utc)
ACCOUNT = "DU1"
BY = "executor:123@host:abcd"


def latch_account(store: Store, state: TradingState, cause: str, by: str, at: datetime) -> None:
    latches.update(store, ACCOUNT, latches.ACCOUNT_SCOPE, lambda c: escalate(c, state, cause, by, "x", at), at)


def account(store: Store) -> Latch:
    return latches.load(store, ACCOUNT).get(latches.ACCOUNT_SCOPE, Latch())


def test_the_redis_restart_latch_is_lowered_after_a_reconciliation_that_began_after_it(store: Store) -> None:
    latch_account(store, TradingState.REDUCING, "redis_restarted", "breaker:redis_restarted", T0)
    assert lower_redis_latch(store, ACCOUNT, T0 - timedelta(seconds=1), BY, T0 + timedelta(seconds=5)) is None
    assert account(store).state is TradingState.REDUCING  # that reconciliation began before the restart was seen
    done = lower_redis_latch(store, ACCOUNT, T0 + timedelta(seconds=1), BY, T0 + timedelta(seconds=9))
    assert done is not None and done.after.state is TradingState.ACTIVE and not done.breach
    now = account(store)
    assert (now.state, now.cause, now.by, now.since) == (TradingState.ACTIVE, "reconciled", BY,
                                                          T0 + timedelta(seconds=9))
    newest = latches.transitions(store, ACCOUNT)[0]
    assert (newest["from"], newest["to"], newest["by"]) == ("REDUCING", "ACTIVE", BY)
    assert "Redis restart" in str(newest["reason"])
    assert lower_redis_latch(store, ACCOUNT, T0 + timedelta(seconds=20), BY, T0 + timedelta(seconds=21)) is None


def test_an_operator_s_or_another_breaker_s_latch_is_never_lowered_by_the_executor(store: Store) -> None:
    later = T0 + timedelta(minutes=1)
    for state, cause, by in ((TradingState.REDUCING, "operator_halt", "operator:ann"),
                             (TradingState.REDUCING, "daily_loss", "breaker:daily_loss"),
                             (TradingState.HALTED, "rejects", "breaker:rejects")):
        store.client.delete(keys.trading_state(ACCOUNT).name)
        latch_account(store, state, cause, by, T0)
        assert lower_redis_latch(store, ACCOUNT, later, BY, later) is None
        assert (account(store).state, account(store).cause) == (state, cause)
    # a Redis restart on top of a HALT: the HALT stays (the restart could not even latch over it)
    latch_account(store, TradingState.REDUCING, "redis_restarted", "breaker:redis_restarted", T0)
    assert lower_redis_latch(store, ACCOUNT, later, BY, later) is None
    assert account(store).state is TradingState.HALTED


def test_redis_changing_again_as_the_latch_was_lowered_raises_it_again(store: Store) -> None:
    latch_account(store, TradingState.REDUCING, "redis_restarted", "breaker:redis_restarted", T0)
    assert lower_redis_latch(store, ACCOUNT, T0 + timedelta(seconds=1), BY, T0 + timedelta(seconds=2)) is not None
    again = relatch_redis(store, ACCOUNT, BY, T0 + timedelta(seconds=3))
    assert again is not None and again.after.state is TradingState.REDUCING
    assert (account(store).cause, account(store).by) == ("redis_restarted", BY)
