"""`qc distribute`'s Redis layer against a real redis-server: never early, never lost, exactly once, within limits.

Time assertions use the clock readings the scripts return (Redis TIME and its mapping to qc's time),
not sleeps: a loaded machine makes every call later, never a claim earlier than its mapped time.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qc.core import clock, keys
from qc.core.config import Settings
from qc.distribute.cycle import metrics
from qc.distribute.cycle.buckets import BucketShape, Take, TokenBucket, bucket
from qc.distribute.cycle.clockmap import IDENTITY, TimeMap, redis_now, redis_time, time_map
from qc.distribute.cycle.queues import GROUP, Claim, DelayQueue, move_due, outbox, prune_consumers, tier_queue
from qc.distribute.cycle.sent import DeliveryKey, SendState, SentLedger, Verdict, sent_key
from qc.runtime.store import Store, connect

from .conftest import RedisServer, eventually

SIM_EPOCH = 1_800_000_000.0  # a simulated instant far from the real one: a mix-up of clocks cannot pass


def _claim_until(queue: DelayQueue, lease_s: float = 30.0, timeout_s: float = 5.0) -> list[Claim]:
    """Poll claim_due until something is claimed; every claim made on the way, in order."""
    claims: list[Claim] = []

    def claimed() -> bool:
        claims.append(queue.claim_due(10, lease_s))
        return bool(claims[-1].members)

    eventually(claimed, timeout_s=timeout_s, every_s=0.01)
    return claims


def test_never_early_under_an_accelerated_sim_clock(store: Store) -> None:
    t0 = redis_time(store)
    tm = TimeMap(real_epoch=t0, sim_epoch=SIM_EPOCH, speed=60.0)  # `qc sim` at 60x, anchored now
    queue = tier_queue(store, "basic", tm)
    due = SIM_EPOCH + 60.0  # basic: published at SIM_EPOCH, 60 simulated seconds later = 1 real second
    assert queue.schedule('{"id":"s1"}', due)
    claims = _claim_until(queue)
    for claim in claims:
        assert claim.now == pytest.approx(tm.qc_at(claim.real), abs=1e-3)  # the script maps TIME like SimAnchor
        assert bool(claim.members) == (claim.now >= due), claim  # claimable exactly from its due time
    early = [c for c in claims if not c.members]
    assert early and early[0].real - t0 < 0.9  # seen while not due (at +0.9 wall s it would be 54 sim s)
    last = claims[-1]
    assert last.members == ('{"id":"s1"}',)
    assert last.real - t0 >= 1.0  # never before one real second at 60x
    assert last.lease_until == pytest.approx(tm.qc_at(last.real + 30.0), abs=1e-3)  # lease: real seconds


@pytest.mark.parametrize(("elapsed_s", "claimable"), [(0.9, False), (1.1, True)])
def test_the_anchor_alone_decides_due(store: Store, elapsed_s: float, claimable: bool) -> None:
    """The same item seen through an anchor set 0.9 or 1.1 real seconds back: no sleeping involved."""
    tm = TimeMap(real_epoch=redis_time(store) - elapsed_s, sim_epoch=SIM_EPOCH, speed=60.0)
    queue = tier_queue(store, "basic", tm)
    queue.schedule("item", SIM_EPOCH + 60.0)
    claim = queue.claim_due(10, 30.0)
    assert bool(claim.members) == (claim.now >= SIM_EPOCH + 60.0)
    if claim.real - tm.real_epoch < 1.0:  # true unless this call took over 0.1 s to reach Redis
        assert bool(claim.members) is claimable


def test_a_sim_clock_maps_like_its_anchor_and_production_is_the_identity(store: Store) -> None:
    anchor = clock.SimAnchor(real_epoch=clock.wall_epoch(), sim_epoch=SIM_EPOCH, speed=60.0)
    assert time_map(clock.SimClock(anchor)) == TimeMap(anchor.real_epoch, SIM_EPOCH, 60.0)
    assert time_map(clock.SystemClock()) == IDENTITY
    fake = clock.FakeClock()
    assert redis_now(store, time_map(fake)) == pytest.approx(fake.epoch(), abs=2.0)  # pinned, real speed after
    assert redis_now(store, IDENTITY) == pytest.approx(clock.wall_epoch(), abs=2.0)


def test_an_unsettled_member_reappears_after_its_lease_and_a_settled_one_never(store: Store) -> None:
    queue = tier_queue(store, "premium", IDENTITY)
    now = redis_now(store, IDENTITY)
    queue.schedule("a", now - 1.0)
    queue.schedule("b", now - 1.0)
    first = queue.claim_due(10, lease_s=0.5)
    assert sorted(first.members) == ["a", "b"]
    assert queue.settle(first, ("b",)) == 1  # "b" reached its outbox; the mover "crashes" before settling "a"
    during = queue.claim_due(10, 30.0)
    assert during.members == () or during.now >= first.lease_until  # "a" hidden by its lease, "b" gone
    again = during if during.members else _claim_until(queue, lease_s=30.0)[-1]
    assert again.members == ("a",)  # back after the lease, never lost
    assert again.now >= first.lease_until
    assert queue.settle(first) == 0  # the crashed mover's late settle leaves the new owner's member alone
    assert queue.size() == 1 and queue.score("a") == again.lease_until
    assert queue.settle(again) == 1
    assert queue.size() == 0
    assert queue.score("b") is None


def test_a_rescheduled_member_survives_a_stale_settle_and_nx_never_moves_it(store: Store) -> None:
    queue = tier_queue(store, "premium", IDENTITY)
    now = redis_now(store, IDENTITY)
    queue.schedule("retry", now - 1.0)
    claim = queue.claim_due(10, 30.0)
    assert queue.schedule("retry", now + 5.0) is False  # re-scheduled while leased: replaced, not added
    assert queue.schedule("retry", now + 500.0, only_new=True) is False  # NX: the earlier schedule stands
    assert queue.score("retry") == now + 5.0
    assert queue.settle(claim) == 0
    assert queue.next_due() == now + 5.0


def test_two_concurrent_movers_never_get_the_same_member_within_a_lease(store: Store) -> None:
    queue = tier_queue(store, "premium", IDENTITY)
    now = redis_now(store, IDENTITY)
    members = [f'{{"id":"s{i}"}}' for i in range(400)]
    for member in members:
        queue.schedule(member, now - 0.5)
    box = outbox(store, "premium", "telegram", "c1")
    box.ensure_group()
    got: dict[str, list[str]] = {"m1": [], "m2": []}
    partial: list[tuple[int, int, int]] = []
    start = threading.Barrier(2)

    def mover(name: str) -> None:
        q = tier_queue(store, "premium", IDENTITY)
        start.wait()
        while True:
            moved = move_due(q, lambda _m: [box], limit=7, lease_s=30.0)
            if not moved.claim.members:
                return
            if not moved.settled == len(moved.claim.members) == moved.written:
                partial.append((len(moved.claim.members), moved.written, moved.settled))
            got[name].extend(moved.claim.members)

    threads = [threading.Thread(target=mover, args=(name,)) for name in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert partial == []
    assert not set(got["m1"]) & set(got["m2"])
    assert sorted(got["m1"] + got["m2"]) == sorted(members)  # every member once, none twice
    assert queue.size() == 0
    assert box.length() == 400
    assert sorted(e.member for e in box.read(count=500, block_ms=0)) == sorted(members)


def _max_in_window(times: list[float], window_s: float) -> int:
    """The most grants any closed window [t, t + W] holds (it suffices to start windows at grants)."""
    ordered = sorted(times)
    most, j = 0, 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j + 1 < len(ordered) and ordered[j + 1] <= start + window_s:
            j += 1
        most = max(most, j - i + 1)
    return most


@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_the_bucket_never_grants_more_than_n_per_window_to_concurrent_takers(store: Store, speed: float) -> None:
    limit, window = (8, 0.5) if speed == 1.0 else (8, 5.0)  # both: 8 per half a real second
    tm = TimeMap(real_epoch=redis_time(store), sim_epoch=SIM_EPOCH, speed=speed)
    shape = BucketShape.within(limit, window, burst=3, jitter_s=0.02, speed=speed)
    assert shape.max_grants(window) <= limit
    run_for_s = 1.5  # real seconds
    grants: list[Take] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def taker(hammer: bool) -> None:
        b = bucket(store, "test:telegram", shape, tm)
        start.wait()
        deadline = clock.monotonic() + run_for_s
        while clock.monotonic() < deadline:
            got = b.take() if hammer else b.acquire(0.2)
            if got is not None and got.granted:
                with lock:
                    grants.append(got)
            if hammer:
                clock.real_sleep(0.002)  # as fast as a sender could, without starving a shared machine

    threads = [threading.Thread(target=taker, args=(i % 2 == 0,)) for i in range(4)]  # two spin, two wait
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    times = [g.at for g in grants]
    for g in grants:
        assert g.at == pytest.approx(tm.qc_at(g.real), abs=1e-3)
    assert _max_in_window(times, window) <= limit
    span = max(times) - min(times)
    assert len(grants) <= shape.max_grants(span)
    assert len(grants) > limit  # it does grant: beyond the burst, at the refill rate


def test_a_paused_bucket_grants_nothing_until_the_pause_ends_for_every_taker(store: Store) -> None:
    tm = TimeMap(real_epoch=redis_time(store), sim_epoch=SIM_EPOCH, speed=60.0)
    first, second = (bucket(store, "test:flood", BucketShape.within(30, 1.0, burst=5), tm) for _ in range(2))
    assert first.take().granted
    until = first.take().at + 30.0  # a 429 asked for 30 simulated seconds
    assert first.pause(until) == until
    assert first.pause(until - 20.0) == until  # a shorter pause never shortens the one in force
    refused = second.take()  # another process sharing the bucket
    assert not refused.granted and refused.at + refused.wait_s == pytest.approx(until, abs=1e-6)
    granted = second.acquire(max_wait_s=5.0)  # 30 simulated seconds are half a real second at 60x
    assert granted is not None and granted.at >= until


def _takes_at(store: Store, shape: BucketShape, times: list[float], name: str) -> list[float]:
    """Drive the real script at chosen qc instants; the instants it granted.

    Each call's map is pinned to its instant: at speed 1e-12, Redis TIME's few elapsed seconds move qc's
    time by less than a rounding step of an epoch-sized double.
    """
    store.delete(keys.distribution_bucket(name))
    base = redis_time(store)
    granted = []
    for t in times:
        b = TokenBucket(store, keys.distribution_bucket(name), shape, TimeMap(base, SIM_EPOCH + t, 1e-12))
        got = b.take()
        assert got.at == pytest.approx(SIM_EPOCH + t, abs=1e-6)
        assert got.granted or got.wait_s > 0
        if got.granted:
            granted.append(got.at)
    return granted


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 40), window_s=st.sampled_from([1.0, 60.0, 900.0]), burst_share=st.floats(0.0, 1.0),
       gaps=st.lists(st.floats(0.0, 2.0, allow_nan=False), min_size=1, max_size=60))
def test_the_script_keeps_every_window_at_most_n(store: Store, limit: int, window_s: float, burst_share: float,
                                                  gaps: list[float]) -> None:
    shape = BucketShape.within(limit, window_s, burst=max(1, round(burst_share * limit)))
    times, t = [], 0.0
    for gap in gaps:
        t += gap * window_s / max(limit, 1)
        times.append(t)
    granted = _takes_at(store, shape, times, "test:property")
    assert _max_in_window(granted, window_s) <= limit
    assert granted[0] == SIM_EPOCH + times[0]  # a fresh bucket starts full


def test_burst_one_with_refill_n_per_w_would_exceed_a_closed_window(store: Store) -> None:
    """Why the rule has a slack: the naive shape grants N + 1 within [0, W] at exactly spaced requests."""
    n, w = 4, 1.0
    ticks = [i * w / n for i in range(n + 1)]  # 0, 0.25, 0.5, 0.75, 1.0: exact in binary
    assert len(_takes_at(store, BucketShape(1, n / w), ticks, "test:naive")) == n + 1
    safe = BucketShape.within(n, w)
    assert len(_takes_at(store, safe, ticks, "test:safe")) <= n


def test_idempotency_states(store: Store) -> None:
    ledger = SentLedger(store)
    d = DeliveryKey("sig-1", "premium", "telegram", "chan_premium")
    first = ledger.begin(d)
    assert first.send and first.earlier is None
    ttl = store.client.ttl(sent_key(d).name)
    assert 86_000 < ttl <= 86_400  # a day: longer than any retry or lateness bound
    assert ledger.begin(d).verdict is Verdict.SKIP  # a duplicate outbox entry while the sender is alive
    found = ledger.begin(d, reclaimed=True)  # the sender died mid-call: it may have reached Telegram
    assert found.verdict is Verdict.UNCERTAIN and found.earlier is SendState.SENDING
    assert ledger.mark_uncertain(d) is SendState.SENDING
    assert ledger.begin(d, reclaimed=True) == ledger.begin(d)
    assert ledger.begin(d).earlier is SendState.UNCERTAIN and not ledger.begin(d).send  # never resent
    assert ledger.release(d) is SendState.UNCERTAIN and ledger.state(d) is SendState.UNCERTAIN  # only frees sending
    assert ledger.mark_sent(d) is SendState.UNCERTAIN and ledger.state(d) is SendState.SENT  # late success wins
    assert ledger.mark_uncertain(d) is SendState.SENT and ledger.state(d) is SendState.SENT  # never downgraded
    assert ledger.begin(d).verdict is Verdict.SKIP

    retry = DeliveryKey("sig-1", "premium", "webhook", "endpoint_a")
    assert ledger.begin(retry).send
    assert ledger.release(retry) is SendState.SENDING  # a 503: definite failure, a retry is scheduled
    assert ledger.state(retry) is None
    assert ledger.begin(retry).send  # the retry may send

    store.client.set(sent_key(DeliveryKey("sig-2", "free", "x", "house")).name, "garbage")
    assert not ledger.begin(DeliveryKey("sig-2", "free", "x", "house")).send  # unknown reads as in doubt


def test_only_one_of_many_concurrent_senders_may_send(store: Store) -> None:
    d = DeliveryKey("sig-9", "basic", "telegram", "chan_basic")
    verdicts: list[Verdict] = []
    start = threading.Barrier(6)

    def sender() -> None:
        ledger = SentLedger(store)
        start.wait()
        verdicts.append(ledger.begin(d).verdict)

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert Counter(verdicts) == {Verdict.SEND: 1, Verdict.SKIP: 5}


def test_xautoclaim_hands_a_dead_consumers_entry_to_a_live_one(store: Store) -> None:
    dead = outbox(store, "premium", "telegram", "worker-dead")
    live = outbox(store, "premium", "telegram", "worker-live")
    dead.ensure_group()
    dead.add("m1")
    dead.add("m2")
    taken = dead.read(count=10, block_ms=0)
    assert [e.member for e in taken] == ["m1", "m2"]
    dead.ack(taken[1].id)  # m2 was sent; the worker dies holding m1
    assert live.read(count=10, block_ms=0) == []  # new entries only: m1 is dead's
    assert live.reclaim(min_idle_s=60.0).entries == ()  # not idle long enough yet
    got: list[str] = []

    def reclaimed() -> bool:
        page = live.reclaim(min_idle_s=0.2)
        got.extend(e.member for e in page.entries if e.reclaimed)
        return bool(got)

    eventually(reclaimed)
    assert got == ["m1"]
    assert dead.backlog() == []  # it is live's now, not dead's on a restart under the same name
    assert [e.member for e in live.backlog()] == ["m1"]
    assert live.pending() == 1
    live.ack(*(e.id for e in live.backlog()))
    assert live.pending() == 0


def test_consumers_left_by_stopped_processes_are_forgotten_unless_they_hold_entries(store: Store) -> None:
    holder, gone = outbox(store, "premium", "webhook", "holder"), outbox(store, "premium", "webhook", "gone")
    holder.ensure_group()
    holder.add("m1")
    holder.add("m2")
    assert len(holder.read(count=1, block_ms=0)) == 1  # holder keeps m1 pending
    [second] = gone.read(count=1, block_ms=0)
    gone.ack(second.id)  # gone finished its work and stopped
    assert prune_consumers(store, holder.key.name, GROUP, idle_s=3600.0) == 0  # nobody idle that long yet
    eventually(lambda: prune_consumers(store, holder.key.name, GROUP, idle_s=0.0) == 1)
    names = {c["name"] for c in store.client.xinfo_consumers(holder.key.name, GROUP)}
    assert names == {"holder"} and holder.pending() == 1  # the one holding an entry stays, its entry too
    assert prune_consumers(store, keys.distribution_outbox("nothing", "x").name, GROUP, 0.0) == 0


def test_an_entry_trimmed_while_pending_is_reported_and_acknowledged(store: Store) -> None:
    box = outbox(store, "free", "x", "w1", maxlen=10)
    box.ensure_group()
    box.add("old")
    box.read(count=1, block_ms=0)
    store.client.xtrim(box.key.name, maxlen=0, approximate=False)  # what MAXLEN does to a backlog too long
    other = outbox(store, "free", "x", "w2")
    page = other.reclaim(min_idle_s=0.0)
    assert page.entries == () and len(page.vanished) == 1
    assert other.pending() == 0  # no ghost left to reclaim forever


def test_a_stream_that_expired_with_its_group_is_recreated_on_read(store: Store) -> None:
    box = outbox(store, "basic", "webhook", "w1")
    store.client.delete(box.key.name)
    assert box.read(count=1, block_ms=0) == []
    assert box.reclaim(min_idle_s=0.0).entries == ()
    box.add("after")
    assert [e.member for e in box.read(count=1, block_ms=0)] == ["after"]


def test_metrics_latency_and_dead_letters(store: Store) -> None:
    metrics.record(store, "premium", "telegram", {"sent": 3, "rate_limited": 1}, retry_after_s=35)
    metrics.record(store, "premium", "telegram", {"sent": 2, "failed": 0})
    assert store.client.hget("distribution:metrics", "premium:telegram:sent") == "5"  # the public key, as typed
    with pytest.raises(ValueError, match="no metric field"):
        metrics.record(store, "premium", "telegram", {"bogus": 1})
    for i in range(metrics.LATENCY_CAP + 50):
        metrics.record_latency(store, "basic", "telegram", i / 1000)
    with pytest.raises(ValueError, match="latency"):
        metrics.record_latency(store, "basic", "telegram", -0.5)  # sent before due: refused, never stored
    recent = metrics.latencies(store, "basic", "telegram")
    assert isinstance(recent, tuple) and len(recent) == metrics.LATENCY_CAP and recent[0] == pytest.approx(1.049)
    metrics.record(store, "basic", "telegram", {"sent": 1})
    rows = metrics.read(store)
    assert isinstance(rows, tuple), rows
    by = {(r.tier, r.channel): r for r in rows}
    premium, basic = by[("premium", "telegram")], by[("basic", "telegram")]
    assert (premium.sent, premium.rate_limited, premium.retry_after_s, premium.latency) == (5, 1, 35.0, None)
    assert basic.latency is not None and basic.latency.count == metrics.LATENCY_CAP
    assert basic.latency.p50 == pytest.approx(0.549) and basic.latency.p99 == pytest.approx(1.039)
    metrics.dead_letter(store, '{"id":"s1"}', "free", "x", metrics.DeadReason.EXPIRED, "312 s late, max 120 s")
    [letter] = metrics.dead_letters(store)
    assert (letter.item, letter.reason, letter.detail) == ('{"id":"s1"}', "expired", "312 s late, max 120 s")


def test_every_distribution_key_written_carries_the_namespace_ttl(store: Store) -> None:
    queue = tier_queue(store, "premium", IDENTITY)
    queue.schedule("m", redis_now(store, IDENTITY) - 1)
    box = outbox(store, "premium", "telegram", "w")
    box.ensure_group()
    move_due(queue, lambda _m: [box])
    queue.schedule("later", redis_now(store, IDENTITY) + 60)
    bucket(store, "telegram", BucketShape.within(30, 1.0), IDENTITY).take()
    SentLedger(store).begin(DeliveryKey("s", "premium", "telegram", "t"))
    metrics.record(store, "premium", "telegram", {"sent": 1})
    metrics.record_latency(store, "premium", "telegram", 0.2)
    metrics.dead_letter(store, "m", "premium", "telegram", metrics.DeadReason.PERMANENT, "403 blocked")
    names = sorted(store.client.scan_iter(match="distribution:*"))
    assert {keys.distribution_queue("premium").name, keys.distribution_metrics().name,
            keys.distribution_outbox("premium", "telegram").name, keys.distribution_dead().name} <= set(names)
    assert len(names) == 7
    for name in names:
        assert 0 < store.client.ttl(name) <= keys.DISTRIBUTION_TTL_S, name


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "aof", appendonly=True)
    server.start()
    yield server
    server.kill()


def test_a_redis_restart_loses_nothing_acknowledged(aof_redis: RedisServer) -> None:
    store = connect(Settings(redis_url=aof_redis.url))
    now = redis_now(store, IDENTITY)
    queue = tier_queue(store, "basic", IDENTITY)
    for name in ("due", "leased", "later"):
        queue.schedule(name, now + (600.0 if name == "later" else -1.0))
    box = outbox(store, "basic", "telegram", "w1")
    box.ensure_group()
    claim = queue.claim_due(1, lease_s=600.0)  # the mover holds one member; the other stays due
    [held] = claim.members
    box.add(held)
    box.add("acked")
    read = box.read(count=10, block_ms=0)
    box.ack(next(e.id for e in read if e.member == "acked"))
    ledger = SentLedger(store)
    delivered = DeliveryKey("s1", "basic", "telegram", "chan")
    ledger.begin(delivered)
    ledger.mark_sent(delivered)
    metrics.record(store, "basic", "telegram", {"sent": 1})
    store.close()

    aof_redis.kill()  # SIGKILL: only what the AOF holds comes back
    aof_redis.start()
    store = connect(Settings(redis_url=aof_redis.url))
    eventually(store.client.ping)
    queue = tier_queue(store, "basic", IDENTITY)
    assert queue.size() == 3
    assert queue.score(held) == claim.lease_until  # still hidden by its lease, still there
    assert queue.score("later") == now + 600.0
    assert queue.claim_due(10, 30.0).members == tuple(m for m in ("due", "leased") if m != held)
    box = outbox(store, "basic", "telegram", "w1")
    assert [e.member for e in box.backlog()] == [held]  # delivered, never acknowledged: still pending
    assert box.pending() == 1 and box.length() == 2
    assert SentLedger(store).state(delivered) is SendState.SENT
    rows = metrics.read(store)
    assert isinstance(rows, tuple) and [(r.tier, r.sent) for r in rows] == [("basic", 1)]
    store.close()
