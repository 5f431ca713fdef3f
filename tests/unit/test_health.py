"""Status thresholds are the product sheet's: each breach flips exactly its own check."""

from __future__ import annotations

from dataclasses import replace

from qc.runtime.health import Readings, evaluate

NOW = 1_800_000_000.0
GOOD = Readings(now_epoch=NOW, heartbeats={"supervisor": NOW - 2, "ibkr_ingestion": NOW - 1},
                ibkr_connected="1", stale={}, breaches_last_hour=3, failed_orders_last_hour=5,
                av_tokens_left=10)


def failing(r: Readings) -> list[str]:
    return [c.check for c in evaluate(r) if not c.ok]


def test_all_good_at_the_thresholds() -> None:
    assert failing(GOOD) == []


def test_each_threshold_flips_its_check() -> None:
    assert failing(replace(GOOD, heartbeats={**GOOD.heartbeats, "supervisor": NOW - 30.5})) == [
        "heartbeat:supervisor"]
    assert failing(replace(GOOD, heartbeats={**GOOD.heartbeats, "analytics": None})) == ["heartbeat:analytics"]
    assert failing(replace(GOOD, ibkr_connected="0")) == ["ibkr:connected"]
    assert failing(replace(GOOD, stale={"SPY:depth": NOW - 11})) == ["stale feeds"]
    assert failing(replace(GOOD, stale={"SPY:depth": NOW - 9})) == []
    assert failing(replace(GOOD, breaches_last_hour=4)) == ["risk breaches/h"]
    assert failing(replace(GOOD, failed_orders_last_hour=6)) == ["failed orders/h"]
    assert failing(replace(GOOD, av_tokens_left=9)) == ["alpha vantage tokens"]


def test_missing_optional_sources_are_not_alerts_unless_expected() -> None:
    quiet = replace(GOOD, heartbeats={"supervisor": NOW}, ibkr_connected=None, av_tokens_left=None)
    assert failing(quiet) == []
    assert failing(replace(quiet, heartbeats={"supervisor": NOW, "ibkr_ingestion": NOW})) == ["ibkr:connected"]


def test_nothing_running_is_an_alert() -> None:
    assert failing(replace(GOOD, heartbeats={}, ibkr_connected=None)) == ["workers"]
