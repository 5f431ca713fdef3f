"""Settings precedence, validation, unknown names, and secrets masked everywhere."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from qc.cli import cli
from qc.core import config
from qc.core.errors import ConfigError
from qc.core.logs import RedactSecrets


def test_precedence_flag_env_dotenv_toml_default() -> None:
    layers = {
        "flag": {"redis_url": "redis://flag:1"},
        "env": {"QC_REDIS_URL": "redis://env:1", "QC_IB_PORT": "4001"},
        "dotenv": {"QC_REDIS_URL": "redis://dotenv:1", "QC_IB_PORT": "7497", "QC_IB_HOST": "gw.dotenv"},
        "toml": {"redis_url": "redis://toml:1", "ib_port": "7496", "ib_host": "gw.toml", "ib_client_id": "7"},
    }
    s = config.resolve(layers["flag"], layers["env"], layers["dotenv"], layers["toml"])
    assert (s.redis_url, s.ib_port, s.ib_host, s.ib_client_id, s.ib_account) == (
        "redis://flag:1", 4001, "gw.dotenv", 7, "")
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
