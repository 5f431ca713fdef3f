"""Dataclasses shared across subsystems: market data, option quotes.

Times are tz-aware UTC datetimes; prices in the instrument's currency; sizes in shares (stock) or
contracts (options). Side conventions follow IB where IB defines them and say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Right = Literal["C", "P"]
BUY, SELL, UNKNOWN_SIDE = 1, -1, 0


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One level of an L2 book: price, displayed size and the venue holding it (IB's marketMaker)."""

    price: float
    size: float
    venue: str


@dataclass(frozen=True, slots=True)
class Trade:
    """One print. ``side`` is the aggressor: +1 buyer lifted the ask, −1 seller hit the bid, 0 unknown."""

    ts: datetime
    price: float
    size: float
    venue: str
    side: int = UNKNOWN_SIDE


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book plus the last trade and the session's volume so far."""

    ts: datetime
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    last: float
    last_size: float
    volume: float

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)


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
    """An OHLCV bar starting at ``ts``; ``complete`` is False for a bar whose interval is not over."""

    ts: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    count: int
    complete: bool = True


@dataclass(frozen=True, slots=True)
class AuctionImbalance:
    """Closing-auction imbalance: signed shares (+ buy), paired shares, indicative clearing price."""

    ts: datetime
    imbalance: float
    paired: float
    indicative_price: float


@dataclass(frozen=True, slots=True)
class OptionContract:
    """A listed equity option; ``occ_symbol`` is the OCC form IB uses as localSymbol."""

    underlying: str
    expiry: date
    strike: float
    right: Right
    multiplier: int = 100

    @property
    def occ_symbol(self) -> str:
        """E.g. ``SPY   240119C00450000``: root padded to 6, YYMMDD, C/P, strike × 1000 in 8 digits."""
        return f"{self.underlying:<6}{self.expiry:%y%m%d}{self.right}{round(self.strike * 1000):08d}"


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """A quoted option with its Greeks in qc's units (see ``qc/analytics/greeks.py``)."""

    contract: OptionContract
    bid: float
    ask: float
    last: float
    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float
    open_interest: int
    volume: int

    @property
    def mark(self) -> float:
        return 0.5 * (self.bid + self.ask)
