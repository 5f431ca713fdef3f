"""Market-data types shared by the producers and consumers of Redis values (and by the simulator):
the L2 level, the IB 5-second bar, the one 1-minute bar and the one trade.

Times are tz-aware UTC datetimes; prices in the instrument's currency; sizes in shares (stock) or
contracts (options). Side conventions follow IB where IB defines them and say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import ClassVar

from qc.core.codec import (
    EPOCH_MAX,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    loads_object,
    need,
    req_float,
    req_int,
)

BUY, SELL, UNKNOWN_SIDE = 1, -1, 0


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One level of an L2 book: price, displayed size and the venue holding it (IB's marketMaker)."""

    price: float
    size: float
    venue: str


@dataclass(frozen=True, slots=True)
class Trade:
    """One print. ``side`` is the aggressor: +1 buyer lifted the ask, −1 seller hit the bid, 0 unknown.

    The project's one trade type: the simulator prints these and ``market:{sym}:trades`` stores them
    (one stream entry each, ``ts`` the market-clock epoch to the millisecond).
    """

    VERSION: ClassVar[int] = 1
    ts: datetime
    price: float
    size: float
    venue: str
    side: int = UNKNOWN_SIDE

    def to_redis(self) -> dict[str, str]:
        return trade_fields(f"{self.ts.timestamp():.3f}", self.price, self.size, self.venue, self.side)

    @classmethod
    def from_redis(cls, raw: Mapping[str, str] | None, *, key: str) -> Trade | Absent:
        def parse(f: Mapping[str, str]) -> Trade:
            ts, price, size, side = decode_trade_fields(f)
            return cls(datetime.fromtimestamp(ts, timezone.utc), price, size, need(f, "venue"), side)

        return decode(key, raw, parse)


def trade_fields(ts: str, price: float, size: float, venue: str, side: int) -> dict[str, str]:
    """The stream's encoder (once per print, on the hot path): what ``Trade.to_redis`` gives."""
    return {"ts": ts, "price": repr(price), "size": repr(size), "venue": venue, "side": str(side), "v": "1"}


def decode_trade_fields(f: Mapping[str, str]) -> tuple[float, float, float, int]:
    """A stream entry as (market epoch, price, size, side), validated; :class:`Malformed` otherwise.

    A catch-up after a pause reads hundreds of thousands of prints: the plainly good ones take a
    short path (same checks, no per-field calls); anything else goes through the checks that name
    the bad field. ``tests/unit/test_ingest_codec.py`` holds the two paths equal.
    """
    return _plain_trade(f) or checked_trade_fields(f)


def checked_trade_fields(f: Mapping[str, str]) -> tuple[float, float, float, int]:
    """:func:`decode_trade_fields` field by field: :class:`Malformed` names the first bad one."""
    check_version(f, Trade.VERSION)
    price = req_float(need(f, "price"), "price", lo=0.0)
    if price <= 0:
        raise Malformed("price", f"is {price!r}, not > 0")
    side = req_int(need(f, "side"), "side", lo=-1, hi=1)
    ts = req_float(need(f, "ts"), "ts", lo=0.0, hi=EPOCH_MAX)
    return (ts, price, req_float(need(f, "size"), "size", lo=0.0), side)



_TRADE_VERSION = str(Trade.VERSION)


def _plain_trade(f: Mapping[str, str]) -> tuple[float, float, float, int] | None:
    """The entry when it is plainly good (current version, finite, in range); None to check it field by field."""
    if f.get("v") != _TRADE_VERSION:
        return None
    try:
        ts, price, size, side = float(f["ts"]), float(f["price"]), float(f["size"]), int(f["side"])
    except (KeyError, TypeError, ValueError):
        return None  # the checked path names the field and the reason
    if 0.0 < price < math.inf and 0.0 <= size < math.inf and 0.0 <= ts <= EPOCH_MAX and -1 <= side <= 1:
        return ts, price, size, side
    return None


@dataclass(frozen=True, slots=True)
class FiveSecondBar:
    """One IB real-time bar (``reqRealTimeBars``, 5 s): ``start`` is its epoch start, a multiple of 5.

    The simulator sends these and `qc stream` rolls them into minutes: one shape on both sides.
    """

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar starting at ``ts``; ``complete`` is False for a bar whose interval is not over.

    The project's one bar type: the simulator's history, IB's historical bars and `qc stream`'s
    minutes rolled up from 5-s bars (``five_second_bars`` says how many arrived; None when qc did not
    roll it up) are all these, and ``market:{sym}:bars:1min`` stores them (one JSON item each, its
    ``start`` the epoch second the minute begins).
    """

    VERSION: ClassVar[int] = 1
    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    count: int
    complete: bool = True
    five_second_bars: int | None = None

    @property
    def start(self) -> int:
        return int(self.ts.timestamp())

    def to_redis(self) -> str:
        return dumps({"v": self.VERSION, "start": self.start, "open": self.open, "high": self.high, "low": self.low,
                      "close": self.close, "volume": self.volume, "vwap": self.vwap, "count": self.count,
                      "bars": self.five_second_bars, "complete": self.complete})

    @classmethod
    def from_redis(cls, raw: str | bytes | None, *, key: str) -> Bar | Absent:
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        return decode(key, text, cls.parse)

    @classmethod
    def parse(cls, raw: str) -> Bar:
        """One list item, or :class:`Malformed` naming the first bad field."""
        doc = loads_object(raw, "bar")
        check_version(doc, cls.VERSION)
        start = req_int(need(doc, "start"), "start", lo=0, hi=int(EPOCH_MAX))
        if start % 60:
            raise Malformed("start", f"{start} is not on a minute boundary")
        o, h, lo, c, vwap = (req_float(need(doc, n), n, lo=0.0) for n in ("open", "high", "low", "close", "vwap"))
        if min(o, h, lo, c) <= 0:
            raise Malformed("low", f"prices must be > 0 (open {o!r}, high {h!r}, low {lo!r}, close {c!r})")
        if not lo <= min(o, c) <= max(o, c) <= h:
            raise Malformed("high", f"{h!r} / low {lo!r} do not bracket open {o!r} and close {c!r}")
        complete = need(doc, "complete")
        if not isinstance(complete, bool):
            raise Malformed("complete", f"is {complete!r}, not a boolean")
        parts = doc.get("bars")
        return cls(datetime.fromtimestamp(start, timezone.utc), o, h, lo, c,
                   req_float(need(doc, "volume"), "volume", lo=0.0), vwap,
                   req_int(need(doc, "count"), "count", lo=0), complete,
                   None if parts is None else req_int(parts, "bars", lo=0, hi=60))


