"""reqHistoricalData for the simulated gateway: durations, end times, 1-minute bars and IB's pacing.

Only 1-minute bars exist in the model (``MarketModel.history``: regular session, TRADES); other
``whatToShow`` values are answered with the same bars. Durations: ``N S`` (rounded up to whole
minutes), ``N D`` / ``N W`` / ``N M`` / ``N Y`` (the last N, 5N, 21N, 252N sessions up to the end).
Pacing follows IB's rules (ref ib-api-protocol.md §11): six or more requests for the same contract
within 2 s, or more than 60 within 10 minutes, are refused with error 162, per connection; only
accepted requests count.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from qc.core.clock import NEW_YORK
from qc.sim.ib import encode as enc
from qc.sim.ib.wire_types import WireBar
from qc.sim.market.events import MarketModel

PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"
SAME_CONTRACT_WINDOW_S, SAME_CONTRACT_MAX = 2.0, 5
ANY_WINDOW_S, ANY_MAX = 600.0, 60
SESSION_MINUTES = 390
SESSIONS_PER_UNIT = {"D": 1, "W": 5, "M": 21, "Y": 252}


class HistoryError(ValueError):
    """A request the simulator cannot answer (IB answers these with error 162 or 321)."""


def paced(log: list[tuple[float, str]], key: str, mono: float) -> bool:
    """True when a request for ``key`` now would break IB's pacing; otherwise record it."""
    log[:] = [(t, k) for t, k in log if mono - t < ANY_WINDOW_S]
    same = sum(1 for t, k in log if k == key and mono - t < SAME_CONTRACT_WINDOW_S)
    if same >= SAME_CONTRACT_MAX or len(log) >= ANY_MAX:
        return True
    log.append((mono, key))
    return False


def parse_duration(text: str) -> tuple[int, int | None]:
    """``"3600 S"`` → (60, None) minutes; ``"2 D"`` → (780, 2): minutes to fetch, sessions to keep."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) <= 0:
        raise HistoryError(f"invalid duration {text!r}")
    n, unit = int(parts[0]), parts[1].upper()
    if unit == "S":
        return math.ceil(n / 60), None
    if unit not in SESSIONS_PER_UNIT:
        raise HistoryError(f"invalid duration unit in {text!r}")
    sessions = n * SESSIONS_PER_UNIT[unit]
    return sessions * SESSION_MINUTES, sessions


def parse_end(text: str, now: datetime) -> datetime:
    """``""`` (now), ``YYYYMMDD HH:MM:SS [zone]`` (New York when no zone) or ``YYYYMMDD-HH:MM:SS`` (UTC)."""
    text = text.strip()
    if not text:
        return now
    try:
        if "-" in text[:9]:
            return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=timezone.utc)
        stamp, _, zone = text.partition(" ")
        clock_part, _, zone = zone.partition(" ")
        naive = datetime.strptime(f"{stamp} {clock_part}", "%Y%m%d %H:%M:%S")  # noqa: DTZ007 (zone attached below)
        return naive.replace(tzinfo=ZoneInfo(zone) if zone else NEW_YORK)
    except (ValueError, KeyError) as exc:
        raise HistoryError(f"invalid end date/time {text!r}") from exc


def historical_frame(model: MarketModel, req_id: int, symbol: str, end: datetime, duration: str,
                     format_date: int) -> bytes:
    """historicalData (17) with every 1-minute bar of ``duration`` up to ``end``."""
    minutes, sessions = parse_duration(duration)
    bars = model.history(symbol, end, minutes)
    if sessions is not None:
        days = sorted({b.ts.astimezone(NEW_YORK).date() for b in bars})[-sessions:]
        bars = [b for b in bars if b.ts.astimezone(NEW_YORK).date() in days]
    wire = [WireBar(enc.ib_bar_date(b.ts, format_date), b.open, b.high, b.low, b.close, b.volume, b.vwap, b.count)
            for b in bars]
    start = bars[0].ts if bars else end
    return enc.historical_data(req_id, enc.ib_bar_date(start, 1), enc.ib_bar_date(end, 1), wire)
