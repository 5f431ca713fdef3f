"""The typed shape of every Redis value `qc analytics` writes, for the worker and every reader.

One frozen dataclass per value: ``to_redis()`` is what the worker stores and ``from_redis(raw,
key=...)`` what any process reads back, or an :class:`~qc.core.codec.Absent` saying why not
(missing, partial, another schema version, malformed or out of range). Field names are the public
contract operators type (``hget analytics:SPY:vpin value``, ``hget analytics:SPY:gex total``);
a None is stored as "" with its reason beside it, never as a zero. Hashes and JSON documents carry
``v`` = :data:`SCHEMA`.

Pure and numpy-free: `qc gex` and other subsystems import it without the analytics library.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    fmt_fields,
    loads_object,
    need,
    opt_float,
    opt_int,
    req_flag,
    req_float,
    req_instant,
    req_int,
    req_str,
)

SCHEMA = 1
GAMMA_REGIMES = ("positive", "negative", "unknown")
VOL_BANDS = ("low", "normal", "high", "unknown")
REGIME_LABELS = ("mean_reversion", "pinned_stress", "trend", "expansion", "unknown")
SpotSource = Literal["quote", "chain"]
SPOT_SOURCES: tuple[SpotSource, ...] = ("quote", "chain")
GEX_SNAPSHOT, GEX_PENDING = "positioning", "pending"


def _stale_fields(reason: str) -> dict[str, str]:
    return {"stale": "1" if reason else "0", "stale_reason": reason}


def _stale_reason(h: Mapping[str, Any]) -> str:
    """The reason when ``stale`` is 1, "" when 0; a flag without its reason (or vice versa) is malformed."""
    stale, reason = req_flag(need(h, "stale"), "stale"), req_str(need(h, "stale_reason"), "stale_reason")
    if stale != bool(reason):
        raise Malformed("stale", f"is {int(stale)} but stale_reason is {reason[:40]!r}")
    return reason


def _hash(version: int = SCHEMA, **fields: float | int | str | None) -> dict[str, str]:
    return {VERSION_FIELD: str(version), **fmt_fields(fields)}


def _json_doc(raw: str, name: str) -> dict[str, Any]:
    doc = loads_object(raw, name)
    if doc.get(VERSION_FIELD) != SCHEMA:
        raise Malformed(VERSION_FIELD, f"is {doc.get(VERSION_FIELD)!r}, this reader wants {SCHEMA} (old version)")
    return doc


def _list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise Malformed(name, f"is a {type(raw).__name__}, not a list")
    return raw


def _opt_floats(raw: Any, name: str) -> tuple[float | None, ...]:
    """A JSON list of finite numbers or nulls (a null: a figure that does not exist there)."""
    return tuple(opt_float(x, f"{name}[{i}]") for i, x in enumerate(_list(raw, name)))


def _req_floats(raw: Any, name: str, *, lo: float = -math.inf) -> tuple[float, ...]:
    """A JSON list of finite numbers ≥ ``lo``."""
    return tuple(req_float(x, f"{name}[{i}]", lo=lo) for i, x in enumerate(_list(raw, name)))


def _same_length(name: str, columns: Mapping[str, tuple[Any, ...]]) -> None:
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise Malformed(name, f"columns differ in length ({ {k: len(c) for k, c in columns.items()} })")


# --- analytics:{sym}:vpin ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vpin:
    """``analytics:{sym}:vpin``: VPIN in [0, 1] (None with ``reason`` until buckets fill) and its inputs."""

    value: float | None
    bucket_volume: float | None
    buckets_in_window: int
    mode: str
    reason: str
    warm_source: str
    as_of: datetime
    input_age_s: float | None
    stale_reason: str

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)

    def to_redis(self) -> dict[str, str]:
        return _hash(value=self.value, bucket_volume=self.bucket_volume, buckets_in_window=self.buckets_in_window,
                     mode=self.mode, reason=self.reason, warm_source=self.warm_source, as_of=self.as_of.isoformat(),
                     input_age_s=self.input_age_s) | _stale_fields(self.stale_reason)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Vpin | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> Vpin:
        check_version(h, SCHEMA)
        return cls(opt_float(need(h, "value"), "value", lo=0.0, hi=1.0),
                   opt_float(need(h, "bucket_volume"), "bucket_volume", lo=0.0),
                   req_int(need(h, "buckets_in_window"), "buckets_in_window", lo=0),
                   req_str(need(h, "mode"), "mode", empty=False), req_str(need(h, "reason"), "reason"),
                   req_str(need(h, "warm_source"), "warm_source"), req_instant(need(h, "as_of"), "as_of"),
                   opt_float(need(h, "input_age_s"), "input_age_s", lo=0.0), _stale_reason(h))


# --- analytics:{sym}:imbalance ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Imbalance:
    """``analytics:{sym}:imbalance``: depth-weighted book imbalance in [-1, 1], microprice, spread.

    All figures None (with ``stale_reason``) when the book is missing or one-sided.
    """

    imbalance: float | None
    microprice: float | None
    spread: float | None
    levels: int | None
    as_of: datetime
    input_age_s: float | None
    stale_reason: str

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)

    def to_redis(self) -> dict[str, str]:
        return _hash(imbalance=self.imbalance, microprice=self.microprice, spread=self.spread, levels=self.levels,
                     as_of=self.as_of.isoformat(), input_age_s=self.input_age_s) | _stale_fields(self.stale_reason)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Imbalance | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> Imbalance:
        check_version(h, SCHEMA)
        return cls(opt_float(need(h, "imbalance"), "imbalance", lo=-1.0, hi=1.0),
                   opt_float(need(h, "microprice"), "microprice", lo=0.0),
                   opt_float(need(h, "spread"), "spread"), opt_int(need(h, "levels"), "levels", lo=0),
                   req_instant(need(h, "as_of"), "as_of"), opt_float(need(h, "input_age_s"), "input_age_s", lo=0.0),
                   _stale_reason(h))


# --- analytics:{sym}:tox:series ----------------------------------------------------------------

TOX_SERIES_MAXLEN = 30_000  # a 6.5-hour session at one entry a second is 23,400


@dataclass(frozen=True, slots=True)
class ToxSample:
    """One entry of ``analytics:{sym}:tox:series``: VPIN and book imbalance at market time ``t`` (epoch s).

    Either figure may be None (not computed yet, or its input stale); a sample with neither is not written.
    """

    t: float
    vpin: float | None
    imbalance: float | None

    def to_redis(self) -> dict[str, str]:
        return _hash(t=round(self.t, 3), vpin=self.vpin, imbalance=self.imbalance)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> ToxSample | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> ToxSample:
        check_version(h, SCHEMA)
        return cls(req_float(need(h, "t"), "t", lo=0.0), opt_float(need(h, "vpin"), "vpin", lo=0.0, hi=1.0),
                   opt_float(need(h, "imbalance"), "imbalance", lo=-1.0, hi=1.0))


# --- analytics:{sym}:gex ----------------------------------------------------------------------

GEX_NUMBERS = ("total", "dex_usd", "vanna_usd_per_volpt", "charm_usd_per_day", "zero_gamma",
               "zero_gamma_distance_pct", "call_wall", "put_wall", "call_oi_wall", "put_oi_wall",
               "share_0_1dte_abs_gex", "skew_25d", "skew_25d_normalised", "skew_moneyness")
GEX_LABELS = ("zero_gamma_reason", "skew_reason", "regime", "gamma_regime", "convention", "gamma_source")
_LEVELS = ("zero_gamma", "call_wall", "put_wall", "call_oi_wall", "put_oi_wall")  # prices: > 0


@dataclass(frozen=True, slots=True)
class GexSnapshot:
    """``analytics:{sym}:gex``: dealer positioning at ``spot`` (the live quote's, or the chain's with why).

    ``numbers`` holds :data:`GEX_NUMBERS` (None where a figure does not exist, its reason in
    ``labels``: ``zero_gamma_reason``, ``skew_reason``); ``labels`` holds :data:`GEX_LABELS`.
    """

    numbers: Mapping[str, float | None]
    labels: Mapping[str, str]
    spot: float
    spot_source: SpotSource
    spot_age_s: float | None
    spot_reason: str  # why the chain's spot was used ("" with a fresh quote)
    expiries: tuple[date, ...]
    contracts_used: int
    as_of: datetime
    chain_as_of: datetime
    chain_age_s: float
    stale_reason: str

    @property
    def stale(self) -> bool:
        return bool(self.stale_reason)

    def to_redis(self) -> dict[str, str]:
        return ({VERSION_FIELD: str(SCHEMA), "kind": GEX_SNAPSHOT}
                | fmt_fields({n: self.numbers.get(n) for n in GEX_NUMBERS})
                | {n: self.labels.get(n, "") for n in GEX_LABELS}
                | fmt_fields({"spot": self.spot, "spot_source": self.spot_source, "spot_age_s": self.spot_age_s,
                              "spot_reason": self.spot_reason,
                              "expiries": ",".join(d.isoformat() for d in self.expiries),
                              "contracts_used": self.contracts_used, "as_of": self.as_of.isoformat(),
                              "chain_as_of": self.chain_as_of.isoformat(), "chain_age_s": self.chain_age_s})
                | _stale_fields(self.stale_reason))

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> GexSnapshot | Absent:
        got = gex_from_redis(raw, key=key)
        return Absent(key, f"no positioning yet: {got.reason}") if isinstance(got, GexPending) else got

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> GexSnapshot:
        numbers = {n: opt_float(need(h, n), n, lo=0.0 if n in _LEVELS else -math.inf) for n in GEX_NUMBERS}
        share = numbers["share_0_1dte_abs_gex"]
        if share is not None and not 0.0 <= share <= 1.0:
            raise Malformed("share_0_1dte_abs_gex", f"is {share!r}, outside [0, 1]")
        labels = {n: req_str(need(h, n), n) for n in GEX_LABELS}
        req_str(labels["regime"], "regime", choices=REGIME_LABELS)
        req_str(labels["gamma_regime"], "gamma_regime", choices=GAMMA_REGIMES)
        source = req_str(need(h, "spot_source"), "spot_source", choices=SPOT_SOURCES)
        expiries = tuple(date.fromisoformat(d) for d in req_str(need(h, "expiries"), "expiries").split(",") if d)
        return cls(numbers, labels, req_float(need(h, "spot"), "spot", lo=1e-9),
                   "quote" if source == "quote" else "chain",
                   opt_float(need(h, "spot_age_s"), "spot_age_s", lo=0.0),
                   req_str(need(h, "spot_reason"), "spot_reason"),
                   expiries, req_int(need(h, "contracts_used"), "contracts_used", lo=0),
                   req_instant(need(h, "as_of"), "as_of"), req_instant(need(h, "chain_as_of"), "chain_as_of"),
                   req_float(need(h, "chain_age_s"), "chain_age_s"), _stale_reason(h))


@dataclass(frozen=True, slots=True)
class GexPending:
    """``analytics:{sym}:gex`` before any positioning exists: ``stale=1``, ``total=""`` and why (no chain yet)."""

    as_of: datetime
    reason: str

    def to_redis(self) -> dict[str, str]:
        return {VERSION_FIELD: str(SCHEMA), "kind": GEX_PENDING, "total": "", "as_of": self.as_of.isoformat(),
                **_stale_fields(self.reason)}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> GexPending | Absent:
        got = gex_from_redis(raw, key=key)
        return Absent(key, "holds positioning, not a pending marker") if isinstance(got, GexSnapshot) else got

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> GexPending:
        reason = _stale_reason(h)
        if not reason:
            raise Malformed("stale_reason", "is empty on a pending marker")
        return cls(req_instant(need(h, "as_of"), "as_of"), reason)


def gex_from_redis(raw: Mapping[str, str] | None, *, key: str) -> GexSnapshot | GexPending | Absent:
    """The gex hash as whichever it holds: positioning, the pending marker, or why neither."""

    def parse(h: Mapping[str, str]) -> GexSnapshot | GexPending:
        check_version(h, SCHEMA)
        kind = req_str(need(h, "kind"), "kind", choices=(GEX_SNAPSHOT, GEX_PENDING))
        return GexSnapshot._parse(h) if kind == GEX_SNAPSHOT else GexPending._parse(h)

    return decode(key, raw, parse)


# --- analytics:{sym}:gex:strikes and :gex:profile (JSON) --------------------------------------

STRIKE_COLUMNS = ("gex_usd_per_1pct", "call_gamma_usd_per_1pct", "put_gamma_usd_per_1pct", "dex_usd",
                  "vanna_usd_per_volpt", "charm_usd_per_day")


@dataclass(frozen=True, slots=True)
class GexStrikes:
    """``analytics:{sym}:gex:strikes``: exposures by strike (ascending) for the gex hash's expiries.

    The document also carries the short names ``strikes``, ``call_gex`` and ``put_gex`` (dealer-signed,
    < 0) for charting clients; ``from_redis`` reads the long ones.
    """

    strike: tuple[float, ...]
    columns: Mapping[str, tuple[float | None, ...]]  # STRIKE_COLUMNS, each as long as ``strike``

    def to_redis(self) -> str:
        cols = {n: list(self.columns[n]) for n in STRIKE_COLUMNS}
        put = [None if v is None else -v for v in cols["put_gamma_usd_per_1pct"]]
        return dumps({VERSION_FIELD: SCHEMA, "strike": list(self.strike), **cols, "strikes": list(self.strike),
                      "call_gex": cols["call_gamma_usd_per_1pct"], "put_gex": put})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> GexStrikes | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, raw: str) -> GexStrikes:
        doc = _json_doc(raw, "strikes document")
        strike = _req_floats(need(doc, "strike"), "strike", lo=1e-9)
        columns = {n: _opt_floats(need(doc, n), n) for n in STRIKE_COLUMNS}
        _same_length("strikes document", {"strike": strike, **columns})
        if any(b <= a for a, b in itertools.pairwise(strike)):
            raise Malformed("strike", "is not strictly ascending")
        return cls(strike, columns)


@dataclass(frozen=True, slots=True)
class GexProfile:
    """``analytics:{sym}:gex:profile``: net GEX if spot moved to each level, and every zero crossing."""

    levels: tuple[float, ...]
    gex_usd_per_1pct: tuple[float | None, ...]
    spot: float
    zero_gamma: float | None
    crossings: tuple[float, ...]

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, "levels": list(self.levels),
                      "gex_usd_per_1pct": list(self.gex_usd_per_1pct), "spot": self.spot,
                      "zero_gamma": self.zero_gamma, "crossings": list(self.crossings)})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> GexProfile | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, raw: str) -> GexProfile:
        doc = _json_doc(raw, "profile document")
        levels = _req_floats(need(doc, "levels"), "levels", lo=1e-9)
        gex = _opt_floats(need(doc, "gex_usd_per_1pct"), "gex_usd_per_1pct")
        _same_length("profile document", {"levels": levels, "gex_usd_per_1pct": gex})
        crossings = _req_floats(need(doc, "crossings"), "crossings", lo=1e-9)
        return cls(levels, gex, req_float(need(doc, "spot"), "spot", lo=1e-9),
                   opt_float(need(doc, "zero_gamma"), "zero_gamma", lo=1e-9), crossings)


# --- analytics:{sym}:regime and its history ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Regime:
    """``analytics:{sym}:regime``: realised vol, IV − RV, term structure, percentile band, gamma regime, label."""

    rv_1min_annualised: float | None
    atm_iv_near: float | None
    atm_iv_far: float | None
    iv_minus_rv: float | None
    term_ratio: float | None
    rv_percentile: float | None
    history_days: int
    bars_used: int
    as_of: datetime
    gamma_regime: str
    vol_band: str
    label: str

    def to_redis(self) -> dict[str, str]:
        return _hash(rv_1min_annualised=self.rv_1min_annualised, atm_iv_near=self.atm_iv_near,
                     atm_iv_far=self.atm_iv_far, iv_minus_rv=self.iv_minus_rv, term_ratio=self.term_ratio,
                     rv_percentile=self.rv_percentile, history_days=self.history_days, bars_used=self.bars_used,
                     as_of=self.as_of.isoformat(), gamma_regime=self.gamma_regime, vol_band=self.vol_band,
                     label=self.label)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Regime | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, h: Mapping[str, str]) -> Regime:
        check_version(h, SCHEMA)
        return cls(opt_float(need(h, "rv_1min_annualised"), "rv_1min_annualised", lo=0.0),
                   opt_float(need(h, "atm_iv_near"), "atm_iv_near", lo=0.0),
                   opt_float(need(h, "atm_iv_far"), "atm_iv_far", lo=0.0),
                   opt_float(need(h, "iv_minus_rv"), "iv_minus_rv"),
                   opt_float(need(h, "term_ratio"), "term_ratio", lo=0.0),
                   opt_float(need(h, "rv_percentile"), "rv_percentile", lo=0.0, hi=100.0),
                   req_int(need(h, "history_days"), "history_days", lo=0),
                   req_int(need(h, "bars_used"), "bars_used", lo=0), req_instant(need(h, "as_of"), "as_of"),
                   req_str(need(h, "gamma_regime"), "gamma_regime", choices=GAMMA_REGIMES),
                   req_str(need(h, "vol_band"), "vol_band", choices=VOL_BANDS),
                   req_str(need(h, "label"), "label", choices=REGIME_LABELS))


@dataclass(frozen=True, slots=True)
class RegimeDay:
    """One member of ``analytics:{sym}:regime:history``: a session date's realised vol (score = date ordinal)."""

    day: date
    rv: float

    @property
    def score(self) -> int:
        return self.day.toordinal()

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, "date": self.day.isoformat(), "rv": self.rv})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> RegimeDay | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, raw: str) -> RegimeDay:
        doc = _json_doc(raw, "regime history member")
        return cls(date.fromisoformat(req_str(need(doc, "date"), "date")), req_float(need(doc, "rv"), "rv", lo=0.0))


# --- analytics:flow_model:{sym} and analytics:flow_clusters:{sym} (JSON) ----------------------


@dataclass(frozen=True, slots=True)
class FlowModelDoc:
    """``analytics:flow_model:{sym}``: the fitted scaler and centroids a restarted worker refits from.

    Plain tuples (``FlowModel.to_dict()``'s shape); ``qc.analytics.flow.FlowModel.from_dict`` then
    checks the names against the features and labels the library computes today.
    """

    feature_names: tuple[str, ...]
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    centroids: tuple[tuple[float, ...], ...]

    def as_dict(self) -> dict[str, Any]:
        return {"feature_names": list(self.feature_names), "labels": list(self.labels), "mean": list(self.mean),
                "scale": list(self.scale), "centroids": [list(row) for row in self.centroids]}

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, **self.as_dict()})

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FlowModelDoc:
        """Validated: finite numbers, positive scale, one centroid per label of one value per feature."""
        names, labels = (tuple(req_str(n, name, empty=False) for n in _list(need(doc, name), name))
                         for name in ("feature_names", "labels"))
        mean = _req_floats(need(doc, "mean"), "mean")
        scale = _req_floats(need(doc, "scale"), "scale", lo=1e-300)
        rows = _list(need(doc, "centroids"), "centroids")
        centroids = tuple(_req_floats(r, f"centroids[{i}]") for i, r in enumerate(rows))
        d = len(names)
        if len(mean) != d or len(scale) != d or len(centroids) != len(labels) or any(len(r) != d for r in centroids):
            raise Malformed("centroids", f"shape does not match {len(labels)} labels x {d} features")
        return cls(names, labels, mean, scale, centroids)

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> FlowModelDoc | Absent:
        return decode(key, raw, lambda r: cls.from_dict(_json_doc(r, "flow model")))


@dataclass(frozen=True, slots=True)
class FlowClusters:
    """``analytics:flow_clusters:{sym}``: the last refit's current label, label counts and model."""

    as_of: datetime
    windows: int
    trades: int
    input_age_s: float | None
    current: str | None
    reason: str | None  # why there is no model or label (too few windows …)
    counts: Mapping[str, int]
    model: FlowModelDoc | None

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, "as_of": self.as_of.isoformat(), "windows": self.windows,
                      "trades": self.trades, "input_age_s": self.input_age_s, "current": self.current,
                      "reason": self.reason, "counts": dict(self.counts),
                      "model": None if self.model is None else self.model.as_dict()})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> FlowClusters | Absent:
        return decode(key, raw, cls._parse)

    @classmethod
    def _parse(cls, raw: str) -> FlowClusters:
        doc = _json_doc(raw, "flow clusters document")
        counts = need(doc, "counts")
        if not isinstance(counts, dict):
            raise Malformed("counts", "is not an object")
        current, reason, model = need(doc, "current"), need(doc, "reason"), need(doc, "model")
        return cls(req_instant(need(doc, "as_of"), "as_of"), req_int(need(doc, "windows"), "windows", lo=0),
                   req_int(need(doc, "trades"), "trades", lo=0),
                   opt_float(need(doc, "input_age_s"), "input_age_s", lo=0.0),
                   None if current is None else req_str(current, "current", empty=False),
                   None if reason is None else req_str(reason, "reason"),
                   {req_str(k, "counts"): req_int(v, f"counts.{k}", lo=0) for k, v in counts.items()},
                   None if model is None else FlowModelDoc.from_dict(model))

