"""Secrets never reach an operator's screen: `qc` run as a subprocess, its whole output searched.

The fake password ``s3cr/et?x=1&y`` holds every URL-reserved character a careless one has; each test
looks for it raw and in every URL encoding (quote, quote_plus) a client or a log line may use.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import requests

from qc.core import keys
from qc.core.clock import wall_epoch
from qc.core.config import Settings
from qc.runtime.store import EmbeddedRedis, connect
from qc.sim.av.server import AlphaVantageServer, mask_key
from qc.sim.control import FAULTS, ControlServer

from .conftest import RedisServer, free_port
from .distribute_harness import make_signal

SECRET = "s3cr/et?x=1&y"
FORMS = (SECRET, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET))
ENCODED = quote(SECRET, safe="")


def run_qc(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m qc ARGS`` in ``cwd`` (so no repository .env or qc.toml leaks in), QC_* only from ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QC_")}
    return subprocess.run([sys.executable, "-m", "qc", *args], cwd=cwd, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    text = result.stdout + result.stderr
    for form in (*FORMS, *secrets):
        assert form not in text, f"{form!r} printed:\n{text}"
    assert "internal error" not in text and "Traceback" not in text, text


@pytest.mark.parametrize("template", [
    "redis://:{pw}@127.0.0.1:{port}/0",
    "redis://default:{pw}@127.0.0.1:{port}/0",
    "redis://127.0.0.1:{port}/0?password={pw}",
    "redis://127.0.0.1:{port}/0?client_name=qc&password={pw}&socket_timeout=5",
])
@pytest.mark.parametrize("as_json", [False, True])
def test_status_never_prints_the_redis_password(redis_server: RedisServer, tmp_path: Path, template: str,
                                                as_json: bool) -> None:
    """The test server has no password (Redis 6 then accepts any), so status really connects and reports."""
    url = template.format(pw=ENCODED, port=redis_server.port)
    result = run_qc("--log-level", "DEBUG", "status", *(["--json"] if as_json else []), cwd=tmp_path,
                    env={"QC_REDIS_URL": url})
    assert result.returncode == 1, result.stderr  # reachable, unhealthy: no worker ever beat
    assert_no_secret(result)
    if as_json:
        doc = json.loads(result.stdout)
        assert "***" in doc["redis_url"] and "***" in doc["settings"]["redis_url"]["value"]
    else:
        assert f"127.0.0.1:{redis_server.port}" in result.stdout and "***" in result.stdout


@pytest.mark.parametrize("template", [
    "redis://:{pw}@127.0.0.1:{port}/0",  # '/' and '?' end the host early: looks like a port "s3cr"
    "redis://127.0.0.1:{port}/0?password={pw}",  # '&' splits it: "y" looks like an option
    "redis+sentinel://:{pw}@127.0.0.1:{port},127.0.0.1:1/mymaster",
])
@pytest.mark.parametrize("via", ["env", "flag"])
def test_unencoded_password_is_exit_2_without_the_password(redis_server: RedisServer, tmp_path: Path,
                                                           template: str, via: str) -> None:
    url = template.format(pw=SECRET, port=redis_server.port)
    args, env = (["--redis-url", url], {}) if via == "flag" else ([], {"QC_REDIS_URL": url})
    for verb in (["status"], ["status", "--json"]):
        result = run_qc(*args, *verb, cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr
        assert ("--redis-url:" if via == "flag" else "QC_REDIS_URL:") in result.stderr
        assert_no_secret(result, "s3cr", "et?x")


@pytest.mark.parametrize("via", ["env", "flag"])
def test_a_database_the_server_lacks_is_one_runtime_line(redis_server: RedisServer, tmp_path: Path,
                                                         via: str) -> None:
    url = f"redis://127.0.0.1:{redis_server.port}/99"  # 16 databases by default: 99 is refused at SELECT
    args, env = (["--redis-url", url], {}) if via == "flag" else ([], {"QC_REDIS_URL": url})
    result = run_qc(*args, "status", cwd=tmp_path, env=env)
    assert result.returncode == 1
    name = "--redis-url" if via == "flag" else "QC_REDIS_URL"
    assert f"{name}: the server has no database 99" in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "internal error" not in result.stderr


class _Loopback:
    """A loopback HTTP server answering every GET and POST 200 with ``answer(path, headers)`` (JSON)."""

    def __init__(self, answer: Callable[[str, dict[str, str]], bytes]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = answer(self.path, dict(self.headers))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads qc's output, not this server's."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


class _FakeAlphaVantage(_Loopback):
    """Answers like AV does to a bad key (HTTP 200, the key echoed back)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        super().__init__(self._answer)

    def _answer(self, path: str, headers: dict[str, str]) -> bytes:
        self.keys += parse_qs(urlsplit(path).query).get("apikey", [])
        return json.dumps({"Error Message": "the parameter apikey is invalid or missing. We have "
                           f"detected your API key as {self.keys[-1] if self.keys else ''}"}).encode()

    @property
    def url(self) -> str:
        return f"{self.base}/query"


@pytest.fixture
def fake_av() -> Iterator[_FakeAlphaVantage]:
    server = _FakeAlphaVantage()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_api_key_never_logged_even_url_encoded(redis_server: RedisServer, fake_av: _FakeAlphaVantage,
                                               tmp_path: Path, log_format: str) -> None:
    """At DEBUG, urllib3 logs each request line with the key quote_plus-encoded; AV echoes it raw."""
    env = {"QC_REDIS_URL": redis_server.url, "QC_ALPHA_VANTAGE_API_KEY": SECRET,
           "QC_ALPHA_VANTAGE_URL": fake_av.url, "QC_LOG_FORMAT": log_format}
    result = run_qc("--log-level", "DEBUG", "chains", "SPY", "--once", cwd=tmp_path, env=env, timeout=120)
    assert fake_av.keys and fake_av.keys[0] == SECRET  # the key really went out
    assert result.returncode in (1, 2), result.stderr
    assert "apikey=***" in result.stderr, result.stderr  # urllib3's request line, masked
    assert "detected your API key as ***" in result.stderr, result.stderr
    assert_no_secret(result)


def test_status_on_the_embedded_default_uses_the_password_file(tmp_path: Path) -> None:
    port = free_port()
    embedded = EmbeddedRedis(tmp_path / "var", port)
    embedded.start()
    try:
        password = embedded.password_file.read_text().strip()
        env = {"QC_DATA_DIR": str(tmp_path / "var"), "QC_EMBEDDED_REDIS_PORT": str(port)}
        for args in (["status"], ["status", "--json"], ["--log-level", "DEBUG", "status"]):
            result = run_qc(*args, cwd=tmp_path, env=env)
            assert result.returncode == 1 and "unreachable" not in result.stderr, result.stderr  # unhealthy only
            assert_no_secret(result, password)
        # what `qc up` hands its children: the loopback URL without credentials, the file filling them in
        result = run_qc("status", cwd=tmp_path, env={**env, "QC_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        assert result.returncode == 1 and "unreachable" not in result.stderr, result.stderr
        # elsewhere (another data dir): refused, and said so in one line
        other = tmp_path / "other"
        other.mkdir()
        result = run_qc("status", cwd=other, env={"QC_EMBEDDED_REDIS_PORT": str(port)})
        assert result.returncode == 1 and "no password file" in result.stderr, result.stderr
        assert_no_secret(result, password)
    finally:
        embedded.stop()


def test_sim_ctl_stats_masks_api_keys(tmp_path: Path) -> None:
    from qc.sim.market.market import SimMarket

    start = datetime(2026, 11, 24, 20, 40, tzinfo=timezone.utc)
    av = AlphaVantageServer(SimMarket(start), lambda: start, rpm=1000)
    av.start()
    ctl = ControlServer({name: lambda args: None for name in FAULTS},
                        lambda: {"alpha_vantage": av.stats()}, port=free_port())
    ctl.start()
    key = "ABCDEFGH" + SECRET
    try:
        for apikey in (key, "K"):
            requests.get(av.url, params={"function": "GLOBAL_QUOTE", "symbol": "SPY", "apikey": apikey}, timeout=10)
        result = run_qc("sim", "ctl", "--ctl-port", str(ctl.port), "stats", cwd=tmp_path)
    finally:
        ctl.stop()
        av.stop()
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)["alpha_vantage"]
    assert doc["by_key"] == {mask_key(key): 1, mask_key("K"): 1}
    assert doc["max_accepted_per_window"] == {mask_key(key): 1, mask_key("K"): 1}
    assert_no_secret(result, key, quote_plus(key), '"K"')


# --- qc distribute: bot token, webhook URLs and secrets, X credentials ---------------------------------------


class _FakeChannels(_Loopback):
    """Answers every request 200 ``{"ok": true}`` (Telegram, X and a webhook alike), keeping each request
    line and its headers so the test can see the credentials really went out."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        super().__init__(self._answer)

    def _answer(self, path: str, headers: dict[str, str]) -> bytes:
        self.requests.append((path, headers))
        return b'{"ok": true, "result": {"message_id": 1}}'

    @property
    def url(self) -> str:
        return self.base


@pytest.fixture
def fake_channels() -> Iterator[_FakeChannels]:
    server = _FakeChannels()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _everything_in(client: Any) -> str:
    """Every key and value of the Redis, as text (each type read its own way)."""
    readers = {"string": lambda c, n: c.get(n), "hash": lambda c, n: c.hgetall(n),
               "list": lambda c, n: c.lrange(n, 0, -1), "set": lambda c, n: c.smembers(n),
               "zset": lambda c, n: c.zrange(n, 0, -1, withscores=True), "stream": lambda c, n: c.xrange(n)}
    return "\n".join(f"{name} {readers[client.type(name)](client, name)}" for name in client.scan_iter("*"))


def test_distribute_never_prints_or_stores_a_channel_credential(redis_server: RedisServer, tmp_path: Path,
                                                                 fake_channels: _FakeChannels) -> None:
    store = connect(Settings(redis_url=redis_server.url))
    store.client.flushdb()
    token = f"123456:{SECRET}"
    whsec = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    hook = f"{fake_channels.url}/in/{ENCODED}x?token={ENCODED}"  # a receiver's token in the path and the query
    x_keys = {"QC_X_API_KEY": f"ck-{SECRET}", "QC_X_API_SECRET": f"cs-{SECRET}",
              "QC_X_ACCESS_TOKEN": f"at-{SECRET}", "QC_X_ACCESS_SECRET": f"as-{SECRET}"}
    env = {"QC_REDIS_URL": redis_server.url, "QC_SYMBOLS": "SPY", "QC_DISTRIBUTE_TIERS": "premium=0",
           "QC_TELEGRAM_BASE_URL": fake_channels.url, "QC_TELEGRAM_BOT_TOKEN": token,
           "QC_TELEGRAM_CHATS": "premium=-1001", "QC_WEBHOOKS": f"alpha={hook}|premium",
           "QC_WEBHOOK_SECRET_ALPHA": whsec, "QC_X_BASE_URL": fake_channels.url, "QC_X_TIERS": "premium", **x_keys}
    signal = make_signal(wall_epoch())
    record = keys.signal_record(signal.id)
    store.client.set(record.name, signal.to_redis(), ex=record.ttl_s)
    store.client.xgroup_create(keys.signals_distribution("SPY").name, "distribution", id="0", mkstream=True)
    store.client.xadd(keys.signals_distribution("SPY").name, {"id": signal.id, "signal": signal.to_redis()})
    for log_format in ("plain", "json"):
        result = run_qc("--log-level", "DEBUG", "distribute", "--once", cwd=tmp_path,
                        env={**env, "QC_LOG_FORMAT": log_format}, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert_no_secret(result, token, whsec, hook, *x_keys.values())
    paths = [path for path, _ in fake_channels.requests]
    assert any(SECRET in p for p in paths) and any(f"/in/{ENCODED}x" in p for p in paths)  # they really went out
    assert any(x_keys["QC_X_ACCESS_TOKEN"].replace("/", "%2F")[:6] in h.get("Authorization", "")
               for _, h in fake_channels.requests)
    for args in (["distribute", "status"], ["distribute", "status", "--json"], ["status", "--json"]):
        result = run_qc(*args, cwd=tmp_path, env=env)
        assert result.returncode in (0, 1), result.stderr
        assert_no_secret(result, token, whsec, hook, *x_keys.values())
    stored = _everything_in(store.client)
    assert signal.id in stored and "distribution:metrics" in stored  # it did record the deliveries
    for form in (*FORMS, token, whsec, hook, *x_keys.values()):
        assert form not in stored, form
    store.close()
