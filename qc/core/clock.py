"""The one source of time: wall clock, the simulator's clock, a fake for tests, and market hours.

Nothing else in qc reads the wall clock (ruff TID251 bans ``time.time``, ``time.sleep`` and
``datetime.now`` elsewhere), so a simulated session at 10x speed, a test that jumps a day, and
production all run the same code. Market hours, early closes, holidays and expiry instants come
from exchange_calendars' XNYS calendar, never from a table of our own.

exchange_calendars (and so pandas) is imported lazily: ``qc status`` must start fast.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Callable

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_NAME = "XNYS"
CALENDAR_FIRST_YEAR = 2005
CALENDAR_YEARS_AHEAD = 4  # covers LEAPS: expiries up to ~3 years out


class Clock(Protocol):
    """What every component asks for the time."""

    def now(self) -> datetime:
        """Current instant, tz-aware UTC."""
        ...

    def epoch(self) -> float:
        """Current instant as Unix seconds."""
        ...

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait ``seconds`` of this clock's time; return True early if ``stop`` was set."""
        ...


def monotonic() -> float:
    """Monotonic seconds for measuring durations (latency, backoff bookkeeping)."""
    return time.monotonic()


def wall_epoch() -> float:
    """Real Unix time; only for anchoring the simulator and measuring real ages."""
    return time.time()


def real_sleep(seconds: float, stop: threading.Event | None = None) -> bool:
    """Sleep real seconds, waking early when ``stop`` is set; True if stopped."""
    if seconds <= 0:
        return bool(stop and stop.is_set())
    if stop is None:
        time.sleep(seconds)
        return False
    return stop.wait(seconds)


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def epoch(self) -> float:
        return time.time()

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return real_sleep(seconds, stop)


@dataclass(frozen=True)
class SimAnchor:
    """The simulator's clock: at real time ``real_epoch`` it was ``sim_epoch``, running at ``speed``x."""

    real_epoch: float
    sim_epoch: float
    speed: float

    def sim_at(self, real_epoch: float) -> float:
        return self.sim_epoch + (real_epoch - self.real_epoch) * self.speed


class SimClock:
    """Simulated time derived locally from the anchor ``qc sim`` publishes.

    ``refresh`` (optional) returns the latest anchor, or None when it has expired; it is polled
    at most every ``refresh_every_s`` real seconds so the clock follows a restarted or re-anchored
    simulator without a round trip per call. A vanished anchor keeps the last one: time must not
    jump back to the wall clock mid-run.
    """

    def __init__(self, anchor: SimAnchor, refresh: Callable[[], SimAnchor | None] | None = None,
                 refresh_every_s: float = 1.0) -> None:
        self.anchor = anchor
        self._refresh = refresh
        self._refresh_every_s = refresh_every_s
        self._refreshed_at = time.monotonic()

    def _current(self) -> SimAnchor:
        if self._refresh is not None and time.monotonic() - self._refreshed_at >= self._refresh_every_s:
            self._refreshed_at = time.monotonic()
            fresh = self._refresh()
            if fresh is not None:
                self.anchor = fresh
        return self.anchor

    def epoch(self) -> float:
        return self._current().sim_at(time.time())

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), timezone.utc)

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        return real_sleep(seconds / self._current().speed, stop)


class FakeClock:
    """A clock for tests: time moves only when ``wait`` or ``advance`` is called."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock start must be tz-aware")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now.astimezone(timezone.utc)

    def epoch(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None and stop.is_set():
            return True
        self.advance(seconds)
        return bool(stop and stop.is_set())


# --- market time (XNYS) -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def calendar() -> Any:
    """The XNYS calendar, built once per process (about half a second)."""
    import exchange_calendars

    last_year = date.today().year + CALENDAR_YEARS_AHEAD  # noqa: DTZ011 (range of the table, not market logic)
    with warnings.catch_warnings():
        # exchange_calendars 4.13 reads Series.values on tz-aware data while building; pandas 3.1 warns.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return exchange_calendars.get_calendar(
            CALENDAR_NAME, start=f"{CALENDAR_FIRST_YEAR}-01-01", end=f"{last_year}-12-31")


@dataclass(frozen=True)
class Session:
    """One regular XNYS session, UTC instants."""

    day: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(NEW_YORK).hour < 16


def _ts(day: date) -> Any:
    import pandas as pd

    return pd.Timestamp(day)


def is_session(day: date) -> bool:
    """True when XNYS trades on ``day``."""
    return bool(calendar().is_session(_ts(day)))


@functools.lru_cache(maxsize=1024)
def session(day: date) -> Session | None:
    """The regular session of ``day``, or None on a weekend or holiday (cached: the pandas lookups cost
    ~0.7 ms, and `qc stream`'s monitor asks every second on its event loop)."""
    cal = calendar()
    ts = _ts(day)
    if not cal.is_session(ts):
        return None
    return Session(day, cal.session_open(ts).to_pydatetime().astimezone(timezone.utc),
                   cal.session_close(ts).to_pydatetime().astimezone(timezone.utc))


def session_on_or_before(day: date) -> Session:
    """The latest session on or before ``day``."""
    label = calendar().date_to_session(_ts(day), direction="previous")
    found = session(label.date())
    assert found is not None
    return found


def next_session_after(day: date) -> Session:
    """The first session strictly after ``day``."""
    label = calendar().date_to_session(_ts(day + timedelta(days=1)), direction="next")
    found = session(label.date())
    assert found is not None
    return found


def new_york_date(now: datetime) -> date:
    """The New York calendar date of an instant."""
    return now.astimezone(NEW_YORK).date()


def settlement_instant(expiry: date) -> datetime:
    """When an option expiring on ``expiry`` settles: the XNYS close of that day (13:00 NY early).

    An expiry that falls on a holiday settles at the close of the previous session, as OCC moves it
    (e.g. Good Friday monthlies trade out on Thursday).
    """
    return session_on_or_before(expiry).close


def is_market_open(now: datetime) -> bool:
    """True inside a regular session."""
    today = session(new_york_date(now))
    return today is not None and today.open <= now < today.close


def minutes_to_close(now: datetime) -> float | None:
    """Minutes until today's close while the market is open, else None."""
    today = session(new_york_date(now))
    if today is None or not today.open <= now < today.close:
        return None
    return (today.close - now).total_seconds() / 60.0


def most_recent_session(now: datetime) -> Session:
    """Today's session if it has opened, else the previous one."""
    today = session(new_york_date(now))
    if today is not None and now >= today.open:
        return today
    return session_on_or_before(new_york_date(now) - timedelta(days=1))
