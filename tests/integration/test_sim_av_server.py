"""The simulated Alpha Vantage server, over real HTTP on loopback, against a hand-written market stub.

Every expectation is AV's own (reference alpha-vantage-and-dealer-positioning.md §1): shapes,
string-typed numbers, sort order, whole-day Greeks, and the error bodies verbatim.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
import requests

from qc.analytics.greeks import bsm
from qc.core import clock
from qc.core.models import Bar, DepthLevel
from qc.sim.av import payloads as av_payloads
from qc.sim.av.server import AV_RATE, AlphaVantageServer
from qc.sim.market.events import MarketEvent
from qc.sim.market.market import SimMarket
from qc.sim.market.models import OptionContract, OptionQuote, Quote, Right

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # Tuesday 10:00 New York
SPOT = 500.0
EXPIRIES = (date(2026, 12, 18), date(2026, 11, 24), date(2026, 12, 16))  # 24, 0 and 22 days out
ROW_FIELDS = ["contractID", "symbol", "expiration", "strike", "type", "last", "mark", "bid", "bid_size",
              "ask", "ask_size", "volume", "open_interest", "date"]
GREEK_FIELDS = ["implied_volatility", "delta", "gamma", "theta", "vega", "rho"]


class StubMarket:
    """A MarketModel of our own: SPY with a small fixed chain; QQQ's chain always raises."""

    symbols: tuple[str, ...] = ("SPY", "QQQ")

    def __init__(self) -> None:
        self.chain_calls: list[datetime] = []

    def option_chain(self, symbol: str, now: datetime) -> list[OptionQuote]:
        if symbol == "QQQ":
            raise RuntimeError("model failure")
        self.chain_calls.append(now)
        rows = []
        for expiry in EXPIRIES:  # deliberately unsorted: puts first, expiries shuffled
            for strike in (510.0, 490.0, 500.0):
                rights: tuple[Right, ...] = ("P", "C")
                for right in rights:
                    c = OptionContract("SPY", expiry, strike, right)
                    rows.append(OptionQuote(c, bid=4.1, ask=4.3, last=4.2, iv=0.2 + (strike - 500) / 1000,
                                            delta=0.5, gamma=0.01, vega=0.3, theta=-0.1,
                                            open_interest=1200, volume=35))
        return rows

    def option_quote(self, contract: OptionContract, now: datetime) -> OptionQuote | None:
        return None

    def quote(self, symbol: str) -> Quote:
        return Quote(NOW, SPOT - 0.01, SPOT + 0.01, 300, 400, SPOT, 100, 1_234_567)

    def spot(self, symbol: str) -> float:
        return SPOT

    def events_until(self, now: datetime) -> list[MarketEvent]:
        return []

    def prepare_ahead(self, now: datetime, budget: int) -> None:
        """This market has no live events, so nothing to make ahead."""

    def book(self, symbol: str) -> tuple[list[DepthLevel], list[DepthLevel]]:
        return [], []

    def history(self, symbol: str, end: datetime, minutes: int) -> list[Bar]:
        """The last ``minutes`` complete regular-session 1-min bars before ``end``, oldest first."""
        out: list[Bar] = []
        day = clock.new_york_date(end)
        while len(out) < minutes:
            session = clock.session(day)
            t = min(end, session.close) - timedelta(minutes=1) if session else None
            while session and t is not None and t >= session.open and len(out) < minutes:
                px = SPOT + 5 * math.sin(t.timestamp() / 3600)
                out.append(Bar(t, px, px + 0.2, px - 0.2, px + 0.05, 1000, px, 10))
                t -= timedelta(minutes=1)
            day -= timedelta(days=1)
        return out[::-1]


@pytest.fixture
def market() -> StubMarket:
    return StubMarket()


@pytest.fixture
def server(market: StubMarket):
    srv = AlphaVantageServer(market, lambda: NOW, rpm=1000, not_entitled_keys={"freekey"})
    srv.start()
    yield srv
    srv.stop()


def get(server: AlphaVantageServer, **params: str) -> requests.Response:
    params.setdefault("apikey", "K")
    return requests.get(server.url, params=params, timeout=10)


def test_start_binds_loopback_and_stop_frees_it(market: StubMarket) -> None:
    srv = AlphaVantageServer(market, lambda: NOW)
    port = srv.start()
    assert srv.url == f"http://127.0.0.1:{port}/query"
    httpd = srv._serving.httpd
    assert httpd is not None and httpd.server_address[0] == "127.0.0.1"
    assert requests.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    srv.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.url, params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": "K"}, timeout=2)


def test_realtime_chain_shape_strings_order_and_no_spot(server: AlphaVantageServer) -> None:
    r = get(server, function="REALTIME_OPTIONS", symbol="SPY")
    body = r.json()
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert list(body) == ["endpoint", "message", "data"]
    assert body["endpoint"] == "Realtime Options" and body["message"] == "success"
    rows = body["data"]
    assert len(rows) == 18
    for row in rows:
        assert list(row) == ROW_FIELDS  # no Greeks without require_greeks, no spot field
        assert all(isinstance(v, str) for v in row.values())
    keys = [(r["expiration"], float(r["strike"]), r["type"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: (k[0], k[1], k[2] != "call"))
    first = rows[0]
    assert first["contractID"] == "SPY261124C00490000" and first["strike"] == "490.00"
    assert first["date"] == "2026-11-24" and first["mark"] == "4.20" and first["open_interest"] == "1200"
    assert "500" not in json.dumps([v for k, v in body.items() if k != "data"])


def test_whole_day_greeks_match_av_convention(server: AlphaVantageServer) -> None:
    body = get(server, function="REALTIME_OPTIONS", symbol="SPY", require_greeks="true").json()
    rows = {r["contractID"]: r for r in body["data"]}
    assert all(list(r) == ROW_FIELDS + GREEK_FIELDS for r in rows.values())
    for right in ("C", "P"):
        row = rows[f"SPY261216{right}00510000"]  # 22 calendar days from 2026-11-24
        iv = float(row["implied_volatility"])
        g = bsm(SPOT, 510.0, 22 / 365, AV_RATE, 0.0, iv, right == "C")
        for name in ("delta", "gamma", "theta", "vega", "rho"):
            assert row[name] == f"{float(getattr(g, name)):.5f}", name
        exact = bsm(SPOT, 510.0, (clock.settlement_instant(date(2026, 12, 16)) - NOW).total_seconds()
                    / (365 * 86400), AV_RATE, 0.0, iv, right == "C")
        assert row["theta"] != f"{float(exact.theta):.5f}"  # intraday T would differ: AV's is whole days
    zero_dte = rows["SPY261124C00490000"]  # T = 0 in AV's convention: degenerate, as AV's are
    assert (zero_dte["delta"], zero_dte["gamma"], zero_dte["vega"]) == ("1.00000", "0.00000", "0.00000")
    assert rows["SPY261124P00510000"]["delta"] == "-1.00000"
    assert rows["SPY261124C00510000"]["delta"] == "0.00000"


def test_realtime_filters_by_expiration_and_contract(server: AlphaVantageServer) -> None:
    rows = get(server, function="REALTIME_OPTIONS", symbol="SPY", expiration="2026-12-16").json()["data"]
    assert {r["expiration"] for r in rows} == {"2026-12-16"} and len(rows) == 6
    rows = get(server, function="REALTIME_OPTIONS", symbol="SPY", contract="SPY261218P00500000").json()["data"]
    assert [r["contractID"] for r in rows] == ["SPY261218P00500000"]


def test_historical_chain_at_settlement_with_greeks(server: AlphaVantageServer, market: StubMarket) -> None:
    body = get(server, function="HISTORICAL_OPTIONS", symbol="SPY", date="2026-11-23").json()
    assert body["endpoint"] == "Historical Options" and body["message"] == "success"
    monday = clock.session(date(2026, 11, 23))
    assert monday is not None and market.chain_calls[-1] == monday.close
    assert {r["date"] for r in body["data"]} == {"2026-11-23"}
    assert all(list(r) == ROW_FIELDS + GREEK_FIELDS for r in body["data"])
    default = get(server, function="HISTORICAL_OPTIONS", symbol="SPY").json()
    assert default["data"][0]["date"] == "2026-11-23"  # previous session by default
    assert get(server, function="HISTORICAL_OPTIONS", symbol="SPY", date="2026-11-22").json()["data"] == []
    assert get(server, function="HISTORICAL_OPTIONS", symbol="SPY", date="2026-11-24").json()["data"] == []


def test_global_quote_and_delayed_key(server: AlphaVantageServer) -> None:
    quote = get(server, function="GLOBAL_QUOTE", symbol="SPY").json()["Global Quote"]
    assert list(quote) == ["01. symbol", "02. open", "03. high", "04. low", "05. price", "06. volume",
                           "07. latest trading day", "08. previous close", "09. change", "10. change percent"]
    assert all(isinstance(v, str) for v in quote.values())
    assert quote["05. price"] == "500.0000" and quote["06. volume"] == "1234567"
    assert quote["07. latest trading day"] == "2026-11-24" and quote["10. change percent"].endswith("%")
    change = float(quote["05. price"]) - float(quote["08. previous close"])
    assert quote["09. change"] == f"{change:.4f}"
    delayed = get(server, function="GLOBAL_QUOTE", symbol="SPY", entitlement="delayed").json()
    assert list(delayed) == ["Global Quote - DATA DELAYED BY 15 MINUTES"]
    assert get(server, function="GLOBAL_QUOTE", symbol="NOPE").json() == {"Global Quote": {}}


def test_intraday_compact_and_bad_interval(server: AlphaVantageServer) -> None:
    body = get(server, function="TIME_SERIES_INTRADAY", symbol="SPY", interval="5min").json()
    meta, series = body["Meta Data"], body["Time Series (5min)"]
    assert meta == {"1. Information": "Intraday (5min) open, high, low, close prices and volume",
                    "2. Symbol": "SPY", "3. Last Refreshed": "2026-11-24 09:55:00", "4. Interval": "5min",
                    "5. Output Size": "Compact", "6. Time Zone": "US/Eastern"}
    stamps = list(series)
    assert len(stamps) == 100 and stamps == sorted(stamps, reverse=True)
    assert stamps[0] == "2026-11-24 09:55:00" and stamps[-1].startswith("2026-11-")
    bar = series[stamps[1]]  # 09:50–09:54: five 1-min bars of 1000 shares
    assert list(bar) == ["1. open", "2. high", "3. low", "4. close", "5. volume"] and bar["5. volume"] == "5000"
    bad = get(server, function="TIME_SERIES_INTRADAY", symbol="SPY", interval="2min").json()
    assert bad == {"Error Message": "Invalid API call. Please retry or visit the documentation "
                   "(https://www.alphavantage.co/documentation/) for TIME_SERIES_INTRADAY."}
    full = get(server, function="TIME_SERIES_INTRADAY", symbol="SPY", interval="60min", outputsize="full").json()
    assert full["Meta Data"]["5. Output Size"] == "Full size" and len(full["Time Series (60min)"]) > 100


def test_news_sentiment_quirks_and_determinism(server: AlphaVantageServer) -> None:
    body = get(server, function="NEWS_SENTIMENT", tickers="SPY,QQQ", limit="7").json()
    assert body["items"] == "7" and len(body["feed"]) == 7
    assert "Somewhat_Bullish" in body["sentiment_score_definition"]
    stamps = [a["time_published"] for a in body["feed"]]
    assert stamps == sorted(stamps, reverse=True) and stamps[0] <= "20261124T150000"
    for item in body["feed"]:
        assert isinstance(item["overall_sentiment_score"], float)
        assert {t["ticker"] for t in item["ticker_sentiment"]} == {"SPY", "QQQ"}
        for t in item["ticker_sentiment"]:
            assert isinstance(t["relevance_score"], str) and isinstance(t["ticker_sentiment_score"], str)
            assert t["ticker_sentiment_label"] in {"Bearish", "Somewhat-Bearish", "Neutral", "Somewhat-Bullish",
                                                   "Bullish"}
    assert get(server, function="NEWS_SENTIMENT", tickers="QQQ,SPY", limit="7").json() == body
    assert get(server, function="NEWS_SENTIMENT", tickers="ZZZZ").json() == {"Information": (
        "Invalid inputs. Please refer to the API documentation "
        "https://www.alphavantage.co/documentation#newsapi and try again.")}


def test_key_and_function_errors_verbatim(server: AlphaVantageServer) -> None:
    missing = {"Error Message": "the parameter apikey is invalid or missing. Please claim your free API key on "
               "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."}
    assert requests.get(server.url, params={"function": "GLOBAL_QUOTE", "symbol": "SPY"}, timeout=5).json() == missing
    assert get(server, function="GLOBAL_QUOTE", symbol="SPY", apikey="").json() == missing
    assert get(server, function="NOPE").json() == {"Error Message": "This API function (NOPE) does not exist."}
    assert get(server, function="REALTIME_OPTIONS", symbol="ZZZZ").json() == {"Error Message": (
        "Invalid API call. Please retry or visit the documentation "
        "(https://www.alphavantage.co/documentation/) for REALTIME_OPTIONS.")}


def test_not_entitled_key_gets_premium_sample(server: AlphaVantageServer) -> None:
    body = get(server, function="REALTIME_OPTIONS", symbol="SPY", apikey="freekey").json()
    assert body["endpoint"] == "Realtime Options"
    assert body["message"].startswith("This is a premium endpoint. ***THE SAMPLE DATA SCHEMA BELOW IS ARTIFICIAL")
    assert [r["contractID"] for r in body["data"]] == ["XXYYZZ999999C00020000", "XXYYZZ999999P00020000"]
    assert {(r["expiration"], r["date"]) for r in body["data"]} == {("2099-99-99", "2049-99-99")}
    assert all(list(r) == ROW_FIELDS + GREEK_FIELDS for r in body["data"])  # Greeks regardless
    hist = get(server, function="HISTORICAL_OPTIONS", symbol="SPY", apikey="freekey").json()
    assert hist == {"Information": av_payloads.PREMIUM_INFORMATION}
    assert "Global Quote" in get(server, function="GLOBAL_QUOTE", symbol="SPY", apikey="freekey").json()


def test_outage_and_malformed_switches(server: AlphaVantageServer) -> None:
    server.fail_next(2)
    first, second = (get(server, function="GLOBAL_QUOTE", symbol="SPY") for _ in range(2))
    assert (first.status_code, second.status_code) == (503, 503) and b"503" in first.content
    assert get(server, function="GLOBAL_QUOTE", symbol="SPY").status_code == 200
    server.malformed_next()
    broken = get(server, function="GLOBAL_QUOTE", symbol="SPY")
    assert broken.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        broken.json()
    assert "Global Quote" in get(server, function="GLOBAL_QUOTE", symbol="SPY").json()
    outcomes = server.stats()["by_outcome"]
    assert outcomes["503"] == 2 and outcomes["malformed"] == 1


def test_failing_model_answers_500_with_body(server: AlphaVantageServer) -> None:
    r = get(server, function="REALTIME_OPTIONS", symbol="QQQ")
    assert r.status_code == 500 and "RuntimeError" in r.json()["Error Message"]
    assert server.stats()["by_outcome"]["error"] == 1


def test_two_threads_one_key_never_exceed_rpm(market: StubMarket) -> None:
    srv = AlphaVantageServer(market, lambda: NOW, rpm=5)
    srv.start()
    bodies: list[dict[str, str]] = []
    lock = threading.Lock()

    def hammer() -> None:
        with requests.Session() as s:
            for _ in range(10):
                body = s.get(srv.url, params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": "shared"},
                             timeout=10).json()
                with lock:
                    bodies.append(body)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = requests.get(srv.url, params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": "other"},
                         timeout=5).json()
    stats = srv.stats()
    srv.stop()
    throttled = [b for b in bodies if b == {"Information": av_payloads.RATE_LIMIT_RPM}]
    assert len(bodies) == 20 and len(throttled) == 15
    assert stats["by_key"] == {"shared": 20, "other": 1} and stats["by_function"] == {"GLOBAL_QUOTE": 21}
    assert stats["max_accepted_per_window"] == {"shared": 5, "other": 1}
    assert stats["by_outcome"] == {"ok": 6, "throttled": 15} and "Global Quote" in other
    assert av_payloads.RATE_LIMIT_RPM == ("Thank you for using Alpha Vantage! Please contact "
                                          "premium@alphavantage.co if you are targeting a higher API call volume.")


# --- against the real simulated market ----------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[AlphaVantageServer, SimMarket, datetime]]:
    start = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # 10:00 New York
    now = start + timedelta(seconds=90)
    market = SimMarket(start)
    market.events_until(now)
    srv = AlphaVantageServer(market, lambda: now)
    srv.start()
    yield srv, market, now
    srv.stop()


def test_real_market_chain_quote_and_bars(live: tuple[AlphaVantageServer, SimMarket, datetime]) -> None:
    srv, market, now = live
    rows = get(srv, function="REALTIME_OPTIONS", symbol="SPY", require_greeks="true").json()["data"]
    assert len(rows) > 50 and all(isinstance(v, str) for r in rows for v in r.values())
    keys = [(r["expiration"], float(r["strike"]), r["type"] != "call") for r in rows]
    assert keys == sorted(keys) and {r["date"] for r in rows} == {"2026-11-24"}
    model = {av_payloads.contract_id(q.contract): q for q in market.option_chain("SPY", now)}
    assert set(model) == {r["contractID"] for r in rows}
    row = next(r for r in rows if r["expiration"] > "2026-12-10" and r["type"] == "put")
    q = model[row["contractID"]]
    assert row["bid"] == f"{q.bid:.2f}" and row["open_interest"] == str(q.open_interest)
    days = (q.contract.expiry - date(2026, 11, 24)).days
    g = bsm(market.spot("SPY"), q.contract.strike, days / 365, AV_RATE, 0.0, q.iv, False)
    assert row["gamma"] == f"{float(g.gamma):.5f}" and row["delta"] == f"{float(g.delta):.5f}"
    quote = get(srv, function="GLOBAL_QUOTE", symbol="SPY").json()["Global Quote"]
    assert quote["05. price"] == f"{market.quote('SPY').last:.4f}"
    series = get(srv, function="TIME_SERIES_INTRADAY", symbol="SPY", interval="1min").json()["Time Series (1min)"]
    last_bar = market.history("SPY", now, 1)[-1]
    newest = next(iter(series))
    assert len(series) == 100 and series[newest]["4. close"] == f"{last_bar.close:.4f}"


def test_real_market_historical_chain(live: tuple[AlphaVantageServer, SimMarket, datetime]) -> None:
    srv = live[0]
    body = get(srv, function="HISTORICAL_OPTIONS", symbol="QQQ", date="2026-11-23").json()
    assert body["message"] == "success" and len(body["data"]) > 50
    assert {r["date"] for r in body["data"]} == {"2026-11-23"}
    # The model drops contracts settled at that close (AV would list them): a documented limitation.
    assert min(r["expiration"] for r in body["data"]) > "2026-11-23"
