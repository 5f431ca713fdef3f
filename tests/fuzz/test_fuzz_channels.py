"""Channel answers are outside input: whatever Telegram, X, a webhook receiver (or a proxy in front of them)
answers, `qc distribute` classifies it without raising and waits a finite, bounded time.

Two depths:

- ``policy.classify`` on drawn (status, parsed body, headers) for each channel (this was
  tests/unit/test_distribute_policy_fuzz.py, moved here to scale with the campaign);
- the whole path of one answer as ``deliver._answered`` takes it: a real ``requests.Response`` (random
  status, headers and body bytes: JSON, truncated JSON, HTML, deep nesting, wrong content type) read by
  the transport's ``_answer``, or a transport exception through ``no_answer``; then ``classify`` and
  ``advance`` on a queued Delivery; then what the glue would store (the requeued delivery through its
  codec, the retry-after figure through the metrics codec), read back.

Asserted: no exception; the verdict kind is a known one; ``at`` is finite, not before now and at most
``MAX_RETRY_AFTER_S`` (+ margin) ahead; ``retry_after_s`` finite in [0, MAX_RETRY_AFTER_S]; a requeued
delivery is never earlier than it was, uses at most one attempt, stays within the lateness bound and
decodes to itself. Verdicts and steps are tallied by kind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, get_args

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ProtocolError

from qc.core.codec import VERSION_FIELD, Absent, fmt
from qc.distribute import codec
from qc.distribute.cycle.transport import Answer, _answer, no_answer
from qc.distribute.model import MAX_LATENESS_S, Delivery
from qc.distribute.policy import MAX_RETRY_AFTER_S, RATE_LIMIT_MARGIN_S, Kind, advance, classify
from tests.fuzz.tally import FUZZ, TIMEOUT, Tally, reporting

pytestmark = TIMEOUT
TALLY = Tally()
KINDS = get_args(Kind)
NOW = 1_796_311_860.0
CHANNELS = st.sampled_from(["telegram", "webhook", "x"])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=12)
KEYS = st.sampled_from(["retry_after", "parameters", "error_code", "description", "ok", "detail", "title",
                        "status", "errors", "migrate_to_chat_id"])
WAITS = st.one_of(st.floats(), st.integers(-(2**70), 2**70), st.text(max_size=10),
                  st.sampled_from([0, 1, 30, 86_400, 86_401, -1, 1e300, "5", "1e999", "nan", True, None]))
BODY = st.none() | st.dictionaries(KEYS | st.text(max_size=8), JSON, max_size=6) | st.builds(
    lambda r: {"ok": False, "error_code": 429, "parameters": {"retry_after": r}}, WAITS) | st.builds(
    lambda d: {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {d}"},
    st.integers(0, 10**9) | st.floats(0, 1e12, allow_nan=False).map(repr) | st.text(max_size=8)) | st.builds(
    lambda c, d: {"ok": False, "error_code": c, "description": d},
    st.sampled_from([400, 403, 404, 429, 500, True, "429", None]),
    st.sampled_from(["Forbidden: bot was blocked by the user", "Bad Request: chat not found",
                     "Bad Request: message is too long", "duplicate content", ""]))
STATUS = st.none() | st.sampled_from([200, 201, 204, 400, 401, 402, 403, 404, 410, 429, 500, 502, 503, 504]) | \
    st.integers(-5, 1000)
HEADER_NAMES = st.sampled_from(["retry-after", "Retry-After", "x-rate-limit-reset", "x-rate-limit-remaining",
                                "x-user-limit-24hour-reset", "x-user-limit-24hour-remaining",
                                "x-app-limit-24hour-reset", "x-app-limit-24hour-remaining", "content-type"])
HEADER_VALUES = st.one_of(
    st.integers(0, 3600).map(str), st.integers(int(NOW), int(NOW) + 3600).map(str), st.text(max_size=30),
    st.integers().map(str), st.floats().map(str),
    st.sampled_from(["0", "-1", "1e999", "nan", "inf", "Wed, 21 Oct 2026 07:28:00 GMT", "Wed, 21 Oct 2026 07:28:00",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT", "Mon, 99 Foo 2026 99:99:99 GMT",
                     str(int(NOW) + 60), str(int(NOW) - 60), str(int(NOW) * 1000), "4102444801"]))
HEADERS = st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=5)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/html", "",
                                 "application/problem+json", "text/plain; application/json"])


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    with reporting(TALLY):
        yield


def check_verdict(v: Any, now: float) -> None:
    assert v.kind in KINDS
    if v.at is not None:
        assert math.isfinite(v.at) and now <= v.at <= now + MAX_RETRY_AFTER_S + RATE_LIMIT_MARGIN_S, v
    if v.retry_after_s is not None:
        assert math.isfinite(v.retry_after_s) and 0 <= v.retry_after_s <= MAX_RETRY_AFTER_S, v
    assert v.kind not in ("retry_at", "rate_limited") or v.at is not None, v
    assert isinstance(v.reason, str) and len(v.reason) < 1000


@FUZZ
@given(channel=CHANNELS, status=STATUS, body=BODY, headers=HEADERS, attempt=st.integers(1, 10),
       after_send=st.booleans(), error=st.text(max_size=20))
def test_any_answer_classifies_to_finite_bounded_waits(channel: Any, status: int | None, body: Any,
                                                       headers: dict[str, str], attempt: int, after_send: bool,
                                                       error: str) -> None:
    v = classify(channel, status, body, headers, now=NOW, attempt=attempt, after_send=after_send, error=error)
    check_verdict(v, NOW)
    TALLY.add(f"channels {channel} classify", f"kind:{v.kind}")


@st.composite
def body_bytes(draw: st.DrawFn) -> bytes:
    """What came over the wire: JSON (sometimes broken), HTML, nothing, noise, very deep or very large."""
    kind = draw(st.sampled_from(["json"] * 5 + ["truncated", "html", "empty", "noise", "deep", "large", "latin1"]))
    text = json.dumps(draw(BODY), allow_nan=True)
    if kind == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))].encode()
    if kind == "html":
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "empty":
        return b""
    if kind == "noise":
        return draw(st.binary(max_size=40))
    if kind == "deep":
        return b"[" * 100_000 + b"]" * 100_000
    if kind == "large":
        return json.dumps({"ok": False, "error_code": 400, "description": "x" * 1_000_000}).encode()
    return text.encode("latin-1", "replace")


def response(status: int, headers: dict[str, str], content: bytes) -> requests.Response:
    """A requests.Response as the session builds one from a socket: status, case-insensitive headers, bytes."""
    r = requests.Response()
    r.status_code = status
    r.headers = CaseInsensitiveDict(headers)
    r._content = content
    r.encoding = None
    r.url = "http://127.0.0.1:9/never-contacted"
    return r


EXCEPTIONS: list[BaseException] = [
    requests.ConnectTimeout("connect timeout"), requests.ReadTimeout("read timeout"),
    requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused"))),  # type: ignore[arg-type]
    requests.ConnectionError(MaxRetryError(None, "/", ConnectTimeoutError("slow"))),  # type: ignore[arg-type]
    requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())),
    requests.ConnectionError(), requests.TooManyRedirects(), requests.exceptions.InvalidURL("bad"),
    requests.exceptions.ChunkedEncodingError(), requests.exceptions.ContentDecodingError(),
    requests.exceptions.SSLError("handshake"), ValueError("internal"), OSError(32, "broken pipe"),
]


@st.composite
def deliveries(draw: st.DrawFn, channel: str) -> Delivery:
    published = NOW - draw(st.floats(0, 3600))
    first_due = published + draw(st.sampled_from([0.0, 60.0, 300.0]))
    due = max(first_due, NOW - draw(st.floats(0, 600)))
    return Delivery("sig_01HZX", "SPY", "premium", channel, "main", due, published,  # type: ignore[arg-type]
                    draw(st.integers(1, 6)), first_due)


@FUZZ
@given(channel=CHANNELS, data=st.data())
def test_any_response_or_transport_error_ends_in_a_bounded_storable_step(channel: str, data: st.DataObject) -> None:
    """The glue's path for one answer: transport parsing → classify → advance → what it would store."""
    if data.draw(st.integers(0, 5)) == 0:
        answer = no_answer(data.draw(st.sampled_from(EXCEPTIONS)))
        TALLY.add(f"channels {channel} answer", "no_answer:after_send" if answer.after_send else "no_answer:not_sent")
    else:
        status = data.draw(st.sampled_from([200, 201, 400, 401, 402, 403, 404, 410, 429, 429, 429, 500, 502, 503, 504])
                           | st.integers(100, 599))
        headers = data.draw(HEADERS)
        headers["content-type"] = data.draw(CONTENT_TYPES)
        answer = _answer(response(status, headers, data.draw(body_bytes())))
        assert isinstance(answer, Answer) and (answer.body is None or isinstance(answer.body, dict))
        TALLY.add(f"channels {channel} answer", "body:json" if answer.body is not None else "body:none")
    if data.draw(st.integers(0, 3)) == 3:  # a throttle as each channel really sends one, its wait drawn
        wait = data.draw(WAITS)
        reset = data.draw(st.sampled_from([NOW + 30, NOW - 5, NOW * 1000, math.inf]) | st.floats(0, 5e9))
        throttles = {"telegram": (429, {"content-type": "application/json"},
                                  json.dumps({"ok": False, "error_code": 429, "parameters": {"retry_after": wait}})),
                     "x": (429, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}, ""),
                     "webhook": (data.draw(st.sampled_from([429, 502, 503, 504])), {"retry-after": str(wait)}, "")}
        status, headers, text = throttles[channel]
        answer = _answer(response(status, headers, text.encode()))
        TALLY.add(f"channels {channel} answer", "throttle")
    d = data.draw(deliveries(channel))
    bound = MAX_LATENESS_S[channel]  # type: ignore[index]
    v = classify(channel, answer.status, answer.body, answer.headers, now=NOW,  # type: ignore[arg-type]
                 attempt=d.attempt, after_send=answer.after_send, error=answer.error)
    check_verdict(v, NOW)
    step = advance(d, v, bound)
    TALLY.add(f"channels {channel} step", f"kind:{v.kind}", f"step:{step.outcome}")
    if v.retry_after_s is not None:  # the glue keeps the last wait seen in the metrics hash
        field = codec.metric_field("premium", d.channel, codec.RETRY_AFTER_FIELD)
        rows = codec.metrics_from_redis({VERSION_FIELD: str(codec.SCHEMA), field: fmt(float(v.retry_after_s))},
                                        key="distribution:metrics")
        assert not isinstance(rows, Absent) and rows[0].retry_after_s == pytest.approx(v.retry_after_s)
    nxt = step.requeue
    if nxt is None:
        return
    assert step.outcome in ("retry", "rate_limited")
    assert math.isfinite(nxt.due) and d.due <= nxt.due <= NOW + MAX_RETRY_AFTER_S + RATE_LIMIT_MARGIN_S
    assert nxt.attempt == d.attempt + (1 if step.outcome == "retry" else 0)
    assert nxt.lateness(nxt.due) <= bound
    stored = codec.delivery_from_redis(codec.delivery_to_redis(nxt), key="distribution:queue")
    assert stored == nxt
