"""One symbol's inputs → every factor, once per cycle, shared by the four strategies.

Pure: the typed values a cycle read (``SymbolInputs``) and ``now`` in, a mapping of factors out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qc.analytics.codec import FlowClusters, GexSnapshot, Imbalance, Regime, Vpin
from qc.core import clock
from qc.core.codec import Absent
from qc.core.models import Bar
from qc.ingest.codec import AuctionImbalance, NewsSentiment, Quote, TradeRow
from qc.signals import factors as f
from qc.signals.model import LAST_HALF_HOUR as LAST_HALF_HOUR_NAME
from qc.signals.model import Factor

FLOW_WINDOW_S = 30.0  # the last half minute of prints: a burst shows within a cycle; calm flow nets out near 0
LAST_HALF_HOUR = timedelta(minutes=30)


@dataclass(frozen=True)
class SymbolInputs:
    """One symbol's decoded inputs at one cycle (each may be an Absent saying why not)."""

    symbol: str
    gex: GexSnapshot | Absent
    vpin: Vpin | Absent
    imbalance: Imbalance | Absent
    regime: Regime | Absent
    clusters: FlowClusters | Absent
    quote: Quote | Absent
    auction: AuctionImbalance | Absent
    news: NewsSentiment | Absent
    trades: Sequence[TradeRow]      # (market epoch, price, size, aggressor side), oldest first
    bars: Sequence[Bar]             # 1-minute bars, oldest first
    vpin_history: Sequence[tuple[datetime, float]]


def prior_close(bars: Sequence[Bar], now: datetime) -> float | None:
    """The close of the last bar before the current (or last) session's open."""
    opened = clock.most_recent_session(now).open
    before = [b for b in bars if b.ts < opened]
    return before[-1].close if before else None


def last_half_hour(bars: Sequence[Bar], now: datetime) -> Factor:
    """The day's return into the close, read only in the session's last half hour (from the calendar's close)."""
    today = clock.session(clock.new_york_date(now))
    if today is None or not today.close - LAST_HALF_HOUR <= now < today.close:
        return Factor(LAST_HALF_HOUR_NAME, None, None, {}, "only in the session's last 30 minutes")
    return f.last_half_hour(bars, prior_close(bars, now), now)


def compute(inputs: SymbolInputs, now: datetime, max_age_s: float) -> dict[str, Factor]:
    """Every factor for one symbol; each abstains on its own when its input is missing or stale."""
    got = [
        f.gamma_mode(inputs.gex, now, max_age_s=max_age_s),
        f.walls(inputs.gex, now, max_age_s=max_age_s),
        f.skew_0dte(inputs.gex, now, max_age_s=max_age_s),
        f.vpin_level(inputs.vpin, now, max_age_s=max_age_s),
        f.vpin_change(inputs.vpin_history, now, max_age_s=max_age_s),
        f.book_imbalance(inputs.imbalance, now, max_age_s=max_age_s),
        f.microprice(inputs.imbalance, inputs.quote, now, max_age_s=max_age_s),
        f.order_flow_rows(inputs.trades, now, window_s=FLOW_WINDOW_S),
        f.flow_cluster(inputs.clusters, f.recent_return(inputs.bars, now), now, max_age_s=max_age_s),
        f.iv_rv(inputs.regime, now, max_age_s=max_age_s),
        f.news(inputs.news, now),
        last_half_hour(inputs.bars, now),
        f.auction(inputs.auction, now, max_age_s=max_age_s),
    ]
    return {factor.name: factor for factor in got}


def inputs_of(factors: Mapping[str, Factor]) -> dict[str, dict[str, float | str | None]]:
    """What each factor read, for the signal's ``factor_inputs`` and `explain`."""
    return {name: dict(factor.inputs) for name, factor in factors.items()}
