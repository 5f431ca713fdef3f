"""Warm start: past 1-minute bars so VPIN, realised vol and the regime history exist within a minute.

Source order: ``market:{sym}:bars:1min`` when it holds at least a session's worth of minutes (what
`qc stream` rolled up), else Alpha Vantage TIME_SERIES_INTRADAY 1min ``outputsize=full`` through the
same rate-limited client `qc chains` uses (the simulator serves it). Without either, VPIN reports
"no bucket volume" until live minutes accumulate: a null with its reason, not a zero.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Protocol

from qc.analytics.cycle.inputs import Bars, bars_from_rows, read_bars
from qc.analytics.regime import SESSION_MINUTES
from qc.core.clock import NEW_YORK
from qc.runtime.store import Store

log = logging.getLogger(__name__)
SERIES = "Time Series (1min)"


class BarSource(Protocol):
    def get(self, function: str, **params: str) -> Any: ...


def av_rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """TIME_SERIES_INTRADAY's series (New York wall time, newest first) as bar rows, start in epoch s."""
    out = []
    for stamp, bar in body.get(SERIES, {}).items():
        start = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=NEW_YORK).timestamp()
        out.append({"start": start, "open": bar["1. open"], "high": bar["2. high"], "low": bar["3. low"],
                    "close": bar["4. close"], "volume": bar["5. volume"]})
    return out


def past_bars(store: Store, symbol: str, av: BarSource | None) -> tuple[Bars, str]:
    """The warm bars and where they came from ("redis", "alpha_vantage" or "none: <why>")."""
    bars = read_bars(store, symbol)
    if len(bars) >= SESSION_MINUTES:
        return bars, "redis"
    if av is None:
        return bars, "redis" if len(bars) else "none: no bars in Redis and no Alpha Vantage key"
    got = av.get("TIME_SERIES_INTRADAY", symbol=symbol, interval="1min", outputsize="full")
    if got.kind != "ok" or got.body is None:
        log.warning("%s warm start: TIME_SERIES_INTRADAY %s (%s)", symbol, got.kind, got.reason)
        return bars, "redis" if len(bars) else f"none: alpha vantage {got.kind}"
    rows = av_rows(got.body)
    return bars_from_rows(rows), "alpha_vantage"
