"""The dashboard's access rules as pure functions: loopback, bind, token, cookie, CSRF, origin, secrets."""

from __future__ import annotations

import pytest

from qc.core.errors import ConfigError
from qc.dashboard import security

TOKEN = "t" * 15 + "-x"  # 17 characters: long enough (a test value, no credential)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", " localhost ",
                                  "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"])
def test_loopback_addresses_and_names_are_loopback(host: str) -> None:
    assert security.is_loopback(host)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "::", "[::]", "10.0.0.5", "192.168.1.2", "::ffff:10.0.0.1",
                                  "localhost.example.com", "evil.localhost", "fe80::1", "example.com", "128.0.0.1"])
def test_every_interface_other_addresses_and_names_are_not(host: str) -> None:
    assert not security.is_loopback(host)


def test_loopback_binds_need_no_token() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        security.check_bind(host, "", "QC_DASHBOARD_HOST")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "", "::"])
def test_binding_off_loopback_without_a_token_names_qc_dashboard_token(host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        security.check_bind(host, "", "--host")
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert message.startswith("QC_DASHBOARD_TOKEN: not set, and --host is ")
    assert "\n" not in message


def test_a_short_token_is_refused_anywhere_without_echoing_it() -> None:
    short = "abc123secret"
    for host in ("0.0.0.0", "127.0.0.1"):
        with pytest.raises(ConfigError) as caught:
            security.check_bind(host, short, "--host")
        assert str(caught.value).startswith(f"QC_DASHBOARD_TOKEN: {len(short)} characters; at least 16")
        assert short not in str(caught.value)
    security.check_bind("0.0.0.0", TOKEN, "--host")


def test_same_secret_compares_exactly_and_never_matches_an_empty_setting() -> None:
    assert security.same_secret(TOKEN, TOKEN)
    assert not security.same_secret(TOKEN + "x", TOKEN)
    assert not security.same_secret(TOKEN[:-1], TOKEN)
    assert not security.same_secret(None, TOKEN)
    assert not security.same_secret("", "")
    assert not security.same_secret("anything", "")
    assert security.same_secret("ünïcode-tökén-1234", "ünïcode-tökén-1234")


@pytest.mark.parametrize(("header", "token"), [
    (f"Bearer {TOKEN}", TOKEN), (f"bearer   {TOKEN} ", TOKEN), ("Bearer", None), ("Basic dXNlcjpwdw==", None),
    ("", None), (None, None), (TOKEN, None)])
def test_bearer_token_is_read_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert security.bearer_token(header) == token


def test_without_a_token_configured_every_request_is_authorized() -> None:
    assert security.authorized("", None, None)
    assert not security.token_required("")


def test_with_a_token_a_request_needs_the_bearer_token_or_the_cookie() -> None:
    cookie = security.cookie_value(TOKEN)
    assert security.authorized(TOKEN, f"Bearer {TOKEN}", None)
    assert security.authorized(TOKEN, None, cookie)
    assert not security.authorized(TOKEN, None, None)
    assert not security.authorized(TOKEN, "Bearer wrong-token-0123456789", None)
    assert not security.authorized(TOKEN, None, TOKEN)  # the cookie holds an HMAC, never the token itself
    assert not security.authorized(TOKEN, None, security.cookie_value(TOKEN + "2"))
    assert TOKEN not in cookie and cookie == security.cookie_value(TOKEN)


def test_csrf_tokens_verify_only_with_the_key_that_made_them() -> None:
    key, other = security.new_csrf_key(), security.new_csrf_key()
    token = security.make_csrf(key)
    assert security.csrf_ok(key, token)
    assert not security.csrf_ok(other, token)
    assert security.make_csrf(key) != token  # a fresh nonce each time
    nonce, _, mac = token.partition(".")
    assert not security.csrf_ok(key, f"{nonce}.{mac[:-1]}{'0' if mac[-1] != '0' else '1'}")
    assert not security.csrf_ok(key, f"x{nonce}.{mac}")
    for bad in (None, "", ".", nonce, f"{nonce}.", f".{mac}", "a" * 300):
        assert not security.csrf_ok(key, bad)
    assert security.make_csrf(key, "fixed") == security.make_csrf(key, "fixed")
    with pytest.raises(ValueError, match="nonce"):
        security.make_csrf(key, "a.b")


@pytest.mark.parametrize(("origin", "host", "ok"), [
    (None, "127.0.0.1:8768", True),  # no Origin: not a browser's cross-origin request
    ("http://127.0.0.1:8768", "127.0.0.1:8768", True),
    ("http://LOCALHOST:8768", "localhost:8768", True),
    ("https://desk.example", "desk.example", True),  # behind a TLS proxy that keeps the Host
    ("http://desk.example:80", "desk.example", True),
    ("http://[::1]:8768", "[::1]:8768", True),
    ("http://evil.example", "127.0.0.1:8768", False),
    ("http://127.0.0.1:9999", "127.0.0.1:8768", False),
    ("http://127.0.0.1", "127.0.0.1:8768", False),
    ("null", "127.0.0.1:8768", False),
    ("file://", "127.0.0.1:8768", False),
    ("http://127.0.0.1:8768/path", "127.0.0.1:8768", False),
    ("http://127.0.0.1:8768", None, False),
    ("http://user@127.0.0.1:8768", "127.0.0.1:8768", False),
    ("https://desk.example", "desk.example:8768", False),
])
def test_origin_must_be_this_servers_own(origin: str | None, host: str | None, ok: bool) -> None:
    assert security.origin_ok(origin, host) is ok


@pytest.mark.parametrize(("value", "ok"), [(None, True), ("same-origin", True), ("none", True),
                                           ("cross-site", False), ("same-site", False)])
def test_fetch_metadata_refuses_cross_site(value: str | None, ok: bool) -> None:
    assert security.fetch_site_ok(value) is ok


@pytest.mark.parametrize(("host", "loopback_bind", "ok"), [
    ("127.0.0.1:8768", True, True), ("localhost:8768", True, True), ("[::1]:8768", True, True),
    ("localhost", True, True), ("rebound.example:8768", True, False), ("10.0.0.5:8768", True, False),
    ("", True, False), ("a:b:c", True, False), ("desk.example:8768", False, True), (None, False, True)])
def test_a_loopback_bind_answers_only_loopback_host_names(host: str | None, loopback_bind: bool, ok: bool) -> None:
    assert security.host_header_ok(host, loopback_bind) is ok


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1", "http://127.0.0.1:8768/"), ("0.0.0.0", "http://127.0.0.1:8768/"), ("", "http://127.0.0.1:8768/"),
    ("::", "http://[::1]:8768/"), ("::1", "http://[::1]:8768/"), ("10.0.0.5", "http://10.0.0.5:8768/"),
    ("desk", "http://desk:8768/")])
def test_display_url(host: str, url: str) -> None:
    assert security.display_url(host, 8768) == url


def test_the_scrubber_masks_secrets_in_strings_and_keys_and_ignores_short_ones() -> None:
    scrubber = security.SecretScrubber(["k", "hunter2-secret", "tok:en/with+chars"])
    assert scrubber.secrets == ["tok:en/with+chars", "hunter2-secret"]  # "k" would mask every k, not protect
    assert scrubber.found(b'{"a":"xx hunter2-secret yy"}')
    assert not scrubber.found(b'{"a":"kkk"}')
    doc = {"note": "url?key=hunter2-secret&x=1", "hunter2-secret": [1, "tok:en/with+chars", 2.5, None], "n": 7}
    assert scrubber.scrub(doc) == {"note": "url?key=***&x=1", "***": [1, "***", 2.5, None], "n": 7}
