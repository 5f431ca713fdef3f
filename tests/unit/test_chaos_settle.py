"""The chaos run settles only once the executor trades and reconciled since the faults stopped; a Redis
restart heals only once the executor itself lowered the REDUCING latch (no operator is played)."""

from __future__ import annotations

from datetime import datetime, timezone

from chaos.observe import latched_by_redis
from chaos.settle import reconciled_after
from qc.risk.state import Latch, TradingState

AT = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def test_only_the_redis_restart_latch_counts_as_not_yet_healed() -> None:
    assert latched_by_redis(Latch(TradingState.REDUCING, "redis_restarted", "breaker:redis_restarted"))
    assert not latched_by_redis(Latch(TradingState.HALTED, "rejects", "breaker:rejects"))
    assert not latched_by_redis(Latch(TradingState.REDUCING, "daily_loss", "breaker:daily_loss"))
    assert not latched_by_redis(Latch())


def test_the_executor_must_be_trading_and_have_reconciled_since_the_restart() -> None:
    since = AT.timestamp()
    assert reconciled_after({"state": "trading", "last_reconcile": AT.isoformat()}, since)
    assert not reconciled_after({"state": "trading", "last_reconcile": AT.replace(minute=0, hour=14).isoformat()},
                                since)
    assert not reconciled_after({"state": "reconciling", "last_reconcile": AT.isoformat()}, since)
    assert not reconciled_after({}, since)
