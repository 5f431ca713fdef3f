"""Clocks and XNYS market time: early closes, holidays, DST, settlement instants."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from qc.core import clock
from qc.core.clock import NEW_YORK, FakeClock, SimAnchor, SimClock


def ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(timezone.utc)


def test_fake_clock_moves_only_when_told() -> None:
    c = FakeClock(datetime(2026, 11, 24, 15, tzinfo=timezone.utc))
    assert c.now() == c.now()
    assert c.wait(30) is False
    assert c.now() == datetime(2026, 11, 24, 15, 0, 30, tzinfo=timezone.utc)
    stop = threading.Event()
    stop.set()
    assert c.wait(30, stop) is True
    assert c.epoch() == c.now().timestamp()


def test_fake_clock_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        FakeClock(datetime(2026, 1, 1))  # noqa: DTZ001


def test_sim_anchor_runs_at_speed() -> None:
    anchor = SimAnchor(real_epoch=1000.0, sim_epoch=5000.0, speed=10.0)
    assert anchor.sim_at(1000.0) == 5000.0
    assert anchor.sim_at(1001.5) == 5015.0


def test_sim_clock_derives_time_from_anchor_and_follows_refresh() -> None:
    real = clock.wall_epoch()
    start = ny(2026, 11, 24, 15, 40).timestamp()
    anchors = [SimAnchor(real, start, 10.0)]
    sim = SimClock(anchors[0], refresh=lambda: anchors[-1], refresh_every_s=0.0)
    assert abs(sim.epoch() - start) < 5.0  # 10x of well under half a second
    anchors.append(SimAnchor(real, start + 3600, 10.0))
    assert sim.epoch() - start > 3590
    anchors.append(None)  # type: ignore[arg-type]  # an expired anchor keeps the last one
    assert sim.epoch() - start > 3590
    assert sim.now().tzinfo is not None


def test_sessions_and_early_close() -> None:
    friday = clock.session(date(2026, 11, 27))  # the day after Thanksgiving closes at 13:00
    assert friday is not None and friday.early_close
    assert friday.close == ny(2026, 11, 27, 13, 0)
    assert clock.session(date(2026, 11, 26)) is None  # Thanksgiving
    normal = clock.session(date(2026, 11, 24))
    assert normal is not None and normal.open == ny(2026, 11, 24, 9, 30) and not normal.early_close


def test_settlement_instant() -> None:
    assert clock.settlement_instant(date(2026, 11, 24)) == datetime(2026, 11, 24, 21, 0, tzinfo=timezone.utc)
    assert clock.settlement_instant(date(2026, 7, 24)) == datetime(2026, 7, 24, 20, 0, tzinfo=timezone.utc)
    assert clock.settlement_instant(date(2026, 11, 27)) == ny(2026, 11, 27, 13, 0)
    # Good Friday 2026-04-03: a holiday expiry settles at the previous session's close
    assert clock.settlement_instant(date(2026, 4, 3)) == ny(2026, 4, 2, 16, 0)


def test_dst_weekend_is_71_hours() -> None:
    valuation = datetime(2026, 3, 6, 21, 0, tzinfo=timezone.utc)
    assert clock.settlement_instant(date(2026, 3, 9)) - valuation == timedelta(hours=71)


def test_minutes_to_close_and_open_state() -> None:
    assert clock.minutes_to_close(ny(2026, 11, 24, 15, 59)) == pytest.approx(1.0)
    assert clock.minutes_to_close(ny(2026, 11, 27, 12, 30)) == pytest.approx(30.0)
    assert clock.minutes_to_close(ny(2026, 11, 24, 16, 0)) is None
    assert clock.is_market_open(ny(2026, 11, 24, 9, 30))
    assert not clock.is_market_open(ny(2026, 11, 24, 9, 29))
    assert not clock.is_market_open(ny(2026, 11, 26, 12, 0))


def test_most_recent_and_next_session() -> None:
    assert clock.most_recent_session(ny(2026, 11, 26, 12, 0)).day == date(2026, 11, 25)
    assert clock.most_recent_session(ny(2026, 11, 24, 8, 0)).day == date(2026, 11, 23)
    assert clock.most_recent_session(ny(2026, 11, 24, 10, 0)).day == date(2026, 11, 24)
    assert clock.next_session_after(date(2026, 11, 25)).day == date(2026, 11, 27)
