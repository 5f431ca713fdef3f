"""`qc dashboard`'s web server: the page, its assets, live panels over SSE, the API, /metrics, /healthz.

aiohttp: one mature asyncio library that serves HTTP, Server-Sent Events and static files by itself, with
no separate ASGI server to pick, pin and supervise. One process, one event loop; nothing on it ever waits
on Redis or the broker: the panels are built on the hub's thread, ``explain`` and /metrics run on an I/O
pool, and the operator actions on a thread of their own, one at a time.

Routes (every one behind :mod:`qc.dashboard.security`'s rules, applied by one middleware):

- ``GET /`` the page, ``GET /static/…`` its assets (shipped in the wheel; no CDN);
- ``GET /events`` Server-Sent Events from the :class:`~qc.dashboard.hub.Hub`;
- ``GET /api/session``, ``GET /api/panels``, ``GET /api/signals/{id}``;
- ``POST /api/actions/halt|resume|flatten`` (CSRF, origin, operator token; see :mod:`qc.dashboard.actions`);
- ``GET /metrics`` (Prometheus text, read from Redis at scrape time), ``GET /healthz``.

Every response carries the page's Content-Security-Policy and no-sniff / no-frame headers; the API, the
event stream, /metrics and /healthz are ``Cache-Control: no-store``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from qc.core import clock as clocks
from qc.core.clock import Clock
from qc.core.config import Settings
from qc.core.errors import ConfigError, QcError
from qc.dashboard import hub as hubs
from qc.dashboard import security
from qc.dashboard.actions import Actions, parse
from qc.runtime.store import REDIS_ERRORS, Store

log = logging.getLogger(__name__)

NAME = "dashboard"  # heartbeat:dashboard, its monitoring:workers entry, its `qc up` child
STATIC_DIR = Path(__file__).with_name("static")
CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'"
SECURITY_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                    "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
NO_STORE_PREFIXES = ("/api/", "/events", "/metrics", "/healthz")
KEEPALIVE_S = 15.0
CLIENT_CHECK_S = 1.0  # how often a quiet event stream looks whether its browser is still there
HEARTBEAT_EVERY_S = 5.0
MAX_BODY_BYTES = 64 * 1024
WRONG_OPERATOR_TOKEN_DELAY_S = 0.5  # wrong guesses wait in line for it: at most two a second
SIGNAL_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNAUTHORIZED = ("401 Unauthorized: this dashboard needs its token (QC_DASHBOARD_TOKEN): send "
                "`Authorization: Bearer <token>`, or open /?token=<token> once in the browser (it sets a cookie)\n")

# nosniff makes the browser trust the declared type: ours, whatever the host's mime.types says
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
               ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
               ".json": "application/json", ".map": "application/json", ".png": "image/png",
               ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8"}
OTHER_ASSET_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Parts:
    """What the server is built from; ``build``, ``explain`` and ``metrics`` are the panels' and metrics' code."""

    settings: Settings
    store: Store
    clock: Clock
    host: str
    port: int
    account: str
    build: hubs.Build
    explain: Callable[[str], Mapping[str, Any]]
    metrics: Callable[[], bytes]  # Prometheus text exposition, blocking (it reads Redis)
    flatten_budget_s: float = 15.0
    interval_s: float = hubs.DEFAULT_INTERVAL_S
    keepalive_s: float = KEEPALIVE_S


def bound_label(host: str, port: int) -> str:
    """``host:port`` as the page shows it (IPv6 bracketed)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def text(status: int, body: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=body if body.endswith("\n") else body + "\n", headers=headers)


class Dashboard:
    """The handlers and the state they share: the hub, the thread pools, the CSRF key, the token rules."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.token = parts.settings.dashboard_token
        self.loopback = security.is_loopback(parts.host)
        self.scrubber = security.SecretScrubber(parts.settings.secrets())
        self.hub = hubs.Hub(parts.build, interval_s=parts.interval_s, address=parts.store.address,
                            scrubber=self.scrubber)
        self.csrf_key = security.new_csrf_key()
        self.actions = Actions(parts.store, parts.settings, parts.account, parts.clock, parts.flatten_budget_s)
        self._io = ThreadPoolExecutor(2, thread_name_prefix="dashboard-io")
        self._acting = ThreadPoolExecutor(1, thread_name_prefix="dashboard-action")
        self._operator_lock = asyncio.Lock()

    # --- application -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard], client_max_size=MAX_BODY_BYTES)
        r = app.router
        r.add_get("/", self.index)
        r.add_get("/static/{path:.+}", self.asset)
        r.add_get("/events", self.events, allow_head=False)
        r.add_get("/api/session", self.session)
        r.add_get("/api/panels", self.panels)
        r.add_get("/api/signals/{signal_id}", self.signal)
        r.add_post("/api/actions/{action}", self.action)
        r.add_get("/metrics", self.metrics)
        r.add_get("/healthz", self.healthz)
        app.on_response_prepare.append(self.headers)
        app.on_startup.append(self._startup)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _startup(self, app: web.Application) -> None:
        self.hub.start()

    async def _shutdown(self, app: web.Application) -> None:
        await self.hub.stop()  # ends every event stream, so the server's shutdown does not wait on them

    async def _cleanup(self, app: web.Application) -> None:
        self._io.shutdown(wait=False, cancel_futures=True)
        self._acting.shutdown(wait=False)  # an action in flight (a flatten) finishes: never abandon it midway

    async def headers(self, request: web.Request, response: web.StreamResponse) -> None:
        """Security headers on every answer; no caching of anything live."""
        response.headers.update(SECURITY_HEADERS)
        if request.path.startswith(NO_STORE_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        elif "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-cache"

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host check, the token (and ``/?token=`` → cookie), then errors as one line, never a traceback."""
        if not security.host_header_ok(request.headers.get("Host"), self.loopback):
            log.warning("refused a request for Host %r on a loopback bind (DNS rebinding?)",
                        request.headers.get("Host"))
            return text(403, f"403 Forbidden: this dashboard answers only loopback host names: open "
                             f"{security.display_url(self.parts.host, self.parts.port)}")
        if request.path == "/" and "token" in request.query:
            return self._token_login(request)
        if not security.authorized(self.token, request.headers.get("Authorization"),
                                   request.cookies.get(security.COOKIE_NAME)):
            return text(401, UNAUTHORIZED, **{"WWW-Authenticate": 'Bearer realm="qc dashboard"'})
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except REDIS_ERRORS as exc:
            return self.json({"error": f"Redis unreachable at {self.parts.store.address}: {str(exc).rstrip('.')}; "
                                       "retry shortly"}, 503)
        except ConfigError as exc:
            return self.json({"error": str(exc), "field": exc.field}, 400)
        except QcError as exc:
            return self.json({"error": str(exc)}, 500)
        except Exception as exc:
            log.exception("dashboard: %s %s failed", request.method, request.path)
            return self.json({"error": f"internal error: {type(exc).__name__}: {exc}; see the dashboard log"}, 500)

    def _token_login(self, request: web.Request) -> web.StreamResponse:
        """``/?token=…``: with the right token, set the cookie and send the browser to ``/`` (token out of the URL)."""
        if self.token and not security.same_secret(request.query.get("token"), self.token):
            log.warning("wrong dashboard token from %s", request.remote)
            return text(401, UNAUTHORIZED, **{"WWW-Authenticate": 'Bearer realm="qc dashboard"'})
        response = web.Response(status=303, headers={"Location": "/"})
        if self.token:
            response.set_cookie(security.COOKIE_NAME, security.cookie_value(self.token), path="/", httponly=True,
                                samesite="Strict", secure=request.secure)
        return response

    def json(self, doc: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, body=hubs.dumps(doc, self.scrubber), content_type="application/json")

    # --- the page ----------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            return text(503, f"503: the dashboard page is not installed ({page} is missing): reinstall qc")
        return web.FileResponse(page, headers={"Content-Type": "text/html; charset=utf-8"})

    async def asset(self, request: web.Request) -> web.StreamResponse:
        """A file under ``static/`` (nothing outside it, no hidden file), with its declared content type."""
        relative = request.match_info["path"]
        root = STATIC_DIR.resolve()
        path = (root / relative).resolve()
        if (not path.is_relative_to(root) or any(part.startswith(".") for part in Path(relative).parts)
                or not path.is_file()):
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": ASSET_TYPES.get(path.suffix.lower(),
                                                                               OTHER_ASSET_TYPE)})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: every panel first, then each change; a comment every ``keepalive_s``."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        sub = self.hub.subscribe()
        try:
            await response.write(b"retry: 2000\n\n")
            quiet_since = asyncio.get_running_loop().time()
            while True:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), CLIENT_CHECK_S)
                except asyncio.TimeoutError:
                    if request.transport is None or request.transport.is_closing():
                        break  # the browser left: stop costing the poller now, not at the next write
                    if asyncio.get_running_loop().time() - quiet_since >= self.parts.keepalive_s:
                        await response.write(b": keep-alive\n\n")
                        quiet_since = asyncio.get_running_loop().time()
                    continue
                quiet_since = asyncio.get_running_loop().time()
                if frame == hubs.CLOSE:
                    break
                frames = [frame]
                while not sub.queue.empty():  # whatever else is ready goes out in one write
                    more = sub.queue.get_nowait()
                    if more == hubs.CLOSE:
                        await response.write(b"".join(frames))
                        return response
                    frames.append(more)
                await response.write(b"".join(frames))
        except ConnectionError:
            log.debug("push client %s went away", request.remote)
        finally:
            self.hub.unsubscribe(sub)
        return response

    # --- the API -----------------------------------------------------------------------------------

    async def session(self, request: web.Request) -> web.Response:
        s = self.settings
        return self.json({"csrf": security.make_csrf(self.csrf_key), "symbols": list(s.symbols),
                          "account": self.parts.account, "actions_enabled": bool(s.operator_token),
                          "bound": bound_label(self.parts.host, self.parts.port),
                          "token_required": security.token_required(self.token)})

    async def panels(self, request: web.Request) -> web.Response:
        return self.json(await self.hub.snapshot())

    async def signal(self, request: web.Request) -> web.Response:
        signal_id = request.match_info["signal_id"]
        if not SIGNAL_ID_RE.match(signal_id):
            return self.json({"error": f"signal id {signal_id[:40]!r}: 1 to 128 letters, digits or ._:-",
                              "field": "id"}, 400)
        loop = asyncio.get_running_loop()
        return self.json(await loop.run_in_executor(self._io, self.parts.explain, signal_id))

    async def action(self, request: web.Request) -> web.Response:
        """Halt, resume or flatten: JSON body, CSRF token, this origin, the operator token; then qc.risk's steps."""
        name = request.match_info["action"]
        refusal = self._refuse_post(request)
        if refusal is not None:
            return refusal
        try:
            body = await request.json()
        except ValueError:
            return self.json({"error": "body: not valid JSON", "field": "body"}, 400)
        req = parse(name, body, self.settings.symbols, f"dashboard@{request.remote or 'unknown'}")
        expected = self.settings.operator_token
        if not expected:
            return self._refused("actions_disabled", "halt, resume and flatten are disabled: set QC_OPERATOR_TOKEN "
                                                     "for the dashboard (or use `qc risk`)", request)
        given = body.get("operator_token")
        if not security.same_secret(given if isinstance(given, str) else None, expected):
            async with self._operator_lock:  # wrong guesses queue here; the right token never waits
                await asyncio.sleep(WRONG_OPERATOR_TOKEN_DELAY_S)
            return self._refused("operator_token", "operator_token: wrong (it is QC_OPERATOR_TOKEN)", request)
        log.warning("dashboard %s of %s requested by %s: %s", req.action, req.scope, req.by, req.reason or "-")
        loop = asyncio.get_running_loop()
        status, doc = await loop.run_in_executor(self._acting, self.actions.run, req)
        log.warning("dashboard %s: %s", req.action, doc.get("error") or doc.get("message"))
        return self.json(doc, status)

    def _refuse_post(self, request: web.Request) -> web.Response | None:
        """The CSRF rules of a state-changing request, in order; None when it may go on."""
        if request.content_type != "application/json":
            return self.json({"error": "Content-Type: must be application/json", "field": "Content-Type"}, 415)
        if not security.fetch_site_ok(request.headers.get("Sec-Fetch-Site")):
            return self._refused("origin", "Sec-Fetch-Site: a cross-site request may not change anything", request)
        if not security.origin_ok(request.headers.get("Origin"), request.headers.get("Host")):
            origin = (request.headers.get("Origin") or "")[:80]
            return self._refused("origin", f"Origin: {origin!r} is not this dashboard", request)
        if not security.csrf_ok(self.csrf_key, request.headers.get(security.CSRF_HEADER)):
            return self._refused("csrf", f"{security.CSRF_HEADER}: missing or not this server's (reload the page: "
                                         "GET /api/session gives a new one)", request)
        return None

    def _refused(self, reason: str, error: str, request: web.Request) -> web.Response:
        log.warning("dashboard action refused (%s) from %s: %s", reason, request.remote, error)
        return self.json({"ok": False, "reason": reason, "error": error}, 403)

    async def metrics(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(self._io, self.parts.metrics)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness without touching Redis: the hub's own view of it."""
        redis = "unknown" if self.hub.builds == 0 else "unreachable" if self.hub.error else "ok"
        return self.json({"ok": True, "redis": redis, "subscribers": self.hub.subscribers, "builds": self.hub.builds})


def make_parts(settings: Settings, store: Store, clock: Clock, host: str, port: int, account: str,
               flatten_budget_s: float) -> Parts:
    """The production parts: the panels' ``build_all`` and ``explain``, the metrics registry, on ``store``."""
    from qc.dashboard import metrics, panels

    registry = metrics.registry(lambda: store, settings)

    def build() -> Mapping[str, Mapping[str, Any]]:
        store.client.ping()  # Redis down is the hub's outage (last data kept, marked stale), not blank panels
        return panels.build_all(store, settings, clock.epoch())

    def explain(signal_id: str) -> Mapping[str, Any]:
        return panels.explain(store, signal_id, settings)

    return Parts(settings, store, clock, host, port, account, build, explain,
                 lambda: generate_latest(registry), flatten_budget_s)


# --- running it -----------------------------------------------------------------------------------------


def serve(settings: Settings, host: str, port: int, account: str, flatten_budget_s: float,
          announce: Callable[[str], None], host_field: str, port_field: str) -> int:
    """Run the dashboard until SIGTERM / SIGINT: bind, announce the URL, beat ``heartbeat:dashboard``.

    A bind that fails is one line: ConfigError (exit 2) for an address this machine does not have or may not
    use, QcError (exit 1) for a port already taken.
    """
    from qc.runtime.simclock import clock_for
    from qc.runtime.store import connect

    security.check_bind(host, settings.dashboard_token, host_field)
    store = connect(settings)
    try:
        clock = clock_for(store, settings)
        parts = make_parts(settings, store, clock, host, port, account, flatten_budget_s)
        return asyncio.run(_main(Dashboard(parts), announce, host_field, port_field))
    finally:
        store.close()


async def _main(dash: Dashboard, announce: Callable[[str], None], host_field: str, port_field: str) -> int:
    from qc.runtime.worker import SystemdNotifier, deregister, registry_entry, write_heartbeat

    parts = dash.parts
    runner = web.AppRunner(dash.app(), handle_signals=False, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await _listen(runner, parts.host, parts.port, host_field, port_field)
        stop = asyncio.Event()
        _install_signals(stop)
        notifier = SystemdNotifier.from_environ(os.environ)
        announce(f"qc dashboard: {security.display_url(parts.host, parts.port)}"
                 + ("" if dash.loopback else f" (bound to {bound_label(parts.host, parts.port)})"))
        if dash.token:
            announce("  every request needs QC_DASHBOARD_TOKEN: open the page once as /?token=<token>, "
                     "scripts send `Authorization: Bearer <token>`")
        announce(f"  metrics: {security.display_url(parts.host, parts.port)}metrics   stop: Ctrl-C")
        notifier.notify("READY=1")
        started = clocks.wall_epoch()
        loop = asyncio.get_running_loop()
        failing = False
        while not stop.is_set():
            notifier.notify("WATCHDOG=1")
            try:
                await loop.run_in_executor(None, write_heartbeat, parts.store, NAME,
                                           registry_entry(started, dash.hub.builds))
                failing = False
            except REDIS_ERRORS as exc:
                if not failing:
                    log.warning("dashboard heartbeat: Redis unreachable at %s (%s); serving on, retrying",
                                parts.store.address, exc)
                failing = True
            try:
                await asyncio.wait_for(stop.wait(), HEARTBEAT_EVERY_S)
            except asyncio.TimeoutError:
                continue
        notifier.notify("STOPPING=1")
        log.info("dashboard stopping")
    finally:
        await runner.cleanup()
    await asyncio.get_running_loop().run_in_executor(None, deregister, parts.store, NAME)
    return 0


async def _listen(runner: web.AppRunner, host: str, port: int, host_field: str, port_field: str) -> None:
    import errno
    import socket

    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except socket.gaierror as exc:
        raise ConfigError(host_field, f"cannot resolve {host!r} ({exc.strerror})",
                          "use an address of this machine, e.g. 127.0.0.1") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise QcError(f"{port_field} {port}: already in use on {host} (another qc dashboard?)",
                          f"stop it, or pick another port with {port_field}") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES, errno.EPERM):
            raise ConfigError(host_field, f"cannot listen on {bound_label(host, port)}: {exc.strerror}",
                              "use an address of this machine and a port above 1023") from None
        raise QcError(f"cannot listen on {bound_label(host, port)}: {exc.strerror or exc}",
                      f"check {host_field} and {port_field}") from None


def _install_signals(stop: asyncio.Event) -> None:
    """First SIGTERM / SIGINT / SIGHUP stops in order; a second exits at once (as every qc worker does)."""
    loop = asyncio.get_running_loop()

    def handle(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            raise SystemExit(128 + signum)
        log.info("%s: stopping the dashboard", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, handle, signum)
