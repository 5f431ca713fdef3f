"""What the simulated market emits, in simulated time order; the servers turn these into wire messages.

Depth operations use IB's meaning (reference ib-api-protocol.md §3, §7): ``operation`` 0 insert at
``position`` shifting lower levels down, 1 update in place, 2 delete shifting lower levels up;
``side`` 0 ask, 1 bid. Applying a symbol's ops in order to an empty book rebuilds the model's book
exactly, which is what ``qc stream``'s book builder is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from qc.core.models import Bar, DepthLevel, Trade
from qc.sim.market.models import AuctionImbalance, OptionContract, OptionQuote, Quote

ASK, BID = 0, 1
INSERT, UPDATE, DELETE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class DepthOp:
    """One L2 book operation on one symbol."""

    symbol: str
    ts: datetime
    side: int
    position: int
    operation: int
    price: float
    size: float
    venue: str


@dataclass(frozen=True, slots=True)
class TradeEvent:
    symbol: str
    trade: Trade


@dataclass(frozen=True, slots=True)
class QuoteEvent:
    symbol: str
    quote: Quote


@dataclass(frozen=True, slots=True)
class ImbalanceEvent:
    symbol: str
    imbalance: AuctionImbalance


MarketEvent = DepthOp | TradeEvent | QuoteEvent | ImbalanceEvent


class MarketModel(Protocol):
    """The simulated market as the IB and Alpha Vantage servers see it.

    Deterministic: the same seed and start give the same events whatever the polling pattern,
    because events live on the model's own simulated timeline and ``events_until`` only reveals
    them. Time is always passed in (the simulator's clock), never read.
    """

    symbols: tuple[str, ...]

    def events_until(self, now: datetime) -> list[MarketEvent]:
        """Every event with ``ts`` in (last call's ``now``, ``now``], in time order."""
        ...

    def prepare_ahead(self, now: datetime, budget: int) -> None:
        """Optionally do up to ``budget`` events' work on what comes after ``now``; changes no event."""
        ...

    def book(self, symbol: str) -> tuple[list[DepthLevel], list[DepthLevel]]:
        """(bids best first, asks best first) as of the last ``events_until``."""
        ...

    def quote(self, symbol: str) -> Quote:
        ...

    def spot(self, symbol: str) -> float:
        ...

    def option_chain(self, symbol: str, now: datetime) -> list[OptionQuote]:
        """Every listed option on ``symbol`` at ``now``, sorted by expiry then strike then right."""
        ...

    def option_quote(self, contract: OptionContract, now: datetime) -> OptionQuote | None:
        ...

    def history(self, symbol: str, end: datetime, minutes: int) -> list[Bar]:
        """Regular-session 1-minute bars ending at ``end`` (past sessions included), oldest first."""
        ...
