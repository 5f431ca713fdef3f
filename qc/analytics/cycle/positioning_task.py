"""Dealer positioning every 30 s: chain → ``positioning`` + 0DTE skew + regime → the gex hash contract.

The hash's fields are the contract `qc gex` reads (see the brief in qc/core/keys.py ``gex``): every field
present on every write, "" for a None with its reason beside it, never a silent zero. A missing or
unusable chain writes ``stale=1`` with the reason and leaves earlier figures (with their
``chain_as_of``) visible rather than blanking them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from qc.analytics.cycle.inputs import ChainInput
from qc.analytics.exposure import Chain
from qc.analytics.positioning import Positioning, positioning
from qc.analytics.schedule import fmt, fmt_fields
from qc.analytics.skew import ZeroDteSkew, zero_dte_skew
from qc.core import keys
from qc.runtime.store import Store

CHAIN_STALE_S = 600.0  # two `qc chains` cycles (300 s) of clock time
PROFILE_LEVELS = 401  # ±20 % of spot in ~0.1 % steps: the flip lands within a strike step ($1 on SPY)


def skew_of_nearest(chain: Chain) -> ZeroDteSkew:
    """Skew of the nearest unexpired expiry (0DTE on an expiry day), calls and puts by strike."""
    live = chain.t_years > 0
    if not live.any():
        return ZeroDteSkew(None, None, None, None, None, None, ("no unexpired contracts",))
    expiry = chain.expiry[live].min()
    on = live & (chain.expiry == expiry)
    strikes = np.unique(chain.strike[on])
    ivs = {}
    for is_call in (True, False):
        side = on & (chain.is_call == is_call)
        iv = np.full(strikes.shape, np.nan)
        iv[np.searchsorted(strikes, chain.strike[side])] = chain.iv[side]
        ivs[is_call] = iv
    t = float(chain.t_years[on][0])
    return zero_dte_skew(strikes, ivs[True], ivs[False], chain.spot, t, chain.rate, chain.div_yield)


def atm_iv(chain: Chain, nearest: bool) -> float:
    """Mean call/put IV at the strike nearest spot, on the nearest (or farthest) unexpired expiry."""
    live = (chain.t_years > 0) & np.isfinite(chain.iv)
    if not live.any():
        return math.nan
    expiry = chain.expiry[live].min() if nearest else chain.expiry[live].max()
    on = live & (chain.expiry == expiry)
    k = chain.strike[on][np.argmin(np.abs(chain.strike[on] - chain.spot))]
    return float(np.mean(chain.iv[on & (chain.strike == k)]))


@dataclass(frozen=True)
class Snapshot:
    pos: Positioning
    skew: ZeroDteSkew
    chain: Chain


def compute(inp: ChainInput) -> Snapshot:
    return Snapshot(positioning(inp.chain, n_levels=PROFILE_LEVELS), skew_of_nearest(inp.chain), inp.chain)


def gex_fields(snap: Snapshot, inp: ChainInput, now: datetime, regime: dict[str, str]) -> dict[str, str]:
    """The `analytics:{sym}:gex` hash (contract with `qc gex`)."""
    p, s, zg = snap.pos, snap.skew, snap.pos.zero_gamma.level
    age = now.timestamp() - inp.as_of_epoch
    stale_reason = f"chain is {age:.0f} s old (> {CHAIN_STALE_S:.0f} s)" if age > CHAIN_STALE_S else ""
    skew_reason = "; ".join(s.reasons) if s.skew_25d is None or s.moneyness_skew is None else ""
    out = fmt_fields({
        "total": p.gex_usd_per_1pct, "dex_usd": p.dex_usd, "vanna_usd_per_volpt": p.vanna_usd_per_volpt,
        "charm_usd_per_day": p.charm_usd_per_day, "zero_gamma": zg,
        "zero_gamma_reason": p.zero_gamma.reason or "",
        "zero_gamma_distance_pct": None if zg is None else (zg / p.spot - 1.0) * 100.0,
        "call_wall": p.walls.call_gamma_strike, "put_wall": p.walls.put_gamma_strike,
        "call_oi_wall": p.walls.call_oi_strike, "put_oi_wall": p.walls.put_oi_strike,
        "share_0_1dte_abs_gex": p.share_0_1dte_abs_gex, "skew_25d": s.skew_25d,
        "skew_25d_normalised": s.normalised_25d, "skew_moneyness": s.moneyness_skew, "skew_reason": skew_reason,
        "spot": p.spot, "expiries": ",".join(str(d) for d in p.expiries_used.astype("datetime64[D]")),
        "convention": p.convention.value, "gamma_source": p.gamma_source.value, "contracts_used": p.contracts_used,
        "as_of": now.isoformat(), "chain_as_of": str(inp.doc.get("as_of", "")), "chain_age_s": round(age, 3),
        "stale": "1" if stale_reason else "0", "stale_reason": stale_reason,
    })
    out["regime"] = regime.get("label", "unknown")
    out["gamma_regime"] = regime.get("gamma_regime", "unknown")
    return out


def strikes_doc(p: Positioning) -> dict[str, Any]:
    """`analytics:{sym}:gex:strikes`: ``by_strike`` plus the short names; put_gex is dealer-signed (< 0)."""
    bs: dict[str, Any] = p.to_dict()["by_strike"]
    return {"strikes": bs["strike"], "call_gex": bs["call_gamma_usd_per_1pct"],
            "put_gex": [-v if v is not None else None for v in bs["put_gamma_usd_per_1pct"]], **bs}


def profile_doc(p: Positioning) -> dict[str, Any]:
    prof = p.to_dict()["profile"]
    return {"levels": prof["levels"], "gex_usd_per_1pct": prof["gex_usd_per_1pct"], "spot": p.spot,
            "zero_gamma": p.zero_gamma.level, "crossings": list(p.zero_gamma.crossings)}


def write(store: Store, symbol: str, snap: Snapshot, fields: dict[str, str]) -> None:
    store.hset(keys.gex(symbol), fields)
    store.set(keys.gex_by_strike(symbol), json.dumps(strikes_doc(snap.pos), separators=(",", ":")))
    store.set(keys.gex_profile(symbol), json.dumps(profile_doc(snap.pos), separators=(",", ":")))


def write_missing(store: Store, symbol: str, now: datetime, reason: str) -> None:
    """No usable chain: mark the hash stale with the reason; figures already there keep their as_of."""
    key = keys.gex(symbol)
    fields = {"stale": "1", "stale_reason": reason, "as_of": now.isoformat()}
    if store.hget(key, "total") is None:
        fields |= {"total": fmt(None), "chain_as_of": "", "chain_age_s": ""}
    store.hset(key, fields)
