"""Premium delivery latency (sent − due) at 30 messages/s offered (target p99 < 1 s), and the mover's cost per item.

**Latency**, whole processes on loopback, as the integration tests start them
(``tests.integration.distribute_harness.Stack``): a redis-server (AOF on, as `qc up` runs it), `qc sim`
at speed 1 (the latency is real seconds) with its channel stand-ins, and one `qc distribute`.

The configuration, and why. A signal goes to *every* target of its tier (``Routing.plan``), and every
target has its own limit (``qc/distribute/limits.py``, shaped by ``BucketShape.within``): a Telegram
channel chat 20 posts/min (refill 0.32/s), the bot ~30/s over all chats (refill 21-24/s after its
jitter slack), a webhook endpoint 300/min (burst 30, refill 4.3/s after the 5 % window slack), X 100
per 15 min. No single target can carry 30 messages/s, and Telegram (one chat per tier) would cap the
premium signal rate at 0.32/s, so it cannot be part of a 30/s fan-out either. So the
only honest way to *offer* 30 messages/s within every per-target limit is fan-out over webhooks:
``QC_DISTRIBUTE_TIERS=premium=0``, ``ENDPOINTS`` (10) premium webhook endpoints (each with its own
``whsec_`` secret, checked by the simulator) and ``SIGNAL_HZ`` (3) signals/s: 30 deliveries/s, each
endpoint 180/min (60 % of its limit, under the bucket's sustained 258/min, so no token wait is
measured, only qc's pipeline). No Telegram, no X. Each signal's 10 deliveries share one due time, so
the load arrives as a burst of 10 every 1/3 s, which is what fan-out looks like.

After ``WARMUP`` signals (HTTP sessions, Lua scripts), ``DURATION_S`` (60) seconds of signals are
published as `qc signals` publishes them (``signals:record:{id}``, then XADD to
``signals:{distribution}:SPY``), each with ``created_at`` = the simulator's clock at the XADD, so its
premium due time is the moment it was published. sent − due is measured for every delivery at two ends:

- **qc's record**: the signal's lineage (``lineage.distribution["premium:webhook:benchN"]``: ``at`` −
  ``due``, ``at`` being the sender's Redis TIME right after the channel's answer, the figure
  ``distribution:premium:webhook:latency`` also keeps, whose latest 1000 are cross-checked);
- **the channel's**: the simulator's received wall time (`qc sim ctl channels --json`, through the
  harness) minus the due time turned back into wall time through the simulator's anchor.

Where the time goes, per delivery: published → in the outbox (intake, tier queue, mover; the outbox
entry id is Redis's millisecond clock), outbox → received by the simulator (the lane's wait behind the
signal's other deliveries, then re-check, render, token, claim, sign, POST), received → decided (answer,
key, metrics, latency, lineage, XACK); and the first vs the last of each signal's deliveries, whose gap
is the one-at-a-time lane (``cycle/deliver.py``) serialising the fan-out.

Baseline, same run, same simulator, same endpoints, same bodies: a bare ``requests`` loop (one
session, no Redis, no queue) sending the same number of signed posts in the same pattern (10 back to
back every 1/3 s), from the burst's start to the simulator's received time (the same definition as
sent − due) and from each post's own start.

**Mover**, against its own redis-server (AOF on): ``MOVER_N`` (20,000) real delivery members due now in
``distribution:premium:queue``; timed, ``Mover.step()`` as the worker's mover thread calls it
(``move_due`` in batches of ``mover.BATCH``: the claim script reading TIME, decoding each member to
route it, one pipeline of XADDs, the settle script), per item; and ``move_due`` with a fixed route (no
decoding). Baseline: the same members moved by a plain ZRANGEBYSCORE then one pipeline of XADDs and
a ZREM per batch (no lease, not lossless: a crash between the two loses nothing only by luck).
Best of ``MOVER_REPEAT``, the queue refilled (untimed) before each.

What it showed (2 shared cores): sent − due p50 ~25 ms, p99 ~60 ms, max ~90 ms at both ends, far under
1 s; the bare loop's burst p99 ~16 ms. The intake and mover take ~3 ms (published → outbox); nearly all
the rest is the lane: one sender thread per tier × channel handles one entry at a time, ~4 ms each
(~36 Redis commands per delivery, 5 of them TIME and 5 EXPIRE, against a bare post's ~0.8 ms), so a
signal's 10th delivery lands ~40 ms after its first. That lane tops out near 250 deliveries/s per
tier × channel; 30/s uses about an eighth of it, and no token wait or mover poll shows in the tail.

Set ``QC_BENCH_DISTRIBUTE_S`` to publish for fewer seconds (a quick look).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import redis
import requests

from benchmarks._report import Figure
from qc.core import clock, keys
from qc.core.clock import SimAnchor
from qc.core.config import Settings
from qc.distribute import codec, render
from qc.distribute.cycle import metrics
from qc.distribute.cycle.clockmap import IDENTITY
from qc.distribute.cycle.mover import BATCH, LEASE_S, Mover
from qc.distribute.cycle.queues import Outbox, move_due, outbox, tier_queue
from qc.distribute.cycle.transport import signed_headers
from qc.distribute.model import ChannelName, Delivery, Routing, Target, Tier
from qc.ingest.cycle.stream_writer import nearest_rank
from qc.runtime.simclock import read_sim_anchor
from qc.runtime.store import Store, connect
from qc.signals.codec import Signal
from tests.integration.conftest import RedisServer, eventually
from tests.integration.distribute_harness import Stack, make_signal

TIER = "premium"
CHANNEL: ChannelName = "webhook"
ENDPOINTS = 10
SIGNAL_HZ = 3.0  # x ENDPOINTS = 30 deliveries/s offered
DURATION_S = float(os.environ.get("QC_BENCH_DISTRIBUTE_S", "60"))
WARMUP = 3
TARGET_P99_S = 1.0
DRAIN_S = 60.0
MOVER_N = 20_000
MOVER_REPEAT = 5
SLOWEST = 5
OUTBOX_KEY = keys.distribution_outbox(TIER, CHANNEL).name


@dataclass
class Lat:
    """Latencies in ms."""

    values: list[float] = field(default_factory=list)

    def q(self, *qs: float) -> list[float]:
        return nearest_rank(np.asarray(self.values), qs) if self.values else [float("nan")] * len(qs)

    def brief(self) -> str:
        p50, p99, top = self.q(0.5, 0.99, 1.0)
        return f"p50 {p50:.1f} / p99 {p99:.1f} / max {top:.1f} ms"


@dataclass(frozen=True)
class Hook:
    name: str
    secret: str


@dataclass(frozen=True)
class Published:
    id: str
    due: float  # qc seconds (the signal's created_at: premium's delay is 0)
    due_wall: float


# --- the stack ---------------------------------------------------------------------------------------


def draw_hooks() -> list[Hook]:
    return [Hook(f"bench{i}", "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()) for i in range(ENDPOINTS)]


def distribute_env(stack: Stack, hooks: Sequence[Hook]) -> dict[str, str]:
    """Premium only, webhooks only (the module docstring says why); secrets from the environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return {**base, "QC_REDIS_URL": stack.redis.url, "QC_SYMBOLS": "SPY", "QC_DATA_DIR": str(stack.tmp / "var"),
            "QC_LOG_LEVEL": "INFO", "QC_DISTRIBUTE_TIERS": f"{TIER}=0", "QC_TELEGRAM_CHATS": "", "QC_X_TIERS": "",
            "QC_WEBHOOKS": ";".join(f"{h.name}={stack.base}/hooks/{h.name}|{TIER}" for h in hooks),
            **{f"QC_WEBHOOK_SECRET_{h.name.upper()}": h.secret for h in hooks}}


def anchor_of(stack: Stack) -> SimAnchor:
    got = read_sim_anchor(stack.store)
    assert got is not None, "no simulator clock anchor"
    return got.anchor


def to_wall(a: SimAnchor, qc_s: float) -> float:
    return a.real_epoch + (qc_s - a.sim_epoch) / a.speed


def publish(stack: Stack, a: SimAnchor, n: int) -> Published:
    """`qc signals`' publication (record, then the stream entry), created (so due) at the simulator's now."""
    created = a.sim_at(clock.wall_epoch())
    s = make_signal(created, n)
    record = keys.signal_record(s.id)
    pipe = stack.store.client.pipeline(transaction=False)
    pipe.set(record.name, s.to_redis(), ex=record.ttl_s)
    pipe.xadd(keys.signals_distribution("SPY").name, {"id": s.id, "signal": s.to_redis()})
    pipe.execute()
    due = s.created_at.timestamp()
    return Published(s.id, due, to_wall(a, due))


def publish_paced(stack: Stack, a: SimAnchor, n: int, first: int = 0) -> list[Published]:
    out: list[Published] = []
    started = clock.monotonic()
    for i in range(n):
        out.append(publish(stack, a, first + i))
        clock.real_sleep(max(0.0, started + (i + 1) / SIGNAL_HZ - clock.monotonic()))
    return out


def webhook_rows(stack: Stack) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = stack.received()[CHANNEL]["received"]
    return rows


def arrived(stack: Stack, ids: set[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """(signal id, endpoint) → the simulator's row of its first delivered request."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in webhook_rows(stack):
        sid = str(row.get("webhook_id") or "").split(":")[0]
        if sid in ids and row["delivered"]:
            out.setdefault((sid, row["target"]), row)
    return out


def lineage(stack: Stack, ids: Sequence[str]) -> dict[tuple[str, str], codec.DeliveryRecord]:
    out: dict[tuple[str, str], codec.DeliveryRecord] = {}
    c = stack.store.client
    raws = c.mget([keys.signal_record(i).name for i in ids])
    for sid, raw in zip(ids, raws, strict=True):
        s = Signal.from_redis(raw, key=sid)
        if not isinstance(s, Signal):
            continue
        got = codec.deliveries_of(s.lineage, key=sid)
        for r in got if isinstance(got, tuple) else ():
            out[(sid, r.target)] = r
    return out


def outbox_times(stack: Stack) -> dict[tuple[str, str], float]:
    """(signal id, endpoint) → wall time its entry was added to the outbox (the entry id's Redis ms)."""
    out: dict[tuple[str, str], float] = {}
    for eid, fields in stack.store.client.xrange(OUTBOX_KEY):
        d = codec.delivery_from_redis(fields.get("item"), key=OUTBOX_KEY)
        if isinstance(d, Delivery):
            out.setdefault((d.signal_id, d.target), int(str(eid).split("-")[0]) / 1000)
    return out


# --- the measurement ---------------------------------------------------------------------------------


@dataclass
class Measured:
    qc: Lat = field(default_factory=Lat)  # lineage at − due
    sim: Lat = field(default_factory=Lat)  # received wall − due wall
    recent: Lat = field(default_factory=Lat)  # distribution:premium:webhook:latency (latest 1000)
    to_outbox: Lat = field(default_factory=Lat)
    to_sim: Lat = field(default_factory=Lat)
    to_decided: Lat = field(default_factory=Lat)
    first: Lat = field(default_factory=Lat)  # per signal, its first delivery at the simulator
    last: Lat = field(default_factory=Lat)  # and its last
    gap: Lat = field(default_factory=Lat)  # successive deliveries of one signal at the simulator
    outcomes: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    calls: dict[str, int] = field(default_factory=dict)  # Redis commands run during the measured run
    slow: list[tuple[float, str]] = field(default_factory=list)


Key = tuple[str, str]  # (signal id, endpoint)
Collected = tuple[dict[Key, dict[str, Any]], dict[Key, codec.DeliveryRecord], dict[Key, float], dict[str, int]]


def command_calls(stack: Stack) -> dict[str, int]:
    """Redis's own count of calls per command (INFO commandstats) since it started."""
    info: dict[str, Any] = stack.store.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


def collect(stack: Stack, sent: Sequence[Published], calls_before: dict[str, int]) -> Collected:
    """Once everything landed (or ``DRAIN_S`` passed): the simulator's rows, the lineage, the outbox times, and
    the Redis commands run meanwhile (before this function's own reads)."""
    ids = {p.id for p in sent}
    got: dict[Key, dict[str, Any]] = {}

    def landed() -> bool:
        got.update(arrived(stack, ids))
        return len(got) >= len(sent) * ENDPOINTS

    with contextlib.suppress(AssertionError):  # what never landed is counted as missing
        eventually(landed, timeout_s=DRAIN_S, every_s=2.0)
    clock.real_sleep(0.2)  # the last answers' records
    after = command_calls(stack)
    calls = {k: n - calls_before.get(k, 0) for k, n in after.items() if n > calls_before.get(k, 0)}
    with contextlib.suppress(AssertionError):  # the last outcomes are recorded just after their answers
        eventually(lambda: len(lineage(stack, [p.id for p in sent[-3:]])) >= 3 * ENDPOINTS, timeout_s=10)
    return got, lineage(stack, [p.id for p in sent]), outbox_times(stack), calls


def measure(stack: Stack, sent: Sequence[Published], a: SimAnchor, calls_before: dict[str, int]) -> Measured:
    got, records, moved, calls = collect(stack, sent, calls_before)
    m = Measured(calls=calls)
    for r in records.values():
        m.outcomes[r.outcome] = m.outcomes.get(r.outcome, 0) + 1
        if r.latency_s is not None:
            m.qc.values.append(r.latency_s * 1e3)
    for p in sent:
        walls: list[tuple[float, str]] = []
        for h in range(ENDPOINTS):
            k = (p.id, f"bench{h}")
            row, rec, out_at = got.get(k), records.get(k), moved.get(k)
            if row is None:
                m.missing += 1
                continue
            wall = float(row["wall_time"])
            walls.append((wall, k[1]))
            m.sim.values.append((wall - p.due_wall) * 1e3)
            if out_at is not None:
                m.to_outbox.values.append((out_at - p.due_wall) * 1e3)
                m.to_sim.values.append((wall - out_at) * 1e3)
            if rec is not None:
                m.to_decided.values.append((to_wall(a, rec.at) - wall) * 1e3)
        if not walls:
            continue
        walls.sort()
        m.first.values.append((walls[0][0] - p.due_wall) * 1e3)
        m.last.values.append((walls[-1][0] - p.due_wall) * 1e3)
        m.gap.values.extend((b[0] - x[0]) * 1e3 for x, b in pairwise(walls))
        wall, name = walls[-1]
        moved_at = moved.get((p.id, name), p.due_wall)
        m.slow.append(((wall - p.due_wall) * 1e3,
                       f"signal {p.id} at {name}: to outbox {(moved_at - p.due_wall) * 1e3:.0f} + outbox→simulator "
                       f"{(wall - moved_at) * 1e3:.0f} ms; its first {(walls[0][0] - p.due_wall) * 1e3:.0f} ms"))
    recent = metrics.latencies(stack.store, TIER, CHANNEL)
    if isinstance(recent, tuple):
        m.recent.values = [v * 1e3 for v in recent]
    return m


def baseline(stack: Stack, hooks: Sequence[Hook], a: SimAnchor, n_signals: int) -> tuple[Lat, Lat]:
    """A bare requests loop, same bodies, same pattern: (burst start → received, post start → received), ms."""
    tier = Tier(TIER, 0.0)
    session = requests.Session()
    burst_at: dict[str, float] = {}
    post_at: dict[tuple[str, str], float] = {}
    started = clock.monotonic()
    for i in range(n_signals):
        s = make_signal(a.sim_at(clock.wall_epoch()), 10_000 + i)
        msg = render.webhook_message(s, tier)
        burst_at[s.id] = clock.wall_epoch()
        for h in hooks:
            at = clock.wall_epoch()
            headers = signed_headers(h.secret, msg, a.sim_at(at))
            reply = session.post(f"{stack.base}/hooks/{h.name}", data=msg.body, headers=headers, timeout=10)
            if reply.status_code != 204:
                raise RuntimeError(f"baseline post answered {reply.status_code}")
            post_at[(s.id, h.name)] = at
        clock.real_sleep(max(0.0, started + (i + 1) / SIGNAL_HZ - clock.monotonic()))
    session.close()
    got = arrived(stack, set(burst_at))
    from_burst = Lat([(float(r["wall_time"]) - burst_at[k[0]]) * 1e3 for k, r in got.items()])
    from_post = Lat([(float(r["wall_time"]) - post_at[k]) * 1e3 for k, r in got.items()])
    return from_burst, from_post


def latency_figures(m: Measured, n_signals: int, base_burst: Lat, base_post: Lat) -> list[Figure]:
    q50, q99, qmax = m.qc.q(0.5, 0.99, 1.0)
    s50, s99, smax = m.sim.q(0.5, 0.99, 1.0)
    base = f"bare requests loop, same pattern: {base_burst.brief()} (per post: {base_post.brief()})"
    sim_txt = f"at the simulator: {m.sim.brief()}"
    offered = f"{n_signals} signals x {ENDPOINTS} endpoints at {SIGNAL_HZ * ENDPOINTS:g}/s"
    out = [
        Figure(f"premium sent − due (qc's lineage), p50 of {len(m.qc.values)}", q50, "ms", "", f"{sim_txt}; {base}"),
        Figure("premium sent − due (qc's lineage), p99", q99, "ms", f"p99 < {TARGET_P99_S * 1e3:g} ms", sim_txt,
               q99 < TARGET_P99_S * 1e3),
        Figure("premium sent − due (qc's lineage), max", qmax, "ms", baseline=sim_txt),
        Figure(f"premium received at the simulator − due, p50 of {len(m.sim.values)}", s50, "ms", "", base),
        Figure("premium received at the simulator − due, p99", s99, "ms", f"p99 < {TARGET_P99_S * 1e3:g} ms", base,
               s99 < TARGET_P99_S * 1e3),
        Figure("premium received at the simulator − due, max", smax, "ms", baseline=base),
        Figure("  qc's latency list (distribution:premium:webhook:latency, latest 1000), p99", m.recent.q(0.99)[0],
               "ms", baseline=m.recent.brief()),
        Figure(f"  deliveries offered ({offered}), not at the simulator", float(m.missing), "deliveries",
               baseline="outcomes on the lineage: " + ", ".join(f"{k} {v}" for k, v in sorted(m.outcomes.items()))),
        Figure("  stage published → in the outbox (intake, queue, mover), p50", m.to_outbox.q(0.5)[0], "ms",
               baseline=m.to_outbox.brief()),
        Figure("  stage outbox → received by the simulator (lane wait + send), p50", m.to_sim.q(0.5)[0], "ms",
               baseline=m.to_sim.brief()),
        Figure("  stage received → decided (answer, key, metrics, lineage), p50", m.to_decided.q(0.5)[0], "ms",
               baseline=m.to_decided.brief()),
        Figure("  a signal's first delivery at the simulator − due, p99", m.first.q(0.99)[0], "ms",
               baseline=m.first.brief()),
        Figure(f"  a signal's last ({ENDPOINTS}th) delivery at the simulator − due, p99", m.last.q(0.99)[0], "ms",
               baseline=m.last.brief()),
        Figure("  one lane's time per delivery (successive arrivals of one signal), p50", m.gap.q(0.5)[0], "ms",
               baseline=f"{m.gap.brief()}; bare loop per post p50 {base_post.q(0.5)[0]:.1f} ms"),
    ]
    n = max(len(m.sim.values), 1)
    top = sorted(m.calls.items(), key=lambda kv: -kv[1])[:8]
    out.append(Figure("  Redis commands per delivery (all of qc distribute's, the publisher's and the simulator's "
                      "anchor)", sum(m.calls.values()) / n, "calls",
                      baseline=", ".join(f"{k} {v / n:.1f}" for k, v in top)))
    for ms, what in sorted(m.slow, reverse=True)[:SLOWEST]:
        out.append(Figure("  a slowest signal: its last delivery at the simulator − due", ms, "ms", baseline=what))
    return out


# --- the mover ---------------------------------------------------------------------------------------


def members(n: int, due: float) -> list[str]:
    tier = Tier(TIER, 0.0)
    return [codec.delivery_to_redis(Delivery.first(f"{i:013d}{i:08x}", "SPY", tier, CHANNEL, "bench0", due))
            for i in range(n)]


def fill(store: Store, queue_key: str, items: Sequence[str], score: float) -> None:
    c = store.client
    c.delete(queue_key, OUTBOX_KEY)
    pipe = c.pipeline(transaction=False)
    for i in range(0, len(items), 1000):
        pipe.zadd(queue_key, dict.fromkeys(items[i:i + 1000], score))
    pipe.execute()


def time_moves(store: Store, queue_key: str, items: Sequence[str], move: Callable[[], int]) -> tuple[float, int]:
    """Best per-item µs over MOVER_REPEAT refills, and the items the last run moved."""
    best, moved = float("inf"), 0
    for _ in range(MOVER_REPEAT):
        fill(store, queue_key, items, time.time() - 1)
        t0 = time.perf_counter()
        moved = move()
        best = min(best, (time.perf_counter() - t0) / max(moved, 1) * 1e6)
        assert store.client.zcard(queue_key) == 0 and store.client.xlen(OUTBOX_KEY) == moved == len(items)
    return best, moved


def plain_move(c: redis.Redis, queue_key: str) -> int:
    moved = 0
    while True:
        raw: Any = c.zrangebyscore(queue_key, "-inf", time.time(), start=0, num=BATCH)
        batch: list[str] = list(raw)
        if not batch:
            return moved
        pipe = c.pipeline(transaction=False)
        for m in batch:
            pipe.xadd(OUTBOX_KEY, {"item": m}, maxlen=100_000, approximate=True)
        pipe.zrem(queue_key, *batch)
        pipe.execute()
        moved += len(batch)


def mover_figures(tmp: Path) -> list[Figure]:
    server = RedisServer(tmp / "mover-redis", appendonly=True)
    server.start()
    store = connect(Settings(redis_url=server.url))
    try:
        routing = Routing((Tier(TIER, 0.0),), (Target(CHANNEL, "bench0", (TIER,), url="http://127.0.0.1:1/h"),))
        mover = Mover(store, routing, IDENTITY, "bench")
        queue = tier_queue(store, TIER, IDENTITY)
        qkey = queue.key.name
        items = members(MOVER_N, time.time() - 1)
        step_us, _ = time_moves(store, qkey, items, mover.step)
        box: Outbox = outbox(store, TIER, CHANNEL, "bench")

        def fixed() -> int:
            n = 0
            while True:
                done = move_due(queue, lambda _m: (box,), limit=BATCH, lease_s=LEASE_S)
                n += len(done.claim.members)
                if len(done.claim.members) < BATCH:
                    return n

        fixed_us, _ = time_moves(store, qkey, items, fixed)
        plain_us, _ = time_moves(store, qkey, items, lambda: plain_move(store.client, qkey))
        base = f"plain ZRANGEBYSCORE + pipelined XADD + ZREM per batch of {BATCH} (no lease, not lossless): " \
               f"{plain_us:.1f} µs/item"
        return [
            Figure(f"mover: Mover.step() over {MOVER_N:,} due members, per item (best of {MOVER_REPEAT})", step_us,
                   "µs/item", "(no target in the issue)", base),
            Figure("  move_due with a fixed route (claim + XADD + settle, no decoding), per item", fixed_us, "µs/item",
                   baseline=f"decoding + routing each member: {step_us - fixed_us:.1f} µs/item"),
            Figure(f"  mover throughput (Mover.step), batches of {BATCH}", 1e6 / step_us, "items/s",
                   baseline=f"plain: {1e6 / plain_us:,.0f} items/s"),
        ]
    finally:
        store.close()
        server.kill()


# --- run ---------------------------------------------------------------------------------------------


def run() -> list[Figure]:
    n_signals = int(DURATION_S * SIGNAL_HZ)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        print("  starting redis, qc sim (speed 1) and qc distribute …", file=sys.stderr, flush=True)
        stack = Stack(tmp, 1.0)
        out: list[Figure] = []
        try:
            hooks = draw_hooks()
            for h in hooks:
                stack.ctl("channel_secret", name=h.name, secret=h.secret)
            a = anchor_of(stack)
            stack.start("distribute", distribute_env(stack, hooks))
            eventually(lambda: stack.store.client.exists(OUTBOX_KEY) == 1, timeout_s=30)
            warm = publish_paced(stack, a, WARMUP)
            eventually(lambda: len(arrived(stack, {p.id for p in warm})) >= WARMUP * ENDPOINTS, timeout_s=30)
            print(f"  {n_signals} signals x {ENDPOINTS} endpoints at {SIGNAL_HZ * ENDPOINTS:g} deliveries/s …",
                  file=sys.stderr, flush=True)
            before = command_calls(stack)
            sent = publish_paced(stack, a, n_signals, first=WARMUP)
            m = measure(stack, sent, a, before)
            print("  baseline: a bare requests loop …", file=sys.stderr, flush=True)
            base_burst, base_post = baseline(stack, hooks, a, n_signals)
            out += latency_figures(m, n_signals, base_burst, base_post)
        finally:
            stack.close()
        print("  mover …", file=sys.stderr, flush=True)
        out += mover_figures(tmp)
        return out


if __name__ == "__main__":
    for f in run():
        print(f)
