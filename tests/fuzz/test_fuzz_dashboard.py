"""Dashboard requests are outside input: random methods, paths, query strings, headers and bodies against the
real aiohttp application of ``qc.dashboard.server``, served by aiohttp's TestServer on 127.0.0.1.

No Redis: the app is built from ``Parts`` whose ``build``, ``explain`` and ``metrics`` return fixed
documents (two of them carry a secret, for the scrubber to mask), and whose store is a redis client on a
unix socket that does not exist (any use of it would fail, and show as a 503). The Dashboard makes its
own ``Actions``; it is replaced after construction by one that records calls instead of reaching Redis
and the broker. The wrong-operator-token delay is set to 0 here (it would only slow the fuzz down).

Each request is drawn from ingredients whose rightness the test knows (the dashboard token as a bearer
token or as the cookie, a CSRF token made with this server's key, an Origin naming this Host, a loopback
Host, the JSON content type, the operator token, a valid body), mixed with wrong, malformed and random
values. Asserted for every request, on three servers (loopback with both tokens, bound off loopback with
both tokens, loopback with no token at all):

- never a 5xx (nothing here is meant to fail: no Redis outage, no broker);
- no configured secret in any response header or body, unless the request carried it itself;
- an action runs only when every credential was right (token, Host, content type, Sec-Fetch-Site,
  Origin, CSRF, operator token) and the body valid, and always runs (200) when they all were;
- a 200 under ``/static/`` is exactly one of the shipped files (nothing outside ``static/``);
- every refusal is tallied by status and reason (401, 403 host/origin/csrf/operator_token, 404, 405,
  413, 415, 400 by field…).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from qc.core import config
from qc.core.clock import FakeClock
from qc.dashboard import security, server
from qc.dashboard.actions import ActionRequest, Actions
from qc.runtime.store import Store
from tests.fuzz.tally import FUZZ, TIMEOUT, Tally, reporting

pytestmark = TIMEOUT
TALLY = Tally()
T = TypeVar("T")
SECRETS = {"QC_DASHBOARD_TOKEN": "dash-6b1f0c2e9a7d4e3f8c5b", "QC_OPERATOR_TOKEN": "oper-93d2a7f1c4e8",
           "QC_ALPHA_VANTAGE_API_KEY": "avkey-5e7c1d9b3a", "QC_TELEGRAM_BOT_TOKEN": "100000001:tg-c2f8e4a6b0",
           "QC_X_API_SECRET": "xsec-71a3c5e9d2"}
STATIC_FILES = {p.read_bytes() for p in server.STATIC_DIR.rglob("*") if p.is_file()}
PRINTABLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40)
# header values go out as Latin-1: bytes >= 0x80 reach the server as text that is not UTF-8 (surrogate escapes)
NOT_SECRET_TEXT = PRINTABLE.filter(lambda t: not any(s in t for s in SECRETS.values()))


class RecordingActions(Actions):
    """The operator actions, recorded instead of run (they would need Redis and the broker)."""

    def __init__(self, actions: Actions) -> None:
        super().__init__(actions.store, actions.settings, actions.account, actions.clock, actions.flatten_budget_s)
        self.calls: list[ActionRequest] = []

    def run(self, request: ActionRequest) -> tuple[int, dict[str, Any]]:
        self.calls.append(request)
        return 200, {"ok": True, "action": request.action, "scope": request.scope, "message": "recorded"}


@dataclass
class Served:
    """One dashboard app on its own event loop thread, and a client session to it (no cookie jar)."""

    name: str
    host: str  # what the server believes it is bound to (loopback or not): the rules follow it
    env: Mapping[str, str]
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    calls_seen: int = 0

    def __repr__(self) -> str:
        return f"Served({self.name})"

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"fuzz-dashboard-{self.name}", daemon=True)
        self.thread.start()
        self.settings = config.resolve({}, dict(self.env), {}, {})
        self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        done: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return done.result(timeout_s)

    async def _start(self) -> None:
        store = Store(redis.Redis(unix_socket_path="/nonexistent/qc-fuzz-dashboard.sock"), "unix:nonexistent")
        secret_doc = {"as_of": 1.0, "note": f"carries {SECRETS['QC_ALPHA_VANTAGE_API_KEY']}"}
        parts = server.Parts(
            self.settings, store, FakeClock(), self.host, 0, "DU000000",
            build=lambda: {"health": {"as_of": 1.0, "ok": True}, "leaky": secret_doc},
            explain=lambda signal_id: {"id": signal_id, "why": f"token {SECRETS['QC_TELEGRAM_BOT_TOKEN']}"},
            metrics=lambda: b"# HELP qc_up 1\nqc_up 1\n", interval_s=0.05, keepalive_s=1.0)
        self.dash = server.Dashboard(parts)
        self.recorder = RecordingActions(self.dash.actions)
        self.dash.actions = self.recorder
        self.server = TestServer(self.dash.app(), host="127.0.0.1")
        await self.server.start_server()
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar(),
                                             timeout=aiohttp.ClientTimeout(total=20))
        self.port = self.server.port

    async def _stop(self) -> None:
        await self.session.close()
        await self.server.close()

    def close(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def token(self) -> str:
        return self.settings.dashboard_token

    @property
    def operator(self) -> str:
        return self.settings.operator_token

    @property
    def loopback(self) -> bool:
        return security.is_loopback(self.host)


VARIANTS = {
    "loopback": ("127.0.0.1", SECRETS),
    "off-loopback": ("0.0.0.0", SECRETS),
    "open": ("127.0.0.1", {k: v for k, v in SECRETS.items() if k not in ("QC_DASHBOARD_TOKEN", "QC_OPERATOR_TOKEN")}),
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Served]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(server, "WRONG_OPERATOR_TOKEN_DELAY_S", 0.0)
        started: dict[str, Served] = {}
        try:
            for name, (host, env) in VARIANTS.items():
                started[name] = Served(name, host, env)
            yield started
        finally:
            for s in started.values():
                s.close()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    with reporting(TALLY):
        yield


# --- requests from ingredients -------------------------------------------------------------------------------


@dataclass
class Plan:
    """A request and, for each credential, whether the test put the right one in."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    right: dict[str, bool]


def one(draw: st.DrawFn, right: Any, wrong: st.SearchStrategy[Any], usually_right: bool) -> tuple[Any, bool]:
    """The right value (most of the time when ``usually_right``), else a wrong one."""
    if draw(st.integers(0, 9)) < (8 if usually_right else 3):
        return right, True
    return draw(wrong), False


@st.composite
def plans(draw: st.DrawFn, s: Served) -> Plan:
    action_like = draw(st.integers(0, 2)) == 0  # a third aim at the operator actions with mostly right parts
    method = "POST" if action_like else draw(st.sampled_from(["GET"] * 6 + ["POST", "HEAD", "PUT", "DELETE",
                                                                             "OPTIONS", "PATCH"]))
    action = draw(st.sampled_from(["halt", "resume", "flatten"]))
    random_segment = NOT_SECRET_TEXT.map(lambda t: quote(t, safe=""))
    path = f"/api/actions/{action}" if action_like else draw(st.one_of(
        st.sampled_from(["/", "/static/app.js", "/static/app.css", "/static/index.html", "/static/vendor/",
                         "/static/../server.py", "/static/%2e%2e/server.py", "/static/.hidden",
                         "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static//etc/passwd", "/events", "/api/session",
                         "/api/panels", "/api/signals/sig_01HZX", "/api/signals/" + "x" * 200, "/api/actions/nope",
                         "/api/actions/", "/metrics", "/healthz", "/api/", "/nope", "//", "/api/panels/",
                         "/?token=" + s.token if s.token else "/?token=x", "/?token=wrong-token"]),
        random_segment.map(lambda seg: "/api/signals/" + seg), random_segment.map(lambda seg: "/static/" + seg),
        random_segment.map(lambda seg: "/" + seg)))
    if draw(st.integers(0, 5)) == 0:
        path += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}"
                               for k, v in draw(st.dictionaries(st.sampled_from(["token", "a", "symbol", ""]) |
                                                                NOT_SECRET_TEXT, NOT_SECRET_TEXT, max_size=3)).items())
    headers: dict[str, str] = {}
    right: dict[str, bool] = {}
    loopback_hosts = [f"127.0.0.1:{s.port}", f"localhost:{s.port}", f"[::1]:{s.port}", "127.0.0.1"]
    host_value, host_right = one(draw, draw(st.sampled_from(loopback_hosts)),
                                 st.sampled_from(["evil.example", f"evil.example:{s.port}", "", "127.0.0.1.nip.io",
                                                  "user@127.0.0.1", "[::1", "0.0.0.0"]) | PRINTABLE, True)
    headers["Host"] = host_value
    # off loopback the token is the only guard; a random Host that happens to spell loopback ("[::1]") is right
    right["host"] = host_right or not s.loopback or security.host_header_ok(host_value, True)
    auth_kind = draw(st.sampled_from(["bearer", "bearer", "cookie", "none", "wrong"]))
    if auth_kind == "bearer":
        headers["Authorization"] = draw(st.sampled_from([f"Bearer {s.token}", f"bearer  {s.token} "]))
    elif auth_kind == "cookie":
        headers["Cookie"] = f"{security.COOKIE_NAME}={security.cookie_value(s.token) if s.token else 'x'}"
    elif auth_kind == "wrong":
        headers[draw(st.sampled_from(["Authorization", "Cookie"]))] = draw(st.sampled_from(
            ["Bearer", "Basic dXNlcjpwYXNz", f"Bearer {s.token[:-1]}", f"{security.COOKIE_NAME}={s.token}",
             f"{security.COOKIE_NAME}=", f"Token {s.token}"]) | PRINTABLE)
    right["token"] = not s.token or auth_kind in ("bearer", "cookie")
    same = [f"http://{host_value}", f"https://{host_value}"] if host_right else []  # naming a well-formed Host
    origin, right["origin"] = one(draw, draw(st.sampled_from([None, *same])),
                                  st.sampled_from(["null", "http://attacker.example", f"http://{host_value}/path",
                                                   f"ftp://{host_value}", "http://", f"http://{host_value}:1",
                                                   "http://[::1", "https://[x]", f"http://{host_value}:99999"])
                                  | PRINTABLE, True)
    if origin is not None:
        headers["Origin"] = origin
    fetch_site, right["fetch_site"] = one(draw, draw(st.sampled_from([None, "same-origin", "none", " Same-Origin "])),
                                          st.sampled_from(["cross-site", "same-site", ""]) | PRINTABLE, True)
    if fetch_site is not None:
        headers["Sec-Fetch-Site"] = fetch_site
    csrf, right["csrf"] = one(draw, security.make_csrf(s.dash.csrf_key),
                              st.sampled_from(["", ".", "abc.def", security.make_csrf(b"k" * 32), "x" * 300,
                                               security.make_csrf(s.dash.csrf_key) + "0"]) | PRINTABLE, action_like)
    if csrf:
        headers[security.CSRF_HEADER] = csrf
    ctype, right["content_type"] = one(draw, draw(st.sampled_from(["application/json",
                                                                    "application/json; charset=utf-8"])),
                                       st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "",
                                                        "multipart/form-data; boundary=x", "application/jsonx"])
                                       | PRINTABLE, action_like)
    if ctype:
        headers["Content-Type"] = ctype
    body, right["body"], right["operator"] = draw(bodies(s, action, action_like))
    route = path.partition("?")[0]
    right["route"] = method == "POST" and route.startswith("/api/actions/") and route.rsplit("/", 1)[1] in (
        "halt", "resume", "flatten")
    return Plan(method, path, headers, body, right)


@st.composite
def bodies(draw: st.DrawFn, s: Served, action: str, action_like: bool) -> tuple[bytes | None, bool, bool]:
    """(body bytes, a body the action accepts, the right operator token in it)."""
    operator, operator_right = one(draw, s.operator, st.sampled_from(["", None, 7, ["x"], s.operator + " ",
                                                                        s.operator.upper(), "\ud800", "é"])
                                   | NOT_SECRET_TEXT,
                                   action_like)
    operator_right = operator_right and bool(s.operator)
    kind = draw(st.sampled_from(["good"] * 6 + ["no_reason", "bad_symbol", "reason_type", "long", "not_object",
                                                 "not_json", "huge", "empty", "noise"]))
    doc: dict[str, Any] = {"reason": draw(st.sampled_from(["vol spike", " drill ", "ok"])), "operator_token": operator}
    if action != "flatten" and draw(st.booleans()):
        doc["symbol"] = draw(st.sampled_from(["SPY", "qqq", " IWM "]))
    good = True
    if kind == "no_reason":
        doc.pop("reason")
        good = action != "resume"
    elif kind == "bad_symbol":
        doc["symbol"] = draw(st.sampled_from(["NOPE", "1X", 5, "", "S P Y"]))
        good = doc["symbol"] == ""  # empty means the account
    elif kind == "reason_type":
        doc["reason"] = draw(st.sampled_from([5, None, ["x"], {"a": 1}]))
        good = doc["reason"] is None and action != "resume"
    elif kind == "long":
        doc["reason"] = "r" * 501
        good = False
    if doc.get("operator_token") is None:
        doc.pop("operator_token")
    raw = json.dumps(doc).encode()
    if kind == "not_object":
        raw, good = json.dumps([doc]).encode(), False
    elif kind == "not_json":
        raw, good = raw[: len(raw) // 2], False
    elif kind == "huge":
        raw, good = json.dumps({**doc, "pad": "x" * (server.MAX_BODY_BYTES + 10)}).encode(), False
    elif kind == "empty":
        raw, good = b"", False
    elif kind == "noise":
        raw, good = draw(st.binary(max_size=64)), False
    return raw, good, operator_right


# --- one request ----------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def send(s: Served, plan: Plan) -> Reply:
    url = URL(f"http://127.0.0.1:{s.port}{plan.path}", encoded=True)
    async with s.session.request(plan.method, url, headers=plan.headers, data=plan.body, allow_redirects=False,
                                 skip_auto_headers=["Content-Type"]) as resp:
        if resp.headers.get("Content-Type", "").startswith("text/event-stream"):  # it never ends: its first frames
            body = b""
            while b"\ndata:" not in body:
                body += await asyncio.wait_for(resp.content.readany(), 10)
        else:
            body = await resp.read()
        return Reply(resp.status, dict(resp.headers.items()), body)


def refusal_class(reply: Reply) -> str:
    if reply.status < 400:
        return f"status:{reply.status}"
    reason = ""
    try:
        doc = json.loads(reply.body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        reason = str(doc.get("reason") or doc.get("field") or "")
    elif reply.status == 403:
        reason = "host"
    return f"refused:{reply.status}" + (f":{reason}" if reason else "")


def check(s: Served, plan: Plan, reply: Reply, executed: int) -> None:
    assert reply.status < 500, (plan, reply)
    carried = f"{plan.path} {plan.headers} ".encode() + (plan.body or b"")
    leaked = [name for name, value in SECRETS.items()
              if value.encode() not in carried and (value.encode() in reply.body
                                                    or any(value in v for v in reply.headers.values()))]
    assert not leaked, (leaked, plan, reply)
    everything_right = all(plan.right.values())
    if executed:
        assert executed == 1 and everything_right, (plan, reply)
        assert reply.status == 200 and json.loads(reply.body)["ok"] is True
    elif everything_right:
        raise AssertionError(f"a request with every credential right was refused: {plan} -> {reply}")
    if plan.method in ("GET", "HEAD") and reply.status == 200 and plan.path.startswith("/static/") and reply.body:
        assert reply.body in STATIC_FILES, plan.path
    if "Set-Cookie" in reply.headers:
        assert s.token and reply.headers["Set-Cookie"].startswith(
            f"{security.COOKIE_NAME}={security.cookie_value(s.token)};")
    for name, value in server.SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, (name, plan.path, reply.status)


def exercise(s: Served, plan: Plan) -> None:
    before = len(s.recorder.calls)
    try:
        reply = s.run(send(s, plan))
    except (aiohttp.ClientError, ValueError) as exc:  # the client itself would not send it (e.g. a bad header)
        TALLY.add(f"dashboard {s.name}", f"client_refused:{type(exc).__name__}")
        assert len(s.recorder.calls) == before
        return
    executed = len(s.recorder.calls) - before
    check(s, plan, reply, executed)
    TALLY.add(f"dashboard {s.name}", "executed" if executed else refusal_class(reply))


@FUZZ
@given(data=st.data())
def test_loopback_dashboard_with_tokens(servers: dict[str, Served], data: st.DataObject) -> None:
    s = servers["loopback"]
    exercise(s, data.draw(plans(s)))


@FUZZ
@given(data=st.data())
def test_off_loopback_dashboard_with_tokens(servers: dict[str, Served], data: st.DataObject) -> None:
    s = servers["off-loopback"]
    exercise(s, data.draw(plans(s)))


@FUZZ
@given(data=st.data())
def test_open_dashboard_without_tokens(servers: dict[str, Served], data: st.DataObject) -> None:
    s = servers["open"]
    exercise(s, data.draw(plans(s)))


def test_a_right_action_runs_and_the_stream_and_panels_are_scrubbed(servers: dict[str, Served]) -> None:
    """The fixed path the fuzz mutates: all right → the action runs once; secrets in documents are masked."""
    s = servers["loopback"]
    host = f"127.0.0.1:{s.port}"
    base = {"Host": host, "Authorization": f"Bearer {s.token}"}
    plan = Plan("POST", "/api/actions/halt", {**base, "Origin": f"http://{host}", "Content-Type": "application/json",
                                              security.CSRF_HEADER: security.make_csrf(s.dash.csrf_key)},
                json.dumps({"reason": "drill", "operator_token": s.operator}).encode(),
                dict.fromkeys(("host", "token", "origin", "fetch_site", "csrf", "content_type", "body", "operator",
                               "route"), True))
    before = len(s.recorder.calls)
    exercise(s, plan)
    assert len(s.recorder.calls) == before + 1 and s.recorder.calls[-1].action == "halt"
    for path in ("/api/panels", "/events", "/api/signals/sig_01HZX"):
        reply = s.run(send(s, Plan("GET", path, base, None, {})))
        assert reply.status == 200 and config.SECRET_MASK.encode() in reply.body, (path, reply)
        assert not any(v.encode() in reply.body for v in SECRETS.values())


@pytest.mark.parametrize(("origin", "operator"), [("http://[::1", None), ("https://[x]", None), (None, "\ud800")])
def test_a_malformed_origin_or_operator_token_is_refused_not_an_error(servers: dict[str, Served], origin: str | None,
                                                                      operator: str | None) -> None:
    """What the fuzz found: these were 500 "internal error" (urlsplit's ValueError, a lone surrogate's
    UnicodeEncodeError), now 403 refusals like any other wrong Origin or operator token."""
    s = servers["loopback"]
    host = f"127.0.0.1:{s.port}"
    headers = {"Host": host, "Authorization": f"Bearer {s.token}", "Content-Type": "application/json",
               security.CSRF_HEADER: security.make_csrf(s.dash.csrf_key), **({"Origin": origin} if origin else {})}
    body = json.dumps({"reason": "drill", "operator_token": operator or s.operator}).encode()
    before = len(s.recorder.calls)
    reply = s.run(send(s, Plan("POST", "/api/actions/halt", headers, body, {})))
    assert reply.status == 403 and len(s.recorder.calls) == before
    assert json.loads(reply.body)["reason"] == ("origin" if origin else "operator_token")
    assert security.origin_ok(origin, host) is (origin is None)
