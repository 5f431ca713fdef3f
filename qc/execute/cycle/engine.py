"""The executor's engine: signals in, brackets out, IB's reports folded into intents, fills and positions.

Runs on the asyncio loop that also runs ib_async, so IB's events and qc's decisions never interleave
mid-update. The rules it keeps (ib-execution-and-risk.md §7):

- **Persist before the socket write.** An intent is saved ``submitting`` with the ids and order
  references of all three legs before the first byte goes to IB; a crash between the two leaves an
  intent reconciliation finds absent at the broker (then lost, never sent twice).
- **Orders are keyed by qc's order reference, then permId**, never by orderId alone: an orderId is
  only trusted for orders sent on this very connection (``sent``), since a gateway restart reissues
  ids.
- **A position never sits without its stop.** Whenever an intent holds contracts that no live stop
  covers and no entry still works, a stand-alone protective pair is placed for them; a partially
  filled entry gets ``partial_grace_s`` to complete, then its rest is cancelled and the filled part
  protected.
- **Exits keep the stop until they fill**: a time stop or the 0DTE hard close moves the take-profit
  limit to a marketable price (a modification, so the stop stays live and the OCA reduces it).
- **The trail only tightens** (``qc.execute.trail``), and the new trigger is saved before it is sent.

Every write checks the fencing token (``records.Records``); ``Fenced`` ends the process.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ib_async import IB, CommissionReport, Contract, Ticker, Trade
from ib_async import Fill as IBFill

from qc.core import clock as clocks
from qc.core.clock import Clock
from qc.core.order_ref import Leg, parse
from qc.execute import accounting, machine
from qc.execute.bracket import Placement, bracket, closing_order, protective_pair, to_tick
from qc.execute.cycle.ibtypes import fill_of, ib_contract, ib_order
from qc.execute.cycle.pricing import Pricing
from qc.execute.cycle.records import Records
from qc.execute.model import HOLDING, Fill, Intent, LegOrder, State
from qc.execute.trail import step
from qc.risk.model import Bucket, ContractKey
from qc.signals.codec import Signal

log = logging.getLogger(__name__)

STOP_AND_TP: tuple[Leg, ...] = ("stop", "tp")
REJECT_CODES = frozenset({201, 203, 135, 103, 104, 10147, 10148})
FAIL_CODES = frozenset({201, 203})
_BUCKETS: dict[str, Bucket] = {"0dte": "0dte", "1dte": "1dte", "14dte": "14dte"}
_IN_FLIGHT = frozenset({State.PROPOSED, State.APPROVED, State.SUBMITTING})


@dataclass(frozen=True)
class ExecOptions:
    """What the operator configured (``QC_EXECUTE_*``)."""

    account: str
    symbols: tuple[str, ...]
    qty_per_signal: int = 1
    hard_close_min: float = 15.0         # 0DTE: flatten this long before the close (0: never)
    ack_timeout_s: float = 5.0
    reconcile_s: float = 30.0
    lost_after_s: float = 30.0           # absent at the broker this long (two queries): lost
    partial_grace_s: float = 2.0
    entry_timeout_s: float = 60.0        # an entry not filled within this is cancelled
    max_signal_age_s: float = 120.0      # an older signal is not traded
    quote_wait_s: float = 2.0
    trail_modify_every_s: float = 1.0


@dataclass
class Runtime:
    """Per-connection memory: orders sent on this socket (orderId → intent, reference), tickers, qualified contracts."""

    sent: dict[int, tuple[str, str]] = field(default_factory=dict)
    contracts: dict[ContractKey, Contract] = field(default_factory=dict)
    tickers: dict[int, Ticker] = field(default_factory=dict)


class Executor:
    """Owns the account's open intents in memory (mirrored in Redis before every broker call)."""

    def __init__(self, ib: IB, records: Records, pricing: Pricing, clock: Clock, options: ExecOptions) -> None:
        self.ib, self.records, self.pricing, self.clock, self.o = ib, records, pricing, clock, options
        self.intents: dict[str, Intent] = {}
        self.rt = Runtime()
        self.accepting = False           # False while reconciling or disconnected: signals wait in the stream
        self.connected = False
        self.broker_account = ""         # IB's account code (QC_IB_ACCOUNT, else the gateway's first)
        self.msgs: deque[float] = deque()  # monotonic times of messages sent, for the rate check
        self.on_fenced: Callable[[Exception], None] = lambda exc: None
        # a reconciliation ended: (its monotonic start, its clock start, clean: no mismatch, all held under a stop)
        self.on_reconciled: Callable[[float, datetime, bool], None] = lambda started, started_at, clean: None
        self.needs_reconcile = asyncio.Event()
        self._partial_timers: set[str] = set()
        self._trail_sent: dict[str, float] = {}
        self._protecting: set[str] = set()
        self._submitting: set[str] = set()  # intents a submission is working on (one at a time each)
        self.tasks: set[asyncio.Future[None]] = set()
        self._open_counts: dict[tuple[str, str], int] | None = None
        self._behind = False             # True while handling a broker's order event: its writes are held back
        if records is not None:  # None: a tool or test that only plans intents
            records.on_behind = self._flush_soon

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` on the loop, keeping a reference until it ends (asyncio holds only weak ones)."""
        task: asyncio.Future[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- wiring ------------------------------------------------------------------------------------

    def hook(self) -> None:
        ib = self.ib
        ib.openOrderEvent += self._guard(self.on_order)
        ib.orderStatusEvent += self._guard(self.on_order)
        ib.execDetailsEvent += self._guard(self.on_exec)
        ib.commissionReportEvent += self._guard(self.on_commission)
        ib.pendingTickersEvent += self._guard(self.on_tickers)

    def _guard(self, fn: Callable[..., None]) -> Callable[..., None]:
        def handler(*args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:
                from qc.runtime.fence import Fenced

                if isinstance(exc, Fenced):
                    self.on_fenced(exc)
                    return
                self.records.count("errors")
                log.exception("execute: handling %s failed; reconciling", fn.__name__)
                self.needs_reconcile.set()
        return handler

    def now(self) -> datetime:
        return self.clock.now()

    def _flush_soon(self) -> None:
        """Held-back writes go out once the events at hand are handled (on this loop's next turn)."""
        try:
            asyncio.get_running_loop().call_soon(self._flush_held)
        except RuntimeError:  # no loop (a tool, a test): write now
            self._flush_held()

    def _flush_held(self) -> None:
        try:
            self.records.flush()
        except Exception as exc:
            from qc.runtime.fence import Fenced

            if isinstance(exc, Fenced):
                self.on_fenced(exc)
                return
            self.records.count("errors")
            log.warning("execute: writing held-back order updates failed (%s); reconciling", exc)
            self.needs_reconcile.set()

    # --- persistence ---------------------------------------------------------------------------------

    def commit(self, intent: Intent, why: str = "") -> Intent:
        """Move to the derived state (unless unknown: only reconciliation resolves that) and save."""
        if intent.state != State.UNKNOWN:
            intent = machine.settle(intent, self.now(), why)
        old = self.intents.get(intent.id)
        self.records.save(intent, later=self._behind)
        self._open_counts = None
        if intent.terminal:
            self.intents.pop(intent.id, None)
        else:
            self.intents[intent.id] = intent
        if old is None or old.state != intent.state:
            self._entered(intent, old)
        return intent

    def _entered(self, intent: Intent, old: Intent | None) -> None:
        log.info("intent %s %s %s: %s → %s", intent.id, intent.symbol, intent.contract.describe(),
                 old.state if old else "-", intent.state)
        if intent.state in (State.REJECTED, State.CLOSED, State.CANCELLED, State.LOST, State.EXPIRED,
                            State.EXERCISED, State.ASSIGNED, State.PROTECTED):
            self.records.note_lineage(intent.id, {
                "state": intent.state.value, "at": self.now().isoformat(), "reasons": list(intent.reasons),
                "filled": intent.filled_qty, "entry_avg": intent.entry_avg, "exit_qty": intent.exit_qty,
                "exit_avg": intent.exit_avg, "exit_reason": intent.exit_reason})
        self.records.count(f"state_{intent.state.value}")

    # --- intake --------------------------------------------------------------------------------------

    def intent_from(self, signal: Signal, now: datetime) -> Intent:
        c = signal.contract
        key = (ContractKey(c.symbol, "STK", multiplier=1) if c.sec_type == "STK"
               else ContractKey(c.symbol, "OPT", c.expiry, c.strike, c.right, c.multiplier))
        qty = max(1, round(self.o.qty_per_signal * max(signal.size_multiplier, 0.0))) \
            if key.sec_type == "OPT" else 100 * max(1, self.o.qty_per_signal)
        hard_close = None
        if key.sec_type == "OPT" and key.expiry == clocks.new_york_date(now) and self.o.hard_close_min > 0:
            session = clocks.session(key.expiry)
            if session is not None:
                hard_close = session.close - timedelta(minutes=self.o.hard_close_min)
        trail = signal.trail_pct
        return Intent(id=signal.id, account=self.o.account, symbol=signal.symbol, strategy=signal.strategy,
                      bucket=_BUCKETS.get(signal.strategy, "other"), contract=key, side=signal.side,
                      quantity=qty, limit=signal.limit, take_profit=signal.take_profit, stop=signal.stop,
                      trail_pct=trail, time_stop=signal.time_stop, hard_close=hard_close, created=now)

    def in_flight(self) -> bool:
        """An intent between intake and the broker's acknowledgement: the loop must not pause now."""
        return any(i.state in _IN_FLIGHT for i in self.intents.values())

    def accept(self, signal: Signal) -> Intent | None:
        """A signal from the stream: a new intent (saved ``proposed``), or None for one seen before."""
        if signal.id in self.intents:
            self.records.count("duplicates")
            return None
        now = self.now()
        try:
            intent = self.intent_from(signal, now)
        except ValueError as exc:
            self.records.count("unreadable_signals")
            log.error("signal %s: no order can be built from it: %s", signal.id, exc)
            return None
        if not self.records.create(intent):
            self.records.count("duplicates")
            log.info("signal %s: already an intent (delivered twice): ignored", signal.id)
            return None
        self.records.count("intents")
        self.intents[intent.id] = intent
        age = (now - signal.created_at).total_seconds()
        if age > self.o.max_signal_age_s:
            self.commit(replace(machine.move(intent, State.CANCELLED, now, f"signal {age:.0f} s old"),
                                reasons=(f"STALE_SIGNAL age_s={age:.0f} max={self.o.max_signal_age_s:g}",)))
            return None
        return intent

    # --- submission ----------------------------------------------------------------------------------

    async def qualify(self, key: ContractKey) -> Contract:
        got = self.rt.contracts.get(key)
        if got is not None:
            return got
        contract = ib_contract(key)
        got_list = await asyncio.wait_for(self.ib.qualifyContractsAsync(contract), 10)
        qualified = got_list[0] if got_list else None
        if not isinstance(qualified, Contract) or not qualified.conId:
            raise LookupError(f"{key.describe()} is not a contract IB knows")
        self.rt.contracts[key] = qualified
        return qualified

    def ticker(self, contract: Contract) -> Ticker:
        t = self.rt.tickers.get(contract.conId)
        if t is None:
            t = self.ib.reqMktData(contract, "", False, False)
            self.rt.tickers[contract.conId] = t
        return t

    async def live_quote(self, contract: Contract) -> tuple[float, float, float] | None:
        """(bid, ask, age_s) from IB's stream, waiting up to ``quote_wait_s`` for a two-sided one."""
        t = self.ticker(contract)
        deadline = clocks.monotonic() + self.o.quote_wait_s
        while True:
            if _two_sided(t):
                age = max(0.0, (self.now() - t.time).total_seconds()) if t.time is not None else 0.0
                return t.bid, t.ask, age
            if clocks.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.002)

    async def submit(self, intent: Intent) -> None:
        """Proposed or approved → pre-trade check on IB's live quote → the bracket at IB.

        One submission per intent at a time: the intake and a reconciliation may both ask for the same one
        (a reconciliation submits every intent still proposed or approved), and two would send two brackets.
        """
        if intent.id in self._submitting:
            return
        self._submitting.add(intent.id)
        try:
            await self._submit(intent)
        finally:
            self._submitting.discard(intent.id)

    def _unchanged(self, intent: Intent) -> bool:
        """Still what this submission started from (after an await: nothing else moved or sent it)."""
        now = self.intents.get(intent.id)
        return now is not None and now.state == intent.state and now.current("entry") is None

    async def _submit(self, intent: Intent) -> None:
        try:
            contract = await self.qualify(intent.contract)
        except (LookupError, TimeoutError, ValueError) as exc:
            self._reject(intent, [f"CONTRACT_NOT_QUALIFIED {exc}"])
            return
        intent = replace(intent, con_id=contract.conId)
        why_locked = self.records.locked().get(contract.conId) if intent.state == State.PROPOSED else None
        if why_locked is not None:  # reconciliation found a position it cannot explain: an operator must look
            self._reject(intent, [f"POSITION_LOCKED con_id={contract.conId} why={why_locked}"])
            return
        if intent.state == State.PROPOSED:
            quote = await self.live_quote(contract)
            if not self._unchanged(intent):
                return
            verdict = self.pricing.check(intent, quote, self.positions_view(), self.open_entries(),
                                         self.msgs_last_s(), self.now())
            if not verdict.approved:
                self._reject(intent, [str(r) for r in verdict.reasons])
                return
            intent = self.commit(replace(machine.move(intent, State.APPROVED, self.now(), "pre-trade check passed"),
                                         token=self.records.token))
        if not self.connected:
            self.intents[intent.id] = intent
            return  # approved, waiting for the broker: the next connection's reconciliation submits it
        if not self._unchanged(intent):
            return
        first = self.ib.client.getReqId()
        ids = [first, self.ib.client.getReqId(), self.ib.client.getReqId()]
        if ids != [first, first + 1, first + 2]:
            raise RuntimeError(f"order ids not consecutive: {ids}")
        placements = bracket(intent, first)
        intent = replace(intent, orders=(*intent.orders, *(p.order for p in placements)))
        intent = machine.move(intent, State.SUBMITTING, self.now(), f"bracket ids {first}-{first + 2}")
        self.commit(intent)                     # persisted before the socket write
        self.send(intent, contract, placements)
        asyncio.get_running_loop().call_later(self.o.ack_timeout_s, self._ack_deadline, intent.id)

    def send(self, intent: Intent, contract: Contract, placements: tuple[Placement, ...] | list[Placement]) -> None:
        self.records.flush()
        self.records.guard()
        for p in placements:
            self.rt.sent[p.order.order_id] = (intent.id, p.order.order_ref(intent.id))
            self.ib.placeOrder(contract, ib_order(p, intent.id, self.broker_account))
            self.msgs.append(clocks.monotonic())
        self.records.note_sent(intent.id, len(placements), clocks.wall_epoch())
        self.records.count("orders_sent", len(placements))

    def _reject(self, intent: Intent, reasons: list[str]) -> None:
        intent = replace(machine.move(intent, State.REJECTED, self.now(), "; ".join(reasons)[:300]),
                         reasons=tuple(reasons))
        self.commit(intent)
        log.warning("intent %s %s rejected: %s", intent.id, intent.symbol, "; ".join(reasons))

    def _ack_deadline(self, intent_id: str) -> None:
        intent = self.intents.get(intent_id)
        entry = intent.current("entry") if intent else None
        if intent is None or entry is None or entry.perm_id or intent.state != State.SUBMITTING:
            return
        self.commit(machine.move(intent, State.UNKNOWN, self.now(), f"no ack within {self.o.ack_timeout_s:g} s"))
        self.needs_reconcile.set()

    def disconnected(self) -> None:
        """The socket is gone: an intent sent but never acknowledged is unknown until reconciliation."""
        for intent in list(self.intents.values()):
            entry = intent.current("entry")
            if intent.state == State.SUBMITTING and entry is not None and not entry.perm_id:
                self.commit(machine.move(intent, State.UNKNOWN, self.now(), "disconnected before the ack"))

    # --- IB's reports --------------------------------------------------------------------------------

    def locate(self, trade: Trade) -> tuple[Intent, LegOrder] | None:
        """The intent and leg of an ib_async trade: by order reference, then permId; None if not qc's."""
        ref = parse(trade.order.orderRef)
        if ref is None:
            return None
        intent = self.intents.get(ref.intent)
        if intent is None:
            return None
        leg = intent.find(str(ref), trade.order.permId)
        return None if leg is None else (intent, leg)

    def on_order(self, trade: Trade) -> None:
        """An order's status or open-order message: its writes are held back (sent before any order)."""
        self._behind = True
        try:
            self._on_order(trade)
        finally:
            self._behind = False

    def _on_order(self, trade: Trade) -> None:
        found = self.locate(trade)
        if found is None:
            return
        intent, leg = found
        st = trade.orderStatus
        status = st.status
        if status == "ValidationError":  # a warning on a modification: the order keeps working
            return
        if status in ("Cancelled", "ApiCancelled") and leg.order_id in self.rt.sent and _rejected_by_error(trade):
            status = "Inactive"
        updated = machine.with_status(intent, leg, status, perm_id=trade.order.permId, filled=st.filled,
                                      avg_price=st.avgFillPrice)
        if updated == intent:
            return
        new_leg = updated.find(leg.order_ref(intent.id))
        assert new_leg is not None
        if new_leg.status == "Inactive" and leg.status != "Inactive":
            code, message = _last_error(trade)
            self.records.order_failed(intent, new_leg, code, message, self.clock.now().timestamp())
            updated = replace(updated, reasons=(*updated.reasons, f"IB {code}: {message}"[:200]))
        self.records.note_order(updated, new_leg, later=True)
        self.apply(updated, f"{new_leg.leg} {new_leg.status}")

    def on_exec(self, trade: Trade, f: IBFill) -> None:
        self.record_fill(fill_of(f, self.o.account, f.contract.symbol, self.now()))

    def record_fill(self, fill: Fill) -> bool:
        """An execution, applied once: to the fills hash, to its intent, to the position. True when new."""
        if not self.records.add_fill(fill):
            return False
        self.records.count("fills")
        ref = parse(fill.order_ref)
        intent = self.intents.get(ref.intent) if ref else None
        leg = intent.find(fill.order_ref, fill.perm_id) if intent else None
        bucket: Bucket = intent.bucket if intent else "other"
        if ref is not None or fill.kind != "trade":  # qc's own orders, and the broker's lifecycle bookings
            self.book_position(fill, bucket)
        if ref is None and fill.kind != "trade":
            shares = fill.con_id not in {i.con_id for i in self.intents.values()}
            what = ("exercise or assignment: shares qc did not buy, close or hedge them" if shares
                    else "the option settled at its expiry")
            self.records.alert("shares_held" if shares else "lifecycle",
                               f"{fill.side} {fill.quantity} {fill.symbol} (conId {fill.con_id}) at {fill.price:g} "
                               f"by the broker: {what}", self.now(), con_id=fill.con_id, exec_id=fill.exec_id)
        if intent is not None and leg is not None:
            intent = machine.with_fill(intent, leg, fill)
            if fill.commission_usd is not None:  # recorded with its report (a reconciliation's execution)
                intent = replace(intent, commission_usd=intent.commission_usd + fill.commission_usd)
            self.apply(intent, f"{leg.leg} fill {fill.quantity}@{fill.price:g}")
        if fill.commission_usd is not None and (ref is not None or fill.kind != "trade"):
            rec = self.records.positions().get(fill.con_id)
            if rec is not None:
                self.records.save_position(accounting.apply_commission(rec, fill.commission_usd))
        return True

    def book_position(self, fill: Fill, bucket: Bucket) -> None:
        positions = self.records.positions()
        rec = positions.get(fill.con_id)
        key = rec.position.contract if rec else self.contract_key(fill)
        if key is None and fill.kind != "trade":  # a lifecycle booking of an unknown conId: the underlying's shares
            key = ContractKey(fill.symbol, "STK", multiplier=1)
        if key is None:
            self.records.alert("unknown_contract", f"fill {fill.exec_id} on conId {fill.con_id}: contract unknown",
                               self.now(), con_id=fill.con_id)
            return
        self.records.save_position(accounting.apply_fill(rec, fill.con_id, key, fill.signed_qty, fill.price,
                                                         bucket, self.now()))

    def contract_key(self, fill: Fill) -> ContractKey | None:
        for key, c in self.rt.contracts.items():
            if c.conId == fill.con_id:
                return key
        for intent in self.intents.values():
            if intent.con_id == fill.con_id:
                return intent.contract
        return None

    def on_commission(self, trade: Trade, f: IBFill, report: CommissionReport) -> None:
        fill = fill_of(f, self.o.account, f.contract.symbol, self.now())
        self.apply_commission(fill, report.commission)

    def apply_commission(self, fill: Fill, commission: float) -> None:
        if not math.isfinite(commission) or commission >= 1e300 or not self.records.set_commission(fill, commission):
            return
        rec = self.records.positions().get(fill.con_id)
        if rec is not None:
            self.records.save_position(accounting.apply_commission(rec, commission))
        ref = parse(fill.order_ref)
        intent = self.intents.get(ref.intent) if ref else None
        if intent is not None:
            self.apply(replace(intent, commission_usd=intent.commission_usd + commission), "commission")

    def on_error(self, req_id: int, code: int, message: str) -> None:
        """IB errors about an order sent on this connection (its orderId is only meaningful here)."""
        if code in (1101, 1102):
            self.needs_reconcile.set()
            return
        sent = self.rt.sent.get(req_id)
        if sent is None or code not in REJECT_CODES:
            return
        log.warning("execute: IB %d on order %d (%s): %s", code, req_id, sent[1], message)

    # --- what follows from a change -------------------------------------------------------------------

    def apply(self, intent: Intent, why: str) -> None:
        """Save the intent and do what its new situation asks: protect, trail, wait for a partial."""
        intent = self.commit(intent, why)
        if intent.terminal or intent.state == State.UNKNOWN or not self.connected or not self.accepting:
            return  # while reconciling, its final audit protects what needs it
        self.protect_if_needed(intent)
        if intent.state == State.PARTIAL and intent.id not in self._partial_timers:
            self._partial_timers.add(intent.id)
            asyncio.get_running_loop().call_later(self.o.partial_grace_s, self._partial_expired, intent.id)

    def protect_if_needed(self, intent: Intent) -> None:
        """Contracts held with no live entry and not all covered by a live stop: place a protective pair."""
        held = intent.open_qty
        if held == 0 or intent.live_orders("entry") or intent.id in self._protecting or machine.fills_pending(intent):
            return
        if machine.protection_pending(intent, self.rt.sent):
            return  # IB has not answered the last pair yet: its answer brings this intent back here
        if intent.exit_reason in ("time_stop", "hard_close", "flatten") and intent.live_orders("exit", "tp"):
            return
        covered = machine.stop_covers(intent)
        if covered >= held:
            return  # outside the session too: the stop is GTC and rests overnight
        if not clocks.is_market_open(self.now()):
            self.records.alert("unprotected_outside_session", f"intent {intent.id}: {held} held without a full "
                               "stop outside the session; protection is placed at the next reconciliation in it",
                               self.now(), intent=intent.id)
            return
        contract = self.rt.contracts.get(intent.contract)
        if contract is None:
            self.needs_reconcile.set()
            return
        live_stop = intent.current("stop")
        if live_stop is not None and live_stop.live and live_stop.parent_id == 0 and covered > 0:
            self._resize(intent, contract, held)
            return
        self._protecting.add(intent.id)
        try:
            first = self.ib.client.getReqId()
            second = self.ib.client.getReqId()
            placements = protective_pair(intent, held, first)
            if second != first + 1:
                placements = (placements[0], replace(placements[1], order=replace(placements[1].order,
                                                                                   order_id=second)))
            intent = replace(intent, orders=(*intent.orders, *(p.order for p in placements)))
            intent = self.commit(intent, f"protecting {held} held")
            self.records.alert("protection_placed", f"intent {intent.id}: {held} {intent.contract.describe()} "
                               f"held with {covered} covered: stop placed", self.now(), intent=intent.id)
            self.send(intent, contract, placements)
        finally:
            self._protecting.discard(intent.id)

    def _resize(self, intent: Intent, contract: Contract, held: int) -> None:
        for leg_name in STOP_AND_TP:
            leg = intent.current(leg_name)
            if leg is None or not leg.live:
                continue
            new = replace(leg, quantity=held + leg.filled)
            intent = machine.replace_order(intent, leg, new)
            intent = self.commit(intent, f"{leg_name} resized to {held}")
            self.modify(intent, contract, new)

    def modify(self, intent: Intent, contract: Contract, leg: LegOrder) -> None:
        """Re-send a live order with new quantity or prices (same id on this connection, else by permId)."""
        ref = leg.order_ref(intent.id)
        trade = next((t for t in self.ib.openTrades() if t.order.orderRef == ref or
                      (leg.perm_id and t.order.permId == leg.perm_id)), None)
        if trade is None:
            log.warning("intent %s: %s not bound on this connection; reconciling before modifying it",
                        intent.id, ref)
            self.needs_reconcile.set()
            return
        order = trade.order
        order.totalQuantity = float(leg.quantity)
        if leg.limit is not None:
            order.lmtPrice = leg.limit
        if leg.aux is not None:
            order.auxPrice = leg.aux
        order.transmit = True
        self.records.flush()
        self.records.guard()
        self.ib.placeOrder(trade.contract, order)
        self.msgs.append(clocks.monotonic())
        self.records.count("modifications")

    def _partial_expired(self, intent_id: str) -> None:
        self._partial_timers.discard(intent_id)
        intent = self.intents.get(intent_id)
        if intent is None or intent.state != State.PARTIAL:
            return
        entry = intent.current("entry")
        if entry is not None and entry.live:
            log.info("intent %s: entry %d/%d filled after %g s: cancelling the rest, protecting the part",
                     intent.id, intent.filled_qty, intent.quantity, self.o.partial_grace_s)
            self.cancel(intent, entry)

    def cancel(self, intent: Intent, leg: LegOrder) -> None:
        ref = leg.order_ref(intent.id)
        trade = next((t for t in self.ib.openTrades() if t.order.orderRef == ref), None)
        if trade is None:
            self.needs_reconcile.set()
            return
        self.records.flush()
        self.records.guard()
        self.ib.cancelOrder(trade.order)
        self.msgs.append(clocks.monotonic())

    # --- market-driven management ----------------------------------------------------------------------

    def on_tickers(self, tickers: set[Ticker]) -> None:
        if not self.connected:
            return
        by_con = {t.contract.conId: t for t in tickers if t.contract is not None}
        for intent in list(self.intents.values()):
            t = by_con.get(intent.con_id)
            if t is None or intent.state not in (State.PROTECTED,) or intent.trail_pct <= 0:
                continue
            price = t.bid if intent.sign > 0 else t.ask
            if not (price == price and 0 < price < 1e6):
                continue
            self.trail(intent, float(price))

    def trail(self, intent: Intent, price: float) -> None:
        s = step(intent.sign, intent.stop, intent.best_premium, price, intent.trail_pct)
        if not s.moved:
            if s.best != intent.best_premium:
                self.intents[intent.id] = replace(intent, best_premium=s.best)  # saved with the next move
            return
        mono = clocks.monotonic()
        if mono - self._trail_sent.get(intent.id, 0.0) < self.o.trail_modify_every_s:
            self.intents[intent.id] = replace(intent, best_premium=s.best)
            return
        stop = intent.current("stop")
        contract = self.rt.contracts.get(intent.contract)
        if stop is None or not stop.live or contract is None:
            return
        self._trail_sent[intent.id] = mono
        new = replace(stop, aux=s.stop)
        intent = replace(machine.replace_order(intent, stop, new), stop=s.stop, best_premium=s.best)
        intent = self.commit(intent, f"trail: stop {stop.aux} → {s.stop} (best {s.best:g})")
        self.records.count("trail_moves")
        self.modify(intent, contract, new)

    async def tick(self, now: datetime) -> None:
        """Every second: time stops, the 0DTE hard close, entries that waited too long (yielding to the
        loop after each order it touches, so a signal never waits behind a batch of them)."""
        if not self.connected or not self.accepting:
            return
        for intent_id in list(self.intents):
            intent = self.intents.get(intent_id)  # read again after each yield: events may have moved it
            if intent is not None and self._tick_one(intent, now):
                await asyncio.sleep(0)

    def _tick_one(self, intent: Intent, now: datetime) -> bool:
        """True when an order was touched."""
        entry = intent.current("entry")
        if intent.state in (State.WORKING, State.ACKNOWLEDGED) and entry is not None and entry.live:
            limit_at = min(intent.created + timedelta(seconds=self.o.entry_timeout_s),
                           intent.hard_close or intent.time_stop, intent.time_stop)
            if now >= limit_at:
                self.cancel(intent, entry)
                return True
        elif intent.state in HOLDING and intent.open_qty > 0 and not intent.exit_reason.endswith(("stop_exit",)):
            deadline, why = intent.time_stop, "time_stop"
            if intent.hard_close is not None and intent.hard_close < deadline:
                deadline, why = intent.hard_close, "hard_close"
            if now >= deadline and intent.exit_reason not in ("time_stop", "hard_close", "flatten"):
                self.exit(intent, why)
                return True
        return False

    def exit(self, intent: Intent, why: str) -> None:
        """Close the held contracts at a marketable price, keeping the stop live until the exit fills."""
        contract = self.rt.contracts.get(intent.contract)
        if contract is None:
            self.needs_reconcile.set()
            return
        t = self.rt.tickers.get(contract.conId) or self.ticker(contract)
        price = (t.bid if intent.sign > 0 else t.ask) if _two_sided(t) else None
        if price is None:
            price = 0.01 if intent.sign > 0 else max(intent.take_profit, intent.limit) * 2
        marketable = to_tick(price * (0.95 if intent.sign > 0 else 1.05), -intent.sign)
        intent = replace(intent, exit_reason=why)
        tp = intent.current("tp")
        if tp is not None and tp.live and (tp.parent_id == 0 or self._entry_filled(intent)):
            new = replace(tp, limit=marketable)
            intent = self.commit(machine.replace_order(intent, tp, new), f"{why}: take-profit to {marketable}")
            self.modify(intent, contract, new)
            return
        order_id = self.ib.client.getReqId()
        p = closing_order(intent, intent.open_qty, marketable, order_id)
        stop = intent.current("stop")
        if stop is not None and stop.live and stop.oca_group:
            p = Placement(replace(p.order, oca_group=stop.oca_group), True, 3)
        intent = self.commit(replace(intent, orders=(*intent.orders, p.order)), f"{why}: closing order")
        self.send(intent, contract, [p])

    @staticmethod
    def _entry_filled(intent: Intent) -> bool:
        entry = intent.current("entry")
        return entry is not None and entry.status == "Filled"

    # --- views for the pre-trade check ---------------------------------------------------------------

    def positions_view(self) -> list[Any]:
        return list(self.records.positions().values())

    def open_entries(self) -> dict[tuple[str, str], int]:
        """Working orders per (underlying, side), for OPEN_ORDERS_PER_SIDE (recounted after any change)."""
        if self._open_counts is None:
            out: dict[tuple[str, str], int] = {}
            for intent in self.intents.values():
                for o in intent.orders:
                    if o.live:
                        out[(intent.symbol, o.action)] = out.get((intent.symbol, o.action), 0) + 1
            self._open_counts = out
        return dict(self._open_counts)

    def msgs_last_s(self) -> int:
        cutoff = clocks.monotonic() - 1.0
        while self.msgs and self.msgs[0] < cutoff:
            self.msgs.popleft()
        return len(self.msgs)

    def halt(self, request_id: str) -> int:
        """`qc risk halt`: cancel qc's working entries (stops and take-profits stay), return how many."""
        n = 0
        for intent in list(self.intents.values()):
            for leg in intent.live_orders("entry"):
                self.cancel(intent, leg)
                n += 1
        log.warning("execute: halt %s: %d working entries cancelled; protective orders kept", request_id, n)
        return n


def _two_sided(t: Ticker) -> bool:
    return bool(t.bid == t.bid and t.ask == t.ask and t.bid > 0 and t.ask >= t.bid)


def _rejected_by_error(trade: Trade) -> bool:
    return any(e.errorCode in FAIL_CODES for e in trade.log)


def _last_error(trade: Trade) -> tuple[int, str]:
    for e in reversed(trade.log):
        if e.errorCode:
            return e.errorCode, e.message
    return 0, trade.orderStatus.status
