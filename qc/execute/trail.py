"""qc's trailing stop: a ratchet on the best premium seen, never loosened. Pure.

Why qc trails and not IB: ib_async never refreshes a live ``trailStopPrice`` (ib_async#102), so an
executor restarted mid-trade could not know where IB's trail stands, and an option's TRAIL at the
open fires as a market order into the widest spreads (ib-execution-and-risk.md §1). qc keeps a
plain stop working at IB and moves its trigger itself: for a long, the best bid seen since entry
less ``trail_pct`` percent, rounded down to the cent; for a short, the best (lowest) ask plus the
trail, rounded up. The stop only ever moves toward the price (up for a long), so a restart, a
stale quote or a dip can never loosen it; the best price is persisted with the intent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qc.execute.bracket import TICK, to_tick


@dataclass(frozen=True, slots=True)
class TrailStep:
    best: float        # the best premium seen so far (highest bid for a long, lowest ask for a short)
    stop: float        # the stop trigger after this step
    moved: bool        # the stop moved by at least one tick: modify the order at IB


def step(sign: int, stop: float, best: float, price: float, trail_pct: float) -> TrailStep:
    """One quote: ``price`` is what an exit would trade at (a long's bid, a short's ask)."""
    if not (math.isfinite(price) and price > 0) or trail_pct <= 0:
        return TrailStep(best, stop, False)
    if sign > 0:
        best = max(best, price)
        candidate = to_tick(best * (1.0 - trail_pct / 100.0), -1)
        new = max(stop, candidate)
        return TrailStep(best, new, new >= stop + TICK - 1e-9)
    best = price if best <= 0 else min(best, price)
    candidate = to_tick(best * (1.0 + trail_pct / 100.0), +1)
    new = min(stop, candidate)
    return TrailStep(best, new, new <= stop - TICK + 1e-9)
