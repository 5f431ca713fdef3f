"""String parsing, junk-row reasons, qc's re-solved IV and Greeks, divergence, and news aggregation."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.analytics.greeks import bsm
from qc.core.clock import settlement_instant
from qc.ingest import chain_parse, news
from qc.ingest.chain_parse import divergence, parse_chain
from qc.ingest.codec import PayloadRefused

# Reference §1.5: IBM, session 2026-09-24, expiry 2026-10-16; AV's Greeks are BSM at T = 22/365,
# S = 227.05984, r = 0.03888, q = 0 to 5 decimals.
EXPIRY = date(2026, 10, 16)
NOW = settlement_instant(EXPIRY) - timedelta(days=22)  # qc's T is then exactly 22/365 too
S, R = 227.05984, 0.03888
AV_ROWS = {
    "C": {"implied_volatility": "0.32707", "delta": "0.46377", "gamma": "0.02179", "theta": "-0.17517",
          "vega": "0.22147", "rho": "0.05975"},
    "P": {"implied_volatility": "0.32707", "delta": "-0.53623", "gamma": "0.02179", "theta": "-0.15077",
          "vega": "0.22147", "rho": "-0.07856"},
}


def row(right: str = "C", strike: float = 230.0, expiry: date = EXPIRY, vol: float = 0.32707,
        **over: str) -> dict[str, str]:
    price = float(bsm(S, strike, 22 / 365, R, 0.0, vol, right == "C").price)
    out = {"contractID": f"IBM{expiry:%y%m%d}{right}{round(strike * 1000):08d}", "symbol": "IBM",
           "expiration": expiry.isoformat(), "strike": f"{strike:.2f}", "type": "call" if right == "C" else "put",
           "last": f"{price:.2f}", "mark": repr(price), "bid": f"{price - 0.05:.2f}", "bid_size": "10",
           "ask": f"{price + 0.05:.2f}", "ask_size": "10", "volume": "35", "open_interest": "517",
           "date": "2026-09-24", **AV_ROWS[right]}
    out.update(over)
    return out


def test_strings_parse_and_qc_greeks_match_avs_at_the_same_t() -> None:
    parsed = parse_chain([row("C"), row("P")], S, NOW, R, 0.0)
    assert len(parsed) == 2 and not parsed.dropped
    np.testing.assert_allclose(parsed.t_years, 22 / 365, rtol=1e-15)
    np.testing.assert_allclose(parsed.iv, 0.32707, atol=1e-9)
    for i, right in enumerate("CP"):
        for name in ("delta", "gamma", "theta", "vega"):
            # AV rounds to 5 dp and S, r are the reference's fit: agreement to a few 1e-5
            assert parsed.greeks[name][i] == pytest.approx(float(AV_ROWS[right][name]), abs=3e-5), (right, name)
            assert parsed.vendor[name][i] == float(AV_ROWS[right][name])
    assert parsed.num["open_interest"].tolist() == [517, 517] and not parsed.divergent.any()
    out = chain_parse.chain_rows(parsed)
    assert out[0].right == "C" and out[0].expiry == date(2026, 10, 16) and out[0].delta_vendor == 0.46377
    assert out[0].iv_vendor == 0.32707 and out[0].open_interest == 517 and out[0].divergent is False


def test_missing_vendor_greeks_are_none_and_never_divergent() -> None:
    bare = {k: v for k, v in row().items() if k not in AV_ROWS["C"]}
    parsed = parse_chain([bare], S, NOW, R, 0.0)
    assert len(parsed) == 1 and not parsed.divergent.any()
    assert chain_parse.chain_rows(parsed)[0].gamma_vendor is None


@pytest.mark.parametrize(("bad", "reason"), [
    ({"strike": ""}, "unparseable"),
    ({"bid": "n/a"}, "unparseable"),
    ({"bid": "None"}, "unparseable"),
    ({"bid": "-"}, "unparseable"),
    ({"bid": None}, "missing_field"),
    ({"bid": True}, "wrong_type"),
    ({"ask": ["1.0"]}, "wrong_type"),
    ({"open_interest": "nan"}, "not_finite"),
    ({"strike": "1e999"}, "not_finite"),
    ({"open_interest": 10**400}, "overflow"),  # a JSON integer no float holds
    ({"expiration": "2099-99-99"}, "unparseable"),
    ({"expiration": "+002026-10"}, "unparseable"),  # numpy would read a month here
    ({"type": "straddle"}, "unparseable"),
    ({"symbol": "QQQ"}, "other_symbol"),
    ({"bid": "0.00", "implied_volatility": "0"}, "no_two_sided_quote"),  # no bid and no usable vendor IV
    ({"bid": "0.00", "implied_volatility": "25"}, "no_two_sided_quote"),  # the vendor IV is out of (0, 20)
    ({"ask": "0.00"}, "no_two_sided_quote"),
    ({"bid": "9.00", "ask": "8.00"}, "no_two_sided_quote"),
    ({"mark": "0.01"}, "iv_unsolved"),  # far below intrinsic of a 220 call at 227
    ({"expiration": "2026-11-20"}, "untraded_expiry"),
    ({"open_interest": "-1"}, "negative_oi"),
    ({"volume": "-3"}, "negative_volume"),
    ({"bid": "-5.00"}, "negative_bid"),
    ({"mark": "-1"}, "negative_mark"),
    ({"volume": "1.5"}, "not_integer"),
    ({"open_interest": str(2**53)}, "overflow"),
    ({"open_interest": "9223372036854775808"}, "overflow"),  # int64 would wrap it negative
    ({"strike": "-220"}, "strike_not_positive"),
    ({"strike": "1e300"}, "strike_absurd"),
    ({"ask": "100000"}, "price_absurd"),
    ({}, "duplicate_contract"),  # the same (expiry, strike, right) twice, identical: the first is kept
])
def test_junk_rows_are_dropped_with_one_counted_reason(bad: dict[str, object], reason: str) -> None:
    base = row("C", strike=220.0)
    parsed = parse_chain([base, {**base, **bad}], S, NOW, R, 0.0, wanted={EXPIRY}, symbol="IBM")
    assert len(parsed) == 1 and dict(parsed.dropped) == {reason: 1}
    assert parsed.num["bid"].tolist() == [float(base["bid"])]  # the good row, untouched


def test_conflicting_copies_are_all_dropped_and_other_expiry_rows_too() -> None:
    base = row("C", strike=220.0)
    other = row("P", strike=230.0)
    parsed = parse_chain([base, other, {**base, "bid": "7.00"}], S, NOW, R, 0.0)
    assert len(parsed) == 1 and dict(parsed.dropped) == {"conflicting_contract": 2}
    later = EXPIRY + timedelta(days=7)
    rows = [row("C", strike=220.0), row("P", strike=220.0, expiry=later)]
    asked = parse_chain(rows, S, NOW, R, 0.0, wanted={EXPIRY, later}, requested=[EXPIRY, EXPIRY])
    assert len(asked) == 1 and dict(asked.dropped) == {"other_expiry": 1}


def test_unusable_vendor_values_are_nulled_and_counted_not_stored() -> None:
    rows = [row("C", strike=220.0, delta="1.7", gamma="-0.1"), row("P", strike=230.0, implied_volatility="inf"),
            row("C", strike=225.0, vega=False, rho="NaN")]  # type: ignore[arg-type]  # a JSON false
    parsed = parse_chain(rows, S, NOW, R, 0.0)
    assert len(parsed) == 3 and not parsed.dropped
    assert dict(parsed.vendor_refused) == {"vendor_out_of_range": 2, "vendor_not_finite": 2, "vendor_wrong_type": 1}
    out = chain_parse.chain_rows(parsed)
    assert (out[0].delta_vendor, out[0].gamma_vendor, out[1].iv_vendor, out[2].vega_vendor) == (None,) * 4
    assert parsed.rejects() == parsed.vendor_refused


def test_expired_and_out_of_range_rows() -> None:
    junk_iv = row("C", strike=100.0, vol=4.2)  # the deep-ITM junk of reference §1.5
    dropped = parse_chain([row(), junk_iv], S, NOW, R, 0.0).dropped
    assert dropped["iv_out_of_range"] == 1
    after = parse_chain([row()], S, settlement_instant(EXPIRY), R, 0.0)
    assert len(after) == 0 and after.dropped["expired"] == 1
    missing = {k: v for k, v in row().items() if k != "mark"}
    assert dict(parse_chain([missing, "not a row"], S, NOW, R, 0.0).dropped) == {"missing_field": 1,
                                                                                "not_an_object": 1}


def test_divergence_thresholds() -> None:
    delta = np.array([0.50, 0.50, 0.50, 0.50, 0.50, 0.50])
    gamma = np.array([0.02, 0.02, 0.02, 0.02, 1e-5, 0.02])
    v_delta = np.array([0.56, 0.46, 0.50, 0.50, 0.50, np.nan])
    v_gamma = np.array([0.02, 0.02, 0.026, 0.024, 0.0, 0.5])
    assert divergence(delta, gamma, v_delta, v_gamma).tolist() == [True, False, True, False, False, False]


def test_zero_dte_vendor_greeks_are_flagged() -> None:
    now = settlement_instant(EXPIRY) - timedelta(hours=3)
    price = float(bsm(S, 227.0, 3 / (365 * 24), R, 0.0, 0.3, True).price)
    zero = row("C", strike=227.0, mark=repr(price), bid=f"{price - 0.05:.2f}", ask=f"{price + 0.05:.2f}",
               delta="1.00000", gamma="0.00000", theta="0.00000", vega="0.00000")  # AV's T = 0 Greeks
    parsed = parse_chain([zero], S, now, R, 0.0)
    assert len(parsed) == 1 and parsed.divergent.tolist() == [True]


@given(st.lists(st.one_of(
    st.builds(lambda r, k, m: row(r, strike=k, mark=m), st.sampled_from("CP"), st.floats(150, 300),
              st.text(alphabet="0123456789.-e", max_size=8)),
    st.dictionaries(st.sampled_from(["expiration", "type", "strike", "bid", "ask", "mark", "volume",
                                     "open_interest", "delta", "gamma"]),
                    st.one_of(st.text(max_size=6), st.integers(), st.none(), st.floats())),
), max_size=30))
def test_every_row_is_kept_or_counted_and_nothing_raises(rows: list[dict[str, object]]) -> None:
    parsed = parse_chain(rows, S, NOW, R, 0.0)
    assert len(parsed) + sum(parsed.dropped.values()) == len(rows)
    assert np.isfinite(parsed.iv).all() and np.isfinite(parsed.greeks["gamma"]).all()


def test_news_relevance_weighted_and_labelled() -> None:
    def article(score: str, relevance: str, when: str, ticker: str = "SPY") -> dict[str, object]:
        return {"time_published": when, "ticker_sentiment": [
            {"ticker": ticker, "relevance_score": relevance, "ticker_sentiment_score": score}]}

    feed = [article("0.3", "0.8", "20261124T140000"), article("-0.1", "0.2", "20261124T150000"),
            article("0.9", "0.05", "20261124T160000"), article("0.9", "0.9", "20261124T170000", ticker="QQQ"),
            article("oops", "0.9", "20261124T120000")]
    s = news.aggregate({"feed": feed}, "SPY", NOW)
    assert s.score == pytest.approx((0.3 * 0.8 - 0.1 * 0.2) / 1.0) and s.label == "Somewhat-Bullish"
    assert (s.articles, s.skipped, s.latest_published) == (2, 1, "20261124T150000")
    empty = news.aggregate({"feed": []}, "SPY", NOW)  # what the cycle passes for AV's "No articles found"
    assert (empty.score, empty.label, empty.articles, empty.to_redis()["score"]) == (None, "none", 0, "")
    assert [news.label(x) for x in (-0.35, -0.2, 0.0, 0.15, 0.35)] == [
        "Bearish", "Somewhat-Bearish", "Neutral", "Somewhat-Bullish", "Bullish"]


@pytest.mark.parametrize(("body", "reason"), [
    ({"Information": "No articles found."}, "missing_field"),  # never an ok body: the cycle passes {"feed": []}
    ({"feed": 7}, "wrong_type"),
    ({"feed": "oops"}, "wrong_type"),
    ({"feed": {"a": 1}}, "wrong_type"),
])
def test_a_body_without_a_feed_list_is_refused_whole(body: dict[str, object], reason: str) -> None:
    with pytest.raises(PayloadRefused) as refused:
        news.aggregate(body, "SPY", NOW)
    assert (refused.value.surface, refused.value.reason) == ("av.news", reason)


def test_bad_news_entries_cost_only_their_article() -> None:
    def article(score: object, relevance: object = "0.8", url: str | None = None, **over: object) -> dict[str, object]:
        return {"url": url, "time_published": "20261124T140000", **over,
                "ticker_sentiment": [{"ticker": "SPY", "relevance_score": relevance, "ticker_sentiment_score": score}]}

    good = article("0.5", url="u1")
    feed = [good, dict(good), article("0.2", url="u2"), article("-0.9", url="u2"), article("NaN"), article("1e999"),
            article(None), article(True), article("1.5"), article("0.1", relevance="-0.3"), 5, None,
            {"ticker_sentiment": 3}, {"title": "no entries"}, article("0.4", time_published="yesterday")]
    rejected: Counter[str] = Counter()
    s = news.aggregate({"feed": feed}, "SPY", NOW, rejected)
    assert s.score == pytest.approx(0.45) and s.articles == 2  # u1 once, and the article with a bad time
    assert dict(rejected) == {"duplicate_article": 1, "conflicting_article": 2, "not_finite": 2, "missing_field": 2,
                              "wrong_type": 2, "out_of_range": 2, "not_an_object": 2, "bad_time": 1}
    assert s.skipped == sum(rejected.values()) and s.label == "Bullish"
    twice = {"ticker_sentiment": [{"ticker": "SPY", "relevance_score": "0.5", "ticker_sentiment_score": "0.3"},
                                  {"ticker": "SPY", "relevance_score": "0.5", "ticker_sentiment_score": "-0.3"}]}
    rejected.clear()
    assert news.aggregate({"feed": [twice]}, "SPY", NOW, rejected).score is None
    assert dict(rejected) == {"conflicting_entry": 2}


def test_global_quote_price_is_read_with_distrust() -> None:
    def quote(**fields: object) -> dict[str, object]:
        return {"Global Quote": {"01. symbol": "SPY", "05. price": "557.1400", **fields}}

    assert chain_parse.global_quote_price(quote(), "SPY") == 557.14
    cases: list[tuple[dict[str, object], str]] = [
             (quote(**{"05. price": "inf"}), "not_finite"), (quote(**{"05. price": "1e999"}), "not_finite"),
             (quote(**{"05. price": "None"}), "unparseable"), (quote(**{"05. price": None}), "missing_field"),
             (quote(**{"05. price": [1]}), "wrong_type"), (quote(**{"01. symbol": "QQQ"}), "other_symbol"),
             ({"Global Quote": "557"}, "wrong_type"), ({"feed": []}, "missing_field"),
             ({"Global Quote - DATA DELAYED BY 15 MINUTES": {"05. price": "557"}}, "delayed_quote")]
    for body, reason in cases:
        with pytest.raises(PayloadRefused) as refused:
            chain_parse.global_quote_price(body, "SPY")
        assert (refused.value.surface, refused.value.reason) == ("av.quote", reason), body


def test_spot_must_fit_the_chain_by_strikes_and_by_put_call_parity() -> None:
    strikes = [215.0, 220.0, 225.0, 227.5, 230.0, 235.0, 240.0]
    rows = [row(r, strike=k) for k in strikes for r in "CP"]  # priced at S = 227.05984
    cols = chain_parse.read_rows(rows, None, Counter())
    assert chain_parse.parity_spot(cols, NOW, R, 0.0) == pytest.approx(S, rel=2e-4)
    assert chain_parse.spot_problem(S, cols, NOW, R, 0.0) == ""
    assert chain_parse.spot_problem(S * 1.003, cols, NOW, R, 0.0) == ""
    assert chain_parse.spot_problem(S * 1.02, cols, NOW, R, 0.0) == "mismatch_vs_parity"  # another market's quote
    assert chain_parse.spot_problem(S * 3, cols, NOW, R, 0.0) == "implausible_vs_strikes"
    assert chain_parse.spot_problem(1e-7, cols, NOW, R, 0.0) == "too_small"
    assert chain_parse.spot_problem(float("inf"), cols, NOW, R, 0.0) == "not_finite"
    calls_only = chain_parse.read_rows([row("C", strike=k) for k in strikes], None, Counter())
    assert chain_parse.parity_spot(calls_only, NOW, R, 0.0) is None  # nothing to measure: strikes alone judge
    assert chain_parse.spot_problem(S * 1.02, calls_only, NOW, R, 0.0) == ""


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_chain([row()], S, datetime(2026, 9, 24, 14), R, 0.0)  # noqa: DTZ001


def test_fast_and_per_value_paths_read_the_same_numbers() -> None:
    rows = [row(r, strike=k) for r in "CP" for k in (200.0, 225.5, 260.0)]
    fast, slow = chain_parse._raw_fast(rows), chain_parse._raw_slow(rows)
    assert (fast.expiry == slow.expiry).all() and fast.kind.tolist() == slow.kind.tolist()
    assert fast.symbol.tolist() == slow.symbol.tolist() and fast.objects.all() and slow.objects.all()
    for name in chain_parse.NUMERIC + chain_parse.VENDOR:
        np.testing.assert_array_equal(fast.values[name], slow.values[name], err_msg=name)
    for name in fast.codes:
        np.testing.assert_array_equal(fast.codes[name], slow.codes[name], err_msg=name)
