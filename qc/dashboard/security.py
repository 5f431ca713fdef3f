"""The dashboard's access rules, pure: who may bind where, which request carries the token, CSRF and origin.

Kept apart from the server so every rule is a plain function a unit test can try without a socket:

- **Bind**: loopback (127.0.0.0/8, ``::1``, ``localhost``) needs nothing; any other address (``0.0.0.0``,
  an interface, a host name, the empty string = every interface) needs ``QC_DASHBOARD_TOKEN`` of at
  least :data:`MIN_TOKEN_LEN` characters, else the command exits 2 naming it.
- **Token**: once configured it is required on every request, whatever the bind: ``Authorization: Bearer
  <token>`` (scripts, Prometheus) or the HttpOnly, SameSite=Strict cookie the server sets when the page is
  opened once as ``/?token=<token>``. The cookie holds an HMAC of the token, never the token itself.
  Comparisons are constant-time (``hmac.compare_digest``).
- **Host** (loopback binds): the ``Host`` header must name a loopback address too, so a web page whose
  DNS name is rebound to 127.0.0.1 cannot read the dashboard through a visitor's browser.
- **State-changing requests**: POST with a JSON body, an ``X-CSRF-Token`` made by :func:`make_csrf` with
  the server's per-process key (handed out by ``GET /api/session``, which another site cannot read),
  an ``Origin`` (when the browser sends one) naming this server, no ``Sec-Fetch-Site: cross-site``, and
  for halt / resume / flatten the operator token typed by the operator.
- **Secrets** never leave: :class:`SecretScrubber` finds any of ``Settings.secrets()`` in an outgoing
  document and masks it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from qc.core.config import SECRET_MASK
from qc.core.errors import ConfigError
from qc.core.logs import MIN_SECRET_LEN

MIN_TOKEN_LEN = 16
TOKEN_ENV = "QC_DASHBOARD_TOKEN"
OPERATOR_TOKEN_ENV = "QC_OPERATOR_TOKEN"
COOKIE_NAME = "qc_dashboard"
CSRF_HEADER = "X-CSRF-Token"
MAX_CSRF_LEN = 200
_COOKIE_LABEL = b"qc dashboard cookie v1"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_loopback(host: str) -> bool:
    """True for a loopback address or ``localhost``: 127.0.0.0/8, ``::1`` (bracketed or not), ``::ffff:127.x``.

    The empty string (every interface to a socket server), ``0.0.0.0`` and ``::`` are not loopback.
    """
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_bind(host: str, token: str, host_field: str) -> None:
    """Refuse a bind the rules forbid (ConfigError, exit 2, naming ``QC_DASHBOARD_TOKEN``); never echo the token."""
    hint = (f"set {TOKEN_ENV} to a random string of {MIN_TOKEN_LEN}+ characters "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")
    if token and len(token) < MIN_TOKEN_LEN:
        raise ConfigError(TOKEN_ENV, f"{len(token)} characters; at least {MIN_TOKEN_LEN} are needed", hint)
    if token or is_loopback(host):
        return
    where = "empty (every interface)" if not host.strip() else f"{host!r}, not a loopback address"
    raise ConfigError(TOKEN_ENV, f"not set, and {host_field} is {where}: every request would go unauthenticated",
                      f"{hint}, or bind 127.0.0.1")


def token_required(token: str) -> bool:
    """A configured token is enforced on every request (``check_bind`` made sure one exists off loopback)."""
    return bool(token)


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time equality; an empty ``expected`` (nothing configured) never matches."""
    if not expected or given is None:
        return False
    # surrogatepass: a JSON body may carry a lone surrogate ("\ud800"), which strict UTF-8 refuses to encode
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def cookie_value(token: str) -> str:
    """What the session cookie holds: an HMAC of the token (the browser never stores the token itself)."""
    return hmac.new(token.encode(), _COOKIE_LABEL, hashlib.sha256).hexdigest()


def authorized(token: str, authorization: str | None, cookie: str | None) -> bool:
    """May this request be served? Always when no token is configured; else the Bearer token or the cookie."""
    if not token_required(token):
        return True
    if same_secret(bearer_token(authorization), token):
        return True
    return same_secret(cookie, cookie_value(token))


def _host_port(netloc: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` (IPv6 bracketed) as a lower-case host and a port, None when malformed."""
    try:
        parts = urlsplit("//" + netloc.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.path or parts.query or parts.username is not None:
        return None
    return host.lower(), port if port is not None else default_port


def host_header_ok(host_header: str | None, bound_to_loopback: bool) -> bool:
    """On a loopback bind the ``Host`` header must name loopback too (DNS rebinding); elsewhere the token guards."""
    if not bound_to_loopback:
        return True
    parsed = _host_port(host_header or "", 80)
    return parsed is not None and is_loopback(parsed[0])


def origin_ok(origin: str | None, host_header: str | None) -> bool:
    """No ``Origin`` (not a browser's cross-origin request), or one whose host and port are this ``Host``'s.

    The scheme may be http or https (a TLS proxy in front keeps the Host); ``null`` and anything else fail.
    """
    if origin is None:
        return True
    try:
        parts = urlsplit(origin.strip())
    except ValueError:  # an unbalanced '[' or a bracketed host that is no IP address: not this server
        return False
    if parts.scheme not in _DEFAULT_PORTS or parts.path not in ("", "/") or parts.query:
        return False
    default = _DEFAULT_PORTS[parts.scheme]
    mine, theirs = _host_port(host_header or "", default), _host_port(parts.netloc, default)
    return mine is not None and mine == theirs


def fetch_site_ok(sec_fetch_site: str | None) -> bool:
    """A browser's ``Sec-Fetch-Site``, when sent, must say same-origin (or ``none``: typed by the user)."""
    return sec_fetch_site is None or sec_fetch_site.strip().lower() in ("same-origin", "none")


def new_csrf_key() -> bytes:
    """The server's CSRF key: random per process, so a token outlives nothing but the process."""
    return secrets.token_bytes(32)


def _csrf_mac(key: bytes, nonce: str) -> str:
    return hmac.new(key, nonce.encode(), hashlib.sha256).hexdigest()[:32]


def make_csrf(key: bytes, nonce: str | None = None) -> str:
    """A CSRF token ``<nonce>.<mac>`` the server can verify without keeping state."""
    nonce = nonce or secrets.token_urlsafe(12)
    if "." in nonce:
        raise ValueError("nonce: no '.' allowed")
    return f"{nonce}.{_csrf_mac(key, nonce)}"


def csrf_ok(key: bytes, given: str | None) -> bool:
    """True when ``given`` was made by :func:`make_csrf` with ``key``."""
    if not given or len(given) > MAX_CSRF_LEN:
        return False
    nonce, dot, mac = given.strip().partition(".")
    if not dot or not nonce or not mac:
        return False
    return hmac.compare_digest(mac.encode(), _csrf_mac(key, nonce).encode())


def display_url(host: str, port: int) -> str:
    """The URL to open on this machine: loopback for an every-interface bind, IPv6 bracketed."""
    name = host.strip()
    if name in ("", "0.0.0.0"):
        name = "127.0.0.1"
    elif name == "::":
        name = "::1"
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return f"http://{name}:{port}/"


class SecretScrubber:
    """Find and mask known secrets in outgoing JSON: a last guard, the documents should never hold one."""

    def __init__(self, known: Iterable[str]) -> None:
        # as the log redaction: a 1-2 character "secret" (a test's API key "k") protects nothing
        self.secrets = sorted({s for s in known if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True)
        self._encoded = [s.encode() for s in self.secrets]

    def found(self, data: bytes) -> bool:
        """Does serialised output contain a secret?"""
        return any(secret in data for secret in self._encoded)

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret inside a string (key or value) masked; numbers and structure unchanged."""
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, SECRET_MASK)
            return value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub(v) for v in value]
        return value
