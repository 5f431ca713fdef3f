"""Alpha Vantage over HTTP (requests + tenacity): every response classified before anything parses it.

AV signals almost every failure as HTTP 200 with a JSON body (reference §1.9), and the key it uses
has moved between ``Information`` and ``Note`` over the years, so one function, ``classify``, reads
the status and body and names the class; only ``ok`` bodies reach the parsers. Classes:

==============  =========================================================  =======================
class           when                                                       what the client does
==============  =========================================================  =======================
ok              the expected payload
no_data         ``data: []``, ``{"Global Quote": {}}``, "No articles found"  returned, not retried
throttled       ``Note``; ``Information`` about rate limits or call volume   retried with backoff
not_entitled    premium text, or REALTIME_OPTIONS' artificial sample rows    fatal (names the plan)
bad_key         ``apikey`` invalid or missing, the demo key                 fatal (names the setting)
bad_request     ``Error Message`` (invalid call), ``Invalid inputs``         not retried
http_error      a non-200 status (503 after hammering, 429, 500)             5xx/429 retried
malformed       not JSON (truncated, an HTML page), or not a JSON object     not retried this cycle
network         connection refused, reset or timed out                       retried
==============  =========================================================  =======================

A malformed body also carries ``reject``, the short reason `qc status` counts in
``monitoring:rejects`` under the function's surface (``SURFACES``): ``html_body``,
``malformed_json``, ``not_object``, ``too_deep``. "Empty" means an empty *list* (or Global Quote
object): ``"data": 0`` or ``"feed": ""`` is not AV saying "nothing", so it goes on to the parser,
which refuses it rather than recording a missing expiry or "no news".

No Redis here: the caller passes ``acquire`` (one shared-budget token per HTTP attempt, retries
included, since AV counts every attempt), ``observe`` (count each attempt's class) and optionally
``refuse`` (count a refused body by surface and reason). The API key travels only in the query
string; no message built here contains it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import requests
import tenacity

from qc.core import clock
from qc.core.config import SECRET_MASK
from qc.core.errors import QcError

log = logging.getLogger(__name__)

CLASSES = ("ok", "no_data", "throttled", "not_entitled", "bad_key", "bad_request", "http_error", "malformed",
           "network")
RETRIED = frozenset({"throttled", "network"})
FATAL = frozenset({"not_entitled", "bad_key"})
SAMPLE_CONTRACT_PREFIX = "XXYYZZ"
SAMPLE_EXPIRATION = "2099-99-99"
THROTTLE_WORDS = ("rate limit", "call frequency", "api call volume", "requests per day", "spreading out",
                  "per minute")
PLAN_HINT = "it needs Alpha Vantage's 600 or 1200 requests-per-minute premium plan"
KEY_ENV = "QC_ALPHA_VANTAGE_API_KEY"
SURFACES = {"REALTIME_OPTIONS": "av.chain", "HISTORICAL_OPTIONS": "av.chain", "GLOBAL_QUOTE": "av.quote",
            "NEWS_SENTIMENT": "av.news", "TIME_SERIES_INTRADAY": "av.intraday"}

Json = dict[str, Any]


@dataclass(frozen=True)
class Classified:
    """One response's class, its JSON body when it parsed, and a short reason (never the API key)."""

    kind: str
    body: Json | None
    reason: str
    status: int = 200
    reject: str = ""  # a malformed body's short reason for monitoring:rejects


class ProviderError(QcError):
    """A request that ended without usable data; ``kind`` is its class."""

    def __init__(self, kind: str, message: str, hint: str | None = None, retryable: bool = False) -> None:
        super().__init__(message, hint)
        self.kind = kind
        self.retryable = retryable

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL


def _information(text: str) -> str:
    lower = text.lower()
    if "premium endpoint" in lower:
        return "not_entitled"
    if "apikey" in lower or "demo" in lower:
        return "bad_key"
    if "invalid inputs" in lower:
        return "bad_request"
    if "no articles" in lower:
        return "no_data"
    return "throttled"  # every other Information text AV has sent is a limit; backing off is the safe side


def _is_sample(rows: object) -> bool:
    """AV's artificial rows, every one of them: one garbled row in a real chain is that row's problem
    (the parser drops it), never a reason to call the key not entitled and stop the worker."""
    return isinstance(rows, list) and bool(rows) and all(
        isinstance(r, dict) and (str(r.get("contractID", "")).startswith(SAMPLE_CONTRACT_PREFIX)
                                 or r.get("expiration") == SAMPLE_EXPIRATION) for r in rows)


def _classify_body(body: Json) -> Classified:
    if "Error Message" in body:
        text = str(body["Error Message"])
        return Classified("bad_key" if "apikey" in text.lower() else "bad_request", body, text)
    if "Note" in body:
        return Classified("throttled", body, str(body["Note"]))
    if "Information" in body:
        text = str(body["Information"])
        return Classified(_information(text), body, text)
    message = body.get("message")
    if isinstance(message, str) and message != "success":
        kind = "not_entitled" if "premium" in message.lower() or _is_sample(body.get("data")) else "bad_request"
        return Classified(kind, body, message)
    if _is_sample(body.get("data")):
        return Classified("not_entitled", body, "artificial sample rows (XXYYZZ…, 2099-99-99)")
    if body.get("data") == []:
        return Classified("no_data", body, "empty data")
    quote = next((v for k, v in body.items() if k.startswith("Global Quote")), None)
    if quote == {}:
        return Classified("no_data", body, "empty Global Quote")
    if body.get("feed") == []:
        return Classified("no_data", body, "empty feed")
    return Classified("ok", body, "")


def classify(status: int, text: str) -> Classified:
    """Name the class of one response from its HTTP status and raw body (pure)."""
    if status != 200:
        return Classified("http_error", None, f"HTTP {status}", status)
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip()[:1] == "<":
            return Classified("malformed", None, f"an HTML page, not JSON ({_title(text)})", reject="html_body")
        return Classified("malformed", None, f"not JSON ({exc.msg} at char {exc.pos})", reject="malformed_json")
    except RecursionError:
        return Classified("malformed", None, "JSON nested too deep to read", reject="too_deep")
    if not isinstance(body, dict):
        return Classified("malformed", None, f"JSON {type(body).__name__}, expected an object", reject="not_object")
    return _classify_body(body)


def _title(html: str) -> str:
    """The page's <title> (or its first characters): what a proxy, captive portal or outage page says."""
    lower = html.lower()
    start, end = lower.find("<title>"), lower.find("</title>")
    text = html[start + 7:end] if 0 <= start < end else html[:60]
    return " ".join(text.split())[:80] or "no title"


def _error_for(function: str, c: Classified) -> ProviderError:
    if c.kind == "not_entitled":
        return ProviderError(c.kind, f"the Alpha Vantage key is not entitled to {function}: {PLAN_HINT}",
                             "upgrade the plan at https://www.alphavantage.co/premium/ or use another key")
    if c.kind == "bad_key":
        return ProviderError(c.kind, f"Alpha Vantage rejected the API key ({KEY_ENV}): {c.reason[:120]}",
                             f"set {KEY_ENV} to a valid premium key")
    retryable = c.kind in RETRIED or (c.kind == "http_error" and (c.status >= 500 or c.status == 429))
    return ProviderError(c.kind, f"Alpha Vantage {function}: {c.kind} ({c.reason[:160]})", retryable=retryable)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per request and the exponential, jittered backoff between them (real seconds)."""

    attempts: int = 4
    base_s: float = 1.0
    max_s: float = 20.0


class AlphaVantageClient:
    """``get(function, **params)`` → the JSON body of an ``ok`` or ``no_data`` response, else ProviderError."""

    def __init__(self, url: str, api_key: str, acquire: Callable[[], None],
                 observe: Callable[[str], None], retry: RetryPolicy | None = None,
                 stop: threading.Event | None = None, timeout_s: float = 15.0,
                 session: requests.Session | None = None,
                 refuse: Callable[[str, str], None] | None = None) -> None:
        self.url = url
        self._key = api_key
        self.acquire = acquire
        self.observe = observe
        self.refuse = refuse
        self.retry = retry or RetryPolicy()
        self.stop = stop or threading.Event()
        self.timeout_s = timeout_s
        self.session = session or requests.Session()

    def get(self, function: str, **params: str) -> Classified:
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, ProviderError) and e.retryable),
            stop=tenacity.stop_after_attempt(self.retry.attempts) | tenacity.stop_when_event_set(self.stop),
            wait=tenacity.wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.max_s),
            sleep=self._sleep, reraise=True,
            before_sleep=lambda rs: log.warning("alpha vantage %s %s: retry %d (%s)", function,
                                                params.get("symbol") or params.get("tickers", ""),
                                                rs.attempt_number, rs.outcome.exception() if rs.outcome else ""))
        result: Classified = retrying(self._attempt, function, params)
        return result

    def _sleep(self, seconds: float) -> None:
        clock.real_sleep(seconds, self.stop)  # a SIGTERM cuts the backoff short

    def _attempt(self, function: str, params: Mapping[str, str]) -> Classified:
        self.acquire()
        query = {"function": function, **params, "apikey": self._key}
        try:
            response = self.session.get(self.url, params=query, timeout=self.timeout_s)
        except requests.RequestException as exc:  # its text carries the URL, and so the key: name the type only
            self.observe("network")
            raise ProviderError("network", f"Alpha Vantage {function}: network ({type(exc).__name__})",
                                retryable=True) from None
        c = classify(response.status_code, response.text)
        if self._key and self._key in c.reason:  # AV has echoed keys back ("We have detected your API key as …")
            c = replace(c, reason=c.reason.replace(self._key, SECRET_MASK))
        self.observe(c.kind)
        if c.reject and self.refuse is not None:
            self.refuse(SURFACES.get(function, "av.other"), c.reject)
        if c.kind in ("ok", "no_data"):
            return c
        subject = params.get("symbol") or params.get("tickers")
        raise _error_for(f"{function} {subject}" if subject else function, c)

    def close(self) -> None:
        self.session.close()
