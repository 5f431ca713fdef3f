"""The signal factors: signs (bullish inputs read +), units (a VPIN of 0.8 reads 0.6), abstentions with
their reasons (Absent, stale, too old, figure missing), and every value within [-1, 1] for any finite input."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.analytics.codec import GEX_LABELS, GEX_NUMBERS, FlowClusters, GexSnapshot, Imbalance, Regime, Vpin
from qc.core.codec import Absent
from qc.core.models import Bar, Trade
from qc.ingest.codec import AuctionImbalance, NewsSentiment, Quote
from qc.signals import factors as fx
from qc.signals.model import (
    AUCTION,
    BOOK_IMBALANCE,
    FLOW_CLUSTER,
    GAMMA_MODE,
    IV_RV,
    LAST_HALF_HOUR,
    MICROPRICE,
    NEWS,
    ORDER_FLOW,
    SKEW_0DTE,
    VPIN_CHANGE,
    VPIN_LEVEL,
    WALLS,
    Factor,
)

UTC = timezone.utc
NOW = datetime(2026, 3, 10, 19, 30, tzinfo=UTC)
T = NOW.timestamp()
GONE = Absent("analytics:SPY:x", "missing")


def ago(s: float) -> datetime:
    return NOW - timedelta(seconds=s)


def gex(numbers: Mapping[str, float | None] | None = None, labels: Mapping[str, str] | None = None, *,
        spot: float = 500.0, age: float = 10.0, stale: str = "") -> GexSnapshot:
    nums: dict[str, float | None] = dict.fromkeys(GEX_NUMBERS)
    nums.update(numbers or {})
    labs = dict.fromkeys(GEX_LABELS, "") | {"regime": "unknown", "gamma_regime": "unknown"} | dict(labels or {})
    return GexSnapshot(nums, labs, spot, "quote", 1.0, "", (), 100, ago(age), ago(age), 60.0, stale)


def vpin(value: float | None, *, age: float = 5.0, stale: str = "", reason: str = "") -> Vpin:
    return Vpin(value, 1000.0, 50, "bulk", reason, "", ago(age), 1.0, stale)


def imbalance(imb: float | None = 0.0, micro: float | None = 100.01, *, age: float = 1.0, stale: str = "") -> Imbalance:
    return Imbalance(imb, micro, 0.02, 10, ago(age), 0.5, stale)


def quote(bid: float | None = 100.0, ask: float | None = 100.02, *, age: float = 1.0) -> Quote:
    return Quote(as_of=T - age, bid=bid, ask=ask)


def regime(iv_minus_rv: float | None, *, age: float = 10.0) -> Regime:
    return Regime(0.12, 0.15, 0.18, iv_minus_rv, 1.2, 50.0, 20, 390, ago(age), "positive", "normal", "trend")


def clusters(label: str | None, *, age: float = 30.0, reason: str | None = None) -> FlowClusters:
    return FlowClusters(ago(age), 30, 3000, 2.0, label, reason, {"momentum": 10}, None)


def sentiment(score: float | None, *, articles: int = 5, age: float = 600.0) -> NewsSentiment:
    return NewsSentiment(score, "Neutral", articles, 2.5, 0, "20260310T120000", ago(age))


def trade(s_ago: float, size: float, side: int) -> Trade:
    return Trade(ago(s_ago), 500.0, size, "ARCA", side)


def bar(start_ago: float, close: float, *, complete: bool = True, open_: float = 100.0) -> Bar:
    return Bar(ago(start_ago), open_, max(open_, close), min(open_, close), close, 1000.0, close, 10, complete)


def assert_abstains(f: Factor, name: str, *fragments: str) -> None:
    assert f.name == name
    assert f.value is None
    assert f.reason
    for fragment in fragments:
        assert fragment in f.reason, f.reason


# --- gamma mode ---------------------------------------------------------------------------------


def test_long_gamma_far_from_the_flip_reads_strong_mean_reversion() -> None:
    f = fx.gamma_mode(gex({"total": 2e9, "zero_gamma": 490.0, "zero_gamma_distance_pct": -2.0}), NOW)
    assert f.value == pytest.approx(math.tanh(2.0))
    assert f.age_s == pytest.approx(10.0)
    assert f.inputs["total"] == 2e9


def test_short_gamma_reads_negative_whichever_side_the_flip_is() -> None:
    below = fx.gamma_mode(gex({"total": -1e9, "zero_gamma_distance_pct": 1.0}), NOW)
    above = fx.gamma_mode(gex({"total": -1e9, "zero_gamma_distance_pct": -1.0}), NOW)
    assert below.value == pytest.approx(-math.tanh(1.0))
    assert above.value == below.value


def test_spot_on_the_flip_is_no_conviction() -> None:
    assert fx.gamma_mode(gex({"total": 1e9, "zero_gamma_distance_pct": 0.0}), NOW).value == 0.0


def test_gamma_distance_is_computed_from_the_level_when_the_percentage_is_missing() -> None:
    f = fx.gamma_mode(gex({"total": 1e9, "zero_gamma": 505.0}, spot=500.0), NOW)
    assert f.value == pytest.approx(math.tanh(1.0))


def test_no_zero_gamma_uses_the_sign_of_net_gex_at_half_strength() -> None:
    labels = {"zero_gamma_reason": "no sign change within ±10 %"}
    pos = fx.gamma_mode(gex({"total": 3e9}, labels), NOW)
    neg = fx.gamma_mode(gex({"total": -3e9}, labels), NOW)
    assert (pos.value, neg.value) == (0.5, -0.5)
    assert pos.inputs["zero_gamma_reason"] == "no sign change within ±10 %"


def test_gamma_abstains_without_net_gex() -> None:
    assert_abstains(fx.gamma_mode(gex({"zero_gamma": 490.0}), NOW), GAMMA_MODE, "total")


def test_gamma_abstains_with_the_absent_reason() -> None:
    f = fx.gamma_mode(Absent("analytics:SPY:gex", "no positioning yet: no chain"), NOW)
    assert_abstains(f, GAMMA_MODE)
    assert f.reason == "analytics:SPY:gex: no positioning yet: no chain"
    assert f.age_s is None


def test_gamma_abstains_when_the_writer_marked_it_stale() -> None:
    f = fx.gamma_mode(gex({"total": 1e9}, stale="chain 900 s old"), NOW)
    assert_abstains(f, GAMMA_MODE, "stale", "chain 900 s old")


def test_gamma_abstains_when_older_than_max_age() -> None:
    old = gex({"total": 1e9}, age=340.0)
    assert_abstains(fx.gamma_mode(old, NOW, max_age_s=120.0), GAMMA_MODE, "stale: 340 s old > 120 s")
    assert fx.gamma_mode(old, NOW, max_age_s=400.0).value == 0.5


# --- walls --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spot", "expected"), [(490.0, 1.0), (510.0, -1.0), (500.0, 0.0), (495.0, 0.5)])
def test_walls_map_spot_linearly_from_support_to_resistance(spot: float, expected: float) -> None:
    f = fx.walls(gex({"put_wall": 490.0, "call_wall": 510.0}, spot=spot), NOW)
    assert f.value == pytest.approx(expected)


def test_walls_abstain_without_a_wall_saying_which() -> None:
    assert_abstains(fx.walls(gex({"put_wall": 490.0}), NOW), WALLS, "call wall")
    assert_abstains(fx.walls(gex({"call_wall": 510.0}), NOW), WALLS, "put wall")


def test_walls_abstain_when_they_do_not_bracket_spot() -> None:
    assert_abstains(fx.walls(gex({"put_wall": 490.0, "call_wall": 495.0}, spot=500.0), NOW), WALLS,
                    "above the call wall")
    assert_abstains(fx.walls(gex({"put_wall": 510.0, "call_wall": 505.0}, spot=500.0), NOW), WALLS, "not below")
    assert_abstains(fx.walls(gex({"put_wall": 500.0, "call_wall": 500.0}, spot=500.0), NOW), WALLS, "not below")


def test_walls_abstain_when_stale() -> None:
    f = fx.walls(gex({"put_wall": 490.0, "call_wall": 510.0}, age=200.0), NOW, max_age_s=120.0)
    assert_abstains(f, WALLS, "stale")


# --- skew ---------------------------------------------------------------------------------------


def test_steep_put_skew_reads_bearish() -> None:
    f = fx.skew_0dte(gex({"skew_25d": 0.05, "skew_25d_normalised": 0.25}), NOW)
    assert f.value == pytest.approx(-math.tanh(1.0))


def test_call_skew_reads_bullish() -> None:
    assert (fx.skew_0dte(gex({"skew_25d_normalised": -0.1}), NOW).value or 0.0) > 0


def test_raw_skew_is_the_fallback() -> None:
    assert fx.skew_0dte(gex({"skew_25d": 0.05}), NOW).value == pytest.approx(-math.tanh(1.0))


def test_skew_abstains_with_the_writers_reason() -> None:
    f = fx.skew_0dte(gex(labels={"skew_reason": "25Δ put: delta outside the quoted deltas"}), NOW)
    assert_abstains(f, SKEW_0DTE, "25Δ put: delta outside the quoted deltas")


# --- VPIN ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("v", "expected"), [(0.8, 0.6), (0.5, 0.0), (0.0, -1.0), (1.0, 1.0), (0.25, -0.5)])
def test_vpin_level_is_twice_vpin_minus_one(v: float, expected: float) -> None:
    assert fx.vpin_level(vpin(v), NOW).value == pytest.approx(expected)


def test_vpin_level_abstains_until_buckets_fill() -> None:
    assert_abstains(fx.vpin_level(vpin(None, reason="12 of 50 buckets"), NOW), VPIN_LEVEL, "12 of 50 buckets")


def test_vpin_level_abstains_when_stale_or_absent() -> None:
    assert_abstains(fx.vpin_level(vpin(0.8, stale="trades 300 s old"), NOW), VPIN_LEVEL, "trades 300 s old")
    assert_abstains(fx.vpin_level(vpin(0.8, age=130.0), NOW), VPIN_LEVEL, "stale: 130 s old > 120 s")
    f = fx.vpin_level(Absent("analytics:SPY:vpin", "missing"), NOW)
    assert f.reason == "analytics:SPY:vpin: missing"


def test_rising_vpin_reads_positive_falling_negative() -> None:
    up = fx.vpin_change([(ago(300), 0.5), (ago(150), 0.55), (ago(1), 0.6)], NOW)
    down = fx.vpin_change([(ago(300), 0.6), (ago(1), 0.5)], NOW)
    assert up.value == pytest.approx(math.tanh(1.0))
    assert down.value == pytest.approx(-math.tanh(1.0))
    assert up.age_s == pytest.approx(1.0)


def test_vpin_change_uses_the_reading_nearest_the_lookback() -> None:
    history = [(ago(900), 0.1), (ago(310), 0.5), (ago(200), 0.9), (ago(0), 0.6)]
    f = fx.vpin_change(history, NOW, lookback_s=300.0)
    assert f.inputs["reference"] == 0.5
    assert f.value == pytest.approx(math.tanh(1.0))


def test_vpin_change_ignores_readings_after_now_and_order() -> None:
    history = [(ago(-60), 0.0), (ago(1), 0.6), (ago(300), 0.5)]
    assert fx.vpin_change(history, NOW).value == pytest.approx(math.tanh(1.0))


def test_vpin_change_abstains_on_short_or_thin_history() -> None:
    assert_abstains(fx.vpin_change([], NOW), VPIN_CHANGE, "no VPIN history")
    assert_abstains(fx.vpin_change([(ago(1), 0.5)], NOW), VPIN_CHANGE, "one VPIN reading")
    assert_abstains(fx.vpin_change([(ago(100), 0.5), (ago(1), 0.9)], NOW), VPIN_CHANGE, "spans 99 s < 150 s")


def test_vpin_change_abstains_when_the_latest_reading_is_old() -> None:
    f = fx.vpin_change([(ago(900), 0.5), (ago(500), 0.6)], NOW, max_age_s=120.0)
    assert_abstains(f, VPIN_CHANGE, "stale: 500 s old > 120 s")


# --- the book -----------------------------------------------------------------------------------


def test_book_imbalance_is_the_imbalance_itself() -> None:
    f = fx.book_imbalance(imbalance(0.3), NOW)
    assert f.value == 0.3
    assert f.age_s == pytest.approx(1.0)
    assert fx.book_imbalance(imbalance(-0.7), NOW).value == -0.7


def test_book_imbalance_abstains_when_stale_or_missing() -> None:
    assert_abstains(fx.book_imbalance(imbalance(0.3, stale="book 340 s old"), NOW), BOOK_IMBALANCE, "book 340 s old")
    assert_abstains(fx.book_imbalance(imbalance(None), NOW), BOOK_IMBALANCE, "no book imbalance")
    assert_abstains(fx.book_imbalance(imbalance(0.3, age=121.0), NOW), BOOK_IMBALANCE, "121 s old")


def test_microprice_above_mid_reads_bullish_in_half_spreads() -> None:
    f = fx.microprice(imbalance(micro=100.015), quote(100.0, 100.02), NOW)
    assert f.value == pytest.approx(0.5)
    assert fx.microprice(imbalance(micro=100.0), quote(100.0, 100.02), NOW).value == pytest.approx(-1.0)
    assert fx.microprice(imbalance(micro=99.0), quote(100.0, 100.02), NOW).value == -1.0  # clipped


def test_microprice_abstains_with_the_quotes_absent_reason() -> None:
    f = fx.microprice(imbalance(), Absent("market:SPY:quote", "missing"), NOW)
    assert_abstains(f, MICROPRICE)
    assert f.reason == "market:SPY:quote: missing"


def test_microprice_abstains_on_a_one_sided_or_locked_quote() -> None:
    assert_abstains(fx.microprice(imbalance(), quote(100.0, None), NOW), MICROPRICE, "one-sided")
    assert_abstains(fx.microprice(imbalance(), quote(100.0, 100.0), NOW), MICROPRICE, "locked")


def test_microprice_is_as_old_as_the_older_input() -> None:
    old_quote = fx.microprice(imbalance(age=1.0), quote(age=300.0), NOW)
    assert_abstains(old_quote, MICROPRICE, "stale: 300 s old > 120 s")
    assert old_quote.age_s == pytest.approx(300.0)
    assert fx.microprice(imbalance(age=50.0), quote(age=2.0), NOW).age_s == pytest.approx(50.0)


# --- trade flow ---------------------------------------------------------------------------------


def test_three_to_one_buy_volume_reads_plus_half() -> None:
    trades = [trade(10, 300, 1), trade(20, 100, -1), trade(5, 5000, 0)]
    f = fx.order_flow(trades, NOW)
    assert f.value == pytest.approx(0.5)
    assert f.age_s == pytest.approx(5.0)
    assert (f.inputs["buy_volume"], f.inputs["sell_volume"]) == (300, 100)


def test_order_flow_window_is_half_open() -> None:
    trades = [trade(300, 1000, -1), trade(0, 200, 1), trade(-1, 1000, -1)]  # at the start, at now, after now
    assert fx.order_flow(trades, NOW, window_s=300.0).value == 1.0


def test_order_flow_abstains_without_trades_or_volume() -> None:
    assert_abstains(fx.order_flow([], NOW), ORDER_FLOW, "no trades in the last 300 s")
    f = fx.order_flow([trade(400, 100, 1)], NOW)
    assert_abstains(f, ORDER_FLOW, "no trades")
    assert f.age_s == pytest.approx(400.0)
    assert_abstains(fx.order_flow([trade(1, 50, 1)], NOW, min_volume=100), ORDER_FLOW, "need 100")
    assert_abstains(fx.order_flow([trade(1, 500, 0)], NOW), ORDER_FLOW, "0 shares")


def test_stream_rows_read_as_the_trades_they_decode_to() -> None:
    trades = [trade(310, 900, -1), trade(10, 300, 1), trade(20, 100, -1), trade(5, 5000, 0)]
    rows = [(t.ts.timestamp(), t.price, t.size, t.side) for t in trades]
    assert fx.order_flow_rows(rows, NOW) == fx.order_flow(trades, NOW)
    assert fx.order_flow_rows(rows, NOW).value == pytest.approx(0.5)
    assert fx.order_flow_rows(rows, NOW, window_s=400.0).value == pytest.approx((300 - 1000) / 1300)


def test_momentum_flow_follows_the_recent_return() -> None:
    assert fx.flow_cluster(clusters("momentum"), 0.001, NOW).value == pytest.approx(0.5)
    assert fx.flow_cluster(clusters("momentum"), -0.004, NOW).value == -1.0


def test_mean_reversion_flow_fades_the_recent_return() -> None:
    assert fx.flow_cluster(clusters("mean_reversion"), 0.001, NOW).value == pytest.approx(-0.5)
    assert fx.flow_cluster(clusters("mean_reversion"), -0.001, NOW).value == pytest.approx(0.5)


def test_hedging_flow_is_a_real_zero() -> None:
    f = fx.flow_cluster(clusters("hedging"), 0.003, NOW)
    assert f.value == 0.0
    assert not f.abstains


def test_flow_cluster_abstains_without_label_return_or_freshness() -> None:
    assert_abstains(fx.flow_cluster(clusters(None, reason="12 windows < 20"), 0.001, NOW), FLOW_CLUSTER,
                    "12 windows < 20")
    assert_abstains(fx.flow_cluster(clusters("momentum"), None, NOW), FLOW_CLUSTER, "no recent return")
    assert_abstains(fx.flow_cluster(clusters("momentum", age=200.0), 0.001, NOW), FLOW_CLUSTER, "stale")
    assert_abstains(fx.flow_cluster(clusters("unassigned"), 0.001, NOW), FLOW_CLUSTER, "unknown flow label")
    assert_abstains(fx.flow_cluster(GONE, 0.001, NOW), FLOW_CLUSTER, "analytics:SPY:x: missing")


# --- volatility and news ------------------------------------------------------------------------


def test_rich_implied_vol_reads_negative() -> None:
    assert fx.iv_rv(regime(0.05), NOW).value == pytest.approx(-math.tanh(1.0))
    assert (fx.iv_rv(regime(-0.02), NOW).value or 0.0) > 0


def test_iv_rv_abstains_without_the_difference() -> None:
    assert_abstains(fx.iv_rv(regime(None), NOW), IV_RV, "no IV - RV")
    assert_abstains(fx.iv_rv(regime(0.05, age=500.0), NOW), IV_RV, "stale")


@pytest.mark.parametrize(("score", "expected"), [(0.35, 1.0), (0.175, 0.5), (-0.7, -1.0), (0.0, 0.0)])
def test_news_is_rescaled_to_alpha_vantages_range(score: float, expected: float) -> None:
    assert fx.news(sentiment(score), NOW).value == pytest.approx(expected)


def test_news_abstains_without_articles_score_or_freshness() -> None:
    assert_abstains(fx.news(sentiment(None, articles=0), NOW), NEWS, "no news articles")
    assert_abstains(fx.news(sentiment(None, articles=3), NOW), NEWS, "no sentiment score")
    assert_abstains(fx.news(sentiment(0.2, age=5 * 3600.0), NOW), NEWS, "stale: 18000 s old > 14400 s")
    assert fx.news(sentiment(0.2, age=3 * 3600.0), NOW).value is not None


# --- bars ---------------------------------------------------------------------------------------


def test_last_half_hour_reads_the_days_return_into_the_close() -> None:
    bars = [bar(180, 100.2), bar(120, 100.5), bar(60, 101.0, complete=False), bar(30, 102.0)]
    f = fx.last_half_hour(bars, 100.0, NOW)
    assert f.value == pytest.approx(math.tanh(1.0))  # the 120 s bar: the others are open or not yet ended
    assert f.age_s == pytest.approx(60.0)
    assert (fx.last_half_hour([bar(120, 99.0)], 100.0, NOW).value or 0.0) < 0


def test_last_half_hour_abstains_without_prior_close_or_bars() -> None:
    assert_abstains(fx.last_half_hour([bar(120, 100.5)], None, NOW), LAST_HALF_HOUR, "no prior close")
    assert_abstains(fx.last_half_hour([], 100.0, NOW), LAST_HALF_HOUR, "no complete bar")
    assert_abstains(fx.last_half_hour([bar(30, 101.0)], 100.0, NOW), LAST_HALF_HOUR, "no complete bar")


def test_recent_return_spans_the_window_of_closed_bars() -> None:
    bars = [bar(1200, 90.0, open_=80.0), bar(600, 100.5, open_=100.0), bar(120, 101.0, open_=100.5)]
    assert fx.recent_return(bars, NOW, window_s=900.0) == pytest.approx(0.01)
    assert fx.recent_return([bar(1200, 100.0)], NOW, window_s=900.0) is None
    assert fx.recent_return([], NOW) is None


# --- the closing auction ------------------------------------------------------------------------


def test_buy_imbalance_reads_positive_as_a_share_of_paired() -> None:
    f = fx.auction(AuctionImbalance(T - 2, imbalance=50_000.0, paired=100_000.0), NOW)
    assert f.value == pytest.approx(0.5)
    assert f.age_s == pytest.approx(2.0)
    assert fx.auction(AuctionImbalance(T - 2, imbalance=-300_000.0, paired=100_000.0), NOW).value == -1.0


def test_auction_abstains_without_data() -> None:
    assert_abstains(fx.auction(Absent("market:SPY:auction", "missing"), NOW), AUCTION, "no auction data",
                    "market:SPY:auction: missing")
    assert_abstains(fx.auction(AuctionImbalance(T, imbalance=None, paired=1e5), NOW), AUCTION, "no auction data")
    assert_abstains(fx.auction(AuctionImbalance(T, imbalance=1e4, paired=None), NOW), AUCTION, "no auction data")
    assert_abstains(fx.auction(AuctionImbalance(T, imbalance=1e4, paired=0.0), NOW), AUCTION, "no auction data")


def test_auction_abstains_when_stale_or_below_the_floor() -> None:
    assert_abstains(fx.auction(AuctionImbalance(T - 300, imbalance=1e4, paired=1e5), NOW), AUCTION, "stale")
    assert_abstains(fx.auction(AuctionImbalance(T, imbalance=1e4, paired=1e5), NOW, min_ratio=0.2), AUCTION,
                    "below the floor")


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        fx.vpin_level(vpin(0.5), NOW.replace(tzinfo=None))


# --- every factor stays in [-1, 1] or abstains with a reason, for any finite input --------------

finite = st.floats(allow_nan=False, allow_infinity=False)
maybe_finite = st.none() | finite
ages = st.floats(min_value=-60.0, max_value=1e6, allow_nan=False)
texts = st.text(max_size=10)


@st.composite
def gex_values(draw: st.DrawFn) -> GexSnapshot | Absent:
    if draw(st.booleans()) and draw(st.booleans()):
        return GONE
    numbers = {n: draw(maybe_finite) for n in GEX_NUMBERS}
    return gex(numbers, {"skew_reason": draw(texts)}, spot=draw(st.floats(min_value=1e-9, max_value=1e12)),
               age=draw(ages), stale=draw(st.sampled_from(["", "chain old"])))


def in_range(f: Factor) -> bool:
    if f.value is None:
        return bool(f.reason)
    return -1.0 <= f.value <= 1.0 and f.reason == "" and math.isfinite(f.value)


@given(gex_values(), ages)
def test_positioning_factors_stay_in_range(g: GexSnapshot | Absent, max_age: float) -> None:
    for f in (fx.gamma_mode(g, NOW, max_age_s=max_age), fx.walls(g, NOW, max_age_s=max_age),
              fx.skew_0dte(g, NOW, max_age_s=max_age)):
        assert in_range(f), f


@given(maybe_finite, maybe_finite, maybe_finite, maybe_finite, maybe_finite, ages, ages)
def test_book_factors_stay_in_range(imb: float | None, micro: float | None, bid: float | None, ask: float | None,
                                    v: float | None, age: float, qage: float) -> None:
    book = Imbalance(imb, micro, 0.01, 5, ago(age), None, "")
    assert in_range(fx.book_imbalance(book, NOW))
    assert in_range(fx.microprice(book, Quote(as_of=T - qage, bid=bid, ask=ask), NOW))
    assert in_range(fx.vpin_level(vpin(v, age=age), NOW))


@given(st.lists(st.tuples(ages, finite), max_size=8), st.floats(min_value=1.0, max_value=1e5))
def test_vpin_change_stays_in_range(points: list[tuple[float, float]], lookback: float) -> None:
    assert in_range(fx.vpin_change([(ago(a), v) for a, v in points], NOW, lookback_s=lookback))


@given(st.lists(st.tuples(ages, st.floats(min_value=0.0, max_value=1e12), st.sampled_from([-1, 0, 1])), max_size=10),
       st.floats(min_value=0.0, max_value=1e6))
def test_order_flow_stays_in_range(prints: list[tuple[float, float, int]], min_volume: float) -> None:
    f = fx.order_flow([trade(a, s, side) for a, s, side in prints], NOW, min_volume=min_volume)
    assert in_range(f)
    rows = [(T - a, 500.0, s, side) for a, s, side in prints]
    assert in_range(fx.order_flow_rows(rows, NOW, min_volume=min_volume))


@given(st.sampled_from(["momentum", "hedging", "mean_reversion", "unassigned", None]), maybe_finite, maybe_finite,
       maybe_finite, st.integers(0, 10**6), ages)
def test_flow_vol_and_news_factors_stay_in_range(label: str | None, ret: float | None, ivrv: float | None,
                                                 score: float | None, articles: int, age: float) -> None:
    assert in_range(fx.flow_cluster(clusters(label, age=age), ret, NOW))
    assert in_range(fx.iv_rv(regime(ivrv, age=age), NOW))
    assert in_range(fx.news(sentiment(score, articles=articles, age=age), NOW))


@given(st.lists(st.tuples(st.floats(min_value=-600.0, max_value=5000.0), st.floats(min_value=1e-6, max_value=1e9),
                          st.floats(min_value=1e-6, max_value=1e9), st.booleans()), max_size=8),
       maybe_finite)
def test_bar_factors_stay_in_range(rows: list[tuple[float, float, float, bool]], prior: float | None) -> None:
    bars = [bar(a, c, open_=o, complete=done) for a, c, o, done in rows]
    assert in_range(fx.last_half_hour(bars, prior, NOW))
    ret = fx.recent_return(bars, NOW)
    assert ret is None or math.isfinite(ret)


@given(maybe_finite, st.none() | st.floats(min_value=0.0, max_value=1e300), ages, st.floats(0.0, 2.0))
def test_auction_stays_in_range(imb: float | None, paired: float | None, age: float, floor: float) -> None:
    assert in_range(fx.auction(AuctionImbalance(T - age, imbalance=imb, paired=paired), NOW, min_ratio=floor))


def test_every_factor_names_itself() -> None:
    got: dict[str, Any] = {
        GAMMA_MODE: fx.gamma_mode(GONE, NOW), WALLS: fx.walls(GONE, NOW), SKEW_0DTE: fx.skew_0dte(GONE, NOW),
        VPIN_LEVEL: fx.vpin_level(GONE, NOW), VPIN_CHANGE: fx.vpin_change([], NOW),
        BOOK_IMBALANCE: fx.book_imbalance(GONE, NOW), MICROPRICE: fx.microprice(GONE, GONE, NOW),
        ORDER_FLOW: fx.order_flow([], NOW), FLOW_CLUSTER: fx.flow_cluster(GONE, None, NOW),
        IV_RV: fx.iv_rv(GONE, NOW), NEWS: fx.news(GONE, NOW), LAST_HALF_HOUR: fx.last_half_hour([], None, NOW),
        AUCTION: fx.auction(GONE, NOW)}
    for name, f in got.items():
        assert f.name == name
        assert f.abstains
