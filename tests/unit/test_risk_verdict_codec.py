"""`qc risk`'s verdict on a signal through its codec: round trip, verdicts from before the version, garbage refused."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from qc.core.codec import Absent
from qc.risk.codec import RiskVerdict

AT = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)


def test_round_trip() -> None:
    v = RiskVerdict("sig1", "SPY", "0dte", False, ("TRADING_HALTED",), ("account halted",), AT)
    assert RiskVerdict.from_redis(v.to_redis(), key="k") == v


def test_a_verdict_written_before_the_version_field_reads_the_same() -> None:
    old = json.dumps({"signal": "sig1", "symbol": "SPY", "strategy": "0dte", "approved": True, "codes": [],
                      "reasons": [], "at": AT.isoformat()})
    got = RiskVerdict.from_redis(old, key="k")
    assert isinstance(got, RiskVerdict) and got.approved is True


@pytest.mark.parametrize("doc", [
    {"signal": "s", "approved": "yes", "at": AT.isoformat()},  # a string is not a verdict
    {"signal": "s", "approved": 1, "at": AT.isoformat()},
    {"signal": "s", "approved": True, "codes": "TRADING_HALTED", "at": AT.isoformat()},
    {"signal": "", "approved": True, "at": AT.isoformat()},
    {"signal": "s", "approved": True},
])
def test_garbage_is_absent_never_a_verdict(doc: dict[str, object]) -> None:
    assert isinstance(RiskVerdict.from_redis(json.dumps(doc), key="k"), Absent)
    assert isinstance(RiskVerdict.from_redis("not json", key="k"), Absent)
