"""Warm start: past 1-minute bars so VPIN, realised vol and the regime history exist within a minute.

Data enters only through ingestion: the warm bars are ``market:{sym}:bars:1min`` and nothing else.
`qc stream` fills that list with IB's historical 1-minute TRADES bars on every (re)connect, merged
under its live minutes (``qc.ingest.cycle.backfill``), so a freshly started `qc analytics` finds the
last sessions there. An empty list is reported as the source ("none: …"): VPIN then says "no bucket
volume" until live minutes accumulate, a null with its reason, not a zero.
"""

from __future__ import annotations

from qc.analytics.cycle.inputs import Bars, read_bars
from qc.core import keys
from qc.runtime.store import Store


def past_bars(store: Store, symbol: str) -> tuple[Bars, str]:
    """The warm bars and where they came from ("redis", or "none: <why>")."""
    bars = read_bars(store, symbol)
    if len(bars):
        return bars, "redis"
    return bars, f"none: no complete bars in {keys.bars_1min(symbol).name} (is `qc stream` running?)"
