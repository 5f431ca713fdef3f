"""Vol regime with positioning: realised vol (Rogers-Satchell, 1-min bars), IV − RV, term structure,
gamma regime, percentile of today's RV within the trailing daily history, and the label.

History is ``analytics:{sym}:regime:history``: one member per session date (score = date ordinal),
so a restart re-writes today's entry rather than adding a second one.
"""

from __future__ import annotations

import logging
import math
from datetime import date, datetime

from qc.analytics.codec import Regime, RegimeDay
from qc.analytics.cycle.inputs import Bars
from qc.analytics.cycle.positioning_task import Snapshot
from qc.analytics.regime import (
    SESSION_MINUTES,
    gamma_regime,
    percentile_rank,
    realised_vol,
    regime_label,
    term_structure_ratio,
    variance_risk_premium,
    vol_band,
)
from qc.analytics.skew import atm_iv
from qc.core import keys
from qc.core.codec import Absent, finite_or_none
from qc.runtime.store import Store

log = logging.getLogger(__name__)


def record_history(store: Store, symbol: str, vols: dict[date, float]) -> None:
    key = keys.regime_history(symbol)
    pipe = store.client.pipeline(transaction=False)
    for day, rv in vols.items():
        if not math.isfinite(rv):
            continue
        member = RegimeDay(day, rv)
        pipe.zremrangebyscore(key.name, member.score, member.score)
        pipe.zadd(key.name, {member.to_redis(): member.score})
    pipe.expire(key.name, key.ttl_s)
    pipe.execute()


def history_vols(store: Store, symbol: str) -> list[float]:
    """The stored daily RVs; a member of another schema or malformed is skipped and logged, never a zero."""
    key = keys.regime_history(symbol)
    days = [RegimeDay.from_redis(m, key=key.name) for m in store.client.zrange(key.name, 0, -1)]
    bad = [d for d in days if isinstance(d, Absent)]
    if bad:
        log.warning("%s: %d regime history members skipped (first: %s)", symbol, len(bad), bad[0])
    return [d.rv for d in days if isinstance(d, RegimeDay)]


def regime_value(snap: Snapshot, bars: Bars, history: list[float], now: datetime) -> Regime:
    """The `analytics:{sym}:regime` hash; `label` and `gamma_regime` also go into the gex hash."""
    p, rv = snap.pos, realised_vol(bars)
    near = atm_iv(snap.chain, True)
    far = atm_iv(snap.chain, False)
    ratio = term_structure_ratio(near, far) if math.isfinite(near) and math.isfinite(far) else math.nan
    pct = percentile_rank(rv, history)
    gamma = gamma_regime(p.spot, p.zero_gamma.level, p.gex_usd_per_1pct)
    band = vol_band(pct)
    vrp = variance_risk_premium(near, rv) if math.isfinite(near) else None
    return Regime(finite_or_none(rv), finite_or_none(near), finite_or_none(far), finite_or_none(vrp),
                  finite_or_none(ratio), finite_or_none(pct), len(history), min(len(bars), SESSION_MINUTES), now,
                  gamma.value, band, regime_label(gamma, band, ratio))

