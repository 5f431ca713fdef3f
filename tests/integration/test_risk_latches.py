"""Latched trading states and the executor's fence in a real Redis: compare-and-set, garbage, counting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from qc.core import keys
from qc.core.codec import Absent
from qc.risk.codec import latch_to_redis
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState, clear, escalate, resume
from qc.runtime import fence
from qc.runtime.store import Store

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=timezone.utc)
ACCOUNT = "DU1"


def halt_by(who: str, cause: str = "operator_halt") -> Callable[[Latch], Latch]:
    return lambda current: escalate(current, TradingState.HALTED, cause, who, "why", NOW)


def test_a_breaker_trip_is_a_breach_an_operator_halt_is_not(store: Store) -> None:
    reduce = latches.update(store, ACCOUNT, "SPY", lambda c: escalate(
        c, TradingState.REDUCING, "vpin_high", "breaker:vpin_high", "vpin=0.700 trip=0.6", NOW), NOW)
    assert reduce is not None and reduce.breach
    again = latches.update(store, ACCOUNT, "SPY", lambda c: escalate(
        c, TradingState.REDUCING, "zero_gamma_cross", "breaker:zero_gamma_cross", "x", NOW), NOW)
    assert again is None  # not stricter: nothing written, nothing counted
    halted = latches.update(store, ACCOUNT, "account", halt_by("operator:ann"), NOW)
    assert halted is not None and not halted.breach
    assert store.count_events(keys.risk_breaches_log(), 0) == 1
    assert store.get(keys.risk_breaches_count()) == "1"
    states = latches.load(store, ACCOUNT)
    assert states["SPY"].state is TradingState.REDUCING and states["SPY"].cause == "vpin_high"
    assert states["account"].state is TradingState.HALTED and states["account"].by == "operator:ann"
    assert [t["to"] for t in latches.transitions(store, ACCOUNT)] == ["HALTED", "REDUCING"]
    assert store.hgetall(keys.trading_state_counts(ACCOUNT)) == {"vpin_high:REDUCING": "1", "operator_halt:HALTED": "1"}


def test_a_regime_latch_clears_itself_a_halt_only_by_resume(store: Store) -> None:
    latches.update(store, ACCOUNT, "QQQ", lambda c: escalate(
        c, TradingState.REDUCING, "zero_gamma_cross", "breaker:zero_gamma_cross", "spot=1", NOW), NOW)
    cleared = latches.update(store, ACCOUNT, "QQQ", lambda c: clear(c, "zero_gamma_cross", NOW), NOW)
    assert cleared is not None and cleared.after.state is TradingState.ACTIVE
    latches.update(store, ACCOUNT, "account", halt_by("operator:ann"), NOW)
    assert latches.update(store, ACCOUNT, "account", lambda c: clear(c, "zero_gamma_cross", NOW), NOW) is None
    resumed = latches.update(store, ACCOUNT, "account", lambda c: resume(c, "bob", "checked", NOW), NOW)
    assert resumed is not None and resumed.after.state is TradingState.ACTIVE and resumed.after.by == "operator:bob"


def test_compare_and_set_rereads_a_latch_changed_underneath(store: Store) -> None:
    seen: list[TradingState] = []

    def racing_change(current: Latch) -> Latch:
        seen.append(current.state)
        if len(seen) == 1:  # another writer halts between our read and our write
            store.client.hset(keys.trading_state(ACCOUNT).name, "account", latch_to_redis(
                Latch(TradingState.HALTED, "operator_halt", "operator:ann", "drill", NOW)))
        return escalate(current, TradingState.REDUCING, "daily_loss", "breaker:daily_loss", "pnl=-6000", NOW)

    assert latches.update(store, ACCOUNT, "account", racing_change, NOW) is None  # HALTED already: stricter
    assert seen == [TradingState.ACTIVE, TradingState.HALTED]
    assert latches.load(store, ACCOUNT)["account"].cause == "operator_halt"


@pytest.mark.parametrize("garbage", ["{", '{"v": 1, "state": "SLEEPY"}', '{"v": 99, "state": "ACTIVE"}', "null"])
def test_an_unreadable_latch_reads_halted_never_active(store: Store, garbage: str) -> None:
    store.client.hset(keys.trading_state(ACCOUNT).name, "account", garbage)
    latch = latches.load(store, ACCOUNT)["account"]
    assert latch.state is TradingState.HALTED and latch.cause == latches.UNREADABLE
    resumed = latches.update(store, ACCOUNT, "account", lambda c: resume(c, "ann", "rewrote it", NOW), NOW)
    assert resumed is not None and latches.load(store, ACCOUNT)["account"].state is TradingState.ACTIVE


def test_the_fence_token_only_grows_and_a_bump_fences_the_holder_off(store: Store) -> None:
    assert fence.holder(store, ACCOUNT) is None
    first = fence.claim(store, ACCOUNT, pid=123, host="box", client_id=7, now_epoch=NOW.timestamp())
    fence.check(store, ACCOUNT, first)
    held = fence.holder(store, ACCOUNT)
    assert held == fence.FenceHolder(first, 123, "box", 7, NOW.timestamp())
    bumped = fence.bump(store, ACCOUNT, by="operator:ann", now_epoch=NOW.timestamp() + 1)
    assert bumped == first + 1
    with pytest.raises(fence.Fenced, match="stale"):
        fence.check(store, ACCOUNT, first)
    fenced = fence.holder(store, ACCOUNT)
    assert isinstance(fenced, fence.FenceHolder) and fenced.fenced and fenced.pid == 123
    second = fence.claim(store, ACCOUNT, pid=456, host="box", client_id=7, now_epoch=NOW.timestamp() + 2)
    assert second == bumped + 1
    again = fence.holder(store, ACCOUNT)
    assert isinstance(again, fence.FenceHolder) and not again.fenced and again.pid == 456
    assert keys.execute_fence(ACCOUNT).ttl_s is None and store.client.ttl(keys.execute_fence(ACCOUNT).name) == -1


def test_a_garbled_fence_is_named_not_trusted(store: Store) -> None:
    store.client.hset(keys.execute_fence(ACCOUNT).name, mapping={"token": "x", "pid": "1"})
    got = fence.holder(store, ACCOUNT)
    assert isinstance(got, Absent) and "token" in got.reason
    with pytest.raises(fence.Fenced, match="unreadable"):
        fence.check(store, ACCOUNT, 1)
