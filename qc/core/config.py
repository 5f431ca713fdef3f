"""Settings: resolved once, validated once, passed down.

Precedence, highest first: command-line flag > environment ``QC_*`` > ``.env`` (never overriding a
variable that is set) > ``qc.toml`` > default. Each value remembers where it came from, so
``qc status --json`` can say why a setting is what it is. Secrets print as ``***`` everywhere.

``SETTINGS`` is the one table of names: the README's settings table, ``.env.example`` and the
validation all follow it. Nothing below ``qc/commands`` reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


def _redis_url(name: str, raw: str) -> str:
    url = raw.strip()
    if url and urlsplit(url).scheme not in ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster"):
        raise ConfigError(
            ENV_PREFIX + name.upper(),
            f"unsupported scheme in {redact_url(url)!r}",
            "use redis://, rediss:// (TLS), unix://, redis+sentinel:// or redis+cluster://",
        )
    return url


def _http_url(name: str, raw: str) -> str:
    url = raw.strip()
    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(ENV_PREFIX + name.upper(), f"expected an http(s) URL, got {url!r}")
    return url


def _choice(*choices: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = next((c for c in choices if c.lower() == raw.strip().lower()), None)
        if value is None:
            raise ConfigError(ENV_PREFIX + name.upper(), f"expected one of {', '.join(choices)}, got {raw!r}")
        return value

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
    Spec("telegram_bot_token", "", "Telegram bot token for signal distribution (secret).", _str, secret=True),
    Spec("webhook_secret", "", "HMAC secret for signing webhook deliveries (secret).", _str, secret=True),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}
SPEC_BY_ENV = {s.env: s for s in SPECS}
EXTRA_ENV = {"QC_CONFIG", "QC_DEBUG"}  # read by the CLI itself, not settings


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
    telegram_bot_token: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def is_set(self, name: str) -> bool:
        """True when the operator configured ``name`` (anywhere but the default)."""
        return self.sources.get(name, "default") != "default"

    def secrets(self) -> list[str]:
        """Secret values in use, for log redaction."""
        values = [str(getattr(self, s.name)) for s in SPECS if s.secret]
        password = urlsplit(self.redis_url).password if self.redis_url else None
        return [v for v in [*values, password or ""] if v]

    def public(self) -> dict[str, dict[str, Any]]:
        """Every setting with its source, secrets masked: safe for logs and ``--json``."""
        out: dict[str, dict[str, Any]] = {}
        for spec in SPECS:
            value = getattr(self, spec.name)
            if spec.secret:
                value = SECRET_MASK if value else ""
            elif spec.name == "redis_url":
                value = redact_url(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[spec.name] = {"value": value, "source": self.sources.get(spec.name, "default"), "env": spec.env}
        return out


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (user names are not secrets)."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:{SECRET_MASK}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def read_toml(path: Path) -> dict[str, str]:
    """Read a ``qc.toml``: flat ``name = value`` pairs; unknown names fail with a close match."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError("--config", f"{path} does not exist", "pass an existing qc.toml") from None
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
        if name.startswith(ENV_PREFIX) and name not in SPEC_BY_ENV and name not in EXTRA_ENV:
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
        values[spec.name] = spec.parse(spec.name, raw)
        sources[spec.name] = source
    names = {f.name for f in fields(Settings)} - {"sources"}
    assert names == set(SPEC_BY_NAME), "Settings fields and SPECS disagree"
    return Settings(**values, sources=sources)
