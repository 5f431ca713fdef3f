"""`qc analytics` behaviours beyond VPIN and positioning: warm start from the backfilled bars, flow labels across a
restart, informed flow end to end."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from qc.analytics.cycle.loop import AnalyticsCycle
from qc.analytics.flow import LABELS, FlowModel
from qc.analytics.regime import SESSION_MINUTES
from qc.core import keys
from qc.core.clock import NEW_YORK
from qc.core.clock import real_sleep as clock_sleep
from qc.ingest.codec import decode_bars
from qc.runtime.store import Store
from qc.sim.market.market import SimMarket

from .analytics_harness import put_trades
from .av_chains_harness import NOW, START
from .conftest import RedisServer, eventually
from .stream_harness import SimProcess, start_sim, start_stream, stop_process


@pytest.mark.timeout(120)
def test_stream_backfills_the_sessions_and_analytics_warms_from_redis_alone(store: Store, redis_server: RedisServer,
                                                                           tmp_path: Path) -> None:
    """Data enters only through ingestion: `qc stream` merges IB's history into the bars list on
    connect, and `qc analytics` (no Alpha Vantage client at all) warms from that list."""
    sim = start_sim(redis_server.url, tmp_path)
    try:
        key = keys.bars_1min("SPY").name
        assert store.client.llen(key) == 0
        stream = start_stream(store, redis_server.url, sim, 31, "SPY")
        try:
            eventually(lambda: store.client.llen(key) >= SESSION_MINUTES, timeout_s=30)
        finally:
            assert stop_process(stream) == 0
    finally:
        stop_process(sim.proc)
    bars, rejected = decode_bars(store.client.lrange(key, 0, -1), key=key)
    assert not rejected and len(bars) >= SESSION_MINUTES
    starts = [b.start for b in bars]
    assert starts == sorted(set(starts))  # one bar per minute, in order
    sessions = {b.ts.astimezone(NEW_YORK).date() for b in bars}
    assert len(sessions) == 2 and 0 < store.client.ttl(key) <= keys.MARKET_SERIES_TTL_S  # "2 D", TTL kept
    AnalyticsCycle(store, ("SPY",), tasks=("vpin",))(bars[-1].ts + timedelta(minutes=1))
    vpin = store.hgetall(keys.vpin("SPY"))
    assert vpin["warm_source"] == "redis"
    assert vpin["value"] != "" and 0.0 <= float(vpin["value"]) <= 1.0, vpin
    assert store.client.zcard(keys.regime_history("SPY").name) > 0


def test_without_bars_vpin_is_null_with_a_reason(store: Store) -> None:
    AnalyticsCycle(store, ("SPY",), tasks=("vpin",))(NOW)
    vpin = store.hgetall(keys.vpin("SPY"))
    assert vpin["value"] == "" and vpin["reason"] != ""
    assert vpin["warm_source"].startswith("none:")
    assert store.client.zcard(keys.regime_history("SPY").name) == 0


def flow_after(store: Store, cycle: AnalyticsCycle, market: SimMarket, at: datetime) -> dict[str, object]:
    assert put_trades(store, market, "SPY", at) > 0
    cycle(at)
    doc: dict[str, object] = json.loads(store.get(keys.flow_clusters("SPY")) or "{}")
    return doc


def stored_model(store: Store) -> FlowModel:
    raw = store.get(keys.flow_model("SPY"))
    assert raw, "no flow model stored"
    return FlowModel.from_dict(json.loads(raw))


def test_flow_labels_survive_a_worker_restart(store: Store) -> None:
    market = SimMarket(START)
    first = AnalyticsCycle(store, ("SPY",), tasks=("flow",))
    first(START)  # warm start: reads prints after this point only
    doc = flow_after(store, first, market, START + timedelta(minutes=10))
    assert doc["reason"] is None and isinstance(doc["windows"], int) and doc["windows"] >= 3, doc
    old = stored_model(store)
    assert json.loads(store.get(keys.flow_model("SPY")) or "{}")["labels"] == list(LABELS)

    restarted = AnalyticsCycle(store, ("SPY",), tasks=("flow",))  # a new process: empty tape, model in Redis
    restarted(START + timedelta(minutes=10, seconds=1))
    assert stored_model(store).centroids.tolist() == old.centroids.tolist()  # no prints yet: model kept
    doc = flow_after(store, restarted, market, START + timedelta(minutes=20))
    assert doc["reason"] is None and isinstance(doc["windows"], int) and doc["windows"] >= 3, doc
    new = stored_model(store)
    assert new.labels == old.labels == LABELS
    assert new.centroids.tolist() != old.centroids.tolist()  # it did refit on the new prints
    # The old centroids, in the new model's standardised space, matched to the new ones: labelling
    # new row k as old row k (the identity) is the least-total-distance assignment of all 3! ones.
    # (Per-row nearest is not promised: a centroid can drift further than its neighbour's spacing.)
    old_in_new = (old.centroids * old.scale + old.mean - new.mean) / new.scale
    dist = np.linalg.norm(new.centroids[:, None, :] - old_in_new[None, :, :], axis=2)
    totals = {perm: sum(dist[perm[j], j] for j in range(len(LABELS)))
              for perm in itertools.permutations(range(len(LABELS)))}
    assert min(totals, key=lambda perm: totals[perm]) == (0, 1, 2), totals


def start_sim_fast(redis_url: str, cwd: Path) -> SimProcess:
    """`qc sim` at 200x (an hour of simulated tape in ~18 s), SPY only, its clock anchored in Redis.

    10:30: the stream's backfill and two process starts take ~25 simulated minutes, and the informed
    flow should still land before the lunch lull (sparse prints fill VPIN buckets slowly).
    """
    return start_sim(redis_url, cwd, ("--start", "2026-11-24 10:30", "--speed", "200", "--seed", "7", "--symbols",
                                      "SPY", "--depth-rate", "10"))


def vpin_value(store: Store) -> float | None:
    got = store.hgetall(keys.vpin("SPY"))
    return float(got["value"]) if got.get("value") and got.get("mode") == "true_sign" else None


@pytest.mark.slow
@pytest.mark.timeout(240)  # three processes at 200x: generous waits, typically ~15 s
def test_sim_ctl_informed_flow_raises_vpin_end_to_end(store: Store, redis_server: RedisServer,
                                                     tmp_path: Path) -> None:
    sim = start_sim_fast(redis_server.url, tmp_path)
    procs: list[subprocess.Popen[str]] = []
    try:
        eventually(lambda: store.hgetall(keys.sim_clock()), timeout_s=30)
        base = {**os.environ, "QC_REDIS_URL": redis_server.url, "QC_IB_PORT": str(sim.port("ib"))}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "qc", "stream", "SPY"], text=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env={**base, "QC_IB_CLIENT_ID": "43"}))
        eventually(lambda: store.client.llen(keys.bars_1min("SPY").name) >= SESSION_MINUTES, timeout_s=30)
        procs.append(subprocess.Popen(  # no Alpha Vantage settings: the warm bars are the stream's backfill
            [sys.executable, "-m", "qc", "analytics", "SPY", "--task", "vpin", "--interval-s", "1"], text=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base))
        eventually(lambda: vpin_value(store) is not None, timeout_s=45)
        calm: list[float] = []
        for _ in range(3):  # ~3 s of wall clock, ~10 simulated minutes of calm tape
            v = vpin_value(store)
            assert v is not None
            calm.append(v)
            clock_sleep(1.0)
        assert store.hget(keys.vpin("SPY"), "warm_source") == "redis"
        sim.ctl("informed-flow", "SPY", "3600", "--direction", "buy")
        threshold = max(calm) + 0.05
        eventually(lambda: (vpin_value(store) or 0.0) > threshold, timeout_s=90, every_s=0.5)  # ~15 s here
    finally:
        for p in procs:
            stop_process(p)
        stop_process(sim.proc)
