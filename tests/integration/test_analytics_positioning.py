"""`qc analytics` positioning against the simulator: the chain `qc chains` writes → the gex contract."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.runtime.store import Store
from qc.sim.market.market import SimMarket

from .analytics_harness import put_bars, put_book
from .av_chains_harness import NOW, ScriptedAV, cycle_for, settings_for, sim_market
from .conftest import RedisServer


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return sim_market()


@pytest.fixture
def av(market: SimMarket) -> Iterator[ScriptedAV]:
    server = ScriptedAV(market, rpm=1000)
    server.start()
    yield server
    server.stop()


def test_gex_matches_what_the_simulator_parameters_imply(store: Store, av: ScriptedAV, market: SimMarket,
                                                         redis_server: RedisServer) -> None:
    chains = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    chains(NOW)
    put_bars(store, market, "SPY", NOW, 400)
    put_book(store, market, "SPY", NOW)
    AnalyticsCycle(store, ("SPY",))(NOW)
    gex = store.hgetall(keys.gex("SPY"))
    expected = market.positioning_levels("SPY", NOW.date())
    step = market.params.underlying("SPY").strike_step
    spot = float(gex["spot"])
    assert gex["stale"] == "0" and gex["as_of"] == NOW.isoformat()
    assert spot > expected["zero_gamma"] and float(gex["total"]) > 0  # above the flip: dealers long gamma
    # the bound: within one strike step of where the simulator's parameters put the flip
    # (it needs the bid-less far wings kept with the vendor's IV: dropping them moved it two strikes)
    assert abs(float(gex["zero_gamma"]) - expected["zero_gamma"]) <= step, (gex["zero_gamma"], expected)
    assert gex["gamma_regime"] == "positive"
    assert float(gex["call_wall"]) > spot > float(gex["put_wall"])
    strikes = json.loads(store.get(keys.gex_by_strike("SPY")) or "{}")
    assert len(strikes["strikes"]) == len(strikes["gex_usd_per_1pct"]) > 10
    profile = json.loads(store.get(keys.gex_profile("SPY")) or "{}")
    assert profile["zero_gamma"] == pytest.approx(float(gex["zero_gamma"]))
    assert store.client.ttl(keys.gex("SPY").name) > 0
    imbalance = store.hgetall(keys.book_imbalance("SPY"))
    assert -1.0 <= float(imbalance["imbalance"]) <= 1.0 and imbalance["stale"] == "0"


def test_missing_chain_marks_gex_stale_with_a_reason_never_zero(store: Store) -> None:
    AnalyticsCycle(store, ("SPY",))(NOW)
    gex = store.hgetall(keys.gex("SPY"))
    assert gex["stale"] == "1" and "no option chain" in gex["stale_reason"]
    assert gex["total"] == ""
    vpin = store.hgetall(keys.vpin("SPY"))
    assert vpin["value"] == "" and vpin["reason"] and vpin["stale"] == "1"
