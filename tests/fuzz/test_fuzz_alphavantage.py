"""Alpha Vantage inputs are never trusted: mutated payloads through the real classifier and parsers.

Realistic payloads come from the simulator's payload builders (``qc.sim.av.payloads`` and
``qc.sim.av.news`` behind ``Endpoints``), then hypothesis mutates them: field deletions, type swaps,
"None"/"-"/"" and other bad strings, NaN/inf/1e999 and huge or tiny numbers, negatives, int64
overflow, duplicate and conflicting rows, rows of another expiry or symbol, truncated JSON text,
HTML pages, Note/Information/Error bodies. Each case goes the way a `qc chains` cycle takes it:
``classify`` on the HTTP text, then the function's parser, then the codec that would store it
(encoded and decoded again). Asserted: no exception escapes, nothing non-finite or out of range is
in what would be stored, and the good rows of a payload with one bad row are all kept.

Examples per test: ``QC_FUZZ_EXAMPLES`` (default 300) through the "av-fuzz" hypothesis profile:
``QC_FUZZ_EXAMPLES=10000 .venv/bin/pytest tests/fuzz``. ``QC_FUZZ_REPORT=path.json`` writes the
counts (cases, response classes, refusals by reason) when the module finishes.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Iterator
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qc.ingest import chain_parse, news
from qc.ingest.codec import NewsSentiment, OptionChain, PayloadRefused
from qc.ingest.cycle import chains as chains_cycle
from qc.ingest.cycle.alphavantage import CLASSES, classify
from qc.ingest.expiries import TradedExpiries, traded_expiries
from qc.sim.av import news as av_news
from qc.sim.av import payloads as av_payloads
from qc.sim.av.endpoints import Endpoints
from qc.sim.market.market import SimMarket
from tests.integration.av_chains_harness import NOW, sim_market

EXAMPLES = int(os.environ.get("QC_FUZZ_EXAMPLES", "300"))
REPORT = os.environ.get("QC_FUZZ_REPORT", "")  # read at import: the suite's autouse fixture strips QC_*
BASE = os.environ.get("HYPOTHESIS_PROFILE", "ci")  # "ci": derandomized, reproducible; "explore": fresh seeds
settings.register_profile("av-fuzz", parent=settings.get_profile(BASE), max_examples=EXAMPLES, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.filter_too_much])
FUZZ = settings.get_profile("av-fuzz")

SYMBOL = "SPY"
VITAL = ("expiration", "type", "strike", "bid", "ask", "mark", "volume", "open_interest", "implied_volatility",
         "delta", "gamma", "relevance_score", "ticker_sentiment_score", "ticker_sentiment", "ticker", "url",
         "time_published", "05. price", "01. symbol")  # the fields a parser reads: mutated more often
NEAR_ROWS, WING_ROWS = 48, 12  # nearest the money (parity measurable) and the bid-less far wings (vendor IV)
STATS: dict[str, Counter[str]] = {}

BAD_STRINGS = ["None", "-", "", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "null", "N/A",
               "0x1A", "1,000", "12abc", "١٢", "true", "[]", "5.5.5", "—", "1e-400", "+", "."]
TYPE_SWAPS: list[Any] = [None, True, False, [], {}, [1], {"v": 1}, [None]]
NUMBERS: list[Any] = [math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 5e-324, 0.0, -0.0, 1e-7, -1, -0.01,
                      2**53, 2**63, -(2**63), 2**64, 10**400, -(10**400), 123456789.5]
BAD_DATES = ["2099-99-99", "2026-02-30", "20261124", "+002026-11", "2026-11-24T00:00:00", "1990-01-02",
             "9999-12-31", "0001-01-01", "2026-1-2", "yesterday"]
NOTE = ("Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls "
        "per day.")
HTML = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502</h1>"
        "<p>cloudflare</p></body></html>")
BODIES: list[Any] = [
    {"Note": NOTE}, av_payloads.information(av_payloads.RATE_LIMIT_RPM),
    av_payloads.information(av_payloads.RATE_LIMIT_DAILY), av_payloads.information(av_payloads.PREMIUM_INFORMATION),
    {"Information": av_news.NO_ARTICLES}, {"Information": av_news.INVALID_INPUTS},
    {"Information": "The **demo** API key is for demo purposes only."}, {"Information": 42}, {"Note": None},
    av_payloads.error_message(av_payloads.MISSING_KEY), av_payloads.invalid_call("REALTIME_OPTIONS"),
    av_payloads.premium_sample(), {}, {"message": "success"}, {"message": 7, "data": "x"}, [], [1, 2], "text", 3.5,
    None, {"data": None}, {"data": 0}, {"data": "rows"}, {"data": {"0": {}}}, {"data": [[], [1]]},
    {"feed": 5}, {"feed": "x"}, {"feed": None}, {"feed": {"a": 1}}, {"Global Quote": []}, {"Global Quote": "557"},
    {"Global Quote": {"05. price": {}}}, {"Time Series (1min)": 5}, {"Meta Data": None}]


def tally(surface: str, outcome: Counter[str]) -> None:
    """Add a case's outcome to the module's report (``cases``, ``class:*``, refusals by reason)."""
    stats = STATS.setdefault(surface, Counter())
    stats["cases"] += 1
    stats.update(outcome)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    summary = {surface: dict(sorted(c.items())) for surface, c in sorted(STATS.items())}
    if REPORT:
        Path(REPORT).write_text(json.dumps({"examples_per_test": EXAMPLES, "crashes": 0, **summary}, indent=2))


# --- realistic payloads, built once by the simulator ----------------------------------------------


@cache
def world() -> tuple[SimMarket, Endpoints, TradedExpiries]:
    market = sim_market()
    return market, Endpoints(market, 0.04, 0.013), traded_expiries(NOW)


def spot() -> float:
    q = world()[0].quote(SYMBOL)
    return (q.bid + q.ask) / 2


@cache
def chain_body(expiry: date) -> dict[str, Any]:
    """REALTIME_OPTIONS for one expiry as the simulator serves it, cut to the strikes nearest the money
    and the farthest ones (ask-only rows priced with the vendor's IV), so cases stay fast."""
    _, endpoints, _ = world()
    body = endpoints.answer("REALTIME_OPTIONS", {"symbol": SYMBOL, "require_greeks": "true",
                                                 "expiration": expiry.isoformat()}, NOW)
    by_distance = sorted(body["data"], key=lambda r: abs(float(r["strike"]) - spot()))
    rows = by_distance[:NEAR_ROWS] + by_distance[-WING_ROWS:]
    assert any(float(r["bid"]) == 0 for r in rows)
    return {**body, "data": sorted(rows, key=lambda r: (float(r["strike"]), r["type"]))}


def expiries_fetched() -> tuple[date, date]:
    dates = world()[2].dates
    return dates[0], dates[-1]  # 0DTE and the monthly: parity on the first, other-expiry rows between them


@cache
def baseline() -> frozenset[tuple[Any, ...]]:
    """The contracts the unmutated payloads keep (the reference for "good rows are all kept")."""
    doc = run_chain(chain_texts())
    assert isinstance(doc, OptionChain) and len(doc.rows) > 100
    return frozenset(r.contract for r in doc.rows)


@cache
def reference_columns() -> chain_parse.Columns:
    rows = [r for d in expiries_fetched() for r in chain_body(d)["data"]]
    return chain_parse.read_rows(rows, set(world()[2].dates), Counter(), symbol=SYMBOL)


@cache
def quote_body() -> dict[str, Any]:
    return world()[1].answer("GLOBAL_QUOTE", {"symbol": SYMBOL}, NOW)


@cache
def news_body() -> dict[str, Any]:
    return world()[1].answer("NEWS_SENTIMENT", {"tickers": f"{SYMBOL},QQQ", "limit": "30"}, NOW)


@cache
def intraday_body() -> dict[str, Any]:
    return world()[1].answer("TIME_SERIES_INTRADAY", {"symbol": SYMBOL, "interval": "5min"}, NOW)


# --- mutations ------------------------------------------------------------------------------------


def scaled(value: Any, factor: float) -> Any:
    try:
        return repr(float(value) * factor)
    except (TypeError, ValueError, OverflowError):
        return value


@st.composite
def bad_value(draw: st.DrawFn, value: Any, name: str) -> Any:
    """One mutated value for field ``name`` (its current ``value``)."""
    kind = draw(st.sampled_from(["number_text", "scaled", "string", "number", "negated", "type", "random",
                                 "as_number", "date", "text"]))
    if kind == "string":
        return draw(st.sampled_from(BAD_STRINGS))
    if kind == "type":
        return draw(st.sampled_from(TYPE_SWAPS))
    if kind == "number":
        return draw(st.sampled_from(NUMBERS))
    if kind == "number_text":
        return str(draw(st.sampled_from(NUMBERS)))
    if kind == "random":
        return draw(st.floats() | st.integers(-(2**70), 2**70) | st.floats().map(repr))
    if kind == "negated":
        return f"-{value}" if isinstance(value, str) else value
    if kind == "scaled":
        return scaled(value, draw(st.sampled_from([1e3, 1e6, 1e-3, 10.0, 0.1, -1.0, 1e300, 1.01, 0.99, 1.002])))
    if kind == "as_number":
        return scaled(value, 1.0) if not isinstance(value, str) else _as_number(value)
    if kind == "date":
        other = [d.isoformat() for d in world()[2].dates]
        return draw(st.sampled_from(BAD_DATES + other))
    return draw(st.text(max_size=12))


def _as_number(text: str) -> Any:
    """The same value as a JSON number where AV sends a string (a harmless type swap)."""
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


@st.composite
def mutated_row(draw: st.DrawFn, row: Any) -> Any:
    """One row with one to three fields changed, deleted or added."""
    if not isinstance(row, dict):
        return row
    out = dict(row)
    for _ in range(draw(st.integers(1, 3))):
        vital = [n for n in VITAL if n in row]
        names = st.sampled_from([*row, "expiration", "type", "symbol", "extra"])
        name = draw(names | st.sampled_from(vital) if vital else names)
        action = draw(st.sampled_from(["delete", "replace", "replace", "replace"]))
        if action == "delete":
            out.pop(name, None)
        else:
            out[name] = draw(bad_value(out.get(name), name))
    return out


@st.composite
def mutated_rows(draw: st.DrawFn, rows: list[Any], max_bad: int) -> tuple[list[Any], set[tuple[Any, ...]]]:
    """Up to ``max_bad`` row-level mutations; also the contracts those rows had or now claim."""
    rows = list(rows)
    touched: set[tuple[Any, ...]] = set()
    for _ in range(draw(st.integers(1, max_bad))):
        i = draw(st.integers(0, len(rows) - 1))
        touched |= claims(rows[i])
        op = draw(st.sampled_from(["mutate", "mutate", "mutate", "delete", "duplicate", "conflict",
                                   "not_object", "other_expiry", "other_symbol"]))
        if op == "mutate":
            rows[i] = draw(mutated_row(rows[i]))
        elif op == "delete":
            del rows[i]
            if not rows:
                break
            continue
        elif op == "duplicate":
            rows.insert(draw(st.integers(0, len(rows))), rows[i])
        elif op == "conflict" and isinstance(rows[i], dict):
            copy = {**rows[i], "bid": scaled(rows[i].get("bid"), 1.1), "open_interest": "1"}
            rows.insert(draw(st.integers(0, len(rows))), copy)
        elif op == "not_object":
            rows[i] = draw(st.sampled_from([None, 5, "row", [], ["a"], True]))
        elif op == "other_expiry" and isinstance(rows[i], dict):
            rows[i] = {**rows[i], "expiration": draw(st.sampled_from([d.isoformat() for d in world()[2].dates]))}
        elif op == "other_symbol" and isinstance(rows[i], dict):
            rows[i] = {**rows[i], "symbol": draw(st.sampled_from(["QQQ", "spy", "XXYYZZ", ""]))}
        touched |= claims(rows[i]) if i < len(rows) else set()
    return rows, touched


def claims(row: Any) -> set[tuple[Any, ...]]:
    """The contract a row names (if its fields are readable at all): a mutated row may cost exactly this."""
    if not isinstance(row, dict):
        return set()
    try:
        return {(date.fromisoformat(str(row.get("expiration"))), float(row.get("strike")),  # type: ignore[arg-type]
                 "C" if row.get("type") == "call" else "P")}
    except (TypeError, ValueError, OverflowError):
        return set()


@st.composite
def text_of(draw: st.DrawFn, body: Any) -> str:
    """The HTTP body text: the JSON as sent, or truncated, an HTML page, nested too deep, or noise."""
    text = json.dumps(body)
    kind = draw(st.sampled_from(["json"] * 6 + ["truncated", "html", "empty", "deep", "noise", "duplicate_key"]))
    if kind == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "html":
        return draw(st.sampled_from([HTML, "<html><body>Not Found</body></html>", "  <!-- maintenance -->"]))
    if kind == "empty":
        return draw(st.sampled_from(["", " ", "\n"]))
    if kind == "deep":
        return "[" * 50_000 + "]" * 50_000
    if kind == "noise":
        return draw(st.text(max_size=40))
    if kind == "duplicate_key" and text.startswith("{"):
        return '{"data": 5, ' + text[1:]  # json.loads keeps the last one
    return text


@st.composite
def envelope(draw: st.DrawFn, body: dict[str, Any], main: str) -> str:
    """The payload around the rows broken: another body (Note, Information, Error…), a field deleted or
    swapped (``main``, the one the parser needs, most often), or the text itself truncated, HTML, noise."""
    kind = draw(st.sampled_from(["fields", "body", "text"]))
    if kind == "body":
        return json.dumps(draw(st.sampled_from(BODIES)))
    if kind == "fields":
        body = dict(body)
        name = draw(st.sampled_from([main, main, *body, "message", "data", "feed", "Global Quote", "Note",
                                     "Information"]))
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(bad_value(body.get(name), name))
        return json.dumps(body)
    return draw(text_of(body))


# --- the cycle's path, without the HTTP and Redis around it ---------------------------------------


def run_chain(texts: list[str], stats: Counter[str] | None = None) -> OptionChain | str:
    """What one symbol's chain cycle stores for these REALTIME_OPTIONS texts: the chain, or why nothing."""
    stats = Counter() if stats is None else stats
    traded = world()[2]
    rows: list[Any] = []
    requested: list[date] = []
    missing = []
    for expiry, text in zip(expiries_fetched(), texts, strict=True):
        got = classify(200, text)
        stats[f"class:{got.kind}"] += 1
        if got.reject:
            stats[f"refused:{got.reject}"] += 1
        if got.kind not in ("ok", "no_data"):
            return f"provider: {got.kind}"  # the client raises; the cycle keeps the last chain
        try:
            data = [] if got.kind == "no_data" else chain_parse.payload_rows(got.body)
        except PayloadRefused as exc:
            stats[f"refused:{exc.reason}"] += 1
            return f"refused: {exc.reason}"
        if not data:
            missing.append(expiry.isoformat())
        rows.extend(data)
        requested.extend([expiry] * len(data))
    if not rows:
        return "no rows"
    dropped: Counter[str] = Counter()
    cols = chain_parse.read_rows(rows, set(traded.dates), dropped, symbol=SYMBOL, requested=requested)
    why = chain_parse.spot_problem(spot(), cols, NOW, chains_cycle.RATE, chains_cycle.DIV_YIELD[SYMBOL])
    if why:
        stats.update({f"dropped:{k}": n for k, n in dropped.items()})
        stats[f"spot_refused:{why}"] += 1
        return f"spot: {why}"
    parsed = chain_parse.price_chain(cols, spot(), NOW, chains_cycle.RATE, chains_cycle.DIV_YIELD[SYMBOL], dropped)
    stats.update({f"dropped:{k}": n for k, n in parsed.dropped.items()})
    stats.update({f"refused:{k}": n for k, n in parsed.vendor_refused.items()})
    if len(parsed) == 0:
        return "all rows dropped"
    doc = chains_cycle.chain_document(SYMBOL, NOW, spot(), "ib_quote", traded, missing, parsed)
    stored = OptionChain.from_redis(doc.to_redis(), key="options:SPY:chain")  # exactly what a reader gets
    assert isinstance(stored, OptionChain), stored
    assert not stored.rejected, stored.rejected  # the writer stored nothing its own reader refuses
    return stored


def assert_storable(doc: OptionChain) -> None:
    """Nothing non-finite, out of range, duplicated or of an unasked expiry in a chain that would be stored."""
    asked = set(expiries_fetched())
    assert len({r.contract for r in doc.rows}) == len(doc.rows)
    for r in doc.rows:
        assert r.expiry in asked
        assert doc.spot / 10 <= r.strike <= doc.spot * 10
        assert 0 <= r.bid <= r.ask and r.ask > 0 and 0 <= r.mark <= doc.spot + r.strike
        assert r.ask <= doc.spot + r.strike
        assert 0 <= r.volume <= chain_parse.MAX_CONTRACTS and 0 <= r.open_interest <= chain_parse.MAX_CONTRACTS
        assert r.iv is not None and chain_parse.IV_MIN <= r.iv <= chain_parse.IV_MAX and r.t_years > 0
        numbers = [r.delta, r.gamma, r.vega, r.theta, r.rho, r.vanna, r.charm, r.iv_vendor, r.delta_vendor,
                   r.gamma_vendor, r.theta_vendor, r.vega_vendor, r.rho_vendor]
        assert all(v is None or math.isfinite(v) for v in numbers)
        assert r.iv_vendor is None or 0 < r.iv_vendor < chain_parse.VENDOR_IV_MAX
        assert r.delta_vendor is None or -1 <= r.delta_vendor <= 1
        assert r.gamma_vendor is None or r.gamma_vendor >= 0


# --- the suites -----------------------------------------------------------------------------------


def chain_texts(monthly_rows: list[Any] | None = None, zero_rows: list[Any] | None = None) -> list[str]:
    zero, monthly = expiries_fetched()
    return [json.dumps({**chain_body(zero), "data": chain_body(zero)["data"] if zero_rows is None else zero_rows}),
            json.dumps({**chain_body(monthly), "data": chain_body(monthly)["data"] if monthly_rows is None
                        else monthly_rows})]


@FUZZ
@given(data=st.data())
def test_chain_rows_never_crash_and_never_store_garbage(data: st.DataObject) -> None:
    zero, monthly = expiries_fetched()
    zero_rows, _ = data.draw(mutated_rows(chain_body(zero)["data"], max_bad=3))
    monthly_rows, _ = data.draw(mutated_rows(chain_body(monthly)["data"], max_bad=3))
    stats: Counter[str] = Counter()
    doc = run_chain(chain_texts(monthly_rows, zero_rows), stats)
    tally("av.chain rows", stats)
    if isinstance(doc, OptionChain):
        assert_storable(doc)


@FUZZ
@given(data=st.data())
def test_chain_envelopes_never_crash_and_never_store_garbage(data: st.DataObject) -> None:
    texts = chain_texts()
    i = data.draw(st.integers(0, 1))
    texts[i] = data.draw(envelope(chain_body(expiries_fetched()[i]), "data"))
    stats: Counter[str] = Counter()
    doc = run_chain(texts, stats)
    tally("av.chain envelope", stats)
    if isinstance(doc, OptionChain):
        assert_storable(doc)


@FUZZ
@given(data=st.data())
def test_one_bad_row_costs_only_itself(data: st.DataObject) -> None:
    rows, touched = data.draw(mutated_rows(chain_body(expiries_fetched()[1])["data"], max_bad=1))
    stats: Counter[str] = Counter()
    doc = run_chain(chain_texts(rows), stats)
    tally("av.chain one bad row", stats)
    assert isinstance(doc, OptionChain), doc  # one bad row never costs the payload
    assert_storable(doc)
    lost = baseline() - {r.contract for r in doc.rows}
    assert lost <= touched, (lost, touched)


def run_quote(text: str) -> Counter[str]:
    """GLOBAL_QUOTE as the cycle takes it: classified, its price read, then judged against the chain."""
    got = classify(200, text)
    stats: Counter[str] = Counter({f"class:{got.kind}": 1})
    if got.reject:
        stats[f"refused:{got.reject}"] += 1
    if got.kind != "ok":
        return stats
    try:
        price = chain_parse.global_quote_price(got.body, SYMBOL)
    except PayloadRefused as exc:
        stats[f"refused:{exc.reason}"] += 1
        return stats
    why = chain_parse.spot_problem(price, reference_columns(), NOW, chains_cycle.RATE, chains_cycle.DIV_YIELD[SYMBOL])
    if why:
        stats[f"refused:{why}"] += 1
        return stats
    stats["accepted"] += 1
    assert math.isfinite(price) and price > chain_parse.MIN_SPOT
    assert abs(price / spot() - 1) <= 2 * chain_parse.PARITY_TOLERANCE
    return stats


@FUZZ
@given(data=st.data())
def test_global_quote_envelopes_never_crash(data: st.DataObject) -> None:
    tally("av.quote envelope", run_quote(data.draw(envelope(quote_body(), "Global Quote"))))


@FUZZ
@given(data=st.data())
def test_only_a_real_price_prices_a_chain(data: st.DataObject) -> None:
    body = json.loads(json.dumps(quote_body()))
    quote = body["Global Quote"]
    for name in data.draw(st.lists(st.sampled_from(["05. price", "05. price", "05. price", *quote]), min_size=1,
                                   max_size=2)):
        quote[name] = data.draw(bad_value(quote.get(name), name))
    tally("av.quote price", run_quote(json.dumps(body)))


def run_news(text: str, feed_size: int) -> Counter[str]:
    """NEWS_SENTIMENT as the cycle takes it; what would be stored is encoded and read back."""
    got = classify(200, text)
    stats: Counter[str] = Counter({f"class:{got.kind}": 1})
    if got.reject:
        stats[f"refused:{got.reject}"] += 1
    if got.kind not in ("ok", "no_data"):
        return stats
    rejected: Counter[str] = Counter()
    try:
        value = news.aggregate(got.body if got.kind == "ok" and got.body else {"feed": []}, SYMBOL, NOW, rejected)
    except PayloadRefused as exc:
        rejected[exc.reason] += 1
    else:
        stored = NewsSentiment.from_redis(value.to_redis(), key="market:SPY:news")
        assert isinstance(stored, NewsSentiment), stored
        assert stored.score is None or (math.isfinite(stored.score) and -1 <= stored.score <= 1)
        assert stored.label == ("none" if stored.score is None else news.label(stored.score))
        assert stored.articles <= feed_size and math.isfinite(stored.relevance_sum)
        stats["stored"] += 1
    stats.update({f"refused:{k}": n for k, n in rejected.items()})
    return stats


def article_mutation(feed: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from([None, 3, "x", [], True]) | st.sampled_from(feed)


@FUZZ
@given(data=st.data())
def test_news_envelopes_never_crash(data: st.DataObject) -> None:
    body = news_body()
    tally("av.news envelope", run_news(data.draw(envelope(body, "feed")), len(body["feed"])))


@FUZZ
@given(data=st.data())
def test_news_articles_never_crash_and_store_only_sane_sentiment(data: st.DataObject) -> None:
    body = news_body()
    feed = json.loads(json.dumps(body["feed"]))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(feed) - 1))
        article = feed[i]
        if data.draw(st.booleans()) and isinstance(article, dict) and isinstance(article.get("ticker_sentiment"),
                                                                                 list):
            entries = article["ticker_sentiment"]
            j = data.draw(st.integers(0, len(entries) - 1))
            entries[j] = data.draw(mutated_row(entries[j]) | st.sampled_from([None, 7, "e", entries[j]]))
            if data.draw(st.booleans()):
                entries.append(data.draw(mutated_row(entries[j])))
        else:
            feed[i] = data.draw(mutated_row(article) | article_mutation(feed))
    tally("av.news articles", run_news(json.dumps({**body, "feed": feed}), len(feed)))


@FUZZ
@given(data=st.data())
def test_one_bad_article_costs_at_most_itself(data: st.DataObject) -> None:
    body = news_body()
    before = news.aggregate(body, SYMBOL, NOW).articles
    feed = json.loads(json.dumps(body["feed"]))
    i = data.draw(st.integers(0, len(feed) - 1))
    feed[i] = data.draw(mutated_row(feed[i]) | article_mutation(feed))
    rejected: Counter[str] = Counter()
    value = news.aggregate({**body, "feed": feed}, SYMBOL, NOW, rejected)
    tally("av.news one bad article", Counter({f"refused:{k}": n for k, n in rejected.items()}))
    assert before - 2 <= value.articles <= before + 1  # a copy of another article may cost that one too


@FUZZ
@given(data=st.data())
def test_intraday_payloads_are_classified_without_crashing(data: st.DataObject) -> None:
    """TIME_SERIES_INTRADAY: qc has no parser for it (warm start reads Redis, which `qc stream` backfills
    from IB), so the classifier, which any body would meet first, is what is fuzzed."""
    got = classify(200, data.draw(envelope(intraday_body(), "Time Series (5min)")))
    assert got.kind in CLASSES
    tally("av.intraday envelope", Counter({f"class:{got.kind}": 1, **({f"refused:{got.reject}": 1}
                                                                        if got.reject else {})}))


@pytest.mark.parametrize("status", [404, 429, 500, 503])
def test_non_200_statuses_are_http_errors_whatever_the_body(status: int) -> None:
    for text in (HTML, json.dumps(chain_body(expiries_fetched()[0])), "", "{"):
        got = classify(status, text)
        assert (got.kind, got.body, got.reject) == ("http_error", None, "")


def test_the_realistic_payloads_pass_untouched() -> None:
    doc = run_chain(chain_texts())
    assert isinstance(doc, OptionChain) and set(doc.dropped) <= {"iv_unsolved"}  # the sim's deep-ITM rows
    assert chain_parse.global_quote_price(quote_body(), SYMBOL) == pytest.approx(spot(), rel=1e-4)
    sentiment = news.aggregate(news_body(), SYMBOL, NOW)
    assert sentiment.articles == len(news_body()["feed"]) and sentiment.skipped == 0
