"""Settings are outside input: random ``QC_*`` environments, ``.env`` files and ``qc.toml`` files, all at once.

Each case writes a ``.env`` and a ``qc.toml`` (or a ``--config`` file) into a fresh directory, sets the
environment, and builds Settings exactly as the CLI does (``qc.cli.build_settings``: python-dotenv's
reader, ``config.read_toml``, ``config.resolve``). Up to 16 settings of ``config.SPECS`` a case get
values from their own family (in range, at and past each bound, NaN/inf/1e999 and other bad numbers,
wrong types from TOML, random text), some in two layers at once; half the cases hold only right values
(which must all come through), and broken files (not UTF-8, not TOML, unknown keys, a directory) come now
and then. A second test sets one setting at a time. Asserted, whatever the mix:

- the outcome is a Settings or a ConfigError, never any other exception;
- a Settings holds every number finite (an ``off`` risk limit is its documented ``inf``) and inside the
  range its parser declares, every override a known name with a finite value ≥ 0, tickers that are
  tickers, a Redis URL its own validator accepts again, and ``public()`` shows no secret;
- a ConfigError names the field that was actually given a bad value (``QC_X``, ``QC_X: name``, the flag,
  the file), and its message carries no secret (every generated secret holds ``MARK``);
- the workers' own readers of the overrides (``qc.risk.settings``, ``qc.signals.params``) take an accepted
  Settings to their parameters or to a ConfigError naming the variable, never another exception.

Refusals are tallied by field; ``QC_FUZZ_EXAMPLES`` scales the run, ``QC_FUZZ_REPORT`` collects it.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.cli import build_settings
from qc.core import config
from qc.core.errors import ConfigError
from qc.risk import settings as risk_settings
from qc.signals import params as signal_params
from tests.fuzz.tally import FUZZ, TIMEOUT, Tally, reporting
from tests.unit.test_config import MARK, redis_urls

TALLY = Tally()
pytestmark = TIMEOUT

BAD_NUMBERS = ["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999", "1e-400", "0x10", "1_000", "+5",
               "5.", ".5", "-0", "1,5", "٣", "12abc", "9" * 30, "-" + "9" * 30, "None", "true", "[]", "5 5", "\t7\n"]
SECRET_SPECS = [s for s in config.SPECS if s.secret]
INT_PARSE = config._int_range(0, 1).__code__  # the code objects of the range parsers (their closures differ)
FLOAT_PARSE = config._float_range(0, 1).__code__


def declared_range(spec: config.Spec) -> tuple[type, float, float] | None:
    """(int or float, lo, hi) for a setting parsed by ``_int_range``/``_float_range``, read from its closure."""
    code = getattr(spec.parse, "__code__", None)
    if code not in (INT_PARSE, FLOAT_PARSE):
        return None
    bounds = inspect.getclosurevars(spec.parse).nonlocals
    return (int if code is INT_PARSE else float), bounds["lo"], bounds["hi"]


def no_mark(text: str) -> bool:
    return MARK not in text


TEXT = st.text(max_size=24).filter(no_mark)
SECRETS = st.builds(lambda tail, extra: f"{MARK}{tail}{extra}", st.text("0123456789abcdef", min_size=4, max_size=8),
                    st.sampled_from(["", "/", "?", "#", "@", "&", "%", " ", ":", "=", ";", ",", "\\", '"', "'"]))


def numbers(kind: type, lo: float, hi: float) -> st.SearchStrategy[str]:
    if kind is int:
        good = st.integers(int(lo), int(hi)).map(str)
        edges = [lo - 1, hi + 1, -(2**63), 2**63, 2**64]
    else:
        good = st.floats(lo, hi).map(repr)
        edges = [lo - 1e-9, hi * (1 + 1e-9), -lo, hi * 2, 5e-324, -0.0]
    edge = st.sampled_from([repr(v) if isinstance(v, float) else str(int(v)) for v in edges]
                           + [str(lo), str(hi), repr(float(lo)), repr(float(hi))])
    return st.one_of(good, good, edge, st.sampled_from(BAD_NUMBERS), st.floats().map(repr), TEXT)


def pairs(names: list[str], values: st.SearchStrategy[str], good: bool = False) -> st.SearchStrategy[str]:
    """``name=value,name=value`` overrides, names mostly known, now and then malformed (never, with ``good``)."""
    right = st.tuples(st.sampled_from(names), values).map(lambda p: f"{p[0]}={p[1]}")
    if good:
        return st.lists(right, max_size=4, unique_by=lambda p: p.partition("=")[0]).map(",".join)
    item = st.one_of(right, st.sampled_from(["", "=1", "threshold", "x=1", ",", "a==b", " = "]), TEXT)
    return st.lists(item, max_size=4).map(",".join)


OVERRIDE_VALUES = st.one_of(st.floats(0, 1e6).map(repr), st.integers(0, 10**6).map(str),
                            st.sampled_from(["off", "OFF", "inf", "-1", "nan", "-0", "1e999", "abc", "", "2.5", "3"]))
RISK_NAMES = [*config.RISK_LIMIT_NAMES, *(f"{b}.{k}" for b in config.RISK_BUCKET_LIMIT_NAMES
                                          for k in (*config.RISK_BUCKETS, "7dte", "")), *config.RISK_BUCKET_LIMIT_NAMES]
HTTP_URLS = st.one_of(st.sampled_from(["https://api.telegram.org", "http://127.0.0.1:8767", "https://h:0/",
                                       "https://h:99999", "ftp://h", "http://", "https://[::1", "https://[::1]:8/q",
                                       f"https://u:{MARK}pw@h/x", "h", ""]), TEXT)


GOOD_REDIS_URLS = ["", "redis://127.0.0.1:6379/0", f"redis://u:{MARK}pw@localhost:6380/2",
                   "rediss://h.example:6380/0?ssl_cert_reqs=none", "unix:///run/redis.sock?db=1",
                   "redis+sentinel://a:26379,b:26380/mymaster/0", "redis+cluster://10.0.0.5:7000"]
GOOD_OVERRIDES = st.one_of(st.floats(0, 1e6).map(repr), st.integers(0, 10**6).map(str))


def ranged(spec: config.Spec, good: bool) -> st.SearchStrategy[str]:
    rng = declared_range(spec)
    assert rng is not None
    kind, lo, hi = rng
    if good:
        return st.integers(int(lo), int(hi)).map(str) if kind is int else st.floats(lo, hi).map(repr)
    return numbers(*rng)


def family(spec: config.Spec, good: bool = False) -> st.SearchStrategy[str]:
    """Values for one setting: mostly its own kind of value, right or wrong, sometimes anything; with ``good``
    only values its parser must accept."""
    name = spec.name
    if spec.secret:
        if name == "webhooks":
            return st.one_of(SECRETS.map(lambda s: f"hook=https://h.example/{s}|premium"), SECRETS)
        return SECRETS
    if declared_range(spec) is not None:
        return ranged(spec, good)
    if name == "redis_url":
        return st.sampled_from(GOOD_REDIS_URLS) if good else st.one_of(redis_urls(), redis_urls(), st.just(""))
    if name == "symbols":
        if good:
            return st.lists(st.sampled_from(["SPY", "qqq", " iwm", "BRK.B"]), min_size=1, max_size=4).map(",".join)
        return st.one_of(st.lists(st.sampled_from(["SPY", "qqq", " iwm", "BRK.B", "", "1X", "TOOLONGNAME", "S Y",
                                                   "ŞPY"]), max_size=4).map(",".join), TEXT)
    if name in ("log_level", "log_format"):
        right = ["debug", "INFO", " Warning ", "ERROR"] if name == "log_level" else ["plain", "JSON"]
        return st.sampled_from(right if good else [*right, "loud", "", "info!", "jsonl"])
    if name.endswith("_url"):
        return st.sampled_from(["https://api.telegram.org", "http://127.0.0.1:8767", "https://h:1/q"]) if good \
            else HTTP_URLS
    values = GOOD_OVERRIDES if good else OVERRIDE_VALUES
    if name.startswith("signals_") and name != "signals_pending_cap":
        allowed = sorted({"signals_gates": config.SIGNAL_GATE_KEYS,
                          "signals_moc": config.SIGNAL_MOC_KEYS}.get(name, config.SIGNAL_STRATEGY_KEYS))
        return pairs(allowed if good else [*allowed, "w_nope", "Threshold"], values, good)
    if name == "risk_limits":
        plain = [n for n in config.RISK_LIMIT_NAMES if n not in config.RISK_WHOLE_NAMES]
        return pairs(plain, values, good) if good else pairs(RISK_NAMES, values)
    if name == "risk_breakers":
        plain = [n for n in config.RISK_BREAKER_NAMES if n not in config.RISK_WHOLE_NAMES]
        return pairs(plain, values, good) if good else pairs([*config.RISK_BREAKER_NAMES, "max_qty_per_order"],
                                                              values)
    return TEXT


@st.composite
def toml_value(draw: st.DrawFn, raw: str) -> str:
    """``raw`` as TOML, mostly a string, sometimes the number, bool, list or table TOML would make of it."""
    kind = draw(st.sampled_from(["string"] * 8 + ["bare", "list", "bool", "table", "float"]))
    if kind == "bare":
        try:
            float(raw)
        except ValueError:
            return toml_string(raw)
        return raw.strip() if raw.strip() else '""'  # a number: TOML's int/float (or a syntax error: fine too)
    if kind == "list":
        return "[" + ", ".join(toml_string(p) for p in raw.split(",")) + "]"
    if kind == "bool":
        return draw(st.sampled_from(["true", "false"]))
    if kind == "table":
        return "{ a = 1 }"
    if kind == "float":
        return draw(st.sampled_from(["nan", "inf", "-inf", "1e308", "-0.0", "1_000", "0x1F", "1979-05-27"]))
    return toml_string(raw)


def toml_string(raw: str) -> str:
    """A TOML basic string holding exactly ``raw`` (controls escaped; TOML refuses them bare, JSON's surrogate
    escapes too)."""
    out = ['"']
    for c in raw:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out) + '"'


def dotenv_line(env: str, raw: str, style: str) -> str:
    if style == "double":
        return f'{env}="' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "single" and "'" not in raw:
        return f"{env}='{raw}'"
    if style == "export":
        return f"export {env}={raw}"
    if style == "spaced":
        return f"{env} = {raw}"
    return f"{env}={raw}"


def rarely(bad: st.SearchStrategy[Any], usual: Any) -> st.SearchStrategy[Any]:
    """``usual`` nine times in ten, else one of ``bad``: a broken file must not hide every other setting."""
    return st.integers(0, 9).flatmap(lambda k: bad if k == 9 else st.just(usual))  # hypothesis favours 0


@st.composite
def layers(draw: st.DrawFn) -> dict[str, Any]:
    """One case: flags, environment, .env text and qc.toml text, each setting in none, one or two layers."""
    flags: dict[str, str | None] = {"redis_url": None, "log_level": None}
    env: dict[str, str] = {}
    dotenv: list[str] = []
    toml: list[str] = []
    given: set[str] = set()
    good = draw(st.booleans())  # half the cases hold only right values: they must all come through
    chosen = draw(st.lists(st.sampled_from(config.SPECS), min_size=1, max_size=16, unique_by=lambda spec: spec.name))
    for spec in chosen:  # up to 16 settings a case (drawing all ~55 each time is slow), each in one or two layers
        count = draw(st.sampled_from([1, 1, 2]))
        for layer in draw(st.lists(st.sampled_from(["env", ".env", "toml", "flag"]), min_size=count, max_size=count,
                                   unique=True)):
            raw = draw(family(spec, good))
            if layer == "flag" and spec.name in flags:
                flags[spec.name] = raw
            elif layer == "env" or layer == "flag":
                if "\x00" in raw:
                    continue  # the OS cannot carry NUL in the environment
                env[spec.env] = raw
            elif layer == ".env":
                style = "double" if good else draw(st.sampled_from(["plain", "double", "single", "export", "spaced"]))
                dotenv.append(dotenv_line(spec.env, raw, style))
            else:
                toml.append(f"{spec.name} = {toml_string(raw) if good else draw(toml_value(raw))}")
            given.add(spec.name)
    if draw(st.integers(0, 4)) == 0:  # a webhook secret per endpoint, by name
        env[config.WEBHOOK_SECRET_PREFIX + draw(st.sampled_from(["HOOK", "A_1", "x"]))] = draw(SECRETS)
    noise = st.sampled_from(["# comment", "", "garbage line", "QC_NOPE=1", "=novalue", "QC_IB_PORT", "[table]",
                             "unknown_key = 1", "ib_port = ", "symbols = [1, [2]]", '"quoted key" = 1', "\x00"])
    for lines in () if good else (dotenv, toml):
        for _ in range(draw(st.integers(0, 2) if draw(st.integers(0, 3)) == 3 else st.just(0))):
            line = draw(noise)
            lines.insert(draw(st.integers(0, len(lines))), line)
            named = line.partition("=")[0].strip()
            hit = config.SPEC_BY_NAME.get(named) or config.SPEC_BY_ENV.get(named)
            if hit is not None and "=" in line:
                given.add(hit.name)  # a noise line that sets a setting (symbols = [1, [2]])
    return {"good": good, "flags": flags, "env": env, "dotenv": "\n".join(dotenv), "toml": "\n".join(toml),
            "given": given,
            "config_flag": draw(st.sampled_from([None, "qc.toml", "other.toml"]) if good else
                                rarely(st.sampled_from(["qc.toml", "missing.toml", ".", "other.toml"]), None)),
            "dotenv_bytes": b"" if good else draw(rarely(st.sampled_from([b"\xff\xfe bad", b"QC_IB_PORT=\xe9"]), b"")),
            "toml_bytes": b"" if good else draw(rarely(st.sampled_from([b"\xff", b"\nib_port = 1\nib_port = 2"]), b""))}


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in os.environ (nothing else QC_*: the suite's fixture stripped it), restored afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(name, value)
        yield


def build(case: Mapping[str, Any]) -> config.Settings | ConfigError:
    """Settings as the CLI builds them from this case's files, environment and flags (in a fresh directory)."""
    with tempfile.TemporaryDirectory() as tmp, environment(case["env"]), pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)
        Path(".env").write_bytes(case["dotenv"].encode("utf-8", "surrogatepass") + case["dotenv_bytes"])
        toml_name = case["config_flag"] if case["config_flag"] not in (None, "missing.toml", ".") else "qc.toml"
        Path(toml_name).write_bytes(case["toml"].encode("utf-8", "surrogatepass") + case["toml_bytes"])
        try:
            return build_settings(case["flags"]["redis_url"], case["config_flag"], case["flags"]["log_level"])
        except ConfigError as exc:
            return exc


def assert_sane(s: config.Settings) -> None:
    """Every value of a Settings is one its parser's declared range and shape allow."""
    for spec in config.SPECS:
        value = getattr(s, spec.name)
        rng = declared_range(spec)
        if rng is not None:
            kind, lo, hi = rng
            assert type(value) is kind and isinstance(value, (int, float)), (spec.env, value)
            assert math.isfinite(value) and lo <= value <= hi, (spec.env, value)
        elif isinstance(value, Mapping):
            for key, number in value.items():
                assert isinstance(number, float), (spec.env, key, number)
                assert number >= 0 and not math.isnan(number), (spec.env, key, number)
                assert math.isfinite(number) or spec.name == "risk_limits", (spec.env, key, number)
                least = config.RISK_WHOLE_NAMES.get(key)
                assert least is None or spec.name not in ("risk_limits", "risk_breakers") or math.isinf(number) or (
                    number == int(number) and number >= least), (spec.env, key, number)  # inf: "off"
        elif isinstance(value, str):
            assert value == value.strip(), (spec.env, value)
    assert s.symbols and all(config.SYMBOL_RE.match(sym) for sym in s.symbols)
    assert s.log_level in config.LOG_LEVELS and s.log_format in ("plain", "json")
    assert s.redis_url == "" or config.check_redis_url(s.redis_url, "again") == s.redis_url
    for name in ("alpha_vantage_url", "telegram_base_url", "x_base_url"):
        parts = urlsplit(getattr(s, name))
        assert parts.scheme in ("http", "https") and parts.hostname, (name, getattr(s, name))
        assert config.url_passwords(getattr(s, name)) <= set(s.secrets()), "a URL's password is not redacted"
    assert s.execute_client_id != s.ib_client_id
    public = json.dumps(s.public())
    assert MARK not in public, "a secret reached Settings.public()"
    for spec in SECRET_SPECS:
        assert s.public()[spec.name]["value"] in ("", config.SECRET_MASK)


DOWNSTREAM = {"risk limits": (risk_settings.limits_from, ("QC_RISK_LIMITS",)),
              "risk breakers": (risk_settings.breakers_from, ("QC_RISK_BREAKERS", "QC_RISK_LIMITS")),  # loss, drawdown
              "signal parameters": (signal_params.from_settings, ("QC_SIGNALS_",))}


def downstream(s: config.Settings) -> list[str]:
    """The workers' own readers of the overrides (``qc risk``, ``qc signals`` at start): each gives its
    parameters or a ConfigError naming its variable, never another exception. Returns the refusals."""
    refused = []
    for what, (read, envs) in DOWNSTREAM.items():
        error: ConfigError | None = None
        try:
            read(s)
        except ConfigError as exc:
            error = exc
        if error is not None:
            assert error.field.startswith(envs) and MARK not in str(error), (what, str(error))
            refused.append(f"downstream refused:{error.field.split(':')[0]}")
    return refused


def field_given(field: str, case: Mapping[str, Any]) -> bool:
    """Does the ConfigError's field name something this case actually set (a setting, a flag, a file)?"""
    head = field.split(":")[0].strip()
    if head in (".env", "--config", "qc.toml", "QC_CONFIG") or head == case["config_flag"]:
        return True
    if head in config.FLAG_NAMES.values():
        return any(config.FLAG_NAMES[n] == head and v is not None for n, v in case["flags"].items())
    spec = config.SPEC_BY_ENV.get(head)
    return spec is not None and spec.name in case["given"]


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    with reporting(TALLY):
        yield


@FUZZ
@given(case=layers())
def test_any_settings_are_valid_in_range_or_a_config_error_naming_the_field(case: dict[str, Any]) -> None:
    got = build(case)
    if isinstance(got, config.Settings):
        assert_sane(got)
        TALLY.add("settings", "accepted", *downstream(got))
        return
    message = f"{got} {got.hint or ''}"
    assert not case["good"] or "QC_IB_CLIENT_ID" in got.problem, f"right values refused: {message}"
    assert MARK not in message, f"a secret reached the error message: {message}"
    assert field_given(got.field, case) or "QC_IB_CLIENT_ID" in got.problem, (got.field, message)
    head = got.field.split(":")[0].strip()
    TALLY.add("settings", f"refused:{'file' if head.endswith('.toml') or head == '.' else head}")


@FUZZ
@given(spec=st.sampled_from(config.SPECS), data=st.data())
def test_each_setting_alone_is_in_range_or_names_itself(spec: config.Spec, data: st.DataObject) -> None:
    """One setting at a time (every family drawn often), the rest default: the same rules, sharper naming."""
    raw = data.draw(family(spec))
    layer = data.draw(st.sampled_from(["env", ".env", "toml"]))
    if layer == "env" and "\x00" in raw:
        layer = "toml"
    case: dict[str, Any] = {"good": False, "flags": {"redis_url": None, "log_level": None}, "env": {}, "dotenv": "",
                            "toml": "", "given": {spec.name}, "config_flag": None, "dotenv_bytes": b"",
                            "toml_bytes": b""}
    if layer == "env":
        case["env"] = {spec.env: raw}
    elif layer == ".env":
        case["dotenv"] = dotenv_line(spec.env, raw, "double")
    else:
        case["toml"] = f"{spec.name} = {toml_string(raw)}"
    got = build(case)
    if isinstance(got, config.Settings):
        assert_sane(got)
        TALLY.add("settings one at a time", "accepted", *downstream(got))
        return
    assert MARK not in f"{got} {got.hint or ''}", str(got)
    assert got.field.split(":")[0].strip() == spec.env or spec.env in str(got), (spec.env, str(got))
    TALLY.add("settings one at a time", f"refused:{got.field.split(':')[0]}")


def test_declared_ranges_are_found() -> None:
    """The range reader sees every numeric setting (else the range assertions would silently check nothing)."""
    ranged = {s.name for s in config.SPECS if declared_range(s) is not None}
    numeric = {f for f, v in vars(config.Settings()).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert ranged == numeric, numeric ^ ranged
    assert declared_range(config.SPEC_BY_NAME["ib_port"]) == (int, 1, 65535)
    assert declared_range(config.SPEC_BY_NAME["sim_speed"]) == (float, 0.01, 1000.0)
    assert os.environ.get("QC_IB_PORT") is None
