"""`qc distribute`'s configured channels, rate limits and transport edges, without a socket or a Redis."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
import requests
from standardwebhooks.webhooks import Webhook
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from qc.core import config
from qc.core.errors import ConfigError
from qc.distribute import limits
from qc.distribute.channels import all_loopback, from_settings, routing_of
from qc.distribute.cycle.transport import no_answer, signed_headers
from qc.distribute.model import Target
from qc.distribute.render import WebhookMessage

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
X_ENV = {"QC_X_API_KEY": "ck", "QC_X_API_SECRET": "cs", "QC_X_ACCESS_TOKEN": "at", "QC_X_ACCESS_SECRET": "as"}


def settings(**env: str) -> config.Settings:
    return config.resolve({}, env, {}, {})


def test_every_channel_with_its_access() -> None:
    s = settings(QC_TELEGRAM_CHATS="premium=-1001,free=@qc_free_tier", QC_TELEGRAM_BOT_TOKEN="1:tok",
                 QC_WEBHOOKS="alpha=https://a.example/hook?token=t0k|premium+basic", QC_WEBHOOK_SECRET_ALPHA=SECRET,
                 QC_DISTRIBUTE_SEND_TIMEOUT_S="3", **X_ENV)
    ch = from_settings(s)
    assert [(t.channel, t.name, t.tiers) for t in ch.routing.targets] == [
        ("telegram", "premium", ("premium",)), ("telegram", "free", ("free",)),
        ("webhook", "alpha", ("premium", "basic")), ("x", "account", ("free",))]
    assert ch.telegram is not None and ch.telegram.token == "1:tok" and ch.x is not None
    assert ch.webhook_secret("alpha") == SECRET and ch.send_timeout_s == 3.0
    shown = repr(ch)
    assert "1:tok" not in shown and SECRET not in shown and "t0k" not in shown and "at" not in repr(ch.x)
    assert not all_loopback(ch)


def test_x_is_off_without_credentials_and_refused_with_half_of_them() -> None:
    assert routing_of(settings()).targets == () and from_settings(settings()).x is None
    with pytest.raises(ConfigError) as got:
        from_settings(settings(QC_X_API_KEY="ck", QC_X_API_SECRET="cs"))
    assert got.value.field == "QC_X_ACCESS_TOKEN" and "ck" not in str(got.value)


@pytest.mark.parametrize(("env", "field"), [
    ({"QC_TELEGRAM_CHATS": "premium=-1001"}, "QC_TELEGRAM_BOT_TOKEN"),
    ({"QC_WEBHOOKS": "alpha=https://a.example/h|premium"}, "QC_WEBHOOK_SECRET_ALPHA"),
    ({"QC_WEBHOOKS": "alpha=https://a.example/h|premium", "QC_WEBHOOK_SECRET_ALPHA": "whsec_short"},
     "QC_WEBHOOK_SECRET_ALPHA"),
    ({"QC_DISTRIBUTE_TIERS": "premium=0,basic=x"}, "QC_DISTRIBUTE_TIERS"),
    ({"QC_TELEGRAM_CHATS": "gold=-1001", "QC_TELEGRAM_BOT_TOKEN": "1:t"}, "QC_TELEGRAM_CHATS"),
])
def test_a_channel_misconfigured_is_one_config_error_naming_it(env: dict[str, str], field: str) -> None:
    with pytest.raises(ConfigError) as got:
        from_settings(settings(**env))
    assert got.value.field == field


def test_the_simulator_is_loopback() -> None:
    base = "http://127.0.0.1:8767"
    s = settings(QC_TELEGRAM_CHATS="premium=-1001", QC_TELEGRAM_BOT_TOKEN="1:t", QC_TELEGRAM_BASE_URL=base,
                 QC_WEBHOOKS=f"sim={base}/hooks/sim|premium", QC_WEBHOOK_SECRET_SIM=SECRET)
    assert all_loopback(from_settings(s))


def test_the_limits_each_send_draws_from() -> None:
    channel = Target("telegram", "premium", ("premium",), chat_id="-1001234")
    private = Target("telegram", "basic", ("basic",), chat_id="42")
    hook = Target("webhook", "alpha", ("premium",), url="https://a.example/h")
    x = Target("x", "account", ("free",))
    assert [(lim.bucket, lim.count, lim.window_s) for lim in limits.limits_for(channel)] == [
        ("telegram:chat:-1001234", 20, 60.0), ("telegram", 30, 1.0)]  # the scarce one first
    assert limits.limits_for(private)[0] == limits.Limit("telegram:chat:42", 1, 1.0)
    assert limits.limits_for(x) == (limits.X_POSTS,) and limits.X_POSTS.count == 100
    assert limits.limits_for(hook)[0].bucket == "webhook:alpha"
    assert limits.paused_by(channel, "channel") == limits.TELEGRAM_OVERALL
    assert limits.paused_by(x, "channel") == limits.X_POSTS
    assert limits.paused_by(hook, "target") == limits.webhook_endpoint("alpha")
    assert limits.paused_by(channel, "item") is None
    with pytest.raises(ValueError, match="burst"):
        limits.Limit("b", 5, 1.0, burst=6)


def _connection_error(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/bot123:secret/sendMessage", reason))  # type: ignore[arg-type]


def test_a_transport_error_says_whether_the_request_may_have_left_and_never_quotes_the_url() -> None:
    refused = no_answer(_connection_error(NewConnectionError(None, "refused")))  # type: ignore[arg-type]
    assert refused.status is None and not refused.after_send
    dropped = no_answer(_connection_error(ProtocolError("Connection aborted.")))
    assert dropped.after_send
    assert no_answer(requests.ReadTimeout("read timed out url=/bot123:secret")).after_send
    assert not no_answer(requests.ConnectTimeout("connect timed out")).after_send
    assert no_answer(RuntimeError("bug")).after_send  # in doubt: it may have left
    for answer in (refused, dropped):
        assert "secret" not in answer.error and "/bot" not in answer.error


def test_webhook_headers_follow_standard_webhooks_at_qc_time() -> None:
    message = WebhookMessage("1764864012345a1b2c3d4:premium", b'{"type":"signal.published","data":{"x":"\xc3\xa9"}}')
    at = 1_795_000_000.75  # a simulated instant: the header says whole seconds of it
    headers = signed_headers(SECRET, message, at)
    assert headers["webhook-id"] == message.webhook_id and headers["webhook-timestamp"] == "1795000000"
    expected = Webhook(SECRET).sign(message.webhook_id, datetime.fromtimestamp(1_795_000_000, timezone.utc),
                                    message.body.decode())
    assert headers["webhook-signature"] == expected and expected.startswith("v1,")
