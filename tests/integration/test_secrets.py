"""Secrets never reach an operator's screen: `qc` run as a subprocess, its whole output searched.

The fake password ``s3cr/et?x=1&y`` holds every URL-reserved character a careless one has; each test
looks for it raw and in every URL encoding (quote, quote_plus) a client or a log line may use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
import requests

from qc.runtime.store import EmbeddedRedis
from qc.sim.av.server import AlphaVantageServer, mask_key
from qc.sim.control import FAULTS, ControlServer

from .conftest import RedisServer, free_port

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


class _FakeAlphaVantage:
    """A loopback HTTP server answering like AV does to a bad key (HTTP 200, the key echoed back)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.keys += parse_qs(urlsplit(self.path).query).get("apikey", [])
                body = json.dumps({"Error Message": "the parameter apikey is invalid or missing. We have "
                                   f"detected your API key as {outer.keys[-1] if outer.keys else ''}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test reads qc's output, not this server's."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/query"


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
