"""The intent state machine: which moves are legal, and the state an intent's orders and fills imply.

Pure. The glue records what IB said on the leg it concerns (:func:`with_status`, :func:`with_fill`)
and then asks :func:`derive` where the intent stands; :func:`move` refuses an illegal move
(``IllegalTransition``) so a bug can never walk a closed intent back to working, and appends the
move to the intent's history with its reason.

How the states follow from the legs (one bracket: entry, take-profit ``tp``, stop):

- nothing filled: ``acknowledged`` once IB knows the entry (a permId), ``working`` once it works;
  the entry cancelled → ``cancelled``, rejected (``Inactive``) → ``rejected``.
- some filled, none closed: ``protected`` when a live stop covers every open contract (a bracket
  child protects only once its parent has completely filled: IB holds it until then), else
  ``partially_filled`` while the entry still works, else ``orphaned``.
- qc closing the position (a time stop, the hard close, a flatten): ``exiting``.
- everything filled has been closed again: ``closed``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

from qc.core.order_ref import Leg
from qc.execute.model import TERMINAL, UNSENT, Fill, Intent, LegOrder, State, Transition

S = State
EXIT_REASONS = frozenset({"time_stop", "hard_close", "flatten"})  # qc is closing the position itself
PENDING_STATUSES = frozenset({UNSENT, "PendingSubmit", "ApiPending"})  # sent (or about to be), not yet working
_ANY_OPEN = frozenset({S.ACKNOWLEDGED, S.WORKING, S.PARTIAL, S.PROTECTED, S.EXITING, S.CLOSED, S.REJECTED,
                       S.CANCELLED, S.LOST, S.ORPHANED, S.EXPIRED, S.EXERCISED, S.ASSIGNED, S.UNKNOWN})
_LIFECYCLE = frozenset({S.EXPIRED, S.EXERCISED, S.ASSIGNED})
ALLOWED: dict[State, frozenset[State]] = {
    S.PROPOSED: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.SUBMITTING, S.REJECTED, S.CANCELLED}),
    S.SUBMITTING: _ANY_OPEN,
    S.ACKNOWLEDGED: _ANY_OPEN - {S.ACKNOWLEDGED},
    S.WORKING: _ANY_OPEN - {S.ACKNOWLEDGED, S.WORKING},
    S.PARTIAL: frozenset({S.PROTECTED, S.ORPHANED, S.EXITING, S.CLOSED, S.UNKNOWN}) | _LIFECYCLE,
    # a pending-cancel entry can still fill after the part it filled was protected or exited
    S.PROTECTED: frozenset({S.EXITING, S.CLOSED, S.ORPHANED, S.UNKNOWN, S.PARTIAL}) | _LIFECYCLE,
    S.EXITING: frozenset({S.CLOSED, S.ORPHANED, S.PROTECTED, S.UNKNOWN, S.PARTIAL}) | _LIFECYCLE,
    S.ORPHANED: frozenset({S.PROTECTED, S.EXITING, S.CLOSED, S.UNKNOWN}) | _LIFECYCLE,
    S.UNKNOWN: _ANY_OPEN - {S.UNKNOWN},
    **{t: frozenset() for t in TERMINAL},
}


class IllegalTransition(ValueError):
    """A move the machine does not allow (a bug, or a broker report that contradicts qc's records)."""


def move(intent: Intent, to: State, now: datetime, why: str = "") -> Intent:
    """``intent`` in state ``to`` with the move in its history; the same intent when already there."""
    if to == intent.state:
        return intent
    if to not in ALLOWED[intent.state]:
        raise IllegalTransition(f"intent {intent.id}: {intent.state} → {to} is not allowed ({why})")
    return replace(intent, state=to, history=(*intent.history, Transition(now, to, why)))


def replace_order(intent: Intent, old: LegOrder, new: LegOrder) -> Intent:
    return replace(intent, orders=tuple(new if o is old else o for o in intent.orders))


def with_status(intent: Intent, order: LegOrder, status: str, *, perm_id: int = 0, filled: float | None = None,
                avg_price: float | None = None) -> Intent:
    """What IB reported for one of the intent's orders (status, permId, cumulative fill)."""
    new = replace(order, status=status or order.status, perm_id=perm_id or order.perm_id,
                  filled=order.filled if filled is None else max(order.filled, int(filled)),
                  avg_price=order.avg_price if not avg_price else float(avg_price))
    return replace_order(intent, order, new)


def with_fill(intent: Intent, order: LegOrder, fill: Fill) -> Intent:
    """A new execution of one of the intent's orders (the caller saw its execId for the first time)."""
    if order.leg == "entry":
        total = intent.filled_qty + fill.quantity
        avg = (intent.entry_avg * intent.filled_qty + fill.price * fill.quantity) / total
        return replace(intent, filled_qty=total, entry_avg=avg)
    total = intent.exit_qty + fill.quantity
    avg = (intent.exit_avg * intent.exit_qty + fill.price * fill.quantity) / total
    reason = intent.exit_reason or {"tp": "take_profit", "stop": "stop"}.get(order.leg, "exit")
    return replace(intent, exit_qty=total, exit_avg=avg, exit_reason=reason)


def stop_covers(intent: Intent) -> int:
    """Contracts the latest stop protects now: a bracket child only once its parent completely filled."""
    stop = intent.current("stop")
    if stop is None or not stop.live:
        return 0
    if stop.parent_id:
        entry = intent.current("entry")
        if entry is None or entry.status != "Filled":
            return 0
    return max(0, stop.quantity - stop.filled)


def protection_pending(intent: Intent, sent: Collection[int]) -> bool:
    """A stop or take-profit sent on this connection (its id in ``sent``) that IB has not acknowledged yet: a
    new protective pair now would be a second one, not a replacement. A leg planned by an earlier process or
    connection is never pending here (it may never have left): reconciliation decides what it became."""
    return any(o.leg in ("stop", "tp") and o.status in PENDING_STATUSES and o.order_id in sent
               for o in intent.orders)


def derive(intent: Intent) -> State:
    """The state the intent's orders and fills imply (terminal and pre-submission states are kept)."""
    if intent.state in TERMINAL or intent.state in (S.PROPOSED, S.APPROVED):
        return intent.state
    entry = intent.current("entry")
    held = intent.open_qty
    if fills_pending(intent):
        return intent.state  # IB reported a fill whose execution has not come yet: wait for it
    if intent.filled_qty == 0:
        if entry is None or entry.status == "":
            return intent.state
        if entry.status == "Inactive":
            return S.REJECTED
        if entry.done:
            return S.CANCELLED
        if entry.status not in ("PendingSubmit", "ApiPending"):
            return S.WORKING
        return S.ACKNOWLEDGED if entry.perm_id and intent.state != S.WORKING else intent.state
    if held == 0:
        return S.CLOSED if not intent.live_orders("entry") else S.PARTIAL
    if intent.live_orders("exit") or intent.exit_reason in EXIT_REASONS:
        return S.EXITING
    if stop_covers(intent) >= held:
        return S.PROTECTED
    if entry is not None and entry.live:
        return S.PARTIAL
    return S.ORPHANED


def fills_pending(intent: Intent) -> bool:
    """An order status reported more filled contracts than the executions booked so far (they may come
    in either order): nothing may be concluded about protection until they have arrived."""
    entry_reported = sum(o.filled for o in intent.orders if o.leg == "entry")
    exit_reported = sum(o.filled for o in intent.orders if o.leg != "entry")
    return entry_reported > intent.filled_qty or exit_reported > intent.exit_qty


def settle(intent: Intent, now: datetime, why: str) -> Intent:
    """Move to :func:`derive`'s state (a no-op when it is the current one)."""
    return move(intent, derive(intent), now, why)


def leg_of(intent: Intent, leg: Leg) -> list[LegOrder]:
    return [o for o in intent.orders if o.leg == leg]
