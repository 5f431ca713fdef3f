"""The sample Prometheus files hold together: alert rules name only series `/metrics` exports, with the
labels those series carry, and the runbook's thresholds are exactly qc.runtime.health's.

No YAML library is a dependency, so the files keep to a strict subset (block mappings and sequences,
plain or double-quoted scalars, one-line JSON lists, whole-line comments) that :func:`load` reads and
refuses to guess beyond: a construct outside it fails this test instead of being misread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from qc.analytics.cycle.loop import PERIODS
from qc.core.config import Settings
from qc.dashboard.metrics_catalog import SPECS, Spec
from qc.runtime.health import (
    AV_TOKENS_MIN,
    BREACHES_PER_HOUR_MAX,
    FAILED_ORDERS_PER_HOUR_MAX,
    HEARTBEAT_MAX_AGE_S,
    STALE_MAX_AGE_S,
)

DEPLOY = Path(__file__).parents[2] / "deploy" / "prometheus"
KEY = re.compile(r"([A-Za-z_][\w-]*):(?: (.*)|)$")
PLAIN_UNSAFE = re.compile(r"^[\[\]{}&*!|>'%@`#,?-]|: | #")


def load(text: str) -> Any:
    """The strict YAML subset described in the module docstring."""
    lines = [(len(raw) - len(raw.lstrip(" ")), raw.strip()) for raw in text.splitlines()
             if raw.strip() and not raw.strip().startswith("#")]
    assert all("\t" not in content for _, content in lines), "tabs are not YAML indentation"
    value, end = _block(lines, 0, lines[0][0])
    assert end == len(lines), f"unparsed from line {lines[end]}"
    return value


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items: list[Any] = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            item = lines[i][1][2:]
            if KEY.match(item):  # a mapping whose first key sits on the dash's line
                lines[i] = (indent + 2, item)
                value, i = _block(lines, i, indent + 2)
            else:
                value, i = _scalar(item), i + 1
            items.append(value)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        found = KEY.match(lines[i][1])
        assert found, f"not a 'key: value' line: {lines[i][1]!r}"
        name, rest = found.group(1), found.group(2)
        assert name not in mapping, f"duplicate key {name}"
        if rest:
            mapping[name], i = _scalar(rest), i + 1
        else:
            assert i + 1 < len(lines) and lines[i + 1][0] > indent, f"{name}: no value"
            mapping[name], i = _block(lines, i + 1, lines[i + 1][0])
    assert i == len(lines) or lines[i][0] < indent, f"bad indentation at {lines[i][1]!r}"
    return mapping, i


def _scalar(text: str) -> Any:
    if text.startswith('"'):
        assert text.endswith('"') and len(text) > 1, f"unterminated string {text!r}"
        return json.loads(text)  # YAML's double-quoted escapes we use (\\ and \") are JSON's
    if text.startswith("["):
        got = json.loads(text)
        assert isinstance(got, list), text
        return got
    assert not PLAIN_UNSAFE.search(text), f"quote this value: {text!r}"
    return text


def test_the_subset_reader_refuses_what_it_cannot_read() -> None:
    assert load('a:\n  - b: "x: y"\n    c: [1, 2]\n  - plain\n') == {"a": [{"b": "x: y", "c": [1, 2]}, "plain"]}
    for bad in ("a: {b: 1}\n", "a: x: y\n", "a:\n  b: 1\n   c: 2\n", "a: 'single'\n", "a: x #comment\n"):
        with pytest.raises(AssertionError):
            load(bad)


RULES = load((DEPLOY / "qc-alerts.yml").read_text())
ALL_RULES = [rule for group in RULES["groups"] for rule in group["rules"]]
SAMPLES: dict[str, Spec] = {name: spec for spec in SPECS for name in spec.samples}
SELECTOR = re.compile(r"\b(qc_\w+)(?:\{([^}]*)\})?")


def test_the_rules_file_has_prometheus_shape() -> None:
    assert set(RULES) == {"groups"}
    assert [g["name"] for g in RULES["groups"]] == ["qc-runbook", "qc-warnings"]
    names = [rule["alert"] for rule in ALL_RULES]
    assert len(names) == len(set(names))
    for rule in ALL_RULES:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["alert"].startswith("Qc") and rule["expr"], rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    for group, severity in (("qc-runbook", "critical"), ("qc-warnings", "warning")):
        rules = next(g for g in RULES["groups"] if g["name"] == group)["rules"]
        assert {r["labels"]["severity"] for r in rules} == {severity}


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r["alert"])
def test_every_rule_names_series_the_dashboard_exports_with_their_labels(rule: dict[str, Any]) -> None:
    used = SELECTOR.findall(rule["expr"])
    assert used or rule["alert"] == "QcDashboardDown"  # `up` is Prometheus' own
    for name, matchers in used:
        assert name in SAMPLES, f"{rule['alert']}: {name} is not exported by qc.dashboard.metrics"
        labels = {m.split("=")[0].strip().rstrip("!~") for m in matchers.split(",") if m.strip()}
        assert labels <= set(SAMPLES[name].labels), f"{rule['alert']}: {name} has no label {labels}"


RUNBOOK = {  # alert -> (its exact expression, the figure the summary must state)
    "QcHeartbeatLate": (f"qc_heartbeat_age_seconds > {HEARTBEAT_MAX_AGE_S:g}", f"{HEARTBEAT_MAX_AGE_S:g} s"),
    "QcStaleFeed": (f"qc_stale_feed_age_seconds > {STALE_MAX_AGE_S:g}", f"{STALE_MAX_AGE_S:g} s"),
    "QcRiskBreaches": (f"qc_risk_breaches_last_hour > {BREACHES_PER_HOUR_MAX}", f"more than {BREACHES_PER_HOUR_MAX}"),
    "QcFailedOrders": (f"qc_orders_failed_last_hour > {FAILED_ORDERS_PER_HOUR_MAX}",
                       f"more than {FAILED_ORDERS_PER_HOUR_MAX}"),
    "QcAlphaVantageBudgetLow": (f"qc_alpha_vantage_tokens_left < {AV_TOKENS_MIN:g}", f"fewer than {AV_TOKENS_MIN:g}"),
    "QcPositioningBehind": (f'qc_analytics_task_last_seconds{{task="positioning"}} > {PERIODS["positioning"]:g}',
                            f"{PERIODS['positioning']:g} s cadence"),
}


@pytest.mark.parametrize("alert", sorted(RUNBOOK))
def test_thresholds_are_the_runbooks(alert: str) -> None:
    rule = next(r for r in ALL_RULES if r["alert"] == alert)
    expr, stated = RUNBOOK[alert]
    assert rule["expr"] == expr
    assert stated in rule["annotations"]["summary"]


def test_the_scrape_config_matches_the_dashboards_defaults_and_holds_no_token() -> None:
    text = (DEPLOY / "prometheus.yml").read_text()
    config = load(text)
    assert config["rule_files"] == ["qc-alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    defaults = Settings()
    local = jobs["qc-dashboard"]
    assert local["metrics_path"] == "/metrics" and "authorization" not in local
    assert local["static_configs"][0]["targets"] == [f"{defaults.dashboard_host}:{defaults.dashboard_port}"]
    remote = jobs["qc-dashboard-remote"]
    assert remote["authorization"]["type"] == "Bearer"
    assert set(remote["authorization"]) == {"type", "credentials_file"}  # read from a file, never inline
    assert "bearer_token:" not in text and "credentials:" not in text
