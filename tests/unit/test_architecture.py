"""The architecture's rules hold, and `make lint` really catches a wrong-way import.

import-linter's contracts live in pyproject.toml. These tests copy the package to a temporary
directory, check the copy passes, then add one forbidden import at a time and check lint-imports
fails naming the broken rule: a contract that cannot fail would pass here too and be caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("arch")
    shutil.copytree(ROOT / "qc", dst / "qc", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    got = lint(tree)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-2000:]


WRONG_WAY = [
    ("qc/analytics/greeks.py", "import redis", "Domain code is pure"),
    ("qc/ingest/book.py", "import ib_async", "Domain code is pure"),
    ("qc/core/keys.py", "from qc.runtime import store", "One direction"),
    ("qc/analytics/exposure.py", "from qc.runtime import store", "Only glue uses the Redis runtime"),
    ("qc/analytics/cycle/loop.py", "from qc.ingest.cycle import stream_writer", "glue is its own"),
    ("qc/analytics/cycle/loop.py", "from qc.ingest import book", "only through ingestion's codec"),
    ("qc/runtime/health.py", "from qc.sim import control", "never imports the simulator"),
    ("qc/commands/gex.py", "import numpy", "Commands glue"),
    ("qc/signals/scoring.py", "from qc.analytics import vpin", "only through their codecs"),
    ("qc/signals/factors.py", "from qc.signals.cycle import loop", "signals' own"),
    ("qc/risk/pretrade.py", "from qc.risk.cycle import latches", "risk's own"),
    ("qc/risk/market.py", "from qc.analytics import positioning", "Risk reads analytics, ingestion and signals"),
    ("qc/risk/snapshot.py", "from qc.signals import model", "Risk reads analytics, ingestion and signals"),
    ("qc/distribute/policy.py", "import requests", "Domain code is pure"),
    ("qc/distribute/render.py", "from qc.distribute.cycle import sent", "distribute's own"),
    ("qc/distribute/render.py", "from qc.signals import scoring", "Distribution reads signals only"),
    ("qc/risk/model.py", "from qc.distribute import model", "One direction"),
]


@pytest.mark.parametrize(("module", "statement", "rule"), WRONG_WAY)
def test_a_wrong_way_import_fails_lint(tree: Path, module: str, statement: str, rule: str) -> None:
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{statement}  # deliberate wrong-way import\n")
    try:
        got = lint(tree)
    finally:
        path.write_text(original)
    assert got.returncode != 0
    broken = got.stdout.split("Broken contracts", 1)[-1]
    assert rule in broken, got.stdout[-3000:]


def test_the_codec_rule_lists_every_ingest_module_but_the_codec() -> None:
    """A new ingest module must be added to the codec rule (or be the codec): nothing escapes by omission."""
    rule = next(c for c in CONTRACTS if "only through ingestion's codec" in c["name"])
    modules = {f"qc.ingest.{p.stem}" for p in (ROOT / "qc" / "ingest").glob("*.py") if p.stem != "__init__"}
    expected = (modules - {"qc.ingest.codec"}) | {"qc.ingest.cycle"}
    assert set(rule["forbidden_modules"]) == expected


def test_the_signals_codec_rule_lists_every_analytics_and_ingest_module_but_the_codecs() -> None:
    rule = next(c for c in CONTRACTS if "Signals read analytics and ingestion" in c["name"])
    modules = {f"qc.{pkg}.{p.stem}" for pkg in ("analytics", "ingest")
               for p in (ROOT / "qc" / pkg).glob("*.py") if p.stem != "__init__"}
    expected = (modules - {"qc.analytics.codec", "qc.ingest.codec"}) | {"qc.analytics.cycle", "qc.ingest.cycle"}
    assert set(rule["forbidden_modules"]) == expected


def test_the_risk_codec_rule_lists_every_analytics_ingest_and_signals_module_but_the_codecs() -> None:
    rule = next(c for c in CONTRACTS if "Risk reads analytics, ingestion and signals" in c["name"])
    modules = {f"qc.{pkg}.{p.stem}" for pkg in ("analytics", "ingest", "signals")
               for p in (ROOT / "qc" / pkg).glob("*.py") if p.stem != "__init__"}
    allowed = {"qc.analytics.codec", "qc.ingest.codec", "qc.signals.codec", "qc.analytics.greeks",
               "qc.analytics.normal"}
    expected = (modules - allowed) | {"qc.analytics.cycle", "qc.ingest.cycle", "qc.signals.cycle"}
    assert set(rule["forbidden_modules"]) == expected
