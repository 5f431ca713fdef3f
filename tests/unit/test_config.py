"""Settings precedence, validation, unknown names, and secrets masked everywhere."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner
from hypothesis import event, given, settings
from hypothesis import strategies as st

from qc.cli import cli
from qc.core import config, logs
from qc.core.errors import ConfigError
from qc.core.logs import RedactSecrets
from qc.runtime.store import connect


def test_precedence_flag_env_dotenv_toml_default() -> None:
    layers = {
        "flag": {"redis_url": "redis://flag:1"},
        "env": {"QC_REDIS_URL": "redis://env:1", "QC_IB_PORT": "4001"},
        "dotenv": {"QC_REDIS_URL": "redis://dotenv:1", "QC_IB_PORT": "7497", "QC_IB_HOST": "gw.dotenv"},
        "toml": {"redis_url": "redis://toml:1", "ib_port": "7496", "ib_host": "gw.toml", "ib_client_id": "8"},
    }
    s = config.resolve(layers["flag"], layers["env"], layers["dotenv"], layers["toml"])
    assert (s.redis_url, s.ib_port, s.ib_host, s.ib_client_id, s.ib_account) == (
        "redis://flag:1", 4001, "gw.dotenv", 8, "")
    assert s.sources["redis_url"] == "flag"
    assert s.sources["ib_port"] == "env"
    assert s.sources["ib_host"] == ".env"
    assert s.sources["ib_client_id"] == "qc.toml"
    assert s.sources["ib_account"] == "default"
    assert s.is_set("ib_port") and not s.is_set("ib_account")


def test_defaults_match_the_documented_names() -> None:
    s = config.resolve({}, {}, {}, {})
    assert s.symbols == ("SPY", "QQQ", "IWM")
    assert s.data_dir == "./var"
    envs = {spec.env for spec in config.SPECS}
    for name in ("QC_REDIS_URL", "QC_IB_HOST", "QC_IB_PORT", "QC_IB_CLIENT_ID", "QC_IB_ACCOUNT",
                 "QC_ALPHA_VANTAGE_API_KEY", "QC_ALPHA_VANTAGE_URL", "QC_ALPHA_VANTAGE_RPM", "QC_SYMBOLS",
                 "QC_DATA_DIR"):
        assert name in envs


@pytest.mark.parametrize(("env", "value", "fragment"), [
    ("QC_IB_PORT", "70000", "between 1 and 65535"),
    ("QC_SYMBOLS", "SPY,,q q", "comma-separated tickers"),
    ("QC_REDIS_URL", "http://nope", "unsupported scheme"),
    ("QC_ALPHA_VANTAGE_URL", "ftp://x", "http(s) URL"),
    ("QC_LOG_LEVEL", "LOUD", "expected one of"),
    ("QC_ALPHA_VANTAGE_RPM", "0", "between 1"),
])
def test_bad_values_name_the_field(env: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve({}, {env: value}, {}, {})
    assert err.value.field == env
    assert fragment in str(err.value)


def test_symbols_are_normalised() -> None:
    assert config.resolve({}, {"QC_SYMBOLS": " spy, qqq "}, {}, {}).symbols == ("SPY", "QQQ")


def test_dotenv_never_overrides_a_set_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("QC_IB_PORT=7497\nQC_IB_HOST=from-dotenv\n")
    monkeypatch.setenv("QC_IB_PORT", "4001")
    from qc.cli import build_settings

    s = build_settings(None, None, None)
    assert (s.ib_port, s.ib_host) == (4001, "from-dotenv")


def test_toml_file_found_in_cwd_and_lists_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qc.toml").write_text('symbols = ["spy", "iwm"]\nib_port = 4001\n')
    from qc.cli import build_settings

    s = build_settings(None, None, None)
    assert s.symbols == ("SPY", "IWM") and s.ib_port == 4001 and s.sources["ib_port"] == "qc.toml"


def test_unknown_env_names_warn_with_close_match() -> None:
    warnings = config.unknown_env_names({"QC_REDIS_ULR": "x", "QC_IB_PORT": "1", "QC_CONFIG": "y", "HOME": "/"})
    assert warnings == ["QC_REDIS_ULR is not a qc setting; did you mean QC_REDIS_URL?"]


def test_unknown_env_name_warning_reaches_stderr() -> None:
    result = CliRunner().invoke(cli, ["status", "--help"], env={"QC_SYMBOLZ": "SPY"})
    assert "QC_SYMBOLZ is not a qc setting; did you mean QC_SYMBOLS?" in result.output


def test_public_masks_secrets_and_redis_password() -> None:
    s = config.resolve({}, {"QC_ALPHA_VANTAGE_API_KEY": "k3y", "QC_REDIS_URL": "rediss://qc:p4ss@h:6380/1"},
                       {}, {})
    public = s.public()
    assert public["alpha_vantage_api_key"]["value"] == "***"
    assert public["redis_url"]["value"] == "rediss://qc:***@h:6380/1"
    assert "k3y" not in repr(s) and "k3y" not in str(public) and "p4ss" not in str(public)
    assert set(s.secrets()) == {"k3y", "p4ss"}


def test_log_filter_masks_secrets_in_messages_and_args() -> None:
    record = logging.LogRecord("qc", logging.INFO, __file__, 1, "key=%s url=%s", ("k3y", "redis://:p4ss@h"), None)
    assert RedactSecrets(["k3y", "p4ss"]).filter(record)
    assert record.getMessage() == "key=*** url=redis://:***@h"


def test_env_example_lists_every_setting() -> None:
    text = (Path(__file__).parents[2] / ".env.example").read_text()
    for spec in config.SPECS:
        assert f"{spec.env}=" in text, spec.env


def test_readme_settings_table_lists_every_setting() -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    for spec in config.SPECS:
        assert f"| `{spec.env}` |" in text, spec.env


# --- Redis URLs, config paths and secrets: every malformed form is exit 2 naming the setting -----

FUZZ_EXAMPLES = int(os.environ.get("QC_FUZZ_EXAMPLES", "200"))  # QC_FUZZ_EXAMPLES=10000: the long run, as tests/fuzz
MARK = "ZQZ"  # in every generated password, and nowhere else: must never reach any output


@pytest.mark.parametrize(("url", "fragment"), [
    ("redis://h:abc/0", "port 'abc' is not an integer 1..65535"),
    ("redis://h:99999/0", "port '99999' is not an integer 1..65535"),
    ("redis://h:0/0", "port '0'"),
    ("redis://[::1", "unbalanced '['"),
    ("redis://[::1]x:5/0", "after the IPv6 address"),
    ("redis://h:1/0?socket_timeout=abc", "option 'socket_timeout' must be seconds"),
    ("redis://h:1/0?socket_timeout=inf", "option 'socket_timeout' must be seconds"),
    ("redis://h:1/0?foo=1", "unknown option 'foo'"),
    ("redis://h:1/0?timeout=1", "unknown option 'timeout'"),
    ("redis://h:1/0?db", "without '='"),
    ("redis://h:1/0?db=1&db=2", "given twice"),
    ("redis://h:1/1?db=2", "two different databases"),
    ("redis://h/x", "database number"),
    ("redis://h/-1", "database number"),
    ("redis://h/0/1", "database number"),
    ("redis://", "no host"),
    ("redis:///0", "no host"),
    ("redis://a..b:1/0", "not a host name"),
    ("redis://" + "a" * 64 + ":1/0", "not a host name"),
    ("redis://h1:1,h2:2/0", "several hosts"),
    ("redis://h:1/0#x", "'#'"),
    ("redis://h 1:1/0", "spaces"),
    ("redis://hé:1/0", "non-ASCII"),
    ("redis+cluster://h:7000/1", "only database 0"),
    ("redis+sentinel://h1:1,h2:x/m", "sentinel host: port 'x'"),
    ("redis+sentinel://h1:1,,h2/m", "sentinel host: no host"),
    ("redis+sentinel://h1:1", "no master name"),
    ("redis+sentinel://h1:1/m/x", "database number"),
    ("redis+sentinel://h1/m?socket_timeout=1", "Sentinel client takes none"),
    ("unix://h/tmp/redis.sock", "a host in a unix:// URL"),
    ("unix://", "no socket path"),
    ("rediss://h?ssl_cert_reqs=maybe", "none, optional or required"),
    ("rediss://h?ssl_keyfile=/k", "ssl_keyfile without ssl_certfile"),
    ("redis://h?ssl_cert_reqs=none", "unknown option 'ssl_cert_reqs'"),
    ("unix:///tmp/s.sock?socket_keepalive=true", "unknown option 'socket_keepalive'"),
    ("http://h:1/0", "unsupported scheme"),
    ("h:6379", "unsupported scheme"),
])
def test_malformed_redis_urls_are_config_errors(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve({}, {"QC_REDIS_URL": url}, {}, {})
    assert err.value.field == "QC_REDIS_URL"
    assert fragment in str(err.value)


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:6379/0", "redis://h", "redis://h/99", "rediss://u:p@h:6380/1?ssl_cert_reqs=none",
    "redis://[::1]:6379/2", "redis://[fe80::1%eth0]:6379", "redis://h.example.com.:1/15?db=15",
    "redis://h/0?socket_timeout=1.5&socket_connect_timeout=2&retry_on_timeout=yes&health_check_interval=0"
    "&max_connections=50&client_name=qc-1&username=u&password=p&protocol=3&socket_keepalive=true",
    "unix:///var/run/redis.sock?db=3&password=x", "redis+sentinel://:pw@h1:26379,[::1]:26380,h3/mymaster/2",
    "rediss+sentinel://h1/m", "redis+cluster://h:7000", "redis+cluster://h:7000/0", "REDIS://H:1/0",
])
def test_wellformed_redis_urls_pass(url: str) -> None:
    s = config.resolve({}, {"QC_REDIS_URL": url}, {}, {})
    assert s.redis_url.lower() == url.lower()


def test_blank_redis_url_is_embedded_but_no_host_is_an_error() -> None:
    assert config.resolve({}, {"QC_REDIS_URL": "  "}, {}, {}).redis_url == ""
    with pytest.raises(ConfigError, match="no host"):
        config.resolve({}, {"QC_REDIS_URL": "redis://"}, {}, {})


def test_a_flag_value_is_named_as_the_flag() -> None:
    with pytest.raises(ConfigError) as err:
        config.resolve({"redis_url": "redis://h:x/0"}, {"QC_REDIS_URL": "redis://fine:1/0"}, {}, {})
    assert err.value.field == "--redis-url" and str(err.value).startswith("--redis-url: port 'x'")
    s = config.resolve({"redis_url": "redis://h:1/0"}, {}, {}, {})
    assert s.field_name("redis_url") == "--redis-url"
    assert config.resolve({}, {}, {}, {}).field_name("redis_url") == "QC_REDIS_URL"


def test_malformed_url_messages_never_carry_the_password() -> None:
    for url in (f"redis://:{MARK}/x@127.0.0.1:1/0", f"redis://h:1/0?password={MARK}/et?x=1&y",
                f"redis://u:{MARK}#1@h:1/0", f"redis://:{MARK}[@h:1/0", f"redis+sentinel://:{MARK}@h1:1,h2:x/m",
                f"redis://:{MARK}@h:abc/0", f"redis://h:1/0?password={MARK}&bogus=1"):
        with pytest.raises(ConfigError) as err:
            config.resolve({}, {"QC_REDIS_URL": url}, {}, {})
        assert MARK not in str(err.value), str(err.value)


def _cli_failure(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize("url", [
    "redis://127.0.0.1:abc/0", "redis://127.0.0.1:99999/0", "redis://[::1", "redis://127.0.0.1:1/0?socket_timeout=abc",
    "redis://", f"redis://:{MARK}/et@127.0.0.1:1/0", f"redis+sentinel://:{MARK}@h1:1,h2:2", "redis://h:1/-1",
])
def test_cli_exits_2_naming_the_env_var_or_the_flag(url: str) -> None:
    code, out = _cli_failure(["status"], env={"QC_REDIS_URL": url})
    assert (code, out.count("\n")) == (2, 1), out
    assert "QC_REDIS_URL:" in out and "internal error" not in out and MARK not in out
    code, out = _cli_failure(["--redis-url", url, "status"])
    assert code == 2 and "--redis-url:" in out and "internal error" not in out and MARK not in out


def test_config_path_problems_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for args, env, fragment in [
        (["--config", str(tmp_path), "status"], None, f"--config: {tmp_path} is a directory"),
        (["--config", "missing.toml", "status"], None, "--config: missing.toml does not exist"),
        (["status"], {"QC_CONFIG": "missing.toml"}, "QC_CONFIG: missing.toml does not exist"),
        (["--config", "/proc/self/mem", "status"], None, "--config: cannot read /proc/self/mem"),
    ]:
        code, out = _cli_failure(args, env)
        assert code == 2 and fragment in out and "internal error" not in out, out
    (tmp_path / "qc.toml").mkdir()  # the default file, but a directory
    code, out = _cli_failure(["status"])
    assert code == 2 and "qc.toml is a directory" in out


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_unreadable_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "qc.toml"
    path.write_text("ib_port = 4001\n")
    path.chmod(0)
    code, out = _cli_failure(["--config", str(path), "status"])
    assert code == 2 and "is not readable" in out


def test_bad_dotenv_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"QC_IB_HOST=\xff\xfe\n")
    code, out = _cli_failure(["status"])
    assert code == 2 and ".env:" in out and "internal error" not in out


# --- the fuzz: whatever the URL, a ConfigError naming the setting, or a client that builds -------------

_PIECE = st.text(st.sampled_from("abcxyz019-_.:/@?#&=[]%,;+~ "), max_size=10)
_JUNK_VALUES = st.one_of(st.sampled_from(["-1", "abc", "nan", "inf", "1e999", "", "86401", "a b", "99999999999"]),
                         _PIECE)
_GOOD_VALUES = {  # a right value for each option redis-py takes
    "db": ["0", "1", "15", "99"], "socket_timeout": ["0.5", "5", "86400"], "socket_connect_timeout": ["1", "2.5"],
    "retry_on_timeout": ["true", "no", "1"], "health_check_interval": ["0", "15"], "max_connections": ["1", "50"],
    "client_name": ["qc", "qc-1", "a~b"], "username": ["u", "default"], "password": [MARK + "x"],
    "protocol": ["2", "3"], "socket_keepalive": ["yes", "false"], "ssl_cert_reqs": ["none", "optional", "required"],
    "ssl_check_hostname": ["true", "0"], "ssl_ca_certs": ["/etc/ca.pem"], "ssl_ca_path": ["/etc/ssl/certs"],
    "ssl_certfile": ["/c.pem"], "ssl_keyfile": ["/k.pem"],
}
_GOOD_HOSTS = st.one_of(st.sampled_from(["127.0.0.1", "localhost", "[::1]", "h", "[fe80::1%eth0]", "h_1", "10.0.0.5"]),
                        st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,8}){0,2}", fullmatch=True))
_BAD_HOSTS = st.one_of(st.sampled_from(["[::1", "::1", "a..b", "a" * 64, "", "-h", "h-", "[x]"]), _PIECE)
_PATHS = {"plain": ["", "/", "/0", "/15", "/99"], "unix": ["/tmp/r.sock", "/run/redis/redis.sock"],
          "sentinel": ["/mymaster", "/mymaster/1", "/m/"], "cluster": ["", "/", "/0"]}
_BAD_PATHS = ["/-1", "/x", "/0/1", "/mymaster/x/1", "", "/"]


T = TypeVar("T")


def _kind(scheme: str) -> str:
    return "unix" if scheme == "unix" else scheme.partition("+")[2] or "plain"


@st.composite
def redis_urls(draw: st.DrawFn) -> str:
    """Mostly well-formed URLs of every scheme with, now and then, one part wrong; sometimes any text."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.text(max_size=60))
    wrong = draw(st.integers(0, 2)) == 0  # a third of the URLs get wrong parts, the rest only right ones

    def either(good: st.SearchStrategy[T], bad: st.SearchStrategy[T]) -> T:
        return draw(bad) if wrong and draw(st.integers(0, 3)) == 0 else draw(good)

    scheme = either(st.sampled_from(config.REDIS_SCHEMES), st.sampled_from(["http", "REDIS", "redis+foo", ""]))
    kind = _kind(scheme.lower())
    user = draw(st.one_of(st.none(), st.from_regex(r"[a-z]{0,5}", fullmatch=True)))
    encoded = st.text(min_size=1, max_size=8).map(lambda p: quote(p, safe=""))
    password = None if draw(st.booleans()) else MARK + either(encoded, _PIECE)
    userinfo = "" if user is None and password is None else f"{user or ''}{':' + password if password else ''}@"
    count = draw(st.integers(1, 3)) if kind == "sentinel" else 0 if kind == "unix" else 1
    count = either(st.just(count), st.integers(0, 3))
    hosts = []
    for _ in range(count):
        port = either(st.one_of(st.none(), st.integers(1, 65535).map(str)),
                      st.one_of(st.integers(-5, 70_000).map(str), _PIECE))
        hosts.append(either(_GOOD_HOSTS, _BAD_HOSTS) + (f":{port}" if port is not None else ""))
    path = either(st.sampled_from(_PATHS.get(kind, [""])), st.sampled_from(_BAD_PATHS))
    tls = scheme.startswith("rediss")
    allowed = sorted(n for n in config.REDIS_QUERY_OPTIONS
                     if (tls or not n.startswith("ssl")) and n != "ssl_keyfile"
                     and not (kind == "unix" and n == "socket_keepalive") and not (kind == "cluster" and n == "db"))
    pairs: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 3)) if kind != "sentinel" or wrong else 0):
        name = either(st.sampled_from(allowed), st.sampled_from(["foo", "timeout", "retry_on_error", "ssl_password",
                                                                 "DB", "", "ssl_keyfile", "db"]))
        value = either(st.sampled_from(_GOOD_VALUES.get(name, ["1"])), _JUNK_VALUES)
        pairs.setdefault(name, quote_plus(value) if name == "password" else value)
    query = ("?" + "&".join(f"{k}={v}" for k, v in pairs.items())) if pairs else ""
    return f"{scheme}://{userinfo}{','.join(hosts)}{path}{query}"


def _resolved(flags: dict[str, str], environ: dict[str, str], dotenv: dict[str, str | None],
              toml: dict[str, str]) -> config.Settings | ConfigError:
    try:
        return config.resolve(flags, environ, dotenv, toml)
    except ConfigError as exc:
        return exc


@settings(max_examples=FUZZ_EXAMPLES)
@given(url=redis_urls(), via_flag=st.booleans())
def test_fuzz_redis_url_is_config_error_or_a_working_client(url: str, via_flag: bool) -> None:
    field = "--redis-url" if via_flag else "QC_REDIS_URL"
    s = _resolved({"redis_url": url} if via_flag else {}, {} if via_flag else {"QC_REDIS_URL": url}, {}, {})
    if isinstance(s, ConfigError):
        assert s.field == field and MARK not in str(s)
        event("ConfigError")
        return
    assert MARK not in json.dumps(s.public()) and MARK not in logs.redact(s.redis_url, s.secrets())
    if s.redis_url.startswith(("redis+cluster", "rediss+cluster")):
        event("valid cluster URL (not built: it connects)")
        return  # the cluster client talks to its nodes when built: covered by test_topologies
    event("valid: client and connection built")
    store = connect(s)  # no I/O: every option must be one redis-py takes, of the right type
    try:
        store.client.connection_pool.make_connection()
        assert MARK not in store.address
    finally:
        store.close()


@settings(max_examples=FUZZ_EXAMPLES)
@given(url=redis_urls())
def test_fuzz_cli_never_says_internal_error(url: str) -> None:
    """The same URLs through the real CLI (``status --help`` builds Settings, then stops before Redis)."""
    result = CliRunner().invoke(cli, ["--redis-url", url, "status", "--help"])
    assert result.exit_code in (0, 2), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert MARK not in result.output
    event(f"exit {result.exit_code}")
    if result.exit_code == 2:
        assert "--redis-url:" in result.output


@settings(max_examples=FUZZ_EXAMPLES)
@given(spec=st.sampled_from(config.SPECS), value=st.text(max_size=40),
       source=st.sampled_from(["env", ".env", "qc.toml"]))
def test_fuzz_any_setting_value_is_valid_or_names_its_variable(spec: config.Spec, value: str, source: str) -> None:
    layers: dict[str, dict[str, str]] = {"env": {}, ".env": {}, "qc.toml": {}}
    layers[source][spec.name if source == "qc.toml" else spec.env] = value
    s = _resolved({}, layers["env"], dict(layers[".env"]), layers["qc.toml"])
    if isinstance(s, ConfigError):
        # the variable itself (``QC_X`` or ``QC_X: name`` for one entry of a list), or, for a clash between two
        # settings (QC_EXECUTE_CLIENT_ID = QC_IB_CLIENT_ID), the other one with this one named in the message
        assert s.field.split(":")[0] == spec.env or spec.env in str(s), str(s)
        event("ConfigError")
        return
    event("valid")
    assert s.sources[spec.name] == source
    s.public()
    s.secrets()


# --- distribution: a secret per webhook endpoint, and endpoint URLs that may carry a token ------------

WHSEC = "whsec_" + "QUJD" * 11


def test_webhook_secrets_are_known_names_collected_and_masked() -> None:
    env = {"QC_WEBHOOK_SECRET_ALPHA": WHSEC, "QC_WEBHOOKS": "alpha=https://a.example/in/T0KEN?sig=s1g|premium",
           "QC_X_ACCESS_TOKEN": "x-t0k"}
    s = config.resolve({}, env, {"QC_WEBHOOK_SECRET_ALPHA": "whsec_other", "QC_WEBHOOK_SECRET_BETA": "whsec_b"}, {})
    assert s.webhook_secrets == {"alpha": WHSEC, "beta": "whsec_b"}  # the environment wins over .env
    assert config.unknown_env_names(env) == [] and config.unknown_env_names({"QC_WEBHOOK_SECRET_": "x"})
    found = set(s.secrets())
    assert {WHSEC, "whsec_b", "x-t0k", "https://a.example/in/T0KEN?sig=s1g", "/in/T0KEN?sig=s1g", "sig=s1g"} <= found
    public = json.dumps(s.public())
    assert WHSEC not in public and "T0KEN" not in public and "x-t0k" not in public
    assert s.public()["webhook_secret_alpha"] == {"value": "***", "source": "env", "env": "QC_WEBHOOK_SECRET_ALPHA"}
    assert s.public()["webhook_secret_beta"]["source"] == ".env"
    assert "T0KEN" not in repr(s) and WHSEC not in repr(s)
    line = 'urllib3 "POST /in/T0KEN?sig=s1g HTTP/1.1" 204; hook https://a.example/in/T0KEN?sig=s1g'
    assert "T0KEN" not in logs.redact(line, s.secrets())
    raw = config.raw_secrets(env)
    assert WHSEC in raw and "/in/T0KEN?sig=s1g" in raw


@pytest.mark.parametrize("raw", [
    "alpha=https://a.example/hook|premium",
    "alpha=https://a.example/in?x=1&y=2|premium+basic; beta=http://127.0.0.1:8767/hooks/beta|free",
    "a=https://h.example/p|premium\nb=https://h.example/q=r|basic",
])
def test_webhook_urls_agree_with_the_distribution_parser(raw: str) -> None:
    from qc.distribute.config import parse_tiers, parse_webhooks

    parsed = parse_webhooks(raw, parse_tiers("premium=0,basic=60,free=300"))
    assert config.webhook_urls(raw) == [t.url for t in parsed]
    assert config.webhook_urls("garbage without equals; x=") == []
