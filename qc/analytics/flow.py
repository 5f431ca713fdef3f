"""Trade-flow clusters: 60 s windows of trades → features → KMeans → momentum / hedging / mean-reversion.

Inputs (time is passed in, never read)
- Trades as arrays: ``ts_ns`` (int, ns since the Unix epoch), ``price`` (> 0), ``size`` (shares, ≥ 0),
  ``side`` (+1 buyer-initiated aggressor, −1 seller-initiated, 0 unknown).
- ``hedge_direction``: the dealer hedging direction, a scalar or one value per trade (the value in
  force when the trade printed; a window uses the mean of its trades). +1 = dealers buy as price
  rises (net short gamma: they chase), −1 = dealers sell into rallies (net long gamma: they dampen),
  0 or NaN = unknown. From net GEX under the naive convention of ``analytics/exposure.py``
  (positive GEX = dealers long gamma) it is −sign(GEX): ``hedge_direction_from_gex``.
- Windows are the buckets [k·w, (k+1)·w) of the timestamps, w = 60 s, so aligned to whole UTC
  minutes; only windows with at least ``min_trades`` trades are kept.

Features per window (``FEATURE_NAMES`` are the clustering columns)
- imbalance = (buy − sell)/(buy + sell) volume, 0 with no signed volume; clustered as |imbalance|
  so buy-side and sell-side momentum are one kind of flow.
- log_volume = ln(1 + volume); block_share = share of volume in trades of size ≥ ``block_size``.
- impact = Kyle-lambda-like OLS through the origin of trade-to-trade log return on signed size,
  Σ r·q / Σ q², in bp per 1,000 shares; 0 without signed size (robust: no division by a small sum).
  > 0 means price moves with the flow.
- autocorr = lag-1 autocorrelation of trade-to-trade log returns (0 with < 3 returns or flat prices).
- alignment = imbalance × hedge × sign(window return): +|imbalance| when the flow is the trade
  dealers' hedging needs for the move that happened (buying a rally when they chase, selling it
  when they dampen). The price move is part of it because the hedge direction is defined per move.

Clustering: features are standardised (z = (x − mean)/scale, scale 1 for a constant column), KMeans
with 3 clusters. Labelling rule on standardised centroids c: scores momentum = c_|imbalance| +
c_autocorr + c_impact, hedging = c_alignment, mean_reversion = −c_autocorr; the permutation of the
3 labels over the 3 centroids with the highest total wins (all 6 tried, ties to the first in
itertools order). Refits given the previous model start KMeans from its centroids and inherit its
labels by the minimum-distance matching of new to old centroids, so labels never flip between
refits. Centroid row k always carries ``LABELS[k]``, so cluster ids mean the same thing in every model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

WINDOW_NS: Final = 60_000_000_000
BLOCK_SIZE: Final = 10_000.0  # shares: the classic NYSE block
MIN_TRADES: Final = 4  # three returns, the least a lag-1 autocorrelation needs
LABELS: Final = ("momentum", "hedging", "mean_reversion")
FEATURE_NAMES: Final = ("abs_imbalance", "log_volume", "block_share", "impact", "autocorr", "alignment")
_IMB, _VOL, _BLOCK, _IMPACT, _AUTOCORR, _ALIGN = range(len(FEATURE_NAMES))
_BP_PER_1000_SHARES: Final = 1e4 * 1e3
SUB_TICK_RETURN: Final = 1e-9  # below any tick ($0.0001 on a $100,000 share); log-price rounding is ~1e-16


@dataclass(frozen=True)
class WindowFeatures:
    """Per-window features, one entry per kept window in time order."""

    start_ns: IntArray
    n_trades: IntArray
    imbalance: FloatArray
    log_volume: FloatArray
    block_share: FloatArray
    impact: FloatArray
    autocorr: FloatArray
    alignment: FloatArray

    def __len__(self) -> int:
        return int(self.start_ns.size)

    def matrix(self) -> FloatArray:
        """Clustering columns in ``FEATURE_NAMES`` order."""
        cols = (
            np.abs(self.imbalance),
            self.log_volume,
            self.block_share,
            self.impact,
            self.autocorr,
            self.alignment,
        )
        return np.column_stack(cols).astype(np.float64).reshape(len(self), len(FEATURE_NAMES))


@dataclass(frozen=True)
class FlowModel:
    """Scaler and centroids (standardised space); centroid row k is labelled ``labels[k]``."""

    mean: FloatArray
    scale: FloatArray
    centroids: FloatArray
    labels: tuple[str, ...] = LABELS
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def predict(self, features: WindowFeatures) -> IntArray:
        """Index of the nearest centroid for each window."""
        return self._nearest(features.matrix())

    def _nearest(self, x: FloatArray) -> IntArray:
        z = (x - self.mean) / self.scale
        dist = ((z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        nearest: IntArray = np.argmin(dist, axis=1).astype(np.int64)
        return nearest

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and strings, ready for JSON in Redis."""
        return {
            "feature_names": list(self.feature_names),
            "labels": list(self.labels),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "centroids": self.centroids.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlowModel:
        """Rebuild a model from ``to_dict`` output, refusing one made for other features or labels."""
        names, labels = tuple(data["feature_names"]), tuple(data["labels"])
        if names != FEATURE_NAMES or labels != LABELS:
            raise ValueError(
                f"feature_names/labels: model is for {names}/{labels}, expected "
                f"{FEATURE_NAMES}/{LABELS}; refit without the previous model"
            )
        k, d = len(LABELS), len(FEATURE_NAMES)
        mean, scale = np.asarray(data["mean"], np.float64), np.asarray(data["scale"], np.float64)
        centroids = np.asarray(data["centroids"], np.float64)
        if mean.shape != (d,) or scale.shape != (d,) or centroids.shape != (k, d) or np.any(scale <= 0):
            raise ValueError("mean/scale/centroids: wrong shapes or non-positive scale")
        return cls(mean, scale, centroids)


@dataclass(frozen=True)
class FlowClusters:
    """Result of one fit: features, model (None on insufficient data) and each window's cluster."""

    features: WindowFeatures
    model: FlowModel | None
    cluster: IntArray  # index into LABELS per window; −1 when there is no model
    reason: str | None = None  # why there is no model ("insufficient data: …")

    @property
    def ok(self) -> bool:
        return self.model is not None

    @property
    def labels(self) -> tuple[str, ...]:
        """Label name per window ("unassigned" without a model)."""
        return tuple(LABELS[i] if i >= 0 else "unassigned" for i in self.cluster)


def hedge_direction_from_gex(net_gex: float) -> float:
    """−sign(net GEX): dealers long gamma (GEX > 0) sell rallies; NaN/0 GEX gives 0 (unknown)."""
    return 0.0 if not math.isfinite(net_gex) else -float(np.sign(net_gex))


def _trades(
    ts_ns: ArrayLike, price: ArrayLike, size: ArrayLike, side: ArrayLike, hedge: ArrayLike | float
) -> tuple[IntArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    t = np.asarray(ts_ns, dtype=np.int64).ravel()
    p, q = np.asarray(price, np.float64).ravel(), np.asarray(size, np.float64).ravel()
    s = np.asarray(side, np.float64).ravel()
    h = np.asarray(hedge, np.float64)
    h = np.full(t.shape, float(h)) if h.ndim == 0 else h.ravel()
    if not t.size == p.size == q.size == s.size == h.size:
        raise ValueError(
            f"ts_ns/price/size/side/hedge_direction: lengths differ "
            f"({t.size}, {p.size}, {q.size}, {s.size}, {h.size})"
        )
    if not np.all(np.isfinite(p) & (p > 0)):
        raise ValueError("price: must be finite and > 0")
    if not np.all(np.isfinite(q) & (q >= 0)):
        raise ValueError("size: must be finite and >= 0")
    if not np.all(np.isin(s, (-1.0, 0.0, 1.0))):
        raise ValueError("side: must be +1 (buy aggressor), -1 (sell aggressor) or 0 (unknown)")
    h = np.where(np.isnan(h), 0.0, h)
    if not np.all(np.isfinite(h)):
        raise ValueError("hedge_direction: must be finite (NaN means unknown)")
    order = np.argsort(t, kind="stable")
    return t[order], p[order], q[order], s[order], h[order]


def _lag1_autocorr(r: FloatArray) -> float:
    if r.size < 3 or np.ptp(r) < SUB_TICK_RETURN:  # flat: what varies is rounding, not price
        return 0.0
    d = r - r.mean()
    return float(d[:-1] @ d[1:] / (d @ d))


def _window_row(p: FloatArray, q: FloatArray, s: FloatArray, h: FloatArray, block_size: float) -> list[float]:
    buy, sell, total = float(q[s > 0].sum()), float(q[s < 0].sum()), float(q.sum())
    imbalance = (buy - sell) / (buy + sell) if buy + sell > 0 else 0.0
    block = min(1.0, float(q[q >= block_size].sum()) / total) if total > 0 else 0.0
    r, signed = np.diff(np.log(p)), (s * q)[1:]
    ss = float(signed @ signed)
    impact = float(r @ signed) / ss * _BP_PER_1000_SHARES if ss > 0 else 0.0
    alignment = imbalance * float(h.mean()) * float(np.sign(r.sum()))
    return [imbalance, math.log1p(total), block, impact, _lag1_autocorr(r), alignment]


def window_features(
    ts_ns: ArrayLike,
    price: ArrayLike,
    size: ArrayLike,
    side: ArrayLike,
    hedge_direction: ArrayLike | float = 0.0,
    *,
    window_ns: int = WINDOW_NS,
    block_size: float = BLOCK_SIZE,
    min_trades: int = MIN_TRADES,
) -> WindowFeatures:
    """Bucket trades into aligned windows and compute the flow features of each busy-enough window."""
    if window_ns <= 0 or min_trades < 1:
        raise ValueError(f"window_ns/min_trades: must be positive, got {window_ns}, {min_trades}")
    t, p, q, s, h = _trades(ts_ns, price, size, side, hedge_direction)
    bucket = t // window_ns
    cuts = np.flatnonzero(np.diff(bucket)) + 1
    bounds = [(a, b) for a, b in zip(np.r_[0, cuts], np.r_[cuts, t.size], strict=True) if b - a >= min_trades]
    rows = [_window_row(p[a:b], q[a:b], s[a:b], h[a:b], block_size) for a, b in bounds]
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 6)
    return WindowFeatures(
        start_ns=np.array([bucket[a] * window_ns for a, _ in bounds], dtype=np.int64),
        n_trades=np.array([b - a for a, b in bounds], dtype=np.int64),
        imbalance=table[:, 0],
        log_volume=table[:, 1],
        block_share=table[:, 2],
        impact=table[:, 3],
        autocorr=table[:, 4],
        alignment=table[:, 5],
    )


def _standardiser(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    mean, std = x.mean(axis=0), x.std(axis=0)
    # A column constant up to rounding gets scale 1: its z is ~0 instead of amplified noise.
    constant = std <= 1e-9 * np.maximum(np.abs(mean), np.finfo(np.float64).tiny)
    return mean, np.where(constant | (std == 0), 1.0, std)


def _best_permutation(score: FloatArray) -> tuple[int, ...]:
    """perm[j] = row given column j, maximising Σ score[perm[j], j] (3! = 6 tries, first best wins)."""
    k = score.shape[1]
    return max(itertools.permutations(range(k)), key=lambda perm: sum(score[perm[j], j] for j in range(k)))


def rule_scores(centroids: FloatArray) -> FloatArray:
    """Score of each standardised centroid (rows) for each label (columns, ``LABELS`` order)."""
    c = centroids
    momentum = c[:, _IMB] + c[:, _AUTOCORR] + c[:, _IMPACT]
    return np.column_stack([momentum, c[:, _ALIGN], -c[:, _AUTOCORR]])


def match_centroids(new: FloatArray, old: FloatArray) -> tuple[int, ...]:
    """perm[j] = the new centroid that inherits old centroid j's label: least total distance."""
    distance = np.linalg.norm(new[:, None, :] - old[None, :, :], axis=2)
    return _best_permutation(-distance)


def _insufficient(x: FloatArray) -> str | None:
    k = len(LABELS)
    if x.shape[0] < k:
        return f"insufficient data: {x.shape[0]} window(s) with enough trades, need at least {k}"
    distinct = np.unique(x, axis=0).shape[0]
    if distinct < k:
        return f"insufficient data: only {distinct} distinct window(s), need at least {k}"
    return None


def fit_clusters(
    features: WindowFeatures, previous: FlowModel | None = None, *, seed: int = 0
) -> FlowClusters:
    """Cluster windows into momentum / hedging / mean-reversion, inheriting labels from ``previous``."""
    x = features.matrix()
    reason = _insufficient(x)
    if reason is not None:
        return FlowClusters(features, None, np.full(len(features), -1, dtype=np.int64), reason)
    mean, scale = _standardiser(x)
    z = (x - mean) / scale
    # One thread: a few hundred windows fit in ~20 ms on one core, but KMeans' OpenMP threads spin-wait
    # when the cores are busy with the other workers: 3.1 s per fit under two CPU hogs, against 0.02 s
    # single-threaded (measured), enough to stall an analytics cycle past its SIGTERM grace.
    with threadpool_limits(limits=1):
        if previous is None:
            centroids = KMeans(n_clusters=len(LABELS), n_init=10, random_state=seed).fit(z).cluster_centers_
            perm = _best_permutation(rule_scores(centroids))
        else:
            start = (previous.centroids * previous.scale + previous.mean - mean) / scale
            km = KMeans(n_clusters=len(LABELS), init=start, n_init=1, random_state=seed).fit(z)
            centroids = km.cluster_centers_
            perm = match_centroids(centroids, start)
    model = FlowModel(mean, scale, np.asarray(centroids, np.float64)[list(perm)])
    return FlowClusters(features, model, model._nearest(x))
