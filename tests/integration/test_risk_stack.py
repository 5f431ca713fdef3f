"""`qc risk` in a whole simulated stack: a gap through zero gamma reduces SPY, a gap away clears it.

`qc sim` → `qc stream` (quotes), `qc chains` → `qc analytics` (zero gamma from the simulated chain),
and `qc risk` reading both, each a real process. The move is the simulator's own: `qc sim ctl jump`
gaps SPY's book, so spot crosses the flip between two risk cycles, as a news gap would.
"""

from __future__ import annotations

import pytest

from qc.analytics.codec import GexSnapshot, gex_from_redis
from qc.core import keys
from qc.ingest.codec import Quote
from qc.risk.cycle import latches
from qc.risk.state import Latch, TradingState

from .conftest import eventually
from .signals_harness import Stack

SIM = ("--start", "2026-12-03 10:30", "--speed", "5", "--seed", "42", "--depth-rate", "20")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
ACCOUNT = "default"


def levels(stack: Stack) -> tuple[float, float] | None:
    """(spot, zero gamma) once both are published."""
    gex = gex_from_redis(stack.store.hgetall(keys.gex("SPY")) or None, key="gex")
    quote = Quote.from_redis(stack.store.hgetall(keys.quote("SPY")) or None, key="quote")
    if not isinstance(gex, GexSnapshot) or not isinstance(quote, Quote) or quote.spot is None:
        return None
    zero_gamma = gex.numbers.get("zero_gamma")
    return None if zero_gamma is None else (quote.spot, zero_gamma)


def spy_latch(stack: Stack) -> Latch:
    return latches.load(stack.store, ACCOUNT).get("SPY", Latch())


def test_a_gap_through_zero_gamma_reduces_spy_until_a_gap_away_clears_it(tmp_path_factory: pytest.TempPathFactory,
                                                                         ) -> None:
    stack = Stack(tmp_path_factory.mktemp("risk-stack"), SIM)
    try:
        for verb in ("stream", "chains", "analytics"):
            stack.start(verb, "SPY")
        stack.start("risk")
        eventually(lambda: levels(stack) is not None and stack.store.client.exists(keys.heartbeat("risk").name),
                   timeout_s=120, every_s=0.5)
        got = levels(stack)
        assert got is not None
        spot, zero_gamma = got
        side = 1 if spot > zero_gamma else -1
        assert spy_latch(stack).state is TradingState.ACTIVE
        stack.sim.ctl("jump", "SPY", "--", f"{(zero_gamma * (1 - 0.001 * side) / spot - 1) * 100:.4f}")
        eventually(lambda: spy_latch(stack).state is TradingState.REDUCING, timeout_s=30, every_s=0.2)
        latch = spy_latch(stack)
        assert (latch.cause, latch.by) == ("zero_gamma_cross", "breaker:zero_gamma_cross"), latch
        assert latches.load(stack.store, ACCOUNT).get("account", Latch()).state is TradingState.ACTIVE

        now = levels(stack)
        assert now is not None
        stack.sim.ctl("jump", "SPY", "--", f"{(now[1] * (1 - 0.01 * side) / now[0] - 1) * 100:.4f}")
        eventually(lambda: spy_latch(stack).state is TradingState.ACTIVE, timeout_s=30, every_s=0.2)
        assert spy_latch(stack).cause == "cleared"
        assert stack.store.count_events(keys.risk_breaches_log(), 0) >= 1
    finally:
        stack.close()
