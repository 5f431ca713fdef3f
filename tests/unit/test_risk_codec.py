"""The trading-state latch round-trips through Redis' JSON; anything else reads as Absent, never ACTIVE."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import keys
from qc.core.codec import Absent
from qc.risk.codec import latch_from_redis, latch_to_redis, latches_from_redis
from qc.risk.state import Latch, TradingState

T0 = datetime(2026, 12, 3, 16, 0, tzinfo=timezone.utc)


@given(st.sampled_from(list(TradingState)), st.text(max_size=30), st.text(max_size=30), st.text(max_size=80),
       st.one_of(st.none(), st.datetimes(timezones=st.just(timezone.utc))))
def test_round_trip(state: TradingState, cause: str, by: str, reason: str, since: datetime | None) -> None:
    latch = Latch(state, cause, by, reason, since)
    assert latch_from_redis(latch_to_redis(latch), key="k") == latch


@pytest.mark.parametrize(("raw", "field"), [
    ('{"v": 1, "state": "PAUSED"}', "state"),
    ('{"v": 1}', "state"),
    ('{"state": "HALTED"}', "v"),
    ('{"v": 1, "state": "HALTED", "since": "yesterday"}', "since"),
    ("not json", "malformed"),
])
def test_a_bad_value_is_absent_naming_the_field(raw: str, field: str) -> None:
    got = latch_from_redis(raw, key="risk:state:DU1[SPY]")
    assert isinstance(got, Absent) and field in got.reason


def test_a_hash_reads_every_scope_and_keeps_the_bad_one_visible() -> None:
    good = latch_to_redis(Latch(TradingState.HALTED, "operator", "operator:ops", "fat finger", T0))
    got = latches_from_redis({"account": good, "SPY": "{}"}, key="risk:state:DU1")
    assert got["account"] == Latch(TradingState.HALTED, "operator", "operator:ops", "fat finger", T0)
    assert isinstance(got["SPY"], Absent)
    assert json.loads(good)["state"] == "HALTED"


def test_the_latch_never_expires_and_its_log_does() -> None:
    assert keys.trading_state("DU1").ttl_s is None and keys.trading_state("DU1").name == "risk:state:DU1"
    assert keys.trading_state_log("DU1").ttl_s == 30 * 86400
