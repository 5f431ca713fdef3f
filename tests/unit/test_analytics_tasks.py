"""`qc analytics --task` restricts a run to the named tasks (the cron scripts rely on it)."""

from __future__ import annotations

import pytest

from qc.analytics.cycle.loop import PERIODS, AnalyticsCycle
from qc.core.config import Settings
from qc.runtime.store import connect


def test_only_the_chosen_tasks_are_scheduled() -> None:
    store = connect(Settings(redis_url="redis://127.0.0.1:1"))  # never contacted: no cycle runs here
    assert AnalyticsCycle(store, ("SPY",), tasks=("flow",)).tasks == {"flow"}
    assert AnalyticsCycle(store, ("SPY",), tasks=("vpin",)).tasks == {"vpin"}
    assert AnalyticsCycle(store, ("SPY",)).tasks == set(PERIODS)
    with pytest.raises(ValueError, match="unknown"):
        AnalyticsCycle(store, ("SPY",), tasks=("regime-eod",))


def test_cron_scripts_name_existing_tasks() -> None:
    from pathlib import Path

    scripts = Path(__file__).parents[2] / "scripts"
    for name, task in (("regime-eod.sh", "positioning"), ("flow-refit.sh", "flow")):
        text = (scripts / name).read_text()
        assert f"--task {task}" in text and task in PERIODS
