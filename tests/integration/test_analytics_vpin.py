"""VPIN through Redis: warm from past bars, then the simulator's prints; an informed burst lifts it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from qc.analytics.codec import ToxSample, Vpin
from qc.analytics.cycle.loop import AnalyticsCycle
from qc.core import keys
from qc.runtime.store import Store
from qc.sim.market.market import SimMarket

from .analytics_harness import put_bars, put_trades

START = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 New York
MINUTES = 30


def vpin_after(store: Store, cycle: AnalyticsCycle, market: SimMarket, at: datetime) -> dict[str, str]:
    assert put_trades(store, market, "SPY", at) > 0
    cycle(at)
    return store.hgetall(keys.vpin("SPY"))


def test_informed_flow_burst_lifts_vpin_above_calm(store: Store) -> None:
    market = SimMarket(START)
    put_bars(store, market, "SPY", START, 2 * 390)
    cycle = AnalyticsCycle(store, ("SPY",))
    cycle(START)
    warm = store.hgetall(keys.vpin("SPY"))
    assert warm["warm_source"] == "redis" and warm["value"] != "" and warm["mode"] == "bvc"
    calm_at = START + timedelta(minutes=MINUTES)
    calm = vpin_after(store, cycle, market, calm_at)
    market.inject_informed_flow("SPY", calm_at, MINUTES * 60, +1)
    burst = vpin_after(store, cycle, market, calm_at + timedelta(minutes=MINUTES))
    assert calm["mode"] == burst["mode"] == "true_sign"
    assert float(burst["input_age_s"]) < 5 and burst["stale"] == "0"
    print(warm["value"], calm["value"], burst["value"])
    assert float(burst["value"]) > float(calm["value"]) + 0.1


def test_each_cycle_adds_vpin_to_the_session_series(store: Store) -> None:
    """The dashboard's VPIN over the session: one entry per cycle that computed a figure, at market time."""
    market = SimMarket(START)
    put_bars(store, market, "SPY", START, 2 * 390)
    cycle = AnalyticsCycle(store, ("SPY",), tasks=("vpin",))
    later = START + timedelta(minutes=MINUTES)
    cycle(START)
    vpin_after(store, cycle, market, later)
    key = keys.toxicity_series("SPY")
    samples = [ToxSample.from_redis(fields, key=key.name) for _, fields in store.client.xrange(key.name)]
    assert [s.t for s in samples if isinstance(s, ToxSample)] == [START.timestamp(), later.timestamp()]
    stored = Vpin.from_redis(store.hgetall(keys.vpin("SPY")), key="vpin")
    assert isinstance(stored, Vpin) and isinstance(samples[-1], ToxSample)
    assert samples[-1].vpin == stored.value and samples[-1].imbalance is None  # imbalance not run: none
    assert 0 < store.client.ttl(key.name) <= key.ttl_s
