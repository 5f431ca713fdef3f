"""How orders of the simulated broker affect each other: brackets (parentId) and OCA groups.

Brackets (ib-api-protocol.md §6, ib-execution-and-risk.md §1): children wait on their parent,
become active when it has filled, and are one-cancels-other among themselves; cancelling a parent
cancels its children. IB links bracket children through parentId, not an ocaGroup, and keeps a
partially filled exit's sibling alive for the rest, which is OCA "reduce" (types 2/3, §1's table):
a fill of q units reduces every sibling's quantity by q and cancels the ones that reach their
filled quantity. ocaType 1 cancels the others at the first fill. OCA groups are per account.

Parents and children are linked by permId (fixed when the child is placed), not by (clientId,
parentId): after a gateway restart reissues order ids (``SimBroker.forget_finished_ids``) a new
order may carry a finished parent's id, and it must not adopt that parent's children.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from qc.sim.broker.matching import invalid_reason
from qc.sim.broker.orders import CANCELLED, FILLED, OrderRecord, OrderRequest, StatusChange
from qc.sim.broker.reports import (
    CANCEL_NOT_CANCELLABLE,
    CANCEL_NOT_FOUND,
    CANNOT_MODIFY_FILLED,
    DUPLICATE_ORDER_ID,
    MODIFY_MISMATCH,
    ORDER_CANCELLED,
    VALIDATION_ERROR,
    BrokerError,
    BrokerEvent,
    OrderStateChanged,
    cancelled_message,
    not_cancellable_message,
    not_found_message,
)

CANCEL_ON_FILL = 1


def modify_error(rec: OrderRecord, req: OrderRequest) -> BrokerError | None:
    """Why re-placing ``rec``'s id as ``req`` is refused, or None for a valid modification.

    A finished id is 103 (104 if it filled); changing contract, side, type or account is 105
    (IB: cancel and place a new order, ib-execution-and-risk.md §1); invalid new values are 321.
    105 and 321 are warnings to ib_async (§7), right since the original order keeps working.
    """
    old = rec.request

    def error(code: int, message: str) -> BrokerError:
        return BrokerError(req.client_id, old.account, req.order_id, code, message)

    if rec.status == FILLED:
        return error(CANNOT_MODIFY_FILLED, "Can't modify a filled order.")
    if rec.is_done:
        return error(DUPLICATE_ORDER_ID, "Duplicate order id")
    if (req.contract, req.action, req.order_type, req.account) != (old.contract, old.action,
                                                                    old.order_type, old.account):
        return error(MODIFY_MISMATCH, "Order being modified does not match original order.")
    reason = invalid_reason(req)
    if reason is None and req.quantity <= rec.filled:
        reason = "Quantity is not above the filled quantity"
    return None if reason is None else error(VALIDATION_ERROR, f"Error validating request:-'{reason}'")


class Relations:
    """Parent/child and OCA bookkeeping over every order the broker holds, by permId (shared, not copied)."""

    def __init__(self, records: dict[int, OrderRecord]) -> None:
        self._records = records

    @staticmethod
    def state(rec: OrderRecord) -> OrderStateChanged:
        return OrderStateChanged(rec.request.client_id, rec.request.account, rec.snapshot())

    @staticmethod
    def not_found(client_id: int, order_id: int) -> BrokerError:
        return BrokerError(client_id, "", order_id, CANCEL_NOT_FOUND, not_found_message(order_id))

    @staticmethod
    def not_cancellable(rec: OrderRecord) -> BrokerError:
        req = rec.request
        return BrokerError(req.client_id, req.account, req.order_id, CANCEL_NOT_CANCELLABLE,
                           not_cancellable_message(req.order_id, rec.status))

    def parent(self, rec: OrderRecord) -> OrderRecord | None:
        return self._records.get(rec.parent_perm_id) if rec.parent_perm_id else None

    def root(self, rec: OrderRecord) -> OrderRecord:
        parent = self.parent(rec)
        return rec if parent is None else self.root(parent)

    def children(self, rec: OrderRecord) -> list[OrderRecord]:
        kids = [o for o in self._records.values() if o.parent_perm_id == rec.perm_id]
        return sorted(kids, key=lambda o: o.seq)

    def cancel(self, rec: OrderRecord, now: datetime, announce: bool) -> list[BrokerEvent]:
        """Cancel ``rec`` and its unfinished children; ``announce`` adds IB's 202 after each status."""
        rec.set_status(CANCELLED, now)
        req = rec.request
        events: list[BrokerEvent] = [self.state(rec)]
        if announce:
            events.append(BrokerError(req.client_id, req.account, req.order_id, ORDER_CANCELLED, cancelled_message()))
        for child in self.children(rec):
            if not child.is_done:
                events += self.cancel(child, now, announce)
        return events

    def activate_children(
        self, parent: OrderRecord, now: datetime, status_of: Callable[[OrderRequest], str]
    ) -> list[OrderRecord]:
        """The parent filled: its waiting children start working (PreSubmitted if IB-simulated)."""
        released = [c for c in self.children(parent) if c.waits_on_parent]
        for child in released:
            child.why_held = ""
            child.set_status(status_of(child.request), now)
        return released

    def after_fill(self, rec: OrderRecord, quantity: float, now: datetime) -> list[BrokerEvent]:
        """Apply bracket one-cancels-other and the order's OCA group to the others of its group."""
        reduce, cancel = self._siblings(rec)
        events: list[BrokerEvent] = []
        for other in cancel:
            if not other.is_done:
                events += self.cancel(other, now, announce=False)
        for other in reduce:
            if other.is_done or other in cancel:
                continue
            new_quantity = other.request.quantity - quantity
            if new_quantity <= other.filled:
                events += self.cancel(other, now, announce=False)
            else:
                other.request = replace(other.request, quantity=new_quantity)
                other.history.append(StatusChange(now, other.status, other.filled))
                events.append(self.state(other))
        return events

    def _siblings(self, rec: OrderRecord) -> tuple[list[OrderRecord], list[OrderRecord]]:
        """(orders to reduce, orders to cancel) when ``rec`` fills."""
        reduce: list[OrderRecord] = []
        parent = self.parent(rec)
        if parent is not None:
            reduce = [c for c in self.children(parent) if c is not rec and c.is_working]
        group, account = rec.request.oca_group, rec.request.account
        if not group:
            return reduce, []
        oca = sorted((o for o in self._records.values() if o is not rec and o.is_working
                      and o.request.oca_group == group and o.request.account == account), key=lambda o: o.seq)
        if rec.request.oca_type == CANCEL_ON_FILL:
            return reduce, oca
        return reduce + [o for o in oca if o not in reduce], []

