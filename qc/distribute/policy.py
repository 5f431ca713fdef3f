"""What a channel's answer means, and what happens to the item next: send again when, or stop and why.

:func:`classify` reads one answer (status or none, parsed body, headers, whether the request may have
left) into a :class:`Verdict`; :func:`advance` turns the verdict and the queued :class:`Delivery` into a
:class:`Step`: the item to queue again (with its new due time) or the final outcome to record. Both
are pure: time is passed in (qc's clock, Unix seconds), nothing is sent, nothing is stored.

Kinds (the reference's tables, ``../shared/reference/distribution-channels.md``):

================  ========================================================================================
``sent``          2xx (Telegram ``ok: true``, X 201, a webhook 2xx)
``done``          X 403 "duplicate content": the same text is already posted, which counts as delivered
``retry_at``      5xx, a connection that never carried the request, and for webhooks any other failure
                  (Standard Webhooks: 3xx and 4xx but 410 are failures to retry); ``at`` per the schedule
``rate_limited``  429 (and a webhook 502/503/504 carrying ``retry-after``): wait what the channel asked for
``permanent``     no retry, dead letter with the reason: Telegram 400 (too long, can't parse entities, chat
                  not found, a migrated group), 401, 403 other than blocked/kicked, 404; X 400, 401, 403 other
                  than duplicate; and any ``retry_at`` after the last attempt (retries exhausted)
``disable``       stop sending to the target: webhook 410, Telegram 403 blocked/kicked/deactivated; X 402
                  (credits or spending limit: the whole channel halts until an operator acts)
``uncertain``     Telegram only: a read timeout or a connection dropped after the request left. The message
                  may be posted and sendMessage has no idempotency key (retries duplicated messages 4-6
                  times elsewhere), so it is recorded and never resent.
================  ========================================================================================

Rules decided here:

- **Retry schedule** (all channels): attempt 1 at ``due``, then 5 s, 30 s, 2 min, 10 min after each
  failure (:data:`RETRY_SCHEDULE_S`): 5 attempts, then dead letter. The channel's lateness bound
  (``model.MAX_LATENESS_S``) cuts it shorter: a retry that would go out past the bound expires now.
- **A 429 does not consume an attempt** and waits exactly what the channel asked (``retry_after`` +
  :data:`RATE_LIMIT_MARGIN_S`), not the schedule's step: a refusal with a time is a queue position, not
  a failure, and the wait is already the channel's own. Bounded by the lateness bound like any retry. A
  429 *without* a usable wait is treated as a failure (the schedule's step, one attempt used), so a
  receiver that throttles without saying until when cannot hold an item forever. Telegram and X 429s
  are ``scope="channel"`` (Telegram's flood control spills over to other sends, X limits the account;
  the glue pauses the channel's token bucket), a webhook's ``scope="target"``.
- **A timeout after sending** is ``uncertain`` wherever a resend could reach the subscriber twice
  (:data:`RESEND_AFTER_TIMEOUT`): Telegram, and webhooks too. Standard Webhooks would retry (same
  ``webhook-id``, for the receiver to dedupe), but qc promises exactly once at the target, not a
  dedupe the receiver may not do. Only X is retried: a resend of a post that did land is answered
  403 duplicate by X itself, which is ``done``.
- Headers carrying an absolute time (X ``x-rate-limit-reset``, an HTTP-date ``retry-after``) are read
  as qc's clock: the real channels and the simulator's fakes each speak the clock qc runs on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any, Literal

from qc.distribute.model import EPOCH_MAX, ChannelName, Delivery

Kind = Literal["sent", "done", "retry_at", "rate_limited", "permanent", "disable", "uncertain"]
Scope = Literal["item", "target", "channel"]
Outcome = Literal["sent", "done", "failed", "disabled", "uncertain", "expired", "retry", "rate_limited"]

RETRY_SCHEDULE_S: tuple[float, ...] = (0.0, 5.0, 30.0, 120.0, 600.0)
"""Wait before attempt n+1 is ``RETRY_SCHEDULE_S[n]`` (index 0: the first attempt, at ``due``)."""
MAX_ATTEMPTS = len(RETRY_SCHEDULE_S)
RATE_LIMIT_MARGIN_S = 1.0    # after the asked wait (tweepy sleeps reset + 1 s; PTB retry_after + 0.1 s)
MAX_RETRY_AFTER_S = 86_400.0  # a longer "wait" is garbage (or a daily cap: the lateness bound expires it)
RESEND_AFTER_TIMEOUT: Mapping[ChannelName, bool] = MappingProxyType({"telegram": False, "webhook": False, "x": True})

_TG_DISABLE = ("bot was blocked", "bot was kicked", "user is deactivated", "bot can't initiate conversation",
               "bot is not a member", "chat was deleted", "group chat was deleted")
_TG_RETRY_AFTER = re.compile(r"retry after (\d+(?:\.\d+)?)", re.IGNORECASE)
_THROTTLE = (429, 502, 503, 504)  # Standard Webhooks: throttling answers; honour retry-after on them
_X_WINDOWS = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")  # header prefixes: -remaining, -reset


@dataclass(frozen=True, slots=True)
class Verdict:
    """One answer, classified. ``at`` (qc epoch seconds) is when the next attempt may go, for ``retry_at``
    and ``rate_limited``; ``retry_after_s`` the wait a 429 asked for, as seen (for metrics)."""

    kind: Kind
    reason: str
    at: float | None = None
    retry_after_s: float | None = None
    scope: Scope = "item"
    status: int | None = None
    migrate_to_chat_id: int | None = None  # Telegram 400: the group became this supergroup

    @property
    def delivered(self) -> bool:
        return self.kind in ("sent", "done")


@dataclass(frozen=True, slots=True)
class Step:
    """What to do with the item: queue ``requeue`` again, or record the final ``outcome`` (with ``reason``)."""

    outcome: Outcome
    reason: str
    requeue: Delivery | None = None

    @property
    def final(self) -> bool:
        return self.requeue is None


def _status_text(status: int | None) -> str:
    return "no answer" if status is None else f"HTTP {status}"


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v).strip() for k, v in headers.items()}


def _seconds(raw: Any) -> float | None:
    """A wait in seconds from a header or a JSON number: finite, > 0 and sane, else None."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) and 0.0 <= value <= MAX_RETRY_AFTER_S else None


def retry_after_header(value: str | None, now: float) -> float | None:
    """``Retry-After``: delta-seconds or an HTTP-date (RFC 9110), as seconds from ``now``; None if unusable."""
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return _seconds(max(when.timestamp() - now, 0.0))


def _retry(status: int | None, reason: str, now: float, attempt: int, scope: Scope = "item") -> Verdict:
    """A failure worth another attempt: at the schedule's next step, or permanent when none is left."""
    if attempt >= MAX_ATTEMPTS:
        return Verdict("permanent", f"retries exhausted after {attempt} attempts: {reason}", status=status,
                       scope=scope)
    return Verdict("retry_at", reason, at=now + RETRY_SCHEDULE_S[attempt], status=status, scope=scope)


def _throttled(status: int, wait: float | None, reason: str, now: float, attempt: int, scope: Scope) -> Verdict:
    if wait is None:
        return _retry(status, f"{reason} without a usable wait", now, attempt, scope)
    return Verdict("rate_limited", f"{reason}: wait {wait:g} s", at=now + wait + RATE_LIMIT_MARGIN_S,
                   retry_after_s=wait, scope=scope, status=status)


def _no_answer(channel: ChannelName, after_send: bool, error: str, now: float, attempt: int) -> Verdict:
    what = error or ("timed out after sending" if after_send else "could not connect")
    if after_send and not RESEND_AFTER_TIMEOUT[channel]:
        return Verdict("uncertain", f"{what}: may have been delivered, never resent")
    suffix = {"x": " (a landed post answers 403 duplicate)"}
    return _retry(None, what + (suffix.get(channel, "") if after_send else ""), now, attempt)


def classify(channel: ChannelName, status: int | None, body: Mapping[str, Any] | None,
             headers: Mapping[str, str], *, now: float, attempt: int = 1, after_send: bool = False,
             error: str = "") -> Verdict:
    """One channel answer → a :class:`Verdict`.

    ``status`` None means no HTTP answer: ``after_send`` False for a connection that never carried the
    request (refused, DNS, TLS), True for a read timeout or a connection dropped after the request left.
    ``body`` is the parsed JSON object (None when absent or not JSON), ``headers`` the response headers
    (any case), ``attempt`` the attempt that got this answer (1 = first), ``error`` a short description
    of a transport error for the reason (never a URL or a token).
    """
    if status is None:
        return _no_answer(channel, after_send, error, now, attempt)
    h = _lower(headers)
    doc: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    if channel == "telegram":
        return _telegram(status, doc, now, attempt)
    if channel == "x":
        return _x(status, doc, h, now, attempt)
    return _webhook(status, h, now, attempt)


def _telegram(status: int, doc: Mapping[str, Any], now: float, attempt: int) -> Verdict:
    code = status
    if 200 <= status < 300 and doc.get("ok") is not False:
        return Verdict("sent", "ok", status=status)
    if isinstance(doc.get("error_code"), int) and not isinstance(doc.get("error_code"), bool):
        code = int(doc["error_code"])  # a 200 carrying ok: false reports its error here
    description = str(doc.get("description") or _status_text(code))[:200]
    low = description.lower()
    params = doc.get("parameters") if isinstance(doc.get("parameters"), Mapping) else {}
    assert isinstance(params, Mapping)
    if code == 429:
        wait = _seconds(params.get("retry_after"))
        if wait is None and (found := _TG_RETRY_AFTER.search(description)):
            wait = _seconds(found.group(1))
        return _throttled(code, wait, f"flood control ({description})", now, attempt, "channel")
    if code == 400:
        return _telegram_400(description, params)
    if code == 403:
        if any(marker in low for marker in _TG_DISABLE):
            return Verdict("disable", description, scope="target", status=code)
        return Verdict("permanent", description, scope="target", status=code)
    if code in (401, 404):
        return Verdict("permanent", f"{description}: check QC_TELEGRAM_BOT_TOKEN and the Bot API base URL",
                       scope="channel", status=code)
    if code >= 500:
        return _retry(code, description, now, attempt)
    return Verdict("permanent", f"unexpected {_status_text(code)}: {description}", status=code)


def _telegram_400(description: str, params: Mapping[str, Any]) -> Verdict:
    low = description.lower()
    migrate = params.get("migrate_to_chat_id")
    if isinstance(migrate, int) and not isinstance(migrate, bool):
        return Verdict("permanent", f"the group became supergroup {migrate}: set that chat in QC_TELEGRAM_CHATS",
                       scope="target", status=400, migrate_to_chat_id=migrate)
    if "chat not found" in low:
        return Verdict("permanent", f"{description}: check the chat in QC_TELEGRAM_CHATS", scope="target",
                       status=400)
    if "too long" in low or "can't parse entities" in low:
        return Verdict("permanent", f"{description} (a rendering bug: the message is checked before sending)",
                       status=400)
    return Verdict("permanent", description, status=400)


def _x_detail(doc: Mapping[str, Any]) -> str:
    parts = [str(doc.get(k)) for k in ("title", "detail") if doc.get(k)]
    errors = doc.get("errors")
    if isinstance(errors, list):
        parts += [str(e.get("message")) for e in errors if isinstance(e, Mapping) and e.get("message")]
    return "; ".join(parts)[:200]


def _epoch(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else math.nan
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= EPOCH_MAX else None


def _x_wait(h: Mapping[str, str], now: float) -> float | None:
    """Seconds to the reset that binds: every window whose ``-remaining`` is 0 (the 15-minute one, the
    24-hour user and app ones), the latest of them; the 15-minute reset when none says 0."""
    resets = {prefix: _epoch(h.get(f"{prefix}-reset")) for prefix in _X_WINDOWS}
    binding = [r for p, r in resets.items() if r is not None and h.get(f"{p}-remaining") == "0"]
    if not binding and resets["x-rate-limit"] is not None:
        binding = [resets["x-rate-limit"]]
    return _seconds(max(max(binding) - now, 0.0)) if binding else None


def _x(status: int, doc: Mapping[str, Any], h: Mapping[str, str], now: float, attempt: int) -> Verdict:
    detail = _x_detail(doc) or _status_text(status)
    if 200 <= status < 300:
        return Verdict("sent", "posted", status=status)
    if status == 403 and "duplicate" in detail.lower():
        return Verdict("done", "X already has this text (duplicate): delivered", status=status)
    if status == 429:
        return _throttled(status, _x_wait(h, now), f"rate limited ({detail})", now, attempt, "channel")
    if status == 402:
        return Verdict("disable", f"payment required ({detail}): X credits or spending limit; channel halted",
                       scope="channel", status=status)
    if status == 401:
        return Verdict("permanent", f"{detail}: check the X credentials", scope="channel", status=status)
    if status >= 500:
        return _retry(status, detail, now, attempt)
    return Verdict("permanent", detail, status=status)


def _webhook(status: int, h: Mapping[str, str], now: float, attempt: int) -> Verdict:
    if 200 <= status < 300:
        return Verdict("sent", "accepted", status=status)
    if status == 410:
        return Verdict("disable", "HTTP 410 Gone: the receiver retired the endpoint", scope="target", status=status)
    wait = retry_after_header(h.get("retry-after"), now)
    if status == 429 or (status in _THROTTLE and wait is not None):
        return _throttled(status, wait, f"throttled (HTTP {status})", now, attempt, "target")
    return _retry(status, f"HTTP {status}", now, attempt, "target")


def check(delivery: Delivery, now: float, max_lateness_s: float) -> Literal["wait", "send", "expire"]:
    """Before sending: ``wait`` if not yet due (never early), ``expire`` past the lateness bound, else ``send``."""
    if not delivery.is_due(now):
        return "wait"
    return "expire" if delivery.lateness(now) > max_lateness_s else "send"


_FINAL: Mapping[Kind, Outcome] = MappingProxyType({"sent": "sent", "done": "done", "permanent": "failed",
                                                    "disable": "disabled", "uncertain": "uncertain"})


def advance(delivery: Delivery, verdict: Verdict, max_lateness_s: float) -> Step:
    """The item after ``verdict``: re-queued at ``verdict.at`` (a retry uses an attempt, a rate limit does
    not), or final; a next attempt that would go out past ``max_lateness_s`` expires now instead."""
    final = _FINAL.get(verdict.kind)
    if final is not None:
        return Step(final, verdict.reason)
    if verdict.at is None:  # a Verdict built by hand without its time: nothing says when, so stop
        return Step("failed", f"{verdict.kind} without a time: {verdict.reason}")
    retry = verdict.kind == "retry_at"
    nxt = delivery.retried(verdict.at) if retry else delivery.deferred(verdict.at)
    late = nxt.lateness(nxt.due)
    if late > max_lateness_s:
        return Step("expired", f"the next attempt would be {late:.0f} s late, past {delivery.channel}'s "
                               f"{max_lateness_s:g} s: {verdict.reason}")
    return Step("retry" if retry else "rate_limited", verdict.reason, nxt)


COUNTER_OF: Mapping[Outcome, str] = MappingProxyType({
    "sent": "sent", "done": "sent", "failed": "failed", "disabled": "failed", "uncertain": "uncertain",
    "expired": "expired", "retry": "retried", "rate_limited": "rate_limited"})
"""The metrics counter a step adds to (X's duplicate is delivered: ``sent``; a disabled target ``failed``)."""
