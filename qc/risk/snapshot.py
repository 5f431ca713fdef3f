"""The live exposure snapshot the `qc risk` worker publishes: marks, P&L, dollar Greeks and limit usage.

Pure: position records, the market, the cached exposure, the limits, today's P&L high-water mark
so far and the latched states in; one :class:`ExposureSnapshot` out (``now`` passed in, the clock
never read). It reuses the exposure's unit Greeks (one vectorised BSM call for the whole book)
and only multiplies, so 200 positions cost a few milliseconds; `qc execute`, the dashboard and
`qc risk status` read the published JSON instead of pricing the book themselves.

Marks: an instrument's quote's mark; shares without a quote of their own are marked at the
underlying's spot (the market snapshot quotes options only). No mark: ``None`` mark and P&L.

P&L: realised is what the executor recorded today per position; unrealised is
``(mark − avg_cost) × qty × multiplier`` for positions with a mark (since the position opened,
so a position carried from yesterday counts its overnight move: the conservative reading for the
daily-loss breaker). Today's P&L is realised + unrealised; the high-water mark is the larger of
the one given and today's P&L, so it never falls; drawdown is the high-water mark less today's P&L.

Usage is ``|value| / limit × 100`` for every limit with a current value: 0 % for a disabled limit
(``inf``), ``inf`` for a non-zero value against a limit of 0. JSON has no infinity, so the codec
writes ``limit`` and ``pct`` as the string ``"inf"`` then (the only non-number it writes; every
other number is finite, and a reader refuses NaN or ``"inf"`` anywhere else).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    loads_object,
    need,
    req_instant,
    req_str,
)
from qc.risk.exposure import GREEKS, DollarGreeks, PortfolioExposure
from qc.risk.model import BUCKETS, ContractKey, Limits, MarketSnapshot
from qc.risk.position_codec import PositionRecord
from qc.risk.state import TradingState

SCHEMA = 1
INF = "inf"  # how JSON carries an infinite limit or usage
ACCOUNT = "account"  # the scope of the account-wide limits (daily loss, drawdown)
PER_UNDERLYING: Mapping[str, str] = MappingProxyType({
    "delta": "delta_usd_per_pct_per_underlying", "gamma": "gamma_usd_per_pct_per_pct_per_underlying",
    "vega": "vega_usd_per_vol_pt_per_underlying", "charm": "charm_usd_delta_per_day_per_underlying"})
PER_BUCKET: Mapping[str, str] = MappingProxyType({
    "delta": "delta_usd_per_pct_per_bucket", "gamma": "gamma_usd_per_pct_per_pct_per_bucket",
    "vega": "vega_usd_per_vol_pt_per_bucket", "charm": "charm_usd_delta_per_day_per_bucket"})
_STATES = frozenset(s.name for s in TradingState)


@dataclass(frozen=True, slots=True)
class PositionView:
    """One position as marked now: ``mark`` and ``unrealised_usd`` None unquoted, ``greeks`` None unpriced."""

    contract: str
    con_id: int
    underlying: str
    bucket: str
    qty: int
    avg_cost: float
    mark: float | None
    unrealised_usd: float | None
    greeks: DollarGreeks | None


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of one limit (a :class:`~qc.risk.model.Limits` field) is used: ``pct`` of ``limit``, both may be inf."""

    name: str
    scope: str   # an underlying, a bucket, a contract's description, or "account"
    value: float
    limit: float
    pct: float


def usage(name: str, scope: str, value: float, limit: float) -> Usage:
    """``|value| / limit × 100``; 0 for a disabled (inf) limit; inf for any value against a limit of 0."""
    magnitude = abs(value)
    if math.isinf(limit):
        pct = 0.0
    elif limit == 0:
        pct = math.inf if magnitude else 0.0
    else:
        pct = magnitude / limit * 100.0
    return Usage(name, scope, value, limit, pct)


@dataclass(frozen=True, slots=True)
class ExposureSnapshot:
    """What the book looks like at ``as_of``: per position, per underlying and bucket, and against every limit."""

    as_of: datetime
    positions: tuple[PositionView, ...]
    realised_today_usd: float
    unrealised_usd: float         # sum over the positions with a mark
    pnl_high_water_usd: float
    per_underlying: Mapping[str, DollarGreeks]
    per_bucket: Mapping[str, DollarGreeks]
    gross_per_underlying: Mapping[str, float]  # Σ |contract equivalents|
    unpriced_underlyings: tuple[str, ...]
    unpriced_buckets: tuple[str, ...]
    usage: tuple[Usage, ...]
    states: Mapping[str, str]     # scope ("account" or an underlying) -> TradingState name

    @property
    def pnl_today_usd(self) -> float:
        return self.realised_today_usd + self.unrealised_usd

    @property
    def drawdown_usd(self) -> float:
        """Today's P&L below its high-water mark (0 at a new high)."""
        return max(0.0, self.pnl_high_water_usd - self.pnl_today_usd)


def mark_of(contract: ContractKey, market: MarketSnapshot) -> float | None:
    """The instrument's quote's mark; for shares without a quote, the underlying's spot; else None."""
    quote = market.quotes.get(contract)
    if quote is not None:
        return quote.mark if math.isfinite(quote.mark) and quote.mark >= 0 else None
    if contract.sec_type == "STK":
        und = market.underlyings.get(contract.underlying)
        if und is not None and math.isfinite(und.spot) and und.spot > 0:
            return und.spot
    return None


def limit_usage(exposure: PortfolioExposure, limits: Limits, pnl_today_usd: float,
                pnl_high_water_usd: float) -> tuple[Usage, ...]:
    """One row per limit with a current value, in a fixed order: size, Greeks per underlying, per bucket, loss."""
    rows: list[Usage] = []
    if exposure.position:
        key, qty = max(exposure.position.items(), key=lambda kv: abs(kv[0].equivalents(kv[1])))
        rows.append(usage("max_position_per_contract", key.describe(), key.equivalents(qty),
                          limits.max_position_per_contract))
    for name, gross in sorted(exposure.gross_per_underlying.items()):
        rows.append(usage("max_position_per_underlying", name, gross, limits.max_position_per_underlying))
    for name, greeks in sorted(exposure.per_underlying.items()):
        rows += [usage(PER_UNDERLYING[g], name, getattr(greeks, g), getattr(limits, PER_UNDERLYING[g]))
                 for g in GREEKS]
    for bucket in BUCKETS:
        bucket_greeks = exposure.per_bucket.get(bucket)
        if bucket_greeks is None:
            continue
        for g in GREEKS:
            limit = getattr(limits, PER_BUCKET[g]).get(bucket)
            if limit is not None:  # a bucket missing from the mapping has no per-bucket limit
                rows.append(usage(PER_BUCKET[g], bucket, getattr(bucket_greeks, g), limit))
    rows.append(usage("daily_loss_limit_usd", ACCOUNT, max(0.0, -pnl_today_usd), limits.daily_loss_limit_usd))
    rows.append(usage("drawdown_limit_usd", ACCOUNT, max(0.0, pnl_high_water_usd - pnl_today_usd),
                      limits.drawdown_limit_usd))
    return tuple(rows)


def build_snapshot(records: Sequence[PositionRecord], market: MarketSnapshot, exposure: PortfolioExposure,
                   limits: Limits, pnl_high_water_usd: float, states: Mapping[str, str],
                   now: datetime) -> ExposureSnapshot:
    """The snapshot at ``now``; ``exposure`` is ``portfolio_exposure`` of the records' positions on ``market``.

    Raises ValueError for a naive ``now``, a non-finite high-water mark or an unknown state name:
    programming errors, never published.
    """
    if now.utcoffset() is None:
        raise ValueError(f"now must be tz-aware, got naive {now!r}")
    if not math.isfinite(pnl_high_water_usd):
        raise ValueError(f"pnl_high_water_usd: must be finite, got {pnl_high_water_usd!r}")
    bad = sorted(f"{scope}={name!r}" for scope, name in states.items() if name not in _STATES)
    if bad:
        raise ValueError(f"states: not TradingState names: {', '.join(bad)}")
    views: list[PositionView] = []
    realised = unrealised = 0.0
    unit = exposure.unit
    for rec in records:
        p = rec.position
        key = p.contract
        mark = mark_of(key, market)
        pnl = None if mark is None else (mark - p.avg_cost) * p.quantity * key.multiplier
        greeks = unit.get(key)
        views.append(PositionView(key.describe(), rec.con_id, key.underlying, p.bucket, p.quantity, p.avg_cost, mark,
                                  pnl, None if greeks is None else greeks.scaled(p.quantity)))
        realised += rec.realised_today_usd
        if pnl is not None:
            unrealised += pnl
    pnl_today = realised + unrealised
    high_water = max(pnl_high_water_usd, pnl_today)
    return ExposureSnapshot(
        now, tuple(views), realised, unrealised, high_water,
        MappingProxyType(dict(sorted(exposure.per_underlying.items()))),
        MappingProxyType({b: exposure.per_bucket[b] for b in BUCKETS if b in exposure.per_bucket}),
        MappingProxyType(dict(sorted(exposure.gross_per_underlying.items()))),
        tuple(sorted(exposure.unpriced_underlyings)), tuple(sorted(exposure.unpriced_buckets)),
        limit_usage(exposure, limits, pnl_today, high_water), MappingProxyType(dict(states)))


# --- codec: one JSON document with "v" ------------------------------------------------------------


def _inf_or(value: float) -> float | str:
    return INF if value == math.inf else value


def _greeks_doc(g: DollarGreeks | None) -> dict[str, float] | None:
    return None if g is None else {"delta": g.delta, "gamma": g.gamma, "vega": g.vega, "charm": g.charm}


def snapshot_to_redis(s: ExposureSnapshot) -> str:
    """The JSON the worker stores at ``risk:exposure:{account}``; ``pnl_today_usd``/``drawdown_usd`` for readers."""
    return dumps({
        VERSION_FIELD: SCHEMA, "as_of": s.as_of.isoformat(),
        "realised_today_usd": s.realised_today_usd, "unrealised_usd": s.unrealised_usd,
        "pnl_today_usd": s.pnl_today_usd, "pnl_high_water_usd": s.pnl_high_water_usd,
        "drawdown_usd": s.drawdown_usd,
        "positions": [{"contract": p.contract, "con_id": p.con_id, "underlying": p.underlying, "bucket": p.bucket,
                       "qty": p.qty, "avg_cost": p.avg_cost, "mark": p.mark, "unrealised_usd": p.unrealised_usd,
                       "greeks": _greeks_doc(p.greeks)} for p in s.positions],
        "per_underlying": {k: _greeks_doc(v) for k, v in s.per_underlying.items()},
        "per_bucket": {k: _greeks_doc(v) for k, v in s.per_bucket.items()},
        "gross_per_underlying": dict(s.gross_per_underlying),
        "unpriced_underlyings": list(s.unpriced_underlyings), "unpriced_buckets": list(s.unpriced_buckets),
        "usage": [{"name": u.name, "scope": u.scope, "value": u.value, "limit": _inf_or(u.limit),
                   "pct": _inf_or(u.pct)} for u in s.usage],
        "states": dict(s.states)})


def _num(raw: Any, name: str, *, inf: bool = False) -> float:
    """A finite JSON number; with ``inf`` also the string "inf" (bools, NaN, other strings are malformed)."""
    if inf and raw == INF:
        return math.inf
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise Malformed(name, f"is not a number ({str(raw)[:40]!r})")
    value = float(raw)
    if not math.isfinite(value):
        raise Malformed(name, f"is not finite ({value!r})")
    return value


def _opt_num(raw: Any, name: str) -> float | None:
    return None if raw is None else _num(raw, name)


def _int(raw: Any, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise Malformed(name, f"is not an integer ({str(raw)[:40]!r})")
    return raw


def _obj(raw: Any, name: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise Malformed(name, f"is a {type(raw).__name__}, not an object")
    return raw


def _list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise Malformed(name, f"is a {type(raw).__name__}, not a list")
    return raw


def _at(d: dict[str, Any], path: str, name: str) -> Any:
    """:func:`~qc.core.codec.need`, naming the field by its path in the document (``positions[3].mark``)."""
    if name not in d:
        raise Malformed(f"{path}.{name}", "missing (partial value)")
    return d[name]


def _greeks(raw: Any, path: str) -> DollarGreeks:
    d = _obj(raw, path)
    return DollarGreeks(*(_num(_at(d, path, g), f"{path}.{g}") for g in GREEKS))


def _opt_greeks(raw: Any, path: str) -> DollarGreeks | None:
    return None if raw is None else _greeks(raw, path)


def _position(raw: Any, path: str) -> PositionView:
    p = _obj(raw, path)

    def at(name: str) -> tuple[Any, str]:
        return _at(p, path, name), f"{path}.{name}"

    return PositionView(
        req_str(*at("contract"), empty=False), _int(*at("con_id")), req_str(*at("underlying"), empty=False),
        req_str(*at("bucket"), choices=BUCKETS), _int(*at("qty")), _num(*at("avg_cost")), _opt_num(*at("mark")),
        _opt_num(*at("unrealised_usd")), _opt_greeks(*at("greeks")))


def _usage(raw: Any, path: str) -> Usage:
    u = _obj(raw, path)

    def at(name: str) -> tuple[Any, str]:
        return _at(u, path, name), f"{path}.{name}"

    return Usage(req_str(*at("name"), empty=False), req_str(*at("scope")), _num(*at("value")),
                 _num(*at("limit"), inf=True), _num(*at("pct"), inf=True))


def _parse(text: str) -> ExposureSnapshot:
    d = loads_object(text, "exposure")
    check_version(d, SCHEMA)
    per_underlying = _obj(need(d, "per_underlying"), "per_underlying")
    per_bucket = _obj(need(d, "per_bucket"), "per_bucket")
    gross = _obj(need(d, "gross_per_underlying"), "gross_per_underlying")
    states = _obj(need(d, "states"), "states")
    snap = ExposureSnapshot(
        req_instant(need(d, "as_of"), "as_of"),
        tuple(_position(p, f"positions[{i}]") for i, p in enumerate(_list(need(d, "positions"), "positions"))),
        _num(need(d, "realised_today_usd"), "realised_today_usd"), _num(need(d, "unrealised_usd"), "unrealised_usd"),
        _num(need(d, "pnl_high_water_usd"), "pnl_high_water_usd"),
        MappingProxyType({k: _greeks(v, f"per_underlying[{k}]") for k, v in per_underlying.items()}),
        MappingProxyType({req_str(k, "per_bucket", choices=BUCKETS): _greeks(v, f"per_bucket[{k}]")
                          for k, v in per_bucket.items()}),
        MappingProxyType({k: _num(v, f"gross_per_underlying[{k}]") for k, v in gross.items()}),
        tuple(req_str(u, "unpriced_underlyings") for u in _list(need(d, "unpriced_underlyings"),
                                                                "unpriced_underlyings")),
        tuple(req_str(b, "unpriced_buckets", choices=BUCKETS) for b in _list(need(d, "unpriced_buckets"),
                                                                             "unpriced_buckets")),
        tuple(_usage(u, f"usage[{i}]") for i, u in enumerate(_list(need(d, "usage"), "usage"))),
        MappingProxyType({k: req_str(v, f"states[{k}]", choices=_STATES) for k, v in states.items()}))
    # the derived figures must be what the parts add up to: anything else was not written by this codec
    for name, derived in (("pnl_today_usd", snap.pnl_today_usd), ("drawdown_usd", snap.drawdown_usd)):
        if _num(need(d, name), name) != derived:
            raise Malformed(name, f"is {d[name]!r}, its parts give {derived!r}")
    if snap.pnl_high_water_usd < snap.pnl_today_usd:
        raise Malformed("pnl_high_water_usd", f"is {snap.pnl_high_water_usd!r}, below today's P&L")
    return snap


def snapshot_from_redis(raw: str | None, *, key: str) -> ExposureSnapshot | Absent:
    """The published snapshot, or an Absent: ``missing`` before the worker's first cycle, else naming the field."""
    return decode(key, raw, _parse)
