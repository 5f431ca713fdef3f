"""5-second real-time bars rolled up into 1-minute bars on minute boundaries. Pure: time passed in.

A minute is emitted once it is over: when a 5-s bar of a later minute arrives, or when
``close_through(now)`` sees the market clock past the minute's end plus a grace (bars stopped).
Volume adds up, VWAP is the volume-weighted mean of the 5-s WAPs (the close when no volume), and
``complete`` is False when fewer than twelve 5-s bars made the minute (a gap after a reconnect, a
feed that fell silent): downstream can tell a quiet minute from a partly missing one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from qc.core.models import FiveSecondBar

BAR_S = 5
MINUTE_S = 60
BARS_PER_MINUTE = MINUTE_S // BAR_S


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """A finished minute starting at epoch ``start``, with how many of its twelve 5-s bars arrived."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    count: int
    bars: int
    complete: bool

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


class MinuteRoller:
    """Accumulates one symbol's 5-s bars into the open minute."""

    def __init__(self, grace_s: float = 10.0) -> None:
        self.grace_s = grace_s
        self._minute: int | None = None
        self._bars: dict[int, FiveSecondBar] = {}

    def add(self, bar: FiveSecondBar) -> list[MinuteBar]:
        """Add a bar; return the minute it closed, if any (an older-minute bar is dropped)."""
        minute = bar.start - bar.start % MINUTE_S
        out: list[MinuteBar] = []
        if self._minute is not None and minute < self._minute:
            return out  # late bar for a minute already emitted
        if self._minute is not None and minute > self._minute:
            out.append(self._emit())
        self._minute = minute
        self._bars[bar.start] = bar  # a re-sent bar replaces its first copy: volume is not counted twice
        return out

    def close_through(self, now_epoch: float) -> list[MinuteBar]:
        """Emit the open minute once ``now_epoch`` is past its end plus the grace."""
        if self._minute is None or now_epoch < self._minute + MINUTE_S + self.grace_s:
            return []
        return [self._emit()]

    def _emit(self) -> MinuteBar:
        assert self._minute is not None and self._bars
        bar = roll_up(self._minute, [self._bars[k] for k in sorted(self._bars)])
        self._minute, self._bars = None, {}
        return bar


def roll_up(minute_start: int, bars: list[FiveSecondBar]) -> MinuteBar:
    """One minute from its 5-s bars in time order (at least one)."""
    volume = math.fsum(b.volume for b in bars)
    vwap = math.fsum(b.wap * b.volume for b in bars) / volume if volume > 0 else bars[-1].close
    return MinuteBar(start=minute_start, open=bars[0].open, high=max(b.high for b in bars),
                     low=min(b.low for b in bars), close=bars[-1].close, volume=volume, vwap=vwap,
                     count=sum(b.count for b in bars), bars=len(bars), complete=len(bars) >= BARS_PER_MINUTE)
