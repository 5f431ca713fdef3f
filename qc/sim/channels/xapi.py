"""X API v2 ``POST /2/tweets`` as a sender meets it: auth, length, cashtags, duplicates, the rate limit.

Why: X refuses a post over 280 weighted characters, a second cashtag (self-serve) and any text the
account already posted (403 "duplicate content", which a sender must count as done), and allows 100
posts per 15 minutes per user, announced in ``x-rate-limit-*`` headers (reference
distribution-channels.md §2). Any non-empty ``Authorization`` is a user, told apart by a hash of its
access token (OAuth 1.0a user context: ``oauth_token``) or of the whole value (a bearer token).
Every authenticated request counts against the window, as X counts requests to the endpoint; the
window slides (X's is fixed per 15 minutes: sliding is never looser). Times, including
``x-rate-limit-reset``, are simulated Unix seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from qc.sim.channels.ledger import DELIVERED, Ledger, Received
from qc.sim.channels.limits import Limit, Windows
from qc.sim.channels.switches import Switch, Switches
from qc.sim.channels.wire import Reply, Request, json_object, json_reply, masked
from qc.sim.channels.xtext import MAX_WEIGHTED, cashtags, weighted_length

CHANNEL = "x"
USER = Limit("user", 100, 900.0)
LIMITS = (USER,)
FIRST_ID = 1_995_000_000_000_000_000  # post ids are snowflakes: large, increasing, sent as strings
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
DUPLICATE = {"detail": "You are not allowed to create a Tweet with duplicate content.", "type": "about:blank",
             "title": "Forbidden", "status": 403}
TOO_MANY = {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429}
TITLES = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
INVALID_REQUEST = "https://api.twitter.com/2/problems/invalid-request"
OAUTH_TOKEN = re.compile(r'oauth_token="([^"]*)"')


def problem(status: int, title: str, headers: Mapping[str, str] | None = None) -> Reply:
    return json_reply(status, {"title": title, "detail": title, "type": "about:blank", "status": status}, headers)


def invalid(message: str, text: Any) -> Reply:
    """X's 400 for a bad parameter: the problem body with the offending ``text`` and the reason."""
    return json_reply(400, {"errors": [{"parameters": {"text": [text]}, "message": message}],
                            "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                            "type": INVALID_REQUEST})


def rate_headers(remaining: int, reset_at: float) -> dict[str, str]:
    return {"x-rate-limit-limit": str(USER.count), "x-rate-limit-remaining": str(max(0, remaining)),
            "x-rate-limit-reset": str(math.ceil(reset_at))}


class XApi:
    """``POST /2/tweets`` with ``{"text": …}``."""

    def __init__(self, ledger: Ledger, switches: Switches, windows: Windows) -> None:
        self.ledger, self.switches, self.windows = ledger, switches, windows
        self._posted: dict[str, set[str]] = {}
        self._posts = 0

    def handle(self, req: Request) -> Reply:
        auth = req.headers.get("authorization", "").strip()
        user = user_of(auth)
        doc = json_object(req.body)
        raw_text = None if doc is None else doc.get("text")
        text = raw_text if isinstance(raw_text, str) else None
        failure, delay = self.switches.draw(CHANNEL, user) if auth else (None, 0.0)  # a 401 meets no fault
        reply, outcome, violated = self._decide(user, doc, text, failure, req.sim_time)
        self.ledger.record(CHANNEL, Received(user, reply.status, outcome, req.sim_time, req.wall_time, text=text,
                                             timed_out=delay > 0), violated)
        return Reply(reply.status, reply.body, reply.content_type, reply.headers, delay)

    def _decide(self, user: str, doc: Mapping[str, Any] | None, text: str | None, failure: Switch | None,
                now: float) -> tuple[Reply, str, tuple[str, ...]]:
        if not user:
            return json_reply(401, UNAUTHORIZED), "unauthorized", ()
        if failure is not None:
            if failure.status == 429:
                return json_reply(429, TOO_MANY, rate_headers(0, now + failure.retry_after_s)), "injected_429", ()
            return problem(failure.status, TITLES[failure.status]), f"injected_{failure.status}", ()
        verdict = self.windows.admit(now, [(USER, user)])
        headers = rate_headers(verdict.remaining, verdict.reset_at)
        if not verdict.admitted:
            return json_reply(429, TOO_MANY, headers), "rate_limited", verdict.violated
        if doc is None:
            return _with(invalid("The request body is not a JSON object", None), headers), "bad_json", ()
        if text is None or not text.strip():
            return _with(invalid("$.text: a non-empty string is required", doc.get("text")), headers), "text_empty", ()
        length = weighted_length(text)
        if length > MAX_WEIGHTED:
            message = f"Text is too long: {length} weighted characters, at most {MAX_WEIGHTED}"
            return _with(invalid(message, text), headers), "too_long", ()
        tags = cashtags(text)
        if len(tags) > 1:
            message = f"A post may contain at most one cashtag; found {len(tags)}: {' '.join(tags)}"
            return _with(invalid(message, text), headers), "cashtags", ()
        posted = self._posted.setdefault(user, set())
        if text in posted:
            return json_reply(403, DUPLICATE, headers), "duplicate", ()
        posted.add(text)
        self._posts += 1
        post_id = str(FIRST_ID + self._posts)
        data = {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}
        return json_reply(201, {"data": data}, headers), DELIVERED, ()


def user_of(auth: str) -> str:
    """Who is posting, as a short hash (never the credential): the ``oauth_token`` of an OAuth 1.0a header,
    whose nonce, timestamp and signature change on every request; else the whole ``Authorization`` value
    (a bearer token). Empty when there is none (401)."""
    if not auth:
        return ""
    if auth[:6].lower() == "oauth ":
        found = OAUTH_TOKEN.search(auth)
        if found:
            return masked("oauth:" + unquote(found.group(1)))
    return masked(auth)


def _with(reply: Reply, headers: Mapping[str, str]) -> Reply:
    return Reply(reply.status, reply.body, reply.content_type, {**reply.headers, **headers}, reply.delay_s)
