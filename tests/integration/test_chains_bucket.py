"""The shared Alpha Vantage token bucket: its Lua script on a real redis-server, time driven through ARGV."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qc.core import keys
from qc.ingest.cycle.ratelimit import (
    BucketShape,
    BudgetExhausted,
    TokenBucket,
    TokenGauge,
    record_request,
    requests_left,
)
from qc.runtime.store import Store

from .conftest import eventually

T0 = 1_795_532_400.0


def bucket(store: Store, rpm: int = 12, window_s: float = 60.0) -> TokenBucket:
    store.delete(keys.av_token_bucket())
    return TokenBucket(store, BucketShape(rpm, window_s))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rpm=st.integers(1, 1200), window_s=st.sampled_from([1.0, 2.0, 60.0]),
       steps=st.lists(st.floats(0.0, 5.0, allow_nan=False), min_size=1, max_size=80))
def test_never_grants_more_than_capacity_plus_refill(store: Store, rpm: int, window_s: float,
                                                     steps: list[float]) -> None:
    b = bucket(store, rpm, window_s)
    now, granted_at = T0, []
    for dt in steps:
        now += dt
        take = b.take(now)
        assert -1e-9 <= take.tokens_left <= b.shape.capacity + 1e-9
        if take.granted:
            granted_at.append(now)
        else:
            assert take.wait_s > 0
    for i, start in enumerate(granted_at):  # any interval [start, end]: capacity + rate × its length
        for j in range(i, len(granted_at)):
            allowed = b.shape.capacity + b.shape.refill_per_s * (granted_at[j] - start)
            assert j - i + 1 <= allowed + 1e-6
    assert b.shape.capacity + b.shape.refill_per_s * b.shape.window_s <= max(0.9 * rpm, 1.5)


def test_wait_s_says_when_the_next_token_comes(store: Store) -> None:
    b = bucket(store, rpm=12)  # budget 10: capacity 2, refill 8 per 60 s
    assert [b.take(T0).granted for _ in range(3)] == [True, True, False]
    denied = b.take(T0)
    assert denied.wait_s == 60 / 8
    assert not b.take(T0 + denied.wait_s - 0.01).granted
    assert b.take(T0 + denied.wait_s + 0.01).granted


def test_a_clock_behind_the_bucket_gets_no_refill(store: Store) -> None:
    b = bucket(store, rpm=12)
    assert b.take(T0).granted and b.take(T0).granted
    assert not b.take(T0 - 30).granted  # another host's clock behind ours: nothing refills, nothing breaks
    assert store.hget(keys.av_token_bucket(), "updated_at") == f"{T0:.6f}"
    assert store.client.ttl(keys.av_token_bucket().name) > 0


def test_acquire_waits_then_gives_up(store: Store) -> None:
    now = [T0]
    slept: list[float] = []

    def sleep(seconds: float, stop: object = None) -> bool:
        slept.append(seconds)
        now[0] += seconds
        return False

    store.delete(keys.av_token_bucket())
    b = TokenBucket(store, BucketShape(12), now=lambda: now[0], sleep=sleep)
    b.acquire(0.0)
    b.acquire(0.0)
    b.acquire(10.0)  # waits one refill interval (7.5 s) and gets it
    assert len(slept) == 1 and 7.5 <= slept[0] <= 7.6
    with pytest.raises(BudgetExhausted, match="no Alpha Vantage token within 1 s"):
        b.acquire(1.0)


def tokens_left(store: Store, shape: BucketShape, at_epoch: float) -> int:
    record_request(store, at_epoch)
    return requests_left(store, shape, at_epoch)


def test_tokens_left_is_what_the_plan_still_allows_in_the_trailing_window(store: Store) -> None:
    shape = BucketShape(rpm=75)  # budget 67 per 60 s
    lefts = [tokens_left(store, shape, 1000.0 + i) for i in range(20)]
    assert lefts[0] == 66 and lefts[-1] == 47  # every process's requests count, this one included
    assert tokens_left(store, shape, 1000.0 + 80) == 66  # the first 20 have left the window


def test_tokens_left_in_monitoring_is_current_between_cycles_not_a_snapshot(store: Store) -> None:
    at = [T0]
    gauge = TokenGauge(store, BucketShape(rpm=75), every_s=0.01, now=lambda: at[0])  # budget 67 per 60 s
    metrics = keys.alpha_vantage_metrics()
    for _ in range(18):  # one cycle of SPY, QQQ and IWM
        gauge.taken()
    assert store.hget(metrics, "tokens_left") == "49"
    at[0] = T0 + 61  # a minute later the window is empty again, though no request has been made since
    gauge.start()
    try:
        eventually(lambda: store.hget(metrics, "tokens_left") == "67")
    finally:
        gauge.close()
    assert requests_left(store, BucketShape(rpm=75), T0 + 30) == 49  # the log itself is unchanged
