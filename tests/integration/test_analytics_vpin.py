"""VPIN through Redis: warm from past bars, then the simulator's prints; an informed burst lifts it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

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
