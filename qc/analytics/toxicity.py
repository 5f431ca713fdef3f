"""One symbol's live VPIN for the worker: the library's ``StreamingVpin``, plus the minute bars RV reads.

VPIN has one implementation, ``qc.analytics.vpin.StreamingVpin`` (the one tests and benchmarks
check against ``vpin_batch``/``vpin_true_sign``): warmed from past 1-minute bars by bulk volume
classification (σ of their own changes), then fed the trade stream print by print with the
aggressor side `qc stream` inferred (an unknown side counts half-half), quiet minutes closed from
the worker's clock. Like every VPIN here it counts regular-session minutes only.
Bucket volume V = average daily volume / 50, the ADV taken from the warm session bars (mean minute
volume × 390): the paper's ~50 buckets a day, so the 50-bucket window is about one session.

The OHLCV window (the last three sessions' worth of minutes as traded) is only for realised vol.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from qc.analytics.regime import SESSION_MINUTES, MinuteBars
from qc.analytics.vpin import StreamingVpin, VpinReading, bucket_volume, in_session

__all__ = ["N_BUCKETS", "WINDOW_BARS", "Prints", "VpinReading", "VpinWindow"]

N_BUCKETS = 50
WINDOW_BARS = 3 * SESSION_MINUTES
NO_V = "no bucket volume: no past session bars to estimate ADV from"
Row = tuple[float, float, float, float, float, float]  # start, open, high, low, close, volume


class Prints(Protocol):
    """New prints: clock epoch (s), price, size, aggressor side (+1/−1/0); ``cycle.inputs.Trades`` fits."""

    @property
    def ts(self) -> npt.NDArray[np.float64]: ...
    @property
    def price(self) -> npt.NDArray[np.float64]: ...
    @property
    def size(self) -> npt.NDArray[np.float64]: ...
    @property
    def side(self) -> npt.NDArray[np.float64]: ...


def epoch_ns(seconds: float) -> int:
    """Epoch seconds (ms stamps from the stream) as the library's int ns, exact to the microsecond."""
    return round(seconds * 1e6) * 1000


@dataclass
class VpinWindow:
    """The live VPIN (None until warm bars give a bucket volume) and the minute bars; ``open`` holds
    the minutes still being traded."""

    rows: deque[Row] = field(default_factory=lambda: deque(maxlen=WINDOW_BARS))
    open: dict[float, list[float]] = field(default_factory=dict)
    live: StreamingVpin | None = None
    signed_seen: bool = False
    last_input: float | None = None

    def warm(self, bars: MinuteBars) -> None:
        """Seed the bars window and VPIN from past bars; V from the ADV of their session minutes."""
        if len(bars) == 0:
            return
        self.rows.extend(zip(bars.start.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(),
                             bars.close.tolist(), bars.volume.tolist(), strict=True))
        start_ns = np.array([epoch_ns(s) for s in bars.start.tolist()], dtype=np.int64)
        session = in_session(start_ns)
        adv = float(np.mean(bars.volume[session])) * SESSION_MINUTES if session.any() else math.nan
        v = bucket_volume(adv, N_BUCKETS)
        if v is not None:
            self.live = StreamingVpin(v, N_BUCKETS)
            self.live.warm(start_ns, bars.close, bars.volume)
        self.last_input = float(bars.start[-1]) + 60.0

    def add_trades(self, t: Prints) -> None:
        """Feed prints to VPIN and fold them into their minutes (a closed or warm minute is not revised)."""
        floor = self.rows[-1][0] if self.rows else -math.inf
        for ts, px, sz, side in zip(t.ts.tolist(), t.price.tolist(), t.size.tolist(), t.side.tolist(),
                                    strict=True):
            if self.live is not None:
                self.live.update_trade(epoch_ns(ts), px, sz, side)
            self.signed_seen = self.signed_seen or side != 0
            minute = ts // 60 * 60
            if minute <= floor:
                continue
            m = self.open.setdefault(minute, [px, px, px, px, 0.0])
            m[1], m[2], m[3] = max(m[1], px), min(m[2], px), px
            m[4] += sz
        if t.ts.size:
            self.last_input = max(self.last_input or -math.inf, float(t.ts.max()))

    def close_minutes(self, now_epoch: float) -> None:
        """Close the minutes (bars window and VPIN bars) that ended by ``now_epoch``."""
        for minute in sorted(m for m in self.open if m + 60.0 <= now_epoch):
            o, h, lo, c, v = self.open.pop(minute)
            self.rows.append((minute, o, h, lo, c, v))
        if self.live is not None:
            self.live.advance(epoch_ns(now_epoch))

    def reading(self) -> VpinReading:
        if self.live is None:
            return VpinReading(None, None, 0, "true_sign" if self.signed_seen else "bvc", NO_V)
        return self.live.reading()

    def bars(self) -> MinuteBars:
        """The window as OHLCV arrays (for realised volatility)."""
        cols = np.array(self.rows, dtype=np.float64).reshape(-1, 6)
        return MinuteBars(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], cols[:, 5])
