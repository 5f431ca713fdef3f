"""The orders of an intent: its bracket, a stand-alone protective pair, a closing order. Pure.

A **bracket** (ib-execution-and-risk.md §1): the entry limit (``transmit=False``), the take-profit
limit and the protective stop, both children of the entry by ``parentId`` and sharing an OCA group,
the stop last and transmitting, so IB releases all three together and nothing fills half-built.
IB holds the children until the entry has filled; a fill of one child reduces the other.

A **protective pair** is the same two exits without a parent, for contracts the bracket's children
do not cover: a partially filled entry whose rest qc cancelled, or a position reconciliation found
without its stop. Each pair has its own OCA group (``qc:<intent>:<attempt>``) so a cancelled
earlier pair can never reduce it.

Prices are on the cent: US equity options on SPY, QQQ and IWM quote in $0.01 at every premium
(the penny-pilot classes); exits round **toward safety** (a long's stop down, its take-profit up),
never through the price the signal chose by more than a cent.

Time in force: the protective legs (stop, take-profit) are **GTC**, so a position held overnight keeps
its stop at the broker (a DAY stop expires at the close); entries and closing orders are **DAY**, so an
unfilled one never rests overnight (a DAY parent that expires cancels its waiting GTC children).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qc.core.order_ref import Leg
from qc.execute.model import Intent, LegOrder

TICK = 0.01
PROTECTIVE: frozenset[Leg] = frozenset({"stop", "tp"})


def to_tick(price: float, direction: int = 0) -> float:
    """``price`` on the cent: nearest (0), up (+1) or down (−1); never below one tick."""
    steps = price / TICK
    n = math.floor(steps + 1e-9) if direction < 0 else math.ceil(steps - 1e-9) if direction > 0 else round(steps)
    return round(max(1, n) * TICK, 2)


def stop_price(intent: Intent, price: float) -> float:
    """A protective stop: below a long's premium (rounded down), above a short's (rounded up)."""
    return to_tick(price, -intent.sign)


def take_profit_price(intent: Intent, price: float) -> float:
    return to_tick(price, intent.sign)


def time_in_force(order: LegOrder) -> str:
    """GTC for a leg that protects a held position, DAY for anything that opens or closes one."""
    return "GTC" if order.leg in PROTECTIVE else "DAY"


def oca_group(intent: Intent, attempt: int) -> str:
    return f"qc:{intent.id}:{attempt}"


@dataclass(frozen=True, slots=True)
class Placement:
    """One order to send: the leg as recorded on the intent, whether it transmits, its OCA type."""

    order: LegOrder
    transmit: bool
    oca_type: int = 0


def _next_attempt(intent: Intent, leg: Leg) -> int:
    current = intent.current(leg)
    return 0 if current is None else current.attempt + 1


def bracket(intent: Intent, first_id: int) -> tuple[Placement, Placement, Placement]:
    """Entry, take-profit and stop for the whole quantity, ids ``first_id`` … ``first_id + 2``."""
    attempt = _next_attempt(intent, "entry")
    oca = oca_group(intent, max(attempt, _next_attempt(intent, "stop"), _next_attempt(intent, "tp")))
    entry = LegOrder("entry", attempt, first_id, intent.side, intent.quantity, "LMT",
                     limit=to_tick(intent.limit))
    tp = LegOrder("tp", _next_attempt(intent, "tp"), first_id + 1, intent.exit_side, intent.quantity, "LMT",
                  limit=take_profit_price(intent, intent.take_profit), parent_id=first_id, oca_group=oca)
    stop = LegOrder("stop", _next_attempt(intent, "stop"), first_id + 2, intent.exit_side, intent.quantity, "STP",
                    aux=stop_price(intent, intent.stop), parent_id=first_id, oca_group=oca)
    return Placement(entry, False), Placement(tp, False, 3), Placement(stop, True, 3)


def protective_pair(intent: Intent, quantity: int, first_id: int) -> tuple[Placement, Placement]:
    """A stand-alone stop and take-profit for ``quantity`` open contracts (stop first: it matters most)."""
    attempt = max(_next_attempt(intent, "stop"), _next_attempt(intent, "tp"))
    oca = oca_group(intent, attempt)
    stop = LegOrder("stop", attempt, first_id, intent.exit_side, quantity, "STP",
                    aux=stop_price(intent, intent.stop), oca_group=oca)
    tp = LegOrder("tp", attempt, first_id + 1, intent.exit_side, quantity, "LMT",
                  limit=take_profit_price(intent, intent.take_profit), oca_group=oca)
    return Placement(stop, True, 3), Placement(tp, True, 3)


def closing_order(intent: Intent, quantity: int, price: float, order_id: int) -> Placement:
    """A marketable limit closing ``quantity`` contracts at ``price`` (time stop, hard close, flatten)."""
    order = LegOrder("exit", _next_attempt(intent, "exit"), order_id, intent.exit_side, quantity, "LMT",
                     limit=to_tick(price, -intent.sign))
    return Placement(order, True)
