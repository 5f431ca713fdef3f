"""The channels as configured: the routing plus where and as whom to send, from the validated Settings.

Why a module: `qc distribute` must refuse at start (exit 2, one line naming the variable) what would
otherwise fail at the first send hours later: chats without a bot token, an endpoint without its
signing secret, half a set of X credentials. Pure: Settings in, values out; credentials are kept out
of every ``repr`` and never leave this object but into a request.

X is on when its four OAuth 1.0a credentials are set (and ``QC_X_TIERS`` names tiers); none set turns
it off, as an operator without an X account expects; some but not all is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from qc.core.config import Settings
from qc.core.errors import ConfigError
from qc.distribute import config
from qc.distribute.model import Routing

X_CREDENTIALS = ("x_api_key", "x_api_secret", "x_access_token", "x_access_secret")
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class TelegramAccess:
    """The Bot API base URL and the bot's token (it travels in the request path)."""

    base_url: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class XAccess:
    """The X API base URL and OAuth 1.0a user-context credentials of the house account."""

    base_url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    access_token: str = field(repr=False)
    access_secret: str = field(repr=False)


@dataclass(frozen=True)
class Channels:
    """Everything a sender needs: routing, access per channel (None: the channel is off), each webhook
    endpoint's ``whsec_`` secret, and the per-request timeout (connect and read, real seconds)."""

    routing: Routing
    telegram: TelegramAccess | None
    x: XAccess | None
    webhook_secrets: Mapping[str, str] = field(repr=False, default_factory=dict)
    send_timeout_s: float = 10.0

    def webhook_secret(self, name: str) -> str:
        return self.webhook_secrets[name]


def _x_access(settings: Settings, wanted: bool) -> XAccess | None:
    given = [name for name in X_CREDENTIALS if getattr(settings, name)]
    if not given or not wanted:
        return None
    missing = [name for name in X_CREDENTIALS if name not in given]
    if missing:
        env = settings.field_name(missing[0])
        raise ConfigError(env, "not set, but other X credentials are",
                          "set all four of QC_X_API_KEY, QC_X_API_SECRET, QC_X_ACCESS_TOKEN, QC_X_ACCESS_SECRET "
                          "(OAuth 1.0a user context), or none to turn X off")
    return XAccess(settings.x_base_url, settings.x_api_key, settings.x_api_secret, settings.x_access_token,
                   settings.x_access_secret)


def routing_of(settings: Settings) -> Routing:
    """Tiers and targets alone (what `qc distribute status` needs; no credential is checked)."""
    x_wanted = any(getattr(settings, name) for name in X_CREDENTIALS)
    return config.routing(tiers=settings.distribute_tiers, telegram=settings.telegram_chats,
                          webhooks=settings.webhooks, x_tiers=settings.x_tiers if x_wanted else "",
                          max_lateness=settings.distribute_max_lateness)


def from_settings(settings: Settings) -> Channels:
    """The channels of ``settings``, or a ConfigError naming the variable to fix."""
    x_wanted = any(getattr(settings, name) for name in X_CREDENTIALS)
    routing = routing_of(settings)
    telegram = None
    if any(t.channel == "telegram" for t in routing.targets):
        if not settings.telegram_bot_token:
            raise ConfigError(settings.field_name("telegram_bot_token"), "not set, but QC_TELEGRAM_CHATS names chats",
                              "set the bot's token (from @BotFather), or empty QC_TELEGRAM_CHATS")
        telegram = TelegramAccess(settings.telegram_base_url, settings.telegram_bot_token)
    environ = {config.webhook_secret_env(name): value for name, value in settings.webhook_secrets.items()}
    secrets = {t.name: config.webhook_secret(t.name, environ) for t in routing.targets if t.channel == "webhook"}
    return Channels(routing, telegram, _x_access(settings, x_wanted), MappingProxyType(secrets),
                    settings.distribute_send_timeout_s)


def all_loopback(channels: Channels) -> bool:
    """Every channel this process sends to is on this host (the simulator): arrival times vary by
    milliseconds, so rate-limit buckets need less slack for jitter."""
    urls = [t.url for t in channels.routing.targets if t.channel == "webhook"]
    urls += [a.base_url for a in (channels.telegram, channels.x) if a is not None]
    return bool(urls) and all((urlsplit(u).hostname or "").lower() in LOOPBACK for u in urls)
