"""The loopback HTTP server behind the simulated Telegram, X and webhook endpoints, and its switches.

One server, routed by path: ``/bot<token>/sendMessage``, ``/2/tweets``, ``/hooks/<name>``; each
channel's rules live in its own module. Threads (stdlib ``ThreadingHTTPServer``) as in the Alpha
Vantage simulator: the senders are blocking clients and an injected timeout must hold one answer
without holding the others. One lock serialises every decision (limits, switches, the record), so
concurrent senders see exactly the limits; the held answer of a timeout waits outside it.

Time: limits and records use ``now()``, the simulator's clock (simulated Unix seconds); the record
also keeps the wall time (``qc.core.clock.wall_epoch``); a timeout holds its answer real seconds,
because the client's timeout is real.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from qc.core import clock
from qc.sim.channels import telegram, xapi
from qc.sim.channels.ledger import CHANNELS, Ledger
from qc.sim.channels.limits import Windows
from qc.sim.channels.switches import FAIL, TIMEOUT, Switch, Switches
from qc.sim.channels.telegram import Telegram
from qc.sim.channels.webhooks import Webhooks, signer
from qc.sim.channels.wire import Reply, Request, text_reply
from qc.sim.channels.xapi import XApi
from qc.sim.loopback import Serving

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
DEFAULT_TIMEOUT_S = 30.0  # real seconds an injected timeout holds its answer: past any sender's timeout
LIMITS = {"telegram": telegram.LIMITS, "x": xapi.LIMITS, "webhook": ()}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: ChannelsServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a requests.Session expects

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send(text_reply(413 if length > MAX_BODY else 400, "bad Content-Length"))
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.app.respond(self.path, headers, body)
        if reply.delay_s > 0 and self.server.app.stopping.wait(reply.delay_s):
            self.close_connection = True  # shutting down: the held answer is never sent
            return
        self._send(reply)

    def do_GET(self) -> None:
        self._send(text_reply(405, "POST only"))

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError) as exc:  # the sender gave up first (a timeout)
            log.debug("channels sim: answer %d not delivered: %s", reply.status, exc)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("channels sim %s", format % args)  # the path holds the bot token: never at info level


class ChannelsServer:
    """Start, stop, answer, switch faults on and off, and report what arrived (all thread-safe)."""

    def __init__(self, now: Callable[[], float], port: int = 0,
                 wall: Callable[[], float] = clock.wall_epoch) -> None:
        self.now, self.wall = now, wall
        self.stopping = threading.Event()
        self._serving = Serving("channels-sim", port)
        self._lock = threading.Lock()
        self._ledger = Ledger()
        self._switches = Switches()
        self._windows = Windows()
        self._telegram = Telegram(self._ledger, self._switches, self._windows)
        self._x = XApi(self._ledger, self._switches, self._windows)
        self._webhooks = Webhooks(self._ledger, self._switches)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, fallback: bool = False) -> int:
        """Bind 127.0.0.1 (never another interface), serve in a daemon thread, return the port.

        ``fallback``: when the port is taken, bind any free one instead (the caller announces it; a
        worker finds it in the clock anchor). Only for a port nobody chose: a chosen one fails loudly.
        """
        httpd = self._serving.start(_HTTPServer, _Handler, fallback=fallback)
        assert isinstance(httpd, _HTTPServer)
        httpd.app = self
        return self._serving.run()

    def stop(self) -> None:
        """Stop serving, release held answers, close the socket; safe to call twice."""
        self.stopping.set()
        self._serving.stop()

    @property
    def port(self) -> int:
        return self._serving.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- one request --------------------------------------------------------------------------

    def respond(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """The answer to one POST (headers with lower-case names), decided under the lock."""
        route = urlsplit(path).path
        with self._lock:
            req = Request(path, headers, body, self.now(), self.wall())
            if route.startswith("/bot"):
                return self._telegram.handle(req)
            if route.rstrip("/") == "/2/tweets":
                return self._x.handle(req)
            if route.startswith("/hooks/"):
                return self._webhooks.handle(req)
        return text_reply(404, "Not Found")

    # --- switches (qc sim ctl) ----------------------------------------------------------------

    def fail_next(self, channel: str, n: int, status: int, target: str | None = None,
                  retry_after_s: float = 5.0) -> dict[str, Any]:
        """Answer the next ``n`` requests to ``channel`` (for ``target`` only, if given) with ``status``;
        a 429 announces ``retry_after_s`` simulated seconds."""
        with self._lock:
            self._switches.add(channel, Switch(FAIL, n, target, status, retry_after_s=retry_after_s))
            return self._switches.view()

    def timeout_next(self, channel: str, n: int, target: str | None = None,
                     seconds: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """Process the next ``n`` requests as usual (a valid one is delivered), then hold each answer
        ``seconds`` real seconds: what a send that timed out but arrived looks like to the sender."""
        with self._lock:
            self._switches.add(channel, Switch(TIMEOUT, n, target, delay_s=seconds))
            return self._switches.view()

    def chat_not_found(self, chat: str) -> dict[str, Any]:
        """Telegram answers 400 "chat not found" for ``chat`` until `clear`."""
        chat = chat.strip()
        if not chat:
            raise ValueError("chat: a chat id or @username is required")
        with self._lock:
            self._switches.missing_chats.add(chat)
            return self._switches.view()

    def set_secret(self, name: str, secret: str) -> dict[str, Any]:
        """Check ``/hooks/<name>``'s Standard Webhooks signatures with ``secret`` from now on."""
        if not name.strip() or "/" in name:
            raise ValueError(f"name: {name!r} is not a webhook endpoint name")
        hook = signer(secret)
        with self._lock:
            self._webhooks.secrets[name] = hook
            return {"hooks_with_secret": sorted(self._webhooks.secrets)}

    def clear(self) -> dict[str, Any]:
        """Remove every fault switch and "not found" chat (webhook secrets stay: they are configuration)."""
        with self._lock:
            return {"cleared": self._switches.clear()}

    # --- views --------------------------------------------------------------------------------

    def received(self) -> list[dict[str, Any]]:
        """The `channels` query: per channel its counters, limits, the dedupe view, every request kept,
        and per limit and scope the most requests let through in any one window (``max_admitted_per_window``:
        delivered Telegram messages; every authenticated X request, as X counts them), never above the limit."""
        with self._lock:
            admitted = self._windows.max_admitted()
            return [{"channel": channel, **self._ledger.view(channel),
                     "limits": {lim.name: {"count": lim.count, "window_s": lim.window_s} for lim in LIMITS[channel]},
                     "max_admitted_per_window": {lim.name: admitted.get(lim.name, {}) for lim in LIMITS[channel]}}
                    for channel in CHANNELS]

    def stats(self) -> dict[str, Any]:
        """Counters per channel and the pending switches, for `qc sim ctl stats`."""
        with self._lock:
            return {**{channel: self._ledger.summary(channel) for channel in CHANNELS},
                    "switches": self._switches.view()}
