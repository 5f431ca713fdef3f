"""Time gates: when a strategy may open a position, from the exchange calendar and the auction cutoffs.

Pure: ``now`` is passed in (tz-aware); every open and close comes from ``qc.core.clock``'s XNYS
calendar, so an early close (13:00 New York) moves every cutoff with it and a holiday or weekend
closes everything. No 16:00 literal anywhere.

The gates, for a symbol at ``now`` inside today's regular session (open O, close C):

- ``session``: closed outside a regular session (before the open, after the close, no session).
- 0DTE: open in [O + ``open_delay_min``, C − ``zero_dte_cutoff_min``): a 0DTE bought late is a
  lottery ticket on the last minutes' gamma.
- 1DTE and 14DTE: open in [O + ``open_delay_min``, C − ``late_entry_cutoff_min``).
- MOC: open in [C − ``moc_window_min``, the MOC deadline). The deadline is the earlier of the
  primary exchange's MOC entry cutoff and its cancel cutoff, less ``moc_buffer_min`` (like LEAN's
  submission buffer): an order placed then can still be cancelled before the exchange freezes it.
  Arca (SPY, IWM) and Nasdaq (QQQ) both give C − 12 min with the default 2 min buffer.

A gate's ``name`` says which boundary binds: ``open_delay`` in the first minutes of the session,
otherwise ``{strategy}_cutoff`` for the options strategies and ``moc_window`` for MOC. An open gate
has no reason; a closed one says why in one line, with New York times. ``closes_at`` is the instant
the strategy's entries shut today (already past when the cutoff has gone by; None on a day without
a session).

The auction facts are Interactive Brokers' cutoffs, which bind qc (they are stricter than the
exchanges' own): NYSE markets including Arca take MOC/LOC until C − 10 min and allow no cancel
after C − 10; Nasdaq takes MOC until C − 5, LOC until C − 2, and allows no cancel after C − 10.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from qc.core import clock
from qc.signals.model import Gate, StrategyName

PRIMARY_EXCHANGE: Mapping[str, str] = {"SPY": "ARCA", "IWM": "ARCA", "QQQ": "NASDAQ"}
DEFAULT_PRIMARY_EXCHANGE = "NYSE"


def primary_exchange(symbol: str) -> str:
    """The exchange whose closing auction sets ``symbol``'s official close.

    SPY and IWM: the NYSE Arca closing auction; QQQ: the Nasdaq Closing Cross. Any other symbol is
    taken as NYSE-listed: its cutoffs are the same as Arca's under IB, the strictest of the three.
    """
    return PRIMARY_EXCHANGE.get(symbol.upper(), DEFAULT_PRIMARY_EXCHANGE)


@dataclass(frozen=True, slots=True)
class AuctionCutoffs:
    """How long before the close a broker stops taking (or cancelling) closing-auction orders."""

    moc_entry_before_close: timedelta
    cancel_before_close: timedelta
    loc_entry_before_close: timedelta


_TEN = timedelta(minutes=10)
AUCTION_CUTOFFS: Mapping[str, AuctionCutoffs] = {
    "ARCA": AuctionCutoffs(moc_entry_before_close=_TEN, cancel_before_close=_TEN, loc_entry_before_close=_TEN),
    "NYSE": AuctionCutoffs(moc_entry_before_close=_TEN, cancel_before_close=_TEN, loc_entry_before_close=_TEN),
    "NASDAQ": AuctionCutoffs(moc_entry_before_close=timedelta(minutes=5), cancel_before_close=_TEN,
                             loc_entry_before_close=timedelta(minutes=2)),
}


@dataclass(frozen=True, slots=True)
class GateParams:
    """The gates' minutes: entry cutoffs before the close, the opening delay, the MOC window and buffer."""

    zero_dte_cutoff_min: float = 30.0    # no new 0DTE after close - 30 min
    late_entry_cutoff_min: float = 5.0   # no new 1/14DTE in the last 5 min
    open_delay_min: float = 5.0          # no entries in the first 5 min: the opening prints are noise
    moc_window_min: float = 30.0         # MOC evaluates from close - 30 min
    moc_buffer_min: float = 2.0          # submit this long before the broker's earliest MOC cutoff

    def __post_init__(self) -> None:
        for name in ("zero_dte_cutoff_min", "late_entry_cutoff_min", "open_delay_min", "moc_window_min",
                     "moc_buffer_min"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"GateParams.{name} is {value!r}, not a finite number of minutes >= 0")


SESSION = "session"
OPEN_DELAY = "open_delay"
MOC_WINDOW = "moc_window"
_LABEL: Mapping[str, str] = {"0dte": "0DTE", "1dte": "1DTE", "14dte": "14DTE"}


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be tz-aware, got naive {now!r}")


def _ny(instant: datetime) -> str:
    """An instant as New York wall time: HH:MM, or HH:MM:SS when it is not on a whole minute."""
    local = instant.astimezone(clock.NEW_YORK)
    return local.strftime("%H:%M" if local.second == 0 and local.microsecond == 0 else "%H:%M:%S")


def _min(minutes: float) -> str:
    return f"{minutes:g} min"


def session_gate(now: datetime) -> Gate:
    """Open inside today's regular XNYS session; closed before the open, after the close and on days off."""
    _require_aware(now)
    today_date = clock.new_york_date(now)
    today = clock.session(today_date)
    if today is not None and today.open <= now < today.close:
        return Gate(SESSION, True, closes_at=today.close)
    if today is None:
        where = f"{today_date:%a %Y-%m-%d} is not a trading day"
        upcoming = clock.next_session_after(today_date)
    elif now < today.open:
        where = f"before the {_ny(today.open)} open"
        upcoming = today
    else:
        where = f"after the {_ny(today.close)} close"
        upcoming = clock.next_session_after(today_date)
    opens = upcoming.open.astimezone(clock.NEW_YORK)
    return Gate(SESSION, False, f"outside the regular session ({where}; next open {opens:%Y-%m-%d %H:%M} New York)")


def moc_deadline(symbol: str, session: clock.Session, params: GateParams) -> datetime:
    """The last instant qc submits a MOC order for ``symbol`` in ``session`` (UTC).

    The earlier of the primary exchange's MOC entry and cancel cutoffs, less the buffer: close − 12
    min for Arca (10 and 10) and Nasdaq (5 and 10) with the default 2 min buffer.
    """
    cutoffs = AUCTION_CUTOFFS[primary_exchange(symbol)]
    before = max(cutoffs.moc_entry_before_close, cutoffs.cancel_before_close)
    return session.close - before - timedelta(minutes=params.moc_buffer_min)


def _moc_gate(symbol: str, now: datetime, today: clock.Session, params: GateParams) -> Gate:
    start = today.close - timedelta(minutes=params.moc_window_min)
    deadline = moc_deadline(symbol, today, params)
    if start <= now < deadline:
        return Gate(MOC_WINDOW, True, closes_at=deadline)
    if now < start:
        why = (f"MOC evaluates from {_ny(start)} New York "
               f"(close {_ny(today.close)} − {_min(params.moc_window_min)})")
    else:
        exchange = primary_exchange(symbol)
        lead = round((today.close - deadline).total_seconds() / 60.0, 6)
        why = (f"MOC submit deadline {_ny(deadline)} New York has passed (close {_ny(today.close)} − {_min(lead)}: "
               f"{exchange}'s earliest MOC cutoff less a {_min(params.moc_buffer_min)} buffer)")
    return Gate(MOC_WINDOW, False, why, closes_at=deadline)


def entry_gate(strategy: StrategyName, symbol: str, now: datetime, params: GateParams | None = None) -> Gate:
    """Whether ``strategy`` may open a position in ``symbol`` at ``now`` (see the module docstring)."""
    _require_aware(now)
    params = params or GateParams()
    if strategy not in ("0dte", "1dte", "14dte", "moc"):
        raise ValueError(f"unknown strategy {strategy!r}")
    today = clock.session(clock.new_york_date(now))
    name = MOC_WINDOW if strategy == "moc" else f"{strategy}_cutoff"
    if today is None or not today.open <= now < today.close:
        return Gate(name, False, session_gate(now).reason,
                    closes_at=None if today is None else _cutoff(strategy, symbol, today, params))
    if strategy == "moc":
        return _moc_gate(symbol, now, today, params)
    cutoff = _cutoff(strategy, symbol, today, params)
    starts = today.open + timedelta(minutes=params.open_delay_min)
    if now < starts:
        return Gate(OPEN_DELAY, False,
                    f"no entries in the first {_min(params.open_delay_min)} after the {_ny(today.open)} open "
                    f"(from {_ny(starts)} New York)", closes_at=cutoff)
    if now >= cutoff:
        minutes = params.zero_dte_cutoff_min if strategy == "0dte" else params.late_entry_cutoff_min
        return Gate(name, False, f"no new {_LABEL[strategy]} after {_ny(cutoff)} New York "
                                 f"(close {_ny(today.close)} − {_min(minutes)})", closes_at=cutoff)
    return Gate(name, True, closes_at=cutoff)


def _cutoff(strategy: StrategyName, symbol: str, today: clock.Session, params: GateParams) -> datetime:
    """When ``strategy``'s new entries shut in ``today``'s session."""
    if strategy == "moc":
        return moc_deadline(symbol, today, params)
    minutes = params.zero_dte_cutoff_min if strategy == "0dte" else params.late_entry_cutoff_min
    return today.close - timedelta(minutes=minutes)


def gates_for(strategy: StrategyName, symbol: str, now: datetime,
              params: GateParams | None = None) -> tuple[Gate, ...]:
    """The session gate, then (inside a session only) the strategy's entry gate: all must be open to trade."""
    session = session_gate(now)
    if not session.open:
        return (session,)
    return session, entry_gate(strategy, symbol, now, params)
