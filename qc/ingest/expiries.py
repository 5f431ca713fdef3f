"""Which expiries `qc chains` fetches: the ones qc trades (0, 1 and ~14 DTE) plus the monthly.

Pure: ``now`` is passed in; the XNYS calendar (holidays, early closes) comes from ``qc.core.clock``'s
calendar lookups, which read no clock. Definitions, each an expiry that has not settled at ``now``:

- 0 DTE: the first session whose settlement instant (16:00 New York, 13:00 on an early close) is
  after ``now``: today during and before the session, the next session after the close.
- 1 DTE: the session after the 0 DTE one.
- ~14 DTE: the session whose calendar distance from the 0 DTE session is nearest 14 days (the
  later one on a tie); a holiday on day 14 gives day 13 or 15.
- monthly: the third Friday of the 0 DTE session's month, or of the next month once it has
  settled; a holiday Friday moves to the session before (Good Friday), as OCC does.

SPY, QQQ and IWM list daily expiries, so every session is an expiry; a day the vendor does not
list comes back as empty data and is recorded as missing, not as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from qc.core import clock

SWING_DTE = 14


@dataclass(frozen=True)
class TradedExpiries:
    """The expiries qc trades at one instant, by role."""

    dte0: date
    dte1: date
    dte14: date
    monthly: date

    @property
    def dates(self) -> tuple[date, ...]:
        """Unique expiries, soonest first (the monthly may coincide with another role)."""
        return tuple(sorted({self.dte0, self.dte1, self.dte14, self.monthly}))

    def roles(self) -> dict[str, str]:
        return {"0dte": self.dte0.isoformat(), "1dte": self.dte1.isoformat(),
                "14dte": self.dte14.isoformat(), "monthly": self.monthly.isoformat()}


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def monthly_expiry(year: int, month: int) -> date:
    """The standard monthly expiry: third Friday, or the session before when that Friday is a holiday."""
    return clock.session_on_or_before(third_friday(year, month)).day


def first_live_session(now: datetime) -> date:
    """The first session whose settlement instant is still ahead of ``now``."""
    day = clock.session_on_or_before(clock.new_york_date(now)).day
    while clock.settlement_instant(day) <= now:
        day = clock.next_session_after(day).day
    return day


def nearest_session(target: date) -> date:
    """The session nearest ``target`` in calendar days, the later one on a tie."""
    after = clock.next_session_after(target - timedelta(days=1)).day
    before = clock.session_on_or_before(target).day
    return before if (target - before) < (after - target) else after


def traded_expiries(now: datetime) -> TradedExpiries:
    """The 0/1/~14 DTE and monthly expiries live at ``now``."""
    dte0 = first_live_session(now)
    dte1 = clock.next_session_after(dte0).day
    dte14 = nearest_session(dte0 + timedelta(days=SWING_DTE))
    monthly = monthly_expiry(dte0.year, dte0.month)
    if monthly < dte0:
        year, month = divmod(dte0.month, 12)
        monthly = monthly_expiry(dte0.year + year, month + 1)
    return TradedExpiries(dte0, dte1, dte14, monthly)
