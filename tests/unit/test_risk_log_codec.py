"""The risk log values through their codec: latch transitions (log and breaches) and breaker readings."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core.codec import Absent
from qc.risk.breakers import Reading
from qc.risk.codec import TransitionEntry, readings_from_redis, readings_to_redis, views
from qc.risk.cycle.latches import Transition
from qc.risk.state import Latch, TradingState

T0 = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)
STATES = st.sampled_from(list(TradingState))


@given(st.text(min_size=1, max_size=10), STATES, STATES, st.text(max_size=20), st.text(max_size=20),
       st.text(max_size=60), st.one_of(st.none(), st.datetimes(timezones=st.just(timezone.utc))))
def test_a_transition_round_trips(scope: str, before: TradingState, after: TradingState, cause: str, by: str,
                                  reason: str, at: datetime | None) -> None:
    entry = TransitionEntry(scope, before, after, cause, by, reason, at)
    assert TransitionEntry.from_redis(entry.to_redis(), key="k") == entry


def test_a_latch_change_is_logged_as_its_before_and_after() -> None:
    after = Latch(TradingState.REDUCING, "zero_gamma_flip", "breaker:zero_gamma", "spot at flip", T0)
    t = Transition("SPY", Latch(), after)
    view = t.entry().view()
    assert view == {"scope": "SPY", "from": "ACTIVE", "to": "REDUCING", "cause": "zero_gamma_flip",
                    "by": "breaker:zero_gamma", "reason": "spot at flip", "at": T0.isoformat()}
    assert json.loads(t.entry().to_redis())["v"] == 1


def test_an_entry_logged_before_the_version_field_reads_the_same() -> None:
    old = json.dumps({"scope": "account", "from": "ACTIVE", "to": "HALTED", "cause": "operator", "by": "operator:ops",
                      "reason": "fat finger", "at": T0.isoformat()})
    assert TransitionEntry.from_redis(old, key="k") == TransitionEntry(
        "account", TradingState.ACTIVE, TradingState.HALTED, "operator", "operator:ops", "fat finger", T0)


@pytest.mark.parametrize(("doc", "field"), [
    ({"scope": "account", "from": "ACTIVE", "to": "PAUSED"}, "to"),
    ({"scope": "account", "to": "HALTED"}, "from"),
    ({"scope": "", "from": "ACTIVE", "to": "HALTED"}, "scope"),
    ({"scope": "account", "from": "ACTIVE", "to": "HALTED", "at": "yesterday"}, "at"),
    ({"v": 99, "scope": "account", "from": "ACTIVE", "to": "HALTED"}, "v"),
])
def test_a_bad_transition_is_absent_naming_the_field(doc: dict[str, object], field: str) -> None:
    got = TransitionEntry.from_redis(json.dumps(doc), key="risk:state:log:DU1")
    assert isinstance(got, Absent) and field in got.reason, got
    assert isinstance(TransitionEntry.from_redis("[1, 2]", key="k"), Absent)


def test_breaker_readings_round_trip_in_order() -> None:
    readings = (Reading("account", "daily_loss", "-1,200", "-5,000", "next session"),
                Reading("SPY", "vpin", "0.41", "0.60", "0.50"))
    assert readings_from_redis(readings_to_redis(readings), key="k") == readings
    assert readings_from_redis(readings_to_redis(()), key="k") == ()


@pytest.mark.parametrize(("raw", "field"), [
    ('{"scope": "SPY"}', "not a list"),
    ('[{"scope": "SPY", "breaker": "vpin", "value": "0.4", "trips_at": "0.6"}]', "readings[0].clears_at"),
    ('[{"scope": "SPY", "breaker": "vpin", "value": 0.4, "trips_at": "0.6", "clears_at": "0.5"}]',
     "readings[0].value"),
    ("[7]", "readings[0]"),
])
def test_bad_readings_are_absent_naming_the_field(raw: str, field: str) -> None:
    got = readings_from_redis(raw, key="risk:breakers:DU1")
    assert isinstance(got, Absent) and field in got.reason, got


def test_an_entry_that_does_not_decode_is_left_out_of_the_view_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    good = TransitionEntry("SPY", TradingState.ACTIVE, TradingState.HALTED, "vpin", "breaker:vpin", "0.7", T0)
    got = views([good.to_redis(), "garbage", good.to_redis()], "risk:state:log:DU1",
                lambda raw: TransitionEntry.from_redis(raw, key="risk:state:log:DU1"))
    assert got == [good.view(), good.view()]
    assert "garbage" in caplog.text and "risk:state:log:DU1" in caplog.text
