"""The trading state: ACTIVE → REDUCING → HALTED, latched, per account and per underlying.

Pure: latches in, latches out, time passed in. The rules:

- A breaker or an operator can only **raise** a latch (ACTIVE < REDUCING < HALTED): a request at or
  below the current state changes nothing, so a second breaker never softens the first.
- Only :func:`resume`, with the operator's reason, lowers a latch set by an operator or by an
  account breaker (daily loss, drawdown, rejects), and it goes straight to ACTIVE.
- The one exception: the account's ``redis_restarted`` latch (REDUCING, "reconcile with IB") is also
  lowered by the executor with :func:`lowered_after_reconcile`, once a clean reconciliation that
  began after it was set has ended; a stricter or any other latch stays.
- A **regime** latch (one underlying: spot crossed zero gamma, VPIN above its threshold; or the
  account while the broker is disconnected) clears by itself with :func:`clear`, when the breaker
  that set it reports its condition gone; any other latch ignores ``clear``.
- What an order meets is the stricter of its account's and its underlying's state (:func:`effective`).

Every change returns a new :class:`Latch` carrying its cause, who set it and when, so the caller
logs and counts transitions (a latch that did not change is returned as the same object).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum


class TradingState(IntEnum):
    """Ordered by severity: comparisons say which is stricter."""

    ACTIVE = 0
    REDUCING = 1   # only orders that reduce exposure
    HALTED = 2     # no new orders; protective stops stay


REGIME_CAUSES = frozenset({"zero_gamma_cross", "vpin_high", "broker_disconnected"})
REDIS_RESTARTED = "redis_restarted"  # qc.risk.breakers.redis_breaker's cause


@dataclass(frozen=True, slots=True)
class Latch:
    """A latched state, why, by whom, since when; ``regime`` latches may clear themselves."""

    state: TradingState = TradingState.ACTIVE
    cause: str = ""
    by: str = ""          # "operator:<name>" or "breaker:<cause>"
    reason: str = ""      # the operator's words, or the breaker's key=value context
    since: datetime | None = None

    @property
    def regime(self) -> bool:
        return self.state is not TradingState.ACTIVE and self.cause in REGIME_CAUSES


def escalate(current: Latch, requested: TradingState, cause: str, by: str, reason: str, now: datetime) -> Latch:
    """Raise the latch to ``requested`` if that is stricter; otherwise keep it exactly as it is."""
    if requested <= current.state:
        return current
    return Latch(requested, cause, by, reason, now)


def resume(current: Latch, operator: str, reason: str, now: datetime) -> Latch:
    """The operator's way back to ACTIVE; a reason is required (it is what the audit log keeps)."""
    if not reason.strip():
        raise ValueError("reason: say why trading may resume (it is logged with the transition)")
    if not operator.strip():
        raise ValueError("operator: who resumes (e.g. $USER)")
    if current.state is TradingState.ACTIVE:
        return current
    return Latch(TradingState.ACTIVE, "resume", f"operator:{operator}", reason.strip(), now)


def lowered_after_reconcile(current: Latch, cause: str, by: str, reason: str, reconciled_from: datetime,
                            now: datetime) -> Latch:
    """The executor reconciled with the broker from ``reconciled_from`` on: a REDUCING latch of ``cause``
    (only ``redis_restarted`` asks for that) set no later than that lifts to ACTIVE; anything stricter,
    anything else, or one set meanwhile (a later restart's) stays exactly as it is."""
    if (cause != REDIS_RESTARTED or current.state is not TradingState.REDUCING or current.cause != cause
            or current.since is None or current.since > reconciled_from):
        return current
    return Latch(TradingState.ACTIVE, "reconciled", by, reason, now)


def clear(current: Latch, cause: str, now: datetime) -> Latch:
    """A regime breaker's condition is gone: its own latch lifts; nothing else does."""
    if not current.regime or current.cause != cause:
        return current
    return replace(current, state=TradingState.ACTIVE, cause="cleared", by=f"breaker:{cause}",
                   reason=f"{cause} cleared", since=now)


def effective(account: Latch, underlying: Latch) -> TradingState:
    """The state an order meets: the stricter of its account's and its underlying's."""
    return max(account.state, underlying.state)
