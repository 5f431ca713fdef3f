"""Vol regime: estimators on closed forms and seeded GBM, properties, gamma regime and the label table."""

from __future__ import annotations

import math
from datetime import date, datetime, time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qc.analytics import regime
from qc.analytics.regime import DAILY, MIN_BARS, MINUTE, GammaRegime, MinuteBars, daily_vols, realised_vol
from qc.core.clock import NEW_YORK

N = DAILY


def _gbm_bars(
    seed: int, n_bars: int, sigma: float, overnight_sigma: float = 0.0, steps: int = 390, mu: float = 0.05
) -> tuple[np.ndarray, ...]:
    """Daily OHLC from a GBM sampled each minute; an optional overnight gap between close and open."""
    rng = np.random.default_rng(seed)
    dt = 1.0 / (N * steps)
    paths = np.cumsum(
        (mu - 0.5 * sigma**2) * dt + sigma * math.sqrt(dt) * rng.standard_normal((n_bars, steps)), axis=1
    )
    gaps = overnight_sigma / math.sqrt(N) * rng.standard_normal(n_bars)
    log_open = np.cumsum(gaps + np.r_[0.0, paths[:-1, -1]])
    log_path = log_open[:, None] + np.c_[np.zeros(n_bars), paths]
    close = np.exp(log_path[:, -1])
    return np.exp(log_open), np.exp(log_path.max(axis=1)), np.exp(log_path.min(axis=1)), close


def _all_estimators(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: float
) -> dict[str, float]:
    return {
        "close_to_close": regime.close_to_close(c, periods_per_year=n),
        "parkinson": regime.parkinson(h, lo, periods_per_year=n),
        "garman_klass": regime.garman_klass(o, h, lo, c, periods_per_year=n),
        "rogers_satchell": regime.rogers_satchell(o, h, lo, c, periods_per_year=n),
        "yang_zhang": regime.yang_zhang(o, h, lo, c, periods_per_year=n),
    }


# --- closed forms -----------------------------------------------------------------------------


def test_close_to_close_alternating_returns() -> None:
    x, n_returns = 0.01, 20
    close = 100.0 * np.exp(np.cumsum(np.r_[0.0, np.resize([x, -x], n_returns)]))
    expected = x * math.sqrt(n_returns / (n_returns - 1)) * math.sqrt(N)  # mean 0, sample variance
    assert regime.close_to_close(close, periods_per_year=N) == pytest.approx(expected, rel=1e-12)


def test_range_estimators_on_constant_range_doji_bars() -> None:
    d, n_bars = 0.02, 30
    mid = 100.0 * np.ones(n_bars)
    high, low = mid * math.exp(d / 2), mid * math.exp(-d / 2)  # open = close = geometric mid
    assert regime.parkinson(high, low, periods_per_year=N) == pytest.approx(
        d / math.sqrt(4 * math.log(2)) * math.sqrt(N), rel=1e-12
    )
    assert regime.garman_klass(mid, high, low, mid, periods_per_year=N) == pytest.approx(
        d * math.sqrt(0.5 * N), rel=1e-12
    )
    assert regime.rogers_satchell(mid, high, low, mid, periods_per_year=N) == pytest.approx(
        d * math.sqrt(0.5 * N), rel=1e-12
    )
    # no gaps, no open-to-close move: Yang-Zhang is the Rogers-Satchell part weighted by (1 - k)
    k = 0.34 / (1.34 + n_bars / (n_bars - 2))  # n = n_bars - 1 bars count without prev_close
    assert regime.yang_zhang(mid, high, low, mid, periods_per_year=N) == pytest.approx(
        d * math.sqrt((1 - k) * 0.5 * N), rel=1e-12
    )


def test_low_to_high_bars() -> None:
    d = 0.03
    low = np.full(10, 50.0)
    high = low * math.exp(d)
    # a bar that opens at its low and closes at its high: Rogers-Satchell sees no variance, GK's closed form
    assert regime.rogers_satchell(low, high, low, high, periods_per_year=N) == 0.0
    assert regime.garman_klass(low, high, low, high, periods_per_year=N) == pytest.approx(
        d * math.sqrt((1.5 - 2 * math.log(2)) * N), rel=1e-12
    )


def test_yang_zhang_on_point_bars_is_close_to_close() -> None:
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 50)))
    # open = high = low = close: only the overnight leg moves, i.e. close-to-close returns
    yz = regime.yang_zhang(close, close, close, close, periods_per_year=N)
    assert yz == pytest.approx(regime.close_to_close(close, periods_per_year=N), rel=1e-12)


def test_yang_zhang_prev_close_counts_first_bar() -> None:
    o, h, lo, c = _gbm_bars(seed=3, n_bars=5, sigma=0.2, overnight_sigma=0.1)
    with_prev = regime.yang_zhang(o[1:], h[1:], lo[1:], c[1:], periods_per_year=N, prev_close=float(c[0]))
    assert with_prev == pytest.approx(regime.yang_zhang(o, h, lo, c, periods_per_year=N), rel=1e-12)


def test_annualisation_scales_with_sqrt_of_periods() -> None:
    o, h, lo, c = _gbm_bars(seed=4, n_bars=50, sigma=0.2)
    daily, minute = _all_estimators(o, h, lo, c, DAILY), _all_estimators(o, h, lo, c, MINUTE)
    for name, value in daily.items():
        assert minute[name] == pytest.approx(value * math.sqrt(390), rel=1e-12), name
    assert MINUTE == 252 * 390


@pytest.mark.parametrize(("n_bars", "expect_nan"), [(0, True), (1, True), (2, True), (3, False)])
def test_too_few_bars_is_nan_never_zero(n_bars: int, expect_nan: bool) -> None:
    o, h, lo, c = _gbm_bars(seed=5, n_bars=3, sigma=0.2)
    o, h, lo, c = o[:n_bars], h[:n_bars], lo[:n_bars], c[:n_bars]
    assert math.isnan(regime.close_to_close(c, periods_per_year=N)) is expect_nan
    assert math.isnan(regime.yang_zhang(o, h, lo, c, periods_per_year=N)) is expect_nan
    for value in (
        regime.parkinson(h, lo, periods_per_year=N),
        regime.rogers_satchell(o, h, lo, c, periods_per_year=N),
        regime.garman_klass(o, h, lo, c, periods_per_year=N),
    ):
        assert math.isnan(value) is (n_bars == 0)
        assert value != 0.0


@pytest.mark.parametrize(
    ("field", "bars"),
    [
        ("high/low", ([10.0], [10.5], [9.5], [11.0])),  # close above high
        ("low", ([10.0], [10.5], [0.0], [10.0])),
        ("open", ([math.nan], [10.5], [9.5], [10.0])),
        ("lengths differ", ([10.0, 10.0], [10.5], [9.5], [10.0])),
    ],
)
def test_malformed_bars_name_the_field(field: str, bars: tuple[list[float], ...]) -> None:
    with pytest.raises(ValueError, match=field):
        regime.rogers_satchell(*bars, periods_per_year=N)


def test_non_positive_periods_per_year_rejected() -> None:
    with pytest.raises(ValueError, match="periods_per_year"):
        regime.parkinson([2.0, 2.0], [1.0, 1.0], periods_per_year=0)


# --- simulated GBM ----------------------------------------------------------------------------


def test_estimators_recover_gbm_sigma() -> None:
    sigma = 0.25
    o, h, lo, c = _gbm_bars(seed=11, n_bars=2000, sigma=sigma)
    estimates = _all_estimators(o, h, lo, c, N)
    # minute sampling hides the true high/low: range estimators run ~3-4 % low; 8 % covers it
    for name, value in estimates.items():
        assert value == pytest.approx(sigma, rel=0.08), name


def test_yang_zhang_captures_overnight_gaps_rogers_satchell_does_not() -> None:
    intraday, overnight = 0.20, 0.15
    o, h, lo, c = _gbm_bars(seed=12, n_bars=2000, sigma=intraday, overnight_sigma=overnight)
    total = math.hypot(intraday, overnight)
    assert regime.yang_zhang(o, h, lo, c, periods_per_year=N) == pytest.approx(total, rel=0.06)
    assert regime.close_to_close(c, periods_per_year=N) == pytest.approx(total, rel=0.06)
    assert regime.rogers_satchell(o, h, lo, c, periods_per_year=N) == pytest.approx(intraday, rel=0.06)


# --- properties -------------------------------------------------------------------------------

_bar_moves = st.integers(min_value=3, max_value=40).flatmap(
    lambda n: hnp.arrays(np.float64, (n, 4), elements=st.floats(-0.05, 0.05))
)


def _bars_from(moves: np.ndarray, start: float) -> tuple[np.ndarray, ...]:
    gap, body, up, down = moves.T
    o = start * np.exp(np.cumsum(gap + np.r_[0.0, body[:-1]]))
    c = o * np.exp(body)
    return o, np.maximum(o, c) * np.exp(np.abs(up)), c, np.minimum(o, c) * np.exp(-np.abs(down))


@given(_bar_moves, st.floats(0.5, 1000.0), st.floats(1e-3, 1e3))
def test_estimators_non_negative_and_scale_invariant(moves: np.ndarray, start: float, c: float) -> None:
    o, h, close, lo = _bars_from(moves, start)
    base = _all_estimators(o, h, lo, close, N)
    scaled = _all_estimators(o * c, h * c, lo * c, close * c, N)
    for name, value in base.items():
        assert value >= 0.0, name
        assert scaled[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name


@given(st.floats(-1e6, 1e6), hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e6, 1e6)))
def test_percentile_rank_in_range_and_monotone(value: float, history: np.ndarray) -> None:
    rank = regime.percentile_rank(value, history)
    assert 0.0 <= rank <= 100.0
    assert regime.percentile_rank(value + 1.0, history) >= rank
    band = regime.vol_band(rank)
    assert band == ("low" if rank < 20 else "high" if rank > 80 else "normal")


def test_percentile_rank_known_values() -> None:
    history = np.arange(1.0, 11.0)
    assert regime.percentile_rank(5.0, history) == 45.0  # 4 below, one tie counted half
    assert regime.percentile_rank(0.0, history) == 0.0
    assert regime.percentile_rank(11.0, history) == 100.0
    assert regime.percentile_rank(5.0, np.r_[history, math.nan]) == 45.0
    assert math.isnan(regime.percentile_rank(5.0, []))


@pytest.mark.parametrize(
    ("pct", "band"),
    [(19.9, "low"), (20.0, "normal"), (80.0, "normal"), (80.1, "high"), (math.nan, "unknown")],
)
def test_vol_band_thresholds(pct: float, band: str) -> None:
    assert regime.vol_band(pct) == band


def test_vol_band_custom_thresholds_and_bad_thresholds() -> None:
    assert regime.vol_band(25.0, low=30.0, high=70.0) == "low"
    with pytest.raises(ValueError, match="low/high"):
        regime.vol_band(50.0, low=80.0, high=20.0)


# --- implied vs realised, term structure, gamma regime, label --------------------------------


def test_variance_risk_premium_and_term_structure() -> None:
    assert regime.variance_risk_premium(0.20, 0.15) == pytest.approx(0.05)
    assert regime.term_structure_ratio(0.25, 0.20) == pytest.approx(1.25)
    assert regime.term_structure_state(1.25) == "backwardation"
    assert regime.term_structure_state(regime.term_structure_ratio(0.18, 0.20)) == "contango"
    assert math.isnan(regime.term_structure_ratio(0.2, 0.0))
    assert regime.term_structure_state(math.nan) == "unknown"


@pytest.mark.parametrize(
    ("spot", "zero_gamma", "net_gex", "expected"),
    [
        (450.0, 440.0, 2e9, GammaRegime.POSITIVE),
        (430.0, 440.0, -1e9, GammaRegime.NEGATIVE),
        (450.0, None, 2e9, GammaRegime.UNKNOWN),
        (450.0, 440.0, -1e9, GammaRegime.UNKNOWN),  # conflicting evidence
        (440.0, 440.0, 2e9, GammaRegime.UNKNOWN),
        (450.0, 440.0, math.nan, GammaRegime.UNKNOWN),
    ],
)
def test_gamma_regime(spot: float, zero_gamma: float | None, net_gex: float, expected: GammaRegime) -> None:
    assert regime.gamma_regime(spot, zero_gamma, net_gex) is expected


@pytest.mark.parametrize(
    ("gamma", "band", "ratio", "label"),
    [
        (GammaRegime.POSITIVE, "normal", 0.9, "mean_reversion"),
        (GammaRegime.POSITIVE, "low", math.nan, "mean_reversion"),
        (GammaRegime.POSITIVE, "high", 0.9, "pinned_stress"),
        (GammaRegime.POSITIVE, "normal", 1.1, "pinned_stress"),
        (GammaRegime.NEGATIVE, "normal", 1.1, "expansion"),
        (GammaRegime.NEGATIVE, "high", math.nan, "expansion"),
        (GammaRegime.NEGATIVE, "low", 0.9, "trend"),
        (GammaRegime.NEGATIVE, "unknown", 0.9, "trend"),
        (GammaRegime.NEGATIVE, "unknown", math.nan, "unknown"),
        (GammaRegime.UNKNOWN, "high", 1.2, "unknown"),
    ],
)
def test_regime_label_table(gamma: GammaRegime, band: regime.VolBand, ratio: float, label: str) -> None:
    assert regime.regime_label(gamma, band, ratio) == label


# --- realised vol of the worker's minute bars --------------------------------------------------------


def _minute_bars(day: date, n: int, seed: int, hh: int = 9, mm: int = 30) -> MinuteBars:
    """``n`` random-walk 1-minute OHLC bars from ``hh:mm`` New York on ``day``."""
    rng = np.random.default_rng(seed)
    first = datetime.combine(day, time(hh, mm), NEW_YORK).timestamp()
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 3e-4, n))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 3e-4, n))
    start = first + 60.0 * np.arange(n, dtype=np.float64)
    return MinuteBars(start, open_, high, low, close, rng.uniform(100.0, 1_000.0, n))


def _concat(*parts: MinuteBars) -> MinuteBars:
    return MinuteBars(*(np.concatenate([getattr(b, f) for b in parts])
                        for f in ("start", "open", "high", "low", "close", "volume")))


def test_realised_vol_is_nan_under_min_bars_then_rogers_satchell_of_the_last_session() -> None:
    assert math.isnan(realised_vol(_minute_bars(date(2026, 11, 24), MIN_BARS - 1, 1)))
    b = _minute_bars(date(2026, 11, 24), MIN_BARS, 1)
    assert realised_vol(b) == regime.rogers_satchell(b.open, b.high, b.low, b.close, periods_per_year=MINUTE)
    long = _concat(_minute_bars(date(2026, 11, 23), 390, 2), _minute_bars(date(2026, 11, 24), 390, 3))
    last = slice(-390, None)
    assert realised_vol(long) == regime.rogers_satchell(long.open[last], long.high[last], long.low[last],
                                                        long.close[last], periods_per_year=MINUTE)
    assert realised_vol(long, last=60) != realised_vol(long)


def test_daily_vols_one_per_new_york_date_short_days_skipped() -> None:
    mon, tue, wed = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)
    # Tuesday's evening minutes (20:00-20:59 New York) are Wednesday in UTC but Tuesday in New York
    parts = (_minute_bars(mon, 390, 4), _minute_bars(tue, 100, 5), _minute_bars(tue, 60, 6, hh=20, mm=0),
             _minute_bars(wed, MIN_BARS - 1, 7))
    got = daily_vols(_concat(*parts))
    assert list(got) == [mon, tue]
    m = parts[0]
    assert got[mon] == regime.rogers_satchell(m.open, m.high, m.low, m.close, periods_per_year=MINUTE)
    t = _concat(parts[1], parts[2])
    assert got[tue] == pytest.approx(regime.rogers_satchell(t.open, t.high, t.low, t.close, periods_per_year=MINUTE),
                                     rel=1e-15)
    assert daily_vols(_minute_bars(mon, 0, 1)) == {}
