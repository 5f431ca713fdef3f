"""The pre-trade check's values: the order, the book it lands in, the market it is priced on, the limits.

Pure frozen dataclasses, validated on construction so a bad order or a bad limit fails where it is
built, in one line naming the field, and never half-way through a check.

Conventions, stated once:

- Quantities: an :class:`OrderIntent`'s ``quantity`` is unsigned (> 0) and ``side`` gives the
  sign; a :class:`Position`'s ``quantity`` is signed (+ long, − short). Options count contracts,
  stock counts shares.
- Size limits count **contract equivalents**: ``quantity × multiplier / 100``, so one standard
  option is 1 and 100 shares are 1 (a stock order of 50 shares is 0.5).
- Money in dollars (``_usd``); ages in seconds (``_s``); minutes ``_min``; ``_pct`` in percent
  (10.0 = 10 %).
- Dollar Greeks (see ``qc.risk.exposure``): delta in $ per 1 % move of the underlying, gamma in $
  of delta per 1 % move per 1 % move, vega in $ per vol point, charm in $ of delta per calendar day.
- The trading state is ``qc.risk.state.TradingState``: an order meets the stricter of its
  account's and its underlying's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Literal

from qc.risk.state import TradingState

SecType = Literal["OPT", "STK"]
Right = Literal["C", "P"]
Side = Literal["BUY", "SELL"]
Bucket = Literal["0dte", "1dte", "14dte", "other"]
BUCKETS: tuple[Bucket, ...] = ("0dte", "1dte", "14dte", "other")
STANDARD_MULTIPLIER = 100  # one contract equivalent: a standard equity option, or 100 shares


def _finite(owner: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{owner}.{name}: must be a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class ContractKey:
    """One instrument: an option of ``underlying`` or the ``underlying`` shares themselves.

    Hashable: positions, quotes and Greeks are keyed by it.
    """

    underlying: str
    sec_type: SecType
    expiry: date | None = None
    strike: float | None = None
    right: Right | None = None
    multiplier: int = STANDARD_MULTIPLIER

    def __post_init__(self) -> None:
        if not self.underlying:
            raise ValueError("ContractKey.underlying: must name the underlying, got ''")
        if self.sec_type == "OPT":
            if self.expiry is None or self.strike is None or self.right not in ("C", "P"):
                raise ValueError(f"ContractKey: an option needs expiry, strike and right C|P, got "
                                 f"{self.expiry!r} {self.strike!r} {self.right!r}")
            if not (math.isfinite(self.strike) and self.strike > 0):
                raise ValueError(f"ContractKey.strike: must be > 0, got {self.strike!r}")
        elif self.sec_type == "STK":
            if (self.expiry, self.strike, self.right) != (None, None, None):
                raise ValueError("ContractKey: a stock has no expiry, strike or right")
        else:
            raise ValueError(f"ContractKey.sec_type: must be OPT or STK, got {self.sec_type!r}")
        if self.multiplier <= 0:
            raise ValueError(f"ContractKey.multiplier: must be > 0, got {self.multiplier!r}")

    def describe(self) -> str:
        if self.sec_type == "STK":
            return f"{self.underlying} shares"
        return f"{self.underlying} {self.expiry} {self.strike:g}{self.right} x{self.multiplier}"

    def equivalents(self, quantity: float) -> float:
        """``quantity`` of this instrument in contract equivalents (signed as given)."""
        return quantity * self.multiplier / STANDARD_MULTIPLIER


def stock(underlying: str) -> ContractKey:
    """The shares of ``underlying`` (multiplier 1)."""
    return ContractKey(underlying, "STK", multiplier=1)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order qc means to send: one instrument, one side, a limit price, the strategy bucket it serves."""

    contract: ContractKey
    side: Side
    quantity: int           # contracts (options) or shares (stock), > 0
    limit_price: float      # $ per share, > 0
    bucket: Bucket
    order_ref: str = ""
    messages: int = 1       # IB messages it costs: 1 for a single order, 3 for a bracket

    def __post_init__(self) -> None:
        if self.side not in ("BUY", "SELL"):
            raise ValueError(f"OrderIntent.side: must be BUY or SELL, got {self.side!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int) or self.quantity <= 0:
            raise ValueError(f"OrderIntent.quantity: must be a whole number > 0, got {self.quantity!r}")
        if not (math.isfinite(self.limit_price) and self.limit_price > 0):
            raise ValueError(f"OrderIntent.limit_price: must be a finite price > 0, got {self.limit_price!r}")
        if self.bucket not in BUCKETS:
            raise ValueError(f"OrderIntent.bucket: must be one of {', '.join(BUCKETS)}, got {self.bucket!r}")
        if self.messages < 1:
            raise ValueError(f"OrderIntent.messages: must be ≥ 1, got {self.messages!r}")

    @property
    def signed_quantity(self) -> int:
        """+quantity for a buy, −quantity for a sell: what the order adds to the position."""
        return self.quantity if self.side == "BUY" else -self.quantity


@dataclass(frozen=True, slots=True)
class Position:
    """A holding: signed quantity (+ long, − short) at an average cost ($ per share), in a strategy bucket."""

    contract: ContractKey
    quantity: int
    avg_cost: float
    bucket: Bucket = "other"

    def __post_init__(self) -> None:
        _finite("Position", "avg_cost", self.avg_cost)
        if self.bucket not in BUCKETS:
            raise ValueError(f"Position.bucket: must be one of {', '.join(BUCKETS)}, got {self.bucket!r}")


@dataclass(frozen=True, slots=True)
class Portfolio:
    """The account as the risk worker last saw it: positions, order traffic, today's P&L, the trading states."""

    positions: tuple[Position, ...] = ()
    open_orders: Mapping[tuple[str, Side], int] = field(default_factory=dict)  # (underlying, side) -> working
    msgs_last_s: int = 0                     # IB messages qc sent in the last second
    realised_pnl_today_usd: float = 0.0
    unrealised_pnl_today_usd: float = 0.0
    equity_usd: float = 0.0
    equity_high_water_usd: float = 0.0       # today's high-water mark of equity
    account_state: TradingState = TradingState.ACTIVE
    underlying_states: Mapping[str, TradingState] = field(default_factory=dict)  # absent: ACTIVE

    def __post_init__(self) -> None:
        for name in ("realised_pnl_today_usd", "unrealised_pnl_today_usd", "equity_usd", "equity_high_water_usd"):
            _finite("Portfolio", name, getattr(self, name))
        if self.msgs_last_s < 0:
            raise ValueError(f"Portfolio.msgs_last_s: must be ≥ 0, got {self.msgs_last_s!r}")

    @property
    def pnl_today_usd(self) -> float:
        return self.realised_pnl_today_usd + self.unrealised_pnl_today_usd

    @property
    def drawdown_usd(self) -> float:
        """How far equity is below today's high-water mark (0 at a new high)."""
        return max(0.0, self.equity_high_water_usd - self.equity_usd)

    def state_for(self, underlying: str) -> TradingState:
        """The state an order in ``underlying`` meets: the stricter of the account's and the underlying's."""
        return max(self.account_state, self.underlying_states.get(underlying, TradingState.ACTIVE))


@dataclass(frozen=True, slots=True)
class UnderlyingQuote:
    """One underlying's spot and the ages of what was derived from it (s); rate and yield feed BSM."""

    spot: float
    spot_age_s: float
    analytics_age_s: float
    chain_age_s: float
    rate: float = 0.0        # continuous, annualised decimal
    div_yield: float = 0.0   # continuous, annualised decimal


@dataclass(frozen=True, slots=True)
class ContractQuote:
    """One instrument's quote ($ per share), its implied vol (annualised decimal; None unknown), its age (s)."""

    bid: float
    ask: float
    mark: float
    iv: float | None
    age_s: float


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the market looked like: per underlying, and per instrument quoted."""

    underlyings: Mapping[str, UnderlyingQuote] = field(default_factory=dict)
    quotes: Mapping[ContractKey, ContractQuote] = field(default_factory=dict)


def _bucket_limits(**per_bucket: float) -> Mapping[str, float]:
    return MappingProxyType(dict(per_bucket))


_GREEK_FIELDS = (
    "delta_usd_per_pct_per_bucket", "gamma_usd_per_pct_per_pct_per_bucket",
    "vega_usd_per_vol_pt_per_bucket", "charm_usd_delta_per_day_per_bucket",
)


@dataclass(frozen=True)
class Limits:
    """Every pre-trade limit, with its unit in its name. ``math.inf`` disables a limit; 0 allows only reductions.

    A per-bucket Greek limit is a mapping bucket → limit over the whole account (every underlying's
    dollar Greek summed); a bucket missing from the mapping has no per-bucket limit (the
    per-underlying one still applies). Defaults are a conservative start for a small account.
    """

    max_qty_per_order: float = 20.0                 # contract equivalents
    max_premium_per_order_usd: float = 10_000.0     # quantity × limit × multiplier
    max_position_per_contract: float = 50.0         # |contract equivalents| in one instrument
    max_position_per_underlying: float = 200.0      # Σ |contract equivalents| over one underlying
    max_open_orders_per_side: int = 15              # working orders per (underlying, side)
    max_msgs_per_s: int = 40                        # IB allows 50
    daily_loss_limit_usd: float = 5_000.0           # realised + unrealised today ≤ −this: only reductions
    drawdown_limit_usd: float = 7_500.0             # high-water − equity ≥ this: only reductions
    stale_quote_s: float = 10.0
    stale_analytics_s: float = 120.0
    stale_chain_s: float = 900.0                    # Alpha Vantage refreshes the chain every 5 min
    max_spread_pct: float = 20.0                    # (ask − bid) / mid, percent
    price_band_pct: float = 10.0                    # |limit / mark − 1|, percent
    zero_dte_cutoff_min: float = 30.0               # no new 0DTE risk after close − this
    delta_usd_per_pct_per_bucket: Mapping[str, float] = field(default_factory=lambda: _bucket_limits(
        **{"0dte": 50_000.0, "1dte": 50_000.0, "14dte": 100_000.0, "other": 50_000.0}))
    delta_usd_per_pct_per_underlying: float = 150_000.0
    gamma_usd_per_pct_per_pct_per_bucket: Mapping[str, float] = field(default_factory=lambda: _bucket_limits(
        **{"0dte": 25_000.0, "1dte": 15_000.0, "14dte": 10_000.0, "other": 10_000.0}))
    gamma_usd_per_pct_per_pct_per_underlying: float = 40_000.0
    vega_usd_per_vol_pt_per_bucket: Mapping[str, float] = field(default_factory=lambda: _bucket_limits(
        **{"0dte": 5_000.0, "1dte": 5_000.0, "14dte": 10_000.0, "other": 5_000.0}))
    vega_usd_per_vol_pt_per_underlying: float = 20_000.0
    charm_usd_delta_per_day_per_bucket: Mapping[str, float] = field(default_factory=lambda: _bucket_limits(
        **{"0dte": 100_000.0, "1dte": 50_000.0, "14dte": 20_000.0, "other": 20_000.0}))
    charm_usd_delta_per_day_per_underlying: float = 150_000.0

    def __post_init__(self) -> None:
        for name, value in ((f.name, getattr(self, f.name)) for f in self.__dataclass_fields__.values()):
            if name in _GREEK_FIELDS:
                object.__setattr__(self, name, self._checked_buckets(name, value))
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"Limits.{name}: must be a number ≥ 0 (math.inf disables it), got {value!r}")

    @staticmethod
    def _checked_buckets(name: str, value: Mapping[str, float]) -> Mapping[str, float]:
        checked: dict[str, float] = {}
        for bucket, limit in value.items():
            if bucket not in BUCKETS:
                raise ValueError(f"Limits.{name}: unknown bucket {bucket!r} (known: {', '.join(BUCKETS)})")
            if isinstance(limit, bool) or not isinstance(limit, (int, float)) or math.isnan(limit) or limit < 0:
                raise ValueError(f"Limits.{name}[{bucket}]: must be a number ≥ 0, got {limit!r}")
            checked[bucket] = float(limit)
        return MappingProxyType(checked)


def _fmt(value: str | float) -> str:
    if isinstance(value, str):
        return value
    if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
        return f"{value:.0f}"
    return f"{value:.6g}"


def signed(value: float) -> str:
    """A signed amount for a reason's context: ``+412000``, ``-3.5``."""
    if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
        return f"{value:+.0f}"
    return f"{value:+.6g}" if abs(value) < 1 else f"{value:+.0f}"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an order is refused: a code and its key=value context (what was measured, against what)."""

    code: str
    context: Mapping[str, str | float] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.context:
            return self.code
        return self.code + " " + " ".join(f"{k}={_fmt(v)}" for k, v in self.context.items())


@dataclass(frozen=True, slots=True)
class Verdict:
    """Approved exactly when no reason was found; ``reasons`` lists every failing check, in check order."""

    approved: bool
    reasons: tuple[Reason, ...] = ()

    def __post_init__(self) -> None:
        if self.approved == bool(self.reasons):
            raise ValueError("Verdict: approved exactly when there are no reasons")

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(r.code for r in self.reasons)

    def __str__(self) -> str:
        return "APPROVED" if self.approved else "REJECTED " + "; ".join(str(r) for r in self.reasons)
