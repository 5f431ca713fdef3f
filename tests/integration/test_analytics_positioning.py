"""`qc analytics` positioning against the simulator: the chain `qc chains` writes → the gex contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from qc.analytics.chain_input import QUOTE_MAX_AGE_S
from qc.analytics.codec import GexProfile
from qc.analytics.cycle.inputs import ChainReader
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.core.codec import Absent
from qc.ingest.codec import OptionChain, Quote
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


def test_positioning_follows_the_live_quote_within_one_cycle(store: Store, av: ScriptedAV, redis_server: RedisServer,
                                                            market: SimMarket) -> None:
    """The chain is fetched every 5 min; positioning is recomputed every 30 s at the quote's mid."""
    cycle_for(store, settings_for(redis_server.url, av), with_news=False)(NOW)
    worker = AnalyticsCycle(store, ("SPY",), tasks=("positioning",))
    worker(NOW)
    before = store.hgetall(keys.gex("SPY"))
    assert before["spot_source"] == "chain" and "no usable quote" in before["spot_reason"]
    moved = float(before["spot"]) * 1.01  # the market rallies 1 % after the chain was fetched
    later = NOW + timedelta(seconds=30)
    store.hset(keys.quote("SPY"), Quote(later.timestamp() - 2.0, bid=moved - 0.01, ask=moved + 0.01).to_redis())
    worker(later)
    after = store.hgetall(keys.gex("SPY"))
    assert after["spot_source"] == "quote" and after["spot_reason"] == ""
    assert float(after["spot"]) == pytest.approx(moved) and float(after["spot_age_s"]) == pytest.approx(2.0)
    assert after["chain_as_of"] == before["chain_as_of"] and after["as_of"] == later.isoformat()
    # the flip is a property of the chain's open interest; the distance to it is what moved
    assert float(after["zero_gamma_distance_pct"]) < float(before["zero_gamma_distance_pct"]) - 0.5
    profile = GexProfile.from_redis(store.get(keys.gex_profile("SPY")), key="profile")
    assert isinstance(profile, GexProfile) and profile.spot == pytest.approx(moved)

    stale_quote = later + timedelta(seconds=30 + QUOTE_MAX_AGE_S)  # the quote feed stops
    worker(stale_quote)
    last = store.hgetall(keys.gex("SPY"))
    assert last["spot_source"] == "chain" and "s old" in last["spot_reason"]


def test_the_chain_is_decoded_again_only_when_qc_chains_rewrote_it(store: Store, av: ScriptedAV,
                                                                    redis_server: RedisServer) -> None:
    read = ChainReader(store)
    assert isinstance(read("SPY"), Absent)
    chains = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    chains(NOW)
    first = read("SPY")
    assert isinstance(first, OptionChain)
    assert read("SPY") is first  # unchanged text: the last decode is reused
    chains(NOW + timedelta(minutes=5))  # the next `qc chains` cycle rewrites the document
    second = read("SPY")
    assert isinstance(second, OptionChain) and second is not first and second.as_of > first.as_of
    store.delete(keys.option_chain("SPY"))
    assert isinstance(read("SPY"), Absent)  # a vanished chain is never served from the cache
