"""Every body the simulator's Alpha Vantage can send, and the ones AV has sent, classified before parsing."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest

from qc.core.models import Bar
from qc.ingest.cycle.alphavantage import FATAL, Classified, classify
from qc.sim.av import news as av_news
from qc.sim.av import payloads as av_payloads
from qc.sim.market.models import OptionContract, OptionQuote, Quote

DEMO = ("The **demo** API key is for demo purposes only. Please claim your free API key at "
        "(https://www.alphavantage.co/support/#api-key) to explore our full API offerings.")
NOTE = "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day."
SPREAD = ("We have detected your API key as XYZ and our standard API rate limit is 25 requests per day. Please "
          "consider spreading out your free API requests more sparingly (1 request per second).")


def body(payload: object) -> Classified:
    return classify(200, json.dumps(payload))


def chain_row() -> dict[str, str]:
    quote = OptionQuote(OptionContract("SPY", date(2026, 12, 18), 550.0, "C"), 4.1, 4.3, 4.2, 0.2, 0.5, 0.01,
                        0.3, -0.1, 1200, 35)
    return av_payloads.option_row(quote, date(2026, 11, 24), None)


@pytest.mark.parametrize(("payload", "kind"), [
    (av_payloads.error_message(av_payloads.MISSING_KEY), "bad_key"),
    (av_payloads.invalid_call("REALTIME_OPTIONS"), "bad_request"),
    (av_payloads.unknown_function("NOPE"), "bad_request"),
    (av_payloads.information(av_payloads.RATE_LIMIT_RPM), "throttled"),
    (av_payloads.information(av_payloads.RATE_LIMIT_DAILY), "throttled"),
    (av_payloads.information(SPREAD), "throttled"),
    (av_payloads.information(av_payloads.PREMIUM_INFORMATION), "not_entitled"),
    (av_payloads.information(DEMO), "bad_key"),
    ({"Information": av_news.INVALID_INPUTS}, "bad_request"),
    (av_news.news_payload([]), "no_data"),
    ({"Note": NOTE}, "throttled"),
    (av_payloads.premium_sample(), "not_entitled"),
    ({**av_payloads.premium_sample(), "message": "success"}, "not_entitled"),  # the fake rows alone betray it
    (av_payloads.options_payload("Realtime Options", []), "no_data"),
    (av_payloads.options_payload("Realtime Options", [chain_row()]), "ok"),
    # one garbled row in a real chain is that row's problem, not a premium sample (which would stop the worker)
    (av_payloads.options_payload("Realtime Options", [chain_row(), {**chain_row(), "expiration": "2099-99-99"}]),
     "ok"),
    ({"Global Quote": {}}, "no_data"),
])
def test_each_body_gets_its_class(payload: dict[str, object], kind: str) -> None:
    assert body(payload).kind == kind


def test_quotes_and_news_are_ok() -> None:
    quote = Quote(datetime(2026, 11, 24, 15, tzinfo=timezone.utc), 549.9, 550.1, 10, 10, 550.0, 5, 1000)
    bar = Bar(datetime(2026, 11, 24, 14, 31, tzinfo=timezone.utc), 549, 551, 548, 550, 100, 550, 3)
    for delayed in (False, True):
        assert body(av_payloads.global_quote("SPY", quote, [bar], 548.0, date(2026, 11, 24), delayed)).kind == "ok"
    article = {"title": "t", "ticker_sentiment": [{"ticker": "SPY", "relevance_score": "0.5",
                                                   "ticker_sentiment_score": "0.2"}]}
    assert body(av_news.news_payload([article])).kind == "ok"


def test_http_errors_and_broken_json() -> None:
    outage = classify(503, "<html><h1>503</h1></html>")
    assert (outage.kind, outage.status, outage.body) == ("http_error", 503, None)
    truncated = json.dumps(av_payloads.invalid_call("X"), indent=4)[:20]
    assert classify(200, truncated).kind == "malformed"
    assert classify(200, "[1, 2]").kind == "malformed"
    assert classify(200, "").kind == "malformed"


def test_reasons_carry_the_provider_text_and_fatal_classes_are_the_config_ones() -> None:
    assert body({"Note": NOTE}).reason == NOTE
    assert {"not_entitled", "bad_key"} == FATAL


@pytest.mark.parametrize(("status", "text", "kind", "reject"), [
    (200, "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head></html>", "malformed", "html_body"),
    (200, '{"endpoint": "Realtime Options", "message": "succ', "malformed", "malformed_json"),
    (200, "[" * 100_000 + "]" * 100_000, "malformed", "too_deep"),
    (200, "3.5", "malformed", "not_object"),
    (200, "null", "malformed", "not_object"),
    (404, "<html>Not Found</html>", "http_error", ""),  # a transport failure, not a refused body
    (200, '{"data": 0}', "ok", ""),  # not AV's empty answer: the parser refuses it, no missing expiry is recorded
    (200, '{"feed": ""}', "ok", ""),  # likewise: never stored as "no news"
    (200, '{"Global Quote": ""}', "ok", ""),
    (200, '{"data": [], "x": NaN}', "no_data", ""),
])
def test_refused_bodies_carry_a_short_reason(status: int, text: str, kind: str, reject: str) -> None:
    c = classify(status, text)
    assert (c.kind, c.reject) == (kind, reject)
    if reject == "html_body":
        assert "502 Bad Gateway" in c.reason
