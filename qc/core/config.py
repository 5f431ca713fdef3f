"""Settings: resolved once, validated once, passed down.

Precedence, highest first: command-line flag > environment ``QC_*`` > ``.env`` (never overriding a
variable that is set) > ``qc.toml`` > default. Each value remembers where it came from, so
``qc status --json`` can say why a setting is what it is. Secrets print as ``***`` everywhere.

``SETTINGS`` is the one table of names: the README's settings table, ``.env.example`` and the
validation all follow it. Nothing below ``qc/commands`` reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

from qc.core.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib

ENV_PREFIX = "QC_"
DEFAULT_CONFIG_FILE = "qc.toml"
SECRET_MASK = "***"
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Spec:
    """One setting: its name, default, parser, and whether it is a secret."""

    name: str
    default: str
    help: str
    parse: Callable[[str, str], Any]
    secret: bool = False

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _str(name: str, raw: str) -> str:
    return raw.strip()


def _int_range(lo: int, hi: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(ENV_PREFIX + name.upper(), f"expected an integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(ENV_PREFIX + name.upper(), f"must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(ENV_PREFIX + name.upper(), f"expected a number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ConfigError(ENV_PREFIX + name.upper(), f"must be between {lo:g} and {hi:g}, got {value:g}")
        return value

    return parse


def parse_symbols(raw: str, field: str) -> tuple[str, ...]:
    """Comma-separated tickers, upper-cased, duplicates dropped; ConfigError naming ``field`` if bad."""
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in raw.split(",") if s.strip()))
    bad = [s for s in symbols if not SYMBOL_RE.match(s)]
    if not symbols or bad:
        raise ConfigError(field, f"expected comma-separated tickers like SPY,QQQ, got {raw!r}")
    return symbols


def _symbols(name: str, raw: str) -> tuple[str, ...]:
    return parse_symbols(raw, ENV_PREFIX + name.upper())


# --- Redis URLs: validated here so a bad one is exit 2 naming the setting, never a traceback later ----

REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel", "redis+cluster", "rediss+cluster")
MAX_DB = 2**31 - 1  # `databases` is a server setting (16 by default): only the server knows the real limit
REDIS_PORT = 6379
SENTINEL_PORT = 26379
_HOST_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_ZONE = re.compile(r"[A-Za-z0-9._~-]+")
_BOOLS = ("true", "false", "yes", "no", "1", "0")
_SECRET_KEY = r"[^=&;?#/]*(?:pass|secret|token|auth)[^=&;?#/]*="
_ENCODE_HINT = ("percent-encode reserved characters in the password and in option values "
                "(/ as %2F, ? as %3F, # as %23, @ as %40, & as %26, % as %25, space as %20)")
_URL_FORMS = ("use redis://[user:password@]host:6379/0, rediss:// (TLS), unix:///path/redis.sock?db=0, "
              "redis+sentinel://host:26379,host2:26379/mymaster/0 or redis+cluster://host:6379; "
              "leave it empty for the embedded Redis")


def _q_int(lo: int, hi: int) -> Callable[[str], bool]:
    return lambda v: v.isascii() and v.isdigit() and len(v) <= 10 and lo <= int(v) <= hi


def _q_seconds(value: str) -> bool:
    try:
        seconds = float(value)
    except ValueError:
        return False
    return math.isfinite(seconds) and 0 < seconds <= 86_400


def _q_bool(value: str) -> bool:
    return value.lower() in _BOOLS


def _q_client_name(value: str) -> bool:
    return all("!" <= c <= "~" for c in value)  # CLIENT SETNAME refuses spaces and control characters


def _q_path(value: str) -> bool:
    return "\x00" not in value


def _q_any(value: str) -> bool:
    return True


# Query options redis-py turns into client arguments, each with what it must be; anything else would
# reach redis-py as an unknown keyword and fail at the first command.
_OPTIONS_ALL: dict[str, tuple[str, Callable[[str], bool]]] = {
    "db": (f"an integer 0..{MAX_DB}", _q_int(0, MAX_DB)),
    "socket_timeout": ("seconds, a number > 0 and <= 86400", _q_seconds),
    "socket_connect_timeout": ("seconds, a number > 0 and <= 86400", _q_seconds),
    "retry_on_timeout": ("true or false", _q_bool),
    "health_check_interval": ("whole seconds 0..86400", _q_int(0, 86_400)),
    "max_connections": ("an integer 1..100000", _q_int(1, 100_000)),
    "client_name": ("printable ASCII without spaces", _q_client_name),
    "username": ("a user name", _q_any),
    "password": ("a password", _q_any),
    "protocol": ("2 or 3 (RESP version)", lambda v: v in ("2", "3")),
}
_OPTIONS_TCP = {"socket_keepalive": ("true or false", _q_bool)}
_OPTIONS_TLS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "ssl_cert_reqs": ("none, optional or required", lambda v: v in ("none", "optional", "required")),
    "ssl_check_hostname": ("true or false", _q_bool),
    "ssl_ca_certs": ("a file path", _q_path),
    "ssl_ca_path": ("a directory path", _q_path),
    "ssl_certfile": ("a file path", _q_path),
    "ssl_keyfile": ("a file path", _q_path),
}
REDIS_QUERY_OPTIONS = frozenset({*_OPTIONS_ALL, *_OPTIONS_TCP, *_OPTIONS_TLS})


def _options_for(scheme: str) -> dict[str, tuple[str, Callable[[str], bool]]]:
    if scheme.endswith("+sentinel"):
        return {}  # the Sentinel client takes everything from the netloc and the path
    allowed = dict(_OPTIONS_ALL)
    if scheme != "unix":
        allowed.update(_OPTIONS_TCP)
    if scheme.startswith("rediss"):
        allowed.update(_OPTIONS_TLS)
    return allowed


def split_hostport(item: str, default_port: int) -> tuple[str, int]:
    """``host[:port]`` or ``[v6addr]:port`` → (host, port); ValueError saying what is wrong (no secret in it)."""
    if item.startswith("["):
        inside, close, after = item[1:].partition("]")
        if not close:
            raise ValueError("unclosed '[' in the host")
        address, percent, zone = inside.partition("%")
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"[{inside}] is not an IPv6 address") from None
        if percent and not _ZONE.fullmatch(zone):
            raise ValueError(f"bad IPv6 zone in [{inside}]")
        if after and not after.startswith(":"):
            raise ValueError(f"unexpected {after!r} after the IPv6 address")
        host, port_text = inside, (after[1:] if after else None)
    else:
        host, colon, rest = item.partition(":")
        port_text = rest if colon else None
        if not host:
            raise ValueError("no host")
        labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
        if len(host) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(f"{host!r} is not a host name or IP address (IPv6 goes in brackets: [::1])")
    if port_text is None:
        return host, default_port
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5 and 1 <= int(port_text) <= 65535):
        raise ValueError(f"port {port_text!r} is not an integer 1..65535")
    return host, int(port_text)


def _db_number(text: str) -> int | None:
    """The database of a path segment, or None when it is not a plain non-negative integer."""
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= MAX_DB:
        return int(text)
    return None


def check_redis_url(raw: str, field: str) -> str:
    """The URL (scheme lower-cased) if redis-py and qc's Sentinel/Cluster wiring accept every part of it.

    Empty means the embedded Redis. Anything else wrong is a ConfigError naming ``field``, with the
    URL shown through :func:`redact_url`, so a password never reaches the message.
    """
    url = raw.strip()
    if not url:
        return ""

    def bad(problem: str, hint: str = "e.g. redis://[user:password@]host:6379/0") -> ConfigError:
        return ConfigError(field, f"{problem} in {redact_url(url)!r}", hint)

    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url):
        raise bad("spaces, control or non-ASCII characters", _ENCODE_HINT)
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise bad("unsupported scheme", _URL_FORMS)
    scheme = scheme.lower()
    url = f"{scheme}://{rest}"
    if "#" in url:
        raise bad("a '#'", _ENCODE_HINT)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise bad("unbalanced '[' or ']'", "IPv6 hosts go in brackets ([::1]:6379); " + _ENCODE_HINT) from None
    if "@" in rest[len(parts.netloc):]:
        raise bad("an '@' after the host (a password with an unencoded '/' or '?'?)", _ENCODE_HINT)
    hostinfo = parts.netloc.rpartition("@")[2]
    query_db = _check_query(parts.query, scheme, bad)
    if scheme == "unix":
        _check_unix(hostinfo, parts.path, bad)
    elif scheme.endswith("+sentinel"):
        _check_sentinel(hostinfo, parts.path, bad)
    else:
        _check_server(scheme, hostinfo, parts.path, query_db, bad)
    return url


def _check_unix(hostinfo: str, path: str, bad: Callable[..., ConfigError]) -> None:
    if hostinfo:
        raise bad("a host in a unix:// URL", "use unix:///path/to/redis.sock?db=0")
    if path in ("", "/") or "\x00" in unquote(path):
        raise bad("no socket path", "use unix:///path/to/redis.sock?db=0")


def _check_sentinel(hostinfo: str, path: str, bad: Callable[..., ConfigError]) -> None:
    for item in hostinfo.split(","):
        try:
            split_hostport(item, SENTINEL_PORT)
        except ValueError as exc:
            raise bad(f"sentinel host: {exc}") from None
    segments = path.split("/")[1:]
    if segments and not segments[-1]:
        segments.pop()
    if not segments or not unquote(segments[0]).strip():
        raise bad("no master name", "use redis+sentinel://host:26379,host2:26379/mymaster[/db]")
    if len(segments) > 2 or (len(segments) == 2 and _db_number(segments[1]) is None):
        raise bad(f"the part after the master name must be a database number 0..{MAX_DB}",
                  "use redis+sentinel://host:26379/mymaster/0")


def _check_server(scheme: str, hostinfo: str, path: str, query_db: int | None,
                  bad: Callable[..., ConfigError]) -> None:
    """One host (plain, TLS or a cluster's seed node) and the database in the path."""
    if "," in hostinfo:
        raise bad("several hosts", "only redis+sentinel:// takes a host list; redis+cluster:// discovers "
                                   "the other nodes from one")
    if not hostinfo:
        raise bad("no host", _URL_FORMS)
    try:
        split_hostport(hostinfo, REDIS_PORT)
    except ValueError as exc:
        raise bad(str(exc)) from None
    path_db = None
    if path not in ("", "/"):
        path_db = _db_number(path[1:])
        if path_db is None:
            raise bad(f"the path must be a database number 0..{MAX_DB}", "e.g. redis://host:6379/0")
    if path_db is not None and query_db is not None and path_db != query_db:
        raise bad("two different databases (path and ?db=)", "give the database once")
    if scheme.endswith("+cluster") and (path_db or query_db):
        raise bad("a database other than 0", "Redis Cluster has only database 0: drop the /N")


def _check_query(query: str, scheme: str, bad: Callable[..., ConfigError]) -> int | None:
    """Validate the ``?name=value`` options for ``scheme``; return ``db`` when one is given."""
    if not query:
        return None
    allowed = _options_for(scheme)
    if not allowed:
        raise bad("options after '?' (the Sentinel client takes none)",
                  "put the password before the hosts: redis+sentinel://:PASSWORD@host:26379/mymaster/0")
    seen: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        after_secret = any("pass" in name for name in seen)  # an unencoded '&' in a password splits it
        raw_name, eq, raw_value = item.partition("=")
        name, value = unquote_plus(raw_name), unquote_plus(raw_value)
        if not eq or name not in allowed:
            what = "an option without '='" if not eq else (
                "an unknown option after password=" if after_secret else f"unknown option {name!r}")
            raise bad(what, ("an '&' in the password must be %26; " if after_secret else "")
                      + f"known options: {', '.join(sorted(allowed))}")
        if name in seen:
            raise bad(f"option {name!r} given twice")
        expected, ok = allowed[name]
        if not value or not ok(value):
            shown = "" if "pass" in name else f", got {value!r}"
            raise bad(f"option {name!r} must be {expected}{shown}")
        seen[name] = value
    if "ssl_keyfile" in seen and "ssl_certfile" not in seen:
        raise bad("ssl_keyfile without ssl_certfile", "give both, or neither")
    return int(seen["db"]) if "db" in seen else None


def _secret_spans(url: str) -> list[tuple[int, int]]:
    """Where passwords sit in ``url``: the userinfo after ``user:``, and password-like query values.

    Works on the raw string, never parsing it, so a malformed URL still gets masked: the userinfo runs
    to the last ``@`` (an unencoded ``/`` or ``?`` in a password does not end it), a query value to the
    next ``&option=`` qc knows (an unencoded ``&`` in a password does not end it either).
    """
    spans: list[tuple[int, int]] = []
    scheme_end = url.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    at = url.rfind("@")
    if at >= start:
        colon = url.find(":", start, at)
        if colon >= 0 and colon + 1 < at:
            spans.append((colon + 1, at))
    known = "|".join(re.escape(n) for n in sorted(REDIS_QUERY_OPTIONS - {"password"}))
    for match in re.finditer(r"(?i)[?&;]" + _SECRET_KEY, url):
        value_start = match.end()
        stop = re.compile(rf"[&;](?:{known})=").search(url, value_start)
        value_end = stop.start() if stop else len(url)
        if value_end > value_start:
            spans.append((value_start, value_end))
    return spans


def redact_url(url: str) -> str:
    """The URL with every password (userinfo, ``password=`` and alike in the query) replaced by ``***``.

    User names are not secrets and stay. Never raises: a URL too malformed to parse is masked from
    ``user:`` to its last ``@``, and query values to the next option qc knows.
    """
    spans = sorted(_secret_spans(url))
    if not spans:
        return url
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out, pos = [], 0
    for lo, hi in merged:
        out += [url[pos:lo], SECRET_MASK]
        pos = hi
    out.append(url[pos:])
    return "".join(out)


def url_passwords(url: str) -> set[str]:
    """Every password ``url`` carries, as written and decoded, even in a URL too malformed to use."""
    found: set[str] = set()
    for lo, hi in _secret_spans(url):
        raw = url[lo:hi]
        candidates = [raw, re.split(r"[&;]", raw, maxsplit=1)[0]]  # also the value an '&' would cut short
        for value in candidates:
            found |= {value, unquote(value), unquote_plus(value)}
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found |= {password, unquote(password)}
    return {p for p in found if p}


def secret_forms(value: str) -> set[str]:
    """A secret as logs and messages may spell it: raw, URL-encoded (quote, quote_plus), JSON or repr-escaped."""
    if not value:
        return set()
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1],
             repr(value)[1:-1]}
    return {f for f in forms if f}


def raw_secrets(environ: Mapping[str, str], redis_urls: Iterable[str | None] = ()) -> list[str]:
    """Secrets in unvalidated values (the environment, the --redis-url flag), for errors before Settings exist."""
    found: set[str] = set()
    for spec in SPECS:
        if spec.secret:
            found |= secret_forms(environ.get(spec.env, "").strip())
    http_urls = [environ.get(s.env) for s in SPECS if s.parse is _http_url]
    for url in [environ.get(SPEC_BY_NAME["redis_url"].env), *redis_urls, *http_urls]:
        for password in url_passwords(url or ""):
            found |= secret_forms(password)
    for secret in webhook_secrets_of(environ).values():
        found |= secret_forms(secret)
    for url in webhook_urls(environ.get(SPEC_BY_NAME["webhooks"].env, "")):
        for part in url_secret_parts(url):
            found |= secret_forms(part)
    return sorted(found, key=len, reverse=True)


# --- distribution's secrets: a webhook secret per endpoint, and endpoint URLs that may carry a token ---------

WEBHOOK_SECRET_PREFIX = "QC_WEBHOOK_SECRET_"
_WEBHOOK_SECRET_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,31}")  # an endpoint's name (qc.distribute.model.NAME_RE), upper


def is_webhook_secret_env(env: str) -> bool:
    """``QC_WEBHOOK_SECRET_<NAME>``: one endpoint's signing secret, a known variable and a secret to redact.

    The endpoints are named in ``QC_WEBHOOKS``, so these names cannot be a fixed list of settings.
    """
    suffix = env[len(WEBHOOK_SECRET_PREFIX):] if env.startswith(WEBHOOK_SECRET_PREFIX) else ""
    return bool(_WEBHOOK_SECRET_NAME.fullmatch(suffix))


def webhook_secrets_of(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Endpoint name (lower case) → its secret, from the first layer that sets it (environment, then .env).

    Checked for shape by ``qc.distribute.config.webhook_secret`` when `qc distribute` starts; here only
    collected, so every command can redact them.
    """
    out: dict[str, str] = {}
    for layer in layers:
        for env, value in layer.items():
            name = env[len(WEBHOOK_SECRET_PREFIX):].lower()
            if is_webhook_secret_env(env) and value is not None and name not in out:
                out[name] = value.strip()
    return out


def webhook_urls(raw: str) -> list[str]:
    """The endpoint URLs of a ``QC_WEBHOOKS`` value, however malformed the rest of it is (for redaction).

    The syntax is ``qc.distribute.config``'s: entries split by ``;`` or new lines, each
    ``name=URL|tiers``, the URL from the first ``=`` to the last ``|``.
    """
    urls = []
    for item in re.split(r"[;\r\n]", raw):
        _, eq, rest = item.partition("=")
        url = rest.rpartition("|")[0] if "|" in rest else rest
        if eq and url.strip():
            urls.append(url.strip())
    return urls


def url_secret_parts(url: str) -> set[str]:
    """What of a webhook URL a log line may show, each a secret: the URL, its request target (urllib3 logs
    ``POST /path?query``), its query and any password. A receiver's token often hides in the path."""
    parts = {url, *url_passwords(url)}
    try:
        split = urlsplit(url)
    except ValueError:
        return parts
    target = split.path + (f"?{split.query}" if split.query else "")
    return {p for p in (*parts, target, split.query) if p and p != "/"}


def _redis_url(name: str, raw: str) -> str:
    return check_redis_url(raw, ENV_PREFIX + name.upper())


def _http_url(name: str, raw: str) -> str:
    url = raw.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # unbalanced brackets, a port that is not a number
        ok = False
    if not ok:
        raise ConfigError(ENV_PREFIX + name.upper(), f"expected an http(s) URL with a host, got {redact_url(url)!r}",
                          "e.g. https://www.alphavantage.co/query")
    return url


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = next((c for c in choices if c.lower() == raw.strip().lower()), None)
        if value is None:
            raise ConfigError(ENV_PREFIX + name.upper(), f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


# --- signal engine tuning: "name=value,name=value" overrides of qc.signals.params' defaults ---------

SIGNAL_FACTOR_NAMES = ("gamma_mode", "walls", "vpin_level", "vpin_change", "book_imbalance", "microprice",
                       "order_flow", "flow_cluster", "iv_rv", "skew_0dte", "news", "last_half_hour", "auction")
SIGNAL_STRATEGY_KEYS = frozenset({
    "threshold", "min_factors", "lead_min", "take_profit_pct", "stop_pct", "time_stop_min", "dwell_s", "cooldown_s",
    "max_age_s", "trail_pct",
    "delta_lo", "delta_hi", "max_spread_pct", "max_spread_abs", "min_open_interest", "min_volume", "max_quote_age_s",
    *(f"w_{name}" for name in SIGNAL_FACTOR_NAMES)})
SIGNAL_MOC_KEYS = SIGNAL_STRATEGY_KEYS | {"min_imbalance_ratio"}
SIGNAL_GATE_KEYS = frozenset({"zero_dte_cutoff_min", "late_entry_cutoff_min", "open_delay_min", "moc_window_min",
                              "moc_buffer_min"})


def _pairs(field: str, raw: str) -> Iterator[tuple[str, str]]:
    """``a=1, b=2`` -> ("a", "1"), ("b", "2"); an item without ``=`` is a ConfigError naming ``field``."""
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        key, sep, text = (x.strip() for x in item.partition("="))
        if not sep:
            raise ConfigError(field, f"expected name=value pairs separated by commas, got {item!r}")
        yield key, text


def _overrides(allowed: frozenset[str]) -> Callable[[str, str], Mapping[str, float]]:
    """``threshold=0.4,w_news=0`` -> {name: value}: known names only, finite non-negative numbers."""

    def parse(name: str, raw: str) -> Mapping[str, float]:
        field = ENV_PREFIX + name.upper()
        out: dict[str, float] = {}
        for key, text in _pairs(field, raw):
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known names: {', '.join(sorted(allowed))}"
                raise ConfigError(f"{field}: {key}", "unknown name", hint)
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"{field}: {key}", f"expected a number, got {text!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{field}: {key}", f"must be a finite number ≥ 0, got {text!r}")
            out[key] = value
        return out

    return parse


# --- risk limits: "name=value" overrides of qc.risk.model.Limits / BreakerLimits ------------------
# Literal lists (core may not import qc.risk); tests/unit/test_risk_settings.py keeps them equal to the fields.

RISK_LIMIT_NAMES = (
    "max_qty_per_order", "max_premium_per_order_usd", "max_position_per_contract", "max_position_per_underlying",
    "max_open_orders_per_side", "max_msgs_per_s", "daily_loss_limit_usd", "drawdown_limit_usd", "stale_quote_s",
    "stale_analytics_s", "stale_chain_s", "max_spread_pct", "price_band_pct", "zero_dte_cutoff_min",
    "delta_usd_per_pct_per_underlying", "gamma_usd_per_pct_per_pct_per_underlying",
    "vega_usd_per_vol_pt_per_underlying", "charm_usd_delta_per_day_per_underlying",
)
RISK_BUCKET_LIMIT_NAMES = ("delta_usd_per_pct_per_bucket", "gamma_usd_per_pct_per_pct_per_bucket",
                           "vega_usd_per_vol_pt_per_bucket", "charm_usd_delta_per_day_per_bucket")
RISK_BUCKETS = ("0dte", "1dte", "14dte", "other")
RISK_BREAKER_NAMES = ("rejects_n", "rejects_window_min", "flip_clear_pct", "vpin_trip", "vpin_clear")
RISK_WHOLE_NAMES = {"max_open_orders_per_side": 0, "max_msgs_per_s": 0, "rejects_n": 1}  # int fields: least value
_OFF = ("inf", "off")


def fmt_number(value: float) -> str:
    """A number as an operator reads it, without losing digits: ``40000``, ``0.35``, ``inf``."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _risk_overrides(names: Sequence[str], bucketed: Sequence[str] = (),
                    allow_off: bool = True) -> Callable[[str, str], Mapping[str, float]]:
    """``max_qty_per_order=10,delta_usd_per_pct_per_bucket.0dte=40000,vega_..._underlying=off``.

    Errors name the variable as their field and the override first in the problem
    (``QC_RISK_LIMITS: max_qty_per_ordr: unknown name (did you mean ...)``).
    """
    known = sorted([*names, *(f"{b}.{bucket}" for b in bucketed for bucket in RISK_BUCKETS)])

    def parse(name: str, raw: str) -> Mapping[str, float]:
        field = ENV_PREFIX + name.upper()
        out: dict[str, float] = {}
        for key, text in _pairs(field, raw):
            if not key:
                raise ConfigError(field, f"a value without a name: {'=' + text!r}", "write name=value")
            base, dot, bucket = key.partition(".")
            if base in bucketed and not dot:
                raise ConfigError(field, f"{key}: a per-bucket limit needs its bucket",
                                  f"write {key}.<bucket>, bucket one of {', '.join(RISK_BUCKETS)}")
            if dot and base in bucketed and bucket not in RISK_BUCKETS:
                raise ConfigError(field, f"{key}: unknown bucket {bucket!r}",
                                  f"known buckets: {', '.join(RISK_BUCKETS)}")
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                raise ConfigError(field, f"{key}: unknown name",
                                  f"did you mean {close[0]!r}?" if close else f"known names: {', '.join(known)}")
            if key in out:
                raise ConfigError(field, f"{key}: given twice", "give each name once")
            if allow_off and text.lower() in _OFF:
                out[key] = math.inf
                continue
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(field, f"{key}: expected a number{' or off' if allow_off else ''}, "
                                  f"got {text!r}") from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(field, f"{key}: must be a finite number ≥ 0, got {text!r}",
                                  "off disables a limit" if allow_off else None)
            least = RISK_WHOLE_NAMES.get(key)
            if least is not None and (value != int(value) or value < least):
                raise ConfigError(field, f"{key}: must be a whole number ≥ {least}, got {text!r}")
            out[key] = value
        return out

    return parse


SPECS: tuple[Spec, ...] = (
    Spec("redis_url", "", "Redis to use: redis://[user:pass@]host:port/db, rediss:// for TLS, "
         "redis+sentinel://host:26379,host2:26379/mymaster, redis+cluster://host:port. "
         "Empty: the embedded redis-server started by `qc up`.", _redis_url, secret=False),
    Spec("embedded_redis_port", "6379", "Loopback port of the embedded Redis (so plain `redis-cli` works).",
         _int_range(1, 65535)),
    Spec("ib_host", "127.0.0.1", "IB Gateway / TWS host.", _str),
    Spec("ib_port", "4002", "IB Gateway / TWS API port (4002 paper gateway, 4001 live).", _int_range(1, 65535)),
    Spec("ib_client_id", "1", "IB API client id (unique per connection to one gateway).", _int_range(0, 999_999)),
    Spec("ib_account", "", "IB account code (e.g. DU1234567); empty: the gateway's only account.", _str),
    Spec("alpha_vantage_api_key", "", "Alpha Vantage API key (secret).", _str, secret=True),
    Spec("alpha_vantage_url", "https://www.alphavantage.co/query",
         "Alpha Vantage base URL (point it at `qc sim` or a test server).", _http_url),
    Spec("alpha_vantage_rpm", "75", "Alpha Vantage requests per minute of your plan.", _int_range(1, 1200)),
    Spec("symbols", "SPY,QQQ,IWM", "Underlyings qc trades, comma-separated.", _symbols),
    Spec("data_dir", "./var", "Where qc keeps state (embedded Redis AOF, logs).", _str),
    Spec("log_level", "INFO", "DEBUG, INFO, WARNING or ERROR.", _choice(*LOG_LEVELS)),
    Spec("log_format", "plain", "plain or json (one object per line, for log shippers).", _choice("plain", "json")),
    Spec("sim_ib_port", "4002", "IB API port of the simulator `qc up` starts when no IB Gateway is configured.",
         _int_range(1, 65535)),
    Spec("sim_av_port", "8765", "Alpha Vantage port of that simulator.", _int_range(1, 65535)),
    Spec("sim_ctl_port", "8766", "Fault-injection control port of that simulator (`qc sim ctl`).",
         _int_range(1, 65535)),
    Spec("sim_speed", "1", "Simulated seconds per real second in `qc up`'s simulator.", _float_range(0.01, 1000.0)),
    Spec("sim_start", "", "Simulated start, 'YYYY-MM-DD HH:MM' New York; empty: now if open, else 09:45 of the last "
         "session.", _str),
    Spec("sim_channels_port", "8767", "Telegram, X and webhook port of that simulator (where `qc up` points "
         "`qc distribute` when no real channel is configured).", _int_range(1, 65535)),
    Spec("distribute_tiers", "premium=0,basic=60,free=300", "Subscriber tiers in order of delivery, tier=seconds "
         "after the signal (qc's clock: simulated under `qc sim`).", _str),
    Spec("telegram_chats", "", "One Telegram channel chat per tier, tier=chat (e.g. premium=-1001234567890,"
         "free=@qc_free); empty: no Telegram.", _str),
    Spec("telegram_base_url", "https://api.telegram.org", "Telegram Bot API base URL (point it at `qc sim`).",
         _http_url),
    Spec("telegram_bot_token", "", "Telegram bot token for signal distribution (secret).", _str, secret=True),
    Spec("webhooks", "", "Webhook endpoints, 'name=https://host/path|tier+tier' separated by ';' (secret: URLs "
         "may carry a receiver's token); each signs with QC_WEBHOOK_SECRET_<NAME>.", _str, secret=True),
    Spec("x_base_url", "https://api.x.com", "X API base URL (point it at `qc sim`).", _http_url),
    Spec("x_api_key", "", "X app consumer key for OAuth 1.0a user context (secret).", _str, secret=True),
    Spec("x_api_secret", "", "X app consumer secret (secret).", _str, secret=True),
    Spec("x_access_token", "", "X access token of the posting account (secret).", _str, secret=True),
    Spec("x_access_secret", "", "X access token secret of the posting account (secret).", _str, secret=True),
    Spec("x_tiers", "free", "Tiers the X account posts a teaser for, comma-separated; empty: no X.", _str),
    Spec("distribute_max_lateness", "", "Per channel, seconds past its tier's time a delivery may still go out "
         "(else dead-lettered as expired), e.g. telegram=90,x=600; empty: telegram 120, webhook 900, x 300.", _str),
    Spec("distribute_send_timeout_s", "10", "Seconds `qc distribute` waits for a channel to answer one request "
         "(connect and read, each); a Telegram or webhook post that timed out is recorded uncertain, never resent.",
         _float_range(0.5, 60.0)),
    Spec("signals_0dte", "", "0DTE strategy overrides, e.g. 'threshold=0.4,w_news=0,dwell_s=300' (README: signals).",
         _overrides(SIGNAL_STRATEGY_KEYS)),
    Spec("signals_1dte", "", "1DTE strategy overrides (same names as signals_0dte).", _overrides(SIGNAL_STRATEGY_KEYS)),
    Spec("signals_14dte", "", "14DTE strategy overrides (same names as signals_0dte).",
         _overrides(SIGNAL_STRATEGY_KEYS)),
    Spec("signals_moc", "", "MOC strategy overrides (signals_0dte's names and min_imbalance_ratio).",
         _overrides(SIGNAL_MOC_KEYS)),
    Spec("signals_gates", "", "Time-gate overrides in minutes, e.g. 'zero_dte_cutoff_min=30,moc_buffer_min=2'.",
         _overrides(SIGNAL_GATE_KEYS)),
    Spec("signals_pending_cap", "100", "Signals kept in each signals:pending:{sym} list (newest first).",
         _int_range(1, 10_000)),
    Spec("risk_limits", "", "Pre-trade limit overrides, e.g. 'max_qty_per_order=10,daily_loss_limit_usd=2000,"
         "delta_usd_per_pct_per_bucket.0dte=40000'; off disables one (README: risk).",
         _risk_overrides(RISK_LIMIT_NAMES, RISK_BUCKET_LIMIT_NAMES)),
    Spec("risk_breakers", "", "Breaker overrides: rejects_n, rejects_window_min, flip_clear_pct, vpin_trip, "
         "vpin_clear (0 < vpin_clear < vpin_trip ≤ 1); loss and drawdown come from risk_limits.",
         _risk_overrides(RISK_BREAKER_NAMES, allow_off=False)),
    Spec("risk_interval_s", "1", "Seconds between two cycles of the `qc risk` worker.", _float_range(0.1, 60.0)),
    Spec("risk_halt_ack_s", "3", "Seconds `qc risk halt` waits for `qc execute` to acknowledge before it fences "
         "the executor off and cancels qc's entries itself.", _float_range(0.1, 60.0)),
    Spec("execute_client_id", "7", "IB client id `qc execute` places orders with (`qc risk halt` connects with it: "
         "IB lets only the placing client cancel an order). Must differ from QC_IB_CLIENT_ID.",
         _int_range(0, 999_999)),
    Spec("execute_qty", "1", "Contracts `qc execute` buys or sells per signal (times the signal's size multiplier).",
         _int_range(1, 1000)),
    Spec("execute_hard_close_min", "15", "Minutes before the close `qc execute` flattens 0DTE positions "
         "(0 disables the hard close: the position expires, is exercised or assigned).", _float_range(0.0, 390.0)),
    Spec("execute_reconcile_s", "30", "Seconds between two reconciliations of `qc execute` with the broker.",
         _float_range(1.0, 3600.0)),
    Spec("execute_lost_after_s", "30", "Seconds an order must stay absent at the broker (two reconciliations) "
         "before `qc execute` calls it lost.", _float_range(1.0, 3600.0)),
    Spec("execute_partial_grace_s", "2", "Seconds a partially filled entry may keep working before `qc execute` "
         "cancels its rest and protects the filled part.", _float_range(0.0, 600.0)),
    Spec("execute_entry_timeout_s", "60", "Seconds an unfilled entry works before `qc execute` cancels it.",
         _float_range(1.0, 86_400.0)),
    Spec("batch_nice", "5", "Niceness `qc analytics` and `qc chains` add to their own at start (0-19; 0: none): on a "
         "shared box the latency-critical workers (stream, execute, risk, signals) then win the CPU.",
         _int_range(0, 19)),
    Spec("dashboard_host", "127.0.0.1", "Address `qc dashboard` binds; any other than loopback requires "
         "QC_DASHBOARD_TOKEN on every request.", _str),
    Spec("dashboard_port", "8768", "Port of `qc dashboard` (the page and Prometheus /metrics).",
         _int_range(1, 65535)),
    Spec("dashboard_token", "", "Token every dashboard request must carry when bound off loopback (secret; "
         "at least 16 characters).", _str, secret=True),
    Spec("operator_token", "", "Token the dashboard's halt, resume and flatten buttons ask for (secret); empty: "
         "the buttons are disabled.", _str, secret=True),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}
SPEC_BY_ENV = {s.env: s for s in SPECS}
EXTRA_ENV = {"QC_CONFIG", "QC_DEBUG"}  # read by the CLI itself, not settings
FLAG_NAMES = {"redis_url": "--redis-url", "log_level": "--log-level"}  # settings the root group takes as flags


@dataclass(frozen=True)
class Settings:
    """Validated settings; build with :func:`resolve`."""

    redis_url: str = ""
    embedded_redis_port: int = 6379
    ib_host: str = "127.0.0.1"
    ib_port: int = 4002
    ib_client_id: int = 1
    ib_account: str = ""
    alpha_vantage_api_key: str = field(default="", repr=False)
    alpha_vantage_url: str = "https://www.alphavantage.co/query"
    alpha_vantage_rpm: int = 75
    symbols: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    data_dir: str = "./var"
    log_level: str = "INFO"
    log_format: str = "plain"
    sim_ib_port: int = 4002
    sim_av_port: int = 8765
    sim_ctl_port: int = 8766
    sim_speed: float = 1.0
    sim_start: str = ""
    sim_channels_port: int = 8767
    distribute_tiers: str = "premium=0,basic=60,free=300"
    telegram_chats: str = ""
    telegram_base_url: str = "https://api.telegram.org"
    telegram_bot_token: str = field(default="", repr=False)
    webhooks: str = field(default="", repr=False)
    x_base_url: str = "https://api.x.com"
    x_api_key: str = field(default="", repr=False)
    x_api_secret: str = field(default="", repr=False)
    x_access_token: str = field(default="", repr=False)
    x_access_secret: str = field(default="", repr=False)
    x_tiers: str = "free"
    distribute_max_lateness: str = ""
    distribute_send_timeout_s: float = 10.0
    signals_0dte: Mapping[str, float] = field(default_factory=dict)
    signals_1dte: Mapping[str, float] = field(default_factory=dict)
    signals_14dte: Mapping[str, float] = field(default_factory=dict)
    signals_moc: Mapping[str, float] = field(default_factory=dict)
    signals_gates: Mapping[str, float] = field(default_factory=dict)
    signals_pending_cap: int = 100
    risk_limits: Mapping[str, float] = field(default_factory=dict)
    risk_breakers: Mapping[str, float] = field(default_factory=dict)
    risk_interval_s: float = 1.0
    risk_halt_ack_s: float = 3.0
    execute_client_id: int = 7
    execute_qty: int = 1
    execute_hard_close_min: float = 15.0
    execute_reconcile_s: float = 30.0
    execute_lost_after_s: float = 30.0
    execute_partial_grace_s: float = 2.0
    execute_entry_timeout_s: float = 60.0
    batch_nice: int = 5
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8768
    dashboard_token: str = field(default="", repr=False)
    operator_token: str = field(default="", repr=False)
    webhook_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)  # endpoint -> QC_WEBHOOK_SECRET_*
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def is_set(self, name: str) -> bool:
        """True when the operator configured ``name`` (anywhere but the default)."""
        return self.sources.get(name, "default") != "default"

    def field_name(self, name: str) -> str:
        """How the operator spelled setting ``name``: its flag when it came from one, else its ``QC_*`` name."""
        if self.sources.get(name) == "flag" and name in FLAG_NAMES:
            return FLAG_NAMES[name]
        return SPEC_BY_NAME[name].env

    def secrets(self) -> list[str]:
        """Every spelling of every secret in use, longest first, for redaction by exact string.

        Secret settings and the Redis URL's passwords (userinfo and ``password=``), each raw and
        URL-encoded, since a client may log a URL it built (an API key in ``?apikey=``).
        """
        found: set[str] = set()
        for spec in SPECS:
            if spec.secret:
                found |= secret_forms(str(getattr(self, spec.name)))
        for url in [self.redis_url, *(getattr(self, s.name) for s in SPECS if s.parse is _http_url)]:
            for password in url_passwords(url):  # a proxy's user:password@ in a base URL is a secret too
                found |= secret_forms(password)
        for secret in self.webhook_secrets.values():
            found |= secret_forms(secret)
        for url in webhook_urls(self.webhooks):
            for part in url_secret_parts(url):
                found |= secret_forms(part)
        return sorted(found, key=len, reverse=True)

    def public(self) -> dict[str, dict[str, Any]]:
        """Every setting with its source, secrets masked: safe for logs and ``--json``."""
        out: dict[str, dict[str, Any]] = {}
        for spec in SPECS:
            value = getattr(self, spec.name)
            if spec.secret:
                value = SECRET_MASK if value else ""
            elif spec.name == "redis_url" or spec.parse is _http_url:
                value = redact_url(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            elif isinstance(value, Mapping):
                value = ",".join(f"{k}={fmt_number(v)}" for k, v in value.items())
            out[spec.name] = {"value": value, "source": self.sources.get(spec.name, "default"), "env": spec.env}
        for name, secret in sorted(self.webhook_secrets.items()):
            env = WEBHOOK_SECRET_PREFIX + name.upper()
            out[env[len(ENV_PREFIX):].lower()] = {"value": SECRET_MASK if secret else "",
                                                  "source": self.sources.get(env, "env"), "env": env}
        return out


def read_toml(path: Path, field: str = "--config") -> dict[str, str]:
    """Read a ``qc.toml``: flat ``name = value`` pairs; unknown names fail with a close match.

    A file that is missing, a directory, unreadable or not UTF-8 is a ConfigError naming ``field``
    (how the operator gave the path), never an OSError traceback.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(field, f"{path} does not exist", "pass an existing qc.toml") from None
    except IsADirectoryError:
        raise ConfigError(field, f"{path} is a directory", "pass the path of a qc.toml file") from None
    except PermissionError:
        raise ConfigError(field, f"{path} is not readable (permission denied)",
                          f"let this user read it (chmod u+r {path}) or pass another file") from None
    except UnicodeDecodeError:
        raise ConfigError(field, f"{path} is not UTF-8 text", "save it as UTF-8 TOML") from None
    except OSError as exc:
        raise ConfigError(field, f"cannot read {path}: {exc.strerror or type(exc).__name__}",
                          "pass a readable qc.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in SPEC_BY_NAME:
            close = difflib.get_close_matches(key, SPEC_BY_NAME, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(SPEC_BY_NAME)}"
            raise ConfigError(f"{path}: {key}", "unknown setting", hint)
        out[key] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return out


def unknown_env_names(environ: Mapping[str, str]) -> list[str]:
    """``QC_*`` variables that name no setting, each with a close match when there is one."""
    warnings = []
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and name not in SPEC_BY_ENV and name not in EXTRA_ENV \
                and not is_webhook_secret_env(name):
            close = difflib.get_close_matches(name, list(SPEC_BY_ENV), n=1)
            warnings.append(f"{name} is not a qc setting" + (f"; did you mean {close[0]}?" if close else ""))
    return warnings


def resolve(flags: Mapping[str, str | None], environ: Mapping[str, str], dotenv: Mapping[str, str | None],
            toml: Mapping[str, str]) -> Settings:
    """Merge the four layers, parse and validate every value, and record each one's source."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        layers: list[tuple[str, str | None]] = [
            ("flag", flags.get(spec.name)), ("env", environ.get(spec.env)),
            (".env", dotenv.get(spec.env)), ("qc.toml", toml.get(spec.name)), ("default", spec.default),
        ]
        source, raw = next((src, val) for src, val in layers if val is not None)
        try:
            values[spec.name] = spec.parse(spec.name, raw)
        except ConfigError as exc:
            if source == "flag" and spec.name in FLAG_NAMES:
                raise exc.renamed(FLAG_NAMES[spec.name]) from None
            raise
        sources[spec.name] = source
    names = {f.name for f in fields(Settings)} - {"sources", "webhook_secrets"}
    assert names == set(SPEC_BY_NAME), "Settings fields and SPECS disagree"
    dotenv_set = {k: v for k, v in dotenv.items() if k not in environ}
    values["webhook_secrets"] = webhook_secrets_of(environ, dotenv_set)
    for name in values["webhook_secrets"]:
        env = WEBHOOK_SECRET_PREFIX + name.upper()
        sources[env] = "env" if env in environ else ".env"
    if values["execute_client_id"] == values["ib_client_id"]:
        raise ConfigError(SPEC_BY_NAME["execute_client_id"].env,
                          f"must differ from QC_IB_CLIENT_ID ({values['ib_client_id']}, the ingestion connection)",
                          "IB refuses a second connection with one client id")
    return Settings(**values, sources=sources)
