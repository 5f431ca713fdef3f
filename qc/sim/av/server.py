"""Alpha Vantage on loopback: ``GET /query?function=…&apikey=…`` answered from the simulated market.

qc's real HTTP client points here in simulation and must not tell it from www.alphavantage.co, so
everything AV does that a client has to survive is reproduced (reference
``alpha-vantage-and-dealer-positioning.md`` §1.9): errors are HTTP 200 with ``Error Message`` or
``Information`` bodies; a non-entitled key gets REALTIME_OPTIONS' artificial premium sample; a key
over its requests-per-minute allowance gets the ``Information`` throttle text. For the client's
failure tests there are two switches: ``fail_next`` (non-200s such as the 503 seen after hammering)
and ``malformed_next`` (a truncated JSON body).

Why threads (stdlib ``ThreadingHTTPServer``) and not asyncio: the work per request is blocking
numpy over the model, the clients are blocking ``requests``/httpx, and the concurrency is a handful
of workers; a thread per connection keeps the handler plain code and lets tests hammer it from
several threads.

Time: market data is always as of ``now()``, the simulator's clock; the server never reads the wall
clock for it. The rate limit is the one exception, by design: AV limits per *real* minute, whatever
the simulation speed, so the window runs on ``qc.core.clock.monotonic()``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qc.core import clock
from qc.sim.av import payloads as av_payloads
from qc.sim.av.endpoints import Endpoints
from qc.sim.av.payloads import Json
from qc.sim.channels.limits import max_in_window
from qc.sim.loopback import Serving
from qc.sim.market.events import MarketModel

log = logging.getLogger(__name__)

# AV's fitted r and q for its own Greeks (reference §1.5: r = 3.89 % continuous, q = 0).
AV_RATE = 0.03888
AV_DIV_YIELD = 0.0
PREMIUM_ONLY = ("HISTORICAL_OPTIONS", "TIME_SERIES_INTRADAY")  # `Information` premium text (§1.3, §1.7)
OUTAGE_BODY = b"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
ACCEPTED_LOG = 100_000
KEYED_STATS = ("by_key", "max_accepted_per_window")  # stats() entries keyed by the raw API key


def mask_key(key: str) -> str:
    """An API key as stats may show it outside the process: its first two characters (only for a key
    long enough that they give little away) and a short hash, enough to tell keys apart. ``""`` (no key)
    stays ``""``."""
    if not key:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{key[:2] if len(key) >= 8 else ''}***{digest}"


def masked_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """``stats()`` with every API key replaced by :func:`mask_key`: what ``qc sim ctl stats`` prints."""
    out = dict(stats)
    for name in KEYED_STATS:
        section = out.get(name)
        if not isinstance(section, dict):
            continue
        masked: dict[str, Any] = {}
        for key, value in section.items():
            shown = mask_key(str(key))
            if shown not in masked:
                masked[shown] = value
            else:  # two keys with one mask (a hash collision): counts add up, window maxima take the larger
                masked[shown] = masked[shown] + value if name == "by_key" else max(masked[shown], value)
        out[name] = masked
    return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: AlphaVantageServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a requests.Session expects

    def do_GET(self) -> None:
        status, content_type, body = self.server.app.respond(self.path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("av sim %s", format % args)  # never the query string's apikey at info level


class AlphaVantageServer:
    """The simulated AV endpoint: start, stop, fault switches and thread-safe request counts.

    ``rpm`` is the plan's requests per minute per key (AV's premium plans: 75…1200, §1.9), counted
    over a sliding ``window_s`` of real time; throttled requests do not use up the allowance.
    ``not_entitled_keys`` get the premium answers. ``rate_limit_text`` is the ``Information`` a
    throttled key receives: by default the text AV gives a premium key over its rpm; pass
    ``av_payloads.RATE_LIMIT_DAILY`` to act as a free key.
    """

    def __init__(self, model: MarketModel, now: Callable[[], datetime], port: int = 0, rpm: int = 75,
                 not_entitled_keys: Iterable[str] = (), window_s: float = 60.0,
                 rate_limit_text: str = av_payloads.RATE_LIMIT_RPM, rate: float = AV_RATE,
                 div_yield: float = AV_DIV_YIELD) -> None:
        if rpm < 1 or window_s <= 0:
            raise ValueError(f"rpm must be >= 1 and window_s > 0, got rpm={rpm} window_s={window_s}")
        self.endpoints = Endpoints(model, rate, div_yield)
        self.now = now
        self.rpm = rpm
        self.window_s = window_s
        self.rate_limit_text = rate_limit_text
        self.not_entitled_keys = frozenset(not_entitled_keys)
        self._serving = Serving("av-sim", port)
        self._lock = threading.Lock()
        self._failures: deque[int] = deque()
        self._malformed = 0
        self._recent: dict[str, deque[float]] = {}
        self._accepted: dict[str, deque[float]] = {}
        self._counts: dict[str, Counter[str]] = {n: Counter() for n in ("key", "function", "outcome")}

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> int:
        """Bind 127.0.0.1 (never another interface), serve in a daemon thread, return the port."""
        httpd = self._serving.start(_HTTPServer, _Handler)
        assert isinstance(httpd, _HTTPServer)
        httpd.app = self
        return self._serving.run()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        self._serving.stop()

    @property
    def port(self) -> int:
        return self._serving.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/query"

    # --- switches and counts ------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 503) -> None:
        """Answer the next ``n`` requests with ``status`` and an HTML body, before any other check."""
        with self._lock:
            self._failures.extend([status] * n)

    def malformed_next(self, n: int = 1) -> None:
        """Truncate the JSON body of the next ``n`` served requests (HTTP 200, invalid JSON)."""
        with self._lock:
            self._malformed += n

    def stats(self) -> dict[str, Any]:
        """Counts since start, for proving budgets at the server.

        ``requests`` (all ``/query`` GETs), ``by_key`` (missing key counted under ``""``),
        ``by_function``, ``by_outcome`` (``ok``, ``throttled``, ``missing_key`` or the forced HTTP
        status such as ``"503"``; ``malformed`` and ``error`` count ``ok`` requests whose body was
        truncated or whose handler failed), and ``max_accepted_per_window`` per key: the most
        requests let through in any ``window_s`` of real time. Keys are raw here, for in-process
        tests; whatever leaves the process goes through :func:`masked_stats`.
        """
        with self._lock:
            return {"requests": sum(self._counts["key"].values()),
                    "by_key": dict(self._counts["key"]), "by_function": dict(self._counts["function"]),
                    "by_outcome": dict(self._counts["outcome"]),
                    "max_accepted_per_window": {k: max_in_window(v, self.window_s)
                                                for k, v in self._accepted.items()}}

    # --- one request --------------------------------------------------------------------------

    def respond(self, raw_path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one GET; a failing handler is logged and answered 500."""
        url = urlsplit(raw_path)
        if url.path != "/query":
            return 404, "text/plain", b"Not Found"
        params = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        key, function = params.get("apikey", "").strip(), params.get("function", "").strip().upper()
        verdict = self._admit(key, function)
        if isinstance(verdict, int):
            return verdict, "text/html", OUTAGE_BODY.replace(b"{status}", str(verdict).encode())
        try:
            body = self._body(verdict, key, function, params)
        except Exception as exc:
            log.exception("av sim: %s failed", function)
            self._count_outcome("error")
            text = json.dumps({"Error Message": f"qc sim internal error in {function}: {type(exc).__name__}"})
            return 500, "application/json", text.encode()
        data = json.dumps(body, indent=4).encode()
        if self._take_malformed():
            data = data[: max(1, len(data) // 2)]
        return 200, "application/json", data

    def _admit(self, key: str, function: str) -> int | str:
        """Count the request and decide: an HTTP status to fail with, or an outcome to answer."""
        with self._lock:
            self._counts["key"][key] += 1
            self._counts["function"][function] += 1
            if self._failures:
                outcome: int | str = self._failures.popleft()
            elif not key:
                outcome = "missing_key"
            elif self._throttled(key):
                outcome = "throttled"
            else:
                outcome = "ok"
            self._counts["outcome"][str(outcome)] += 1
            return outcome

    def _throttled(self, key: str) -> bool:
        now = clock.monotonic()
        recent = self._recent.setdefault(key, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        if len(recent) >= self.rpm:
            return True
        recent.append(now)
        self._accepted.setdefault(key, deque(maxlen=ACCEPTED_LOG)).append(now)
        return False

    def _body(self, verdict: str, key: str, function: str, params: dict[str, str]) -> Json:
        if verdict == "missing_key":
            return av_payloads.error_message(av_payloads.MISSING_KEY)
        if verdict == "throttled":
            return av_payloads.information(self.rate_limit_text)
        if key in self.not_entitled_keys and function == "REALTIME_OPTIONS":
            return av_payloads.premium_sample()
        if key in self.not_entitled_keys and function in PREMIUM_ONLY:
            return av_payloads.information(av_payloads.PREMIUM_INFORMATION)
        return self.endpoints.answer(function, params, self.now())

    def _take_malformed(self) -> bool:
        with self._lock:
            if self._malformed <= 0:
                return False
            self._malformed -= 1
            self._counts["outcome"]["malformed"] += 1
            return True

    def _count_outcome(self, outcome: str) -> None:
        with self._lock:
            self._counts["outcome"][outcome] += 1
