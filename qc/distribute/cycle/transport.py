"""One HTTP request per channel, and what came back: Telegram sendMessage, a signed webhook, an X post.

Why apart from the decisions (``qc.distribute.policy`` classifies the :class:`Answer`): the one place
that touches the network and holds credentials. Each sender thread owns a :class:`Transport` (a
``requests.Session`` is not shared across threads), with the connect and read timeouts of
``QC_DISTRIBUTE_SEND_TIMEOUT_S``.

- **Telegram**: ``POST {base}/bot{token}/sendMessage``, the JSON body of ``render.TelegramMessage``.
- **Webhooks**: the exact body bytes, signed per Standard Webhooks with the endpoint's ``whsec_`` secret
  (the ``standardwebhooks`` package): ``webhook-id`` (the same on every retry), ``webhook-timestamp``
  (whole Unix seconds of **qc's** clock: the simulator checks it against its own simulated clock, and in
  production qc's clock is the wall clock) and ``webhook-signature``.
- **X**: ``POST {base}/2/tweets`` with OAuth 1.0a user context (``requests-oauthlib``): one house account
  needs no token refresh, as OAuth 2.0 PKCE tokens would every two hours.

Transport errors are reduced to their kind: whether the request may have left (a read timeout, a
connection dropped after sending) or surely did not (refused, a connect timeout), and a short text
that never holds a URL, because requests puts the URL, and with it the bot token, into its messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from math import floor
from typing import Any

import requests
from requests_oauthlib import OAuth1
from standardwebhooks.webhooks import Webhook
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from qc.distribute.channels import Channels
from qc.distribute.render import TelegramMessage, WebhookMessage, XPost

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"


@dataclass(frozen=True)
class Answer:
    """What one request got: ``status`` None when no HTTP answer came (``after_send``: it may have
    arrived anyway), the JSON object body if there was one, the headers, and a short error text."""

    status: int | None
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    after_send: bool = False
    error: str = ""


def no_answer(exc: BaseException) -> Answer:
    """A request that raised: did it surely not leave (refused, connect timeout) or may it have arrived?"""
    name = type(exc).__name__
    if isinstance(exc, requests.ConnectTimeout):
        return Answer(None, error=f"connect timeout ({name})")
    if isinstance(exc, requests.ReadTimeout):
        return Answer(None, after_send=True, error=f"no answer within the read timeout ({name})")
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return Answer(None, error=f"could not connect ({type(reason).__name__})")
        return Answer(None, after_send=True, error=f"connection lost after sending ({name})")
    if isinstance(exc, requests.RequestException):
        return Answer(None, error=f"request not sent ({name})")
    return Answer(None, after_send=True, error=f"internal error while sending ({name})")


def _answer(response: requests.Response) -> Answer:
    body: Mapping[str, Any] | None = None
    if JSON_TYPE in response.headers.get("content-type", ""):
        try:
            doc = response.json()
        except (ValueError, RecursionError):  # not JSON, or nested deeper than any parser recurses: no body
            doc = None
        body = doc if isinstance(doc, dict) else None
    return Answer(response.status_code, body, dict(response.headers))


def signed_headers(secret: str, message: WebhookMessage, now: float) -> dict[str, str]:
    """Standard Webhooks headers for ``message`` at qc time ``now`` (whole seconds, as the spec sends them)."""
    stamp = floor(now)
    signature = Webhook(secret).sign(message.webhook_id, datetime.fromtimestamp(stamp, timezone.utc),
                                     message.body.decode("utf-8"))
    return {"content-type": JSON_TYPE, "webhook-id": message.webhook_id, "webhook-timestamp": str(stamp),
            "webhook-signature": signature}


class Transport:
    """The requests of one sender thread; every method returns an :class:`Answer`, never raises."""

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        self.timeout = (channels.send_timeout_s, channels.send_timeout_s)
        self.session = requests.Session()
        x = channels.x
        self._x_auth = OAuth1(x.api_key, x.api_secret, x.access_token, x.access_secret) if x else None

    def close(self) -> None:
        self.session.close()

    def _post(self, url: str, **kwargs: Any) -> Answer:
        try:
            return _answer(self.session.post(url, timeout=self.timeout, **kwargs))
        except Exception as exc:  # every failure is an Answer: the caller records it, nothing escapes
            return no_answer(exc)

    def telegram(self, chat_id: str, message: TelegramMessage) -> Answer:
        access = self.channels.telegram
        if access is None:
            return Answer(None, error="telegram is not configured")
        url = f"{access.base_url.rstrip('/')}/bot{access.token}/sendMessage"
        return self._post(url, json=message.payload(chat_id))

    def webhook(self, url: str, secret: str, message: WebhookMessage, now: float) -> Answer:
        return self._post(url, data=message.body, headers=signed_headers(secret, message, now))

    def x(self, post: XPost) -> Answer:
        access = self.channels.x
        if access is None or self._x_auth is None:
            return Answer(None, error="x is not configured")
        return self._post(f"{access.base_url.rstrip('/')}/2/tweets", json=post.payload(), auth=self._x_auth)
