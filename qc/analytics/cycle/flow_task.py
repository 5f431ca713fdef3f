"""Flow clustering every 60 s: the last 30 min of prints → 60 s window features → KMeans refit.

The fitted ``FlowModel`` lives in ``analytics:flow_model:{sym}`` as JSON, and each refit starts from
it, so labels (momentum / hedging / mean_reversion) never flip across refits or restarts. The
hedging direction comes from the latest net GEX (``hedge_direction_from_gex``), 0 before the first.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime

import numpy as np

from qc.analytics.codec import FlowClusters, FlowModelDoc
from qc.analytics.cycle.inputs import Trades
from qc.analytics.flow import FlowModel, fit_clusters, hedge_direction_from_gex, window_features
from qc.core import keys
from qc.core.codec import Absent
from qc.runtime.store import Store

log = logging.getLogger(__name__)
KEEP_S = 30 * 60.0


class TradeTape:
    """The recent prints of one symbol, as chunks of arrays trimmed to ``KEEP_S`` of clock time."""

    def __init__(self) -> None:
        self.chunks: deque[Trades] = deque()

    def add(self, t: Trades) -> None:
        if t.ts.size:
            self.chunks.append(t)

    def window(self, now_epoch: float) -> Trades:
        while self.chunks and float(self.chunks[0].ts.max()) < now_epoch - KEEP_S:
            self.chunks.popleft()
        parts = list(self.chunks) or [Trades(*(np.empty(0) for _ in range(4)))]
        return Trades(*(np.concatenate([getattr(c, n) for c in parts]) for n in ("ts", "price", "size", "side")))


def load_model(store: Store, symbol: str) -> FlowModel | None:
    """The stored model to refit from; None (logged) when absent, malformed or made for other features."""
    key = keys.flow_model(symbol)
    doc = FlowModelDoc.from_redis(store.get(key), key=key.name)
    if isinstance(doc, Absent):
        if doc.reason != "missing":
            log.warning("%s: refitting from scratch: %s", symbol, doc)
        return None
    try:
        return FlowModel.from_dict(doc.as_dict())
    except ValueError as exc:  # another feature set or label set: its labels cannot carry over
        log.warning("%s: refitting from scratch: %s: %s", symbol, key.name, exc)
        return None


def run(store: Store, symbol: str, tape: TradeTape, net_gex: float, now: datetime) -> FlowClusters:
    """Refit and write; returns the value written to ``analytics:flow_clusters:{sym}``."""
    t = tape.window(now.timestamp())
    feats = window_features((t.ts * 1e9).astype(np.int64), t.price, t.size, t.side,
                            hedge_direction_from_gex(net_gex))
    got = fit_clusters(feats, load_model(store, symbol))
    labels = got.labels
    model = None if got.model is None else FlowModelDoc.from_dict(got.model.to_dict())
    value = FlowClusters(
        now, len(feats), int(t.ts.size), round(max(0.0, now.timestamp() - float(t.ts.max())), 3) if t.ts.size else None,
        labels[-1] if labels else None, got.reason, {label: labels.count(label) for label in sorted(set(labels))},
        model)
    store.set(keys.flow_clusters(symbol), value.to_redis())
    if model is not None:
        store.set(keys.flow_model(symbol), model.to_redis())
    return value
