"""`qc chains` cycles against the simulator's Alpha Vantage server on loopback and a real redis-server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from qc.analytics.greeks import bsm, years_to_expiry
from qc.core import keys
from qc.core.clock import FakeClock
from qc.ingest.codec import Quote
from qc.ingest.cycle import chains as chains_cycle
from qc.ingest.expiries import traded_expiries
from qc.runtime.store import Store
from qc.runtime.worker import Worker
from qc.sim.av import payloads as av_payloads
from qc.sim.market.market import SimMarket

from .av_chains_harness import NOW, ScriptedAV, cycle_for, settings_for, sim_market
from .conftest import RedisServer

NOTE = ("Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls "
        "per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call "
        "frequency.")


@pytest.fixture(scope="module")
def market() -> SimMarket:
    return sim_market()


@pytest.fixture
def av(market: SimMarket) -> Iterator[ScriptedAV]:
    server = ScriptedAV(market, rpm=1000, not_entitled_keys={"freekey"})
    server.start()
    yield server
    server.stop()


def put_ib_quote(store: Store, market: SimMarket, age_s: float = 1.0) -> float:
    q = market.quote("SPY")
    store.hset(keys.quote("SPY"), Quote((NOW - timedelta(seconds=age_s)).timestamp(), q.bid, q.ask,
                                        last=q.last).to_redis())
    return (q.bid + q.ask) / 2


def chain(store: Store) -> dict[str, Any]:
    raw = store.get(keys.option_chain("SPY"))
    assert raw is not None
    doc: dict[str, Any] = json.loads(raw)
    return doc


def metrics(store: Store) -> dict[str, str]:
    return store.hgetall(keys.alpha_vantage_metrics())


def test_once_writes_chain_with_qc_greeks_beside_vendor(store: Store, redis_server: RedisServer, av: ScriptedAV,
                                                        market: SimMarket) -> None:
    cycle = cycle_for(store, settings_for(redis_server.url, av))
    mid = put_ib_quote(store, market)  # the live stream writes after the process started
    assert Worker("chains", cycle, store, FakeClock(NOW), 300.0).run(once=True) == 0
    doc = chain(store)
    traded = traded_expiries(NOW)
    assert doc["source"] == "alpha_vantage_realtime" and doc["as_of"] == NOW.isoformat()
    assert (doc["spot"], doc["spot_source"]) == (pytest.approx(mid), "ib_quote")
    assert doc["expiries"] == [d.isoformat() for d in traded.dates] == ["2026-11-24", "2026-11-25", "2026-12-08",
                                                                        "2026-12-18"]
    rows = doc["rows"]
    assert len(rows) == doc["counts"]["rows"] > 200 and {r["expiry"] for r in rows} == set(doc["expiries"])
    assert store.client.ttl(keys.option_chain("SPY").name) == pytest.approx(900, abs=5)
    expiry = np.array([date.fromisoformat(r["expiry"]) for r in rows])
    col = {n: np.array([r[n] for r in rows], dtype=float) for n in rows[0]
           if n not in ("expiry", "right", "iv_source")}
    from_mark = np.array([r["iv_source"] == "mark" for r in rows])
    assert from_mark.sum() > 200 and (~from_mark).sum() > 0  # the far wings have no bid: vendor IV
    np.testing.assert_array_equal(col["iv"][~from_mark], col["iv_vendor"][~from_mark])
    call = np.array([r["right"] == "C" for r in rows])
    t = years_to_expiry(NOW, expiry)
    g = bsm(doc["spot"], col["strike"], t, doc["rate"], doc["div_yield"], col["iv"], call)
    for name in ("delta", "gamma", "vega", "theta", "vanna", "charm"):
        np.testing.assert_allclose(col[name], getattr(g, name), rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(bsm(doc["spot"], col["strike"], t, doc["rate"], doc["div_yield"], col["iv"],
                                   call).price[from_mark], col["mark"][from_mark], atol=1e-9)  # re-solved
    assert np.isfinite(col["delta_vendor"]).all() and np.isfinite(col["iv_vendor"]).all()
    zero_dte = expiry == date(2026, 11, 24)
    flagged = np.array([r["divergent"] for r in rows])
    # AV's T=0 Greeks, on the quoted 0DTE rows (the bid-less far wings have ~0 gamma on both sides)
    assert flagged[zero_dte & from_mark].mean() > 0.5 and doc["counts"]["divergent"] == flagged.sum()
    assert not flagged[expiry == date(2026, 12, 18)].all()
    m = metrics(store)
    assert m["requests"] == m["ok"] == "5" and float(m["tokens_left"]) > 10  # 4 expiries + news, no quote call
    assert av.stats()["by_function"] == {"REALTIME_OPTIONS": 4, "NEWS_SENTIMENT": 1}
    news = store.hgetall(keys.news_sentiment("SPY"))
    assert int(news["articles"]) > 0 and -1 <= float(news["score"]) <= 1 and news["as_of"] == NOW.isoformat()
    assert store.get(keys.heartbeat("chains")) is None  # a --once run beats nothing (the live worker's key)


def test_stale_ib_quote_falls_back_to_global_quote(store: Store, redis_server: RedisServer, av: ScriptedAV,
                                                   market: SimMarket) -> None:
    put_ib_quote(store, market, age_s=chains_cycle.QUOTE_MAX_AGE_S + 5)
    cycle_for(store, settings_for(redis_server.url, av), with_news=False)(NOW)
    doc = chain(store)
    assert doc["spot_source"] == "alpha_vantage_global_quote" and doc["spot"] == round(market.quote("SPY").last, 4)
    assert av.stats()["by_function"]["GLOBAL_QUOTE"] == 1


FAILURES = {
    "http_error": lambda av: av.fail_next(3),  # every retry answered 503
    "malformed": lambda av: av.malformed_next(1),
    "throttled": lambda av: av.script.extend([{"Note": NOTE}] * 3),
    "bad_request": lambda av: av.script.append(av_payloads.invalid_call("REALTIME_OPTIONS")),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_failure_is_counted_and_last_good_chain_kept(kind: str, store: Store, redis_server: RedisServer,
                                                     av: ScriptedAV, market: SimMarket) -> None:
    put_ib_quote(store, market)
    cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
    cycle(NOW)
    good = store.get(keys.option_chain("SPY"))
    FAILURES[kind](av)
    put_ib_quote(store, market, age_s=-119)  # the quote is refreshed, so only Alpha Vantage can fail
    cycle(NOW + timedelta(seconds=120))
    assert store.get(keys.option_chain("SPY")) == good  # content unchanged
    m = metrics(store)
    assert int(m[kind]) >= 1 and m["chain_failures"] == "1" and m["chain_age_s:SPY"] == "120"
    assert "SPY:options_chain" in store.hgetall(keys.data_stale())
    assert cycle.fatal is None
    cycle(NOW + timedelta(seconds=180))  # the provider is back: a fresh chain, staleness cleared
    assert chain(store)["as_of"] == (NOW + timedelta(seconds=180)).isoformat()
    assert "SPY:options_chain" not in store.hgetall(keys.data_stale())


def test_not_entitled_key_is_fatal_names_the_plan_and_keeps_the_chain(store: Store, redis_server: RedisServer,
                                                                      av: ScriptedAV, market: SimMarket) -> None:
    put_ib_quote(store, market)
    cycle_for(store, settings_for(redis_server.url, av), with_news=False)(NOW)
    good = store.get(keys.option_chain("SPY"))
    premium = cycle_for(store, settings_for(redis_server.url, av, key="freekey"), symbols=("SPY", "QQQ"))
    premium(NOW + timedelta(seconds=60))
    assert premium.fatal is not None and premium.fatal.kind == "not_entitled"
    assert "600 or 1200 requests-per-minute premium plan" in str(premium.fatal)
    assert premium.stop.is_set() and store.get(keys.option_chain("SPY")) == good
    assert metrics(store)["not_entitled"] == "1"  # not retried, and QQQ not even tried
    assert av.stats()["by_key"]["freekey"] == 1  # the first chain call: spot is asked only once rows are in


def test_real_rate_limit_information_is_throttled_and_backed_off(store: Store, redis_server: RedisServer,
                                                                  market: SimMarket) -> None:
    av = ScriptedAV(market, rpm=4)  # AV counting tighter than our configured plan: its throttle body answers
    av.start()
    try:
        cycle = cycle_for(store, settings_for(redis_server.url, av), with_news=False)
        put_ib_quote(store, market)
        cycle(NOW)
        good = store.get(keys.option_chain("SPY"))
        cycle(NOW + timedelta(seconds=30))
    finally:
        av.stop()
    assert store.get(keys.option_chain("SPY")) == good
    assert metrics(store)["throttled"] == "3" and av.stats()["by_outcome"] == {"ok": 4, "throttled": 3}


def test_unknown_symbol_fails_alone(store: Store, redis_server: RedisServer, av: ScriptedAV,
                                    market: SimMarket) -> None:
    put_ib_quote(store, market)
    cycle = cycle_for(store, settings_for(redis_server.url, av), symbols=("ZZZZ", "SPY"), with_news=False)
    cycle(NOW)
    m = metrics(store)
    assert m["bad_request"] == "1" and "ZZZZ" in m["last_error:ZZZZ"]  # REALTIME_OPTIONS: Invalid API call
    assert store.get(keys.option_chain("ZZZZ")) is None and chain(store)["symbol"] == "SPY"


def test_a_key_echoed_by_the_provider_reaches_neither_redis_nor_the_error(store: Store, redis_server: RedisServer,
                                                                         av: ScriptedAV, market: SimMarket) -> None:
    secret = "s3cr3t-av-key"
    echo = {"Information": f"We have detected your API key as {secret} and our standard API rate limit is 25 "
                           "requests per day. Please consider spreading out your free API requests more sparingly."}
    av.script.extend([echo] * 3)
    put_ib_quote(store, market)
    cycle = cycle_for(store, settings_for(redis_server.url, av, key=secret), with_news=False)
    cycle(NOW)
    assert metrics(store)["throttled"] == "3" and "***" in metrics(store)["last_error:SPY"]
    read = {"hash": store.client.hgetall, "string": store.client.get,
            "zset": lambda k: store.client.zrange(k, 0, -1)}
    values = [json.dumps(read[store.client.type(k)](k)) for k in store.client.keys("*")]
    assert len(values) >= 3 and not any(secret in v for v in values)
