"""From a firing decision and a chosen contract to the signal: fingerprint, limit, exits, lineage.

Exits are fractions of the entry premium (take profit above, stop below for a bought option). The
MOC signal trades the shares contra-side with a limit-on-close at the reference price and exits at
the next session's open (its time stop), the horizon over which closing deviations revert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from qc.core import clock
from qc.signals.codec import Signal, new_id
from qc.signals.contracts import limit_price
from qc.signals.model import Choice, Contract, Decision, StrategyParams


def fingerprint(contract: Contract, direction: int, strategy: str) -> str:
    """hash(underlying, expiry, strike, right, direction, strategy): the dedup unit (reference §6)."""
    parts = (contract.symbol, contract.expiry.isoformat() if contract.expiry else "",
             repr(float(contract.strike)) if contract.strike is not None else "", contract.right or "",
             str(direction), strategy)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _round_cent(x: float) -> float:
    return round(x + 1e-12, 2)


def build_signal(decision: Decision, choice: Choice, params: StrategyParams, now: datetime,
                 factor_inputs: Mapping[str, Mapping[str, Any]], lineage: Mapping[str, Any]) -> Signal:
    """The signal for a firing ``decision`` on ``choice``'s contract (``decision.fires`` must hold)."""
    assert decision.fires, "only a firing decision becomes a signal"
    score = decision.score
    assert score.score is not None
    b = params.bracket
    if choice.contract.sec_type == "STK":
        side = "BUY" if decision.direction > 0 else "SELL"
        limit = _round_cent(choice.quote.mark)
        up, down = limit * (1 + b.take_profit_pct), limit * (1 - b.stop_pct)
        take_profit, stop = (up, down) if side == "BUY" else (down, up)
        time_stop = clock.next_session_after(clock.new_york_date(now)).open
        order_type = "LOC"
    else:
        side, order_type = "BUY", "LMT"
        limit = limit_price(choice.quote)
        take_profit, stop = limit * (1 + b.take_profit_pct), limit * (1 - b.stop_pct)
        time_stop = now + timedelta(minutes=b.time_stop_min)
        if choice.contract.expiry is not None:  # never past the option's own last trade
            time_stop = min(time_stop, clock.settlement_instant(choice.contract.expiry))
    return Signal(
        id=new_id(now), created_at=now, strategy=params.name, contract=choice.contract,
        side="BUY" if side == "BUY" else "SELL", direction=decision.direction,
        order_type="LOC" if order_type == "LOC" else "LMT", limit=limit, take_profit=_round_cent(take_profit),
        stop=_round_cent(max(stop, 0.01)), time_stop=time_stop, score=score.score, threshold=params.threshold,
        mode=score.mode, size_multiplier=score.size_multiplier, quote=choice.quote,
        contributions=score.contributions, factor_inputs=factor_inputs, gates=decision.gates,
        fingerprint=fingerprint(choice.contract, decision.direction, params.name), notes=decision.notes,
        lineage=dict(lineage), trail_pct=b.trail_pct if choice.contract.sec_type == "OPT" else 0.0)
