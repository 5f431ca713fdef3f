"""Vol regime with positioning: realised vol (Rogers-Satchell, 1-min bars), IV − RV, term structure,
gamma regime, percentile of today's RV within the trailing daily history, and the label.

History is ``analytics:{sym}:regime:history``: one member per session date (score = date ordinal),
so a restart re-writes today's entry rather than adding a second one.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import numpy as np

from qc.analytics.bars import ny_date
from qc.analytics.cycle.inputs import Bars
from qc.analytics.cycle.positioning_task import Snapshot, atm_iv
from qc.analytics.regime import (
    MINUTE,
    SESSION_MINUTES,
    gamma_regime,
    percentile_rank,
    regime_label,
    rogers_satchell,
    term_structure_ratio,
    variance_risk_premium,
    vol_band,
)
from qc.analytics.schedule import fmt_fields
from qc.core import keys
from qc.runtime.store import Store

MIN_BARS = 30


def realised_vol(bars: Bars, last: int = SESSION_MINUTES) -> float:
    """Annualised RS vol of the last session's worth of minutes; NaN with fewer than ``MIN_BARS``."""
    if len(bars) < MIN_BARS:
        return math.nan
    sl = slice(-last, None)
    return rogers_satchell(bars.open[sl], bars.high[sl], bars.low[sl], bars.close[sl], periods_per_year=MINUTE)


def daily_vols(bars: Bars) -> dict[date, float]:
    """RV per New York session date in ``bars`` (dates with fewer than ``MIN_BARS`` minutes skipped)."""
    days = np.array([ny_date(int(s * 1e9)).toordinal() for s in bars.start.tolist()])
    out: dict[date, float] = {}
    for d in np.unique(days):
        on = days == d
        if on.sum() >= MIN_BARS:
            out[date.fromordinal(int(d))] = rogers_satchell(bars.open[on], bars.high[on], bars.low[on],
                                                            bars.close[on], periods_per_year=MINUTE)
    return out


def record_history(store: Store, symbol: str, vols: dict[date, float]) -> None:
    key = keys.regime_history(symbol)
    pipe = store.client.pipeline(transaction=False)
    for day, rv in vols.items():
        pipe.zremrangebyscore(key.name, day.toordinal(), day.toordinal())
        pipe.zadd(key.name, {json.dumps({"date": day.isoformat(), "rv": rv}): day.toordinal()})
    pipe.expire(key.name, key.ttl_s)
    pipe.execute()


def history_vols(store: Store, symbol: str) -> list[float]:
    return [float(json.loads(m)["rv"]) for m in store.client.zrange(keys.regime_history(symbol).name, 0, -1)]


def regime_fields(snap: Snapshot, bars: Bars, history: list[float], now: datetime) -> dict[str, str]:
    """The `analytics:{sym}:regime` hash; `label` and `gamma_regime` also go into the gex hash."""
    p, rv = snap.pos, realised_vol(bars)
    near = atm_iv(snap.chain, True)
    far = atm_iv(snap.chain, False)
    ratio = term_structure_ratio(near, far) if math.isfinite(near) and math.isfinite(far) else math.nan
    pct = percentile_rank(rv, history)
    gamma = gamma_regime(p.spot, p.zero_gamma.level, p.gex_usd_per_1pct)
    band = vol_band(pct)
    out = fmt_fields({"rv_1min_annualised": rv, "atm_iv_near": near, "atm_iv_far": far,
                      "iv_minus_rv": variance_risk_premium(near, rv) if math.isfinite(near) else None,
                      "term_ratio": ratio, "rv_percentile": pct, "history_days": len(history),
                      "bars_used": min(len(bars), SESSION_MINUTES), "as_of": now.isoformat()})
    out |= {"gamma_regime": gamma.value, "vol_band": band, "label": regime_label(gamma, band, ratio)}
    return out

