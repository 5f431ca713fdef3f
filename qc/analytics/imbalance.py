"""Order-book imbalance over the top N levels, microprice, and venue attribution of displayed depth.

Conventions (stated once here):

- Book input per side: arrays ordered by level, level 0 the best (highest bid, lowest ask); sizes in
  shares, ≥ 0; venue codes as IB reports them in L2 depth (``ARCA``, ``ISLAND``, ``BATS``, ``IEX``,
  ``NYSE`` …). Size arrays may also be 2-D (snapshots × levels): every reduction is over the last axis.
- Imbalance: I = (Σ w_k b_k − Σ w_k a_k) / (Σ w_k b_k + Σ w_k a_k) over levels k < N, in [−1, 1];
  **positive = bid-heavy** (more resting buy interest), −1 all asks, NaN for an empty book.
  Depth weights decay with distance from the touch, because deep quotes are cheap to show and
  quick to cancel (Cao, Hansch & Wang 2009, "The information content of an open limit-order book"):
  ``"exp"`` (default) w_k = exp(−decay·k), decay = 0.5; decay = 0 weighs levels equally;
  ``"inverse"`` w_k = 1/(k + 1).
- Microprice: the size-weighted mid of the touch, (P_b Q_a + P_a Q_b) / (Q_b + Q_a) (Gatheral & Oomen
  2010, "Zero-intelligence realized variance estimation"): it leans toward the side whose queue is
  thinner, i.e. where the next trade is likelier to move the price. Equal sizes give the mid; within
  [bid, ask] always; no size on either side gives the mid.
- Venue attribution per side: each venue's share of displayed size (over the top N levels, or all),
  and its concentration as the Herfindahl-Hirschman index H = Σ s_v² in [1/#venues, 1] (1 = one venue
  shows everything). An empty side has no shares and H = NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Weighting = Literal["exp", "inverse"]

DEFAULT_LEVELS = 5
DEFAULT_DECAY = 0.5


def level_weights(n_levels: int, weighting: Weighting = "exp", decay: float = DEFAULT_DECAY) -> FloatArray:
    """Weight of each of the first ``n_levels`` levels, level 0 (the touch) weighing 1."""
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    k = np.arange(n_levels, dtype=np.float64)
    if weighting == "exp":
        if decay < 0.0:
            raise ValueError(f"decay must be >= 0, got {decay}")
        return np.exp(-decay * k)
    if weighting == "inverse":
        out: FloatArray = 1.0 / (k + 1.0)
        return out
    raise ValueError(f"weighting must be 'exp' or 'inverse', got {weighting!r}")


def _sizes(name: str, size: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(size, dtype=np.float64)
    if arr.size and not bool(np.all(arr >= 0.0)):
        raise ValueError(f"{name} must be >= 0 (and not NaN)")
    return arr


def _weighted_depth(size: FloatArray, n_levels: int, weighting: Weighting, decay: float) -> FloatArray:
    top = size[..., :n_levels]
    out: FloatArray = top @ level_weights(top.shape[-1], weighting, decay) if top.shape[-1] else \
        np.zeros(top.shape[:-1])
    return out


def book_imbalance(bid_size: npt.ArrayLike, ask_size: npt.ArrayLike, n_levels: int = DEFAULT_LEVELS,
                   weighting: Weighting = "exp", decay: float = DEFAULT_DECAY) -> FloatArray:
    """Depth-weighted imbalance in [−1, 1], positive when the bid side is heavier."""
    level_weights(n_levels, weighting, decay)  # validates the parameters even for an empty side
    bid = _weighted_depth(_sizes("bid_size", bid_size), n_levels, weighting, decay)
    ask = _weighted_depth(_sizes("ask_size", ask_size), n_levels, weighting, decay)
    total = bid + ask
    out: FloatArray = np.divide(bid - ask, total, out=np.full(np.shape(total), np.nan), where=total > 0.0)
    return out


def microprice(bid_px: npt.ArrayLike, bid_sz: npt.ArrayLike,
               ask_px: npt.ArrayLike, ask_sz: npt.ArrayLike) -> FloatArray:
    """Size-weighted mid of the touch: closer to the side with the thinner queue."""
    pb, pa = np.asarray(bid_px, dtype=np.float64), np.asarray(ask_px, dtype=np.float64)
    qb, qa = _sizes("bid_sz", bid_sz), _sizes("ask_sz", ask_sz)
    total = qb + qa
    safe = np.where(total > 0.0, total, 1.0)
    weighted = (pb * qa + pa * qb) / safe
    out: FloatArray = np.where(total > 0.0, np.clip(weighted, np.minimum(pb, pa), np.maximum(pb, pa)),
                               0.5 * (pb + pa))
    return out


@dataclass(frozen=True)
class SideAttribution:
    """One side's displayed depth by venue: share of size (sums to 1) and Herfindahl index."""

    shares: dict[str, float]
    herfindahl: float


@dataclass(frozen=True)
class VenueAttribution:
    """Venue attribution of both sides of a book."""

    bid: SideAttribution
    ask: SideAttribution


def side_attribution(venues: Sequence[str] | npt.NDArray[np.str_], size: npt.ArrayLike,
                     n_levels: int | None = None) -> SideAttribution:
    """Each venue's share of one side's displayed size, and the side's Herfindahl index.

    A live book side (a list of at most ``SMALL_SIDE`` levels) takes a plain-Python path: numpy's
    per-call overhead made this 90 µs per book on `qc stream`'s hot path, the loop takes ~10 µs.
    Both paths give the same result (a property test holds them to each other).
    """
    if isinstance(venues, list | tuple) and isinstance(size, list | tuple) and len(venues) <= SMALL_SIDE:
        return _side_attribution_small(venues, size, n_levels)
    sz = _sizes("size", size)
    codes = np.asarray(venues, dtype=np.str_)
    if codes.shape != sz.shape or sz.ndim != 1:
        raise ValueError("venues and size must be one-dimensional and of equal length")
    if n_levels is not None:
        codes, sz = codes[:n_levels], sz[:n_levels]
    total = float(sz.sum())
    if total <= 0.0:
        return SideAttribution({}, float("nan"))
    names, inverse = np.unique(codes, return_inverse=True)
    share = np.bincount(inverse, weights=sz, minlength=names.size) / total
    keep = share > 0.0
    return SideAttribution(dict(zip(names[keep].tolist(), share[keep].tolist(), strict=True)),
                           float(np.sum(share * share)))


SMALL_SIDE = 64


def _side_attribution_small(venues: Sequence[str], size: Sequence[float], n_levels: int | None) -> SideAttribution:
    if len(venues) != len(size):
        raise ValueError("venues and size must be one-dimensional and of equal length")
    if n_levels is not None:
        venues, size = venues[:n_levels], size[:n_levels]
    by_venue: dict[str, float] = {}
    for venue, sz in zip(venues, size, strict=True):
        sz = float(sz)
        if not sz >= 0.0:
            raise ValueError("size must be >= 0 (and not NaN)")
        by_venue[str(venue)] = by_venue.get(str(venue), 0.0) + sz
    total = sum(by_venue.values())
    if total <= 0.0:
        return SideAttribution({}, float("nan"))
    shares = {venue: share for venue in sorted(by_venue) if (share := by_venue[venue] / total) > 0.0}
    return SideAttribution(shares, sum(share * share for share in shares.values()))


def venue_attribution(bid_venue: Sequence[str] | npt.NDArray[np.str_], bid_size: npt.ArrayLike,
                      ask_venue: Sequence[str] | npt.NDArray[np.str_], ask_size: npt.ArrayLike,
                      n_levels: int | None = None) -> VenueAttribution:
    """Venue shares and concentration of displayed depth on both sides."""
    return VenueAttribution(side_attribution(bid_venue, bid_size, n_levels),
                            side_attribution(ask_venue, ask_size, n_levels))
