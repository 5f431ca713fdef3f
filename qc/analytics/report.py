"""`qc gex` behind the command: Redis → one :class:`GexReport`, or a recompute from the chain.

Why a report and not the raw hash: a trader reads the numbers *with* their age, inputs and
staleness (reference §3.2: staleness must travel with the numbers), so every path that yields
numbers also yields ``as_of``, ``age_s`` against the clock (simulated time under `qc sim`), the
spot they were computed at with its source and age, and the reasons they may be stale. Every path
that yields none (nothing stored yet, an older schema, a malformed value) raises one ``QcError``
saying what to run: values are read through :mod:`qc.analytics.codec` and :mod:`qc.ingest.codec`,
never indexed raw.

``--expiries 0dte|1dte|14dte|all`` selects expiries by DTE (New York's date now); when that set
differs from the worker's, positioning is recomputed here by the worker's own computation
(:func:`qc.analytics.chain_input.positioning_at_live_spot`: the chain valued now at the live quote)
under the worker's convention and gamma source.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING

from qc.analytics.codec import GEX_LABELS, GEX_NUMBERS, GexPending, GexProfile, GexSnapshot, GexStrikes, gex_from_redis
from qc.core import keys
from qc.core.clock import new_york_date
from qc.core.codec import Absent
from qc.core.errors import QcError
from qc.ingest.codec import OptionChain, Quote
from qc.runtime.codec import StaleFeeds

if TYPE_CHECKING:
    from qc.analytics.chain_input import LivePositioning
    from qc.runtime.store import Store

MAX_DTE: dict[str, int | None] = {"0dte": 0, "1dte": 1, "14dte": 14, "all": None}
MAX_AGE_S = 120.0  # `qc analytics` refreshes every 30 s: four missed cycles is stale
SOURCE_WORKER = "qc_analytics"
SOURCE_RECOMPUTED = "recomputed_from_chain"
NUMBERS = GEX_NUMBERS
LABELS = GEX_LABELS
START_HINT = "start `qc chains` and `qc analytics` (or `qc up`); check `qc status`"


@dataclass(frozen=True)
class Curve:
    """Parallel x/y series for a chart: strikes or spot levels against GEX ($ per 1 % move)."""

    x: tuple[float, ...]
    gex_usd_per_1pct: tuple[float, ...]


@dataclass(frozen=True)
class GexReport:
    """Dealer positioning for one symbol now, with its age, inputs and staleness.

    ``spot_age_s`` is the age of the spot now (the quote's or the chain's), ``spot_reason`` why the
    chain's spot was used when it was.
    """

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
    spot_source: str = "chain"
    spot_age_s: float | None = None
    spot_reason: str = ""

    @property
    def age_s(self) -> float:
        return (self.now - self.as_of).total_seconds()

    @property
    def chain_age_s(self) -> float | None:
        return None if self.chain_as_of is None else (self.now - self.chain_as_of).total_seconds()

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


def _curve(x: tuple[float, ...], y: tuple[float | None, ...]) -> Curve:
    pairs = [(a, b) for a, b in zip(x, y, strict=True) if b is not None]
    return Curve(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def from_snapshot(symbol: str, snap: GexSnapshot, now: datetime, strikes: GexStrikes | Absent,
                  profile: GexProfile | Absent) -> GexReport:
    """The worker's snapshot as a report; its own stale flag plus our age check against ``now``."""
    reasons = [snap.stale_reason] if snap.stale else []
    age = (now - snap.as_of).total_seconds()
    if age > MAX_AGE_S:
        reasons.append(f"positioning is {age:.0f} s old (qc analytics refreshes every 30 s)")
    return GexReport(
        symbol, SOURCE_WORKER, None, snap.as_of, now, snap.spot, dict(snap.numbers),
        {n: snap.labels.get(n) or None for n in LABELS}, tuple(d.isoformat() for d in snap.expiries),
        snap.contracts_used, snap.chain_as_of, tuple(reasons),
        None if isinstance(strikes, Absent) else _curve(strikes.strike, strikes.columns["gex_usd_per_1pct"]),
        None if isinstance(profile, Absent) else _curve(profile.levels, profile.gex_usd_per_1pct),
        snap.spot_source, None if snap.spot_age_s is None else snap.spot_age_s + max(0.0, age), snap.spot_reason)


def selected_expiries(chain: OptionChain, selection: str, now: datetime) -> tuple[str, ...]:
    """Expiries of the chain's rows with DTE ≤ the selection's limit, DTE from New York's date now."""
    limit = MAX_DTE[selection]
    today = new_york_date(now)
    dates: set[date] = {r.expiry for r in chain.rows}
    return tuple(d.isoformat() for d in sorted(dates) if limit is None or (d - today).days <= limit)


def chain_report(symbol: str, chain: OptionChain, quote: Quote | Absent, selection: str,
                 worker: GexSnapshot | None, now: datetime) -> GexReport:
    """Recompute positioning for the selected expiries the way the worker does, under its labels."""
    from qc.analytics.chain_input import positioning_at_live_spot
    from qc.analytics.exposure import DEALER_CONVENTION, Convention, GammaSource

    convention = Convention(worker.labels.get("convention") or DEALER_CONVENTION.value) if worker else DEALER_CONVENTION
    source = GammaSource(worker.labels.get("gamma_source") or GammaSource.MODEL.value) if worker else GammaSource.MODEL
    live = positioning_at_live_spot(chain, quote, now, convention=convention, gamma_source=source,
                                    max_dte=MAX_DTE[selection])
    stale = chain.stale_reason(now.timestamp())
    reasons = (stale,) if stale else ()
    return replace(report_from_positioning(symbol, live, chain.as_of, now), selection=selection,
                   stale_reasons=reasons)


def report_from_positioning(symbol: str, live: LivePositioning, chain_as_of: datetime, now: datetime) -> GexReport:
    """A report from a fresh ``positioning()`` result, computed now at ``live.spot``."""
    from qc.analytics.chain_input import positioning_figures
    from qc.analytics.regime import gamma_regime

    pos = live.pos
    d = pos.to_dict()
    zg, spot = pos.zero_gamma.level, pos.spot
    numbers = positioning_figures(pos)
    labels: dict[str, str | None] = {
        "zero_gamma_reason": d["zero_gamma"]["reason"], "convention": d["convention"],
        "gamma_source": d["gamma_source"], "gamma_regime": gamma_regime(spot, zg, d["gex_usd_per_1pct"]).value}
    return GexReport(
        symbol, SOURCE_RECOMPUTED, None, now, now, spot, {n: numbers.get(n) for n in NUMBERS},
        {n: labels.get(n) for n in LABELS}, tuple(d["expiries_used"]), int(d["contracts_used"]), chain_as_of, (),
        _curve(tuple(d["by_strike"]["strike"]), tuple(d["by_strike"]["gex_usd_per_1pct"])),
        _curve(tuple(d["profile"]["levels"]), tuple(d["profile"]["gex_usd_per_1pct"])),
        live.spot.source, live.spot.age_s, live.spot.reason)


def read_chain(store: Store, symbol: str) -> OptionChain | Absent:
    key = keys.option_chain(symbol)
    return OptionChain.from_redis(store.get(key), key=key.name)


def load(store: Store, symbol: str, selection: str | None, now: datetime) -> GexReport:
    """The worker's snapshot when it answers the question asked, else a recompute; or one clear error."""
    gex_key = keys.gex(symbol)
    stored = gex_from_redis(store.hgetall(gex_key), key=gex_key.name)
    worker = stored if isinstance(stored, GexSnapshot) else None
    if selection:
        chain = read_chain(store, symbol)
        if isinstance(chain, OptionChain):
            wanted = selected_expiries(chain, selection, now)
            if worker is None or wanted != tuple(d.isoformat() for d in worker.expiries):
                quote_key = keys.quote(symbol)
                return chain_report(symbol, chain, Quote.from_redis(store.hgetall(quote_key), key=quote_key.name),
                                    selection, worker, now)
        elif selection != "all":
            why = "no option chain in Redis" if chain.reason == "missing" else f"option chain unusable ({chain})"
            raise QcError(f"cannot recompute {symbol} for {selection}: {why}",
                          f"run `qc chains {symbol}`; check `qc status`")
    if not isinstance(stored, GexSnapshot):
        raise unavailable(store, symbol, stored, now)
    strikes_key, profile_key = keys.gex_by_strike(symbol), keys.gex_profile(symbol)
    report = from_snapshot(symbol, stored, now, GexStrikes.from_redis(store.get(strikes_key), key=strikes_key.name),
                           GexProfile.from_redis(store.get(profile_key), key=profile_key.name))
    return replace(report, selection=selection)


def unavailable(store: Store, symbol: str, stored: GexPending | Absent, now: datetime) -> QcError:
    """Why there are no figures to show, in one line, and what to run."""
    if isinstance(stored, GexPending):
        return QcError(f"no dealer positioning for {symbol} yet: {stored.reason}", START_HINT)
    if stored.reason != "missing":
        return QcError(f"cannot read dealer positioning for {symbol}: {stored}",
                       "restart `qc analytics` (it rewrites the value within 30 s); check `qc status`")
    return missing(store, symbol, now)


def missing(store: Store, symbol: str, now: datetime) -> QcError:
    """Nothing stored: say why (worker down, chain feed failing, or no data) and what to run."""
    chain = read_chain(store, symbol)
    if isinstance(chain, OptionChain):
        age = (now - chain.as_of).total_seconds()
        return QcError(f"no positioning for {symbol} (its option chain is in Redis, {age:.0f} s old): "
                       "is `qc analytics` running?", "qc status")
    stale_key = keys.data_stale()
    feeds = StaleFeeds.from_redis(store.hgetall(stale_key), key=stale_key.name)
    since = None if isinstance(feeds, Absent) else feeds.since.get(StaleFeeds.field(symbol, "options_chain"))
    if since is not None:
        at = datetime.fromtimestamp(since, timezone.utc).isoformat(timespec="seconds")
        return QcError(f"stale: no chain for {symbol} since {at}, so no positioning either",
                       "`qc chains` is failing to refresh it; see `qc status`")
    return QcError(f"no data for {symbol}: no positioning and no option chain in Redis",
                   f"run `qc chains {symbol}` and `qc analytics` (`qc up` starts both); check `qc status`")

