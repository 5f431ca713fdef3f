"""Channel answers are outside input: whatever a channel (or a proxy in front of it) answers, classifying
it never raises, and the waits it yields are finite, non-negative and bounded."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from qc.distribute.policy import MAX_RETRY_AFTER_S, classify

NOW = 1_796_311_860.0
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=12)
KEYS = st.sampled_from(["retry_after", "parameters", "error_code", "description", "ok", "detail", "title",
                        "status", "errors", "migrate_to_chat_id"])
BODY = st.none() | st.dictionaries(KEYS | st.text(max_size=8), JSON, max_size=6) | st.builds(
    lambda r: {"ok": False, "error_code": 429, "parameters": {"retry_after": r}},
    st.floats() | st.integers() | st.text(max_size=10))
STATUS = st.none() | st.sampled_from([200, 201, 204, 400, 401, 403, 410, 429, 500, 502, 503]) | st.integers(-5, 1000)
HEADER_NAMES = st.sampled_from(["retry-after", "x-rate-limit-reset", "x-rate-limit-remaining",
                                "x-user-limit-24hour-reset", "x-app-limit-24hour-reset", "content-type"])
HEADERS = st.dictionaries(HEADER_NAMES, st.text(max_size=30) | st.integers().map(str) | st.floats().map(str),
                          max_size=4)


@settings(max_examples=400, deadline=None)
@given(channel=st.sampled_from(["telegram", "webhook", "x"]), status=STATUS,
       body=BODY, headers=HEADERS, attempt=st.integers(1, 10), after_send=st.booleans(), error=st.text(max_size=20))
def test_any_answer_classifies_to_finite_bounded_waits(channel: Any, status: int | None, body: Any,
                                                       headers: dict[str, str], attempt: int, after_send: bool,
                                                       error: str) -> None:
    v = classify(channel, status, body, headers, now=NOW, attempt=attempt, after_send=after_send, error=error)
    assert v.kind in ("sent", "done", "retry_at", "rate_limited", "permanent", "disable", "uncertain")
    if v.at is not None:
        assert math.isfinite(v.at) and NOW <= v.at <= NOW + MAX_RETRY_AFTER_S + 3600
    if v.retry_after_s is not None:
        assert math.isfinite(v.retry_after_s) and 0 <= v.retry_after_s <= MAX_RETRY_AFTER_S
