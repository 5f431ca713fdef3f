"""`qc dashboard` against a real redis-server: the token rules, CSRF, the operator actions, SSE, outages.

Most tests start `qc dashboard` as an operator would (a real `python -m qc` process); the push tests run the
same application in this process (on a thread of its own) so they can count the panel builds. Every client
talks to 127.0.0.1 only, including the server bound to 0.0.0.0; every response body is checked for the
secrets the server was given (test values, no credential).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web

from qc.core import clock, config, keys
from qc.core.config import Settings
from qc.dashboard import security, server
from qc.risk.codec import HaltRequest
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState, escalate
from qc.runtime.codec import Heartbeat, WorkerRegistry
from qc.runtime.store import Store
from qc.runtime.supervisor import dashboard_ready

from .conftest import RedisServer, eventually, free_port

ROOT = Path(__file__).parents[2]
ACCOUNT = "default"
SYMBOLS = ("SPY", "QQQ", "IWM")


def secret_values() -> dict[str, str]:
    """Secrets of the settings for one server (random test values: none of them is a credential)."""
    return {"QC_DASHBOARD_TOKEN": f"dash-{secrets.token_hex(12)}", "QC_OPERATOR_TOKEN": f"oper-{secrets.token_hex(8)}",
            "QC_ALPHA_VANTAGE_API_KEY": f"av-{secrets.token_hex(8)}",
            "QC_TELEGRAM_BOT_TOKEN": f"100000001:{secrets.token_hex(10)}"}


class Client:
    """requests against one dashboard port on 127.0.0.1; every body is checked for the given secrets."""

    def __init__(self, port: int, secret_values: list[str]) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.port = port
        self.secrets = [s for s in secret_values if s]
        self.bodies = 0

    def check(self, body: bytes) -> None:
        self.bodies += 1
        for secret in self.secrets:
            assert secret.encode() not in body, f"a secret ({secret[:4]}…) reached a response body"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        reply = requests.request(method, self.base + path, **kwargs)
        self.check(reply.content)
        return reply

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def events(self, **kwargs: Any) -> EventStream:
        reply = requests.get(self.base + "/events", stream=True, timeout=30, **kwargs)
        return EventStream(reply, self.check)


class EventStream:
    """A Server-Sent-Events reader on a thread: ``next()`` gives (event, data) in order, comments as ("", text)."""

    def __init__(self, reply: requests.Response, check: Callable[[bytes], None]) -> None:
        self.reply = reply
        self.check = check
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event, data = "message", list[str]()
        try:
            for raw in self.reply.iter_lines(chunk_size=None):
                self.check(raw)
                line = raw.decode()
                if not line:
                    if data:
                        text = "\n".join(data)
                        self.events.put((event, json.loads(text) if event == "panel" else text))
                    event, data = "message", []
                elif line.startswith(":"):
                    self.events.put(("", line[1:].strip()))
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line.startswith("retry:"):
                    self.events.put(("retry", line[6:].strip()))
        except (requests.RequestException, AttributeError, ValueError, OSError):
            pass  # closed by the test (or the server): the reader ends
        self.events.put(("closed", None))

    def next(self, timeout_s: float = 10.0) -> tuple[str, Any]:
        return self.events.get(timeout=timeout_s)

    def panels(self, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` panel frames (comments and the retry line skipped)."""
        got: list[dict[str, Any]] = []
        while len(got) < count:
            event, data = self.next(timeout_s)
            assert event != "closed", f"stream closed after {len(got)} panels"
            if event == "panel":
                got.append(data)
        return got

    def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Every panel frame arriving within ``seconds``."""
        got: list[dict[str, Any]] = []
        deadline = clock.monotonic() + seconds
        while (left := deadline - clock.monotonic()) > 0:
            try:
                event, data = self.next(left)
            except queue.Empty:
                break
            if event == "panel":
                got.append(data)
        return got

    def close(self) -> None:
        self.reply.close()
        self.thread.join(5)


# --- `qc dashboard` as a process -----------------------------------------------------------------------


class DashboardProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, out: Path, err: Path) -> None:
        self.proc, self.port, self.out, self.err = proc, port, out, err

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def qc_env(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return {**env, "QC_REDIS_URL": redis_url, "QC_DATA_DIR": str(tmp_path / "var"), "QC_SYMBOLS": ",".join(SYMBOLS),
            "QC_IB_HOST": "127.0.0.1", "QC_IB_PORT": str(free_port()), **extra}


def start_dashboard(env: dict[str, str], tmp_path: Path, *args: str, token: str = "") -> DashboardProcess:
    port = free_port()
    out, err = tmp_path / f"dashboard-{port}.out", tmp_path / f"dashboard-{port}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "qc", "dashboard", "--port", str(port), *args], env=env,
                                cwd=tmp_path, stdout=o, stderr=e)
    running = DashboardProcess(proc, port, out, err)
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"qc dashboard exited {proc.returncode}: {running.output()}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", headers=headers, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    eventually(answers, timeout_s=20)
    return running


@pytest.fixture
def dashboards() -> Iterator[list[DashboardProcess]]:
    started: list[DashboardProcess] = []
    yield started
    for running in started:
        running.stop()


def panel_ids() -> list[str]:
    return [f"symbol:{s}" for s in SYMBOLS] + ["signals", "trading", "risk", "health"]


def account_latch(store: Store) -> Latch:
    """The account's trading state as qc.risk reads it."""
    return latches.scope_latch(latches.load(store, ACCOUNT), latches.ACCOUNT_SCOPE)


# --- the token -------------------------------------------------------------------------------------------


def test_on_loopback_every_route_serves_without_a_token(store: Store, redis_server: RedisServer, tmp_path: Path,
                                                        dashboards: list[DashboardProcess]) -> None:
    values = secret_values()
    del values["QC_DASHBOARD_TOKEN"]
    running = start_dashboard(qc_env(redis_server.url, tmp_path, **values), tmp_path)
    dashboards.append(running)
    client = Client(running.port, list(values.values()))
    page = client.get("/")
    assert page.status_code == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == server.CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff" and page.headers["X-Frame-Options"] == "DENY"
    assert b"<html" in page.content
    js = client.get("/static/vendor/uPlot.iife.min.js")
    assert js.status_code == 200 and js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    css = client.get("/static/vendor/uPlot.min.css")
    assert css.status_code == 200 and css.headers["Content-Type"] == "text/css; charset=utf-8"
    for outside in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/vendor/../../server.py"):
        assert client.get(outside).status_code == 404
    session = client.get("/api/session")
    assert session.status_code == 200 and session.headers["Cache-Control"] == "no-store"
    doc = session.json()
    assert doc["symbols"] == list(SYMBOLS) and doc["account"] == ACCOUNT and doc["actions_enabled"] is True
    assert doc["bound"] == f"127.0.0.1:{running.port}" and doc["token_required"] is False and "." in doc["csrf"]
    every = client.get("/api/panels")
    assert every.status_code == 200 and every.headers["Content-Type"].startswith("application/json")
    assert sorted(every.json()) == sorted(panel_ids())
    assert every.headers["Cache-Control"] == "no-store"
    detail = client.get("/api/signals/sig-nope")
    assert detail.status_code == 200 and isinstance(detail.json(), dict)
    assert client.get("/api/signals/" + "x" * 200).status_code == 400
    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain; version=")
    assert "qc_redis_up 1.0" in scrape.text and scrape.headers["Cache-Control"] == "no-store"
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["ok"] is True
    stream = client.events()
    try:
        assert stream.reply.headers["Content-Type"].startswith("text/event-stream")
        assert stream.reply.headers["Cache-Control"] == "no-store"
        assert sorted(p["id"] for p in stream.panels(len(panel_ids()))) == sorted(panel_ids())
    finally:
        stream.close()
    rebound = client.get("/api/panels", headers={"Host": f"rebound.example:{running.port}"})
    assert rebound.status_code == 403  # DNS rebinding: a loopback bind answers loopback host names only

    beat = Heartbeat.from_redis(store.get(keys.heartbeat("dashboard")), key="heartbeat:dashboard")
    assert isinstance(beat, Heartbeat) and beat.at_epoch > clock.wall_epoch() - 30
    registry = WorkerRegistry.from_redis(store.hgetall(keys.worker_registry()), key="monitoring:workers")
    assert isinstance(registry, WorkerRegistry) and registry.workers["dashboard"].pid == running.proc.pid
    assert running.stop() == 0, running.output()
    assert store.get(keys.heartbeat("dashboard")) is None  # a clean stop leaves the registry
    assert "Traceback" not in running.output()


def test_off_loopback_every_route_needs_the_token(store: Store, redis_server: RedisServer, tmp_path: Path,
                                                  dashboards: list[DashboardProcess]) -> None:
    values = secret_values()
    token = values["QC_DASHBOARD_TOKEN"]
    running = start_dashboard(qc_env(redis_server.url, tmp_path, **values), tmp_path, "--host", "0.0.0.0",
                              token=token)
    dashboards.append(running)
    client = Client(running.port, list(values.values()))
    routes = [("GET", "/"), ("GET", "/static/vendor/uPlot.min.css"), ("GET", "/events"), ("GET", "/api/session"),
              ("GET", "/api/panels"), ("GET", "/api/signals/sig-1"), ("GET", "/metrics"), ("GET", "/healthz"),
              ("POST", "/api/actions/halt")]
    wrong = [{}, {"Authorization": "Bearer not-the-token-0123456789"}, {"Authorization": f"Basic {token}"},
             {"Cookie": f"{security.COOKIE_NAME}={token}"},  # the raw token is not what the cookie holds
             {"Cookie": f"{security.COOKIE_NAME}={security.cookie_value(token + 'x')}"}]
    for method, path in routes:
        for headers in wrong:
            refused = client.request(method, path, headers=headers, stream=path == "/events")
            assert refused.status_code == 401, (method, path, headers)
            assert "Bearer" in refused.text and refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert refused.headers["Content-Security-Policy"] == server.CSP
    assert client.get(f"/?token=not-the-token-{secrets.token_hex(4)}").status_code == 401

    bearer = {"Authorization": f"Bearer {token}"}
    login = client.get(f"/?token={token}")
    assert login.status_code == 303 and login.headers["Location"] == "/"
    set_cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and token not in set_cookie
    cookie = {"Cookie": f"{security.COOKIE_NAME}={login.cookies[security.COOKIE_NAME]}"}
    for auth in (bearer, cookie):
        for method, path in routes:
            if path == "/events":
                stream = client.events(headers=auth)
                try:
                    assert stream.reply.status_code == 200 and stream.panels(1)[0]["id"] in panel_ids()
                finally:
                    stream.close()
                continue
            served = client.request(method, path, headers=auth, json={} if method == "POST" else None)
            # the POST passes the token and stops at the CSRF check
            assert served.status_code == (403 if method == "POST" else 200), (method, path, served.text)
    session = client.get("/api/session", headers=cookie).json()
    assert session["token_required"] is True and session["bound"] == f"0.0.0.0:{running.port}"
    as_qc_up = {"QC_DASHBOARD_HOST": "0.0.0.0", "QC_DASHBOARD_PORT": str(running.port)}
    assert dashboard_ready(config.resolve({}, {**as_qc_up, "QC_DASHBOARD_TOKEN": token}, {}, {}))
    assert not dashboard_ready(config.resolve({}, as_qc_up, {}, {}))  # `qc up`'s readiness sends the token
    assert client.bodies > 50


def test_off_loopback_without_a_token_exits_2_naming_it(redis_server: RedisServer, tmp_path: Path) -> None:
    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qc", "dashboard", "--port", str(free_port()), *args],
                              env=qc_env(redis_server.url, tmp_path, **extra), cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, check=False)

    flag = run("--host", "0.0.0.0")
    assert flag.returncode == 2 and flag.stdout == ""
    assert flag.stderr.strip().splitlines() == [flag.stderr.strip()]
    assert flag.stderr.startswith("Error: QC_DASHBOARD_TOKEN: not set, and --host is '0.0.0.0', not a loopback")
    env = run(QC_DASHBOARD_HOST="0.0.0.0")
    assert env.returncode == 2 and "QC_DASHBOARD_TOKEN: not set, and QC_DASHBOARD_HOST is" in env.stderr
    short = run("--host", "0.0.0.0", QC_DASHBOARD_TOKEN="short-token")
    assert short.returncode == 2 and "QC_DASHBOARD_TOKEN: 11 characters; at least 16" in short.stderr
    assert "short-token" not in short.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([sys.executable, "-m", "qc", "dashboard", "--port", str(taken.getsockname()[1])],
                              env=qc_env(redis_server.url, tmp_path), cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, check=False)
    assert busy.returncode == 1 and "already in use" in busy.stderr and "Traceback" not in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1


# --- the operator's actions ----------------------------------------------------------------------------


class Executor:
    """What `qc execute` does with a halt request: acknowledge it (so halt need not reach the broker)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stop = threading.Event()
        self.acked: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        key = keys.risk_halt_request(ACCOUNT)
        while not self.stop.is_set():
            request = HaltRequest.from_redis(self.store.get(key), key=key.name)
            if isinstance(request, HaltRequest) and request.id not in self.acked:
                self.store.set(keys.execute_halt_ack(ACCOUNT), request.id)
                self.acked.append(request.id)
            self.stop.wait(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


def test_actions_need_csrf_origin_and_the_operator_token_then_halt_and_resume_latch(
        store: Store, redis_server: RedisServer, tmp_path: Path, dashboards: list[DashboardProcess]) -> None:
    values = secret_values()
    del values["QC_DASHBOARD_TOKEN"]
    running = start_dashboard(qc_env(redis_server.url, tmp_path, QC_RISK_HALT_ACK_S="5", **values), tmp_path)
    dashboards.append(running)
    client = Client(running.port, list(values.values()))
    csrf = client.get("/api/session").json()["csrf"]
    origin = f"http://127.0.0.1:{running.port}"
    good = {"X-CSRF-Token": csrf, "Origin": origin}
    body = {"reason": "drill", "operator_token": values["QC_OPERATOR_TOKEN"]}

    def post(action: str, headers: dict[str, str], payload: Any = body) -> requests.Response:
        return client.post(f"/api/actions/{action}", headers=headers, json=payload)

    refusals = [
        ({"Origin": origin}, body, 403, "csrf"),
        ({**good, "X-CSRF-Token": security.make_csrf(security.new_csrf_key())}, body, 403, "csrf"),
        ({**good, "X-CSRF-Token": csrf + "0"}, body, 403, "csrf"),
        ({**good, "Origin": "http://evil.example"}, body, 403, "origin"),
        ({**good, "Origin": "null"}, body, 403, "origin"),
        ({**good, "Sec-Fetch-Site": "cross-site"}, body, 403, "origin"),
        (good, {**body, "operator_token": "oper-wrong-0123"}, 403, "operator_token"),
        (good, {"reason": "drill"}, 403, "operator_token"),
        (good, {**body, "operator_token": 12345}, 403, "operator_token"),
    ]
    for headers, payload, status, reason in refusals:
        refused = post("halt", headers, payload)
        assert (refused.status_code, refused.json()["reason"]) == (status, reason), refused.text
        assert refused.json()["ok"] is False and "\n" not in refused.json()["error"]
    form = client.post("/api/actions/halt", headers=good, data={"reason": "x"})
    assert form.status_code == 415
    garbage = client.post("/api/actions/halt", headers={**good, "Content-Type": "application/json"}, data=b"{not json")
    assert garbage.status_code == 400 and garbage.json()["field"] == "body"
    bad_symbol = post("halt", good, {**body, "symbol": "TSLA"})
    assert bad_symbol.status_code == 400 and bad_symbol.json()["field"] == "symbol"
    assert "QC_SYMBOLS" in bad_symbol.json()["error"]
    no_reason = post("resume", good, {**body, "reason": " "})
    assert no_reason.status_code == 400 and no_reason.json()["field"] == "reason"
    assert client.post("/api/actions/explode", headers=good, json=body).status_code == 400
    assert client.get("/api/actions/halt").status_code == 405  # state changes are POST only
    assert account_latch(store).state is TradingState.ACTIVE  # nothing above changed anything

    executor = Executor(store)
    try:
        halted = post("halt", good)
        assert halted.status_code == 200, halted.text
        doc = halted.json()
        assert doc["ok"] is True and doc["state"] == "HALTED" and doc["was"] == "ACTIVE"
        assert doc["acknowledged_s"] is not None and "HALTED" in doc["message"]
        latch = account_latch(store)
        assert latch.state is TradingState.HALTED and latch.reason == "drill"
        assert latch.by == "operator:dashboard@127.0.0.1" and latch.cause == "operator_halt"
        assert executor.acked
        spy = post("halt", good, {**body, "symbol": "spy"})
        assert spy.status_code == 200 and spy.json()["scope"] == "SPY"
        assert latches.load(store, ACCOUNT)["SPY"].state is TradingState.HALTED
        leak = f"pasted by mistake: {values['QC_ALPHA_VANTAGE_API_KEY']}"  # a secret in Redis, in a panel's text
        assert post("halt", good, {**body, "symbol": "QQQ", "reason": leak}).status_code == 200
        assert latches.load(store, ACCOUNT)["QQQ"].reason == leak
        risk = client.get("/api/panels").json()["risk"]  # the client checks every body for the secrets
        assert "pasted by mistake: ***" in json.dumps(risk)
        stream = client.events()
        try:
            stream.panels(len(panel_ids()))  # and every pushed frame
        finally:
            stream.close()
    finally:
        executor.close()
    resumed = post("resume", good, {**body, "reason": "checked, flat"})
    assert resumed.status_code == 200 and resumed.json()["state"] == "ACTIVE" and resumed.json()["was"] == "HALTED"
    latch = account_latch(store)
    assert latch.state is TradingState.ACTIVE and latch.reason == "checked, flat"
    again = post("resume", good, {**body, "reason": "twice"})
    assert again.status_code == 200 and again.json()["message"] == "account: already ACTIVE"
    without_origin = post("resume", {"X-CSRF-Token": csrf}, {**body, "symbol": "SPY", "reason": "ok"})
    assert without_origin.status_code == 200  # no Origin at all: not a browser's cross-site request
    assert latches.load(store, ACCOUNT)["SPY"].state is TradingState.ACTIVE
    assert "Traceback" not in running.output()


def test_actions_are_refused_while_qc_operator_token_is_unset(
        store: Store, redis_server: RedisServer, tmp_path: Path, dashboards: list[DashboardProcess]) -> None:
    running = start_dashboard(qc_env(redis_server.url, tmp_path), tmp_path)
    dashboards.append(running)
    client = Client(running.port, [])
    session = client.get("/api/session").json()
    assert session["actions_enabled"] is False
    headers = {"X-CSRF-Token": session["csrf"], "Origin": f"http://127.0.0.1:{running.port}"}
    for action in ("halt", "resume", "flatten"):
        refused = client.post(f"/api/actions/{action}", headers=headers,
                              json={"reason": "drill", "operator_token": ""})
        assert refused.status_code == 403 and refused.json()["reason"] == "actions_disabled"
        assert "QC_OPERATOR_TOKEN" in refused.json()["error"]
    assert account_latch(store).state is TradingState.ACTIVE


@pytest.mark.slow
def test_flatten_without_the_broker_latches_halted_answers_its_report_and_never_blocks(
        store: Store, redis_server: RedisServer, tmp_path: Path, dashboards: list[DashboardProcess]) -> None:
    values = secret_values()
    del values["QC_DASHBOARD_TOKEN"]
    running = start_dashboard(qc_env(redis_server.url, tmp_path, **values), tmp_path)  # IB port: nobody there
    dashboards.append(running)
    client = Client(running.port, list(values.values()))
    headers = {"X-CSRF-Token": client.get("/api/session").json()["csrf"], "Origin": f"http://127.0.0.1:{running.port}"}
    answer: list[requests.Response] = []
    flattening = threading.Thread(target=lambda: answer.append(client.post(
        "/api/actions/flatten", headers=headers,
        json={"reason": "vol spike", "operator_token": values["QC_OPERATOR_TOKEN"]})))
    flattening.start()
    eventually(lambda: account_latch(store).state is TradingState.HALTED)
    probes = 0
    while flattening.is_alive():  # the broker step takes its whole budget: the server keeps answering meanwhile
        started = clock.monotonic()
        assert client.get("/healthz", timeout=2).status_code == 200
        assert client.get("/api/session", timeout=2).status_code == 200
        assert clock.monotonic() - started < 2.0
        probes += 1
        clock.real_sleep(0.5)
    flattening.join()
    assert probes >= 5
    [reply] = answer
    assert reply.status_code == 502, reply.text
    doc = reply.json()
    assert doc["ok"] is False and doc["state"] == "HALTED" and doc["action"] == "flatten"
    assert doc["error"].startswith("could not reach IB as the executor") and "\n" not in doc["error"]
    latch = account_latch(store)
    assert latch.state is TradingState.HALTED and latch.cause == "operator_flatten" and latch.reason == "vol spike"


# --- the push: one poller, snapshot then changes, outages --------------------------------------------


class InProcess:
    """The dashboard's application on a thread's event loop, with the panel builds counted."""

    def __init__(self, settings: Settings, store: Store, interval_s: float = 0.1) -> None:
        self.port = free_port()
        self.builds = 0
        parts = server.make_parts(settings, store, clock.SystemClock(), "127.0.0.1", self.port, ACCOUNT, 15.0)
        build = parts.build

        def counted() -> Any:
            self.builds += 1
            return build()

        self.dashboard = server.Dashboard(dataclasses.replace(parts, build=counted, interval_s=interval_s))
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(20), "the in-process dashboard did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.dashboard.app(), access_log=None, shutdown_timeout=2.0)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)


@pytest.fixture
def in_process(store: Store, settings: Settings) -> Iterator[InProcess]:
    running = InProcess(settings, store)
    yield running
    running.close()


def test_a_client_gets_every_panel_then_only_changes_and_two_clients_share_one_poller(
        store: Store, in_process: InProcess) -> None:
    client = Client(in_process.port, [])
    clock.real_sleep(0.5)
    assert in_process.builds == 0  # nobody watching: Redis is not read at all
    first = client.events()
    second = None
    try:
        snapshot = first.panels(len(panel_ids()))
        assert sorted(p["id"] for p in snapshot) == sorted(panel_ids())
        assert all({"as_of", "age_s", "stale", "stale_after_s"} <= set(p["doc"]) for p in snapshot)
        quiet = first.drain(1.5)  # an empty Redis: only the health table's clock moves
        assert {p["id"] for p in quiet} <= {"health"}, [p["id"] for p in quiet]

        now = clock.SystemClock().now()

        def halt(current: Latch) -> Latch:
            return escalate(current, TradingState.HALTED, "operator_halt", "operator:test", "drill", now)

        latches.update(store, ACCOUNT, latches.ACCOUNT_SCOPE, halt, now)  # risk's own writer
        changed: list[dict[str, Any]] = []

        def risk_pushed() -> bool:
            changed.extend(first.drain(0.1))
            return any(p["id"] == "risk" for p in changed)

        eventually(risk_pushed)
        assert not any(p["id"].startswith("symbol:") for p in changed)
        risk = next(p["doc"] for p in changed if p["id"] == "risk")
        assert risk["trading_state"] == "HALTED"

        second = client.events()
        late = second.panels(len(panel_ids()))  # a newcomer gets everything, the halt included
        assert sorted(p["id"] for p in late) == sorted(panel_ids())
        assert next(p["doc"] for p in late if p["id"] == "risk")["trading_state"] == "HALTED"
        before, started = in_process.builds, clock.monotonic()
        clock.real_sleep(2.0)
        builds, took = in_process.builds - before, clock.monotonic() - started
        assert 5 <= builds <= took / 0.1 + 3, builds  # one poller at 0.1 s for both clients, not one each
        assert in_process.dashboard.hub.subscribers == 2
    finally:
        first.close()
        if second is not None:
            second.close()
    eventually(lambda: in_process.dashboard.hub.subscribers == 0)
    idle = in_process.builds
    clock.real_sleep(0.6)
    assert in_process.builds <= idle + 1  # both gone: the poller sleeps


def test_redis_down_keeps_the_server_up_and_the_health_panel_says_so(
        store: Store, redis_server: RedisServer, in_process: InProcess) -> None:
    client = Client(in_process.port, [])
    stream = client.events()
    try:
        stream.panels(len(panel_ids()))
        redis_server.kill()
        health: dict[str, Any] = {}

        def unreachable() -> bool:
            for p in stream.drain(0.1):
                if p["id"] == "health":
                    health.update(p["doc"])
            return health.get("redis_reachable") is False

        eventually(unreachable)
        assert health["stale"] is True and health["missing"].startswith("Redis unreachable at redis://127.0.0.1:")
        assert client.get("/healthz").json()["redis"] == "unreachable"
        down = client.get("/api/panels")
        assert down.status_code == 503 and down.json()["error"].startswith("Redis unreachable at")
        assert client.get("/").status_code == 200  # the page itself needs no Redis
        redis_server.start()
        back: dict[str, Any] = {}

        def reachable() -> bool:
            for p in stream.drain(0.1):
                if p["id"] == "health":
                    back.clear()
                    back.update(p["doc"])
            return bool(back) and "error" not in back

        eventually(reachable, timeout_s=20)
        assert client.get("/healthz").json()["redis"] == "ok"
    finally:
        stream.close()
        if redis_server.process is None:
            redis_server.start()
