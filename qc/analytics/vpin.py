"""VPIN: volume-synchronised probability of informed trading, batch, streaming and true-sign.

Source: Easley, López de Prado & O'Hara (2012), "Flow Toxicity and Liquidity in a High-Frequency
World", Review of Financial Studies 25(5), 1457-1493, §2 and the appendix's procedure:

1. Time bars: 1-minute bars over regular XNYS session minutes only (``qc.analytics.bars``); an empty
   minute inside a session carries the last close forward with zero volume; no bars between sessions.
2. Bulk volume classification: bar i's buy share is Φ(ΔP_i / σ), ΔP_i = close_i − close_{i−1}
   (ΔP = 0 for the first bar; the first bar of a session is compared with the previous session's last
   close, so the overnight gap is one bar change), σ = sample std (ddof=1) of all other bar changes.
   σ = 0 takes the limit (up-bars all buy, down-bars all sell, flat bars half-half); with fewer than
   two changes σ is undefined and every bar is split half-half.
3. Volume buckets of size V: a bar's volume (and its buy share, pro rata) is split across bucket
   boundaries; the last, partial bucket is dropped. Bucket τ has OI_τ = |V_τ^S − V_τ^B|.
4. VPIN_τ = Σ_{k=τ−n+1..τ} OI_k / (n V), stamped at the end of the bar that completes bucket τ
   (several buckets completed by one bar share its stamp). VPIN needs n complete buckets, so
   *only buckets n, n+1, … are returned*; none are padded with NaN.

True sign (``vpin_true_sign``, and ``StreamingVpin`` fed trades with a side): step 2 is replaced by
the aggressor side of each trade, an unknown side counting half buy, half sell.

Conventions: timestamps int64 ns since the epoch (UTC); prices and sizes float64; sizes ≥ 0.
Bucket boundaries are compared against cumulative volume, so integer share sizes place them exactly.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt

from qc.analytics import bars as _bars
from qc.analytics.normal import norm_cdf

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
VpinSeries = tuple[IntArray, FloatArray]

_SQRT_HALF = math.sqrt(0.5)


def bucket_volume(avg_daily_volume: float, buckets_per_day: int = 50) -> float | None:
    """Bucket size V = ADV / 50 (the paper's ~50 buckets a day); None when the ADV is unusable."""
    if not math.isfinite(avg_daily_volume) or avg_daily_volume <= 0:
        return None
    return avg_daily_volume / buckets_per_day


def in_session(start_ns: npt.ArrayLike) -> BoolArray:
    """Which bar starts lie inside a regular XNYS session: the only bars VPIN counts (step 1)."""
    starts = np.asarray(start_ns, dtype=np.int64)
    out = np.zeros(starts.shape, dtype=bool)
    for i, t in enumerate(starts.tolist()):
        bounds = _bars.session_ns(_bars.ny_date(t))
        out[i] = bounds is not None and bounds[0] <= t < bounds[1]
    return out


def price_change_sigma(close: FloatArray) -> float:
    """Sample std (ddof=1) of bar-to-bar close changes; NaN with fewer than two changes."""
    dp = np.diff(np.asarray(close, dtype=np.float64))
    return float(np.std(dp, ddof=1)) if dp.size >= 2 else math.nan


def bvc_buy_fraction(dp: FloatArray, sigma: float) -> FloatArray:
    """Φ(ΔP/σ) per bar, with the σ = 0 limit and half-half when σ is undefined (see module doc)."""
    if math.isnan(sigma):
        return np.full(dp.shape, 0.5)
    if sigma == 0.0:
        return np.where(dp > 0.0, 1.0, np.where(dp < 0.0, 0.0, 0.5))
    return norm_cdf(dp / sigma)


def _buy_fraction_scalar(dp: float, sigma: float) -> float:
    if math.isnan(sigma):
        return 0.5
    if sigma == 0.0:
        return 1.0 if dp > 0.0 else (0.0 if dp < 0.0 else 0.5)
    return 0.5 * math.erfc(-(dp / sigma) * _SQRT_HALF)


def bucket_buy_volume(volume: FloatArray, buy_fraction: FloatArray,
                      bucket_volume: float) -> tuple[IntArray, FloatArray]:
    """Completing bar and buy volume of every complete bucket, bars split pro rata at boundaries."""
    if volume.size == 0:
        return np.empty(0, np.int64), np.empty(0)
    cum_v = np.cumsum(volume)
    cum_b = np.cumsum(volume * buy_fraction)
    k = int(cum_v[-1] // bucket_volume)
    bounds = bucket_volume * np.arange(1, k + 1, dtype=np.float64)
    bounds = bounds[bounds <= cum_v[-1]]
    bar = np.searchsorted(cum_v, bounds, side="left").astype(np.int64)
    # buy volume traded up to each boundary: the completing bar's part past it is taken back out
    b_at = cum_b[bar] - buy_fraction[bar] * (cum_v[bar] - bounds)
    return bar, np.diff(b_at, prepend=0.0)


def rolling_vpin(bucket_buy: FloatArray, bucket_volume: float, n_buckets: int) -> FloatArray:
    """Mean of |V^S − V^B| / V over each window of ``n_buckets`` consecutive buckets."""
    oi = np.abs(bucket_volume - 2.0 * bucket_buy)
    if oi.size < n_buckets:
        return np.empty(0)
    window = np.lib.stride_tricks.sliding_window_view(oi, n_buckets).sum(axis=1)
    out: FloatArray = np.clip(window / (n_buckets * bucket_volume), 0.0, 1.0)
    return out


def _check(bucket_volume: float, n_buckets: int, *sizes: FloatArray) -> None:
    if not bucket_volume > 0.0:
        raise ValueError(f"bucket_volume must be > 0, got {bucket_volume}")
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
    if any(s.size and not bool(np.all(s >= 0.0)) for s in sizes):
        raise ValueError("trade sizes must be >= 0 (and not NaN)")


def vpin_from_bars(end_ns: IntArray, close: FloatArray, volume: FloatArray, bucket_volume: float,
                   n_buckets: int = 50, sigma: float | None = None) -> VpinSeries:
    """VPIN from ready session bars; ``sigma`` overrides the full-sample σ of step 2."""
    _check(bucket_volume, n_buckets, volume)
    close = np.asarray(close, dtype=np.float64)
    dp = np.diff(close, prepend=close[:1])
    sig = price_change_sigma(close) if sigma is None else sigma
    bar, buys = bucket_buy_volume(volume, bvc_buy_fraction(dp, sig), bucket_volume)
    return end_ns[bar[n_buckets - 1:]], rolling_vpin(buys, bucket_volume, n_buckets)


def vpin_batch(ts_ns: npt.ArrayLike, price: npt.ArrayLike, size: npt.ArrayLike, bucket_volume: float,
               n_buckets: int = 50, bar_seconds: int = 60) -> VpinSeries:
    """VPIN per complete bucket (from the n-th on) from a trade tape, as in the paper."""
    _check(bucket_volume, n_buckets)
    b = _bars.build_bars(ts_ns, price, size, bar_seconds)
    return vpin_from_bars(b.end_ns, b.close, b.volume, bucket_volume, n_buckets)


def vpin_from_buys(end_ns: IntArray, volume: FloatArray, buy_volume: FloatArray, bucket_volume: float,
                   n_buckets: int = 50) -> VpinSeries:
    """VPIN from bars whose buy volume is already known (true sign, or any mix of classifications)."""
    _check(bucket_volume, n_buckets, volume, buy_volume)
    frac = np.divide(buy_volume, volume, out=np.zeros_like(volume), where=volume > 0.0)
    bar, buys = bucket_buy_volume(volume, frac, bucket_volume)
    return end_ns[bar[n_buckets - 1:]], rolling_vpin(buys, bucket_volume, n_buckets)


def vpin_true_sign(ts_ns: npt.ArrayLike, buy_size: npt.ArrayLike, sell_size: npt.ArrayLike,
                   bucket_volume: float, n_buckets: int = 50, bar_seconds: int = 60) -> VpinSeries:
    """VPIN with the aggressor side known per trade: same bars and buckets, no classification."""
    ts, (buy, sell) = _bars.sorted_tape(ts_ns, buy_size, sell_size)
    _check(bucket_volume, n_buckets, buy, sell)
    _, ends, lo, hi = _bars.assign_bars(ts, bar_seconds)
    bar_buy = _bars.sum_per_bar(buy, lo, hi)
    return vpin_from_buys(ends, bar_buy + _bars.sum_per_bar(sell, lo, hi), bar_buy, bucket_volume, n_buckets)


@dataclass(frozen=True)
class VpinReading:
    """The live figure, or None with the reason: what the worker publishes as ``analytics:{sym}:vpin``."""

    value: float | None
    bucket_volume: float | None
    buckets_in_window: int
    mode: str  # "true_sign" once a trade with a known aggressor was counted, else "bvc"
    reason: str


class StreamingVpin:
    """Live VPIN: O(1) work per trade and per bar (O(1) amortised per bucket), no look-ahead.

    σ is the trailing sample std (Welford) of the bar changes seen so far, the current bar's
    included (it is known when the bar closes); pass ``sigma`` to fix it instead, in which case
    the output equals ``vpin_from_bars`` on the same bars with the same σ. Feed either whole bars
    (``update_bar``, every session bar including empty ones) or trades (``update_trade`` plus
    ``advance`` from the worker's clock to close bars when no trade arrives), optionally after
    ``warm`` from past bars. A trade given a side makes its bar true-sign (aggressor buy volume, an
    unknown side half-half: ``vpin_true_sign``'s buckets); a bar whose trades carry no side is
    classified by BVC. A trade older than the open bar cannot revise a closed bar: its volume is
    counted in the open bar.
    """

    _RESUM_EVERY = 64

    def __init__(self, bucket_volume: float, n_buckets: int = 50, bar_seconds: int = 60,
                 sigma: float | None = None) -> None:
        _check(bucket_volume, n_buckets)
        self.bucket_volume, self.n_buckets, self.bar_ns = bucket_volume, n_buckets, bar_seconds * 10**9
        self.fixed_sigma = sigma
        self.buckets_completed = 0
        self.signed_trades = 0  # trades counted with a known aggressor (side ≠ 0)
        self.value: float | None = None  # VPIN of the last complete window
        self._n, self._mean, self._m2 = 0, 0.0, 0.0
        self._prev_close: float | None = None
        self._cum_v = self._cum_b = self._b_at_last = 0.0
        self._oi: deque[float] = deque(maxlen=n_buckets)
        self._oi_sum = 0.0
        self._open: tuple[int, int] | None = None  # [start, end) ns of the bar being built from trades
        self._close_px = self._volume = self._buy = 0.0  # its last price, volume and true-sign buy volume
        self._sided = False  # whether a trade in it came with a side (then it is not classified by BVC)
        self._next_start: int | None = None  # where the grid resumes after the last closed bar

    @property
    def sigma(self) -> float:
        """σ used for the next classification."""
        if self.fixed_sigma is not None:
            return self.fixed_sigma
        return math.sqrt(self._m2 / (self._n - 1)) if self._n >= 2 else math.nan

    def warm(self, start_ns: npt.ArrayLike, close: npt.ArrayLike, volume: npt.ArrayLike) -> None:
        """Seed from past bars on this grid (by start, oldest first) before any live input, as
        ``vpin_from_bars`` would.

        Bars outside the sessions are dropped, as trades are. The rest are classified by BVC with σ
        of their own changes (or the fixed σ), their changes seed the trailing σ, and the grid
        resumes after the last one, so live trades continue the same bar sequence.
        """
        if self._prev_close is not None or self._open is not None:
            raise ValueError("warm: only before any bar or trade")
        starts = np.asarray(start_ns, dtype=np.int64)
        px, vol = np.asarray(close, dtype=np.float64), np.asarray(volume, dtype=np.float64)
        keep = in_session(starts)
        starts, px, vol = starts[keep], px[keep], vol[keep]
        _check(self.bucket_volume, self.n_buckets, vol)
        if starts.size == 0:
            return
        dp = np.diff(px, prepend=px[:1])
        if self.fixed_sigma is None:  # the Welford state (count, mean, M2) these changes leave
            self._n, self._mean = dp.size - 1, float(np.mean(dp[1:])) if dp.size > 1 else 0.0
            self._m2 = float(np.sum((dp[1:] - self._mean) ** 2))
        sig = price_change_sigma(px) if self.fixed_sigma is None else self.fixed_sigma
        for v, f in zip(vol.tolist(), bvc_buy_fraction(dp, sig).tolist(), strict=True):
            self._fold(v, f)
        self._prev_close = float(px[-1])
        self._next_start = self._bar_end(int(starts[-1]))

    def update_bar(self, end_ns: int, close: float, volume: float, buy_volume: float | None = None) -> float | None:
        """Add one closed session bar (BVC, or true sign when ``buy_volume`` is given); the VPIN of the
        last bucket it completes, if any."""
        if volume < 0.0:
            raise ValueError(f"bar volume must be >= 0, got {volume}")
        if buy_volume is not None and not 0.0 <= buy_volume <= volume:
            raise ValueError(f"buy volume must be in [0, {volume}], got {buy_volume}")
        dp = 0.0 if self._prev_close is None else close - self._prev_close
        if self._prev_close is not None and self.fixed_sigma is None:
            self._n += 1
            delta = dp - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (dp - self._mean)
        self._prev_close = close
        if buy_volume is None:
            return self._fold(volume, _buy_fraction_scalar(dp, self.sigma))
        return self._fold(volume, buy_volume / volume if volume > 0.0 else 0.0)

    def _fold(self, volume: float, frac: float) -> float | None:
        """Add a bar's volume with its buy share to the buckets, splitting it at their boundaries."""
        self._cum_b += volume * frac
        self._cum_v += volume
        out: float | None = None
        while self._cum_v >= self.bucket_volume * (self.buckets_completed + 1):
            bound = self.bucket_volume * (self.buckets_completed + 1)
            b_at = self._cum_b - frac * (self._cum_v - bound)
            out = self._complete_bucket(b_at - self._b_at_last)
            self._b_at_last = b_at
        return out

    def _complete_bucket(self, buy: float) -> float | None:
        if len(self._oi) == self.n_buckets:
            self._oi_sum -= self._oi[0]
        oi = abs(self.bucket_volume - 2.0 * buy)
        self._oi.append(oi)
        self._oi_sum += oi
        self.buckets_completed += 1
        if self.buckets_completed % self._RESUM_EVERY == 0:
            self._oi_sum = math.fsum(self._oi)  # cancel running-sum drift, amortised O(1)
        if len(self._oi) < self.n_buckets:
            return None
        self.value = min(max(self._oi_sum / (self.n_buckets * self.bucket_volume), 0.0), 1.0)
        return self.value

    def reading(self) -> VpinReading:
        """The current value, or None and how many of the n buckets are complete."""
        k = len(self._oi)
        reason = "" if self.value is not None else f"{k} of {self.n_buckets} buckets complete"
        return VpinReading(self.value, self.bucket_volume, k, "true_sign" if self.signed_trades else "bvc", reason)

    def update_trade(self, ts_ns: int, price: float, size: float, side: float | None = None) -> float | None:
        """Add one trade (side: > 0 buyer-initiated, < 0 seller, 0 unknown, None not given); closes
        earlier bars first, so it may return a new VPIN."""
        if size < 0.0:
            raise ValueError(f"trade size must be >= 0, got {size}")
        if self._open is not None and self._open[0] <= ts_ns < self._open[1]:
            self._close_px = price
            if side is None:  # the common case inlined: _count's work for a print without a side
                self._volume += size
                self._buy += 0.5 * size
            else:
                self._count(size, side)
            return None
        start = self._session_bar_start(ts_ns)
        if start is None:
            return None
        late = (self._open is not None and ts_ns < self._open[0]) or (
            self._next_start is not None and start < self._next_start)
        if late:
            self._count_late(size, side)
            return None
        out = self.advance(start)
        self._open, self._close_px = (start, self._bar_end(start)), price
        self._volume, self._buy, self._sided = 0.0, 0.0, False
        self._count(size, side)
        return out

    def _count(self, size: float, side: float | None) -> None:
        self._volume += size
        if side is not None:
            self._sided = True
        if side is None or side == 0.0:
            self._buy += 0.5 * size  # unknown aggressor: half-half (used only in a bar some trade signs)
        else:
            self.signed_trades += 1
            self._buy += size if side > 0.0 else 0.0

    def _count_late(self, size: float, side: float | None) -> None:
        if self._open is None:  # open the next grid bar at the carried close: a late print moves no price
            assert self._next_start is not None
            assert self._prev_close is not None
            first = self._grid_start_at_or_after(self._next_start)
            self._open, self._close_px = (first, self._bar_end(first)), self._prev_close
            self._volume, self._buy, self._sided = 0.0, 0.0, False
        self._count(size, side)

    def advance(self, now_ns: int) -> float | None:
        """Close every bar that ended by ``now_ns`` (empty ones carry the close forward)."""
        out: float | None = None
        if self._open is not None and self._open[1] <= now_ns:
            out = self.update_bar(self._open[1], self._close_px, self._volume, self._buy if self._sided else None)
            self._next_start, self._open = self._open[1], None
        if self._open is not None or self._next_start is None or self._prev_close is None:
            return out
        start = self._grid_start_at_or_after(self._next_start)
        while (end := self._bar_end(start)) <= now_ns:
            value = self.update_bar(end, self._prev_close, 0.0)
            out = out if value is None else value
            start = self._grid_start_at_or_after(end)
        self._next_start = start
        return out

    def _session_bar_start(self, ts_ns: int) -> int | None:
        bounds = _bars.session_ns(_bars.ny_date(ts_ns))
        if bounds is None or not bounds[0] <= ts_ns < bounds[1]:
            return None
        return bounds[0] + (ts_ns - bounds[0]) // self.bar_ns * self.bar_ns

    def _bar_end(self, start: int) -> int:
        bounds = _bars.session_ns(_bars.ny_date(start))
        assert bounds is not None
        return min(start + self.bar_ns, bounds[1])

    def _grid_start_at_or_after(self, t: int) -> int:
        day = _bars.ny_date(t)
        for _ in range(366):
            bounds = _bars.session_ns(day)
            if bounds is not None and t < bounds[1]:
                if t <= bounds[0]:
                    return bounds[0]
                return bounds[0] + -((bounds[0] - t) // self.bar_ns) * self.bar_ns
            day += timedelta(days=1)
        raise ValueError(f"no XNYS session within a year after {day}")
