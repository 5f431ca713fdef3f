"""Status thresholds are the product sheet's: each breach flips exactly its own check."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.core import keys
from qc.core.codec import MISSING, Absent
from qc.runtime.health import Check, Readings, evaluate, read
from qc.runtime.store import Store

NOW = 1_800_000_000.0
GOOD = Readings(now_epoch=NOW, heartbeats={"supervisor": NOW - 2, "ibkr_ingestion": NOW - 1},
                ibkr_connected=True, stale={}, breaches_last_hour=3, failed_orders_last_hour=5,
                av_tokens_left=10)


def missing(key: str) -> Absent:
    return Absent(key, MISSING)


def failing(r: Readings) -> list[str]:
    return [c.check for c in evaluate(r) if not c.ok]


def test_all_good_at_the_thresholds() -> None:
    assert failing(GOOD) == []


def test_each_threshold_flips_its_check() -> None:
    assert failing(replace(GOOD, heartbeats={**GOOD.heartbeats, "supervisor": NOW - 30.5})) == [
        "heartbeat:supervisor"]
    assert failing(replace(GOOD, heartbeats={**GOOD.heartbeats, "analytics": missing("heartbeat:analytics")})) == [
        "heartbeat:analytics"]
    assert failing(replace(GOOD, ibkr_connected=False)) == ["ibkr:connected"]
    assert failing(replace(GOOD, stale={"SPY:depth": NOW - 11})) == ["stale feeds"]
    assert failing(replace(GOOD, stale={"SPY:depth": NOW - 9})) == []
    assert failing(replace(GOOD, breaches_last_hour=4)) == ["risk breaches/h"]
    assert failing(replace(GOOD, failed_orders_last_hour=6)) == ["failed orders/h"]
    assert failing(replace(GOOD, av_tokens_left=9)) == ["alpha vantage tokens"]


def test_missing_optional_sources_are_not_alerts_unless_expected() -> None:
    quiet = replace(GOOD, heartbeats={"supervisor": NOW}, ibkr_connected=missing("ibkr:connected"),
                    av_tokens_left=missing("monitoring:alpha_vantage:metrics"))
    assert failing(quiet) == []
    assert failing(replace(quiet, heartbeats={"supervisor": NOW, "ibkr_ingestion": NOW})) == ["ibkr:connected"]


def test_nothing_running_is_an_alert() -> None:
    assert failing(replace(GOOD, heartbeats={}, ibkr_connected=missing("ibkr:connected"))) == ["workers"]


# --- health.read: every monitoring value through its codec; a bad one is a finding, never a crash ---


class FakeStore:
    """The four reads ``health.read`` makes, over plain dicts keyed by Redis key name."""

    def __init__(self, strings: dict[str, str], hashes: dict[str, dict[str, str]]) -> None:
        self.strings, self.hashes = strings, hashes

    def get(self, key: keys.Key) -> str | None:
        return self.strings.get(key.name)

    def hgetall(self, key: keys.Key) -> dict[str, str]:
        return dict(self.hashes.get(key.name, {}))

    def count_events(self, log_key: keys.Key, since_epoch: float) -> int:
        return 0


def entry(**overrides: object) -> str:
    doc = {"v": 1, "pid": 42, "host": "h", "started": NOW - 100, "cycles": 3, **overrides}
    return json.dumps({k: v for k, v in doc.items() if v is not None})


def checks_for(strings: dict[str, str], hashes: dict[str, dict[str, str]]) -> dict[str, Check]:
    base_hashes = {"monitoring:workers": {"supervisor": entry()}}
    store = FakeStore({"heartbeat:supervisor": f"{NOW - 1:.3f}", **strings}, {**base_hashes, **hashes})
    return {c.check: c for c in evaluate(read(cast(Store, store), NOW))}


def test_read_of_good_values_is_healthy() -> None:
    checks = checks_for({}, {"monitoring:alpha_vantage:metrics": {"v": "1", "tokens_left": "40", "requests": "2"},
                             "monitoring:data:stale": {"SPY:depth": f"{NOW - 3:.3f}"}})
    assert all(c.ok for c in checks.values()), checks
    assert checks["alpha vantage tokens"].value == "40"


@pytest.mark.parametrize(("raw", "why"), [("abc", "not a number"), ("nan", "not finite"), ("inf", "not finite"),
                                          ("-5", "outside"), ("1800000000000", "outside")])
def test_an_unreadable_heartbeat_is_an_alert_with_its_reason(raw: str, why: str) -> None:
    check = checks_for({"heartbeat:supervisor": raw}, {})["heartbeat:supervisor"]
    assert not check.ok and "malformed" in check.value and why in check.value


@pytest.mark.parametrize(("raw", "why"), [
    (entry(host=None), "host missing (partial value)"),
    ("{}", "old version"),  # what `qc status` tests wrote before entries were versioned
    (entry(v=None), "old version"),
    (entry(v=0), "old version"),
    ("not json", "malformed"),
    ("[1, 2]", "not an object"),
    (entry(pid=-1), "pid"),
    (entry(started=float("1e300")), "started"),
])
def test_an_unreadable_registry_entry_is_an_alert_and_still_registers_the_module(raw: str, why: str) -> None:
    checks = checks_for({}, {"monitoring:workers": {"supervisor": entry(), "analytics": raw}})
    bad = checks["monitoring:workers[analytics]"]
    assert not bad.ok and why in bad.value
    assert checks["heartbeat:analytics"].value == "missing (worker died?)"  # registered, so expected to beat


@pytest.mark.parametrize(("stale", "why"), [({"SPY:depth": "soon"}, "not a number"),
                                            ({"depth": f"{NOW:.0f}"}, "symbol"),
                                            ({"SPY:depth": "nan"}, "not finite")])
def test_an_unreadable_stale_mark_is_an_alert(stale: dict[str, str], why: str) -> None:
    check = checks_for({}, {"monitoring:data:stale": stale})["stale feeds"]
    assert not check.ok and why in check.value


def test_an_unreadable_connection_flag_is_an_alert() -> None:
    check = checks_for({"ibkr:connected": "yes"}, {})["ibkr:connected"]
    assert not check.ok and "'yes'" in check.value


@pytest.mark.parametrize(("metrics", "ok", "shown"), [
    ({"tokens_left": "40"}, False, "old version"),
    ({"v": "2", "tokens_left": "40"}, False, "old version"),
    ({"v": "1", "tokens_left": "-1"}, False, "outside"),
    ({"v": "1", "tokens_left": "4.5"}, False, "not an integer"),
    ({"v": "1", "requests": "1"}, True, "n/a"),  # qc chains has not taken a token yet
])
def test_alpha_vantage_metrics_are_read_through_their_codec(metrics: dict[str, str], ok: bool, shown: str) -> None:
    check = checks_for({}, {"monitoring:alpha_vantage:metrics": metrics})["alpha vantage tokens"]
    assert check.ok is ok and shown in check.value


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["heartbeat:supervisor", "heartbeat:ibkr_ingestion", "ibkr:connected"]),
                       st.text(max_size=12)),
       st.dictionaries(st.sampled_from(["monitoring:workers", "monitoring:data:stale",
                                        "monitoring:alpha_vantage:metrics"]),
                       st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=3)))
def test_any_monitoring_garbage_gives_a_table_never_a_crash(strings: dict[str, str],
                                                          hashes: dict[str, dict[str, str]]) -> None:
    checks = evaluate(read(cast(Store, FakeStore(strings, hashes)), NOW))
    assert checks and all(isinstance(c.value, str) and c.value for c in checks)
