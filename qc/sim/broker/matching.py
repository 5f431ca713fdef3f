"""Price logic of the simulated gateway: when an order triggers and at what price it fills.

Pure functions of an order, its trigger state and the current touch. The model (documented, not
IB's full rule book):

- The book is infinitely deep at the touch: a marketable order fills completely (unless the
  broker's partial-fill switch says otherwise) and moves no price.
- A taker (new, modified, just triggered or just activated order) fills at the opposite touch:
  ask for BUY, bid for SELL, a price improvement over its limit. A resting limit that the touch
  crosses later fills at its own limit: it was the best price in the book.
- Stops and trails of options watch the bid/ask (IB's default trigger method for US options,
  ib-execution-and-risk.md §1: a SELL stop the bid, a BUY stop the ask; "double" is simplified
  to a single quote); other instruments watch the last trade, falling back to the touch.
- A TRAIL follows the watched price favourably and never moves back (§6): SELL stop =
  max(stop, price − distance), BUY stop = min(stop, price + distance), distance = the amount or
  price × percent / 100. Triggered, it fills as market; TRAIL LIMIT and STP LMT rest as a limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qc.sim.broker.orders import (
    AT_CLOSE_TYPES,
    LMT,
    LOC,
    MKT,
    MOC,
    ORDER_TYPES,
    PRE_SUBMITTED,
    STP,
    STP_LMT,
    SUBMITTED,
    TRAIL,
    TRAIL_LIMIT,
    ContractKey,
    OrderRequest,
)

MarketKey = int | str


@dataclass(frozen=True, slots=True)
class Touch:
    """Top of book of one instrument; a price ≤ 0 means that side is absent (IB sends −1)."""

    bid: float
    ask: float
    last: float
    ts: datetime

    @property
    def mark(self) -> float | None:
        """Mid when both sides quote, else the last trade: what IB marks a position at."""
        if self.bid > 0 and self.ask > 0:
            return 0.5 * (self.bid + self.ask)
        return self.last if self.last > 0 else None


@dataclass(frozen=True, slots=True)
class Match:
    """Outcome of one look at the market: the (possibly moved) trail stop, trigger, fill price."""

    trail_stop: float | None
    triggered: bool
    fill_price: float | None


def taker_price(sign: int, touch: Touch) -> float | None:
    price = touch.ask if sign > 0 else touch.bid
    return price if price > 0 else None


def watched_price(sign: int, touch: Touch, is_option: bool) -> float | None:
    """The price a stop or trail of side ``sign`` watches (see the module docstring)."""
    if not is_option and touch.last > 0:
        return touch.last
    return taker_price(sign, touch)


def stop_hit(sign: int, stop: float, price: float) -> bool:
    return price >= stop if sign > 0 else price <= stop


def moved_trail_stop(
    sign: int, current: float | None, price: float, amount: float | None, percent: float | None
) -> float:
    """Follow ``price`` favourably, never back: a SELL trail only rises, a BUY trail only falls."""
    distance = amount if amount is not None else price * (percent or 0.0) / 100.0
    candidate = price + distance if sign > 0 else price - distance
    if current is None:
        return candidate
    return min(current, candidate) if sign > 0 else max(current, candidate)


def limit_fill(sign: int, limit: float, touch: Touch, resting: bool) -> float | None:
    price = taker_price(sign, touch)
    if price is None or (price > limit if sign > 0 else price < limit):
        return None
    return limit if resting else price


def trail_limit_price(req: OrderRequest, stop: float) -> float | None:
    """TRAIL LIMIT's limit: the stop less (SELL) or plus (BUY) the offset, else the fixed lmt_price."""
    if req.lmt_price_offset is not None:
        return stop + req.sign * req.lmt_price_offset
    return req.lmt_price


def match(req: OrderRequest, trail_stop: float | None, triggered: bool, touch: Touch, resting: bool) -> Match:
    """Look at ``touch`` once for a working, active order (``resting``: live before this quote)."""
    sign, kind = req.sign, req.order_type
    if kind in AT_CLOSE_TYPES:
        return Match(trail_stop, triggered, None)
    if kind == MKT:
        return Match(trail_stop, triggered, taker_price(sign, touch))
    if kind == LMT:
        return Match(trail_stop, triggered, limit_fill(sign, req.lmt_price or 0.0, touch, resting))
    if not triggered:
        watched = watched_price(sign, touch, req.contract.is_option)
        if watched is None:
            return Match(trail_stop, False, None)
        if kind in (TRAIL, TRAIL_LIMIT):
            trail_stop = moved_trail_stop(sign, trail_stop, watched, req.aux_price, req.trailing_percent)
        stop = trail_stop if kind in (TRAIL, TRAIL_LIMIT) else req.aux_price
        if stop is None or not stop_hit(sign, stop, watched):
            return Match(trail_stop, False, None)
        triggered, resting = True, False
    if kind in (STP, TRAIL):
        return Match(trail_stop, True, taker_price(sign, touch))
    limit = req.lmt_price if kind == STP_LMT else trail_limit_price(req, trail_stop or 0.0)
    return Match(trail_stop, True, None if limit is None else limit_fill(sign, limit, touch, resting))


def close_fill(req: OrderRequest, close: float) -> float | None:
    """MOC fills at the closing price; LOC only if the close is at or better than its limit."""
    if req.order_type == MOC:
        return close
    if req.order_type == LOC and req.lmt_price is not None:
        return close if (close <= req.lmt_price if req.sign > 0 else close >= req.lmt_price) else None
    return None


def invalid_reason(req: OrderRequest) -> str | None:
    """Why IB would reject ``req`` outright (error 201), or None. MOC/LOC are stock-only at IB
    (LEAN's IB brokerage model, ib-execution-and-risk.md §4)."""
    kind = req.order_type
    if kind not in ORDER_TYPES:
        return f"Unsupported order type {kind!r}"
    if not req.quantity > 0:
        return "Order quantity must be positive"
    if kind in (LMT, STP_LMT, LOC) and req.lmt_price is None:
        return f"{kind} order requires a limit price"
    if kind in (STP, STP_LMT) and req.aux_price is None:
        return f"{kind} order requires a stop price"
    if kind in (TRAIL, TRAIL_LIMIT) and (req.aux_price is None) == (req.trailing_percent is None):
        return "Trailing order requires either a trailing amount or a trailing percent"
    if kind == TRAIL_LIMIT and req.lmt_price is None and req.lmt_price_offset is None:
        return "TRAIL LIMIT order requires a limit price or a limit price offset"
    if kind in AT_CLOSE_TYPES and req.contract.is_option:
        return f"{kind} orders are not supported for options"
    return None


def initial_status(req: OrderRequest) -> str:
    """PreSubmitted for IB-simulated orders (all trails, option stops), else Submitted (§1, §6)."""
    simulated = req.order_type in (TRAIL, TRAIL_LIMIT) or (
        req.order_type in (STP, STP_LMT) and req.contract.is_option)
    return PRE_SUBMITTED if simulated else SUBMITTED


def quotes_contract(contract: ContractKey, key: MarketKey) -> bool:
    """A con_id names one contract; a symbol names the stock/ETF itself, never its options."""
    if isinstance(key, str):
        return contract.symbol == key and not contract.is_option
    return contract.con_id == key
