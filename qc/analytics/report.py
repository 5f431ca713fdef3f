"""`qc gex` behind the command: Redis → one :class:`GexReport`, or a recompute from the chain.

Why a report and not the raw hash: a trader reads the numbers *with* their age, inputs and
staleness (reference §3.2: staleness must travel with the numbers), so every path that yields
numbers also yields ``as_of``, ``age_s`` against the clock (simulated time under `qc sim`) and the
reasons it may be stale. Every path that yields none raises one ``QcError`` saying what to run.

``--expiries 0dte|1dte|14dte|all`` selects expiries by DTE from the chain's rows at the chain's
``as_of`` (the New York date then); when that set differs from the worker's, the snapshot is
recomputed here with ``positioning()`` under the worker's convention and gamma source.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from qc.core import keys
from qc.core.clock import new_york_date
from qc.core.errors import QcError

if TYPE_CHECKING:
    from qc.analytics.positioning import Positioning
    from qc.runtime.store import Store

MAX_DTE: dict[str, int | None] = {"0dte": 0, "1dte": 1, "14dte": 14, "all": None}
MAX_AGE_S = 120.0  # `qc analytics` refreshes every 30 s: four missed cycles is stale
MAX_CHAIN_AGE_S = 600.0  # `qc chains` refreshes every 300 s: two missed cycles is stale
SOURCE_WORKER = "qc_analytics"
SOURCE_RECOMPUTED = "recomputed_from_chain"


@dataclass(frozen=True)
class Curve:
    """Parallel x/y series for a chart: strikes or spot levels against GEX ($ per 1 % move)."""

    x: tuple[float, ...]
    gex_usd_per_1pct: tuple[float, ...]


@dataclass(frozen=True)
class GexReport:
    """Dealer positioning for one symbol now, with its age, inputs and staleness."""

    symbol: str
    source: str
    selection: str | None
    as_of: datetime
    now: datetime
    spot: float
    fields: dict[str, float | None]  # net_gex, dex, vanna, charm, zero_gamma, walls, share, skews
    labels: dict[str, str | None]  # zero_gamma_reason, skew_reason, regime, gamma_regime, convention, …
    expiries: tuple[str, ...]
    contracts_used: int | None
    chain_as_of: datetime | None
    stale_reasons: tuple[str, ...]
    by_strike: Curve | None
    profile: Curve | None

    @property
    def age_s(self) -> float:
        return (self.now - self.as_of).total_seconds()

    @property
    def chain_age_s(self) -> float | None:
        return None if self.chain_as_of is None else (self.now - self.chain_as_of).total_seconds()

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


NUMBERS = ("total", "dex_usd", "vanna_usd_per_volpt", "charm_usd_per_day", "zero_gamma", "zero_gamma_distance_pct",
           "call_wall", "put_wall", "call_oi_wall", "put_oi_wall", "share_0_1dte_abs_gex", "skew_25d",
           "skew_25d_normalised", "skew_moneyness")
LABELS = ("zero_gamma_reason", "skew_reason", "regime", "gamma_regime", "convention", "gamma_source")


def _number(raw: str | None) -> float | None:
    """The hash's empty string (None upstream) and NaN both read as None: never a silent zero."""
    if raw is None or raw.strip() == "":
        return None
    value = float(raw)
    return value if math.isfinite(value) else None


def _instant(raw: str | None) -> datetime | None:
    if not raw:
        return None
    at = datetime.fromisoformat(raw)
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _curve(raw: str | None, x_name: str) -> Curve | None:
    if not raw:
        return None
    doc = json.loads(raw)
    pairs = [(float(x), float(y)) for x, y in zip(doc[x_name], doc["gex_usd_per_1pct"], strict=True)
             if x is not None and y is not None]
    return Curve(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def from_hash(symbol: str, h: dict[str, str], now: datetime, strikes: str | None, profile: str | None) -> GexReport:
    """The worker's snapshot as a report; its own stale flag plus our age check against ``now``."""
    as_of = _instant(h.get("as_of"))
    if as_of is None:
        raise QcError(f"{keys.gex(symbol).name} has no as_of", "is `qc analytics` an older version? (qc status)")
    reasons: list[str] = []
    if h.get("stale") == "1":
        reasons.append(h.get("stale_reason") or "flagged stale by qc analytics")
    age = (now - as_of).total_seconds()
    if age > MAX_AGE_S:
        reasons.append(f"positioning is {age:.0f} s old (qc analytics refreshes every 30 s)")
    used = h.get("contracts_used")
    return GexReport(
        symbol, SOURCE_WORKER, None, as_of, now, float(h["spot"]), {n: _number(h.get(n)) for n in NUMBERS},
        {n: h.get(n) or None for n in LABELS}, tuple(e for e in h.get("expiries", "").split(",") if e),
        int(float(used)) if used else None, _instant(h.get("chain_as_of")), tuple(reasons),
        _curve(strikes, "strike"), _curve(profile, "levels"))


def selected_expiries(chain_doc: dict[str, Any], selection: str) -> tuple[str, ...]:
    """Expiries of the chain's rows with DTE ≤ the selection's limit, DTE from New York's date at as_of."""
    limit = MAX_DTE[selection]
    today = new_york_date(datetime.fromisoformat(chain_doc["as_of"]))
    dates = sorted({str(r["expiry"]) for r in chain_doc["rows"]})
    return tuple(d for d in dates if limit is None or (date.fromisoformat(d) - today).days <= limit)


def chain_report(symbol: str, chain_doc: dict[str, Any], selection: str, worker: dict[str, str],
                 now: datetime) -> GexReport:
    """Recompute positioning from the chain for the selected expiries, under the worker's labels."""
    from qc.analytics.exposure import DEALER_CONVENTION, Convention, GammaSource
    from qc.analytics.positioning import positioning

    convention = Convention(worker.get("convention") or DEALER_CONVENTION.value)
    source = GammaSource(worker.get("gamma_source") or GammaSource.MODEL.value)
    pos = positioning(chain_from_doc(chain_doc), convention=convention, gamma_source=source,
                      max_dte=MAX_DTE[selection])
    chain_as_of = datetime.fromisoformat(chain_doc["as_of"])
    age = (now - chain_as_of).total_seconds()
    reasons = (f"option chain is {age:.0f} s old (qc chains refreshes every 300 s)",) if age > MAX_CHAIN_AGE_S else ()
    report = report_from_positioning(symbol, pos, chain_as_of, now)
    return replace(report, selection=selection, stale_reasons=reasons)


def chain_from_doc(doc: dict[str, Any]) -> Any:
    """The ``options:{sym}:chain`` JSON as an exposure ``Chain``, valued at the chain's own as_of."""
    import numpy as np

    from qc.analytics.exposure import chain_at

    rows = doc["rows"]

    def column(name: str) -> Any:
        return np.array([np.nan if r.get(name) is None else r[name] for r in rows], dtype=np.float64)

    return chain_at(datetime.fromisoformat(doc["as_of"]), float(doc["spot"]), column("strike"),
                    np.array([r["expiry"] for r in rows], dtype="datetime64[D]"),
                    np.array([r["right"] == "C" for r in rows]), column("iv"), column("open_interest"),
                    rate=float(doc.get("rate", 0.0)), div_yield=float(doc.get("div_yield", 0.0)),
                    vendor_gamma=column("gamma_vendor"), vendor_delta=column("delta_vendor"))


def report_from_positioning(symbol: str, pos: Positioning, chain_as_of: datetime, now: datetime) -> GexReport:
    """A report from a fresh ``positioning()`` result: as_of is the chain's, since that is what it describes."""
    from qc.analytics.regime import gamma_regime

    d = pos.to_dict()
    zg, spot = d["zero_gamma"]["level"], pos.spot
    w = d["walls"]
    numbers = {"total": d["gex_usd_per_1pct"], "dex_usd": d["dex_usd"],
               "vanna_usd_per_volpt": d["vanna_usd_per_volpt"], "charm_usd_per_day": d["charm_usd_per_day"],
               "zero_gamma": zg, "zero_gamma_distance_pct": None if zg is None else 100.0 * (zg - spot) / spot,
               "call_wall": w["call_gamma_strike"], "put_wall": w["put_gamma_strike"],
               "call_oi_wall": w["call_oi_strike"], "put_oi_wall": w["put_oi_strike"],
               "share_0_1dte_abs_gex": d["share_0_1dte_abs_gex"]}
    labels: dict[str, str | None] = {
        "zero_gamma_reason": d["zero_gamma"]["reason"], "convention": d["convention"],
        "gamma_source": d["gamma_source"], "gamma_regime": gamma_regime(spot, zg, d["gex_usd_per_1pct"]).value}
    return GexReport(
        symbol, SOURCE_RECOMPUTED, None, chain_as_of, now, spot, {n: numbers.get(n) for n in NUMBERS},
        {n: labels.get(n) for n in LABELS}, tuple(d["expiries_used"]), int(d["contracts_used"]), chain_as_of, (),
        Curve(tuple(d["by_strike"]["strike"]), tuple(d["by_strike"]["gex_usd_per_1pct"])),
        Curve(tuple(d["profile"]["levels"]), tuple(d["profile"]["gex_usd_per_1pct"])))


def load(store: Store, symbol: str, selection: str | None, now: datetime) -> GexReport:
    """The worker's snapshot when it answers the question asked, else a recompute; or one clear error."""
    worker = store.hgetall(keys.gex(symbol))
    raw_chain = store.get(keys.option_chain(symbol)) if selection else None
    if selection and raw_chain is not None:
        chain_doc: dict[str, Any] = json.loads(raw_chain)
        wanted = selected_expiries(chain_doc, selection)
        if not worker or wanted != tuple(e for e in worker.get("expiries", "").split(",") if e):
            return chain_report(symbol, chain_doc, selection, worker, now)
    elif selection and selection != "all":
        raise QcError(f"cannot recompute {symbol} for {selection}: no option chain in Redis",
                      f"run `qc chains {symbol}`; check `qc status`")
    if not worker:
        raise missing(store, symbol, now)
    report = from_hash(symbol, worker, now, store.get(keys.gex_by_strike(symbol)), store.get(keys.gex_profile(symbol)))
    return replace(report, selection=selection)


def missing(store: Store, symbol: str, now: datetime) -> QcError:
    """Say why there is nothing to show and what to run: worker down, chain feed failing, or no data."""
    raw_chain = store.get(keys.option_chain(symbol))
    if raw_chain is not None:
        age = (now - datetime.fromisoformat(json.loads(raw_chain)["as_of"])).total_seconds()
        return QcError(f"no positioning for {symbol} (its option chain is in Redis, {age:.0f} s old): "
                       "is `qc analytics` running?", "qc status")
    since = store.hget(keys.data_stale(), f"{symbol}:options_chain")
    if since:
        at = datetime.fromtimestamp(float(since), timezone.utc).isoformat(timespec="seconds")
        return QcError(f"stale: no chain for {symbol} since {at}, so no positioning either",
                       "`qc chains` is failing to refresh it; see `qc status`")
    return QcError(f"no data for {symbol}: no positioning and no option chain in Redis",
                   f"run `qc chains {symbol}` and `qc analytics` (`qc up` starts both); check `qc status`")
