"""`qc analytics` behaviours beyond VPIN and positioning: AV warm start, flow labels across a restart."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pytest

from qc import keys
from qc.analytics.flow import LABELS, FlowModel
from qc.analytics_worker.cycle import AnalyticsCycle
from qc.ingest import chains_cycle
from qc.sim.market import SimMarket
from qc.store import Store

from .analytics_harness import put_trades
from .av_chains_harness import NOW, START, ScriptedAV, settings_for, sim_market
from .conftest import RedisServer


@pytest.fixture
def av() -> Iterator[ScriptedAV]:
    server = ScriptedAV(sim_market(), rpm=1000)
    server.start()
    yield server
    server.stop()


def test_warm_start_from_alpha_vantage_when_redis_has_no_bars(store: Store, av: ScriptedAV,
                                                               redis_server: RedisServer) -> None:
    assert store.client.llen(keys.bars_1min("SPY").name) == 0
    settings = settings_for(redis_server.url, av)
    client = chains_cycle.build(store, settings, ("SPY",), threading.Event()).client  # as qc/commands/analytics.py
    try:
        AnalyticsCycle(store, ("SPY",), client, tasks=("vpin",))(NOW)
    finally:
        client.close()
    vpin = store.hgetall(keys.vpin("SPY"))
    assert vpin["warm_source"] == "alpha_vantage"
    assert vpin["value"] != "" and 0.0 <= float(vpin["value"]) <= 1.0, vpin
    assert store.client.zcard(keys.regime_history("SPY").name) > 0
    assert av.stats()["by_function"].get("TIME_SERIES_INTRADAY", 0) >= 1


def test_without_bars_or_alpha_vantage_vpin_is_null_with_a_reason(store: Store) -> None:
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
