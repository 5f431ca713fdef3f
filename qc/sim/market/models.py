"""The simulated market's own values: top of book, the closing-auction imbalance, listed options and
their quotes. Production has its own shapes for these (``qc.ingest.codec``); the simulator, as the
counterparty, keeps its own so that one bug cannot pass both sides.

Times are tz-aware UTC datetimes; prices in the instrument's currency; sizes in shares (stock) or
contracts (options).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

Right = Literal["C", "P"]


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
