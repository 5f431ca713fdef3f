"""Fault injection from the shell: a loopback JSON endpoint in `qc sim` and its client for `qc sim ctl`.

``POST /fault`` with ``{"fault": NAME, ...arguments}`` runs one of ``FAULTS`` against the running
simulator and answers ``{"ok": true, "fault": NAME, ...arguments, ...what the handler returned}``;
``GET /stats`` returns its counters and ``GET /query/NAME`` one of ``QUERIES`` (the broker's
orders, positions or executions, or what the simulated signal channels received, as ``{NAME:
[rows]}``), so whole-process tests can look at the broker the way IB's own screens would and count
deliveries where they land. Only 127.0.0.1 is bound: this is a test harness, not an API to expose.
Faults on the IB gateway run on its event loop (the caller hands in a ``dispatch`` that does
``loop.call_soon_threadsafe``); Alpha Vantage, channel and market faults are thread-safe calls.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from qc.core.errors import QcError

log = logging.getLogger(__name__)

Args = Mapping[str, Any]


@dataclass(frozen=True)
class Fault:
    """One injectable failure: its help line and the argument names it takes."""

    help: str
    args: tuple[str, ...] = ()


FAULTS: dict[str, Fault] = {
    "drop_sockets": Fault("close every IB API socket now"),
    "refuse": Fault("refuse IB API connections for SECONDS", ("seconds",)),
    "farm_flap": Fault("market-data farm broken (2103/2105) for SECONDS, then OK (2104/2106)", ("seconds",)),
    "silence": Fault("stop one feed of SYMBOL (depth|bars|ticks|quotes) while its subscription stays open",
                     ("symbol", "feed", "seconds")),
    "connectivity_lost": Fault("1100 now, then 1101 (data lost) or 1102 (kept) after SECONDS",
                               ("seconds", "data_lost")),
    "delay_end_markers": Fault("delay (or with seconds null: withhold) the startup-sync end markers",
                               ("seconds",)),
    "reject_next": Fault("reject the next order with error 201 and REASON", ("reason",)),
    "partial_next": Fault("fill the next order partially (FRACTION of it)", ("fraction",)),
    "av_fail": Fault("answer the next N Alpha Vantage requests with STATUS (503)", ("n", "status")),
    "av_malformed": Fault("serve the next N Alpha Vantage bodies as broken JSON", ("n",)),
    "jump": Fault("gap SYMBOL's book by PCT percent of its mid at the next simulated second", ("symbol", "pct")),
    "informed_flow": Fault("an informed-flow burst on SYMBOL for SECONDS, DIRECTION buy|sell",
                           ("symbol", "seconds", "direction")),
    "restart_gateway": Fault("gateway restart: drop every IB API socket, refuse connections for DOWN seconds, "
                             "roll nextValidId back so finished orders' ids are reissued (LEAN-IB#242)", ("down",)),
    "pin_quote": Fault("pin KEY (an option conId or a stock symbol) to BID/ASK and LAST",
                       ("key", "bid", "ask", "last")),
    "unpin": Fault("return KEY to the model's quotes", ("key",)),
    "settle_now": Fault("settle today's expiring option positions now, at the current underlying prices"),
    "channel_fail": Fault("answer the next N requests to CHANNEL (telegram|x|webhook; only those for TARGET if "
                          "given) with STATUS: 429 (RETRY_AFTER simulated s), 500/502/503, 403 telegram, 410 webhook",
                          ("channel", "n", "status", "target", "retry_after")),
    "channel_timeout": Fault("take the next N requests to CHANNEL (TARGET only, if given) as usual, then hold each "
                             "answer SECONDS real seconds: delivered, but the sender times out",
                             ("channel", "n", "target", "seconds")),
    "chat_not_found": Fault("the simulated Telegram answers 400 \"chat not found\" for CHAT", ("chat",)),
    "channel_secret": Fault("check Standard Webhooks signatures on /hooks/NAME with SECRET (whsec_…)",
                            ("name", "secret")),
    "channels_clear": Fault("remove every channel fault switch and not-found chat"),
}

QUERIES: dict[str, str] = {
    "orders": "every order the broker knows: all clients, all states",
    "positions": "every account's non-zero positions",
    "executions": "every execution booked since the simulator started",
    "channels": "per channel (telegram, x, webhook): counters, limits, what was received and delivered",
}
SECRET_ARGS = frozenset({"secret"})  # never echoed or logged: the reply lands in terminals and CI logs

Handler = Callable[[Args], Mapping[str, Any] | None]
Query = Callable[[], list[dict[str, Any]]]


class ControlServer:
    """The loopback endpoint; ``handlers`` maps each fault name to a callable taking its arguments."""

    def __init__(self, handlers: Mapping[str, Handler], stats: Callable[[], dict[str, Any]], port: int = 0,
                 queries: Mapping[str, Query] | None = None) -> None:
        missing = set(FAULTS) - set(handlers)
        if missing:
            raise ValueError(f"no handler for faults: {sorted(missing)}")
        unknown = set(queries or {}) - set(QUERIES)
        if unknown:
            raise ValueError(f"unknown queries: {sorted(unknown)}")
        self.handlers = dict(handlers)
        self.queries = dict(queries or {})
        self.stats = stats
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> int:
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-ctl", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def apply(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run one fault request; raise ValueError naming what is wrong with it."""
        name = body.get("fault")
        if name not in FAULTS:
            raise ValueError(f"fault: unknown {name!r}; known: {', '.join(FAULTS)}")
        args = {k: v for k, v in body.items() if k != "fault"}
        unknown = set(args) - set(FAULTS[name].args)
        if unknown:
            raise ValueError(f"{name}: unexpected arguments {sorted(unknown)}")
        result = self.handlers[name](args)
        shown = {k: "***" if k in SECRET_ARGS else v for k, v in args.items()}
        log.warning("fault injected: %s %s", name, shown)
        return {"ok": True, "fault": name, **shown, **(result or {})}

    def query(self, name: str) -> dict[str, Any]:
        """One of ``QUERIES``; ValueError when this simulator does not answer it."""
        if name not in self.queries:
            raise ValueError(f"query: unknown {name!r}; known: {', '.join(self.queries) or 'none'}")
        return {name: self.queries[name]()}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.rstrip("/")
                if path == "/stats":
                    self._reply(200, _mask_api_keys(control.stats()))
                elif path.startswith("/query/"):
                    try:
                        self._reply(200, control.query(path.removeprefix("/query/")))
                    except ValueError as exc:
                        self._reply(404, {"error": str(exc)})
                else:
                    self._reply(404, {"error": f"no such path {self.path}"})

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/fault":
                    self._reply(404, {"error": f"no such path {self.path}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length) or b"{}")
                    self._reply(200, control.apply(body))
                except (ValueError, TypeError, KeyError) as exc:
                    self._reply(400, {"error": str(exc)})

            def _reply(self, status: int, doc: Mapping[str, Any]) -> None:
                data = json.dumps(doc, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("ctl: " + format, *args)

        return Handler


def _mask_api_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """The stats document with Alpha Vantage API keys masked wherever a keyed section appears: the
    endpoint is loopback, but its output lands in terminals, CI logs and bug reports."""
    from qc.sim.av.server import masked_stats  # numpy behind it: the `qc sim ctl` client must not pay for it

    out = masked_stats(doc)
    for name, value in out.items():
        if isinstance(value, dict):
            out[name] = _mask_api_keys(value)
    return out


def send_fault(port: int, fault: str, **args: Any) -> dict[str, Any]:
    """Client side of ``qc sim ctl``: inject one fault into the simulator listening on ``port``."""
    return _call("post", port, "/fault", {"fault": fault, **args})


def fetch_stats(port: int) -> dict[str, Any]:
    return _call("get", port, "/stats", None)


def fetch_query(port: int, name: str) -> list[dict[str, Any]]:
    """Client side of ``qc sim ctl orders|positions|executions``: the rows of one of ``QUERIES``."""
    rows: list[dict[str, Any]] = _call("get", port, f"/query/{name}", None)[name]
    return rows


def _call(method: str, port: int, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    try:
        response = requests.request(method, url, json=body, timeout=5)
    except requests.ConnectionError:
        raise QcError(f"no simulator control endpoint at {url}", "is `qc sim` running? check --ctl-port") from None
    doc: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise QcError(f"simulator refused the request: {doc.get('error', response.text)}")
    return doc
