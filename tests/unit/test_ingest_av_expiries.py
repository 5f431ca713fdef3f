"""Which expiries `qc chains` fetches: 0, 1 and ~14 DTE plus the monthly, on the XNYS calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qc.core import clock
from qc.ingest.expiries import monthly_expiry, traded_expiries


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(("now", "expected"), [
    # Tuesday 10:00 New York: today, tomorrow, 14 days on, December's third Friday
    ("2026-11-24T15:00", ("2026-11-24", "2026-11-25", "2026-12-08", "2026-12-18")),
    # after Tuesday's close: Wednesday is 0 DTE, Thanksgiving (Thu) skipped for 1 DTE
    ("2026-11-24T21:30", ("2026-11-25", "2026-11-27", "2026-12-09", "2026-12-18")),
    # Black Friday closes at 13:00: a minute before it is still 0 DTE, a minute after it is not
    ("2026-11-27T17:59", ("2026-11-27", "2026-11-30", "2026-12-11", "2026-12-18")),
    ("2026-11-27T18:01", ("2026-11-30", "2026-12-01", "2026-12-14", "2026-12-18")),
    # Thursday evening before Good Friday: next session is Monday; April's monthly is the 17th
    ("2026-04-02T21:00", ("2026-04-06", "2026-04-07", "2026-04-20", "2026-04-17")),
    # the monthly's own close: at 15:59 it is the monthly and 0 DTE; after, January's
    # (+14 is New Year's Day: 2026-12-31 is one day away, 2027-01-04 three)
    ("2026-12-18T20:59", ("2026-12-18", "2026-12-21", "2026-12-31", "2026-12-18")),
    ("2026-12-18T21:01", ("2026-12-21", "2026-12-22", "2027-01-04", "2027-01-15")),
])
def test_known_instants(now: str, expected: tuple[str, str, str, str]) -> None:
    t = traded_expiries(utc(now))
    assert (t.dte0.isoformat(), t.dte1.isoformat(), t.dte14.isoformat(), t.monthly.isoformat()) == expected
    assert t.dates == tuple(sorted(set(map(date.fromisoformat, expected))))


def test_holiday_third_fridays_move_to_the_session_before() -> None:
    assert monthly_expiry(2025, 4) == date(2025, 4, 17)  # Good Friday 2025-04-18
    assert monthly_expiry(2026, 6) == date(2026, 6, 18)  # Juneteenth 2026-06-19
    assert monthly_expiry(2026, 11) == date(2026, 11, 20)


def test_day_14_on_a_holiday_takes_the_nearest_session() -> None:
    t = traded_expiries(utc("2026-11-12T15:00"))  # +14 is Thanksgiving (Thursday 2026-11-26)
    assert t.dte14 == date(2026, 11, 27)  # 13 and 15 days are both a day away: the later one


FIRST, LAST = datetime(2025, 1, 2), datetime(2028, 12, 1)  # noqa: DTZ001 (hypothesis takes naive bounds)


@given(st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(timezone.utc)))
def test_properties(now: datetime) -> None:
    t = traded_expiries(now)
    assert all(clock.is_session(d) for d in t.dates)
    assert clock.settlement_instant(t.dte0) > now
    assert clock.settlement_instant(t.dte0) - now <= timedelta(days=5)  # the nearest live session
    assert t.dte1 == clock.next_session_after(t.dte0).day
    assert abs((t.dte14 - t.dte0).days - 14) <= 2
    assert t.monthly >= t.dte0 and 14 <= t.monthly.day <= 21 and (t.monthly - t.dte0).days <= 40
    assert list(t.dates) == sorted(set(t.dates)) and len(t.dates) >= 3
