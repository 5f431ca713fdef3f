"""Circuit breakers: readings in, the latches they ask for out (``state.py`` applies them).

Pure. Account breakers latch until an operator resumes; regime breakers (one underlying) ask to be
cleared once their condition is gone, with hysteresis so a reading hovering at the threshold does
not flap the state:

- ``daily_loss``: today's realised + unrealised P&L at or below −limit → REDUCING (account).
- ``drawdown``: today's equity high-water mark minus equity at or above the limit → REDUCING.
- ``rejects``: at least ``rejects_n`` rejected or failed orders in the last ``rejects_window_min``
  minutes → HALTED (something is wrong with the orders themselves: stop, look).
- ``zero_gamma_cross`` (per underlying): spot changed side of the zero-gamma level since the last
  reading → REDUCING (the dealer-gamma regime just flipped: mean reversion became momentum or the
  reverse); cleared once spot is ``flip_clear_pct`` away from the flip, on either side.
- ``vpin_high`` (per underlying): VPIN at or above ``vpin_trip`` → REDUCING (toxic flow); cleared
  below ``vpin_clear``.
- ``broker_disconnected`` (account): IB reported down → REDUCING (no new risk on a broker qc cannot
  see); cleared when it is reported up again (the executor reconciles before it sends anything).
- ``redis_restarted`` (account): the Redis server's run id changed (a restart or a failover: the
  last second of writes may be gone) → REDUCING until an operator, or the executor once it has
  reconciled orders and positions with IB, resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from qc.risk.model import Limits
from qc.risk.state import TradingState

ACCOUNT = "account"


@dataclass(frozen=True, slots=True)
class BreakerLimits:
    """Thresholds of the breakers; loss and drawdown default to the pre-trade check's (one number each)."""

    daily_loss_usd: float = Limits.daily_loss_limit_usd
    drawdown_usd: float = Limits.drawdown_limit_usd
    rejects_n: int = 5
    rejects_window_min: float = 10.0
    flip_clear_pct: float = 0.25
    vpin_trip: float = 0.60
    vpin_clear: float = 0.50

    def __post_init__(self) -> None:
        for name in ("daily_loss_usd", "drawdown_usd", "rejects_window_min", "flip_clear_pct"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")
        if self.rejects_n < 1:
            raise ValueError(f"rejects_n: must be ≥ 1, got {self.rejects_n!r}")
        if not 0 < self.vpin_clear < self.vpin_trip <= 1:
            raise ValueError(f"vpin_clear/vpin_trip: need 0 < clear < trip ≤ 1, got {self.vpin_clear}/{self.vpin_trip}")


@dataclass(frozen=True, slots=True)
class Trip:
    """A breaker asks ``scope`` (``account`` or an underlying) to latch at least ``state``."""

    scope: str
    state: TradingState
    cause: str
    context: str


@dataclass(frozen=True, slots=True)
class Clear:
    """A regime breaker's condition is gone for ``scope``."""

    scope: str
    cause: str


@dataclass(frozen=True, slots=True)
class Reading:
    """What one breaker sees now, for `qc risk status`: its reading and where it trips and clears."""

    scope: str
    breaker: str
    value: str
    trips_at: str
    clears_at: str


def account_readings(pnl_today: float, drawdown: float, rejects: int, connected: bool | None,
                     limits: BreakerLimits) -> list[Reading]:
    link = "unknown" if connected is None else "up" if connected else "down"
    return [Reading(ACCOUNT, "daily_loss", f"pnl {pnl_today:+,.0f} $", f"≤ -{limits.daily_loss_usd:,.0f} $", "resume"),
            Reading(ACCOUNT, "drawdown", f"{drawdown:,.0f} $", f"≥ {limits.drawdown_usd:,.0f} $", "resume"),
            Reading(ACCOUNT, "rejects", f"{rejects} in {limits.rejects_window_min:g} min", f"≥ {limits.rejects_n}",
                    "resume"),
            Reading(ACCOUNT, "broker_disconnected", f"IB {link}", "down after up", "up")]


def underlying_readings(symbol: str, spot: float | None, zero_gamma: float | None, vpin: float | None,
                        limits: BreakerLimits) -> list[Reading]:
    if spot is None or zero_gamma is None or not zero_gamma > 0:
        flip = "no spot or zero gamma"
    else:
        flip = f"spot {spot:g}, zero gamma {zero_gamma:g} ({(spot / zero_gamma - 1) * 100:+.2f} %)"
    return [Reading(symbol, "zero_gamma_cross", flip, "a change of side", f"≥ {limits.flip_clear_pct:g} % away"),
            Reading(symbol, "vpin_high", "no reading" if vpin is None else f"{vpin:.3f}", f"≥ {limits.vpin_trip:g}",
                    f"< {limits.vpin_clear:g}")]


def account_breakers(pnl_today: float, high_water: float, equity: float, reject_times: Sequence[datetime],
                     now: datetime, limits: BreakerLimits) -> list[Trip]:
    trips = []
    if pnl_today <= -limits.daily_loss_usd:
        trips.append(Trip(ACCOUNT, TradingState.REDUCING, "daily_loss",
                          f"pnl={pnl_today:+.0f} limit=-{limits.daily_loss_usd:.0f}"))
    drawdown = high_water - equity
    if drawdown >= limits.drawdown_usd:
        trips.append(Trip(ACCOUNT, TradingState.REDUCING, "drawdown",
                          f"drawdown={drawdown:.0f} limit={limits.drawdown_usd:.0f}"))
    since = now - timedelta(minutes=limits.rejects_window_min)
    recent = sum(1 for t in reject_times if since < t <= now)
    if recent >= limits.rejects_n:
        trips.append(Trip(ACCOUNT, TradingState.HALTED, "rejects",
                          f"rejects={recent} window_min={limits.rejects_window_min:g} limit={limits.rejects_n}"))
    return trips


def side_of_flip(spot: float, zero_gamma: float) -> int:
    """+1 above the zero-gamma level, −1 below, 0 exactly on it."""
    return (spot > zero_gamma) - (spot < zero_gamma)


def zero_gamma_breaker(symbol: str, previous_side: int, spot: float, zero_gamma: float | None,
                       limits: BreakerLimits) -> Trip | Clear | None:
    """Trip on a change of side (0 counts as no side yet); clear when spot is well away from the flip."""
    if zero_gamma is None or not zero_gamma > 0:
        return None
    side = side_of_flip(spot, zero_gamma)
    if previous_side and side and side != previous_side:
        return Trip(symbol, TradingState.REDUCING, "zero_gamma_cross",
                    f"spot={spot:g} zero_gamma={zero_gamma:g} side={'above' if side > 0 else 'below'}")
    if abs(spot / zero_gamma - 1.0) * 100.0 >= limits.flip_clear_pct:
        return Clear(symbol, "zero_gamma_cross")
    return None


def vpin_breaker(symbol: str, vpin: float | None, limits: BreakerLimits) -> Trip | Clear | None:
    if vpin is None:
        return None
    if vpin >= limits.vpin_trip:
        return Trip(symbol, TradingState.REDUCING, "vpin_high", f"vpin={vpin:.3f} trip={limits.vpin_trip:g}")
    if vpin < limits.vpin_clear:
        return Clear(symbol, "vpin_high")
    return None


def broker_breaker(connected: bool | None) -> Trip | Clear | None:
    """Down → REDUCING the account; up → clear; None (nobody reports the connection) → no change."""
    if connected is None:
        return None
    if not connected:
        return Trip(ACCOUNT, TradingState.REDUCING, "broker_disconnected", "ibkr_connected=false")
    return Clear(ACCOUNT, "broker_disconnected")


def redis_breaker(previous_run_id: str | None, run_id: str) -> Trip | None:
    """A different Redis server than the one last seen: no new risk until state is reconciled."""
    if not previous_run_id or previous_run_id == run_id:
        return None
    return Trip(ACCOUNT, TradingState.REDUCING, "redis_restarted",
                f"run_id={previous_run_id[:12]}->{run_id[:12]} (reconcile with IB, then resume)")
