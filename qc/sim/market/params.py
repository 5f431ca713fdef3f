"""The simulated market's knobs: one frozen dataclass per underlying, one for the whole market.

Every number a later test predicts (spot level, vol, where the gamma walls and the zero-gamma flip
sit) is a field here, so tests read them instead of repeating magic numbers. Unknown symbols get
plausible parameters derived from a hash of the symbol, stable across runs and machines.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np

VENUES = ("ARCA", "ISLAND", "BATS", "IEX", "DRCTEDGE", "NYSE", "MEMX", "BYX", "EDGEA", "CHX")
DAILY_EXPIRY_SYMBOLS = frozenset({"SPY", "QQQ", "IWM"})


@dataclass(frozen=True)
class UnderlyingParams:
    """One underlying's process and option-chain shape.

    ``price`` is the level the daily closes wander around (within roughly ±10 %); each session opens
    at ``reference_price`` (previous close plus an overnight gap) and option strikes, walls and the
    flip are laid out around that open. Offsets are fractions of it.
    """

    price: float
    vol: float = 0.16  # annualised; drives the price process and the ATM implied vol
    div_yield: float = 0.013
    trade_rate_hz: float = 20.0  # session-average prints per second
    avg_trade_size: float = 120.0
    tick: float = 0.01
    daily_expiries: bool = True
    call_wall_offset: float = 0.02  # call wall strike = open × (1 + offset)
    put_wall_offset: float = 0.03  # put wall strike = open × (1 − offset)
    flip_offset: float = 0.01  # zero gamma ≈ open × (1 − offset)
    wall_multiple: float = 4.0  # wall OI as a multiple of the base OI at that strike
    strike_range: float = 0.15  # strikes cover open × (1 ± range)
    oi_scale: float = 8000.0  # base OI per contract near the money, daily expiry

    @property
    def strike_step(self) -> float:
        """$1 strikes for SPY-priced underlyings, scaled to a nice step for others."""
        raw = self.price / 300.0
        steps = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0)
        return max((s for s in steps if s <= raw), default=steps[0])


DEFAULT_UNDERLYINGS: dict[str, UnderlyingParams] = {
    "SPY": UnderlyingParams(price=550.0, vol=0.15, div_yield=0.013, trade_rate_hz=20.0),
    "QQQ": UnderlyingParams(price=480.0, vol=0.20, div_yield=0.006, trade_rate_hz=15.0),
    "IWM": UnderlyingParams(price=220.0, vol=0.22, div_yield=0.012, trade_rate_hz=8.0, oi_scale=5000.0),
}


@dataclass(frozen=True)
class SimParams:
    """The whole market: seed, symbols, rate, book update rate and per-symbol overrides."""

    seed: int = 0
    symbols: tuple[str, ...] = ("SPY", "QQQ", "IWM")
    rate: float = 0.04  # continuous risk-free rate used for every option quote
    depth_rate_hz: float = 300.0  # L2 operations per second per symbol during the session
    book_levels: int = 10
    imbalance_every_s: int = 5
    bursts_per_session: float = 2.0  # seeded informed-flow bursts per symbol per session
    underlyings: dict[str, UnderlyingParams] = field(default_factory=dict)

    def underlying(self, symbol: str) -> UnderlyingParams:
        """Override, default, or hash-derived parameters for ``symbol``."""
        if symbol in self.underlyings:
            return self.underlyings[symbol]
        if symbol in DEFAULT_UNDERLYINGS:
            return DEFAULT_UNDERLYINGS[symbol]
        return derived_params(symbol)


def derived_params(symbol: str) -> UnderlyingParams:
    """Plausible, stable parameters for a symbol we know nothing about."""
    rng = np.random.default_rng(symbol_key(symbol))
    price = float(np.round(np.exp(rng.uniform(np.log(15.0), np.log(900.0))), 2))
    base = UnderlyingParams(price=price)
    return replace(base, vol=float(rng.uniform(0.18, 0.45)), div_yield=float(rng.uniform(0.0, 0.03)),
                   trade_rate_hz=float(rng.uniform(2.0, 8.0)), avg_trade_size=float(rng.uniform(60, 150)),
                   daily_expiries=symbol in DAILY_EXPIRY_SYMBOLS, oi_scale=float(rng.uniform(500, 3000)))


def symbol_key(symbol: str) -> int:
    """A stable 32-bit integer for a symbol (Python's ``hash`` is salted per process)."""
    return zlib.crc32(symbol.encode())


def rng_for(seed: int, symbol: str, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, symbol, keys…): stable whatever else is drawn elsewhere."""
    return np.random.default_rng(np.random.SeedSequence([seed, symbol_key(symbol), *keys]))
