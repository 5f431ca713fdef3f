"""Simulated market: cost of one simulated second at 2,000 depth updates/s for SPY, QQQ, IWM, and of
a full SPY option chain.

One simulated second = generating and revealing every event of all three symbols (book operations,
prints, quotes), measured on consecutive seconds mid-morning (U-shape ≈ 1) and in the last minutes
(U-shape ≈ 3–4, the busiest). The IB server must sustain 2,000 depth updates/s per symbol in real
time, so the target is far below one CPU second: < 50 ms. Baseline: the same at the default rate.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from benchmarks._report import Figure, best_of
from qc.core.clock import NEW_YORK
from qc.sim.market.events import DepthOp
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

SECONDS = 20
TARGET_MS = 50.0
CHAIN_TARGET_MS = 250.0


def per_second(start: datetime, rate: float) -> tuple[float, float]:
    """Mean wall ms per simulated second over SECONDS seconds, and depth ops per symbol-second."""
    m = SimMarket(start, SimParams(depth_rate_hz=rate))
    m.events_until(start + timedelta(seconds=1))  # first second builds the day's plan
    ops, begin = 0, time.perf_counter()
    for k in range(2, SECONDS + 2):
        ops += sum(isinstance(e, DepthOp) for e in m.events_until(start + timedelta(seconds=k)))
    return (time.perf_counter() - begin) / SECONDS * 1e3, ops / SECONDS / len(m.symbols)


def run() -> list[Figure]:
    morning = datetime(2026, 3, 10, 11, 0, tzinfo=NEW_YORK).astimezone(timezone.utc)
    closing = datetime(2026, 3, 10, 15, 55, tzinfo=NEW_YORK).astimezone(timezone.utc)
    mid_ms, mid_ops = per_second(morning, 2000.0)
    end_ms, end_ops = per_second(closing, 2000.0)
    base_ms, base_ops = per_second(morning, SimParams().depth_rate_hz)
    market = SimMarket(morning)
    market.option_chain("SPY", morning)  # builds and caches the day's listing, surface and OI
    chain_s, chain = best_of(lambda: market.option_chain("SPY", morning), repeat=5)
    cold_begin = time.perf_counter()
    SimMarket(morning, SimParams(seed=1)).option_chain("SPY", morning)
    cold_s = time.perf_counter() - cold_begin
    return [
        Figure("1 sim second, 3 symbols @ 2,000 depth/s, 11:00", mid_ms, "ms", f"< {TARGET_MS:g} ms",
               f"{mid_ops:,.0f} depth ops/symbol-s; default {SimParams().depth_rate_hz:g}/s: {base_ms:.1f} ms "
               f"({base_ops:,.0f} ops)", mid_ms < TARGET_MS),
        Figure("1 sim second, 3 symbols @ 2,000 depth/s, 15:55", end_ms, "ms", f"< {TARGET_MS:g} ms",
               f"{end_ops:,.0f} depth ops/symbol-s (closing rush, auction)", end_ms < TARGET_MS),
        Figure(f"SPY option_chain, {len(chain):,} quotes (day cached)", chain_s * 1e3, "ms",
               f"< {CHAIN_TARGET_MS:g} ms", f"first call of a day (listing, surface, OI): {cold_s * 1e3:.0f} ms",
               chain_s * 1e3 < CHAIN_TARGET_MS),
    ]
