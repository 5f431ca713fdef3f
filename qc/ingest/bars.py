"""5-second real-time bars rolled up into 1-minute bars on minute boundaries, and IB's history merged in.

A minute is emitted once it is over: when a 5-s bar of a later minute arrives, or when
``close_through(now)`` sees the market clock past the minute's end plus a grace (bars stopped).
Volume adds up, VWAP is the volume-weighted mean of the 5-s WAPs (the close when no volume), and
``complete`` is False when fewer than twelve 5-s bars made the minute (a gap after a reconnect, a
feed that fell silent): downstream can tell a quiet minute from a partly missing one.

History (IB's 1-minute TRADES bars, requested on every connect) is merged under the live minutes
by :func:`merge_history`. Pure: time passed in; every minute is the project's one
:class:`~qc.core.models.Bar`.

Validation at the IB boundary: a 5-s bar (:func:`five_second_refusal`) or historical bar
(:func:`valid_bars`) with a non-finite or non-positive price, high below low, open or close outside
[low, high], a non-finite or negative volume (or WAP, count) is refused with a short reason for the
caller to count. Only valid bars are rolled up, so every minute brackets its prices and decodes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timezone

from qc.core.codec import EPOCH_MAX, Malformed
from qc.core.models import Bar, FiveSecondBar

BAR_S = 5
MINUTE_S = 60
BARS_PER_MINUTE = MINUTE_S // BAR_S


class MinuteRoller:
    """Accumulates one symbol's 5-s bars into the open minute."""

    def __init__(self, grace_s: float = 10.0) -> None:
        self.grace_s = grace_s
        self._minute: int | None = None
        self._bars: dict[int, FiveSecondBar] = {}

    def add(self, bar: FiveSecondBar) -> list[Bar]:
        """Add a bar; return the minute it closed, if any (an older-minute bar is dropped)."""
        minute = bar.start - bar.start % MINUTE_S
        out: list[Bar] = []
        if self._minute is not None and minute < self._minute:
            return out  # late bar for a minute already emitted
        if self._minute is not None and minute > self._minute:
            out.append(self._emit())
        self._minute = minute
        self._bars[bar.start] = bar  # a re-sent bar replaces its first copy: volume is not counted twice
        return out

    def close_through(self, now_epoch: float) -> list[Bar]:
        """Emit the open minute once ``now_epoch`` is past its end plus the grace."""
        if self._minute is None or now_epoch < self._minute + MINUTE_S + self.grace_s:
            return []
        return [self._emit()]

    def _emit(self) -> Bar:
        assert self._minute is not None and self._bars
        bar = roll_up(self._minute, [self._bars[k] for k in sorted(self._bars)])
        self._minute, self._bars = None, {}
        return bar


def roll_up(minute_start: int, bars: list[FiveSecondBar]) -> Bar:
    """One minute from its 5-s bars in time order (at least one); a VWAP that does not come out finite
    (sums past the float range) falls back to the close."""
    volume = _sum(b.volume for b in bars)
    vwap = _sum(b.wap * b.volume for b in bars) / volume if 0 < volume < math.inf else bars[-1].close
    if not math.isfinite(vwap):
        vwap = bars[-1].close
    return Bar(datetime.fromtimestamp(minute_start, timezone.utc), open=bars[0].open, high=max(b.high for b in bars),
               low=min(b.low for b in bars), close=bars[-1].close, volume=volume, vwap=vwap,
               count=sum(b.count for b in bars), complete=len(bars) >= BARS_PER_MINUTE, five_second_bars=len(bars))


def _sum(values: Iterable[float]) -> float:
    """An exact sum, or inf when it leaves the float range (``math.fsum`` raises there)."""
    try:
        return math.fsum(values)
    except OverflowError:
        return math.inf


def ohlcv_refusal(open_: float, high: float, low: float, close: float, volume: float) -> str | None:
    """Why these OHLCV values cannot be a bar (None when they can): what the bars codec refuses, named."""
    if not all(map(math.isfinite, (open_, high, low, close))):
        return "price_not_finite"
    if min(open_, high, low, close) <= 0:
        return "price_not_positive"
    if high < low:
        return "high_below_low"
    if not low <= min(open_, close) <= max(open_, close) <= high:
        return "open_close_outside_range"
    if not math.isfinite(volume):
        return "volume_not_finite"
    if volume < 0:
        return "negative_volume"
    return None


def five_second_refusal(bar: FiveSecondBar) -> str | None:
    """Why IB's 5-s bar is refused (None: roll it up); also a non-finite/negative WAP or count, a bad start."""
    why = ohlcv_refusal(bar.open, bar.high, bar.low, bar.close, bar.volume)
    if why is not None:
        return why
    if not math.isfinite(bar.wap):
        return "wap_not_finite"
    if bar.wap < 0:
        return "negative_wap"
    if bar.count < 0:
        return "negative_count"
    if not 0 < bar.start <= EPOCH_MAX:
        return "bad_start"
    return None


def history_bar(start: datetime, open_: float, high: float, low: float, close: float, volume: float,
                average: float, count: int) -> Bar:
    """One IB historical bar (``BarData``) as a finished minute; IB's average is the VWAP (the close when it is
    not a finite number > 0: IB sends −1 for "none"). Values are taken as sent: :func:`valid_bars` judges them."""
    vwap = average if math.isfinite(average) and average > 0 else close
    return Bar(start.astimezone(timezone.utc), open_, high, low, close, float(volume), vwap,
               int(count) if math.isfinite(count) and count > 0 else 0, complete=True)


def valid_bars(bars: Iterable[Bar]) -> tuple[list[Bar], Counter[str]]:
    """The bars the bars-list codec accepts (finite, positive, high/low bracketing, on a minute); the rest
    counted by short reason (:func:`ohlcv_refusal`'s, else ``bad_{field}`` as the codec names it)."""
    good: list[Bar] = []
    rejected: Counter[str] = Counter()
    for bar in bars:
        why = ohlcv_refusal(bar.open, bar.high, bar.low, bar.close, bar.volume)
        if why is None:
            try:
                Bar.parse(bar.to_redis())
            except Malformed as exc:
                why = f"bad_{exc.field or 'bar'}"
            except ValueError:  # NaN/inf elsewhere (the VWAP), refused by the strict JSON encoder
                why = "not_finite"
        if why is not None:
            rejected[why] += 1
            continue
        good.append(bar)
    return good, rejected


def merge_history(stored: Iterable[Bar], history: Iterable[Bar], *, now_epoch: float, keep: int,
                  live_from: int | None = None) -> list[Bar]:
    """The bars list after a backfill: one bar per start, in order, at most ``keep`` (the newest).

    Live minutes win: a stored complete minute stays as it is; a stored *incomplete* one (a reconnect's
    partial minute) yields to IB's whole minute, since filling that gap is what the backfill is for.
    History drops minutes not yet over at ``now_epoch`` and those from ``live_from`` on (live minutes
    waiting to be written after this merge).
    """
    by_start = {b.start: b for b in stored}
    for bar in history:
        if bar.start + MINUTE_S > now_epoch or (live_from is not None and bar.start >= live_from):
            continue
        mine = by_start.get(bar.start)
        if mine is None or not mine.complete:
            by_start[bar.start] = bar
    return [by_start[s] for s in sorted(by_start)][-keep:] if keep > 0 else []
