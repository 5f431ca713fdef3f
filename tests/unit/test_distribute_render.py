"""Distribution templates: every channel carries the same facts with their units, Telegram's HTML never lets
data markup through and stays within 4096 visible characters, X's teaser within 280 weighted characters
with one cashtag and no URL, and the webhook body is canonical and the same on every retry."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.distribute import render
from qc.distribute.model import Tier
from qc.signals.codec import Signal, new_id
from qc.signals.model import STRATEGIES, Contract, Contribution, Gate, Quote

UTC = timezone.utc
NOW = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)  # 10:30 EST
PREMIUM, BASIC, FREE = Tier("premium", 0.0), Tier("basic", 60.0), Tier("free", 300.0)
OUR_TAGS = re.compile(r"</?(?:b|i|code)>")


def a_signal(**changes: Any) -> Signal:
    fields: dict[str, Any] = {
        "id": "1796311800000a1b2c3d4", "created_at": NOW, "strategy": "0dte",
        "contract": Contract("SPY", "OPT", date(2026, 12, 3), 600.0, "C", 100, "SMART", "ARCA"), "side": "BUY",
        "direction": 1, "order_type": "LMT", "limit": 2.03, "take_profit": 3.05, "stop": 1.52,
        "time_stop": NOW + timedelta(hours=1), "score": 0.53, "threshold": 0.3, "mode": "neutral",
        "size_multiplier": 1.0, "quote": Quote(2.0, 2.04, 2.02, 0.47, 1000, 500, 60.0),
        "contributions": (Contribution("order_flow", 0.6, 3.0, 0.4, 1.0, ""),),
        "factor_inputs": {"order_flow": {"buy": 600.0}}, "gates": (Gate("session", True),),
        "fingerprint": "fp-secret-internal", "notes": ("walls near",), "lineage": {"cycle": 7}, "trail_pct": 0.0}
    fields.update(changes)
    return Signal(**fields)


# --- any signal the codec accepts --------------------------------------------------------------------------

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))])
instants = st.datetimes(min_value=datetime(2005, 1, 1), max_value=datetime(2099, 12, 31),  # noqa: DTZ001
                        timezones=ZONES)
finite = st.floats(allow_nan=False, allow_infinity=False)
non_negative = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-9, allow_nan=False, allow_infinity=False)
nasty = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("<>&\"'$@#/:")), max_size=60)
symbols = st.sampled_from(["SPY", "QQQ", "IWM", "BRK.B", "GOOGL"]) | st.text(min_size=1, max_size=30)


@st.composite
def signals(draw: st.DrawFn) -> Signal:
    symbol = draw(symbols)
    if draw(st.booleans()):
        contract = Contract(symbol, "OPT", draw(st.dates(date(2005, 1, 1), date(2099, 12, 31))),
                            draw(st.floats(min_value=1e-9, max_value=1e12)), draw(st.sampled_from(["C", "P"])),
                            draw(st.integers(1, 10_000)), "SMART", "")
    else:
        contract = Contract(symbol, "STK", None, None, None, 1, "SMART", "ARCA")
    created = draw(instants)
    return Signal(
        id=draw(st.just(new_id(created)) | st.text(min_size=1, max_size=80)), created_at=created,
        strategy=draw(st.sampled_from(STRATEGIES)), contract=contract, side=draw(st.sampled_from(["BUY", "SELL"])),
        direction=draw(st.sampled_from([1, -1])), order_type=draw(st.sampled_from(["LMT", "LOC"])),
        limit=draw(positive), take_profit=draw(non_negative), stop=draw(non_negative), time_stop=draw(instants),
        score=draw(st.floats(-1.0, 1.0)), threshold=draw(non_negative), mode="neutral",
        size_multiplier=1.0, quote=Quote(1.0, 1.1, 1.05, None, 0, 0, 0.0), contributions=(), factor_inputs={},
        gates=(), fingerprint="fp", notes=tuple(draw(st.lists(nasty | st.text(max_size=3000), max_size=8))),
        trail_pct=draw(st.sampled_from([0.0, 5.0, 12.5, 99.99])))


tiers = st.sampled_from([PREMIUM, BASIC, FREE, Tier("a" * 32, 3600.0)])


def data_markup_leaks(html: str) -> bool:
    """True when a '<' or '>' that is not one of our own tags is in the HTML."""
    return "<" in OUR_TAGS.sub("", html) or ">" in OUR_TAGS.sub("", html)


# --- Telegram --------------------------------------------------------------------------------------------

def test_telegram_states_every_fact_with_its_unit() -> None:
    m = render.telegram_message(a_signal(trail_pct=10.0), BASIC, protect=True)
    text = render.telegram_visible(m.text)
    for fact in ["BUY SPY 2026-12-03 600 call", "limit order at $2.03 per share",
                 "($203.00 per contract of 100 shares)", "Take profit: $3.05 per share", "Stop: $1.52 per share",
                 "Trailing stop: 10% below the best premium", "Time stop: 2026-12-03 11:30 EST",
                 "Score: +0.53 (threshold ±0.30)", "Strategy: 0DTE", "Emitted: 2026-12-03 10:30:00 EST",
                 "Tier: basic, 60 s after release", "Note: walls near",
                 "Signal id (for support): 1796311800000a1b2c3d4", "option premium in $ per share"]:
        assert fact in text, fact
    assert "fp-secret-internal" not in text and "neutral" not in text  # internals stay internal
    assert (m.parse_mode, m.protect_content, m.disable_notification) == ("HTML", True, False)


def test_telegram_shows_new_york_summer_time_and_a_put() -> None:
    july = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)
    s = a_signal(created_at=july, time_stop=july + timedelta(minutes=45), side="BUY", direction=-1,
                 contract=Contract("QQQ", "OPT", date(2026, 7, 17), 502.5, "P", 100, "SMART", ""))
    text = render.telegram_visible(render.telegram_message(s, PREMIUM, protect=False).text)
    assert "Emitted: 2026-07-01 10:00:00 EDT" in text and "Time stop: 2026-07-01 10:45 EDT" in text
    assert "BUY QQQ 2026-07-17 502.5 put" in text and "bearish" in text and "Tier: premium, at release" in text


def test_telegram_share_signal_has_no_contract_arithmetic() -> None:
    s = a_signal(strategy="moc", order_type="LOC", limit=601.25, take_profit=605.0, stop=598.0,
                 contract=Contract("SPY", "STK", None, None, None, 1, "SMART", "ARCA"))
    text = render.telegram_visible(render.telegram_message(s, FREE, protect=False).text)
    assert "BUY SPY shares" in text and "limit-on-close order at $601.25 per share" in text
    assert "per contract" not in text and "Tier: free, 5 min after release" in text


def test_a_sub_cent_limit_is_not_rounded_away() -> None:
    text = render.telegram_visible(render.telegram_message(a_signal(limit=2.035), PREMIUM, protect=True).text)
    assert "$2.035 per share" in text and "$203.50 per contract" in text


def test_escaping_keeps_data_markup_out() -> None:
    s = a_signal(notes=("<b>free</b> & <a href=\"x\">click</a>", "1 < 2 > 0"),
                 contract=Contract("<i>", "OPT", date(2026, 12, 3), 600.0, "C", 100, "SMART", ""))
    m = render.telegram_message(s, PREMIUM, protect=True)
    assert not data_markup_leaks(m.text)
    visible = render.telegram_visible(m.text)
    assert "<b>free</b> & <a href=\"x\">click</a>" in visible and "1 < 2 > 0" in visible


def test_escape_html_rules() -> None:
    assert render.escape_html('a<b>&"c"') == 'a&lt;b&gt;&amp;"c"'
    assert render.escape_html('say "hi"', quote=True) == "say &quot;hi&quot;"
    assert render.escape_html("&lt;") == "&amp;lt;"  # an entity in data is data
    assert render.telegram_visible(render.escape_html("&lt;")) == "&lt;"


def test_visible_length_counts_what_telegram_counts() -> None:
    assert render.telegram_length("<b>a&amp;b</b>") == 3
    assert render.telegram_length("😀") == 2  # outside the BMP: two UTF-16 units
    assert render.telegram_length("é") == 1


def test_overlong_notes_are_truncated_visibly_and_the_rest_survives() -> None:
    s = a_signal(notes=tuple(f"note {i} " + "x" * 2000 for i in range(10)))
    m = render.telegram_message(s, PREMIUM, protect=True)
    visible = render.telegram_visible(m.text)
    assert 4000 < render.telegram_length(m.text) <= render.TELEGRAM_LIMIT
    assert "notes truncated" in visible and visible.endswith("Signal id (for support): 1796311800000a1b2c3d4")
    assert "Take profit: $3.05 per share" in visible


def test_escape_heavy_notes_keep_the_markup_under_its_cap() -> None:
    m = render.telegram_message(a_signal(notes=("&<>" * 5000,)), PREMIUM, protect=True)
    assert len(m.text) <= render.TELEGRAM_RAW_LIMIT and render.telegram_length(m.text) <= render.TELEGRAM_LIMIT
    assert "notes truncated" in m.text and not data_markup_leaks(m.text)


def test_astral_notes_are_cut_by_utf16_length() -> None:
    m = render.telegram_message(a_signal(notes=("😀" * 3000,)), PREMIUM, protect=True)
    assert render.telegram_length(m.text) <= render.TELEGRAM_LIMIT < len(m.text) * 2


def test_payload_is_what_send_message_takes() -> None:
    m = render.telegram_message(a_signal(), PREMIUM, protect=True)
    assert m.payload("-1001234567890")["chat_id"] == -1001234567890
    body = m.payload("@qc_free")
    assert body["chat_id"] == "@qc_free" and body["parse_mode"] == "HTML" and body["protect_content"] is True
    assert body["link_preview_options"] == {"is_disabled": True}


@given(signals(), tiers, st.booleans())
def test_any_signal_fits_telegram(s: Signal, tier: Tier, protect: bool) -> None:
    m = render.telegram_message(s, tier, protect=protect)
    assert 1 <= render.telegram_length(m.text) <= render.TELEGRAM_LIMIT
    assert len(m.text) <= render.TELEGRAM_RAW_LIMIT
    assert not data_markup_leaks(m.text)
    assert m.protect_content is protect
    m.text.encode("utf-8")  # no lone surrogate reaches the wire


# --- X ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "weight"), [
    ("a" * 280, 280), ("中" * 140, 280), ("😀", 2), ("é", 1), ("e\u0301", 1), ("—", 1), ("…", 2), ("©", 2),
    ("\u2032", 1), ("\u2038", 2), ("\u10ff", 1), ("\u1100", 2), ("\u10ff" + "\u2000", 2), ("\u4e00", 2),
])
def test_x_weights_per_twitter_text_v3(text: str, weight: int) -> None:
    assert render.x_length(text) == weight


def test_x_teaser_carries_the_facts_in_short() -> None:
    post = render.x_post(a_signal(trail_pct=10.0), FREE)
    assert post.text == (
        "$SPY 0DTE signal (bullish): BUY 2026-12-03 600 call, limit $2.03/share\n"
        "Take profit $3.05, stop $1.52 (trailing 10%), time stop 2026-12-03 11:30 EST.\n"
        "Emitted 2026-12-03 10:30:00 EST.\n"
        "Subscribers had it 5 min earlier.\n"
        "Ref 1796311800000a1b2c3d4")
    assert post.payload() == {"text": post.text}


def test_x_teasers_of_two_signals_or_two_tiers_differ() -> None:
    one, two = a_signal(), a_signal(id="1796311800001ffffffff")
    assert render.x_post(one, FREE).text != render.x_post(two, FREE).text
    assert render.x_post(one, FREE).text != render.x_post(one, BASIC).text


@given(signals(), tiers)
def test_any_signal_fits_x(s: Signal, tier: Tier) -> None:
    text = render.x_post(s, tier).text
    assert render.x_length(text) <= render.X_LIMIT
    assert len(re.findall(r"\$[A-Za-z]", text)) <= 1  # at most one cashtag
    low = text.lower()
    assert "://" not in low and "www." not in low and "@" not in text
    assert "Ref " in text


# --- webhook ---------------------------------------------------------------------------------------------

def test_webhook_body_is_canonical_machine_form() -> None:
    msg = render.webhook_message(a_signal(), BASIC)
    assert msg.webhook_id == "1796311800000a1b2c3d4:basic" and msg.event_type == "signal.published"
    doc = json.loads(msg.body)
    assert render.canonical_json(doc) == msg.body and b" " not in msg.body.replace(b"walls near", b"")
    assert doc["type"] == "signal.published" and doc["timestamp"] == "2026-12-03T15:30:00+00:00"
    data = doc["data"]
    assert data["tier"] == "basic" and data["tier_delay_s"] == 60.0
    assert data["limit"] == 2.03 and data["price_unit"] == "usd_per_share" and data["contract"]["multiplier"] == 100
    assert data["contract"] == {"sec_type": "OPT", "symbol": "SPY", "expiry": "2026-12-03", "strike": 600.0,
                                "right": "C", "multiplier": 100}
    assert data["time_stop"] == "2026-12-03T16:30:00+00:00" and data["trail_pct"] is None
    assert data["side"] == "BUY" and data["order_type"] == "LMT" and data["strategy"] == "0dte"
    assert "fingerprint" not in data and "mode" not in data


def test_webhook_retry_renders_the_same_bytes() -> None:
    assert render.webhook_message(a_signal(), FREE) == render.webhook_message(a_signal(), FREE)
    assert render.webhook_message(a_signal(), FREE).body != render.webhook_message(a_signal(), BASIC).body


@given(signals(), tiers)
def test_any_signal_gives_a_canonical_webhook(s: Signal, tier: Tier) -> None:
    msg = render.webhook_message(s, tier)
    doc = json.loads(msg.body.decode("utf-8"))
    assert render.canonical_json(doc) == msg.body
    assert msg.webhook_id.endswith(f":{tier.name}") and doc["data"]["tier"] == tier.name
