"""`qc chains` distrusts Alpha Vantage and stale quotes: garbled payloads against the simulator's AV server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from qc.core import keys
from qc.ingest.codec import OptionChain, Quote
from qc.ingest.expiries import traded_expiries
from qc.runtime.store import Store
from qc.sim.market.market import SimMarket

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


def put_quote(store: Store, symbol: str, mid: float, age_s: float = 1.0) -> None:
    store.hset(keys.quote(symbol), Quote((NOW - timedelta(seconds=age_s)).timestamp(), mid - 0.01, mid + 0.01,
                                         last=mid).to_redis())


def chain(store: Store, symbol: str = "SPY") -> OptionChain:
    key = keys.option_chain(symbol)
    got = OptionChain.from_redis(store.get(key), key=key.name)
    assert isinstance(got, OptionChain), got
    return got


def rejects(store: Store, surface: str) -> dict[str, int]:
    return {k: int(v) for k, v in store.hgetall(keys.input_rejects()).items() if k.startswith(f"{surface}:")}


def test_a_quote_left_by_the_previous_market_never_prices_the_first_chain(
        store: Store, redis_server: RedisServer, av: ScriptedAV, market: SimMarket) -> None:
    true_mid = (market.quote("SPY").bid + market.quote("SPY").ask) / 2
    put_quote(store, "SPY", true_mid * 1.02)  # 1 s old, but written before this process started
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    cycle(NOW)
    doc = chain(store)
    assert doc.spot_source == "alpha_vantage_global_quote" and doc.spot == pytest.approx(true_mid, rel=1e-4)
    # the live stream then writes this market's quote: it is used from the next cycle on
    put_quote(store, "SPY", true_mid, age_s=-59)
    cycle(NOW + timedelta(seconds=60))
    assert chain(store).spot_source == "ib_quote" and av.stats()["by_function"]["GLOBAL_QUOTE"] == 1


def test_a_live_quote_that_contradicts_the_chain_falls_back_to_global_quote(
        store: Store, redis_server: RedisServer, av: ScriptedAV, market: SimMarket) -> None:
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    put_quote(store, "SPY", market.quote("SPY").last * 1.02)  # fresh, but another market's price
    cycle(NOW)
    doc = chain(store)
    assert doc.spot_source == "alpha_vantage_global_quote" and doc.spot == round(market.quote("SPY").last, 4)


@pytest.mark.parametrize(("price", "reason"), [("inf", "not_finite"), ("0.0000001", "too_small"),
                                               ("1e999", "not_finite"), ("-", "unparseable"),
                                               ("5571.40", "implausible_vs_strikes"), ("560.50", "mismatch_vs_parity")])
def test_a_global_quote_that_cannot_price_the_chain_keeps_the_last_one(
        price: str, reason: str, store: Store, redis_server: RedisServer, av: ScriptedAV) -> None:
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    cycle(NOW)  # no IB quote: GLOBAL_QUOTE prices the first chain
    good = store.get(keys.option_chain("SPY"))
    body = av.real_body("GLOBAL_QUOTE", symbol="SPY")
    av.script_for("GLOBAL_QUOTE", {"Global Quote": {**body["Global Quote"], "05. price": price}})
    cycle(NOW + timedelta(seconds=60))
    assert store.get(keys.option_chain("SPY")) == good
    assert rejects(store, "av.quote") == {f"av.quote:{reason}": 1}
    assert "SPY chain" in cycle.report.failed and reason in cycle.report.failed["SPY chain"]


def garble(rows: list[dict[str, Any]], other_expiry: str) -> tuple[list[Any], set[tuple[str, float, str]]]:
    """Ten bad rows among the good ones, and the contracts they may cost (their own)."""
    r = [row for row in rows if float(row["bid"]) > 0][:9]  # two-sided rows, so a copy conflicts on the bid
    bad = [dict(r[0]), {**r[1], "bid": str(float(r[1]["bid"]) + 0.5)},  # an identical copy, a conflicting one
           {**r[2], "expiration": other_expiry}, {**r[3], "open_interest": "-517"},
           {**r[4], "open_interest": "9223372036854775808"}, {**r[5], "strike": "1e300"},
           {**r[6], "bid": "-0.05"}, {**r[7], "volume": "NaN"}, {**r[8], "mark": None}, "<tr>"]
    hurt = {(row["expiration"], float(row["strike"]), row["type"]) for row in r}
    return [*rows, *bad], hurt


def contracts(doc: OptionChain) -> set[tuple[str, float, str]]:
    return {(r.expiry.isoformat(), r.strike, "call" if r.right == "C" else "put") for r in doc.rows}


def test_garbled_rows_are_dropped_counted_and_cost_no_good_row(store: Store, redis_server: RedisServer,
                                                               av: ScriptedAV) -> None:
    dates = [d.isoformat() for d in traded_expiries(NOW).dates]
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    cycle(NOW)
    baseline = contracts(chain(store))  # the same payloads, spot and instant, ungarbled
    rows = av.real_body("REALTIME_OPTIONS", symbol="SPY", require_greeks="true", expiration=dates[-1])["data"]
    payload, hurt = garble(rows, other_expiry=dates[0])
    av.script_for("REALTIME_OPTIONS", *[av.real_body("REALTIME_OPTIONS", symbol="SPY", require_greeks="true",
                                                     expiration=d) for d in dates[:-1]],
                  {"endpoint": "Realtime Options", "message": "success", "data": payload})
    cycle(NOW)
    doc = chain(store)
    assert doc.dropped["other_expiry"] == 1 and baseline - hurt <= contracts(doc)
    assert len({r.contract for r in doc.rows}) == len(doc.rows)
    for reason in ("duplicate_contract", "conflicting_contract", "other_expiry", "negative_oi", "overflow",
                   "strike_absurd", "negative_bid", "not_finite", "missing_field", "not_an_object"):
        assert doc.dropped.get(reason, 0) >= 1, reason
        assert rejects(store, "av.chain")[f"av.chain:{reason}"] >= 1, reason
    assert all(0 <= r.open_interest < 10**8 and r.bid >= 0 and r.strike < 10 * doc.spot for r in doc.rows)
    assert not doc.rejected  # the reader refuses nothing the writer stored


def test_a_news_feed_that_is_a_number_does_not_stop_the_next_symbol(store: Store, redis_server: RedisServer,
                                                                    av: ScriptedAV) -> None:
    av.script_for("NEWS_SENTIMENT", {"items": "1", "feed": 5})  # SPY's news call gets it
    cycle = cycle_for(store, settings_for(redis_server.url, av), symbols=("SPY", "QQQ"))
    cycle(NOW)
    assert chain(store, "SPY").symbol == "SPY" and chain(store, "QQQ").symbol == "QQQ"
    assert not store.hgetall(keys.news_sentiment("SPY")) and store.hgetall(keys.news_sentiment("QQQ"))
    assert rejects(store, "av.news") == {"av.news:wrong_type": 1}
    assert list(cycle.report.failed) == ["SPY news"] and cycle.report.stored == ["SPY", "QQQ"]
    line = cycle.report.failure_line(("SPY", "QQQ"))
    assert line.startswith("chains stored for SPY, QQQ, but not everything") and "SPY news" in line


def test_a_news_article_with_a_number_for_ticker_sentiment_costs_only_itself(
        store: Store, redis_server: RedisServer, av: ScriptedAV) -> None:
    body = av.real_body("NEWS_SENTIMENT", tickers="SPY", sort="LATEST", limit="50")
    feed = [*body["feed"], {**body["feed"][0], "url": "https://x/1", "ticker_sentiment": 3},
            {**body["feed"][0], "url": "https://x/2", "ticker_sentiment": [
                {"ticker": "SPY", "relevance_score": "0.9", "ticker_sentiment_score": "NaN"}]}]
    av.script_for("NEWS_SENTIMENT", {**body, "feed": feed})
    cycle_for(store, settings_for(redis_server.url, av))(NOW)
    news = store.hgetall(keys.news_sentiment("SPY"))
    assert int(news["articles"]) > 0 and -1 <= float(news["score"]) <= 1 and news["skipped"] == "2"
    assert rejects(store, "av.news") == {"av.news:wrong_type": 1, "av.news:not_finite": 1}


def test_a_truncated_body_is_counted_as_malformed_json(store: Store, redis_server: RedisServer,
                                                       av: ScriptedAV) -> None:
    av.malformed_next(1)
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    cycle(NOW)
    assert rejects(store, "av.chain") == {"av.chain:malformed_json": 1}
    assert json.loads(store.hget(keys.alpha_vantage_metrics(), "malformed") or "0") == 1
    # where the parser gives up depends on the simulated chain's body (its length), not on the code under test
    assert re.fullmatch(
        r"no chain stored for SPY; every one of 1 Alpha Vantage requests failed \(SPY chain: Alpha Vantage "
        r"REALTIME_OPTIONS SPY: malformed \(not JSON \([^()]+ at char \d+\)\)\)", cycle.report.failure_line(("SPY",)))
