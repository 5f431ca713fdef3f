"""Simulated 1-minute history: deterministic, session minutes only, continuous with the live day."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

from qc.core.clock import NEW_YORK
from qc.sim.market.market import SimMarket
from qc.sim.market.params import SimParams

PARAMS = SimParams(symbols=("SPY", "QQQ"), depth_rate_hz=50.0, bursts_per_session=0.0)


def ny(y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NEW_YORK).astimezone(timezone.utc)


def test_history_is_deterministic_whatever_the_start_and_seeded() -> None:
    end = ny(2026, 3, 6, 16, 0)
    a = SimMarket(ny(2026, 3, 10, 10, 0), PARAMS).history("SPY", end, 3 * 390)
    b = SimMarket(ny(2026, 3, 12, 14, 0), PARAMS).history("SPY", end, 3 * 390)
    assert a == b
    other = SimMarket(ny(2026, 3, 10, 10, 0), SimParams(seed=3)).history("SPY", end, 390)
    assert other != a[-390:]


def test_full_and_early_close_sessions_have_390_and_210_regular_minutes() -> None:
    m = SimMarket(ny(2026, 12, 1, 10, 0), PARAMS)
    full = m.history("QQQ", ny(2026, 11, 25, 16, 0), 390)
    assert len(full) == 390
    assert full[0].ts == ny(2026, 11, 25, 9, 30) and full[-1].ts == ny(2026, 11, 25, 15, 59)
    early = [b for b in m.history("QQQ", ny(2026, 11, 27, 23, 0), 600) if b.ts.astimezone(NEW_YORK).day == 27]
    assert len(early) == 210
    assert early[-1].ts == ny(2026, 11, 27, 12, 59)
    bars = m.history("QQQ", ny(2026, 11, 30, 16, 0), 2000)
    assert all(b.ts.astimezone(NEW_YORK).date().day != 26 for b in bars)  # Thanksgiving
    for b in bars:
        local = b.ts.astimezone(NEW_YORK)
        assert (9, 30) <= (local.hour, local.minute) < (16, 0)
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        assert b.low <= b.vwap <= b.high and b.volume > 0


def test_volume_u_shape_and_open_continues_from_previous_close() -> None:
    m = SimMarket(ny(2026, 3, 10, 10, 0), PARAMS)
    bars = m.history("SPY", ny(2026, 3, 6, 16, 0), 5 * 390)
    days = [bars[i:i + 390] for i in range(0, len(bars), 390)]
    first = sum(sum(b.volume for b in d[:30]) for d in days)
    mid = sum(sum(b.volume for b in d[180:210]) for d in days)
    last = sum(sum(b.volume for b in d[-30:]) for d in days)
    assert first > 1.5 * mid and last > 1.5 * mid
    for prev, day in itertools.pairwise(days):
        assert abs(day[0].open / prev[-1].close - 1) < 0.02


def test_live_day_starts_from_the_generated_path_and_adds_revealed_minutes() -> None:
    start = ny(2026, 3, 10, 10, 0)
    m = SimMarket(start, PARAMS)
    before = m.history("SPY", start, 30)
    assert len(before) == 30 and before[-1].ts == ny(2026, 3, 10, 9, 59)
    assert m.start_price("SPY") == before[-1].close
    assert m.history("SPY", start + timedelta(minutes=3), 30) == before  # nothing revealed yet
    m.events_until(start + timedelta(minutes=3, seconds=20))
    after = m.history("SPY", start + timedelta(minutes=3, seconds=20), 33)
    assert after[:30] == before
    assert [b.ts for b in after[30:]] == [start + timedelta(minutes=k) for k in range(3)]
    assert all(b.volume > 0 for b in after[30:])
    assert abs(after[30].open / before[-1].close - 1) < 0.001


def test_history_early_in_a_session_reaches_back_into_the_previous_one() -> None:
    from datetime import datetime, timezone

    from qc.sim.market.market import SimMarket
    from qc.sim.market.params import SimParams

    start = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)  # 10:00 New York
    market = SimMarket(start, SimParams(seed=1))
    end = datetime(2026, 11, 24, 15, 1, tzinfo=timezone.utc)
    market.events_until(end)
    bars = market.history("SPY", end, 101)
    assert len(bars) == 101
    assert bars[-1].ts == datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
    assert bars[0].ts.date().isoformat() == "2026-11-23"
