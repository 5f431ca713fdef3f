"""The signal engine's shared values: factors, strategy parameters, contracts, gate verdicts.

Pure dataclasses, no I/O. Every module of ``qc.signals`` speaks these; the codec (``codec.py``)
turns the emitted signal into its Redis form.

Conventions, stated once:

- A factor's ``value`` lies in [-1, 1]. Directional factors: + is bullish (buy calls), - bearish
  (buy puts). Conditioning factors (gamma mode, VPIN level, IV - RV) are not directional: they set
  the mode, filter other factors and scale size (``DIRECTIONAL`` says which is which).
- ``value is None`` means the factor **abstains** (input missing or stale, ``reason`` says which);
  an abstaining factor is removed from the weighted mean, never counted as zero.
- Ages are seconds of the factor's input at evaluation time (None when there is no input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Right = Literal["C", "P"]
StrategyName = Literal["0dte", "1dte", "14dte", "moc"]
STRATEGIES: tuple[StrategyName, ...] = ("0dte", "1dte", "14dte", "moc")
OPTION_STRATEGIES: tuple[StrategyName, ...] = ("0dte", "1dte", "14dte")
DTE_OF: Mapping[str, int] = {"0dte": 0, "1dte": 1, "14dte": 14}

# --- factor names ---------------------------------------------------------------------------
GAMMA_MODE = "gamma_mode"            # + long gamma (mean reversion), - short gamma (momentum); conditioner
WALLS = "walls"                      # + spot nearer the put wall (support), - nearer the call wall
VPIN_LEVEL = "vpin_level"            # 2*VPIN - 1: + toxic flow (trust flow factors more); conditioner
VPIN_CHANGE = "vpin_change"          # rising toxicity: + rising; conditioner
BOOK_IMBALANCE = "book_imbalance"    # depth-weighted bid - ask share
MICROPRICE = "microprice"            # (microprice - mid) / half spread
ORDER_FLOW = "order_flow"            # aggressor-signed volume share over the flow window
FLOW_CLUSTER = "flow_cluster"        # momentum cluster follows the recent return, mean reversion fades it
IV_RV = "iv_rv"                      # - rich options (IV above RV): buying premium is worse; conditioner
SKEW_0DTE = "skew_0dte"              # steep put skew: fear, bearish
NEWS = "news"                        # relevance-weighted news sentiment
LAST_HALF_HOUR = "last_half_hour"    # return from the prior close to close - 30 min
AUCTION = "auction"                  # closing imbalance / paired shares, + buy imbalance

DIRECTIONAL: frozenset[str] = frozenset({WALLS, BOOK_IMBALANCE, MICROPRICE, ORDER_FLOW, FLOW_CLUSTER, SKEW_0DTE,
                                         NEWS, LAST_HALF_HOUR, AUCTION})
CONDITIONERS: frozenset[str] = frozenset({GAMMA_MODE, VPIN_LEVEL, VPIN_CHANGE, IV_RV})
ALL_FACTORS: tuple[str, ...] = (GAMMA_MODE, WALLS, VPIN_LEVEL, VPIN_CHANGE, BOOK_IMBALANCE, MICROPRICE, ORDER_FLOW,
                                FLOW_CLUSTER, IV_RV, SKEW_0DTE, NEWS, LAST_HALF_HOUR, AUCTION)
FLOW_FACTORS: frozenset[str] = frozenset({BOOK_IMBALANCE, MICROPRICE, ORDER_FLOW})  # what VPIN filters


@dataclass(frozen=True, slots=True)
class Factor:
    """One factor's reading: a value in [-1, 1] or an abstention with its reason."""

    name: str
    value: float | None
    age_s: float | None
    inputs: Mapping[str, float | str | None] = field(default_factory=dict)
    reason: str = ""  # why it abstains ("" when it has a value)

    @property
    def abstains(self) -> bool:
        return self.value is None


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one factor added to a score: its value times its effective weight, over the total weight."""

    name: str
    value: float | None
    weight: float          # effective weight after the VPIN filter and the gamma mode
    contribution: float    # value * weight / total weight of the present factors (0.0 when abstaining)
    age_s: float | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Score:
    """A strategy's composite: the signed score in [-1, 1], the mode and size multiplier, each contribution."""

    score: float | None     # None: every directional factor abstained
    mode: str               # "momentum", "mean_reversion", "neutral" or "unknown" (gamma abstained)
    size_multiplier: float
    contributions: tuple[Contribution, ...]
    reason: str = ""        # why there is no score


@dataclass(frozen=True, slots=True)
class BracketParams:
    """Exits as fractions of the entry premium, plus a time stop."""

    take_profit_pct: float = 0.50   # +50 % of premium
    stop_pct: float = 0.25          # -25 % of premium
    time_stop_min: float = 60.0
    trail_pct: float = 0.0          # > 0: `qc execute` trails the stop this % below the best premium (0: fixed)


@dataclass(frozen=True, slots=True)
class ContractFilter:
    """Liquidity filters and the delta band of one strategy (|delta| for puts)."""

    delta_lo: float = 0.40
    delta_hi: float = 0.55
    max_spread_pct: float = 0.10    # (ask - bid) / mid
    max_spread_abs: float = 0.05    # ask - bid in dollars near the money; 0 disables
    min_open_interest: int = 500
    min_volume: int = 100
    max_quote_age_s: float = 900.0  # the chain's age: Alpha Vantage refreshes it every 5 min


@dataclass(frozen=True, slots=True)
class StrategyParams:
    """Everything a strategy is tuned by: weights, threshold, contract filter, bracket, dwell, cooldown."""

    name: StrategyName
    threshold: float
    weights: Mapping[str, float]
    contract: ContractFilter = field(default_factory=ContractFilter)
    bracket: BracketParams = field(default_factory=BracketParams)
    dwell_s: float = 300.0          # dedup window of one fingerprint
    cooldown_s: float = 120.0       # no second signal of this strategy on this symbol within it
    max_age_s: float = 120.0        # an input older than this abstains
    min_factors: int = 2            # fewer present directional factors: no score (one input is not a consensus)
    required: tuple[str, ...] = ()  # factors without which the strategy does not trade (its core inputs)
    lead: str | None = None         # the factor that must agree with the score's sign (the flow strategies')
    lead_min: float = 0.0           # ... with at least this |value|; 0 disables the requirement


@dataclass(frozen=True, slots=True)
class Contract:
    """The exact instrument a signal trades: an option, or the underlying for MOC."""

    symbol: str
    sec_type: Literal["OPT", "STK"]
    expiry: date | None = None
    strike: float | None = None
    right: Right | None = None
    multiplier: int = 100
    exchange: str = "SMART"
    primary_exchange: str = ""

    def describe(self) -> str:
        if self.sec_type == "STK":
            return f"{self.symbol} shares"
        return f"{self.symbol} {self.expiry} {self.strike:g}{self.right} x{self.multiplier}"


@dataclass(frozen=True, slots=True)
class Quote:
    """The option's (or share's) quote the contract was chosen on, and its age."""

    bid: float
    ask: float
    mark: float
    delta: float | None
    open_interest: int
    volume: int
    age_s: float


@dataclass(frozen=True, slots=True)
class Choice:
    """A contract that passed every filter, with its quote; ``rejected`` counts the ones that did not."""

    contract: Contract
    quote: Quote
    rejected: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class NoContract:
    """No contract passed: ``reason`` names the decisive filter; ``rejected`` counts every reason."""

    reason: str
    rejected: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Gate:
    """A time gate's verdict: open, or closed with a reason naming the gate and the instant."""

    name: str
    open: bool
    reason: str = ""
    closes_at: datetime | None = None  # when this gate shuts for new entries today (None: not today)


@dataclass(frozen=True, slots=True)
class Decision:
    """A strategy's verdict for one symbol and cycle: a direction to trade, or why not."""

    strategy: StrategyName
    symbol: str
    direction: int                 # +1 bullish, -1 bearish, 0 none
    score: Score
    gates: tuple[Gate, ...]
    reason: str = ""               # why no trade ("" when direction != 0)
    notes: tuple[str, ...] = ()    # e.g. "no auction data: ran on gamma and last-half-hour inputs"

    @property
    def fires(self) -> bool:
        return self.direction != 0
