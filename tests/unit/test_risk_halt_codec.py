"""The halt request `qc risk halt` leaves for `qc execute`: strict, and never ignored for a missing version."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from qc.core.codec import Absent
from qc.risk.codec import HaltRequest

AT = datetime(2026, 12, 4, 15, 30, tzinfo=timezone.utc)


def test_round_trip() -> None:
    request = HaltRequest("1796-ab12", AT, "ops", "fat finger")
    assert HaltRequest.from_redis(request.to_redis(), key="k") == request


def test_a_request_written_before_the_version_field_still_halts() -> None:
    raw = json.dumps({"id": "1796-ab12", "at": AT.isoformat(), "by": "ops", "reason": ""})
    got = HaltRequest.from_redis(raw, key="k")
    assert isinstance(got, HaltRequest) and got.id == "1796-ab12"


@pytest.mark.parametrize("doc", [
    {"v": 1, "at": AT.isoformat()},                      # no id
    {"v": 1, "id": "", "at": AT.isoformat()},            # empty id
    {"v": 1, "id": "x", "at": "2026-12-04T15:30:00"},    # naive time
    {"v": 2, "id": "x", "at": AT.isoformat()},           # another schema
    [1, 2],
])
def test_malformed_requests_are_absent_naming_the_key(doc: object) -> None:
    got = HaltRequest.from_redis(json.dumps(doc), key="risk:halt:default")
    assert isinstance(got, Absent) and "risk:halt:default" in str(got)
