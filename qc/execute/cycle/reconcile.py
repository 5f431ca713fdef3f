"""Reconciliation: make qc's intents, fills and positions agree with the broker before trading again.

Runs at every connection (start, reconnect, after 1101/1102), after Redis fails over, and every
``reconcile_s`` (30 s). While it runs the executor accepts no new signal (they wait in the stream).
Steps (ib-execution-and-risk.md §7):

1. Fetch this client's open orders, completed orders, today's executions (the account's) and
   positions, each under a timeout and retried: a failed fetch aborts the run (retried later),
   it is never read as "no orders".
2. Reload the open intents from Redis (qc's truth) and join the broker's orders to their legs by
   order reference, then permId; orders carrying another system's reference are external and
   never touched.
3. Apply every execution whose execId qc has not recorded (fills during a disconnect), to the
   fills, the intent and the position, exactly once.
4. Settle intents in ``submitting`` or ``unknown``: their state now follows from their orders; an
   intent whose orders are nowhere at the broker is ``lost`` once a second run ≥ ``lost_after_s``
   later still finds nothing (never re-sent: it may only have been slow).
5. Explain each position the broker reports that qc's records do not: an option past its expiry
   that went to 0 expired (shares that appeared with it: exercised or assigned, and alerted); any
   other difference locks the contract (no new entries) and alerts an operator.
6. Audit protection: every intent holding contracts gets a live stop for all of them (re-placed,
   resized, or a new pair).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from ib_async import ExecutionFilter, Position, Trade
from ib_async import Fill as IBFill

from qc.core import clock as clocks
from qc.core.order_ref import parse
from qc.execute import accounting, machine
from qc.execute.cycle.engine import Executor
from qc.execute.cycle.ibtypes import fill_of, key_of
from qc.execute.model import HOLDING, Intent, State
from qc.risk.model import ContractKey
from qc.risk.model import Position as RiskPosition
from qc.risk.position_codec import PositionRecord

log = logging.getLogger(__name__)
T = TypeVar("T")
FETCH_TIMEOUT_S = 10.0
FETCH_ATTEMPTS = 3


class ReconcileFailed(RuntimeError):
    """A broker query failed on every attempt: nothing may be concluded from its absence."""


@dataclass(frozen=True)
class BrokerView:
    trades: list[Trade]             # open then completed
    fills: list[IBFill]
    positions: list[Position]


async def fetch(what: str, call: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            return await asyncio.wait_for(call(), FETCH_TIMEOUT_S)
        except (TimeoutError, ConnectionError, OSError) as exc:
            log.warning("reconcile: %s failed (attempt %d/%d): %s", what, attempt, FETCH_ATTEMPTS, exc or "timeout")
            await asyncio.sleep(0.5 * attempt)
    raise ReconcileFailed(f"{what}: no answer after {FETCH_ATTEMPTS} attempts")


async def broker_view(ex: Executor, broker_account: str, since: datetime, periodic: bool = False) -> BrokerView:
    """What the broker holds. A periodic run asks for completed orders only when a leg qc has not seen
    finish is missing from the open ones: the day's completed orders (hundreds by the afternoon) are
    the one slow answer, and a live connection has already told qc how every other order ended."""
    ib = ex.ib
    open_trades = await fetch("open orders", ib.reqOpenOrdersAsync)
    completed: list[Trade] = []
    if not periodic or _unfinished_legs_missing(ex, open_trades):
        completed = await fetch("completed orders", lambda: ib.reqCompletedOrdersAsync(apiOnly=True))
    fills = await fetch("executions", lambda: ib.reqExecutionsAsync(
        ExecutionFilter(acctCode=broker_account, time=since.strftime("%Y%m%d-%H:%M:%S"))))
    positions = await fetch("positions", ib.reqPositionsAsync)
    return BrokerView([*open_trades, *completed], list(fills), [p for p in positions if p.account == broker_account])


def _unfinished_legs_missing(ex: Executor, open_trades: list[Trade]) -> bool:
    refs = {str(ref) for t in open_trades if (ref := parse(t.order.orderRef)) is not None}
    perms = {t.order.permId for t in open_trades if t.order.permId}
    return any(not leg.done and leg.order_ref(intent.id) not in refs and leg.perm_id not in perms
               for intent in ex.intents.values() for leg in intent.orders)


async def reconcile(ex: Executor, broker_account: str, why: str) -> dict[str, int]:
    """One full run; returns what it did (counts). Leaves ``ex.accepting`` True only when it completed."""
    ex.accepting = False
    now = ex.now()
    start = clocks.monotonic()
    ex.records.status({"state": "reconciling", "why": why, "since": now.isoformat()})
    ex.records.flush()  # what the last events changed, before Redis is read back
    ex.intents = {i.id: i for i in ex.records.open_intents()}
    ex.records.reload_positions()
    session = clocks.most_recent_session(now)
    view = await broker_view(ex, broker_account, session.open - timedelta(hours=10), periodic=why == "periodic")
    counts = {"orders_joined": 0, "fills_recovered": 0, "lost": 0, "settled": 0, "mismatches": 0,
              "lifecycle": 0, "protected": 0, "external": 0}
    _join_orders(ex, view, counts)
    for f in view.fills:
        if ex.record_fill(fill_of(f, ex.o.account, f.contract.symbol, now)):
            counts["fills_recovered"] += 1
        report = f.commissionReport
        if report is not None and report.execId:
            ex.apply_commission(fill_of(f, ex.o.account, f.contract.symbol, now), report.commission)
    _from_recorded_fills(ex, view, now, counts)
    _settle(ex, now, counts)
    _positions(ex, view, now, counts)
    _expired_intents(ex, view, now, counts)
    for intent in list(ex.intents.values()):
        if intent.state in HOLDING or intent.open_qty or intent.state == State.APPROVED:
            try:
                await ex.qualify(intent.contract)
            except (LookupError, TimeoutError, ValueError) as exc:
                ex.records.alert("unqualified", f"intent {intent.id}: {exc}", now, intent=intent.id)
    ex.accepting = True
    for intent in list(ex.intents.values()):
        if intent.open_qty and not intent.terminal:
            before = len(intent.orders)
            ex.protect_if_needed(intent)
            if len(ex.intents.get(intent.id, intent).orders) > before:
                counts["protected"] += 1
            contract = ex.rt.contracts.get(intent.contract)
            if contract is not None and (intent.trail_pct > 0 or intent.hard_close is not None):
                ex.ticker(contract)
    for intent in [i for i in ex.intents.values() if i.state in (State.PROPOSED, State.APPROVED)]:
        ex.spawn(ex.submit(intent))
    took = clocks.monotonic() - start
    ex.records.count("reconciliations")
    ex.records.status({"state": "trading", "why": why, "since": ex.now().isoformat(),
                       "last_reconcile": ex.now().isoformat(), "last_reconcile_ms": f"{took * 1000:.0f}",
                       "last_reconcile_result": " ".join(f"{k}={v}" for k, v in counts.items())})
    log.log(logging.INFO if not counts["mismatches"] else logging.WARNING, "reconciled (%s) in %.0f ms: %s", why,
            took * 1000, counts)
    ex.on_reconciled(start, now, not counts["mismatches"] and not unprotected(ex))
    return counts


def unprotected(ex: Executor) -> list[Intent]:
    """Intents holding contracts no live stop fully covers (a pair just placed counts once IB has it)."""
    return [i for i in ex.intents.values() if i.open_qty and not i.terminal and machine.stop_covers(i) < i.open_qty]


def _join_orders(ex: Executor, view: BrokerView, counts: dict[str, int]) -> None:
    """Fold each broker order into its intent's leg (by reference, then permId); note ours on this socket."""
    by_ref: dict[str, Trade] = {}
    for trade in view.trades:
        ref = parse(trade.order.orderRef)
        if ref is None:
            counts["external"] += 1
            continue
        by_ref.setdefault(str(ref), trade)  # open orders came first: they win over a completed copy
    for intent in list(ex.intents.values()):
        changed = intent
        for leg in intent.orders:
            t: Trade | None = by_ref.get(leg.order_ref(intent.id))
            if t is None and leg.perm_id:
                t = next((x for x in view.trades if x.order.permId == leg.perm_id), None)
            if t is None:
                continue
            counts["orders_joined"] += 1
            current = changed.find(leg.order_ref(intent.id))
            assert current is not None
            changed = machine.with_status(changed, current, t.orderStatus.status, perm_id=t.order.permId,
                                          filled=t.orderStatus.filled, avg_price=t.orderStatus.avgFillPrice)
            if t.order.orderId and t.orderStatus.status not in ("Filled", "Cancelled", "Inactive", "ApiCancelled"):
                ex.rt.sent[t.order.orderId] = (intent.id, leg.order_ref(intent.id))
        if changed != intent:
            ex.intents[intent.id] = changed
            ex.records.save(changed)


def _from_recorded_fills(ex: Executor, view: BrokerView, now: datetime, counts: dict[str, int]) -> None:
    """Recording a fill and booking it (intent, position) are separate writes: a crash between them leaves
    the fill known but unbooked. The recorded fills are the truth: each open intent's quantities are
    recomputed from them, and a position the broker disagrees with is rebuilt from them when they
    explain the broker's quantity exactly."""
    symbols = {i.symbol for i in ex.intents.values()} | set(ex.o.symbols)
    fills = [f for s in sorted(symbols) for f in ex.records.fills(s)]
    for intent in list(ex.intents.values()):
        mine = [f for f in fills if f.intent_id == intent.id]
        entry = [f for f in mine if f.leg == "entry"]
        exits = [f for f in mine if f.leg and f.leg != "entry"]
        filled, exited = sum(f.quantity for f in entry), sum(f.quantity for f in exits)
        if (filled, exited) != (intent.filled_qty, intent.exit_qty):
            fixed = replace(intent, filled_qty=filled, exit_qty=exited,
                            entry_avg=sum(f.price * f.quantity for f in entry) / filled if filled else 0.0,
                            exit_avg=sum(f.price * f.quantity for f in exits) / exited if exited else 0.0)
            ex.intents[intent.id] = fixed
            ex.records.save(fixed)
            counts["rebooked"] = counts.get("rebooked", 0) + 1
    broker = {p.contract.conId: round(p.position) for p in view.positions}
    ours = ex.records.positions()
    contracts = {i.con_id: (i.contract, i.bucket) for i in ex.intents.values() if i.con_id}
    for con_id, qty in broker.items():
        rec = ours.get(con_id)
        known = (rec.position.contract, rec.position.bucket) if rec is not None else contracts.get(con_id)
        if known is None or (rec is not None and rec.position.quantity == qty):
            continue
        booked = sorted((f for f in fills if f.con_id == con_id and (f.order_ref or f.kind != "trade")),
                        key=lambda f: (f.at, f.exec_id))
        rebuilt: PositionRecord | None = None
        for f in booked:
            rebuilt = accounting.apply_fill(rebuilt, con_id, known[0], f.signed_qty, f.price, known[1], f.at)
            if f.commission_usd is not None:
                rebuilt = accounting.apply_commission(rebuilt, f.commission_usd)
        if rebuilt is not None and rebuilt.position.quantity == qty:
            ex.records.save_position(rebuilt)
            counts["rebooked"] = counts.get("rebooked", 0) + 1
            log.warning("reconcile: conId %d rebuilt from its %d recorded fills (%s → %d)", con_id, len(booked),
                        rec.position.quantity if rec else "none", qty)


def _settle(ex: Executor, now: datetime, counts: dict[str, int]) -> None:
    """Intents in submitting or unknown: derive from their orders, or count their absence toward lost."""
    for intent in list(ex.intents.values()):
        if intent.state not in (State.SUBMITTING, State.UNKNOWN, State.ACKNOWLEDGED, State.WORKING):
            if intent.state not in (State.PROPOSED, State.APPROVED):
                ex.commit(intent, "reconciled")
            continue
        seen = any(o.perm_id for o in intent.orders) or intent.filled_qty > 0
        if seen:
            base = intent if intent.state != State.UNKNOWN else replace(intent, state=State.SUBMITTING)
            target = machine.derive(base)
            if target != intent.state:
                ex.commit(machine.move(intent, target, now, "reconciled with the broker"))
                counts["settled"] += 1
            continue
        if intent.absent_since is None:
            ex.commit(replace(machine.move(intent, State.UNKNOWN, now, "absent at the broker"), absent_since=now))
            continue
        if (now - intent.absent_since).total_seconds() >= ex.o.lost_after_s:
            ex.commit(replace(machine.move(intent, State.LOST, now,
                                           f"absent at the broker since {intent.absent_since.isoformat()}"),
                              reasons=(*intent.reasons, "LOST never reached the broker")))
            counts["lost"] += 1


def _expired(key_expiry: object, now: datetime) -> bool:
    from datetime import date

    if not isinstance(key_expiry, date):
        return False
    today = clocks.new_york_date(now)
    if key_expiry < today:
        return True
    session = clocks.session(key_expiry)
    return key_expiry == today and session is not None and now >= session.close


def _positions(ex: Executor, view: BrokerView, now: datetime, counts: dict[str, int]) -> None:
    """Diff the broker's positions with qc's per conId; explain by the option lifecycle, else lock and alert."""
    ours = ex.records.positions()
    broker = {p.contract.conId: p for p in view.positions}
    locked = ex.records.locked()
    for con_id, rec in ours.items():
        b = broker.get(con_id)
        broker_qty = round(b.position) if b is not None else 0
        qc_qty = rec.position.quantity
        if broker_qty == qc_qty:
            if con_id in locked:
                ex.records.unlock(con_id)
                ex.records.alert("unlocked", f"conId {con_id}: qc and the broker agree again ({qc_qty})", now,
                                 con_id=con_id)
            continue
        contract = rec.position.contract
        if contract.sec_type == "OPT" and broker_qty == 0 and _expired(contract.expiry, now):
            _lifecycle(ex, rec, view, now)
            counts["lifecycle"] += 1
            continue
        counts["mismatches"] += 1
        why = f"broker holds {broker_qty}, qc's records {qc_qty}"
        if locked.get(con_id) != why:
            ex.records.lock(con_id, why)
            ex.records.alert("position_mismatch", f"{contract.describe()} (conId {con_id}): {why}; locked", now,
                             con_id=con_id, broker=broker_qty, qc=qc_qty)
    for con_id, b in broker.items():
        if con_id in ours or b.position == 0:
            continue
        key = key_of(b.contract)
        if key is not None and key.sec_type == "STK" and key.underlying in ex.o.symbols:
            rec = PositionRecord(con_id, _stock_position(key, b), 0.0, now)
            ex.records.save_position(rec)
            ex.records.alert("shares_held", f"{b.position:g} {key.underlying} shares at the broker (from an exercise "
                             "or assignment?): recorded, not traded by qc; close them or hedge", now,
                             con_id=con_id, qty=b.position)


def _stock_position(key: ContractKey, b: Position) -> RiskPosition:
    return RiskPosition(key, round(b.position), float(b.avgCost), "other")


def _lifecycle(ex: Executor, rec: PositionRecord, view: BrokerView, now: datetime) -> None:
    """An expired option the broker no longer holds: expired worthless, or exercised/assigned into shares."""
    c = rec.position.contract
    stock = next((p for p in view.positions if p.contract.secType == "STK" and p.contract.symbol == c.underlying),
                 None)
    ours = ex.records.positions()
    stock_before = next((r.position.quantity for r in ours.values() if r.position.contract.sec_type == "STK"
                         and r.position.contract.underlying == c.underlying), 0)
    moved = (round(stock.position) if stock else 0) - stock_before
    long = rec.position.quantity > 0
    state = State.EXPIRED if moved == 0 else State.EXERCISED if long else State.ASSIGNED
    realised = rec.realised_today_usd - (rec.position.avg_cost * rec.position.quantity * c.multiplier
                                         if state == State.EXPIRED else 0.0)
    ex.records.save_position(PositionRecord(rec.con_id, replace(rec.position, quantity=0, avg_cost=0.0),
                                            round(realised, 6), None))
    ex.records.alert(state.value, f"{c.describe()}: {rec.position.quantity} {state.value}"
                     + (f"; {moved:+d} {c.underlying} shares at the broker" if moved else ""), now,
                     con_id=rec.con_id, shares=moved)
    for intent in list(ex.intents.values()):
        if intent.con_id == rec.con_id and not intent.terminal:
            done = replace(intent, exit_qty=intent.filled_qty, exit_reason=state.value)
            ex.commit(machine.move(done, state, now, f"option {state.value} at its expiry"))


def _expired_intents(ex: Executor, view: BrokerView, now: datetime, counts: dict[str, int]) -> None:
    """Intents still holding an option the broker settled (its lifecycle executions already booked the
    position): exercised or assigned when the broker delivered the underlying's shares at this option's
    strike, else expired."""
    broker = {p.contract.conId: round(p.position) for p in view.positions}
    for intent in list(ex.intents.values()):
        c = intent.contract
        if intent.terminal or intent.open_qty == 0 or c.sec_type != "OPT" or not _expired(c.expiry, now):
            continue
        if broker.get(intent.con_id, 0) != 0:
            continue
        delivered = any(not f.order_ref and f.con_id != intent.con_id and c.strike is not None
                        and abs(f.price - c.strike) < 0.005 for f in ex.records.fills(c.underlying))
        state = State.EXPIRED if not delivered else State.EXERCISED if intent.sign > 0 else State.ASSIGNED
        done = replace(intent, exit_qty=intent.filled_qty, exit_reason=state.value)
        ex.commit(machine.move(done, state, now, f"option {state.value} at its expiry"))
        counts["lifecycle"] += 1


def intents_holding(ex: Executor) -> list[Intent]:
    return [i for i in ex.intents.values() if i.open_qty > 0]
