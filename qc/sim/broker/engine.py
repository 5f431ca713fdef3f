"""The simulated gateway's order-matching and account engine: no sockets, time passed in.

The IB socket server decodes a request, calls one method here with the simulator's ``now`` and
encodes the returned events in order. Behaviour follows ib-api-protocol.md §6/§11 and
ib-execution-and-risk.md §1-§2:

- Orders are owned by (clientId, orderId); re-placing a working order's id modifies it (price,
  quantity, TIF, trail); re-using a finished id is error 103 (104 if it filled). ``permId`` is
  unique server-wide and is what links an order to its parent.
- A gateway restart (``forget_finished_ids``, LEAN-IB#242) unbinds the ids of finished orders:
  nextValidId drops to just above the client's unfinished orders and a reissued id is a NEW order
  with a new permId. The finished orders stay in completed orders and executions under their old
  orderId, so two orders of one client may share an orderId on one day, told apart only by permId
  and orderRef (ib-execution-and-risk.md §2: key state by orderRef, then permId, never orderId).
- At the session close ``settle_expiring`` settles expiring option positions as the clearing house
  does (lapse, exercise, assignment: ``qc.sim.broker.settlement``).
- ``transmit=False`` orders are held unseen until a transmitting order of their group (the
  parent or a child of it) arrives; then the parent works and the children wait PreSubmitted
  (whyHeld "child") until the parent has filled completely.
- Bracket children are one-cancels-other with IB's reduce semantics: a fill of one reduces the
  other by the filled quantity, so a complete fill cancels it and a partial one leaves it
  protecting the rest. OCA groups (per account) do the same for ocaType 2/3 and cancel the
  others outright for ocaType 1. Cancelling a parent cancels its children.
- Options' stops and all trails are IB-simulated: PreSubmitted until triggered (§1, §6).
- Rejections report error 201 and leave the order ``Inactive`` (queryable, never emitted:
  ib_async counts Inactive as done, §6). Validation of a modification is error 321, a warning
  to ib_async, because the original order keeps working.

Matching and prices: ``qc.sim.broker.matching``; cash and positions: ``qc.sim.broker.account``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import date, datetime

from qc.sim.broker.account import CommissionSchedule, Ledger
from qc.sim.broker.fills import FillBook, PartialSwitch, fill_events
from qc.sim.broker.matching import MarketKey, Touch, close_fill, initial_status, invalid_reason, match, quotes_contract
from qc.sim.broker.orders import (
    AT_CLOSE_TYPES,
    CANCELLED,
    FILLED,
    INACTIVE,
    PENDING_SUBMIT,
    PRE_SUBMITTED,
    SUBMITTED,
    WHY_HELD_CHILD,
    ContractKey,
    OrderRecord,
    OrderRequest,
    OrderSnapshot,
)
from qc.sim.broker.relations import Relations, modify_error
from qc.sim.broker.reports import (
    ORDER_REJECTED,
    AccountChanged,
    AccountValue,
    BrokerError,
    BrokerEvent,
    ExecutionRecord,
    PortfolioRow,
    PositionChanged,
    SettlementExecuted,
    rejected_message,
)
from qc.sim.broker.settlement import Settlement, decide, expires_by

log = logging.getLogger(__name__)

NO_CLIENT = 0  # the client id of events no client caused (expiry settlement)


class SimBroker:
    """Deterministic broker: same calls in the same order give the same ids, fills and events."""

    def __init__(
        self, accounts: Mapping[str, float], *, first_perm_id: int = 1_000_001,
        commissions: CommissionSchedule | None = None, session_prefix: int = 0x0000E0D5,
        first_exec: int = 0x6565F2A1,
    ) -> None:
        if not accounts:
            raise ValueError("SimBroker needs at least one account")
        self.ledger = Ledger(dict(accounts))
        self.fills = FillBook(self.ledger, commissions or CommissionSchedule(), session_prefix, first_exec)
        self._records: dict[int, OrderRecord] = {}  # every order by permId; insertion order = seq order
        self._orders: dict[tuple[int, int], OrderRecord] = {}  # (clientId, orderId) → the order bound to it
        self._unfinished: list[OrderRecord] = []  # pruned lazily: ticks scan open orders only
        self._by_key: dict[MarketKey, list[OrderRecord]] = {}  # con_id, and symbol for non-options
        self._rel = Relations(self._records)
        self._quotes: dict[MarketKey, Touch] = {}
        self._next_perm = first_perm_id
        self._partial = PartialSwitch()
        self._reject: str | None = None

    # --- fault injection ---------------------------------------------------------------------------

    def fill_next_partially(self, fraction: float | None = None, quantity: float | None = None) -> None:
        """Make the next fill partial: ``quantity`` units, or ``floor(fraction × remaining)``; a
        part of 0 or of the whole remaining fills completely. The rest works on at later quotes."""
        self._partial.arm(fraction, quantity)

    def reject_next(self, reason: str) -> None:
        """Reject the next new order (not a modification) with error 201 and ``reason``."""
        self._reject = reason

    # --- orders ------------------------------------------------------------------------------------

    def submit(self, client_id: int, order: OrderRequest, now: datetime,
               received_at: float | None = None) -> list[BrokerEvent]:
        """placeOrder from ``client_id`` (the connection's id wins over ``order.client_id``).

        ``received_at`` (real wall epoch seconds the gateway read it) is kept on a new order only, for
        `qc sim ctl orders`' ``receivedAt``; it decides nothing, so the broker stays deterministic.
        """
        req = replace(order, client_id=client_id, account=order.account or self.ledger.accounts[0])
        existing = self._orders.get((client_id, req.order_id))
        if existing is not None:
            return self._modify(existing, req, now)
        reason, self._reject = self._reject, None
        reason = reason or invalid_reason(req) or self._relation_problem(req)
        rec = OrderRecord(req, self._next_perm, PENDING_SUBMIT, seq=len(self._records))
        rec.trail_stop = req.trail_stop_price
        rec.received_at = received_at
        parent = self._orders.get((client_id, req.parent_id)) if req.parent_id else None
        rec.parent_perm_id = 0 if parent is None else parent.perm_id
        self._next_perm += 1
        self._records[rec.perm_id] = rec
        self._orders[rec.key] = rec
        self._unfinished.append(rec)
        for key in (req.contract.con_id,) if req.contract.is_option else (req.contract.con_id, req.contract.symbol):
            self._by_key.setdefault(key, []).append(rec)
        if reason is not None:
            rec.set_status(INACTIVE, now)
            return [BrokerError(client_id, req.account, req.order_id, ORDER_REJECTED, rejected_message(reason))]
        return self._release(rec, now) if req.transmit else []

    def cancel(self, client_id: int, order_id: int, now: datetime) -> list[BrokerEvent]:
        """cancelOrder: only the owning client can cancel; 10147 unknown, 10148 already done."""
        rec = self._orders.get((client_id, order_id))
        if rec is None:
            return [self._rel.not_found(client_id, order_id)]
        if rec.is_done:
            return [self._rel.not_cancellable(rec)]
        return self._rel.cancel(rec, now, announce=True)

    def global_cancel(self, now: datetime) -> list[BrokerEvent]:
        """reqGlobalCancel: every working or held order of every client (tws-api/cancel_order)."""
        events: list[BrokerEvent] = []
        for rec in self._open():
            if not rec.is_done:
                events += self._rel.cancel(rec, now, announce=True)
        return events

    def end_of_day(self, now: datetime) -> list[BrokerEvent]:
        """Expire DAY orders still working or held after the session, as IB does (no error sent)."""
        events: list[BrokerEvent] = []
        for rec in self._open():
            if not rec.is_done and rec.request.tif == "DAY":
                events += self._rel.cancel(rec, now, announce=False)
        return events

    def forget_finished_ids(self) -> int:
        """A gateway restart: unbind every finished order's (clientId, orderId) so the id can be
        handed out and placed again as a new order; unfinished orders keep theirs. How many were freed."""
        finished = [key for key, rec in self._orders.items() if rec.is_done]
        for key in finished:
            del self._orders[key]
        return len(finished)

    def settle_expiring(self, day: date, closes: Mapping[str, float], now: datetime) -> list[BrokerEvent]:
        """The session close of ``day``: settle every account's options expiring by ``day`` at the
        underlying's close (``closes`` by symbol; see ``qc.sim.broker.settlement``).

        Orders still open on those options are cancelled first (the contract stops existing). Then,
        per account and option (con_id order): the option leg closes at 0 (``SettlementExecuted``
        "option", ``PositionChanged`` to 0); when exercised or assigned, the shares are delivered at
        the strike (``SettlementExecuted`` "stock", ``PositionChanged``); then ``AccountChanged``.
        An option whose underlying has no close is left as it is, with a warning.
        """
        events: list[BrokerEvent] = []
        for rec in self._open():
            if not rec.is_done and expires_by(rec.request.contract, day):
                events += self._rel.cancel(rec, now, announce=False)
        for account in self.ledger.accounts:
            for row in self.ledger.positions(account):
                if not expires_by(row.contract, day):
                    continue
                close = closes.get(row.contract.symbol)
                if close is None:
                    log.warning("sim broker: no close for %s; option %d of %s not settled",
                                row.contract.symbol, row.contract.con_id, account)
                    continue
                events += self._settle(decide(account, row.contract, row.position, close), now)
        return events

    # --- market ------------------------------------------------------------------------------------

    def on_market(self, key: MarketKey, bid: float, ask: float, last: float, ts: datetime) -> list[BrokerEvent]:
        """A new top of book for a con_id (options, or anything) or a stock symbol; match resting orders."""
        touch = Touch(bid, ask, last, ts)
        self._quotes[key] = touch
        if touch.mark is not None:
            self._mark(key, touch.mark)
        events: list[BrokerEvent] = []
        for rec in [r for r in self._open(key) if self._live(r)]:
            if self._live(rec):
                events += self._evaluate(rec, ts, resting=True)
        return events

    def forget_quote(self, key: MarketKey) -> None:
        """Drop the touch held under ``key`` (a stock's con_id touch shadows its symbol's quotes)."""
        self._quotes.pop(key, None)

    def on_close(self, key: MarketKey, price: float, ts: datetime) -> list[BrokerEvent]:
        """The closing auction printed ``price``: fill MOC, fill or cancel LOC (unfilled LOC expires)."""
        self._mark(key, price)
        events: list[BrokerEvent] = []
        for rec in [r for r in self._open(key) if r.request.order_type in AT_CLOSE_TYPES]:
            if self._live(rec):
                fill_price = close_fill(rec.request, price)
                if fill_price is None:
                    events += self._rel.cancel(rec, ts, announce=False)
                else:
                    events += self._fill(rec, fill_price, ts, partial_allowed=False)
        self._mark(key, price)
        return events

    # --- queries (reconciliation after a restart: ib-api-protocol.md §6) ------------------------------

    @property
    def accounts(self) -> tuple[str, ...]:
        return self.ledger.accounts

    def next_valid_id(self, client_id: int) -> int:
        """nextValidId: above every id this client has used, across reconnects (§11)."""
        return max((k[1] for k in self._orders if k[0] == client_id), default=0) + 1

    def order(self, client_id: int, order_id: int) -> OrderSnapshot | None:
        rec = self._orders.get((client_id, order_id))
        return None if rec is None else rec.snapshot()

    def open_orders(self, client_id: int | None = None) -> list[OrderSnapshot]:
        """reqOpenOrders (``client_id``: that client's orders only; there are no manual TWS orders for
        clientId 0 to bind) or, with None, reqAllOpenOrders. Held untransmitted orders are not open."""
        return [r.snapshot() for r in self._open()
                if r.is_working and (client_id is None or r.request.client_id == client_id)]

    def completed_orders(self) -> list[OrderSnapshot]:
        """reqCompletedOrders: Filled, Cancelled and rejected (Inactive) orders of every client."""
        return [r.snapshot() for r in self._records.values() if r.is_done]

    def all_orders(self) -> list[OrderSnapshot]:
        """Every order ever placed, all clients and states, in placement order (``qc sim ctl orders``)."""
        return [r.snapshot() for r in self._records.values()]

    def executions(
        self, now: datetime, *, client_id: int | None = None, account: str | None = None,
        since: datetime | None = None, symbol: str | None = None, sec_type: str | None = None,
        side: str | None = None,
    ) -> list[ExecutionRecord]:
        """reqExecutions; filters as :meth:`qc.sim.broker.fills.FillBook.query` (IB's ExecutionFilter)."""
        return self.fills.query(now, client_id=client_id, account=account, since=since, symbol=symbol,
                                sec_type=sec_type, side=side)

    def positions(self, account: str) -> list[PortfolioRow]:
        return self.ledger.positions(account)

    def portfolio(self, account: str) -> list[PortfolioRow]:
        return self.ledger.portfolio(account)

    def account_values(self, account: str) -> tuple[AccountValue, ...]:
        return self.ledger.values(account)

    # --- internals ---------------------------------------------------------------------------------

    def _open(self, key: MarketKey | None = None) -> list[OrderRecord]:
        """Unfinished orders (held or working) in placement order, all or those quoted by ``key``."""
        if key is None:
            self._unfinished = [r for r in self._unfinished if not r.is_done]
            return list(self._unfinished)
        live = self._by_key[key] = [r for r in self._by_key.get(key, []) if not r.is_done]
        return list(live)

    @staticmethod
    def _live(rec: OrderRecord) -> bool:
        return rec.is_working and not rec.waits_on_parent

    def _touch(self, contract: ContractKey) -> Touch | None:
        quote = self._quotes.get(contract.con_id)
        if quote is None and not contract.is_option:
            quote = self._quotes.get(contract.symbol)
        return quote

    def _mark(self, key: MarketKey, price: float) -> None:
        if isinstance(key, int):
            self.ledger.set_mark(key, price)
            return
        for contract in self.ledger.contracts():
            if quotes_contract(contract, key):
                self.ledger.set_mark(contract.con_id, price)

    def _relation_problem(self, req: OrderRequest) -> str | None:
        if req.account not in self.ledger.accounts:
            return f"Invalid account code {req.account!r}"
        if req.parent_id:
            parent = self._orders.get((req.client_id, req.parent_id))
            if parent is None:
                return f"Parent order {req.parent_id} is not found"
            if parent.status in (CANCELLED, INACTIVE):
                return f"Parent order {req.parent_id} is {parent.status}"
        return None

    def _modify(self, rec: OrderRecord, req: OrderRequest, now: datetime) -> list[BrokerEvent]:
        """Re-placing a known id: IB modifies price, quantity, TIF and trail fields only."""
        error = modify_error(rec, req)
        if error is not None:
            return [error]
        old = rec.request
        rec.request = replace(req, parent_id=old.parent_id, transmit=old.transmit or req.transmit)
        if req.trail_stop_price is not None and req.trail_stop_price != old.trail_stop_price:
            rec.trail_stop = req.trail_stop_price
        if rec.status == PENDING_SUBMIT:
            return self._release(rec, now) if req.transmit else []
        events: list[BrokerEvent] = [self._rel.state(rec)]
        return events + (self._evaluate(rec, now, resting=False) if self._live(rec) else [])

    def _release(self, rec: OrderRecord, now: datetime) -> list[BrokerEvent]:
        """A transmitting order arrived: release every held order of its group, parent first."""
        root = self._rel.root(rec)
        group = [o for o in [root, *self._rel.children(root)] if o.status == PENDING_SUBMIT]
        events: list[BrokerEvent] = []
        for o in group:
            o.request = replace(o.request, transmit=True)
            parent = self._rel.parent(o)
            if parent is not None and parent.status != FILLED:
                o.why_held = WHY_HELD_CHILD
                o.set_status(PRE_SUBMITTED, now)
            else:
                o.set_status(initial_status(o.request), now)
            events.append(self._rel.state(o))
        for o in group:
            if self._live(o):
                events += self._evaluate(o, now, resting=False)
        return events

    def _evaluate(self, rec: OrderRecord, now: datetime, resting: bool) -> list[BrokerEvent]:
        touch = self._touch(rec.request.contract)
        if touch is None:
            return []
        result = match(rec.request, rec.trail_stop, rec.triggered, touch, resting)
        moved = result.trail_stop != rec.trail_stop
        rec.trail_stop = result.trail_stop
        events: list[BrokerEvent] = []
        if result.triggered and not rec.triggered:
            rec.triggered = True
            if result.fill_price is None and rec.status == PRE_SUBMITTED:
                rec.set_status(SUBMITTED, now)
                events.append(self._rel.state(rec))
        elif moved and result.fill_price is None:
            events.append(self._rel.state(rec))
        if result.fill_price is not None:
            events += self._fill(rec, result.fill_price, now, partial_allowed=True)
        return events

    def _settle(self, s: Settlement, now: datetime) -> list[BrokerEvent]:
        """Book one settlement: the option closed at 0, the shares (if any) at the strike, no commission."""
        option = self.fills.book_settlement(s.account, s.option, -s.quantity, 0.0, now)
        events: list[BrokerEvent] = [
            SettlementExecuted(s.account, s.outcome, "option", option),
            PositionChanged(NO_CLIENT, s.account, self.ledger.row(s.account, s.option.con_id)),
        ]
        if s.stock is not None:
            self.ledger.set_mark(s.stock.con_id, s.close)  # later quotes of the symbol mark it (``_mark``)
            stock = self.fills.book_settlement(s.account, s.stock, s.stock_quantity, s.option.strike, now)
            events += [SettlementExecuted(s.account, s.outcome, "stock", stock),
                       PositionChanged(NO_CLIENT, s.account, self.ledger.row(s.account, s.stock.con_id))]
        log.info("sim broker: %s %s %+g %s %g%s at close %g", s.account, s.outcome, s.quantity, s.option.symbol,
                 s.option.strike, s.option.right, s.close)
        events.append(AccountChanged(NO_CLIENT, s.account, self.ledger.values(s.account)))
        return events

    def _fill(self, rec: OrderRecord, price: float, now: datetime, partial_allowed: bool) -> list[BrokerEvent]:
        """Execution → order state → commission → position → account (§6), then OCA and children."""
        quantity = self._partial.take(rec.remaining) if partial_allowed else rec.remaining
        touch = self._touch(rec.request.contract)
        if touch is not None and touch.mark is not None:  # the quote may predate the position
            self.ledger.set_mark(rec.request.contract.con_id, touch.mark)
        rec.record_fill(quantity, price)
        record = self.fills.book(rec, quantity, price, now)
        rec.commission += record.commission.commission
        rec.set_status(FILLED if rec.remaining <= 0 else SUBMITTED, now)
        events = fill_events(rec, record, self._rel.state(rec), self.ledger)
        events += self._rel.after_fill(rec, quantity, now)
        if rec.status == FILLED:
            for child in self._rel.activate_children(rec, now, initial_status):
                events.append(self._rel.state(child))
                events += self._evaluate(child, now, resting=False)
        return events
