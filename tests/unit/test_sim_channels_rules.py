"""The simulated channels' rules without a socket: Telegram's HTML and bodies, X's weighted length,
cashtags, duplicates and rate headers, Standard Webhooks signatures checked in simulated time, and the
fault switches. Bodies are compared verbatim with the reference's (distribution-channels.md §1-3)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from qc.core.codec import Absent
from qc.runtime.codec import SimClockAnchor
from qc.sim.channels.server import ChannelsServer
from qc.sim.channels.telegram_html import EntityError, visible_text
from qc.sim.channels.webhooks import signer, verify
from qc.sim.channels.wire import Reply
from qc.sim.channels.xtext import cashtags, weighted_length

SIM_NOW = 1_795_000_000.0  # simulated time, far from the wall clock on purpose
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Sim:
    """A ChannelsServer driven in-process at a simulated time the test moves."""

    def __init__(self) -> None:
        self.now = SIM_NOW
        self.server = ChannelsServer(lambda: self.now, wall=lambda: 1.0)

    def post(self, path: str, doc: Any = None, body: bytes | None = None, **headers: str) -> tuple[Reply, Any]:
        raw = body if body is not None else json.dumps(doc).encode()
        reply = self.server.respond(path, {k.lower().replace("_", "-"): v for k, v in headers.items()}, raw)
        return reply, json.loads(reply.body) if reply.body.startswith(b"{") else reply.body.decode()

    def telegram(self, chat: Any, text: str, **extra: Any) -> tuple[Reply, Any]:
        return self.post("/bot123:ABC/sendMessage", {"chat_id": chat, "text": text, **extra})

    def tweet(self, text: str, auth: str = "Bearer u1") -> tuple[Reply, Any]:
        return self.post("/2/tweets", {"text": text}, Authorization=auth)

    def view(self, channel: str) -> dict[str, Any]:
        return next(row for row in self.server.received() if row["channel"] == channel)


@pytest.fixture
def sim() -> Sim:
    return Sim()


# --- Telegram -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("html", "shown"), [
    ("<b>SPY</b> 0DTE call &lt;5% &amp; &quot;hot&quot;", 'SPY 0DTE call <5% & "hot"'),
    ('<a href="https://x.y/?a=1&b=>2">link</a> &copy; &#36;4.50 &#x24;', "link &copy; $4.50 $"),
    ("<tg-spoiler>s</tg-spoiler><pre><code class=\"language-python\">x</code></pre>", "sx"),
])
def test_html_that_telegram_parses(html: str, shown: str) -> None:
    assert visible_text(html) == shown


@pytest.mark.parametrize(("html", "reason"), [
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("é<div>x</div>", 'Unsupported start tag "div" at byte offset 2'),
    ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ('<a href="x', "Unclosed start tag at byte offset 0"),
])
def test_html_that_telegram_refuses(html: str, reason: str) -> None:
    with pytest.raises(EntityError) as caught:
        visible_text(html)
    assert str(caught.value) == reason


def test_telegram_success_and_its_refusals(sim: Sim) -> None:
    reply, doc = sim.telegram("-1001234567890", "<b>BUY</b> SPY", parse_mode="HTML", protect_content=True)
    assert reply.status == 200
    assert doc == {"ok": True, "result": {"message_id": 1, "chat": {"id": -1001234567890, "type": "channel"},
                                          "date": int(SIM_NOW), "text": "BUY SPY"}}
    assert sim.telegram("@tier_free", "x" * 4097)[1] == {"ok": False, "error_code": 400,
                                                         "description": "Bad Request: message is too long"}
    assert sim.telegram("@tier_free", "<b></b>  ", parse_mode="HTML")[1]["description"] == \
        "Bad Request: message text is empty"
    assert sim.telegram("@tier_free", "x" * 4096)[0].status == 200  # 4096 is allowed
    assert sim.telegram(7, "a <5% move", parse_mode="HTML")[1]["description"] == \
        "Bad Request: can't parse entities: Unsupported start tag \"5%\" at byte offset 2"
    assert sim.post("/bot/sendMessage", {"chat_id": 1, "text": "x"})[1] == {
        "ok": False, "error_code": 404, "description": "Not Found"}
    row = sim.view("telegram")["received"][0]
    assert row["target"] == "-1001234567890" and row["protect_content"] is True and row["parse_mode"] == "HTML"
    assert row["bot"].startswith("***") and "123:ABC" not in json.dumps(sim.server.received())


def test_telegram_flood_limits_answer_429_with_retry_after_in_simulated_seconds(sim: Sim) -> None:
    for i in range(20):
        assert sim.telegram(-100777, f"signal {i}")[0].status == 200
        sim.now += 1.0
    reply, doc = sim.telegram(-100777, "signal 20")
    assert reply.status == 429
    assert doc == {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 40",
                   "parameters": {"retry_after": 40}}
    sim.now += 40
    assert sim.telegram(-100777, "signal 20")[0].status == 200
    view = sim.view("telegram")
    assert view["accepted"] == 21 and view["limit_violations"] == {"group_chat": 1}
    assert view["refused_by_reason"] == {"rate_limited": 1}
    assert max(view["max_admitted_per_window"]["group_chat"].values()) == 20


def test_telegram_switches_chat_not_found_blocked_gateway_and_clear(sim: Sim) -> None:
    sim.server.chat_not_found("@gone")
    assert sim.telegram("@gone", "x")[1]["description"] == "Bad Request: chat not found"
    sim.server.fail_next("telegram", 1, 403, target="42")
    assert sim.telegram(43, "x")[0].status == 200  # another target: untouched
    sim.now += 1
    assert sim.telegram(42, "x")[1] == {"ok": False, "error_code": 403,
                                        "description": "Forbidden: bot was blocked by the user"}
    sim.server.fail_next("telegram", 1, 502)
    reply, page = sim.telegram(42, "x")
    assert reply.status == 502 and "502 Bad Gateway" in page and reply.content_type == "text/html"
    sim.server.fail_next("telegram", 1, 429, retry_after_s=2.5)
    assert sim.telegram(42, "x")[1]["parameters"] == {"retry_after": 3}
    assert sim.server.clear() == {"cleared": 1}
    assert sim.telegram("@gone", "x")[0].status == 200
    with pytest.raises(ValueError, match="status"):
        sim.server.fail_next("telegram", 1, 410)
    with pytest.raises(ValueError, match="channel"):
        sim.server.fail_next("sms", 1, 500)


def test_a_timeout_is_delivered_and_recorded_then_answered_late(sim: Sim) -> None:
    sim.server.timeout_next("telegram", 1, seconds=12.0)
    reply, _ = sim.telegram(5, "slow")
    assert reply.status == 200 and reply.delay_s == 12.0
    row = sim.view("telegram")["received"][0]
    assert row["delivered"] and row["timed_out"] and sim.view("telegram")["timeouts"] == 1
    sim.now += 1
    assert sim.telegram(5, "fast")[0].delay_s == 0.0


# --- X ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "weight"), [
    ("a" * 280, 280), ("é" * 10, 10), ("好", 2), ("—“”", 3), ("…", 2), ("€", 2),  # U+2026 is outside the light ranges
    ("see https://example.com/a/very/long/path?x=1 now", 4 + 23 + 4), ("qc.io", 23),
    ("👍", 2), ("👍🏽", 2), ("👨‍👩‍👧", 2), ("🇺🇸", 2), ("🇺🇸🇬🇧", 4), ("❤️", 2),
    ("e\u0301", 1),  # NFC: one é
])
def test_weighted_length(text: str, weight: int) -> None:
    assert weighted_length(text) == weight


def test_cashtags() -> None:
    assert cashtags("$SPY calls, $4.50 premium, US$ and a$b") == ["$SPY"]
    assert cashtags("$SPY vs $qqq and $BRK.B") == ["$SPY", "$qqq", "$BRK.B"]


def test_x_posts_refusals_and_rate_headers(sim: Sim) -> None:
    reply, doc = sim.tweet("SPY 0DTE call $SPY")
    assert reply.status == 201 and doc["data"]["text"] == "SPY 0DTE call $SPY" and doc["data"]["id"].isdigit()
    assert reply.headers == {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "99",
                             "x-rate-limit-reset": str(int(SIM_NOW) + 900)}
    assert sim.tweet("SPY 0DTE call $SPY")[1] == {
        "detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
        "title": "Forbidden", "status": 403}
    assert sim.tweet("SPY 0DTE call $SPY", auth="Bearer u2")[0].status == 201  # duplicates are per account
    reply, doc = sim.tweet("好" * 141)
    assert reply.status == 400 and doc["title"] == "Invalid Request" and "282 weighted" in doc["errors"][0]["message"]
    reply, doc = sim.tweet("$SPY and $QQQ")
    assert reply.status == 400 and "at most one cashtag" in doc["errors"][0]["message"]
    reply, doc = sim.post("/2/tweets", {"text": "no auth"})
    assert reply.status == 401 and doc == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                           "detail": "Unauthorized"}


def test_x_allows_100_per_15_minutes_per_user(sim: Sim) -> None:
    for i in range(100):
        assert sim.tweet(f"post {i}")[0].status in (201, 403, 400)
        sim.now += 1
    reply, doc = sim.tweet("post 100")
    assert reply.status == 429
    assert doc == {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
    assert reply.headers["x-rate-limit-remaining"] == "0"
    assert reply.headers["x-rate-limit-reset"] == str(int(SIM_NOW) + 900)
    sim.now = SIM_NOW + 900
    assert sim.tweet("post 100")[0].status == 201
    view = sim.view("x")
    assert view["limit_violations"] == {"user": 1} and max(view["max_admitted_per_window"]["user"].values()) == 100


def test_an_oauth1_account_is_one_user_whatever_its_nonce_and_signature(sim: Sim) -> None:
    def oauth(token: str, nonce: str) -> str:
        return (f'OAuth oauth_nonce="{nonce}", oauth_timestamp="1795000000", oauth_version="1.0", '
                f'oauth_signature_method="HMAC-SHA1", oauth_consumer_key="ck", oauth_token="{token}", '
                f'oauth_signature="{nonce}sig%3D"')

    assert sim.tweet("one post", auth=oauth("acct-1", "n1"))[0].status == 201
    assert sim.tweet("one post", auth=oauth("acct-1", "n2"))[0].status == 403  # same account: duplicate
    assert sim.tweet("one post", auth=oauth("acct-2", "n3"))[0].status == 201  # another account
    users = {row["target"] for row in sim.view("x")["received"]}
    assert len(users) == 2 and not any("acct" in u or "sig" in u for u in users)


def test_x_injected_429_announces_its_reset(sim: Sim) -> None:
    sim.server.fail_next("x", 1, 429, retry_after_s=60)
    reply, _ = sim.tweet("x")
    assert reply.status == 429 and reply.headers["x-rate-limit-reset"] == str(int(SIM_NOW) + 60)


# --- webhooks -----------------------------------------------------------------------------------

def signed(msg_id: str, ts: float, body: str, secret: str = SECRET) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, timezone.utc), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(ts)), "webhook-signature": signature}


def test_signatures_are_checked_against_simulated_time() -> None:
    hook = signer(SECRET)
    body = '{"signal": "s1"}'
    assert verify(hook, body.encode(), signed("m1", SIM_NOW, body), SIM_NOW) is None
    rotated = signed("m1", SIM_NOW, body)
    rotated["webhook-signature"] = f"v1,bm9wZQ== v1a,xyz garbage {rotated['webhook-signature']}"
    assert verify(hook, body.encode(), rotated, SIM_NOW) is None  # one match among several (key rotation)
    assert verify(hook, b'{"signal": "s2"}', signed("m1", SIM_NOW, body), SIM_NOW) == "no matching signature found"
    other = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
    assert verify(hook, body.encode(), signed("m1", SIM_NOW, body, other), SIM_NOW) == "no matching signature found"
    assert verify(hook, body.encode(), signed("m1", SIM_NOW - 301, body), SIM_NOW) == "message timestamp too old"
    assert verify(hook, body.encode(), signed("m1", SIM_NOW + 301, body), SIM_NOW) == "message timestamp too new"
    assert verify(hook, body.encode(), {"webhook-id": "m1"}, SIM_NOW) == "missing required headers"
    bad_ts = {**signed("m1", SIM_NOW, body), "webhook-timestamp": "inf"}
    assert verify(hook, body.encode(), bad_ts, SIM_NOW) == "invalid webhook-timestamp"


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_!!!"])
def test_a_secret_must_be_whsec_base64(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        signer(secret)


def test_webhook_deliveries_dedupe_view_and_failures(sim: Sim) -> None:
    body = '{"signal": "s1"}'
    assert sim.post("/hooks/acme", body=body.encode(), **{"webhook-id": "s1:premium"})[0].status == 204
    sim.server.set_secret("acme", SECRET)
    assert sim.post("/hooks/acme", body=body.encode(), **signed("s1:premium", SIM_NOW, body))[0].status == 204
    reply, doc = sim.post("/hooks/acme", body=body.encode(), **{**signed("s1:premium", SIM_NOW, body),
                                                                "webhook-signature": "v1,AAAA"})
    assert reply.status == 401 and doc == {"error": "invalid signature: no matching signature found"}
    sim.server.fail_next("webhook", 1, 410, target="acme")
    assert sim.post("/hooks/acme", body=body.encode(), **signed("s2:premium", SIM_NOW, body))[0].status == 410
    sim.server.fail_next("webhook", 1, 429, retry_after_s=30)
    reply, _ = sim.post("/hooks/acme", body=body.encode(), **signed("s2:premium", SIM_NOW, body))
    assert reply.status == 429 and reply.headers == {"retry-after": "30"}
    view = sim.view("webhook")
    assert view["delivered"] == {"acme": {"s1:premium": 2}}
    assert view["refused_by_reason"] == {"bad_signature": 1, "injected_410": 1, "injected_429": 1}
    assert [r["status"] for r in view["received"]] == [204, 204, 401, 410, 429]
    assert view["received"][0]["body"] == body and view["received"][0]["signature"] == "unchecked"


# --- where a worker finds the channels ------------------------------------------------------------

def test_the_clock_anchor_carries_the_channels_port_and_reads_without_it() -> None:
    anchor = SimClockAnchor(1.8e9, 1.79e9, 10.0, 4002, 8765, 8767)
    assert anchor.to_redis()["channels_port"] == "8767"
    assert SimClockAnchor.from_redis(anchor.to_redis(), key="k") == anchor
    older = {k: v for k, v in anchor.to_redis().items() if k != "channels_port"}  # a simulator without channels
    read = SimClockAnchor.from_redis(older, key="k")
    assert isinstance(read, SimClockAnchor) and read.channels_port is None and "channels_port" not in read.to_redis()
    bad = SimClockAnchor.from_redis({**anchor.to_redis(), "channels_port": "0"}, key="k")
    assert isinstance(bad, Absent) and "channels_port" in bad.reason
