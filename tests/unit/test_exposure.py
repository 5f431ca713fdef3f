"""Dealer positioning: the TazTheworld golden chain (reference §3.3a) and properties of the maths."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qc.analytics.exposure import Chain, Convention, GammaSource, chain_at, dealer_sign, max_pain
from qc.analytics.greeks import bsm, years_to_expiry
from qc.analytics.positioning import Positioning, positioning
from qc.analytics.profile import gamma_profile, spot_levels, zero_gamma
from qc.core.clock import NEW_YORK

# --- §3.3a: the synthetic chain, restated from the reference --------------------------------------
GOLDEN_SPOT = 29_300.0
GOLDEN_NOW = datetime(2026, 8, 25, 20, 30, tzinfo=timezone.utc)
GOLDEN_EXPIRIES = (  # New York settlement instants; index i feeds the IV term
    datetime(2026, 8, 26, 16, 0, tzinfo=NEW_YORK),
    datetime(2026, 8, 28, 16, 0, tzinfo=NEW_YORK),
    datetime(2026, 9, 18, 9, 30, tzinfo=NEW_YORK),
)
GOLDEN_T = (0.00268265, 0.00816210, 0.06495434)  # as printed (8 d.p.), asserted, not used
# Expected at multiplier 20; multiplier 100 is ×5 (the reference prints both for the totals).
GOLDEN = {
    "gex": {20: -325_357_778.74, 100: -1_626_788_893.72},
    "charm": {20: -644_024_957.13, 100: -3_220_124_785.65},
    "vanna": {20: 128_832_672.34, 100: 644_163_361.72},
}
GOLDEN_PROFILE_20 = {0: -1_257_565.40, 15: -74_069_723.82, 30: 29_154_833.13, 45: 29_694_811.88,
                     59: 3_002_394.24}
GOLDEN_DEX_20 = 9_902_687_182.0  # "computed here too", printed to the dollar


def close(actual: float, expected: float, half_unit: float) -> bool:
    """≤ 1e-9 relative, or within half a unit of the last printed digit when that is looser.

    The reference prints cents, so a value of ~1e6 carries up to 5e-9 relative rounding by itself.
    """
    return abs(actual - expected) <= max(1e-9 * abs(expected), half_unit)


def golden_chain(multiplier: float) -> Chain:
    """51 strikes-by-expiry lines × call/put, T = (expiry − valuation) / (365 × 86,400 s)."""
    rows = []
    for i, expiry in enumerate(GOLDEN_EXPIRIES):
        t = (expiry - GOLDEN_NOW).total_seconds() / (365 * 86_400)
        for k in range(28_500, 30_101, 100):
            call_iv = 0.20 - 0.15 * math.log(k / GOLDEN_SPOT) + 0.02 * i
            call_oi = 200 + 600 * max(0.0, (k - GOLDEN_SPOT) / 500)
            put_oi = 200 + 900 * max(0.0, (GOLDEN_SPOT - k) / 500)
            rows.append((k, expiry.date(), t, True, call_iv, call_oi))
            rows.append((k, expiry.date(), t, False, call_iv + 0.005, put_oi))
    cols = list(zip(*rows, strict=True))
    return Chain(GOLDEN_SPOT, np.array(cols[0], float), np.array(cols[1], "datetime64[D]"),
                 np.array(cols[2]), np.array(cols[3]), np.array(cols[4]), np.array(cols[5]),
                 np.datetime64(GOLDEN_NOW.astimezone(NEW_YORK).date(), "D"), multiplier=multiplier)


@pytest.fixture(scope="module", params=[20, 100], ids=["m20", "m100"])
def golden(request: pytest.FixtureRequest) -> tuple[int, Positioning]:
    m = int(request.param)
    return m, positioning(golden_chain(m), n_levels=60)


def test_golden_time_to_expiry_matches_printed_values() -> None:
    t = np.unique(golden_chain(20).t_years)
    np.testing.assert_allclose(t, GOLDEN_T, atol=5e-9)


def test_golden_totals(golden: tuple[int, Positioning]) -> None:
    m, p = golden
    assert close(p.gex_usd_per_1pct, GOLDEN["gex"][m], 0.005)
    assert close(p.charm_usd_per_day, GOLDEN["charm"][m], 0.005)
    assert close(p.vanna_usd_per_volpt, GOLDEN["vanna"][m], 0.005)
    assert p.contracts_used == 102
    assert p.convention is Convention.DEALER_LONG_CALLS_SHORT_PUTS
    assert p.gamma_source is GammaSource.MODEL
    assert [str(d) for d in p.expiries_used] == ["2026-08-26", "2026-08-28", "2026-09-18"]


def test_golden_dex_at_multiplier_20() -> None:
    p = positioning(golden_chain(20), n_levels=60)
    assert close(p.dex_usd, GOLDEN_DEX_20, 0.5)


def test_golden_profile_points(golden: tuple[int, Positioning]) -> None:
    m, p = golden
    scale = m / 20
    assert p.profile.levels.size == 60
    assert p.profile.levels[0] == pytest.approx(0.8 * GOLDEN_SPOT, rel=1e-15)
    assert p.profile.levels[-1] == pytest.approx(1.2 * GOLDEN_SPOT, rel=1e-15)
    for j, expected in GOLDEN_PROFILE_20.items():
        assert close(p.profile.gex_usd_per_1pct[j], expected * scale, 0.005 * scale), j


def test_golden_levels(golden: tuple[int, Positioning]) -> None:
    _, p = golden
    assert p.zero_gamma.level is not None
    assert close(p.zero_gamma.level, 29_391.2072, 0.00005)
    assert p.zero_gamma.crossings == (p.zero_gamma.level,)
    assert (p.walls.call_gamma_strike, p.walls.put_gamma_strike) == (29_600.0, 28_900.0)
    assert (p.walls.call_oi_strike, p.walls.put_oi_strike) == (30_100.0, 28_500.0)
    assert p.share_0_1dte_abs_gex is not None and p.share_0_1dte_abs_charm is not None
    assert close(p.share_0_1dte_abs_gex, 0.37999, 0.000005)
    assert close(p.share_0_1dte_abs_charm, 0.62482, 0.000005)


def _scalar_gex(level: float, chain: Chain) -> float:
    """Oracle: one contract at a time, textbook BSM gamma with r = q = 0, no vectorisation."""
    total = 0.0
    for k, t, iv, oi, call in zip(chain.strike, chain.t_years, chain.iv, chain.open_interest,
                                  chain.is_call, strict=True):
        d1 = (math.log(level / k) + 0.5 * iv * iv * t) / (iv * math.sqrt(t))
        gamma = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) / (level * iv * math.sqrt(t))
        total += (1.0 if call else -1.0) * gamma * oi * chain.multiplier * level * level * 0.01
    return total


def test_golden_profile_matches_a_scalar_oracle_to_1e_12() -> None:
    chain = golden_chain(20)
    p = positioning(chain, n_levels=60)
    oracle = np.array([_scalar_gex(float(x), chain) for x in p.profile.levels])
    scale = np.abs(oracle).max()
    np.testing.assert_allclose(p.profile.gex_usd_per_1pct, oracle, rtol=0, atol=1e-12 * scale)
    assert p.gex_usd_per_1pct == pytest.approx(_scalar_gex(GOLDEN_SPOT, chain), rel=1e-12)


def test_golden_json_round_trip() -> None:
    d = json.loads(json.dumps(positioning(golden_chain(20)).to_dict(), allow_nan=False))
    assert d["convention"] == "dealer_long_calls_short_puts"
    assert d["gamma_source"] == "bsm_from_iv"
    assert d["expiries_used"] == ["2026-08-26", "2026-08-28", "2026-09-18"]
    assert len(d["profile"]["levels"]) == 121
    assert d["walls"]["call_gamma_strike"] == 29_600.0
    assert d["dropped"] == {"strike_invalid": 0, "t_years_invalid": 0, "expired": 0, "iv_missing": 0,
                            "open_interest_nonpositive": 0}
    assert all(key == key.lower() for key in d)
    assert "contracts" not in d


# --- filtering, labels, sources ---------------------------------------------------------------------
def test_dead_and_broken_contracts_are_dropped_and_counted() -> None:
    base = golden_chain(20)
    extra = 7  # settled a second ago, settling now, no T, no IV, no OI, negative OI, no strike
    bad = Chain(
        GOLDEN_SPOT,
        np.append(base.strike, [29_300.0] * (extra - 1) + [np.nan]),
        np.append(base.expiry, np.array(["2026-08-25"] * extra, "datetime64[D]")),
        np.append(base.t_years, [-1 / (365 * 86_400), 0.0, np.nan, 0.01, 0.01, 0.01, 0.01]),
        np.append(base.is_call, [True] * extra),
        np.append(base.iv, [0.2, 0.2, 0.2, np.nan, 0.2, 0.2, 0.2]),
        np.append(base.open_interest, [1e9, 1e9, 1e9, 1e9, 0.0, -5.0, 1e9]),
        base.valuation_date, multiplier=20,
    )
    p, ref = positioning(bad, n_levels=60), positioning(base, n_levels=60)
    assert p.dropped == {"strike_invalid": 1, "t_years_invalid": 1, "expired": 2, "iv_missing": 1,
                         "open_interest_nonpositive": 2}
    assert p.gex_usd_per_1pct == ref.gex_usd_per_1pct
    np.testing.assert_array_equal(p.profile.gex_usd_per_1pct, ref.profile.gex_usd_per_1pct)


def test_dte_window_selects_expiries_and_says_which() -> None:
    p = positioning(golden_chain(20), max_dte=1)
    assert [str(d) for d in p.expiries_used] == ["2026-08-26"]
    assert p.dropped["outside_dte_window"] == 68
    assert p.max_dte_days == 1
    assert p.share_0_1dte_abs_gex == 1.0


def test_vendor_gamma_drives_spot_gex_but_not_the_profile() -> None:
    base = golden_chain(20)
    model = bsm(base.spot, base.strike, base.t_years, 0.0, 0.0, base.iv, base.is_call)
    vendor = Chain(base.spot, base.strike, base.expiry, base.t_years, base.is_call, base.iv,
                   base.open_interest, base.valuation_date, multiplier=20, vendor_gamma=2.0 * model.gamma)
    ref, p = positioning(base), positioning(vendor, gamma_source=GammaSource.VENDOR)
    assert p.gex_usd_per_1pct == pytest.approx(2.0 * ref.gex_usd_per_1pct, rel=1e-12)
    assert (p.gamma_source, p.delta_source) == (GammaSource.VENDOR, GammaSource.MODEL)
    np.testing.assert_array_equal(p.profile.gex_usd_per_1pct, ref.profile.gex_usd_per_1pct)
    with pytest.raises(ValueError, match="vendor_gamma"):
        positioning(base, gamma_source=GammaSource.VENDOR)


def test_chain_at_measures_time_to_the_settlement_instant() -> None:
    now = datetime(2026, 8, 25, 19, 0, tzinfo=timezone.utc)  # 15:00 New York
    chain = chain_at(now, 100.0, [100.0, 100.0], np.array(["2026-08-25", "2026-08-26"], "datetime64[D]"),
                     [True, False], [0.2, 0.2], [10, 10], multiplier=100)
    np.testing.assert_allclose(chain.t_years, [3600 / (365 * 86_400), 25 * 3600 / (365 * 86_400)])
    np.testing.assert_array_equal(chain.dte, [0, 1])
    assert chain.t_years[0] == years_to_expiry(now, chain.expiry[0].astype(object))


def test_misaligned_chain_is_refused() -> None:
    with pytest.raises(ValueError, match="iv"):
        Chain(100.0, np.ones(3), np.array(["2026-09-18"] * 3, "datetime64[D]"), np.ones(3),
              np.ones(3, bool), np.ones(2), np.ones(3), np.datetime64("2026-08-25"))


# --- zero gamma: None with a reason, never a grid edge -------------------------------------------
@pytest.mark.parametrize(("is_call", "word"), [(True, "non-negative"), (False, "non-positive")])
def test_one_sided_gamma_has_no_flip_and_says_why(is_call: bool, word: str) -> None:
    base = golden_chain(20)
    side = base.is_call == is_call
    chain = Chain(base.spot, base.strike[side], base.expiry[side], base.t_years[side],
                  base.is_call[side], base.iv[side], base.open_interest[side], base.valuation_date)
    p = positioning(chain)
    assert p.zero_gamma.level is None
    assert p.zero_gamma.crossings == ()
    assert p.zero_gamma.reason is not None and word in p.zero_gamma.reason
    assert (p.walls.put_gamma_strike is None) == is_call
    assert (p.walls.call_gamma_strike is None) == (not is_call)


def test_zero_gamma_picks_the_nearest_crossing_and_the_lower_on_a_tie() -> None:
    levels = np.arange(90.0, 111.0)
    gex = np.where(np.abs(levels - 100.0) < 4.5, 1.0, -1.0)  # crossings at 95.5 and 104.5
    zg = zero_gamma(levels, gex, 100.0)
    assert zg.crossings == (95.5, 104.5)
    assert zg.level == 95.5
    assert zero_gamma(levels, gex, 100.1).level == 104.5
    grid = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert zero_gamma(grid, np.array([1.0, 0.0, -1.0, -1.0, -1.0]), 3.0).level == 2.0
    assert zero_gamma(grid, np.array([1.0, 0.0, 0.0, -1.0, -1.0]), 3.0).level == 2.5  # zero plateau
    assert zero_gamma(grid, np.array([0.0, 0.0, 1.0, 1.0, 0.0]), 3.0).level is None  # edges are not flips
    tiny = zero_gamma(grid, np.array([-1e-300, 1e10, 1.0, 1.0, 1.0]), 3.0).level
    assert tiny is not None and 1.0 < tiny < 2.0


def test_empty_chain_is_explicit() -> None:
    chain = Chain(100.0, np.ones(1) * 100, np.array(["2026-09-18"], "datetime64[D]"), np.ones(1),
                  np.ones(1, bool), np.array([np.nan]), np.ones(1), np.datetime64("2026-08-25"))
    p = positioning(chain)
    assert p.contracts_used == 0 and p.zero_gamma.level is None and p.zero_gamma.reason
    assert p.share_0_1dte_abs_gex is None and p.walls.call_gamma_strike is None
    assert p.gex_usd_per_1pct == 0.0
    d = json.loads(json.dumps(p.to_dict(include_contracts=True), allow_nan=False))
    assert d["zero_gamma"]["level"] is None and d["expiries_used"] == [] and d["dropped"]["iv_missing"] == 1


# --- properties -----------------------------------------------------------------------------------
@st.composite
def chains(draw: st.DrawFn, min_size: int = 1) -> Chain:
    """Small random chains: ≤ 4 expiries 1 h to 2 y out, strikes ±35 %, IV 5–150 %, OI 1–50,000."""
    n = draw(st.integers(min_size, 16))
    spot = draw(st.floats(20.0, 6_000.0))

    def column(dtype: type, elements: st.SearchStrategy[Any]) -> np.ndarray:
        return draw(hnp.arrays(dtype, n, elements=elements))

    moneyness = column(float, st.floats(0.65, 1.35))
    expiry_days = draw(st.lists(st.integers(0, 730), min_size=1, max_size=4, unique=True))
    days = np.array(expiry_days)[column(np.int64, st.integers(0, len(expiry_days) - 1))]
    t = (days * 24 + column(float, st.floats(1.0, 23.0))) / (365 * 24)
    return Chain(spot, spot * moneyness, np.datetime64("2026-08-25") + days.astype("timedelta64[D]"), t,
                 column(bool, st.booleans()), column(float, st.floats(0.05, 1.5)),
                 column(float, st.integers(1, 50_000).map(float)), np.datetime64("2026-08-25"),
                 rate=draw(st.floats(0.0, 0.08)), div_yield=draw(st.floats(0.0, 0.04)),
                 multiplier=draw(st.sampled_from([1.0, 20.0, 100.0])))


def _scaled(chain: Chain, oi: float = 1.0, multiplier: float = 1.0) -> Chain:
    return Chain(chain.spot, chain.strike, chain.expiry, chain.t_years, chain.is_call, chain.iv,
                 chain.open_interest * oi, chain.valuation_date, chain.rate, chain.div_yield,
                 chain.multiplier * multiplier)


@given(chains())
def test_gex_flips_with_the_convention(chain: Chain) -> None:
    dealer = positioning(chain, n_levels=60)
    customer = positioning(chain, n_levels=60, convention=Convention.CUSTOMER_LONG)
    call_gamma = dealer.by_strike.call_gamma_usd_per_1pct.sum()
    put_gamma = dealer.by_strike.put_gamma_usd_per_1pct.sum()
    cancel = 1e-12 * (call_gamma + put_gamma)
    assert dealer.gex_usd_per_1pct == pytest.approx(call_gamma - put_gamma, rel=1e-12, abs=cancel)
    assert customer.gex_usd_per_1pct == pytest.approx(-(call_gamma + put_gamma), rel=1e-12)
    s = np.where(chain.is_call, -1.0, 1.0)  # customer sign relative to dealer sign
    np.testing.assert_allclose(customer.contracts.gex_usd_per_1pct, s * dealer.contracts.gex_usd_per_1pct)
    np.testing.assert_allclose(customer.contracts.dex_usd, s * dealer.contracts.dex_usd)
    assert customer.convention.value == "customer_long"
    assert customer.walls == dealer.walls  # walls rank unsigned exposure: no convention in them
    np.testing.assert_array_equal(dealer_sign(chain.is_call), -s)


@given(chains(), st.integers(2, 1_000), st.integers(2, 1_000))
def test_gex_is_linear_in_multiplier_and_open_interest(chain: Chain, k_oi: int, k_m: int) -> None:
    base = positioning(chain, n_levels=60)
    scaled = positioning(_scaled(chain, oi=k_oi, multiplier=k_m), n_levels=60)
    k = k_oi * k_m
    for name in ("gex_usd_per_1pct", "dex_usd", "vanna_usd_per_volpt", "charm_usd_per_day"):
        per_contract = getattr(base.contracts, name)
        np.testing.assert_allclose(getattr(scaled.contracts, name), k * per_contract, rtol=1e-13, atol=1e-290)
        cancel = 1e-13 * k * np.abs(per_contract).sum()  # sums may cancel: judge them on Σ|terms|
        assert getattr(scaled, name) == pytest.approx(k * getattr(base, name), rel=1e-12, abs=cancel)
    prof = base.profile.gex_usd_per_1pct
    np.testing.assert_allclose(scaled.profile.gex_usd_per_1pct, k * prof, rtol=1e-12,
                               atol=1e-12 * k * np.abs(prof).max() + 1e-290)
    assert scaled.walls == base.walls
    assert scaled.zero_gamma.crossings == pytest.approx(base.zero_gamma.crossings, rel=1e-9)


@given(chains(min_size=2))
def test_levels_zero_gamma_walls_max_pain_and_shares(chain: Chain) -> None:
    """One snapshot, every level-type output checked against its definition."""
    p = positioning(chain, n_levels=60)
    _check_zero_gamma(p, chain.spot)
    _check_walls(p, chain)
    for expiry, pain in zip(p.by_expiry.expiry, p.by_expiry.max_pain_strike, strict=True):
        assert pain in set(chain.strike[chain.expiry == expiry].tolist())
    for share in (p.share_0_1dte_abs_gex, p.share_0_1dte_abs_charm):
        assert share is None or 0.0 <= share <= 1.0
    assert p.contracts_used == chain.strike.size


def _check_zero_gamma(p: Positioning, spot: float) -> None:
    """Zero gamma strictly inside the grid, between two levels of opposite sign, nearest spot."""
    levels, gex, zg = p.profile.levels, p.profile.gex_usd_per_1pct, p.zero_gamma
    assert (zg.level is None) == (len(zg.crossings) == 0) == (zg.reason is not None)
    for x in zg.crossings:
        assert levels[0] < x < levels[-1]
        below = np.flatnonzero((levels < x) & (gex != 0))[-1]  # nearest non-zero level on each side
        above = np.flatnonzero((levels > x) & (gex != 0))[0]
        assert np.sign(gex[below]) * np.sign(gex[above]) < 0  # signs: the product of two tiny levels underflows
        assert not np.any(gex[below + 1:above])  # only exact zeros (if any) in between
    if zg.level is not None:
        assert zg.level == min(zg.crossings, key=lambda x: (abs(x - spot), x))
    else:
        assert np.all(gex >= 0) or np.all(gex <= 0)


def _check_walls(p: Positioning, chain: Chain) -> None:
    """Walls are listed strikes on their side of spot within their band; None only when empty."""
    s, w = chain.spot, p.walls
    listed = set(chain.strike.tolist())
    for strike, lo, hi in [(w.call_gamma_strike, s, 1.15 * s), (w.put_gamma_strike, 0.85 * s, s),
                           (w.call_oi_strike, s, 1.30 * s), (w.put_oi_strike, 0.70 * s, s)]:
        if strike is not None:
            assert strike in listed
            assert lo * (1 - 1e-12) <= strike <= hi * (1 + 1e-12)
    gamma = bsm(s, chain.strike, chain.t_years, chain.rate, chain.div_yield, chain.iv, chain.is_call).gamma
    in_band = (gamma > 0) & (np.abs(chain.strike / s - 1) <= 0.15)
    assert (w.call_gamma_strike is None) == (not np.any(in_band & chain.is_call & (chain.strike >= s)))
    assert (w.put_gamma_strike is None) == (not np.any(in_band & ~chain.is_call & (chain.strike <= s)))


@given(st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.integers(0, 1_000)), min_size=1, max_size=30))
def test_max_pain_matches_brute_force(rows: list[tuple[int, bool, int]]) -> None:
    k = np.array([r[0] * 5.0 for r in rows])
    call = np.array([r[1] for r in rows])
    oi = np.array([float(r[2]) for r in rows])
    assume(oi.sum() > 0)
    spot = 101.0
    pain = {x: sum(o * max(0.0, x - kk) if c else o * max(0.0, kk - x) for kk, c, o in zip(k, call, oi, strict=True))
            for x in set(k.tolist())}
    best = min(pain.values())
    expected = min((x for x, v in pain.items() if v == best), key=lambda x: (abs(x - spot), x))
    assert max_pain(k, call, oi, spot) == expected


@given(chains())
def test_fast_profile_equals_bsm_repriced_at_every_level(chain: Chain) -> None:
    levels = spot_levels(chain.spot, 0.2, 60)
    weight = dealer_sign(chain.is_call) * chain.open_interest * chain.multiplier
    fast = gamma_profile(levels, chain.strike, chain.t_years, chain.iv, weight, chain.rate, chain.div_yield)
    g = bsm(levels[:, None], chain.strike, chain.t_years, chain.rate, chain.div_yield, chain.iv,
            chain.is_call).gamma
    terms = g * weight * (levels**2 * 0.01)[:, None]
    scale = np.abs(terms).sum(axis=1)
    assert np.all(np.abs(fast - terms.sum(axis=1)) <= 1e-10 * scale + 1e-300)
