"""REALTIME_OPTIONS rows (every number a JSON string) → columns, IV re-solved, Greeks in qc's units.

Pure: rows, spot, ``now``, rate and yield in; a :class:`ParsedChain` out. Why re-solve and
recompute: AV measures T in whole calendar days (reference §1.5), so its 0DTE Greeks are
degenerate and its IV is coarsely gridded; qc re-solves IV from the mark and measures T to the
settlement instant to the second (DESIGN.md §6). The vendor's IV and Greeks stay beside ours.

Nothing from Alpha Vantage is trusted. Two stages, so the spot can be checked against the chain:
:func:`read_rows` (no spot needed) and :func:`price_chain` (spot-relative checks, IV, Greeks);
:func:`parse_chain` runs both. A dropped row is counted under the first reason that applies:

- ``not_an_object``; ``missing_field``, ``wrong_type`` (a boolean, list, object), ``unparseable``
  ("None", "-", "", a bad date, a ``type`` other than call/put), ``not_finite`` (NaN, inf, "1e999"),
  ``overflow`` (a JSON integer no float holds) in ``expiration``, ``type`` or a number field
- ``other_symbol`` (its ``symbol`` is not the one asked for); ``other_expiry`` (not the expiry its
  request asked for), or ``untraded_expiry`` (outside the set asked for, a whole-chain answer)
- ``strike_not_positive``, ``negative_bid``, ``negative_ask``, ``negative_mark``, ``negative_volume``,
  ``negative_oi``, ``not_integer`` (a fractional count), ``overflow`` (a count above
  ``MAX_CONTRACTS``: real ones stay below ~10**6)
- ``no_two_sided_quote``: ask ≤ 0 or ask < bid (FMV and pre-market rows, §1.1), or no bid and no
  usable vendor IV. A row with an ask but no bid (the far wings) is kept with the *vendor's* IV
  (``iv_source`` "vendor"): its mark cannot define σ, yet its open interest is part of dealer
  gamma; dropping those rows moved the simulator's SPY zero gamma two strikes (550.5 → 548.5)
- then, against the spot: ``strike_absurd`` (K/S outside [1/10, 10]), ``price_absurd`` (a bid, ask or
  mark above S + K, more than any call or put is worth), ``expiry_out_of_range`` (no calendar T),
  ``expired`` (T ≤ 0 at ``now``), ``iv_unsolved`` (mark outside BSM's no-arbitrage bounds),
  ``iv_out_of_range`` (σ outside [0.01, 3], the deep-ITM junk rows of §1.5)
- ``duplicate_contract``: the same (expiry, strike, right) again with identical values: the first is
  kept; ``conflicting_contract``: copies that disagree: none is kept (which one is true is unknowable)

A vendor value (IV or a Greek) that is present but unusable (wrong type, not finite, IV outside
(0, 20), |delta| > 1, negative gamma or vega, beyond ``VENDOR_MAX``) is nulled, never stored, and
counted in ``vendor_refused`` as ``vendor_<reason>``; the row itself stands on qc's own IV.

Divergence: a row is ``divergent`` when |Δ_qc − Δ_vendor| > 0.05 or
|Γ_qc − Γ_vendor| > 25 % of max(Γ_qc, 2e-4); the floor keeps far wings, where AV's 5-decimal
rounding alone is 100 %, from being flagged. Rows without vendor Greeks are never divergent.

The spot is checked too (:func:`spot_problem`): finite, above ``MIN_SPOT``, within a factor
``MAX_SPOT_STRIKE_RATIO`` of the chain's median strike and, where put-call parity can be measured on
the nearest expiry, within ``PARITY_TOLERANCE`` of the spot the chain's own prices imply.
:func:`global_quote_price` reads GLOBAL_QUOTE's price with the same distrust.
"""

from __future__ import annotations

import math
import re
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
from qc.ingest.codec import ROW_FIELDS, ChainRow, PayloadRefused

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CodeArray = npt.NDArray[np.int8]

SURFACE_CHAIN, SURFACE_QUOTE = "av.chain", "av.quote"
DELTA_DIVERGENCE = 0.05
GAMMA_DIVERGENCE = 0.25
GAMMA_FLOOR = 2e-4
IV_MIN, IV_MAX = 0.01, 3.0
NUMERIC = ("strike", "bid", "ask", "mark", "volume", "open_interest")
VENDOR = ("implied_volatility", "delta", "gamma", "theta", "vega", "rho")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
QC_GREEKS = ("delta", "gamma", "vega", "theta", "rho", "vanna", "charm")
MAX_CONTRACTS = 100_000_000  # open interest or volume of one contract; SPY's largest are ~10**6
MAX_STRIKE_RATIO = 10.0
VENDOR_IV_MAX = 20.0
VENDOR_MAX = 1e6
VENDOR_LO = {"implied_volatility": 0.0, "delta": -1.0, "gamma": 0.0, "theta": -VENDOR_MAX, "vega": 0.0,
             "rho": -VENDOR_MAX}
VENDOR_HI = {"implied_volatility": VENDOR_IV_MAX, "delta": 1.0, "gamma": VENDOR_MAX, "theta": VENDOR_MAX,
             "vega": VENDOR_MAX, "rho": VENDOR_MAX}
MIN_SPOT = 0.01
MAX_SPOT_STRIKE_RATIO = 2.0  # AV lists strikes within ~±15 % of spot for the traded expiries
PARITY_TOLERANCE = 0.005  # 0DTE σ√T is ~0.3 %: a spot further off than this garbles the whole skew
PARITY_PAIRS = 5
MIN_PARITY_PAIRS = 3

# why a value was refused; 0 is a good value
OK, MISSING, WRONG_TYPE, UNPARSEABLE, NOT_FINITE, OVERFLOW, OUT_OF_RANGE = range(7)
VALUE_REASONS = {MISSING: "missing_field", WRONG_TYPE: "wrong_type", UNPARSEABLE: "unparseable",
                 NOT_FINITE: "not_finite", OVERFLOW: "overflow", OUT_OF_RANGE: "out_of_range"}
NAT = np.datetime64("NaT", "D")


@dataclass
class ParsedChain:
    """Column arrays of the kept rows (one index per contract), the dropped-row and refused-value counts."""

    expiry: npt.NDArray[np.datetime64]  # datetime64[D]
    is_call: BoolArray
    num: dict[str, FloatArray]  # NUMERIC fields, float64
    vendor: dict[str, FloatArray]  # VENDOR fields, NaN when AV sent none (or nothing usable)
    t_years: FloatArray
    iv: FloatArray
    greeks: dict[str, FloatArray]  # QC_GREEKS in qc units
    divergent: BoolArray
    dropped: Counter[str] = field(default_factory=Counter)
    vendor_refused: Counter[str] = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.expiry)

    def rejects(self) -> Counter[str]:
        """Every refusal of this payload by reason: dropped rows and nulled vendor values."""
        return self.dropped + self.vendor_refused


@dataclass
class Columns:
    """Rows that passed the spot-free checks, as columns; ``vendor_codes`` say why a vendor value is NaN."""

    expiry: npt.NDArray[np.datetime64]
    is_call: BoolArray
    num: dict[str, FloatArray]
    vendor: dict[str, FloatArray]
    vendor_codes: dict[str, CodeArray]

    def __len__(self) -> int:
        return len(self.expiry)

    def select(self, keep: BoolArray) -> Columns:
        return Columns(self.expiry[keep], self.is_call[keep], {n: v[keep] for n, v in self.num.items()},
                       {n: v[keep] for n, v in self.vendor.items()},
                       {n: c[keep] for n, c in self.vendor_codes.items()})


@dataclass
class _Raw:
    objects: BoolArray
    expiry: npt.NDArray[np.datetime64]
    kind: npt.NDArray[np.object_]
    symbol: npt.NDArray[np.object_]
    values: dict[str, FloatArray]
    codes: dict[str, CodeArray]  # per NUMERIC + VENDOR field, plus "expiration" and "type"


def number(raw: object) -> tuple[float, int]:
    """One vendor number: (value, OK) or (NaN, why). A JSON number where AV sends a string is the same value."""
    kind = type(raw)
    if kind is str:
        try:
            value = float(raw)  # type: ignore[arg-type]
        except ValueError:
            return math.nan, UNPARSEABLE
    elif kind is int or kind is float:
        try:
            value = float(raw)  # type: ignore[arg-type]
        except OverflowError:
            return math.nan, OVERFLOW
    elif raw is None:
        return math.nan, MISSING
    else:
        return math.nan, WRONG_TYPE
    return (value, OK) if math.isfinite(value) else (math.nan, NOT_FINITE)


def _iso_day(raw: object) -> tuple[np.datetime64, int]:
    if raw is None:
        return NAT, MISSING
    if type(raw) is not str:
        return NAT, WRONG_TYPE
    if not ISO_DATE.fullmatch(raw):
        return NAT, UNPARSEABLE
    try:
        return np.datetime64(date.fromisoformat(raw), "D"), OK
    except ValueError:
        return NAT, UNPARSEABLE


def _kind_code(raw: object) -> int:
    if raw is None:
        return MISSING
    if type(raw) is not str:
        return WRONG_TYPE
    return OK if raw in ("call", "put") else UNPARSEABLE


def _raw_fast(rows: Sequence[Any]) -> _Raw:
    """Every row well-formed (AV's normal answer): one float() pass over all numbers, in C where possible."""
    n, names = len(rows), NUMERIC + VENDOR
    flat = list(chain.from_iterable(map(itemgetter(*names), rows)))  # KeyError, TypeError: the slow path
    if set(map(type, flat)) != {str}:
        raise TypeError("not every number is a string")
    table = np.fromiter(map(float, flat), dtype=np.float64, count=n * len(names)).reshape(n, len(names))
    days = [r["expiration"] for r in rows]
    kinds = [r["type"] for r in rows]
    symbols = [r.get("symbol") for r in rows]
    # a chain has a handful of distinct dates, types and symbols: check those (unhashable: the slow path)
    if not all(type(d) is str and ISO_DATE.fullmatch(d) for d in set(days)):
        raise ValueError("expiration not YYYY-MM-DD")
    if not set(kinds) <= {"call", "put"} or not all(s is None or type(s) is str for s in set(symbols)):
        raise ValueError("type or symbol unusual")
    values = {name: table[:, i] for i, name in enumerate(names)}
    codes = {name: np.where(np.isfinite(v), OK, NOT_FINITE).astype(np.int8) for name, v in values.items()}
    codes["expiration"] = codes["type"] = np.zeros(n, dtype=np.int8)
    return _Raw(np.ones(n, dtype=bool), np.array(days, dtype="datetime64[D]"), np.array(kinds, dtype=object),
                np.array(symbols, dtype=object), {n_: np.where(np.isfinite(v), v, np.nan) for n_, v in values.items()},
                codes)


def _raw_slow(rows: Sequence[object]) -> _Raw:
    """Some row is not: each value on its own with its reason, so only the bad rows are dropped."""
    n, names = len(rows), NUMERIC + VENDOR
    values = {name: np.full(n, np.nan) for name in names}
    codes = {name: np.full(n, MISSING, dtype=np.int8) for name in (*names, "expiration", "type")}
    objects = np.zeros(n, dtype=bool)
    expiry = np.full(n, NAT)
    kind = np.full(n, None, dtype=object)
    symbol = np.full(n, None, dtype=object)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            continue
        objects[i] = True
        for name in names:
            values[name][i], codes[name][i] = number(row.get(name))
        expiry[i], codes["expiration"][i] = _iso_day(row.get("expiration"))
        kind[i], symbol[i] = row.get("type"), row.get("symbol")
        codes["type"][i] = _kind_code(kind[i])
    return _Raw(objects, expiry, kind, symbol, values, codes)


def _vendor_codes(raw: _Raw) -> dict[str, CodeArray]:
    """The vendor values' codes with range checks added; a refused value becomes NaN in ``raw.values``."""
    out: dict[str, CodeArray] = {}
    for name in VENDOR:
        v, code = raw.values[name], raw.codes[name].copy()
        with np.errstate(invalid="ignore"):
            bad = (v < VENDOR_LO[name]) | (v > VENDOR_HI[name])
            if name == "implied_volatility":
                bad |= (v <= 0) | (v >= VENDOR_IV_MAX)
        code[(code == OK) & bad] = OUT_OF_RANGE
        raw.values[name] = np.where(code == OK, v, np.nan)
        out[name] = code
    return out


def first_reasons(checks: Sequence[tuple[str, BoolArray]], alive: BoolArray, dropped: Counter[str]) -> BoolArray:
    """Count each row still ``alive`` under the first check it fails; return the rows that pass every one."""
    alive = alive.copy()
    for reason, failed in checks:
        hit = alive & failed
        if n := int(hit.sum()):
            dropped[reason] += n
            alive &= ~hit
    return alive


def read_rows(rows: Sequence[object], wanted: Collection[date] | None, dropped: Counter[str], *,
              symbol: str | None = None, requested: Sequence[date] | None = None) -> Columns:
    """Strings to numbers with every spot-free check; each rejected row counted once under its first reason.

    ``requested``: the expiry each row's request asked for (one per row), so a row of another
    expiry is ``other_expiry`` even when that expiry is traded too.
    """
    try:
        raw = _raw_fast(rows)
    except (KeyError, TypeError, ValueError, AttributeError):
        raw = _raw_slow(rows)
    n = len(raw.objects)
    vendor_codes = _vendor_codes(raw)
    required = ("expiration", "type", *NUMERIC)
    checks: list[tuple[str, BoolArray]] = [("not_an_object", ~raw.objects)]
    for code in (MISSING, WRONG_TYPE, UNPARSEABLE, NOT_FINITE, OVERFLOW):
        checks.append((VALUE_REASONS[code], np.logical_or.reduce([raw.codes[f] == code for f in required])))
    if symbol is not None:
        checks.append(("other_symbol", np.array([s is not None and s != symbol for s in raw.symbol], dtype=bool)))
    if requested is not None:
        if len(requested) != n:
            raise ValueError(f"requested has {len(requested)} expiries for {n} rows")
        checks.append(("other_expiry", raw.expiry != np.array(requested, dtype="datetime64[D]")))
    if wanted is not None:
        checks.append(("untraded_expiry", ~np.isin(raw.expiry, np.array(sorted(wanted), dtype="datetime64[D]"))))
    v = raw.values
    strike, bid, ask, mark, volume, oi = (v[name] for name in NUMERIC)
    vendor_iv = v["implied_volatility"]
    with np.errstate(invalid="ignore"):
        quoted = (ask > 0) & (((bid > 0) & (ask >= bid)) | ((bid == 0) & np.isfinite(vendor_iv)))
        checks += [("strike_not_positive", strike <= 0), ("negative_bid", bid < 0), ("negative_ask", ask < 0),
                   ("negative_mark", mark < 0), ("negative_volume", volume < 0), ("negative_oi", oi < 0),
                   ("not_integer", (volume != np.floor(volume)) | (oi != np.floor(oi))),
                   ("overflow", (volume > MAX_CONTRACTS) | (oi > MAX_CONTRACTS)),
                   ("no_two_sided_quote", ~quoted)]
    keep = first_reasons(checks, np.ones(n, dtype=bool), dropped)
    raw_cols = Columns(raw.expiry, np.asarray(raw.kind == "call", dtype=bool), {n_: v[n_] for n_ in NUMERIC},
                       {n_: v[n_] for n_ in VENDOR}, vendor_codes)
    return raw_cols.select(keep)


def _years(now: datetime, expiry: npt.NDArray[np.datetime64]) -> FloatArray:
    """T per row; NaN for an expiry the exchange calendar cannot place (a date no chain lists)."""
    out = np.full(len(expiry), np.nan)
    for day in np.unique(expiry):
        try:
            t = float(years_to_expiry(now, day.astype(date)))
        except (ValueError, OverflowError):  # exchange_calendars' DateOutOfBounds is a ValueError
            continue
        out[expiry == day] = t
    return out


def divergence(delta: FloatArray, gamma: FloatArray, vendor_delta: FloatArray, vendor_gamma: FloatArray) -> BoolArray:
    """True where the vendor's delta or gamma disagrees with qc's beyond the thresholds above."""
    with np.errstate(invalid="ignore"):
        d = np.abs(delta - vendor_delta) > DELTA_DIVERGENCE
        g = np.abs(gamma - vendor_gamma) > GAMMA_DIVERGENCE * np.maximum(np.abs(gamma), GAMMA_FLOOR)
    out: BoolArray = np.asarray((d | g) & np.isfinite(vendor_delta) & np.isfinite(vendor_gamma))
    return out


def _repeats(cols: Columns, candidate: BoolArray, dropped: Counter[str]) -> BoolArray:
    """Rows to drop as copies: later identical copies, and every copy of a contract whose copies disagree."""
    idx = np.flatnonzero(candidate)
    out = np.zeros(len(candidate), dtype=bool)
    key = ["expiry", "strike", "call"]
    frame = pd.DataFrame({"expiry": cols.expiry[idx], "strike": cols.num["strike"][idx], "call": cols.is_call[idx],
                          **{n: cols.num[n][idx] for n in NUMERIC[1:]}, **{n: cols.vendor[n][idx] for n in VENDOR}})
    if not frame.duplicated(key).any():
        return out
    distinct = frame.drop_duplicates()
    disputed = distinct.loc[distinct.duplicated(key, keep=False), key].drop_duplicates()
    conflict = pd.MultiIndex.from_frame(frame[key]).isin(pd.MultiIndex.from_frame(disputed))
    repeat = frame.duplicated(key).to_numpy() & ~conflict
    for reason, mask in (("conflicting_contract", conflict), ("duplicate_contract", repeat)):
        if n := int(mask.sum()):
            dropped[reason] += n
    out[idx[conflict | repeat]] = True
    return out


def price_chain(cols: Columns, spot: float, now: datetime, rate: float, div_yield: float,
                dropped: Counter[str]) -> ParsedChain:
    """Spot-relative checks, IV re-solved from the mark at qc's T, Greeks recomputed, divergence, copies."""
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"spot must be finite and > 0, not {spot!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("price_chain: `now` must be timezone-aware (ask qc.core.clock for it)")
    num, vendor, call = cols.num, cols.vendor, cols.is_call
    t = _years(now, cols.expiry) if len(cols) else np.zeros(0)
    live = t > 0
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        from_mark = implied_vol(num["mark"], spot, num["strike"], np.where(live, t, 1.0), rate, div_yield, call)
        iv = np.where(live, np.where(num["bid"] > 0, from_mark, vendor["implied_volatility"]), np.nan)
        ratio = num["strike"] / spot
        dearest = np.maximum(np.maximum(num["bid"], num["ask"]), num["mark"])
    solved = np.isfinite(iv)
    keep = first_reasons([
        ("strike_absurd", (ratio > MAX_STRIKE_RATIO) | (ratio < 1.0 / MAX_STRIKE_RATIO)),
        ("price_absurd", dearest > spot + num["strike"]),
        ("expiry_out_of_range", np.isnan(t)), ("expired", ~live), ("iv_unsolved", ~solved),
        ("iv_out_of_range", (iv < IV_MIN) | (iv > IV_MAX))], np.ones(len(cols), dtype=bool), dropped)
    keep &= ~_repeats(cols, keep, dropped)
    kept = cols.select(keep)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        g = bsm(spot, kept.num["strike"], t[keep], rate, div_yield, iv[keep], kept.is_call)
    greeks = {n: np.asarray(getattr(g, n), dtype=np.float64) for n in QC_GREEKS}
    refused: Counter[str] = Counter()
    for codes in kept.vendor_codes.values():
        for code, n in zip(*np.unique(codes[codes > MISSING], return_counts=True), strict=True):
            refused[f"vendor_{VALUE_REASONS[int(code)]}"] += int(n)
    return ParsedChain(kept.expiry, kept.is_call, kept.num, kept.vendor, t[keep], iv[keep], greeks,
                       divergence(greeks["delta"], greeks["gamma"], kept.vendor["delta"], kept.vendor["gamma"]),
                       dropped, refused)


def parse_chain(rows: Sequence[object], spot: float, now: datetime, rate: float, div_yield: float,
                wanted: Collection[date] | None = None, *, symbol: str | None = None,
                requested: Sequence[date] | None = None) -> ParsedChain:
    """Parse, drop junk with reasons, re-solve IV from the mark at qc's T, recompute Greeks, flag divergence."""
    dropped: Counter[str] = Counter()
    cols = read_rows(rows, wanted, dropped, symbol=symbol, requested=requested)
    return price_chain(cols, spot, now, rate, div_yield, dropped)


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


# --- the payload around the rows, and the spot the chain is priced with ---------------------------


def payload_rows(body: Mapping[str, Any] | None, function: str = "REALTIME_OPTIONS") -> list[Any]:
    """``data`` of an options body (``[]`` when AV has none); PayloadRefused when it is not a list."""
    data = (body or {}).get("data")
    if data is None:
        raise PayloadRefused(SURFACE_CHAIN, "missing_field", f"{function}: the body has no `data`")
    if not isinstance(data, list):
        raise PayloadRefused(SURFACE_CHAIN, "wrong_type", f"{function}: `data` is a JSON {type(data).__name__}")
    return data


def global_quote_price(body: Mapping[str, Any] | None, symbol: str) -> float:
    """GLOBAL_QUOTE's ``05. price`` when it is a real, current price for ``symbol``; PayloadRefused otherwise.

    The delayed variant's key (``… DATA DELAYED BY 15 MINUTES``) is refused: a 15-minute-old spot
    would misprice every contract of a live chain.
    """
    body = body or {}
    name = next((k for k in body if isinstance(k, str) and k.startswith("Global Quote")), None)
    if name is None:
        raise PayloadRefused(SURFACE_QUOTE, "missing_field", f"GLOBAL_QUOTE {symbol}: no `Global Quote`")
    if name != "Global Quote":
        raise PayloadRefused(SURFACE_QUOTE, "delayed_quote", f"GLOBAL_QUOTE {symbol}: {name!r} is not realtime")
    quote = body[name]
    if not isinstance(quote, dict):
        raise PayloadRefused(SURFACE_QUOTE, "wrong_type", f"GLOBAL_QUOTE {symbol}: a JSON {type(quote).__name__}")
    if quote.get("01. symbol", symbol) != symbol:
        raise PayloadRefused(SURFACE_QUOTE, "other_symbol",
                             f"GLOBAL_QUOTE {symbol}: answered for {str(quote.get('01. symbol'))[:20]!r}")
    price, code = number(quote.get("05. price"))
    if code != OK:
        raise PayloadRefused(SURFACE_QUOTE, VALUE_REASONS[code], f"GLOBAL_QUOTE {symbol}: `05. price` refused "
                             f"({str(quote.get('05. price'))[:40]!r})")
    return price


def parity_spot(cols: Columns, now: datetime, rate: float, div_yield: float) -> float | None:
    """The spot the chain's own prices imply (put-call parity near the money, nearest live expiry).

    S = (K·e^(−rT) + C − P)·e^(qT) on the ``PARITY_PAIRS`` strikes where |C − P| is smallest, two-sided
    quotes only, the median (so a garbled pair or two cannot move it); None with fewer than
    ``MIN_PARITY_PAIRS`` pairs. American early exercise is negligible at the money this close to expiry.
    """
    two_sided = (cols.num["bid"] > 0) & (cols.num["ask"] >= cols.num["bid"])
    t = _years(now, cols.expiry)
    for day in np.unique(cols.expiry[two_sided & (t > 0)]):
        at = two_sided & (cols.expiry == day)
        calls = dict(zip(cols.num["strike"][at & cols.is_call].tolist(), cols.num["mark"][at & cols.is_call].tolist(),
                         strict=True))
        puts = dict(zip(cols.num["strike"][at & ~cols.is_call].tolist(),
                        cols.num["mark"][at & ~cols.is_call].tolist(), strict=True))
        pairs = sorted(calls.keys() & puts.keys(), key=lambda k: abs(calls[k] - puts[k]))[:PARITY_PAIRS]
        if len(pairs) < MIN_PARITY_PAIRS:
            continue
        tau = float(t[at][0])
        implied = [(k * math.exp(-rate * tau) + calls[k] - puts[k]) * math.exp(div_yield * tau) for k in pairs]
        return float(np.median(implied))
    return None


def spot_problem(spot: float, cols: Columns, now: datetime, rate: float, div_yield: float) -> str:
    """Why ``spot`` cannot price this chain ("" when it can): a short reason for the rejects hash."""
    if not math.isfinite(spot):
        return "not_finite"
    if spot <= MIN_SPOT:
        return "too_small"
    if len(cols):
        ratio = spot / float(np.median(cols.num["strike"]))
        if not 1.0 / MAX_SPOT_STRIKE_RATIO <= ratio <= MAX_SPOT_STRIKE_RATIO:
            return "implausible_vs_strikes"
    implied = parity_spot(cols, now, rate, div_yield)
    if implied is not None and abs(spot / implied - 1.0) > PARITY_TOLERANCE:
        return "mismatch_vs_parity"
    return ""
