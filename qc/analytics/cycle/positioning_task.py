"""Dealer positioning every 30 s: chain at the live spot → ``positioning`` + 0DTE skew + regime → the gex hash.

Every 30 s, chain unchanged or not: the chain (fetched every 5 min) is revalued at the spot of the
fresh quote (``qc.analytics.chain_input``), so the distance to zero gamma follows the market. The
values written are :mod:`qc.analytics.codec`'s (the contract `qc gex` reads). A missing or unusable
chain marks earlier figures ``stale=1`` with the reason rather than blanking them, or, before any
figures exist, writes the pending marker saying why there are none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from qc.analytics.chain_input import Spot, positioning_at_live_spot, positioning_figures
from qc.analytics.codec import (
    STRIKE_COLUMNS,
    GexPending,
    GexProfile,
    GexSnapshot,
    GexStrikes,
    Regime,
    gex_from_redis,
)
from qc.analytics.exposure import Chain
from qc.analytics.positioning import Positioning
from qc.analytics.skew import ZeroDteSkew, skew_of_nearest
from qc.core import keys
from qc.core.codec import Absent, finite_or_none
from qc.ingest.codec import OptionChain, Quote
from qc.runtime.store import Store


@dataclass(frozen=True)
class Snapshot:
    pos: Positioning
    skew: ZeroDteSkew
    chain: Chain
    spot: Spot
    chain_as_of: datetime
    chain_stale: str  # why the chain is too old ("" when it is not): OptionChain.stale_reason, the one threshold


def compute(chain: OptionChain, quote: Quote | Absent, now: datetime) -> Snapshot:
    """Positioning and 0DTE skew of ``chain`` valued at ``now`` and the live spot."""
    live = positioning_at_live_spot(chain, quote, now)
    return Snapshot(live.pos, skew_of_nearest(live.chain), live.chain, live.spot, chain.as_of,
                    chain.stale_reason(now.timestamp()))


def gex_snapshot(snap: Snapshot, now: datetime, regime: Regime) -> GexSnapshot:
    """The `analytics:{sym}:gex` hash (contract with `qc gex`)."""
    p, s = snap.pos, snap.skew
    age = now.timestamp() - snap.chain_as_of.timestamp()
    stale_reason = snap.chain_stale
    skew_reason = "; ".join(s.reasons) if s.skew_25d is None or s.moneyness_skew is None else ""
    numbers = {**positioning_figures(p), "skew_25d": s.skew_25d, "skew_25d_normalised": s.normalised_25d,
               "skew_moneyness": s.moneyness_skew}
    labels = {"zero_gamma_reason": p.zero_gamma.reason or "", "skew_reason": skew_reason, "regime": regime.label,
              "gamma_regime": regime.gamma_regime, "convention": p.convention.value,
              "gamma_source": p.gamma_source.value}
    expiries = tuple(date.fromisoformat(str(d)) for d in p.expiries_used.astype("datetime64[D]"))
    return GexSnapshot({n: finite_or_none(v) for n, v in numbers.items()}, labels, p.spot, snap.spot.source,
                       round(snap.spot.age_s, 3), snap.spot.reason, expiries, p.contracts_used, now,
                       snap.chain_as_of, round(age, 3), stale_reason)


def strikes_value(p: Positioning) -> GexStrikes:
    """`analytics:{sym}:gex:strikes` from ``by_strike``."""
    bs = p.to_dict()["by_strike"]
    return GexStrikes(tuple(bs["strike"]), {n: tuple(bs[n]) for n in STRIKE_COLUMNS})


def profile_value(p: Positioning) -> GexProfile:
    prof = p.to_dict()["profile"]
    return GexProfile(tuple(prof["levels"]), tuple(prof["gex_usd_per_1pct"]), p.spot, p.zero_gamma.level,
                      tuple(p.zero_gamma.crossings))


def write(store: Store, symbol: str, snap: Snapshot, gex: GexSnapshot) -> None:
    store.hset(keys.gex(symbol), gex.to_redis())
    store.set(keys.gex_by_strike(symbol), strikes_value(snap.pos).to_redis())
    store.set(keys.gex_profile(symbol), profile_value(snap.pos).to_redis())


def write_missing(store: Store, symbol: str, now: datetime, reason: str) -> None:
    """No usable chain: earlier figures stay, marked stale with the reason (their as_of unchanged, so
    their age shows); with none, the pending marker says why there is no positioning yet."""
    key = keys.gex(symbol)
    earlier = gex_from_redis(store.hgetall(key), key=key.name)
    if isinstance(earlier, GexSnapshot):
        store.hset(key, replace(earlier, stale_reason=reason).to_redis())
    else:
        store.hset(key, GexPending(now, reason).to_redis())
