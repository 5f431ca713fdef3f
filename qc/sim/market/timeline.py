"""Where and how fast simulated time runs, and the anchor every worker derives it from.

With no ``--start`` the simulator runs in real time while the market is open, and otherwise
starts at 09:45 New York of the most recent session, so `make run` always shows a live market.
An explicit start (New York wall time, e.g. "2026-11-24 15:40") must fall inside a session.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from qc.core import clock
from qc.core.clock import NEW_YORK, SimAnchor
from qc.core.errors import ConfigError

DEFAULT_OPEN_OFFSET = timedelta(minutes=15)  # 09:45: past the opening auction, book filled


def parse_start(text: str) -> datetime:
    """Parse "YYYY-MM-DD HH:MM" (New York time) into a UTC instant."""
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M")  # noqa: DTZ007 (New York, attached below)
    except ValueError:
        raise ConfigError("--start", f"expected 'YYYY-MM-DD HH:MM' in New York time, got {text!r}") from None
    return naive.replace(tzinfo=NEW_YORK).astimezone(timezone.utc)


def choose_start(real_now: datetime, start: datetime | None) -> datetime:
    """The simulated instant to start at (see the module docstring)."""
    if start is not None:
        session = clock.session(clock.new_york_date(start))
        if session is None or not session.open <= start < session.close:
            hint = "pick a time between the open and the close of a trading day"
            if session is not None:
                ny_close = session.close.astimezone(NEW_YORK).time()
                hint = f"that day trades 09:30–{ny_close:%H:%M} New York"
            raise ConfigError("--start", f"{start.astimezone(NEW_YORK):%Y-%m-%d %H:%M} New York is outside a session",
                              hint)
        return start
    if clock.is_market_open(real_now):
        return real_now
    session = clock.most_recent_session(real_now)
    return session.open + DEFAULT_OPEN_OFFSET


def anchor(real_epoch: float, sim_start: datetime, speed: float) -> SimAnchor:
    """The anchor ``qc sim`` publishes: at ``real_epoch`` simulated time is ``sim_start``."""
    if not speed > 0:
        raise ConfigError("--speed", f"must be > 0, got {speed}")
    return SimAnchor(real_epoch=real_epoch, sim_epoch=sim_start.timestamp(), speed=speed)

