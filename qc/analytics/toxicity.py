"""VPIN over a rolling window of 1-minute bars, and book imbalance: the per-cycle tasks.

VPIN state per symbol is a window of minute bars carrying their buy volume: warm bars (from
``market:{sym}:bars:1min`` or Alpha Vantage) are split by bulk volume classification, live minutes
are built from the trade stream with the aggressor side `qc stream` inferred (unknown-side prints
split half-half). Each cycle recomputes the buckets from the window with the library's
``bucket_buy_volume``/``rolling_vpin``: ~1,200 bars, microseconds, and no state to drift.
Bucket volume V = average daily volume / 50, the ADV taken from the warm bars (mean minute volume ×
390): the paper's ~50 buckets a day, so the 50-bucket window is about one session.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from qc.analytics.cycle.inputs import Bars, Trades
from qc.analytics.normal import norm_cdf
from qc.analytics.regime import SESSION_MINUTES
from qc.analytics.schedule import bucket_volume
from qc.analytics.vpin import bucket_buy_volume, price_change_sigma, rolling_vpin

N_BUCKETS = 50
WINDOW_BARS = 3 * SESSION_MINUTES
Row = tuple[float, float, float, float, float, float, float]  # start, open, high, low, close, volume, buy


@dataclass(frozen=True)
class VpinReading:
    value: float | None
    bucket_volume: float | None
    buckets_in_window: int
    mode: str
    reason: str


@dataclass
class VpinWindow:
    """One symbol's minute bars with buy volume; ``open`` holds the minutes still being traded."""

    rows: deque[Row] = field(default_factory=lambda: deque(maxlen=WINDOW_BARS))
    open: dict[float, list[float]] = field(default_factory=dict)
    bucket_v: float | None = None
    signed_trades: int = 0
    last_input: float | None = None

    def warm(self, bars: Bars) -> None:
        """Seed from past bars (BVC buy share, σ of the bars' own changes) and set V from their ADV."""
        if len(bars) == 0:
            return
        dp = np.diff(bars.close, prepend=bars.close[:1])
        sigma = price_change_sigma(bars.close)
        frac = np.full(dp.shape, 0.5) if not sigma > 0 else norm_cdf(dp / sigma)
        for i in range(len(bars)):
            self.rows.append((float(bars.start[i]), float(bars.open[i]), float(bars.high[i]), float(bars.low[i]),
                              float(bars.close[i]), float(bars.volume[i]), float(bars.volume[i] * frac[i])))
        self.bucket_v = bucket_volume(float(np.mean(bars.volume)) * SESSION_MINUTES, N_BUCKETS)
        self.last_input = float(bars.start[-1]) + 60.0

    def add_trades(self, t: Trades) -> None:
        """Fold prints into their minutes; a minute already closed (or warm) is not revised."""
        floor = self.rows[-1][0] if self.rows else -math.inf
        for ts, px, sz, side in zip(t.ts.tolist(), t.price.tolist(), t.size.tolist(), t.side.tolist(),
                                    strict=True):
            minute = ts // 60 * 60
            if minute <= floor:
                continue
            buy = sz if side > 0 else (0.0 if side < 0 else 0.5 * sz)
            m = self.open.setdefault(minute, [px, px, px, px, 0.0, 0.0])
            m[1], m[2], m[3] = max(m[1], px), min(m[2], px), px
            m[4] += sz
            m[5] += buy
            self.signed_trades += int(side != 0)
        if t.ts.size:
            self.last_input = max(self.last_input or -math.inf, float(t.ts.max()))

    def close_minutes(self, now_epoch: float) -> None:
        for minute in sorted(m for m in self.open if m + 60.0 <= now_epoch):
            o, h, lo, c, v, b = self.open.pop(minute)
            self.rows.append((minute, o, h, lo, c, v, b))

    def reading(self) -> VpinReading:
        mode = "true_sign" if self.signed_trades else "bvc"
        if self.bucket_v is None:
            return VpinReading(None, None, 0, mode, "no bucket volume: no past bars to estimate ADV from")
        vol = np.fromiter((r[5] for r in self.rows), dtype=np.float64)
        buy = np.fromiter((r[6] for r in self.rows), dtype=np.float64)
        frac = np.divide(buy, vol, out=np.full(vol.shape, 0.5), where=vol > 0)
        _, buys = bucket_buy_volume(vol, frac, self.bucket_v)
        series = rolling_vpin(buys, self.bucket_v, N_BUCKETS)
        if series.size == 0:
            return VpinReading(None, self.bucket_v, int(buys.size), mode,
                               f"{buys.size} of {N_BUCKETS} buckets complete")
        return VpinReading(float(series[-1]), self.bucket_v, N_BUCKETS, mode, "")

    def bars(self) -> Bars:
        """The window as OHLCV arrays (for realised volatility)."""
        cols = np.array(self.rows, dtype=np.float64).reshape(-1, 7)
        return Bars(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], cols[:, 4], cols[:, 5])
