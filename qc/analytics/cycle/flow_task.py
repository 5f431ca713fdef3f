"""Flow clustering every 60 s: the last 30 min of prints → 60 s window features → KMeans refit.

The fitted ``FlowModel`` lives in ``analytics:flow_model:{sym}`` as JSON, and each refit starts from
it, so labels (momentum / hedging / mean_reversion) never flip across refits or restarts. The
hedging direction comes from the latest net GEX (``hedge_direction_from_gex``), 0 before the first.
"""

from __future__ import annotations

import json
from collections import deque
from datetime import datetime
from typing import Any

import numpy as np

from qc.analytics.cycle.inputs import Trades
from qc.analytics.flow import FlowModel, fit_clusters, hedge_direction_from_gex, window_features
from qc.core import keys
from qc.runtime.store import Store

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
    raw = store.get(keys.flow_model(symbol))
    return FlowModel.from_dict(json.loads(raw)) if raw else None


def run(store: Store, symbol: str, tape: TradeTape, net_gex: float, now: datetime) -> dict[str, Any]:
    """Refit and write; returns the document written to ``analytics:flow_clusters:{sym}``."""
    t = tape.window(now.timestamp())
    feats = window_features((t.ts * 1e9).astype(np.int64), t.price, t.size, t.side,
                            hedge_direction_from_gex(net_gex))
    got = fit_clusters(feats, load_model(store, symbol))
    labels = got.labels
    doc: dict[str, Any] = {
        "as_of": now.isoformat(), "windows": len(feats), "trades": int(t.ts.size),
        "input_age_s": round(now.timestamp() - float(t.ts.max()), 3) if t.ts.size else None,
        "current": labels[-1] if labels else None, "reason": got.reason,
        "counts": {label: labels.count(label) for label in sorted(set(labels))},
        "model": got.model.to_dict() if got.model is not None else None,
    }
    store.set(keys.flow_clusters(symbol), json.dumps(doc, separators=(",", ":")))
    if got.model is not None:
        store.set(keys.flow_model(symbol), json.dumps(got.model.to_dict(), separators=(",", ":")))
    return doc
