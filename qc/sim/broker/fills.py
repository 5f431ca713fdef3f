"""Executions: ids, commissions, booking into the ledger, and the since-midnight execution log.

reqExecutions answers only with today's executions, "today" starting at midnight New York
(ib-api-protocol.md §11; ib_insync#483); each row is replayed with its commission report right
behind it (§6). execIds follow IB's shape ``0000e0d5.6565f2a1.01.01``: a session prefix, a
counter and the two trailing fields IB uses for the first correction of a single-leg fill.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime, time

from qc.core.clock import NEW_YORK
from qc.sim.broker.account import CURRENCY, CommissionSchedule, Ledger
from qc.sim.broker.orders import ContractKey, OrderRecord
from qc.sim.broker.reports import (
    AccountChanged,
    BrokerEvent,
    CommissionReport,
    CommissionReported,
    Execution,
    ExecutionRecord,
    ExecutionReported,
    OrderStateChanged,
    PositionChanged,
)

_SIDES = {"BUY": "BOT", "SELL": "SLD", "BOT": "BOT", "SLD": "SLD"}


def midnight_new_york(now: datetime) -> datetime:
    """Start of the trading day ``now`` falls in, as IB's execution log counts it."""
    return datetime.combine(now.astimezone(NEW_YORK).date(), time(0), NEW_YORK)


def venue(is_option: bool) -> str:
    """The exchange an execution reports: SMART routes options to CBOE and ETFs to ARCA here."""
    return "CBOE" if is_option else "ARCA"


class FillBook:
    """Turns (order, quantity, price, time) into an execution + commission and books it."""

    def __init__(self, ledger: Ledger, schedule: CommissionSchedule, session_prefix: int, first_exec: int) -> None:
        self._ledger = ledger
        self._schedule = schedule
        self._prefix = session_prefix
        self._next_exec = first_exec
        self._charged: dict[int, float] = {}
        self._notional: dict[int, float] = {}
        self._log: list[ExecutionRecord] = []

    def _exec_id(self) -> str:
        exec_id = f"{self._prefix:08x}.{self._next_exec:08x}.01.01"
        self._next_exec += 1
        return exec_id

    def book(self, order: OrderRecord, quantity: float, price: float, now: datetime) -> ExecutionRecord:
        """Record the fill ``order.record_fill`` has just applied, charge it and move cash/positions."""
        req = order.request
        exec_id = self._exec_id()
        notional = self._notional.get(order.perm_id, 0.0) + quantity * price * req.contract.multiplier
        total = self._schedule.order_total(req.contract, order.filled, notional)
        commission = max(total - self._charged.get(order.perm_id, 0.0), 0.0)
        self._notional[order.perm_id] = notional
        self._charged[order.perm_id] = self._charged.get(order.perm_id, 0.0) + commission
        realized = self._ledger.apply_fill(req.account, req.contract, req.sign * quantity, price, commission)
        execution = Execution(
            exec_id=exec_id, order_id=req.order_id, client_id=req.client_id, perm_id=order.perm_id,
            account=req.account, contract=req.contract, time=now, exchange=venue(req.contract.is_option),
            side=_SIDES[req.action], shares=quantity, price=price, cum_qty=order.filled,
            avg_price=order.avg_fill_price, order_ref=req.order_ref,
        )
        record = ExecutionRecord(execution, CommissionReport(exec_id, commission, CURRENCY, realized))
        self._log.append(record)
        return record

    def book_settlement(self, account: str, contract: ContractKey, signed_qty: float, price: float,
                        now: datetime) -> ExecutionRecord:
        """Book one leg of an expiry settlement (no order behind it): orderId, permId and clientId 0,
        empty orderRef, no commission. It joins the log, so reqExecutions replays it that day."""
        exec_id = self._exec_id()
        realized = self._ledger.apply_fill(account, contract, signed_qty, price, 0.0)
        shares = abs(signed_qty)
        execution = Execution(
            exec_id=exec_id, order_id=0, client_id=0, perm_id=0, account=account, contract=contract, time=now,
            exchange=venue(contract.is_option), side="BOT" if signed_qty > 0 else "SLD", shares=shares,
            price=price, cum_qty=shares, avg_price=price, order_ref="",
        )
        record = ExecutionRecord(execution, CommissionReport(exec_id, 0.0, CURRENCY, realized))
        self._log.append(record)
        return record

    def all_records(self) -> list[ExecutionRecord]:
        """Every execution booked since the broker started, oldest first (``qc sim ctl executions``)."""
        return list(self._log)

    def query(
        self, now: datetime, *, client_id: int | None = None, account: str | None = None,
        since: datetime | None = None, symbol: str | None = None, sec_type: str | None = None,
        side: str | None = None,
    ) -> list[ExecutionRecord]:
        """reqExecutions with IB's ExecutionFilter: an empty/zero field matches everything; ``side``
        takes BUY/SELL (or BOT/SLD); nothing before midnight New York of ``now`` is returned."""
        start = midnight_new_york(now)
        if since is not None and since > start:
            start = since
        wanted_side = _SIDES.get(side.upper()) if side else None
        return [r for r in self._select(self._log, client_id, account, symbol, sec_type, wanted_side)
                if start <= r.execution.time <= now]

    @staticmethod
    def _select(records: Iterable[ExecutionRecord], client_id: int | None, account: str | None,
                symbol: str | None, sec_type: str | None, side: str | None) -> Iterable[ExecutionRecord]:
        for r in records:
            e = r.execution
            if client_id and e.client_id != client_id:
                continue
            if account and e.account != account:
                continue
            if symbol and e.contract.symbol != symbol:
                continue
            if sec_type and e.contract.sec_type != sec_type:
                continue
            if side and e.side != side:
                continue
            yield r


class PartialSwitch:
    """The partial-fill fault switch: armed once, it shortens exactly one fill."""

    def __init__(self) -> None:
        self._armed: tuple[float | None, float | None] | None = None

    def arm(self, fraction: float | None, quantity: float | None) -> None:
        if (fraction is None) == (quantity is None):
            raise ValueError("give exactly one of fraction or quantity")
        self._armed = (fraction, quantity)

    def take(self, remaining: float) -> float:
        """How much of ``remaining`` the next fill takes; disarms the switch."""
        if self._armed is None:
            return remaining
        (fraction, quantity), self._armed = self._armed, None
        part = quantity if quantity is not None else math.floor(remaining * (fraction or 0.0))
        return part if 0 < part < remaining else remaining


def fill_events(
    order: OrderRecord, record: ExecutionRecord, state: OrderStateChanged, ledger: Ledger
) -> list[BrokerEvent]:
    """One fill's messages in IB's order (ib-api-protocol.md §6): execDetails, then openOrder +
    orderStatus, then commissionReport (ib_async links it through the permId the openOrder
    taught it), then the position and account updates."""
    req = order.request
    return [
        ExecutionReported(req.client_id, req.account, record.execution),
        state,
        CommissionReported(req.client_id, req.account, record.commission),
        PositionChanged(req.client_id, req.account, ledger.row(req.account, req.contract.con_id)),
        AccountChanged(req.client_id, req.account, ledger.values(req.account)),
    ]
