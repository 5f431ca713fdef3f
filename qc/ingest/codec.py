"""Ingestion's Redis values, one codec each: what `qc stream` and `qc chains` write and everyone reads.

Every writer encodes with these and every reader decodes with them (``qc.core.codec`` says how a
codec behaves: ``to_redis()``, ``from_redis(raw, key=...)`` → value or :class:`Absent`). Values:

- :class:`Quote` (``market:{sym}:quote`` hash): top of book, last, volume, ``as_of`` (market epoch).
- :class:`Book` (``market:{sym}:book`` hash, "{side}:{level}" → JSON {price, size, venue}). The
  hash carries no ``v``: ``HLEN`` is the runbook's level count. The level JSON may carry ``"v"``;
  absent means version 1, so a later format can version it without a cost today. A level at or
  through the opposite best price of a locked/crossed book carries ``"crossed":true`` (:attr:`Book.crossed`).
- :class:`VenueShares` (``market:{sym}:venues``), :class:`AuctionImbalance` (``market:{sym}:auction``),
  :class:`NewsSentiment` (``market:{sym}:news``): hashes.
- 1-minute bars (``market:{sym}:bars:1min`` list items) and prints (``market:{sym}:trades`` stream
  entries): the project's one :class:`~qc.core.models.Bar` and one :class:`~qc.core.models.Trade`,
  whose codecs live on those types (core, so the simulator shares them) and are re-exported here;
  :func:`decode_bars` and :func:`decode_trades` read whole lists and streams, dropping bad items
  with a counted reason.
- :class:`OptionChain` (``options:{sym}:chain`` JSON) with its :class:`ChainRow` rows: a bad row is
  dropped and counted in ``rejected``, never costing the rest of the document.

Hot paths get fast encoders that produce exactly what ``to_redis`` does (tests hold them to it):
:func:`book_fields` (cached JSON per level), :func:`quote_fields`, :func:`~qc.core.models.trade_fields`.
Pure: no Redis, no I/O.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, ClassVar, Literal, NamedTuple, cast

from qc.core.codec import (
    EPOCH_MAX,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    fmt,
    loads_object,
    need,
    opt_float,
    req_float,
    req_instant,
    req_int,
    req_str,
    to_float,
)
from qc.core.errors import DataError
from qc.core.models import Bar, DepthLevel, Trade, decode_trade_fields, trade_fields

__all__ = [
    "Absent", "AuctionImbalance", "Bar", "Book", "ChainRow", "DepthLevel", "NewsSentiment", "OptionChain", "Quote",
    "Trade", "TradeRow", "VenueShares", "as_text", "book_fields", "decode_bars", "decode_trades", "positive",
    "quote_fields", "trade_fields",
]

MAX_COUNT = 2**53 - 1  # integers a float (and every JSON reader) carries exactly
SIDES = ("ask", "bid")
MAX_LEVELS = 1000


def positive(raw: Any, name: str, *, optional: bool = False) -> float | None:
    """A finite number > 0 (a price, a strike); None for ""/None when ``optional``."""
    value = to_float(raw, name, lo=0.0, optional=optional)
    if value is not None and value <= 0:
        raise Malformed(name, f"is {value!r}, not > 0")
    return value


def req_positive(raw: Any, name: str) -> float:
    value = positive(raw, name)
    assert value is not None
    return value


def parse_date(raw: Any, name: str) -> date:
    """An ISO ``YYYY-MM-DD`` date."""
    if not isinstance(raw, str) or len(raw) != 10:
        raise Malformed(name, f"is not a YYYY-MM-DD date ({str(raw)[:40]!r})")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Malformed(name, f"is not a valid date ({raw!r})") from None


def epoch(raw: Any, name: str) -> float:
    """A Unix time after 1970 and before 2100 (anything else is a unit or parsing error)."""
    value = req_positive(raw, name)
    if value > EPOCH_MAX:
        raise Malformed(name, f"is {value!r}, after 2100 (not a Unix time in seconds)")
    return value


def as_text(raw: str | bytes | None) -> str | None:
    """A string or list value as text (a client without ``decode_responses`` hands bytes)."""
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


def count(raw: Any, name: str) -> int:
    """A count: an integer in [0, 2**53)."""
    return req_int(raw, name, lo=0, hi=MAX_COUNT)


# --- the quote ----------------------------------------------------------------------------------

QUOTE_PRICES = ("bid", "ask", "last")
QUOTE_SIZES = ("bid_size", "ask_size", "volume")


@dataclass(frozen=True, slots=True)
class Quote:
    """``market:{sym}:quote``: IB's level one as `qc stream` last saw it; a field IB never sent is None.

    ``as_of`` is the market-clock epoch of the last update (simulated time under `qc sim`).
    """

    VERSION: ClassVar[int] = 1
    as_of: float
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    last: float | None = None
    volume: float | None = None

    @property
    def mid(self) -> float | None:
        """Mid of a two-sided, uncrossed quote; None otherwise."""
        if self.bid is not None and self.ask is not None and self.ask >= self.bid:
            return 0.5 * (self.bid + self.ask)
        return None

    @property
    def spot(self) -> float | None:
        """The mid when two-sided, else the last trade; None without either."""
        mid = self.mid
        return mid if mid is not None else self.last

    def age_s(self, now_epoch: float) -> float:
        return now_epoch - self.as_of

    def to_redis(self) -> dict[str, str]:
        return quote_fields({n: getattr(self, n) for n in (*QUOTE_PRICES, *QUOTE_SIZES, "as_of")})

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Quote | Absent:
        def parse(f: Mapping[str, str]) -> Quote:
            check_version(f, cls.VERSION)
            prices = {n: positive(f.get(n), n, optional=True) for n in QUOTE_PRICES}
            sizes = {n: opt_float(f.get(n), n, lo=0.0) for n in QUOTE_SIZES}
            return cls(as_of=epoch(need(f, "as_of"), "as_of"), **prices, **sizes)

        return decode(key, raw, parse)


QUOTE_BLANK = dict.fromkeys((*QUOTE_PRICES, *QUOTE_SIZES), "") | {"v": str(Quote.VERSION)}


def quote_fields(values: Mapping[str, float | None]) -> dict[str, str]:
    """The writer's encoder (once per quote write): IB's fields by name, plus ``as_of``.

    A price that is not > 0 or a size below 0 is written empty: IB's "no bid" is not a price.
    """
    out = dict(QUOTE_BLANK)
    for name, value in values.items():
        if value is None or not math.isfinite(value) or value < 0 or (value == 0 and name in QUOTE_PRICES):
            out[name] = ""
        else:
            out[name] = repr(float(value))
    return out


# --- the book and venue shares ------------------------------------------------------------------

FIELD_NAMES = {name: [f"{name}:{i}" for i in range(50)] for name in SIDES}


@lru_cache(maxsize=4096)
def _venue_json(venue: str) -> str:
    return json.dumps(venue, allow_nan=False)


def level_json(price: float, size: float, venue: str, crossed: bool = False) -> str:
    """One level as stored. Not cached by value: ``DepthBook.fields`` keeps each row's text beside the row,
    so a call here is a changed level, which a by-value cache rarely had (it cost 2x a miss); the venue's
    JSON is cached (a handful of venues).

    Strict JSON: a non-finite price or size raises ValueError (``repr`` would write ``nan``, which no
    JSON reader parses), so the writer drops that one value instead of storing garbage.
    """
    if not (math.isfinite(price) and math.isfinite(size)):
        raise ValueError(f"depth level {price!r} x {size!r} is not finite")
    mark = ',"crossed":true' if crossed else ""
    return f'{{"price":{price!r},"size":{size!r},"venue":{_venue_json(venue)}{mark}}}'


def book_fields(asks: Sequence[DepthLevel], bids: Sequence[DepthLevel]) -> dict[str, str]:
    """The writer's encoder: "{side}:{level}" → level JSON, best level 0 (what ``Book.to_redis`` gives).

    In a locked or crossed book (best bid ≥ best ask) every level at or through the opposite best
    price carries ``"crossed":true``: `redis-cli` and readers in any language see it, and HLEN stays
    the level count (no extra field in the hash).
    """
    top_bid = bids[0].price if bids else math.nan
    top_ask = asks[0].price if asks else math.nan
    crossed = top_bid >= top_ask  # False when either side is empty (NaN compares False)
    out: dict[str, str] = {}
    for name, rows in (("ask", asks), ("bid", bids)):
        names = FIELD_NAMES[name]
        for i, lvl in enumerate(rows):
            through = crossed and (lvl.price <= top_bid if name == "ask" else lvl.price >= top_ask)
            out[names[i] if i < len(names) else f"{name}:{i}"] = level_json(lvl.price, lvl.size, lvl.venue, through)
    return out


def parse_level(raw: str, name: str) -> DepthLevel:
    """One level's JSON; a bad one is :class:`Malformed` as ``{side}:{level}.{field}``."""
    try:
        doc = loads_object(raw, "")
        if doc.get("v", 1) != 1:
            raise Malformed("v", f"is {doc['v']!r}, this reader wants 1 (old version)")
        return DepthLevel(req_positive(need(doc, "price"), "price"), req_float(need(doc, "size"), "size", lo=0.0),
                          req_str(need(doc, "venue"), "venue"))
    except Malformed as exc:
        raise Malformed(f"{name}.{exc.field}" if exc.field else name, exc.why) from None


@dataclass(frozen=True, slots=True)
class Book:
    """``market:{sym}:book``: both sides best first; either may be empty (a one-sided market)."""

    bids: tuple[DepthLevel, ...]
    asks: tuple[DepthLevel, ...]

    @property
    def two_sided(self) -> bool:
        return bool(self.bids and self.asks)

    @property
    def crossed(self) -> bool:
        """Best bid at or above best ask (locked or crossed). IB's SMART depth aggregates venues whose
        feeds arrive at different latencies, so this happens briefly; `qc stream` keeps the levels as
        IB sent them and marks them, and such a book has no usable mid or spread until it uncrosses."""
        return bool(self.bids and self.asks) and self.bids[0].price >= self.asks[0].price

    def to_redis(self) -> dict[str, str]:
        return book_fields(self.asks, self.bids)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Book | Absent:
        def parse(f: Mapping[str, str]) -> Book:
            sides: dict[str, dict[int, DepthLevel]] = {"bid": {}, "ask": {}}
            for name, value in f.items():
                side, _, level = name.partition(":")
                if side not in sides or not level.isdigit() or int(level) >= MAX_LEVELS:
                    raise Malformed(name, "is not a {bid|ask}:{level} field")
                sides[side][int(level)] = parse_level(value, name)
            for side, rows in sides.items():
                if sorted(rows) != list(range(len(rows))):
                    raise Malformed(side, f"levels {sorted(rows)} have a gap (partial value)")
            return cls(tuple(sides["bid"][i] for i in range(len(sides["bid"]))),
                       tuple(sides["ask"][i] for i in range(len(sides["ask"]))))

        return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class VenueShares:
    """``market:{sym}:venues``: each venue's share of a side's displayed size, and its Herfindahl index."""

    VERSION: ClassVar[int] = 1
    bid: Mapping[str, float]
    ask: Mapping[str, float]
    bid_herfindahl: float | None = None
    ask_herfindahl: float | None = None

    def to_redis(self) -> dict[str, str]:
        """The hash; ValueError for what the reader would refuse the whole hash for: a share outside [0, 1]
        or not finite, an empty venue name or one spelled ``herfindahl``."""
        out = {"v": str(self.VERSION)}
        for side, shares, hhi in (("bid", self.bid, self.bid_herfindahl), ("ask", self.ask, self.ask_herfindahl)):
            bad = [v for v in (*shares.values(), hhi) if v is not None and not 0.0 <= v <= 1.0]
            if bad:
                raise ValueError(f"{side} venue shares {bad[:3]!r} are not in [0, 1]")
            if "" in shares or "herfindahl" in shares:
                raise ValueError(f"{side} venue names {sorted(shares)[:5]!r} include one the reader cannot tell apart")
            out |= {f"{side}:{venue}": fmt(share) for venue, share in shares.items()}
            if hhi is not None:
                out[f"{side}:herfindahl"] = fmt(hhi)
        return out

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> VenueShares | Absent:
        def parse(f: Mapping[str, str]) -> VenueShares:
            check_version(f, cls.VERSION)
            shares: dict[str, dict[str, float]] = {"bid": {}, "ask": {}}
            hhi: dict[str, float | None] = {"bid": None, "ask": None}
            for name, value in f.items():
                if name == "v":
                    continue
                side, _, venue = name.partition(":")
                if side not in shares or not venue:
                    raise Malformed(name, "is not a {bid|ask}:{venue} field")
                share = req_float(value, name, lo=0.0, hi=1.0)
                if venue == "herfindahl":
                    hhi[side] = share
                else:
                    shares[side][venue] = share
            return cls(shares["bid"], shares["ask"], hhi["bid"], hhi["ask"])

        return decode(key, raw, parse)


# --- auction, news ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuctionImbalance:
    """``market:{sym}:auction``: the latest closing-auction figures IB sent (None: not sent), ``as_of`` market epoch."""

    VERSION: ClassVar[int] = 1
    as_of: float
    imbalance: float | None = None  # signed shares, + buy
    paired: float | None = None
    indicative_price: float | None = None
    regulatory_imbalance: float | None = None

    def to_redis(self) -> dict[str, str]:
        return auction_fields({n: getattr(self, n) for n in AUCTION_FIELDS})

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> AuctionImbalance | Absent:
        def parse(f: Mapping[str, str]) -> AuctionImbalance:
            check_version(f, cls.VERSION)
            return cls(as_of=epoch(need(f, "as_of"), "as_of"),
                       imbalance=opt_float(f.get("imbalance"), "imbalance"),
                       paired=opt_float(f.get("paired"), "paired", lo=0.0),
                       indicative_price=positive(f.get("indicative_price"), "indicative_price", optional=True),
                       regulatory_imbalance=opt_float(f.get("regulatory_imbalance"), "regulatory_imbalance"))

        return decode(key, raw, parse)


AUCTION_FIELDS = ("as_of", "imbalance", "paired", "indicative_price", "regulatory_imbalance")


def auction_fields(values: Mapping[str, float | None]) -> dict[str, str]:
    """The writer's encoder; a non-positive indicative price or negative paired size is written empty."""
    out = dict.fromkeys(AUCTION_FIELDS, "") | {"v": str(AuctionImbalance.VERSION)}
    for name, value in values.items():
        bad = value is None or not math.isfinite(value) or (
            name in ("indicative_price", "as_of") and value <= 0) or (name == "paired" and value < 0)
        out[name] = "" if bad else repr(float(cast(float, value)))
    return out


@dataclass(frozen=True, slots=True)
class NewsSentiment:
    """``market:{sym}:news``: relevance-weighted sentiment in [−1, 1] (None without articles) and its inputs."""

    VERSION: ClassVar[int] = 1
    score: float | None
    label: str
    articles: int
    relevance_sum: float
    skipped: int
    latest_published: str
    as_of: datetime

    def to_redis(self) -> dict[str, str]:
        return {"v": str(self.VERSION), "score": fmt(self.score), "label": self.label, "articles": fmt(self.articles),
                "relevance_sum": fmt(self.relevance_sum), "skipped": fmt(self.skipped),
                "latest_published": self.latest_published, "as_of": self.as_of.isoformat()}

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> NewsSentiment | Absent:
        def parse(f: Mapping[str, str]) -> NewsSentiment:
            check_version(f, cls.VERSION)
            return cls(score=opt_float(need(f, "score"), "score", lo=-1.0, hi=1.0),
                       label=req_str(need(f, "label"), "label"), articles=count(need(f, "articles"), "articles"),
                       relevance_sum=req_float(need(f, "relevance_sum"), "relevance_sum", lo=0.0),
                       skipped=count(need(f, "skipped"), "skipped"),
                       latest_published=req_str(need(f, "latest_published"), "latest_published"),
                       as_of=req_instant(need(f, "as_of"), "as_of"))

        return decode(key, raw, parse)


# --- bars and trades ----------------------------------------------------------------------------


def decode_bars(items: Iterable[str | bytes], *, key: str) -> tuple[list[Bar], Counter[str]]:
    """A bars list: good bars by start, one per start (the later item wins), and bad items counted by reason."""
    by_start: dict[datetime, Bar] = {}
    rejected: Counter[str] = Counter()
    for raw in items:
        bar = Bar.from_redis(raw, key=key)
        if isinstance(bar, Absent):
            rejected[bar.reason.split(" (")[0][:80]] += 1
        else:
            by_start[bar.ts] = bar
    return [by_start[t] for t in sorted(by_start)], rejected


TradeRow = tuple[float, float, float, int]  # market epoch, price, size, aggressor side


def decode_trades(entries: Iterable[tuple[str, Mapping[str, str]]], *,
                  key: str) -> tuple[list[TradeRow], Counter[str]]:
    """Stream entries as (ts, price, size, side) rows, bad entries counted by reason (no datetime per print)."""
    rows: list[TradeRow] = []
    rejected: Counter[str] = Counter()
    for _, f in entries:
        try:
            rows.append(decode_trade_fields(f))
        except Malformed as exc:
            rejected[f"malformed: {exc.field}"] += 1
    return rows, rejected


# --- the option chain ---------------------------------------------------------------------------

Right = Literal["C", "P"]
QC_GREEKS = ("delta", "gamma", "vega", "theta", "rho", "vanna", "charm")
VENDOR_FIELDS = ("iv_vendor", "delta_vendor", "gamma_vendor", "theta_vendor", "vega_vendor", "rho_vendor")
IV_SOURCES = ("mark", "vendor")
MAX_IV = 10.0


class ChainRow(NamedTuple):
    """One contract of the chain: the quote, qc's IV and Greeks (qc units), the vendor's beside them.

    A NamedTuple rather than a frozen dataclass: a chain is ~3,000 rows per symbol decoded every
    time it changes, and a 25-field frozen dataclass costs ~4x a tuple to build (measured).
    """

    expiry: date
    right: Right
    strike: float
    bid: float
    ask: float
    mark: float
    volume: int
    open_interest: int
    t_years: float
    iv: float | None
    iv_source: str
    divergent: bool
    delta: float | None
    gamma: float | None
    vega: float | None
    theta: float | None
    rho: float | None
    vanna: float | None
    charm: float | None
    iv_vendor: float | None = None
    delta_vendor: float | None = None
    gamma_vendor: float | None = None
    theta_vendor: float | None = None
    vega_vendor: float | None = None
    rho_vendor: float | None = None

    @property
    def contract(self) -> tuple[date, float, str]:
        return self.expiry, self.strike, self.right

    def to_json(self) -> dict[str, Any]:
        doc = {name: getattr(self, name) for name in ROW_FIELDS}
        doc["expiry"] = self.expiry.isoformat()
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> ChainRow:
        """One row, or :class:`Malformed` naming the first bad field."""
        if not isinstance(doc, dict):
            raise Malformed("row", f"is a JSON {type(doc).__name__}, not an object")
        right = need(doc, "right")
        if right not in ("C", "P"):
            raise Malformed("right", f"is {right!r}, not C or P")
        bid = req_float(need(doc, "bid"), "bid", lo=0.0)
        ask = req_positive(need(doc, "ask"), "ask")
        if ask < bid:
            raise Malformed("ask", f"{ask!r} is below the bid {bid!r} (crossed)")
        divergent = need(doc, "divergent")
        if not isinstance(divergent, bool):
            raise Malformed("divergent", f"is {divergent!r}, not a boolean")
        iv_source = need(doc, "iv_source")
        if iv_source not in IV_SOURCES:
            raise Malformed("iv_source", f"is {iv_source!r}, not one of {IV_SOURCES}")
        greeks = {n: opt_float(doc.get(n), n) for n in QC_GREEKS}
        vendor = {n: opt_float(doc.get(n), n) for n in VENDOR_FIELDS}
        return cls(expiry=parse_date(need(doc, "expiry"), "expiry"), right=right,
                   strike=req_positive(need(doc, "strike"), "strike"), bid=bid, ask=ask,
                   mark=req_float(need(doc, "mark"), "mark", lo=0.0),
                   volume=count(need(doc, "volume"), "volume"),
                   open_interest=count(need(doc, "open_interest"), "open_interest"),
                   t_years=req_float(need(doc, "t_years"), "t_years", lo=0.0),
                   iv=volatility(doc.get("iv"), "iv"),
                   iv_source=iv_source, divergent=divergent, **greeks, **vendor)


ROW_FIELDS: tuple[str, ...] = ChainRow._fields
OPTIONAL_ROW_FIELDS = ROW_FIELDS[12:]  # qc's Greeks, then the vendor's: None or a finite number


def volatility(raw: Any, name: str) -> float | None:
    """An implied volatility: None, or a finite number in (0, ``MAX_IV``]."""
    value = positive(raw, name, optional=True)
    if value is not None and value > MAX_IV:
        raise Malformed(name, f"is {value!r}, above {MAX_IV:g}")
    return value


@dataclass(frozen=True)
class OptionChain:
    """``options:{sym}:chain``: what `qc chains` parsed for one symbol, and how to reproduce its Greeks.

    ``dropped`` counts the vendor rows the writer's parser refused (by reason); ``rejected`` the rows
    this reader refused (never stored: a reader's finding).
    """

    VERSION: ClassVar[int] = 1
    symbol: str
    as_of: datetime
    spot: float
    rate: float
    div_yield: float
    expiries: tuple[date, ...]
    rows: tuple[ChainRow, ...]
    source: str = ""
    spot_source: str = ""
    expiry_roles: Mapping[str, str] = field(default_factory=dict)
    missing_expiries: tuple[str, ...] = ()
    units: str = ""
    dropped: Mapping[str, int] = field(default_factory=dict)
    rejected: Mapping[str, int] = field(default_factory=dict)

    MAX_AGE_S: ClassVar[float] = 600.0  # `qc chains` rewrites every 300 s: two missed cycles is stale

    @property
    def as_of_epoch(self) -> float:
        return self.as_of.timestamp()

    def stale_reason(self, now_epoch: float) -> str:
        """Why figures computed from this chain are stale now ("" when they are not): the one threshold."""
        age = now_epoch - self.as_of_epoch
        if age <= self.MAX_AGE_S:
            return ""
        return f"option chain is {age:.0f} s old (> {self.MAX_AGE_S:.0f} s; `qc chains` refreshes every 300 s)"

    @property
    def divergent(self) -> int:
        return sum(r.divergent for r in self.rows)

    def to_redis(self) -> str:
        return dumps({
            "v": self.VERSION, "symbol": self.symbol, "as_of": self.as_of.isoformat(), "as_of_epoch": self.as_of_epoch,
            "source": self.source, "spot": self.spot, "spot_source": self.spot_source, "rate": self.rate,
            "div_yield": self.div_yield, "expiries": [d.isoformat() for d in self.expiries],
            "expiry_roles": dict(self.expiry_roles), "missing_expiries": list(self.missing_expiries),
            "units": self.units,
            "counts": {"rows": len(self.rows), "divergent": self.divergent,
                       "dropped": {k: n for k, n in sorted(self.dropped.items()) if n}},
            "rows": [r.to_json() for r in self.rows]})

    @classmethod
    def from_redis(cls, raw: str | bytes | None, *, key: str) -> OptionChain | Absent:
        def parse(text_: str) -> OptionChain | Absent:
            doc = loads_object(text_, "chain")
            version = doc.get("v")
            if version != cls.VERSION:
                why = "absent: written before schema v1" if version is None else f"is {version!r}, this reader wants 1"
                raise Malformed("v", f"{why} (old version)")
            as_of = req_instant(need(doc, "as_of"), "as_of")
            req_float(need(doc, "as_of_epoch"), "as_of_epoch", lo=0.0)
            raw_rows = need(doc, "rows")
            if not isinstance(raw_rows, list):
                raise Malformed("rows", f"is a JSON {type(raw_rows).__name__}, not a list")
            rows, rejected = parse_rows(raw_rows)
            if not rows:
                return Absent(key, f"malformed: rows: all {len(raw_rows)} rejected ({dict(rejected) or 'none sent'})")
            expiries = need(doc, "expiries")
            if not isinstance(expiries, list):
                raise Malformed("expiries", "is not a list")
            counts = doc.get("counts") or {}
            dropped = counts.get("dropped") or {} if isinstance(counts, dict) else {}
            if not isinstance(dropped, dict):
                raise Malformed("counts.dropped", "is not an object")
            roles = doc.get("expiry_roles") or {}
            if not isinstance(roles, dict):
                raise Malformed("expiry_roles", "is not an object")
            return cls(symbol=req_str(need(doc, "symbol"), "symbol", empty=False), as_of=as_of,
                       spot=req_positive(need(doc, "spot"), "spot"),
                       rate=req_float(need(doc, "rate"), "rate", lo=-1.0, hi=1.0),
                       div_yield=req_float(need(doc, "div_yield"), "div_yield", lo=-1.0, hi=1.0),
                       expiries=tuple(parse_date(d, "expiries") for d in expiries), rows=tuple(rows),
                       source=str(doc.get("source", "")), spot_source=str(doc.get("spot_source", "")),
                       expiry_roles={str(k): str(v) for k, v in roles.items()},
                       missing_expiries=tuple(str(d) for d in doc.get("missing_expiries") or ()),
                       units=str(doc.get("units", "")),
                       dropped={str(k): count(n, f"counts.dropped.{k}") for k, n in dropped.items()},
                       rejected=dict(rejected))

        return decode(key, as_text(raw), parse)


# --- the fast path for well-formed rows (the slow path above is the authority and names the field) ---

_OPTIONAL_TYPES = frozenset({float, type(None)})


@lru_cache(maxsize=256)
def _iso_date(raw: str) -> date:
    return date.fromisoformat(raw)


def fast_row(doc: Any) -> ChainRow | None:
    """:meth:`ChainRow.from_json` for a row that is plainly well formed (JSON floats and ints where
    the writer puts them, in range); None when anything is unusual, for the checked path to accept
    or refuse with its reason.

    Why: a chain is ~1,000–14,000 rows per symbol; the checked path's per-field calls cost ~3x this
    (comparisons inline, one ``isfinite`` map over the optional Greeks, rows built positionally).
    ``tests/unit/test_ingest_codec.py`` holds the two paths equal on random and corrupted rows.
    """
    if type(doc) is not dict:
        return None
    get = doc.get
    right, expiry, divergent, source = get("right"), get("expiry"), get("divergent"), get("iv_source")
    if right not in ("C", "P") or type(expiry) is not str or len(expiry) != 10 or type(divergent) is not bool \
            or source not in IV_SOURCES:
        return None
    bid, ask, mark, strike, t_years = get("bid"), get("ask"), get("mark"), get("strike"), get("t_years")
    if type(bid) is not float or type(ask) is not float or type(mark) is not float or type(strike) is not float \
            or type(t_years) is not float:
        return None
    # NaN fails every comparison; the upper bounds refuse inf
    if not (0.0 <= bid <= ask < math.inf and ask > 0.0 and 0.0 <= mark < math.inf and 0.0 < strike < math.inf
            and 0.0 <= t_years < math.inf):
        return None
    volume, oi, iv = get("volume"), get("open_interest"), get("iv")
    if type(volume) is not int or type(oi) is not int or not (0 <= volume <= MAX_COUNT and 0 <= oi <= MAX_COUNT):
        return None
    if iv is not None and (type(iv) is not float or not 0.0 < iv <= MAX_IV):
        return None
    optional = [get(n) for n in OPTIONAL_ROW_FIELDS]
    if not _OPTIONAL_TYPES.issuperset(map(type, optional)) \
            or not all(map(math.isfinite, [v for v in optional if v is not None])):
        return None
    try:
        day = _iso_date(expiry)
    except ValueError:
        return None
    # positional, in ROW_FIELDS order: tuple.__new__ skips the keyword-parsing __new__ (half the cost)
    return tuple.__new__(ChainRow, (day, right, strike, bid, ask, mark, volume, oi, t_years, iv, source, divergent,
                                    *optional))

def parse_rows(raw_rows: Iterable[Any]) -> tuple[list[ChainRow], Counter[str]]:
    """Good rows in order; a bad or duplicate row is dropped and counted under its reason."""
    rows: list[ChainRow] = []
    seen: set[tuple[date, float, str]] = set()
    rejected: Counter[str] = Counter()
    for raw in raw_rows:
        try:
            row = fast_row(raw) or ChainRow.from_json(raw)
        except Malformed as exc:
            rejected[f"malformed:{exc.field}"] += 1
            continue
        if row.contract in seen:
            rejected["duplicate_contract"] += 1
            continue
        seen.add(row.contract)
        rows.append(row)
    return rows, rejected


# --- Alpha Vantage payloads -----------------------------------------------------------------------


class PayloadRefused(DataError):
    """A whole Alpha Vantage payload (or its one needed value) refused: ``surface`` and ``reason`` are the
    ``monitoring:rejects`` field ("av.quote", "not_finite"); the message says what was wrong, for the log."""

    def __init__(self, surface: str, reason: str, message: str) -> None:
        super().__init__(f"{message} [{surface}:{reason}]")
        self.surface = surface
        self.reason = reason
