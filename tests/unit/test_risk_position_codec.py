"""The open-position hash: exact round trips, and every kind of garbage read as an Absent naming its field."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.core.codec import Absent
from qc.risk.model import BUCKETS, ContractKey, Position, stock
from qc.risk.position_codec import (
    FIELDS,
    MAX_QTY,
    PositionRecord,
    position_from_redis,
    position_to_redis,
)

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=clock.NEW_YORK)  # 20:00 UTC, inside the regular session
CALL = ContractKey("SPY", "OPT", date(2026, 12, 4), 600.0, "C")
KEY = "positions:open:DU1:9"
GOOD = position_to_redis(PositionRecord(9, Position(CALL, -2, 1.25, "0dte"), 12.5, NOW))
SHARES = position_to_redis(PositionRecord(9, Position(stock("SPY"), 100, 595.5, "other")))


def test_the_hash_is_every_field_as_a_string() -> None:
    assert set(GOOD) == set(FIELDS) and all(isinstance(v, str) for v in GOOD.values())
    assert GOOD == {"v": "1", "con_id": "9", "symbol": "SPY", "sec_type": "OPT", "expiry": "2026-12-04",
                    "strike": "600.0", "right": "C", "multiplier": "100", "qty": "-2", "avg_cost": "1.25",
                    "bucket": "0dte", "realised_today_usd": "12.5", "opened": "2026-12-02T15:00:00-05:00"}
    assert SHARES["expiry"] == SHARES["strike"] == SHARES["right"] == SHARES["opened"] == ""
    assert SHARES["multiplier"] == "1" and SHARES["sec_type"] == "STK"


def test_an_option_and_shares_read_back() -> None:
    got = position_from_redis(GOOD, key=KEY)
    assert got == PositionRecord(9, Position(CALL, -2, 1.25, "0dte"), 12.5, NOW)
    shares = position_from_redis(SHARES, key=KEY)
    assert isinstance(shares, PositionRecord) and shares.position.contract == stock("SPY")
    assert shares.opened is None and shares.realised_today_usd == 0.0


symbols = st.from_regex(r"[A-Z]{1,5}", fullmatch=True)
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])
FIRST, LAST = datetime(2000, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001 (hypothesis takes naive bounds)
instants = st.datetimes(FIRST, LAST, timezones=zones)
finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
options = st.builds(ContractKey, symbols, st.just("OPT"), st.dates(date(2000, 1, 1), date(2100, 1, 1)),
                    st.floats(0.01, 1e7, allow_nan=False), st.sampled_from(["C", "P"]),
                    st.sampled_from([1, 10, 100, 1000]))
shares = st.builds(stock, symbols)


@given(contract=st.one_of(options, shares), con_id=st.integers(1, 2**53), qty=st.integers(-MAX_QTY, MAX_QTY),
       cost=st.floats(0.0, 1e9, allow_nan=False), bucket=st.sampled_from(BUCKETS), realised=finite,
       opened=st.none() | instants)
def test_any_record_round_trips_exactly(contract: ContractKey, con_id: int, qty: int, cost: float, bucket: str,
                                        realised: float, opened: datetime | None) -> None:
    rec = PositionRecord(con_id, Position(contract, qty, cost, bucket), realised, opened)  # type: ignore[arg-type]
    back = position_from_redis(position_to_redis(rec), key=f"positions:open:DU1:{con_id}")
    assert back == rec
    assert isinstance(back, PositionRecord) and (back.opened is None) == (opened is None)


@pytest.mark.parametrize(("field", "value"), [
    ("qty", "1.5"), ("qty", "1.0"), ("qty", "true"), ("qty", "True"), ("qty", "1e3"), ("qty", "1_000"),
    ("qty", ""), ("qty", "two"), ("qty", str(MAX_QTY + 1)), ("qty", "0x10"),
    ("avg_cost", "nan"), ("avg_cost", "inf"), ("avg_cost", "-inf"), ("avg_cost", "-0.5"), ("avg_cost", ""),
    ("avg_cost", "cheap"), ("avg_cost", "true"),
    ("bucket", "2dte"), ("bucket", "0DTE"), ("bucket", ""),
    ("sec_type", "FUT"), ("sec_type", "opt"), ("sec_type", ""),
    ("expiry", ""), ("expiry", "2026-13-01"), ("expiry", "20261204"), ("expiry", "2026-12-4"), ("expiry", "soon"),
    ("strike", ""), ("strike", "-5"), ("strike", "0"), ("strike", "nan"), ("strike", "inf"), ("strike", "atm"),
    ("right", ""), ("right", "X"), ("right", "c"), ("right", "CALL"),
    ("multiplier", "0"), ("multiplier", "-100"), ("multiplier", "1.5"), ("multiplier", ""), ("multiplier", "true"),
    ("con_id", "abc"), ("con_id", "0"), ("con_id", "-9"), ("con_id", ""), ("con_id", "9.0"), ("con_id", "10"),
    ("realised_today_usd", "1e999"), ("realised_today_usd", "nan"), ("realised_today_usd", ""),
    ("realised_today_usd", "lots"),
    ("opened", "2026-12-02T15:00:00"), ("opened", "yesterday"),
    ("v", "2"), ("v", ""), ("symbol", ""),
])
def test_a_garbled_field_is_absent_naming_it(field: str, value: str) -> None:
    got = position_from_redis({**GOOD, field: value}, key=KEY)
    assert isinstance(got, Absent), (field, value, got)
    assert got.key == KEY and got.reason.startswith("malformed: ") and field in got.reason


@pytest.mark.parametrize("field", ["expiry", "strike", "right"])
def test_shares_with_an_option_field_are_absent(field: str) -> None:
    got = position_from_redis({**SHARES, field: GOOD[field]}, key=KEY)
    assert isinstance(got, Absent) and field in got.reason


@pytest.mark.parametrize("field", FIELDS)
def test_a_partial_hash_is_absent_naming_the_missing_field(field: str) -> None:
    got = position_from_redis({k: v for k, v in GOOD.items() if k != field}, key=KEY)
    assert isinstance(got, Absent) and got.key == KEY and field in got.reason


def test_a_field_that_is_not_a_string_is_absent_not_an_exception() -> None:
    got = position_from_redis({**GOOD, "qty": None}, key=KEY)  # type: ignore[dict-item]
    assert isinstance(got, Absent) and "qty" in got.reason


def test_a_gone_key_is_missing_not_malformed() -> None:
    gone = position_from_redis({}, key=KEY)
    assert isinstance(gone, Absent) and gone.reason == "missing" and not gone


def test_the_key_decides_only_when_it_ends_in_a_con_id() -> None:
    assert isinstance(position_from_redis(GOOD, key="scratch"), PositionRecord)
    assert isinstance(position_from_redis(GOOD, key="positions:open:DU1:10"), Absent)


@pytest.mark.parametrize("build", [
    lambda: PositionRecord(0, Position(CALL, 1, 1.0)),
    lambda: PositionRecord(True, Position(CALL, 1, 1.0)),
    lambda: PositionRecord(1, Position(CALL, 1, 1.0), realised_today_usd=math.nan),
    lambda: PositionRecord(1, Position(CALL, 1, 1.0), opened=NOW.replace(tzinfo=None)),
    lambda: PositionRecord(1, Position(CALL, 1, -1.0)),
    lambda: PositionRecord(1, Position(CALL, MAX_QTY + 1, 1.0)),
])
def test_a_record_the_reader_would_refuse_cannot_be_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="PositionRecord"):
        build()
