"""The analytics worker's pure helpers: per-task cadence, Redis field formatting (qc.core.codec), bucket size."""

from __future__ import annotations

import math

import pytest

from qc.analytics.schedule import Schedule, Staggered, age_s
from qc.analytics.vpin import bucket_volume
from qc.core.codec import fmt, fmt_fields


def test_every_task_is_due_first_then_on_its_own_period() -> None:
    s = Schedule({"fast": 1.0, "slow": 30.0})
    assert s.due(100.0) == ["fast", "slow"]
    assert s.due(100.5) == []
    assert s.due(101.0) == ["fast"]
    assert s.due(130.0) == ["fast", "slow"]


def test_a_late_call_runs_a_task_once_not_to_catch_up() -> None:
    s = Schedule({"slow": 30.0})
    s.due(0.0)
    assert s.due(95.0) == ["slow"]
    assert s.due(100.0) == [] and s.due(125.0) == ["slow"]


def test_periods_must_be_positive() -> None:
    with pytest.raises(ValueError, match="periods"):
        Schedule({"x": 0.0})


def test_nulls_are_empty_strings_never_zero() -> None:
    assert fmt(None) == "" and fmt(math.nan) == "" and fmt(math.inf) == ""
    assert fmt(0.0) == "0.0" and fmt(3) == "3" and fmt("1") == "1"  # counts stay integers
    assert float(fmt(1.234e9)) == 1.234e9
    assert fmt_fields({"a": None, "b": 2.5}) == {"a": "", "b": "2.5"}


def test_age_and_bucket_volume() -> None:
    assert age_s(100.0, None) is None and age_s(100.0, 90.0) == 10.0 and age_s(100.0, 101.0) == 0.0
    assert bucket_volume(5_000_000.0) == 100_000.0
    assert bucket_volume(0.0) is None and bucket_volume(math.nan) is None


def test_a_slow_task_runs_every_symbol_first_then_a_slice_per_cycle_each_at_its_own_cadence() -> None:
    symbols = [f"S{i:03d}" for i in range(100)]
    stagger = Staggered(30.0)
    assert stagger.due(0.0, symbols) == symbols  # the warm start: everything at once
    runs: dict[str, list[float]] = {s: [] for s in symbols}
    per_cycle = []
    for t in range(1, 121):  # two minutes of 1-s cycles
        got = stagger.due(float(t), symbols)
        per_cycle.append(len(got))
        for s in got:
            runs[s].append(float(t))
    assert max(per_cycle[30:]) <= 4  # 100 symbols over 30 s: 3-4 per cycle, never the burst of 100
    for s in symbols:  # every symbol still every 30 s (to the cycle), none skipped
        gaps = [b - a for a, b in zip(runs[s], runs[s][1:], strict=False)]
        assert runs[s][0] <= 61 and all(29 <= g <= 31 for g in gaps), (s, runs[s])


def test_a_late_cycle_does_not_catch_up() -> None:
    stagger = Staggered(30.0)
    stagger.due(0.0, ["A", "B"])
    assert stagger.due(500.0, ["A", "B"]) == ["A", "B"]  # both overdue: run once each, not 16 times
    assert stagger.due(501.0, ["A", "B"]) == []
