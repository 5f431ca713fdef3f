"""The CLI edge: help for every verb, exit codes, error lines, light imports, `python -m qc`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from qc import __version__
from qc.cli import VERBS, cli

HEAVY = ("numpy", "pandas", "sklearn", "ib_async", "exchange_calendars")


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help_with_examples(verb: str) -> None:
    result = CliRunner().invoke(cli, [verb, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Usage: cli" in result.output or f"{verb} [OPTIONS]" in result.output
    assert "Examples:" in result.output


def test_root_help_lists_verbs_and_version() -> None:
    result = CliRunner().invoke(cli, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0
    for verb in VERBS:
        assert verb in result.output
    version = CliRunner().invoke(cli, ["--version"])
    assert __version__ in version.output


def test_unknown_verb_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2


def test_bad_setting_exits_2_with_one_line_naming_it() -> None:
    result = CliRunner().invoke(cli, ["status"], env={"QC_IB_PORT": "not-a-port"})
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["Error: QC_IB_PORT: expected an integer, got 'not-a-port'"]


def test_unknown_config_key_exits_2_with_close_match(tmp_path: Path) -> None:
    path = tmp_path / "qc.toml"
    path.write_text('redis_ulr = "redis://x"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert "did you mean 'redis_url'?" in result.output


def test_import_of_cli_and_light_verbs_pulls_no_heavy_module() -> None:
    code = ("import sys, qc.cli, qc.commands.status, qc.commands.up; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines() if "|" in line}
    assert not imported & set(HEAVY)


def test_python_dash_m_qc_works_like_qc() -> None:
    out = subprocess.run([sys.executable, "-m", "qc", "--version"], capture_output=True, text=True,
                         check=True, timeout=60)
    assert __version__ in out.stdout


def test_internal_error_is_one_line_without_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    import qc.commands.status as status

    def boom(settings: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(status, "connect", boom)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: internal error: RuntimeError: kaboom; rerun with --debug"
    debug = CliRunner().invoke(cli, ["--debug", "status"])
    assert isinstance(debug.exception, RuntimeError)
