"""Passwords and keys are masked in URLs, secret lists, logs (messages and tracebacks) and sim stats."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from urllib.parse import quote, quote_plus, urlencode

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from qc.cli import LazyVerbs
from qc.core import config, logs
from qc.core.config import redact_url, url_passwords
from qc.core.errors import QcError
from qc.sim.av.server import mask_key, masked_stats
from qc.sim.control import _mask_api_keys

SECRET = "s3cr/et?x=1&y"  # every URL-reserved character a careless password has


@pytest.mark.parametrize(("url", "expected"), [
    ("rediss://qc:p4ss@h:6380/1", "rediss://qc:***@h:6380/1"),
    ("redis://:p4ss@h", "redis://:***@h"),
    ("redis://h:6379/0?password=p4ss&db=1", "redis://h:6379/0?password=***&db=1"),
    ("redis://u:a@h/0?password=b", "redis://u:***@h/0?password=***"),
    ("redis+sentinel://u:p4ss@h1:26379,h2:26380/mymaster/0", "redis+sentinel://u:***@h1:26379,h2:26380/mymaster/0"),
    ("redis://:s3cr/et?x=1&y@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),  # unencoded: still masked
    ("redis://127.0.0.1:1/0?password=s3cr/et?x=1&y", "redis://127.0.0.1:1/0?password=***"),  # '&' inside
    ("redis://h/0?password=p@ss", "redis://h/0?password=***"),
    ("redis://h:1/0?password=p@ss", "redis://h:***"),  # malformed enough: over-masked, never leaked
    ("redis://u@h:1/0", "redis://u@h:1/0"),  # a user name alone is not a secret
    ("redis://h:1/0?client_name=qc", "redis://h:1/0?client_name=qc"),
    ("redis://[::1", "redis://[::1"),
    ("", ""),
    ("not a url", "not a url"),
    ("u:pw@h", "u:***@h"),
    ("redis://h/0?ssl_password=x1&socket_timeout=2", "redis://h/0?ssl_password=***&socket_timeout=2"),
])
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@given(st.text())
def test_redact_url_never_raises(url: str) -> None:
    assert isinstance(redact_url(url), str)
    assert isinstance(url_passwords(url), set)


PASSWORD_CHARS = st.characters(codec="ascii", exclude_characters="\x00")


@given(user=st.from_regex(r"[a-z]{0,6}", fullmatch=True), password=st.text(PASSWORD_CHARS, min_size=3),
       hosts=st.lists(st.from_regex(r"[a-z]{1,8}(:[0-9]{1,5})?", fullmatch=True), min_size=1, max_size=3),
       scheme=st.sampled_from(config.REDIS_SCHEMES), tail=st.from_regex(r"(/[0-9]{1,2})?", fullmatch=True))
def test_userinfo_password_never_survives(user: str, password: str, hosts: list[str], scheme: str,
                                          tail: str) -> None:
    """Whatever a password holds (':', '/', '?', '#', '@', '&', '%'...), raw or encoded, none of it shows."""
    rest = f"@{','.join(hosts)}{tail}"
    for written in (password, quote(password, safe="")):
        url = f"{scheme}://{user}:{written}{rest}"
        shown = redact_url(url)
        assert shown.startswith(f"{scheme}://{user}:***")
        if written not in f"{scheme}://{user}:" + rest:
            assert written not in shown
        if "password=" not in written.lower() and "pass" not in written.lower():
            assert shown == f"{scheme}://{user}:***{rest}"


@given(password=st.text(PASSWORD_CHARS, min_size=1).filter(lambda p: "&" not in p and ";" not in p),
       before=st.sampled_from(["", "db=1&", "client_name=x&"]),
       after=st.sampled_from(["", "&db=2", "&socket_timeout=1"]))
def test_query_password_never_survives(password: str, before: str, after: str) -> None:
    """Masked whole; a raw '@' in it also reads as the end of a userinfo, so more is masked, never less."""
    for written in (password, quote_plus(password)):
        url = f"redis://h:6379/0?{before}password={written}{after}"
        shown = redact_url(url)
        if written not in f"redis://h:6379/0?{before}password={after}":
            assert written not in shown
        if "@" not in written:
            assert shown == f"redis://h:6379/0?{before}password=***{after}"


def test_secrets_yield_every_spelling() -> None:
    s = config.resolve({}, {"QC_ALPHA_VANTAGE_API_KEY": SECRET,
                            "QC_REDIS_URL": "redis://127.0.0.1:1/0?password=" + quote(SECRET, safe="")}, {}, {})
    found = set(s.secrets())
    for form in (SECRET, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET)):
        assert form in found, form
    assert s.secrets() == sorted(found, key=len, reverse=True)  # longest first: no partial masking


def test_userinfo_password_is_a_secret_raw_and_decoded() -> None:
    s = config.resolve({}, {"QC_REDIS_URL": "redis://qc:" + quote(SECRET, safe="") + "@h:6379/0"}, {}, {})
    assert {SECRET, quote(SECRET, safe=""), quote_plus(SECRET)} <= set(s.secrets())


def test_raw_secrets_cover_values_that_failed_validation() -> None:
    environ = {"QC_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:1/0", "QC_WEBHOOK_SECRET_ALPHA": "hook-secret"}
    found = config.raw_secrets(environ, [f"redis://h/0?password={SECRET}"])
    assert SECRET in found and "hook-secret" in found and quote_plus(SECRET) in found


def test_redact_masks_encoded_api_key_in_a_logged_request_line() -> None:
    s = config.resolve({}, {"QC_ALPHA_VANTAGE_API_KEY": SECRET}, {}, {})
    line = f'http://127.0.0.1:8765 "GET /query?{urlencode({"function": "GLOBAL_QUOTE", "apikey": SECRET})} HTTP/1.1"'
    assert quote_plus(SECRET) in line
    masked = logs.redact(line, s.secrets())
    assert "apikey=***" in masked and "s3cr" not in masked


def test_redact_masks_urls_with_credentials_it_was_not_told_about() -> None:
    text = "Error connecting to redis://admin:hunter22@db.internal:6379/0: refused"
    assert logs.redact(text, []) == "Error connecting to redis://admin:***@db.internal:6379/0: refused"


def test_too_short_secrets_do_not_shred_messages() -> None:
    assert logs.redact("network error, keeping the last", ["k", "ab"]) == "network error, keeping the last"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    old = list(root.handlers), root.level
    yield stream
    root.handlers[:] = old[0]
    root.setLevel(old[1])


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_log_records_and_their_tracebacks_are_masked(fmt: str, captured: io.StringIO,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    s = config.resolve({}, {"QC_TELEGRAM_BOT_TOKEN": SECRET}, {}, {})
    monkeypatch.setattr("sys.stderr", captured)
    logs.setup("INFO", fmt, s.secrets())
    log = logging.getLogger("qc.test")
    log.warning("token %s and encoded %s", SECRET, quote_plus(SECRET))
    try:
        raise RuntimeError(f"bad request /send?token={quote(SECRET, safe='')}")
    except RuntimeError:
        log.exception("send failed")
    text = captured.getvalue()
    assert "send failed" in text and "RuntimeError" in text
    for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), json.dumps(SECRET)[1:-1]):
        assert form not in text, form


def test_mask_key_hides_keys_but_tells_them_apart() -> None:
    assert mask_key("") == ""
    long_key, short_key = "ABCDEFGH12345678", "K"
    assert mask_key(long_key).startswith("AB***") and long_key not in mask_key(long_key)
    assert mask_key(short_key).startswith("***") and mask_key(short_key) != mask_key("L")


def test_masked_stats_and_the_control_document() -> None:
    av = {"requests": 3, "by_key": {"ABCDEFGH12345678": 2, "": 1}, "by_function": {"GLOBAL_QUOTE": 3},
          "by_outcome": {"ok": 2, "missing_key": 1}, "max_accepted_per_window": {"ABCDEFGH12345678": 2}}
    masked = masked_stats(av)
    assert masked["by_key"] == {mask_key("ABCDEFGH12345678"): 2, "": 1}
    assert av["by_key"] == {"ABCDEFGH12345678": 2, "": 1}  # the in-process stats stay raw
    doc = _mask_api_keys({"ib": {"depth": 5}, "alpha_vantage": av})
    assert "ABCDEFGH12345678" not in json.dumps(doc) and doc["ib"] == {"depth": 5}
    assert doc["alpha_vantage"]["max_accepted_per_window"] == {mask_key("ABCDEFGH12345678"): 2}


class _Verbs(LazyVerbs):
    """The real LazyVerbs.invoke, over two verbs of this test instead of the registry."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return ["boom", "fail"]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return {"boom": _boom, "fail": _fail}.get(cmd_name)


@click.command("boom")
@click.pass_obj
def _boom(settings: config.Settings) -> None:
    """An unexpected exception whose text quotes every spelling of the secrets."""
    raise RuntimeError(f"GET /send?key={quote_plus(SECRET)}&raw={SECRET}&enc={quote(SECRET, safe='')} "
                       "via redis://admin:hunter22@db.internal:6379/0")


@click.command("fail")
def _fail() -> None:
    raise QcError(f"refused token {SECRET}")


def _group(build: bool) -> click.Group:
    @click.group(cls=_Verbs)
    @click.option("--redis-url")
    @click.pass_context
    def group(ctx: click.Context, redis_url: str | None) -> None:
        if not build:
            raise KeyError(f"exploded before settings existed: {redis_url}")
        ctx.obj = config.resolve({"redis_url": redis_url}, dict(os.environ), {}, {})

    return group


def test_internal_errors_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QC_TELEGRAM_BOT_TOKEN", SECRET)
    result = CliRunner().invoke(_group(True), ["boom"])
    assert result.exit_code == 1 and "internal error: RuntimeError" in result.output
    assert "redis://admin:***@db.internal" in result.output
    for form in (SECRET, quote_plus(SECRET), quote(SECRET, safe=""), "hunter22"):
        assert form not in result.output, form
    result = CliRunner().invoke(_group(True), ["fail"])
    assert result.exit_code == 1 and SECRET not in result.output and "refused token ***" in result.output


def test_errors_before_settings_exist_are_redacted_from_the_raw_values() -> None:
    url = f"redis://127.0.0.1:1/0?password={quote(SECRET, safe='')}"
    result = CliRunner().invoke(_group(False), ["--redis-url", url, "boom"])
    assert result.exit_code == 1 and "internal error: KeyError" in result.output
    assert quote(SECRET, safe="") not in result.output and SECRET not in result.output
