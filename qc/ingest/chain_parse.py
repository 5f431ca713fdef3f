"""REALTIME_OPTIONS rows (every number a JSON string) → columns, IV re-solved, Greeks in qc's units.

Pure: rows, spot, ``now``, rate and yield in; a :class:`ParsedChain` out. Why re-solve and
recompute: AV measures T in whole calendar days (reference §1.5), so its 0DTE Greeks are
degenerate and its IV is coarsely gridded; qc re-solves IV from the mark and measures T to the
settlement instant to the second (DESIGN.md §6). The vendor's IV and Greeks stay beside ours.

Dropped rows, each counted under one reason (first that applies):

- ``unparseable``: a field missing, not a number, a bad date or an unknown ``type``
- ``untraded_expiry``: an expiry outside the set asked for (a whole-chain answer)
- ``expired``: at or past its settlement instant at ``now`` (T ≤ 0)
- ``no_two_sided_quote``: ask ≤ 0 or ask < bid (FMV and pre-market rows, §1.1), or no bid and no
  vendor IV, or a strike ≤ 0. A row with an ask but no bid (the far wings) is kept with the *vendor's* IV
  (``iv_source`` "vendor"): its mark cannot define σ, yet its open interest is part of dealer
  gamma; dropping those rows moved the simulator's SPY zero gamma two strikes (550.5 → 548.5)
- ``bad_count``: volume or open interest not an integer in [0, 2**53) (no JSON reader carries more)
- ``iv_unsolved``: the mark is outside BSM's no-arbitrage bounds, so no σ exists
- ``iv_out_of_range``: σ outside [0.01, 3] (the deep-ITM junk rows of §1.5)
- ``duplicate_contract``: a second good row for an (expiry, strike, right): the first is kept

Divergence: a row is ``divergent`` when |Δ_qc − Δ_vendor| > 0.05 or
|Γ_qc − Γ_vendor| > 25 % of max(Γ_qc, 2e-4); the floor keeps far wings, where AV's 5-decimal
rounding alone is 100 %, from being flagged. Rows without vendor Greeks are never divergent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from qc.analytics.greeks import bsm, implied_vol, years_to_expiry
from qc.ingest.codec import ROW_FIELDS, ChainRow

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DELTA_DIVERGENCE = 0.05
GAMMA_DIVERGENCE = 0.25
GAMMA_FLOOR = 2e-4
IV_MIN, IV_MAX = 0.01, 3.0
NUMERIC = ("strike", "bid", "ask", "mark", "volume", "open_interest")
VENDOR = ("implied_volatility", "delta", "gamma", "theta", "vega", "rho")
ISO_DATE_LEN = len("2026-11-24")
QC_GREEKS = ("delta", "gamma", "vega", "theta", "rho", "vanna", "charm")
COUNTS = ("volume", "open_interest")
MAX_COUNT = 2.0**53


@dataclass
class ParsedChain:
    """Column arrays of the kept rows (one index per contract) and the dropped-row counts."""

    expiry: npt.NDArray[np.datetime64]  # datetime64[D]
    is_call: BoolArray
    num: dict[str, FloatArray]  # NUMERIC fields, float64
    vendor: dict[str, FloatArray]  # VENDOR fields, NaN when AV sent none
    t_years: FloatArray
    iv: FloatArray
    greeks: dict[str, FloatArray]  # QC_GREEKS in qc units
    divergent: BoolArray
    dropped: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.expiry)


def _column(rows: Sequence[object], name: str) -> pd.Series[Any]:
    return pd.Series([r.get(name) if isinstance(r, Mapping) else None for r in rows], dtype=object)


def _numbers(rows: Sequence[object], name: str) -> FloatArray:
    """A field as float64 (pandas' parser, per value); NaN where absent or not a number."""
    values: FloatArray = pd.to_numeric(_column(rows, name), errors="coerce").to_numpy(dtype=np.float64,
                                                                                      na_value=np.nan)
    return values


Fields = tuple[npt.NDArray[np.datetime64], npt.NDArray[np.object_], dict[str, FloatArray]]


def _fields_fast(rows: Sequence[Any]) -> Fields:
    """Every row well-formed (AV's normal answer): one float() pass over all numbers, in C where possible."""
    n, names = len(rows), NUMERIC + VENDOR
    flat = np.fromiter(map(float, chain.from_iterable(map(itemgetter(*names), rows))), dtype=np.float64,
                       count=n * len(names)).reshape(n, len(names))
    days = [r["expiration"] for r in rows]
    if not all(isinstance(d, str) and len(d) == ISO_DATE_LEN for d in days):
        raise ValueError("expiration not YYYY-MM-DD")
    kinds = np.array([r["type"] for r in rows], dtype=object)
    return np.array(days, dtype="datetime64[D]"), kinds, {name: flat[:, i] for i, name in enumerate(names)}


def _fields_slow(rows: Sequence[object]) -> Fields:
    """Some row is not: each value on its own, the bad ones NaN/NaT, so only those rows are dropped."""
    dates = _column(rows, "expiration").map(lambda v: v if isinstance(v, str) else None)
    expiry = pd.to_datetime(dates, format="%Y-%m-%d", errors="coerce").to_numpy(dtype="datetime64[D]")
    return expiry, _column(rows, "type").to_numpy(), {n: _numbers(rows, n) for n in NUMERIC + VENDOR}


@dataclass
class _Columns:
    expiry: npt.NDArray[np.datetime64]
    is_call: BoolArray
    num: dict[str, FloatArray]
    vendor: dict[str, FloatArray]


def read_rows(rows: Sequence[object], wanted: Collection[date] | None, dropped: Counter[str]) -> _Columns:
    """Strings to numbers; each rejected row counted once under its first reason."""
    try:
        expiry, kind, values = _fields_fast(rows)
    except (KeyError, TypeError, ValueError, AttributeError):
        expiry, kind, values = _fields_slow(rows)
    values = {n: np.where(np.isfinite(v), v, np.nan) for n, v in values.items()}  # "inf", "nan" are junk too
    num = {n: values[n] for n in NUMERIC}
    call = np.asarray(kind == "call", dtype=bool)
    readable = ~np.isnat(expiry) & (call | np.asarray(kind == "put", dtype=bool))
    for column in num.values():
        readable &= np.isfinite(column)
    traded = np.isin(expiry, np.array(sorted(wanted), dtype="datetime64[D]")) if wanted is not None else readable
    vendor_iv = values["implied_volatility"]
    two_sided = (num["bid"] > 0) & (num["ask"] >= num["bid"])
    ask_only = (num["bid"] <= 0) & np.isfinite(vendor_iv) & (vendor_iv > 0)
    quoted = (num["strike"] > 0) & (num["ask"] > 0) & (two_sided | ask_only)
    counted = np.ones(len(call), dtype=bool)
    for name in COUNTS:
        with np.errstate(invalid="ignore"):
            counted &= (num[name] >= 0) & (num[name] < MAX_COUNT) & (num[name] == np.floor(num[name]))
    for reason, mask in (("unparseable", ~readable), ("untraded_expiry", readable & ~traded),
                         ("no_two_sided_quote", readable & traded & ~quoted),
                         ("bad_count", readable & traded & quoted & ~counted)):
        if n := int(mask.sum()):
            dropped[reason] += n
    keep = readable & traded & quoted & counted
    return _Columns(expiry[keep], call[keep], {n: v[keep] for n, v in num.items()},
                    {n: values[n][keep] for n in VENDOR})


def divergence(delta: FloatArray, gamma: FloatArray, vendor_delta: FloatArray, vendor_gamma: FloatArray) -> BoolArray:
    """True where the vendor's delta or gamma disagrees with qc's beyond the thresholds above."""
    with np.errstate(invalid="ignore"):
        d = np.abs(delta - vendor_delta) > DELTA_DIVERGENCE
        g = np.abs(gamma - vendor_gamma) > GAMMA_DIVERGENCE * np.maximum(np.abs(gamma), GAMMA_FLOOR)
    out: BoolArray = np.asarray((d | g) & np.isfinite(vendor_delta) & np.isfinite(vendor_gamma))
    return out


def _select(parsed: ParsedChain, keep: BoolArray) -> ParsedChain:
    return ParsedChain(
        expiry=parsed.expiry[keep], is_call=parsed.is_call[keep],
        num={n: a[keep] for n, a in parsed.num.items()}, vendor={n: a[keep] for n, a in parsed.vendor.items()},
        t_years=parsed.t_years[keep], iv=parsed.iv[keep], greeks={n: a[keep] for n, a in parsed.greeks.items()},
        divergent=parsed.divergent[keep], dropped=parsed.dropped)


def parse_chain(rows: Sequence[object], spot: float, now: datetime, rate: float, div_yield: float,
                wanted: Collection[date] | None = None) -> ParsedChain:
    """Parse, drop junk with reasons, re-solve IV from the mark at qc's T, recompute Greeks, flag divergence."""
    dropped: Counter[str] = Counter()
    cols = read_rows(rows, wanted, dropped)
    num = {n: np.asarray(v, dtype=np.float64) for n, v in cols.num.items()}
    vendor = {n: np.asarray(v, dtype=np.float64) for n, v in cols.vendor.items()}
    call = np.asarray(cols.is_call, dtype=bool)
    t = years_to_expiry(now, cols.expiry) if len(cols.expiry) else np.zeros(0)
    live = t > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        from_mark = implied_vol(num["mark"], spot, num["strike"], np.where(live, t, 1.0), rate, div_yield, call)
        iv = np.where(live, np.where(num["bid"] > 0, from_mark, vendor["implied_volatility"]), np.nan)
        g = bsm(spot, num["strike"], t, rate, div_yield, iv, call)
    greeks = {n: np.asarray(getattr(g, n), dtype=np.float64) for n in QC_GREEKS}
    parsed = ParsedChain(cols.expiry, call, num, vendor, t, iv, greeks,
                         divergence(greeks["delta"], greeks["gamma"], vendor["delta"], vendor["gamma"]), dropped)
    solved = np.isfinite(iv)
    in_range = solved & (iv >= IV_MIN) & (iv <= IV_MAX)
    repeated = np.zeros(len(call), dtype=bool)
    repeated[in_range] = pd.DataFrame({"expiry": cols.expiry[in_range], "strike": num["strike"][in_range],
                                       "call": call[in_range]}).duplicated().to_numpy()
    for reason, mask in (("expired", ~live), ("iv_unsolved", live & ~solved), ("iv_out_of_range", solved & ~in_range),
                         ("duplicate_contract", repeated)):
        if n := int(mask.sum()):
            dropped[reason] += n
    return _select(parsed, in_range & ~repeated)


def chain_rows(parsed: ParsedChain) -> list[ChainRow]:
    """The kept rows as the chain codec's rows: the quote, qc's IV and Greeks, the vendor's beside them."""
    cols: dict[str, list[Any]] = {
        "expiry": parsed.expiry.astype(object).tolist(),
        "right": np.where(parsed.is_call, "C", "P").tolist(),
        "strike": parsed.num["strike"].tolist(), "bid": parsed.num["bid"].tolist(), "ask": parsed.num["ask"].tolist(),
        "mark": parsed.num["mark"].tolist(), "volume": parsed.num["volume"].astype(np.int64).tolist(),
        "open_interest": parsed.num["open_interest"].astype(np.int64).tolist(), "t_years": parsed.t_years.tolist(),
        "iv": parsed.iv.tolist(), "iv_source": np.where(parsed.num["bid"] > 0, "mark", "vendor").tolist(),
        "divergent": parsed.divergent.tolist()}
    cols.update({n: parsed.greeks[n].tolist() for n in QC_GREEKS})
    cols["iv_vendor"] = _nullable(parsed.vendor["implied_volatility"])
    cols.update({f"{n}_vendor": _nullable(parsed.vendor[n]) for n in VENDOR[1:]})
    return [ChainRow(*values) for values in zip(*(cols[n] for n in ROW_FIELDS), strict=True)]


def _nullable(values: FloatArray) -> list[Any]:
    return [v if math.isfinite(v) else None for v in values.tolist()]
