"""`qc risk flatten`: halt, take over from the executor, and close qc's positions with marketable limits.

Flatten is the emergency path, so it does not wait for `qc execute`: it latches HALTED, fences the
executor off and ends its process, then connects as the executor's client id (only the placing
client can cancel qc's orders) and:

1. cancels qc's working entry orders (as halt does);
2. inside regular trading hours only (an option's marketable limit outside them rests unfilled or
   fills far from value), closes each of qc's positions, the smaller of qc's quantity and the
   broker's for that conId (never more than qc holds, never more than the broker shows), with a
   limit at the touch (sell at the bid, buy at the ask) from IB's own quote, under an ``exit`` order
   reference;
3. once a position is flat, cancels its protective stop and take-profit. Never before: a position
   whose close does not fill keeps its stop (the report says so); cancelling first would leave it
   naked.

A global cancel is never sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from ib_async import IB, Contract, LimitOrder, Trade

from qc.core import clock, order_ref
from qc.core.order_ref import OrderRef
from qc.risk.cycle import killswitch, latches
from qc.risk.cycle.killswitch import CancelReport
from qc.risk.position_codec import PositionRecord
from qc.risk.state import Latch, TradingState, escalate
from qc.runtime import fence
from qc.runtime.store import Store

OPERATOR_FLATTEN = "operator_flatten"


@dataclass
class FlattenReport:
    transition: latches.Transition | None = None
    process: str = ""
    cancel: CancelReport = field(default_factory=CancelReport)
    closed: list[str] = field(default_factory=list)
    not_closed: list[str] = field(default_factory=list)   # still open: their stops kept
    protective_cancelled: list[str] = field(default_factory=list)
    skipped: str = ""                                      # why nothing was closed (outside hours, ...)

    @property
    def ok(self) -> bool:
        return self.cancel.ok and not self.not_closed and not self.skipped


@dataclass(frozen=True, slots=True)
class Close:
    """One closing order to send: qc's record, the broker's contract, the side and size."""

    record: PositionRecord
    contract: Contract
    action: str
    quantity: int


def plan(records: list[PositionRecord], broker_positions: dict[int, tuple[Contract, float]]) -> tuple[
        list[Close], list[str]]:
    """What to close: qc's quantity capped by the broker's, same sign only; the rest is explained."""
    closes: list[Close] = []
    problems: list[str] = []
    for rec in records:
        qty = rec.position.quantity
        held = broker_positions.get(rec.con_id)
        what = rec.position.contract.describe()
        if qty == 0:
            continue
        if held is None or held[1] == 0 or (held[1] > 0) != (qty > 0):
            problems.append(f"{what}: qc holds {qty:+d}, the broker {0 if held is None else held[1]:+g}; not closed")
            continue
        size = int(min(abs(qty), abs(held[1])))
        closes.append(Close(rec, held[0], "SELL" if qty > 0 else "BUY", size))
    return closes, problems


def _touch(ib: IB, closes: list[Close]) -> dict[int, float]:
    """The price that crosses: the bid for a sell, the ask for a buy, from one snapshot of each contract."""
    tickers = ib.reqTickers(*[c.contract for c in closes])
    by_con = {t.contract.conId: t for t in tickers if t.contract is not None}
    out: dict[int, float] = {}
    for c in closes:
        t = by_con.get(c.contract.conId)
        price = None if t is None else (t.bid if c.action == "SELL" else t.ask)
        if price is not None and math.isfinite(price) and price > 0:
            out[c.contract.conId] = price
    return out


def flatten(store: Store, account: str, by: str, reason: str, now: datetime, host: str, port: int,
            executor_client_id: int, ib_account: str | None, records: list[PositionRecord],
            budget_s: float) -> FlattenReport:
    report = FlattenReport()
    operator = f"operator:{by}"
    text = reason.strip() or "flatten"

    def to_halted(current: Latch) -> Latch:
        return escalate(current, TradingState.HALTED, OPERATOR_FLATTEN, operator, text, now)

    report.transition = latches.update(store, account, latches.ACCOUNT_SCOPE, to_halted, now)
    deadline = clock.monotonic() + budget_s
    fence.bump(store, account, by=operator, now_epoch=now.timestamp())
    executor = killswitch.registered_executor(store, account)
    report.process = ("no executor registered" if executor is None
                      else killswitch.end_process(executor, timeout_s=2.0))
    try:
        ib = killswitch.connect_as(host, port, executor_client_id, deadline)
    except ConnectionError as exc:
        report.cancel = CancelReport(error=str(exc))
        return report
    try:
        report.cancel = killswitch.cancel_entries_on(ib, ib_account, None, deadline)
        if not clock.is_market_open(now):
            report.skipped = "outside regular trading hours: positions left open with their stops"
            return report
        _close(ib, report, records, ib_account, now, deadline)
    finally:
        ib.disconnect()
    return report


def _close(ib: IB, report: FlattenReport, records: list[PositionRecord], ib_account: str | None, now: datetime,
           deadline: float) -> None:
    """Close what qc holds at the touch; cancel the protective legs of what is then flat."""
    broker = {p.contract.conId: (p.contract, p.position) for p in ib.positions()
              if not ib_account or p.account == ib_account}
    closes, problems = plan(records, broker)
    report.not_closed.extend(problems)
    for c in closes:
        c.contract.exchange = "SMART"
    prices = _touch(ib, closes) if closes else {}
    sent: list[tuple[Close, Trade]] = []
    stamp = f"flat{int(now.timestamp())}"
    for c in closes:
        price = prices.get(c.contract.conId)
        if price is None:
            report.not_closed.append(f"{c.record.position.contract.describe()}: no two-sided quote; stop kept")
            continue
        order = LimitOrder(c.action, c.quantity, price, orderRef=str(OrderRef(stamp, "exit")), tif="DAY")
        if ib_account:
            order.account = ib_account
        sent.append((c, ib.placeOrder(c.contract, order)))
    killswitch.wait_done(ib, [t for _, t in sent], deadline)
    unfilled = [t for _, t in sent if t.orderStatus.status not in killswitch.DONE]
    for trade in unfilled:  # a resting exit beside a live stop could sell twice: take it back
        ib.cancelOrder(trade.order)
    killswitch.wait_done(ib, unfilled, clock.monotonic() + 2.0)
    flat: set[int] = set()
    for c, trade in sent:
        filled = trade.orderStatus.filled
        line = f"{killswitch.label(trade)} at {trade.order.lmtPrice:g}: {trade.orderStatus.status}"
        if trade.orderStatus.status == "Filled":
            report.closed.append(line)
            flat.add(c.contract.conId)
        elif filled:
            report.not_closed.append(f"{line}, {filled:g} of {c.quantity} filled; the stop still covers the "
                                     "original quantity: review it")
        else:
            report.not_closed.append(f"{line}; stop kept")
    protective = [t for t in ib.openTrades() if t.contract.conId in flat and killswitch.ours(t, ib_account)
                  and (ref := order_ref.parse(t.order.orderRef)) is not None and ref.protective]
    for trade in protective:
        ib.cancelOrder(trade.order)
    killswitch.wait_done(ib, protective, deadline)
    report.protective_cancelled.extend(f"{killswitch.label(t)} {t.orderStatus.status}" for t in protective)
