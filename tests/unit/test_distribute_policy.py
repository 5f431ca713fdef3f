"""Every row of the channel tables classified (Telegram, X, Standard Webhooks), the retry schedule in
seconds, rate limits that wait what was asked without using an attempt, timeouts that are never blindly
resent on Telegram, and items that expire instead of going out past their channel's lateness bound."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from qc.distribute.model import MAX_LATENESS_S, ChannelName, Delivery
from qc.distribute.policy import (
    COUNTER_OF,
    MAX_ATTEMPTS,
    RATE_LIMIT_MARGIN_S,
    RETRY_SCHEDULE_S,
    Verdict,
    advance,
    check,
    classify,
    retry_after_header,
)

NOW = 1_796_311_860.0


def tg(status: int | None, body: dict[str, Any] | None = None, **kw: Any) -> Verdict:
    kw.setdefault("now", NOW)
    return classify("telegram", status, body, {}, **kw)


def tg_error(code: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


def item(channel: ChannelName = "telegram", *, attempt: int = 1, due: float = NOW, first_due: float = NOW) -> Delivery:
    target = {"telegram": "premium", "webhook": "alpha", "x": "account"}[channel]
    return Delivery("1796311800000a1b2c3d4", "SPY", "premium", channel, target, due, first_due, attempt, first_due)


# --- Telegram ---------------------------------------------------------------------------------------------

def test_telegram_ok_is_sent() -> None:
    v = tg(200, {"ok": True, "result": {"message_id": 7}})
    assert (v.kind, v.delivered, v.status) == ("sent", True, 200)


def test_telegram_429_waits_retry_after_in_seconds() -> None:
    v = tg(429, tg_error(429, "Too Many Requests: retry after 35", retry_after=35))
    assert v.kind == "rate_limited" and v.retry_after_s == 35.0 and v.scope == "channel"
    assert v.at == NOW + 35 + RATE_LIMIT_MARGIN_S  # seconds: not 0.035 s, not 35 000 s


def test_telegram_429_reads_the_description_when_parameters_are_missing() -> None:
    v = tg(429, tg_error(429, "Too Many Requests: retry after 12"))
    assert v.kind == "rate_limited" and v.retry_after_s == 12.0


def test_telegram_429_without_any_wait_is_a_scheduled_retry() -> None:
    v = tg(429, tg_error(429, "Too Many Requests"))
    assert v.kind == "retry_at" and v.at == NOW + 5 and "without a usable wait" in v.reason


def test_telegram_migrated_group_is_permanent_and_says_the_new_chat() -> None:
    v = tg(400, tg_error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                         migrate_to_chat_id=-1001234567890))
    assert v.kind == "permanent" and v.migrate_to_chat_id == -1001234567890 and v.scope == "target"
    assert "-1001234567890" in v.reason and "QC_TELEGRAM_CHATS" in v.reason


@pytest.mark.parametrize("description", [
    "Forbidden: bot was blocked by the user", "Forbidden: bot was kicked from the channel chat",
    "Forbidden: bot was kicked from the supergroup chat", "Forbidden: user is deactivated",
    "Forbidden: bot can't initiate conversation with a user",
])
def test_telegram_blocked_or_kicked_disables_the_target(description: str) -> None:
    v = tg(403, tg_error(403, description))
    assert (v.kind, v.scope) == ("disable", "target") and v.reason == description


@pytest.mark.parametrize(("description", "says"), [
    ("Bad Request: chat not found", "QC_TELEGRAM_CHATS"), ("Bad Request: message is too long", "rendering bug"),
    ("Bad Request: can't parse entities: Unsupported start tag \"x\"", "rendering bug"),
    ("Bad Request: message text is empty", "empty"),
])
def test_telegram_400s_are_permanent(description: str, says: str) -> None:
    v = tg(400, tg_error(400, description))
    assert v.kind == "permanent" and says in v.reason


def test_telegram_other_403_and_bad_token_are_permanent() -> None:
    assert tg(403, tg_error(403, "Forbidden: not enough rights to send text messages")).kind == "permanent"
    for code, text in ((401, "Unauthorized"), (404, "Not Found")):
        v = tg(code, tg_error(code, text))
        assert (v.kind, v.scope) == ("permanent", "channel") and "QC_TELEGRAM_BOT_TOKEN" in v.reason


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_telegram_5xx_retries_on_the_schedule(status: int) -> None:
    v = tg(status, None)
    assert v.kind == "retry_at" and v.at == NOW + 5.0 and v.status == status


def test_telegram_200_with_ok_false_reads_its_error_code() -> None:
    assert tg(200, tg_error(403, "Forbidden: bot was blocked by the user")).kind == "disable"


def test_telegram_connect_error_retries_and_read_timeout_is_uncertain() -> None:
    refused = tg(None, error="connection refused")
    assert refused.kind == "retry_at" and refused.at == NOW + 5 and "connection refused" in refused.reason
    timeout = tg(None, after_send=True)
    assert timeout.kind == "uncertain" and timeout.at is None and "never resent" in timeout.reason


# --- X ----------------------------------------------------------------------------------------------------

DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
             "title": "Forbidden", "status": 403}


def x(status: int | None, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
      **kw: Any) -> Verdict:
    kw.setdefault("now", NOW)
    return classify("x", status, body, headers or {}, **kw)


def test_x_created_is_sent_and_duplicate_is_done() -> None:
    assert x(201, {"data": {"id": "1", "text": "t"}}).kind == "sent"
    v = x(403, DUPLICATE)
    assert v.kind == "done" and v.delivered


def test_x_429_waits_until_the_reset_epoch() -> None:
    v = x(429, {"errors": [{"code": 88, "message": "Rate limit exceeded"}]},
          {"X-Rate-Limit-Limit": "100", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(int(NOW) + 40)})
    assert v.kind == "rate_limited" and v.retry_after_s == 40.0 and v.at == NOW + 40 + RATE_LIMIT_MARGIN_S
    assert v.scope == "channel"


def test_x_429_waits_for_an_exhausted_24_hour_window() -> None:
    headers = {"x-rate-limit-remaining": "57", "x-rate-limit-reset": str(int(NOW) + 40),
               "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(int(NOW) + 5000),
               "x-app-limit-24hour-remaining": "900", "x-app-limit-24hour-reset": str(int(NOW) + 80000)}
    v = x(429, {"title": "Too Many Requests", "type": "https://api.twitter.com/2/problems/usage-capped"}, headers)
    assert v.kind == "rate_limited" and v.retry_after_s == 5000.0


def test_x_429_with_a_reset_in_milliseconds_is_not_trusted() -> None:
    v = x(429, None, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(NOW * 1000) + 40_000)})
    assert v.kind == "retry_at" and v.at == NOW + 5


def test_x_402_halts_the_channel() -> None:
    v = x(402, {"title": "Payment Required"})
    assert (v.kind, v.scope) == ("disable", "channel") and "credits" in v.reason


@pytest.mark.parametrize(("status", "body", "scope"), [
    (401, {"title": "Unauthorized"}, "channel"), (403, {"detail": "You are not permitted to perform this action."},
                                                  "item"),
    (400, {"errors": [{"message": "Tweet text is too long"}]}, "item"),
])
def test_x_auth_and_bad_requests_are_permanent(status: int, body: dict[str, Any], scope: str) -> None:
    v = x(status, body)
    assert (v.kind, v.scope) == ("permanent", scope)


def test_x_5xx_and_timeouts_are_retried() -> None:
    assert x(503, None).kind == "retry_at"
    v = x(None, after_send=True)
    assert v.kind == "retry_at" and "403 duplicate" in v.reason  # a landed post answers duplicate: done


# --- webhooks ---------------------------------------------------------------------------------------------

def hook(status: int | None, headers: dict[str, str] | None = None, **kw: Any) -> Verdict:
    kw.setdefault("now", NOW)
    return classify("webhook", status, None, headers or {}, **kw)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_webhook_2xx_is_sent(status: int) -> None:
    assert hook(status).kind == "sent"


def test_webhook_410_disables_the_endpoint() -> None:
    assert (hook(410).kind, hook(410).scope) == ("disable", "target")


def test_webhook_429_honours_retry_after_seconds_and_dates() -> None:
    v = hook(429, {"Retry-After": "7"})
    assert v.kind == "rate_limited" and v.retry_after_s == 7.0 and v.at == NOW + 8 and v.scope == "target"
    date = format_datetime(datetime.fromtimestamp(NOW + 120, tz=timezone.utc), usegmt=True)
    assert hook(429, {"retry-after": date}).retry_after_s == 120.0


@pytest.mark.parametrize("status", [502, 503, 504])
def test_webhook_throttling_5xx_with_retry_after_waits_it(status: int) -> None:
    assert hook(status, {"retry-after": "30"}).kind == "rate_limited"
    assert hook(status).kind == "retry_at"


@pytest.mark.parametrize("status", [301, 302, 400, 401, 403, 404, 409, 422, 500, 501])
def test_webhook_other_failures_retry_per_standard_webhooks(status: int) -> None:
    v = hook(status)
    assert v.kind == "retry_at" and v.at == NOW + 5 and v.scope == "target"


def test_webhook_timeout_after_sending_is_uncertain_never_resent() -> None:
    v = hook(None, after_send=True)
    assert v.kind == "uncertain" and "never resent" in v.reason
    assert hook(None).kind == "retry_at"  # could not connect: nothing went out, a retry is safe


@pytest.mark.parametrize(("value", "seconds"), [
    ("0", 0.0), ("7", 7.0), ("1.5", 1.5), ("-3", None), ("soon", None), ("", None), (None, None), ("nan", None),
    ("90000", None), ("Wed, 21 Oct 2015 07:28:00", None),
])
def test_retry_after_header_forms(value: str | None, seconds: float | None) -> None:
    assert retry_after_header(value, NOW) == seconds


def test_a_retry_after_date_in_the_past_means_now() -> None:
    past = format_datetime(datetime.fromtimestamp(NOW - 50, tz=timezone.utc), usegmt=True)
    assert retry_after_header(past, NOW) == 0.0


# --- the schedule, exhaustion and lateness ----------------------------------------------------------------

def test_the_schedule_is_0_5_30_120_600_seconds_then_dead_letter() -> None:
    assert RETRY_SCHEDULE_S == (0.0, 5.0, 30.0, 120.0, 600.0) and MAX_ATTEMPTS == 5
    d, now, dues = item("webhook"), NOW, [NOW]
    for _ in range(MAX_ATTEMPTS - 1):
        step = advance(d, hook(503, now=now, attempt=d.attempt), MAX_LATENESS_S["webhook"])
        assert step.outcome == "retry" and step.requeue is not None
        d = step.requeue
        now = d.due
        dues.append(d.due)
    assert [t - NOW for t in dues] == [0.0, 5.0, 35.0, 155.0, 755.0]
    assert d.attempt == MAX_ATTEMPTS and d.first_due == NOW
    last = advance(d, classify("webhook", 503, None, {}, now=now, attempt=d.attempt), MAX_LATENESS_S["webhook"])
    assert last.final and last.outcome == "failed" and "retries exhausted after 5 attempts" in last.reason


def test_telegram_retries_stop_at_its_lateness_bound() -> None:
    d, now = item("telegram"), NOW
    outcomes = []
    for _ in range(MAX_ATTEMPTS):
        step = advance(d, tg(502, now=now, attempt=d.attempt), MAX_LATENESS_S["telegram"])
        outcomes.append(step.outcome)
        if step.requeue is None:
            break
        d, now = step.requeue, step.requeue.due
    assert outcomes == ["retry", "retry", "expired"]  # +5, +35, then +155 would be past 120 s


def test_a_rate_limit_keeps_the_attempt_and_a_failure_uses_one() -> None:
    d = item("telegram", attempt=2, due=NOW, first_due=NOW - 5)
    limited = advance(d, tg(429, tg_error(429, "x", retry_after=3)), 120.0)
    assert limited.outcome == "rate_limited" and limited.requeue is not None
    assert (limited.requeue.attempt, limited.requeue.due) == (2, NOW + 4)
    failed = advance(d, tg(500, attempt=2), 120.0)
    assert failed.requeue is not None and (failed.requeue.attempt, failed.requeue.due) == (3, NOW + 30)


def test_a_wait_past_the_bound_expires_now() -> None:
    step = advance(item("telegram"), tg(429, tg_error(429, "x", retry_after=400)), MAX_LATENESS_S["telegram"])
    assert step.outcome == "expired" and step.requeue is None and "past telegram's 120 s" in step.reason


@pytest.mark.parametrize(("verdict", "outcome"), [
    (Verdict("sent", "ok"), "sent"), (Verdict("done", "dup"), "done"), (Verdict("permanent", "no"), "failed"),
    (Verdict("disable", "gone"), "disabled"), (Verdict("uncertain", "maybe"), "uncertain"),
    (Verdict("retry_at", "no time"), "failed"),
])
def test_final_verdicts_end_the_item(verdict: Verdict, outcome: str) -> None:
    step = advance(item(), verdict, 120.0)
    assert step.final and step.outcome == outcome and step.requeue is None


def test_check_before_sending_is_never_early_and_never_stale() -> None:
    d = item("telegram", due=NOW + 60, first_due=NOW + 60)
    assert check(d, NOW + 59.999, 120.0) == "wait"
    assert check(d, NOW + 60, 120.0) == "send"
    assert check(d, NOW + 180, 120.0) == "send"
    assert check(d, NOW + 180.001, 120.0) == "expire"


def test_every_outcome_has_a_counter() -> None:
    assert COUNTER_OF["done"] == "sent" and COUNTER_OF["retry"] == "retried"
    assert set(COUNTER_OF.values()) <= {"sent", "failed", "retried", "rate_limited", "uncertain", "expired"}
