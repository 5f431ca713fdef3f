"""Distribution settings: their string forms (``QC_*`` values) parsed into the model, or one ConfigError.

Every error names the variable as its field and says what to write instead (exit 2 at the CLI edge).
Nothing here reads ``os.environ``: values, and for secrets the environment mapping, are passed in.

Syntax
------
``QC_DISTRIBUTE_TIERS`` (default ``premium=0,basic=60,free=300``)
    ``tier=seconds`` pairs separated by commas, in order of delivery (delays never decrease along the
    list, so a swapped pair is caught). Names: 1-32 of ``a-z 0-9 _`` starting with a letter
    (case-insensitive, stored lower-case); delays in seconds, 0 to 3600.
``QC_TELEGRAM_CHATS`` (default empty: no Telegram)
    ``tier=chat`` pairs separated by commas: one channel chat per tier, ``chat`` a numeric id
    (``-1001234567890``) or a public ``@username``. A chat serves one tier; a tier without a chat gets no
    Telegram post.
``QC_WEBHOOKS`` (default empty: no webhook)
    Endpoints separated by ``;`` (or new lines), each ``name=URL|tier+tier``::

        QC_WEBHOOKS="alpha=https://alpha.example/qc/hook|premium; beta=https://b.example/in?src=qc|basic+free"

    The name is what logs, metrics and the secret's variable use. The URL runs from the first ``=`` to
    the last ``|``: a URL may hold ``=`` and ``?``, never a raw ``;``, ``|`` or space (RFC 3986 wants
    ``|`` percent-encoded anyway; write ``%3B``, ``%7C``, ``%20``). The tiers are required: an endpoint
    that silently received premium would leak it. ``https`` only, but ``http`` to a loopback host
    (``127.0.0.1``, ``::1``, ``localhost``: the simulator's receiver), since the body is paid content.
``QC_WEBHOOK_SECRET_<NAME>`` (one per endpoint, secret)
    The endpoint's Standard Webhooks signing secret: ``whsec_`` then the base64 of 24-64 random bytes.
``QC_X_TIERS`` (default ``free``)
    Comma-separated tiers the X account posts a teaser for; empty turns X off.
``QC_DISTRIBUTE_MAX_LATENESS`` (default empty: ``model.MAX_LATENESS_S``)
    ``channel=seconds`` overrides of each channel's lateness bound, e.g. ``telegram=90,x=600``.

URLs and secrets never appear in an error: a URL is shown as ``scheme://host`` at most.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from urllib.parse import urlsplit

from qc.core.config import WEBHOOK_SECRET_PREFIX
from qc.core.config import is_webhook_secret_env as is_webhook_secret_env
from qc.core.errors import ConfigError
from qc.distribute.model import (
    CHANNELS,
    LATENESS_CAP_S,
    MAX_DELAY_S,
    MAX_LATENESS_S,
    NAME_RE,
    ChannelName,
    Routing,
    Target,
    Tier,
)

TIERS_ENV = "QC_DISTRIBUTE_TIERS"
TELEGRAM_ENV = "QC_TELEGRAM_CHATS"
WEBHOOKS_ENV = "QC_WEBHOOKS"
X_TIERS_ENV = "QC_X_TIERS"
MAX_LATENESS_ENV = "QC_DISTRIBUTE_MAX_LATENESS"

DEFAULT_TIERS = "premium=0,basic=60,free=300"
DEFAULT_X_TIERS = "free"
X_ACCOUNT = "account"  # the name of the X target (one house account)

SECRET_PREFIX = "whsec_"
SECRET_BYTES = (24, 64)  # Standard Webhooks: 24-64 random bytes
_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,19}")
_CHAT_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{4,31}")
_NAME_HINT = "names are 1-32 of a-z, 0-9 and _, starting with a letter"
_LOOPBACK_NAMES = ("localhost",)


def _items(raw: str, sep: str | re.Pattern[str]) -> Iterator[str]:
    parts = sep.split(raw) if isinstance(sep, re.Pattern) else raw.split(sep)
    return (p.strip() for p in parts if p.strip())


def _pair(field: str, item: str, example: str, *, echo: bool = True) -> tuple[str, str]:
    """``name=value``; ``echo=False`` keeps the item out of the error (it may be a URL with a token)."""
    key, sep, value = item.partition("=")
    if not sep:
        got = f", got {item[:60]!r}" if echo else " (an entry has no '=')"
        raise ConfigError(field, f"expected name=value{got}", f"e.g. {example}")
    return key.strip(), value.strip()


def _name(field: str, raw: str, what: str) -> str:
    name = raw.lower()
    if not NAME_RE.fullmatch(name):
        shown = f" {raw[:40]!r}" if not any(c in raw for c in "/:@?") else ""  # never part of a URL
        raise ConfigError(field, f"{what}{shown} is not a valid name", _NAME_HINT)
    return name


def _seconds(field: str, key: str, text: str, lo: float, hi: float, *, low_open: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(field, f"{key}: expected seconds as a number, got {text[:40]!r}",
                          f"e.g. {key}=60") from None
    if not math.isfinite(value) or value < lo or value > hi or (low_open and value == lo):
        bound = f"({lo:g}, {hi:g}]" if low_open else f"[{lo:g}, {hi:g}]"
        hint = "values are seconds, not milliseconds" if math.isfinite(value) and value > hi else None
        raise ConfigError(field, f"{key}: {text[:40]!r} s is outside {bound}", hint)
    return value


def parse_tiers(raw: str, field: str = TIERS_ENV) -> tuple[Tier, ...]:
    """``premium=0,basic=60,free=300`` → tiers in order of delivery."""
    tiers: list[Tier] = []
    for item in _items(raw, ","):
        key, text = _pair(field, item, DEFAULT_TIERS)
        name = _name(field, key, "tier")
        if any(t.name == name for t in tiers):
            raise ConfigError(field, f"tier {name} is given twice", "give each tier once")
        delay = _seconds(field, name, text, 0.0, MAX_DELAY_S)
        if tiers and delay < tiers[-1].delay_s:
            raise ConfigError(field, f"{name}={text} comes after {tiers[-1].name}={tiers[-1].delay_s:g}",
                              "list tiers in order of delay, first served first")
        tiers.append(Tier(name, delay))
    if not tiers:
        raise ConfigError(field, "no tier given", f"e.g. {DEFAULT_TIERS}")
    return tuple(tiers)


def _known_tier(field: str, raw: str, tiers: tuple[Tier, ...]) -> str:
    name = _name(field, raw, "tier")
    if all(t.name != name for t in tiers):
        raise ConfigError(field, f"unknown tier {name!r}",
                          f"tiers are those of {TIERS_ENV}: {', '.join(t.name for t in tiers)}")
    return name


def parse_telegram_chats(raw: str, tiers: tuple[Tier, ...], field: str = TELEGRAM_ENV) -> tuple[Target, ...]:
    """``premium=-1001,basic=-1002,free=@qc_free`` → one Telegram target per tier (named after it)."""
    out: list[Target] = []
    for item in _items(raw, ","):
        key, chat = _pair(field, item, "premium=-1001234567890,free=@qc_free")
        tier = _known_tier(field, key, tiers)
        if not (_CHAT_ID.fullmatch(chat) or _CHAT_USERNAME.fullmatch(chat)):
            raise ConfigError(field, f"{tier}: {chat[:40]!r} is not a chat",
                              "a numeric chat id like -1001234567890 or a public @username (5-32 characters)")
        if any(t.name == tier for t in out):
            raise ConfigError(field, f"tier {tier} has two chats", "one chat per tier")
        if any(t.chat_id == chat for t in out):
            raise ConfigError(field, f"chat {chat} serves two tiers",
                              "one chat per tier, or its members would get every signal twice")
        out.append(Target("telegram", tier, (tier,), chat_id=chat))
    return tuple(out)


def _shown(url: str) -> str:
    """What an error may say about a URL: its scheme and host, never its path, query or credentials."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "that URL"
    return f"{parts.scheme}://{host}" if parts.scheme and host else "that URL"


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _webhook_url(field: str, name: str, url: str) -> str:
    if not url:
        raise ConfigError(field, f"{name}: no URL", "write name=https://host/path|tier")
    if any(c.isspace() or c in ";|" or not c.isprintable() for c in url):
        raise ConfigError(field, f"{name}: the URL holds a space, a control character, ';' or '|'",
                          "percent-encode them (%20, %3B, %7C) or end the URL where the tiers begin")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        raise ConfigError(field, f"{name}: {_shown(url)} is not a valid URL (host or port)",
                          "write https://host[:port]/path") from None
    if parts.scheme not in ("https", "http") or not host or port == 0:
        raise ConfigError(field, f"{name}: {_shown(url)} is not an http(s) URL with a host",
                          "write https://host[:port]/path")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ConfigError(field, f"{name}: {_shown(url)} is plain http",
                          "use https: signals are paid content (http only to a loopback test receiver)")
    return url


def parse_webhooks(raw: str, tiers: tuple[Tier, ...], field: str = WEBHOOKS_ENV) -> tuple[Target, ...]:
    """``alpha=https://a.example/hook|premium; beta=https://b.example/in|basic+free`` → webhook targets."""
    out: list[Target] = []
    for item in _items(raw, re.compile(r"[;\r\n]")):
        key, rest = _pair(field, item, "alpha=https://alpha.example/hook|premium", echo=False)
        name = _name(field, key, "webhook")
        if any(t.name == name for t in out):
            raise ConfigError(field, f"webhook {name} is defined twice", "give each endpoint one entry")
        url, bar, tier_text = rest.rpartition("|")
        if not bar:
            raise ConfigError(field, f"{name}: which tiers does it receive?",
                              f"end the entry with |tier or |tier+tier, e.g. {name}=https://host/path|premium")
        url = _webhook_url(field, name, url.strip())
        chosen: list[str] = []
        for part in tier_text.split("+"):
            if not part.strip():
                raise ConfigError(field, f"{name}: an empty tier in {tier_text[:40]!r}",
                                  "write tiers joined by +, e.g. |basic+free")
            tier = _known_tier(field, part.strip(), tiers)
            if tier in chosen:
                raise ConfigError(field, f"{name}: tier {tier} is given twice", "give each tier once")
            chosen.append(tier)
        out.append(Target("webhook", name, tuple(chosen), url=url))
    return tuple(out)


def parse_x_tiers(raw: str, tiers: tuple[Tier, ...], field: str = X_TIERS_ENV) -> tuple[Target, ...]:
    """``free`` → the X account's target for those tiers; empty → no X target."""
    chosen: list[str] = []
    for item in _items(raw, ","):
        tier = _known_tier(field, item, tiers)
        if tier in chosen:
            raise ConfigError(field, f"tier {tier} is given twice", "give each tier once")
        chosen.append(tier)
    return (Target("x", X_ACCOUNT, tuple(chosen)),) if chosen else ()


def parse_max_lateness(raw: str, field: str = MAX_LATENESS_ENV) -> Mapping[ChannelName, float]:
    """``telegram=90,x=600`` → every channel's bound, the defaults where not given."""
    out: dict[ChannelName, float] = dict(MAX_LATENESS_S)
    given: set[str] = set()
    for item in _items(raw, ","):
        key, text = _pair(field, item, "telegram=120,webhook=900,x=300")
        channel = next((c for c in CHANNELS if c == key.lower()), None)
        if channel is None:
            raise ConfigError(field, f"unknown channel {key[:40]!r}", f"channels: {', '.join(CHANNELS)}")
        if channel in given:
            raise ConfigError(field, f"{channel} is given twice", "give each channel once")
        given.add(channel)
        out[channel] = _seconds(field, channel, text, 0.0, LATENESS_CAP_S, low_open=True)
    return MappingProxyType(out)


def routing(*, tiers: str = DEFAULT_TIERS, telegram: str = "", webhooks: str = "", x_tiers: str = DEFAULT_X_TIERS,
            max_lateness: str = "") -> Routing:
    """The whole routing from the five settings' raw values (each error names its own variable)."""
    parsed = parse_tiers(tiers)
    targets = (*parse_telegram_chats(telegram, parsed), *parse_webhooks(webhooks, parsed),
               *parse_x_tiers(x_tiers, parsed))
    try:
        return Routing(parsed, targets, parse_max_lateness(max_lateness))
    except ValueError as exc:  # the parsers check everything Routing does; this is a guard, not a path
        raise ConfigError(TIERS_ENV, str(exc)) from None


def webhook_secret_env(name: str) -> str:
    """``alpha`` → ``QC_WEBHOOK_SECRET_ALPHA``: where the endpoint's signing secret lives."""
    return WEBHOOK_SECRET_PREFIX + name.upper()


def webhook_secret(name: str, environ: Mapping[str, str]) -> str:
    """Endpoint ``name``'s signing secret from ``environ``, checked (``whsec_`` + base64 of 24-64 bytes).

    The value is never part of an error: only the variable's name and what is wrong with it.
    """
    env = webhook_secret_env(name)
    value = environ.get(env, "").strip()
    hint = f"set {env} to {SECRET_PREFIX} followed by the base64 of 24-64 random bytes, one per endpoint"
    if not value:
        raise ConfigError(env, f"not set: webhook {name} signs every delivery with it", hint)
    if not value.startswith(SECRET_PREFIX):
        raise ConfigError(env, f"does not start with {SECRET_PREFIX}", hint)
    try:
        key = base64.b64decode(value[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(env, "is not valid base64 after the prefix", hint) from None
    lo, hi = SECRET_BYTES
    if not lo <= len(key) <= hi:
        raise ConfigError(env, f"decodes to {len(key)} bytes, not {lo}-{hi}", hint)
    return value
