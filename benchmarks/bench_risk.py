"""Risk: one pre-trade check against a 200-position book, and the exposure snapshot of 200 positions.

The check is timed as `qc execute` will call it: with the book's exposure cached once per market
snapshot and the order's contract priced into it (``extra``), so a check only adds the order.
Its uncached cost (the order's contract not priced: ``bsm_one`` prices it, in plain floats) is
printed beside it. The snapshot is what the `qc risk` worker does every second: price the book (one vectorised
BSM call), mark it, sum it, measure usage, serialise. Baselines in the same run: the check against
a 10-position book, one vectorised ``bsm`` call on 1 element (what the uncached check cost before
``bsm_one``), and
pricing the 200 positions one 1-element BSM call at a time (what a per-position loop would cost).
"""

from __future__ import annotations

import random
import time
from datetime import date, datetime

import numpy as np

from benchmarks._report import Figure, best_of
from qc.analytics.greeks import bsm
from qc.core.clock import NEW_YORK
from qc.risk import pretrade
from qc.risk.exposure import portfolio_exposure, years_to_settlement
from qc.risk.model import (
    BUCKETS,
    ContractKey,
    ContractQuote,
    Limits,
    MarketSnapshot,
    OrderIntent,
    Portfolio,
    Position,
    Right,
    Side,
    UnderlyingQuote,
)
from qc.risk.position_codec import PositionRecord
from qc.risk.snapshot import build_snapshot, snapshot_to_redis

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=NEW_YORK)
UNDERLYINGS = [f"U{i:02d}" for i in range(20)]
EXPIRIES = [date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 16), date(2027, 1, 15)]
CHECKS = 3000
SNAPSHOTS = 300
RIGHTS: tuple[Right, ...] = ("C", "P")
SIDES: tuple[Side, ...] = ("BUY", "SELL")


def _book(n: int, rng: random.Random) -> tuple[list[PositionRecord], MarketSnapshot, list[ContractKey]]:
    unds = {u: UnderlyingQuote(100.0 + 10 * i, 1.0, 5.0, 60.0, 0.04, 0.01) for i, u in enumerate(UNDERLYINGS)}
    quotes: dict[ContractKey, ContractQuote] = {}
    records: list[PositionRecord] = []
    for i in range(n):
        und = UNDERLYINGS[i % len(UNDERLYINGS)]
        spot = unds[und].spot
        key = ContractKey(und, "OPT", EXPIRIES[i % 4], round(spot * rng.uniform(0.95, 1.05)), rng.choice(RIGHTS))
        mark = rng.uniform(0.5, 5.0)
        quotes[key] = ContractQuote(mark - 0.05, mark + 0.05, mark, rng.uniform(0.12, 0.4), 1.0)
        records.append(PositionRecord(i + 1, Position(key, rng.choice([-3, -2, -1, 1, 2, 3]), mark, BUCKETS[i % 4])))
    orders = []
    for i in range(50):  # the chain's candidates an order may be in
        und = UNDERLYINGS[i % len(UNDERLYINGS)]
        key = ContractKey(und, "OPT", EXPIRIES[i % 4], round(unds[und].spot) + i % 3, RIGHTS[i // 20 % 2])
        quotes[key] = ContractQuote(1.95, 2.05, 2.0, 0.2, 1.0)
        orders.append(key)
    return records, MarketSnapshot(unds, quotes), orders


def _check_latencies(n_positions: int, cached_order: bool, rng: random.Random) -> list[float]:
    """Varied orders (contract, side, size, bucket, limit near the mark) checked as `qc execute` will."""
    records, market, candidates = _book(n_positions, rng)
    positions = tuple(r.position for r in records)
    exposure = portfolio_exposure(positions, market, NOW, extra=candidates if cached_order else ())
    portfolio = Portfolio(positions=positions, equity_usd=1e6, equity_high_water_usd=1e6)
    limits = Limits()
    intents = [OrderIntent(candidates[i % len(candidates)], rng.choice(SIDES), rng.randint(1, 5),
                           round(2.0 * rng.uniform(0.97, 1.03), 2), rng.choice(BUCKETS)) for i in range(CHECKS)]
    out: list[float] = []
    for intent in intents:
        start = time.perf_counter()
        pretrade.check(intent, portfolio, market, limits, NOW, exposure=exposure)
        out.append(time.perf_counter() - start)
    return out


def _snapshot_latencies(rng: random.Random) -> list[float]:
    records, market, _ = _book(200, rng)
    limits = Limits()
    out: list[float] = []
    for _ in range(SNAPSHOTS):
        start = time.perf_counter()
        exposure = portfolio_exposure([r.position for r in records], market, NOW)
        snapshot_to_redis(build_snapshot(records, market, exposure, limits, 0.0, {"account": "ACTIVE"}, NOW))
        out.append(time.perf_counter() - start)
    return out


def _scalar_pricing(rng: random.Random) -> float:
    """Baseline: the 200 positions priced one BSM call each (what a per-position loop would cost)."""
    records, market, _ = _book(200, rng)
    start = time.perf_counter()
    for r in records:
        key = r.position.contract
        und, q = market.underlyings[key.underlying], market.quotes[key]
        assert key.strike is not None and key.expiry is not None and q.iv is not None
        t = max(years_to_settlement(NOW, key.expiry), 1e-6)
        bsm(np.array([und.spot]), np.array([key.strike]), np.array([t]), np.array([und.rate]),
            np.array([und.div_yield]), np.array([q.iv]), np.array([key.right == "C"]))
    return time.perf_counter() - start


def _one_element_bsm() -> float:
    """Baseline for the uncached check: the per-call cost of one vectorised ``bsm`` on 1 element (s)."""
    s, k, t, r, q, vol = (np.array([x]) for x in (100.0, 100.0, 0.01, 0.04, 0.01, 0.2))
    is_call = np.array([True])
    best, _ = best_of(lambda: [bsm(s, k, t, r, q, vol, is_call) for _ in range(1000)])
    return best / 1000


def _us(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q)) * 1e6


def run() -> list[Figure]:
    rng = random.Random(7)
    cached = _check_latencies(200, True, rng)
    small = _check_latencies(10, True, rng)
    uncached = _check_latencies(200, False, rng)
    bsm_1_us = _one_element_bsm() * 1e6
    snaps = _snapshot_latencies(rng)
    scalar_ms = min(_scalar_pricing(rng) for _ in range(5)) * 1e3
    p99 = _us(cached, 99)
    snap_p50, snap_p99 = (float(np.percentile(np.array(snaps), q)) * 1e3 for q in (50, 99))
    return [
        Figure(f"pre-trade check, 200 positions, exposure cached: p50 of {CHECKS}", _us(cached, 50), "µs", "—",
               f"10 positions p50 {_us(small, 50):.0f} µs"),
        Figure(f"pre-trade check, 200 positions, exposure cached: p99 of {CHECKS}", p99, "µs", "p99 < 200 µs",
               f"10 positions p99 {_us(small, 99):.0f} µs", met=p99 < 200),
        Figure("pre-trade check, order not in the cache (priced by bsm_one): p99", _us(uncached, 99), "µs", "—",
               f"one bsm call on 1 element {bsm_1_us:.0f} µs; cached p99 {p99:.0f} µs"),
        Figure(f"exposure snapshot, 200 positions (price, mark, usage, JSON): p50 of {SNAPSHOTS}", snap_p50, "ms", "—",
               f"scalar BSM loop over the 200 alone {scalar_ms:.1f} ms"),
        Figure(f"exposure snapshot, 200 positions: p99 of {SNAPSHOTS}", snap_p99, "ms", "< 20 ms",
               f"scalar BSM loop over the 200 alone {scalar_ms:.1f} ms", met=snap_p99 < 20),
    ]
