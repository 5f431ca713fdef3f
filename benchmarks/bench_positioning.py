"""Dealer-positioning snapshot on a seeded 20,000-contract SPY-like chain (target < 100 ms, one core).

Snapshot = IV solve from prices (greeks.implied_vol), spot Greeks, GEX/DEX/vanna/charm by contract,
strike and expiry, a 121-level spot-shift profile, zero gamma, walls, max pain, 0–1 DTE shares.
Baseline (same run): the naive profile, a full ``greeks.bsm()`` call over every contract at each of
the 121 levels, summing s·Γ·OI·M·L²·0.01; the fast profile must agree with it.
Pin BLAS/OpenMP to one thread (OMP_NUM_THREADS=1) for a one-core figure; numpy ufuncs are single-threaded.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np

from benchmarks._report import Figure, best_of, peak_memory_mb
from qc.analytics.exposure import Chain, dealer_sign
from qc.analytics.greeks import bsm, implied_vol, years_to_expiry
from qc.analytics.positioning import Positioning, positioning
from qc.analytics.profile import gamma_profile, spot_levels

SPOT, RATE, DIV_YIELD, MULTIPLIER = 560.0, 0.043, 0.012, 100.0
NOW = datetime(2026, 8, 25, 18, 0, tzinfo=timezone.utc)  # 14:00 New York, a Tuesday
VALUATION_DATE = date(2026, 8, 25)
EXPIRY_DAYS = (0, 1, 2, 3, 7, 14, 31, 59, 122, 360)
STRIKES_PER_EXPIRY = 1_000  # × 2 sides × 10 expiries = 20,000 contracts
SNAPSHOT_TARGET_MS = 100.0


def _chain_inputs(seed: int = 7) -> dict[str, np.ndarray]:
    """Strikes ±30 %, a skewed smile with call/put IVs quoted apart, OI peaked near spot and round strikes."""
    rng = np.random.default_rng(seed)
    per_exp = []
    for days in EXPIRY_DAYS:
        expiry = VALUATION_DATE + timedelta(days=days)
        t = float(years_to_expiry(NOW, expiry))
        k = np.round(np.linspace(0.7 * SPOT, 1.3 * SPOT, STRIKES_PER_EXPIRY), 2)
        m = np.log(k / SPOT) / np.sqrt(max(t, 1.0 / 365.0) / 0.25)  # moneyness scaled to a 3-month smile
        iv = np.clip(0.15 + 0.04 * np.exp(-t / 0.05) - 0.12 * m + 0.35 * m * m, 0.06, 2.0)
        oi_shape = np.exp(-((np.log(k / SPOT) / 0.07) ** 2)) * (1.0 + 3.0 * (np.mod(k, 5.0) < 0.3))
        for is_call in (True, False):
            oi = np.round(rng.lognormal(6.0, 1.0, k.size) * oi_shape * (2.0 if days <= 1 else 1.0)) + 1.0
            vol = iv + (0.004 if not is_call else 0.0) + rng.normal(0.0, 0.002, k.size)
            per_exp.append((k, np.full(k.size, np.datetime64(expiry)), np.full(k.size, t),
                            np.full(k.size, is_call), vol, oi))
    keys = ("strike", "expiry", "t_years", "is_call", "iv", "open_interest")
    out = {name: np.concatenate([p[i] for p in per_exp]) for i, name in enumerate(keys)}
    out["price"] = bsm(SPOT, out["strike"], out["t_years"], RATE, DIV_YIELD, out["iv"], out["is_call"]).price
    return out


def _chain(data: dict[str, np.ndarray], iv: np.ndarray) -> Chain:
    return Chain(SPOT, data["strike"], data["expiry"], data["t_years"], data["is_call"], iv,
                 data["open_interest"], np.datetime64(VALUATION_DATE), RATE, DIV_YIELD, MULTIPLIER)


def snapshot(data: dict[str, np.ndarray]) -> Positioning:
    """What the analytics worker does every 30 s: solve IVs from prices, then positioning."""
    iv = implied_vol(data["price"], SPOT, data["strike"], data["t_years"], RATE, DIV_YIELD, data["is_call"])
    return positioning(_chain(data, iv))


def naive_profile(levels: np.ndarray, data: dict[str, np.ndarray], weight: np.ndarray) -> np.ndarray:
    """Baseline: every Greek re-priced by bsm() over all contracts at each level."""
    out = np.empty(levels.size)
    for j, level in enumerate(levels):
        g = bsm(level, data["strike"], data["t_years"], RATE, DIV_YIELD, data["iv"], data["is_call"]).gamma
        out[j] = float((g * weight).sum()) * level * level * 0.01
    return out


def run() -> list[Figure]:
    """Time the snapshot and the profile step, each beside the naive per-level bsm() profile."""
    data = _chain_inputs()
    levels = spot_levels(SPOT)
    weight = dealer_sign(data["is_call"]) * data["open_interest"] * MULTIPLIER
    args = (levels, data["strike"], data["t_years"], data["iv"], weight, RATE, DIV_YIELD)

    t_snap, snap = best_of(lambda: snapshot(data), repeat=7)
    t_prof, fast = best_of(lambda: gamma_profile(*args), repeat=7)
    t_naive, slow = best_of(lambda: naive_profile(levels, data, weight), repeat=3)
    t_iv, _ = best_of(lambda: implied_vol(data["price"], SPOT, data["strike"], data["t_years"], RATE,
                                          DIV_YIELD, data["is_call"]), repeat=5)
    mem_snap = peak_memory_mb(lambda: snapshot(data))
    mem_naive = peak_memory_mb(lambda: naive_profile(levels, data, weight))
    rel_err = float(np.max(np.abs(fast - slow)) / np.max(np.abs(slow)))
    n = data["strike"].size
    naive_note = f"naive 121× bsm() profile alone: {t_naive * 1e3:,.1f} ms"
    return [
        Figure(f"snapshot, {n:,} contracts ({snap.contracts_used:,} used), 121 levels", t_snap * 1e3, "ms",
               f"< {SNAPSHOT_TARGET_MS:.0f} ms", f"{naive_note}; IV solve alone {t_iv * 1e3:,.1f} ms",
               t_snap * 1e3 < SNAPSHOT_TARGET_MS),
        Figure("snapshot with naive profile (estimate)", (t_snap - t_prof + t_naive) * 1e3, "ms",
               baseline="snapshot − fast profile + naive profile"),
        Figure(f"profile step alone, {n:,} × {levels.size}", t_prof * 1e3, "ms",
               baseline=f"{naive_note} ({t_naive / t_prof:,.0f}× slower)"),
        Figure("profile max |fast − naive| / max |naive|", rel_err, "", "≤ 1e-9", "", rel_err <= 1e-9),
        Figure("snapshot peak memory", mem_snap, "MiB", baseline=f"naive profile: {mem_naive:,.1f} MiB"),
    ]
