"""``monitoring:cycle:{module}`` (CycleTimes): what `qc analytics` records per cycle and `/metrics` reads back."""

from __future__ import annotations

import math

from qc.core import keys
from qc.core.codec import Absent
from qc.runtime.codec import CycleTimes, TaskTime

KEY = keys.cycle_times("analytics").name


def applied(*updates: dict[str, float]) -> dict[str, str]:
    """The hash after each ``ran`` update, as Redis applies HSET and HINCRBY."""
    fields: dict[str, str] = {}
    for seconds in updates:
        update = CycleTimes.ran(seconds)
        fields |= dict(update.fields)
        for name, n in update.increments.items():
            fields[name] = str(int(fields.get(name, "0")) + n)
    return fields


def test_runs_add_up_and_the_last_one_is_kept() -> None:
    got = CycleTimes.from_redis(applied({"cycle": 0.25, "vpin": 0.01}, {"cycle": 0.5}), key=KEY)
    assert got == CycleTimes({"cycle": TaskTime(500_000, 750_000, 2), "vpin": TaskTime(10_000, 10_000, 1)})
    assert isinstance(got, CycleTimes)
    assert CycleTimes.from_redis(got.to_redis(), key=KEY) == got


def test_a_non_finite_duration_is_not_recorded() -> None:
    assert CycleTimes.ran({"cycle": math.nan, "flow": math.inf}).increments == {}


def test_partial_foreign_or_old_hashes_are_absent_with_a_reason() -> None:
    whole = applied({"cycle": 0.1})
    partial = {k: v for k, v in whole.items() if k != "cycle:count"}
    cases = {"cycle:count": partial, "not a": {**whole, "cycle:p99": "3"}, "old version": {**whole, "v": "0"},
             "outside": {**whole, "cycle:sum_us": "-1"}}
    for reason, raw in cases.items():
        got = CycleTimes.from_redis(raw, key=KEY)
        assert isinstance(got, Absent) and reason in got.reason, (reason, got)
    assert CycleTimes.from_redis({}, key=KEY) == Absent(KEY, "missing")
