"""The out-of-band kill switch: stop qc's new risk at the broker even when `qc execute` is hung or gone.

`qc risk halt` latches HALTED first (so nothing new is approved), then asks the executor to act
(``keys.risk_halt_request``) and waits a few seconds for its acknowledgement
(``keys.execute_halt_ack``). Without one it does the executor's job itself:

1. **Fence**: bump the executor's fencing token (``qc.runtime.fence``), so an executor that wakes up
   refuses its own next write, and end the process registered for it (SIGKILL, this host only: a
   hung process does not run a SIGTERM handler; a stopped one does not even receive it).
2. **Cancel entries as the executor**: IB lets only the client that placed an order cancel it (a
   master client id only sees it), so connect with the executor's client id (free once its process
   is gone), and cancel each working order whose reference parses as qc's **entry** leg
   (``qc.core.order_ref``). Protective stops and take-profits stay, and so does every order that is
   not qc's (manual, another system's). A global cancel is never sent: it would strip positions of
   their stops.

ib_async is used unmodified through its synchronous API; the time budget is one deadline for the
whole cancel, passed in.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ib_async import IB, Trade

from qc.core import clock, keys, order_ref
from qc.core.codec import Absent
from qc.risk.codec import HaltRequest
from qc.runtime import fence
from qc.runtime.codec import WorkerEntry
from qc.runtime.liveness import process_gone
from qc.runtime.store import Store

log = logging.getLogger(__name__)

EXECUTOR = "execute"  # the executor's name in the worker registry
DONE = frozenset({"Cancelled", "ApiCancelled", "Filled", "Inactive"})
FIRST_ATTEMPT_S = 1.0


def request_halt(store: Store, account: str, by: str, reason: str, now: datetime) -> HaltRequest:
    """Publish a halt request the executor acknowledges by writing its id to ``execute_halt_ack``."""
    request = HaltRequest(f"{int(now.timestamp() * 1000)}-{secrets.token_hex(4)}", now, by, reason)
    store.set(keys.risk_halt_request(account), request.to_redis())
    return request


def wait_ack(store: Store, account: str, request_id: str, timeout_s: float,
             sleep: Callable[[float], object] = clock.real_sleep) -> float | None:
    """Seconds until the executor acknowledged ``request_id``, or None if it did not within ``timeout_s``."""
    start = clock.monotonic()
    while True:
        if store.get(keys.execute_halt_ack(account)) == request_id:
            return clock.monotonic() - start
        if clock.monotonic() - start >= timeout_s:
            return None
        sleep(0.05)


@dataclass(frozen=True, slots=True)
class Executor:
    """Where the executor runs, as the fence or the worker registry names it."""

    pid: int
    host: str
    client_id: int | None


def registered_executor(store: Store, account: str) -> Executor | None:
    """The process holding the account's fence, else the `execute` worker in the registry, else None."""
    held = fence.holder(store, account)
    if isinstance(held, fence.FenceHolder) and held.pid:
        return Executor(held.pid, held.host, held.client_id)
    if isinstance(held, Absent):
        log.error("%s", held)
    entry = WorkerEntry.from_redis(store.hget(keys.worker_registry(), EXECUTOR), key=keys.worker_registry().name)
    if isinstance(entry, WorkerEntry):
        return Executor(entry.pid, entry.host, None)
    return None


def end_process(executor: Executor, timeout_s: float) -> str:
    """SIGKILL the executor if it runs on this host; say what happened in one line."""
    if executor.host != socket.gethostname():
        return f"executor pid {executor.pid} runs on {executor.host}, not here: stop it there (its token is stale)"
    if executor.pid == os.getpid() or process_gone(executor.pid):
        return f"executor pid {executor.pid} not running"
    try:
        os.kill(executor.pid, signal.SIGKILL)
    except ProcessLookupError:
        return f"executor pid {executor.pid} not running"
    except PermissionError:
        return f"executor pid {executor.pid}: not allowed to signal it (run halt as its user)"
    deadline = clock.monotonic() + timeout_s
    while not process_gone(executor.pid):
        if clock.monotonic() >= deadline:
            return f"executor pid {executor.pid} killed but still present after {timeout_s:g} s"
        clock.real_sleep(0.02)
    return f"executor pid {executor.pid} killed"


@dataclass
class CancelReport:
    """What the kill switch found at the broker and did."""

    cancelled: list[str] = field(default_factory=list)       # qc entries now cancelled
    filled: list[str] = field(default_factory=list)          # qc entries that filled before the cancel landed
    kept: list[str] = field(default_factory=list)            # qc protective legs left working
    foreign: list[str] = field(default_factory=list)         # not qc's: never touched
    failed: list[str] = field(default_factory=list)          # qc entries still working at the deadline
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not self.failed


def label(trade: Trade) -> str:
    o, c = trade.order, trade.contract
    what = c.localSymbol or c.symbol
    return f"#{o.orderId} {o.action} {o.totalQuantity:g} {what} {o.orderType} ref={o.orderRef or '-'}"


def connect_as(host: str, port: int, client_id: int, deadline: float) -> IB:
    """Connect as ``client_id``, retrying while the gateway still holds it for the connection just ended.

    A refused id (326) closes the socket, but ib_async only gives up on its connect timeout, so the
    attempts start short and double (1 s, 2 s, 4 s …, never past ``deadline``): a gateway slow to
    notice the killed executor's socket costs one short attempt, a slow but healthy connect gets the
    longer ones.
    """
    last: Exception | None = None
    attempt_s = FIRST_ATTEMPT_S
    while (left := deadline - clock.monotonic()) > 0:
        ib = IB()
        ib.RequestTimeout = max(0.5, left)
        try:
            ib.connect(host, port, clientId=client_id, timeout=max(0.5, min(attempt_s, left)), readonly=False,
                       raiseSyncErrors=True)
            return ib
        except (ConnectionError, OSError, TimeoutError) as exc:
            last = exc
            ib.disconnect()
            attempt_s *= 2
            clock.real_sleep(0.1)
    raise ConnectionError(f"could not connect to IB at {host}:{port} as client id {client_id}: "
                          f"{type(last).__name__ if last else 'no time left'} {last or ''}".rstrip())


def cancel_entries(host: str, port: int, client_id: int, account: str | None, symbol: str | None,
                   deadline: float) -> CancelReport:
    """Connect as ``client_id`` and cancel its working qc entry orders (of ``symbol`` only, if given)."""
    try:
        ib = connect_as(host, port, client_id, deadline)
    except ConnectionError as exc:
        return CancelReport(error=str(exc))
    try:
        return cancel_entries_on(ib, account, symbol, deadline)
    finally:
        ib.disconnect()


def ours(trade: Trade, account: str | None, symbol: str | None = None) -> bool:
    """In scope: the account (when the gateway serves several) and the underlying (when one is named)."""
    if account and trade.order.account and trade.order.account != account:
        return False
    return not symbol or trade.contract.symbol == symbol


def cancel_entries_on(ib: IB, account: str | None, symbol: str | None, deadline: float) -> CancelReport:
    """Cancel every working qc entry order of this connection's client; leave stops and foreign orders.

    ``account`` filters when the gateway serves several accounts.
    """
    report = CancelReport()
    entries: list[Trade] = []
    protective: list[Trade] = []
    for trade in ib.openTrades():
        if not ours(trade, account, symbol):
            continue
        ref = order_ref.parse(trade.order.orderRef)
        if ref is None:
            report.foreign.append(label(trade))
        elif ref.leg == "entry":
            entries.append(trade)
            ib.cancelOrder(trade.order)
        else:
            protective.append(trade)
    wait_done(ib, entries, deadline)
    for trade in entries:
        status = trade.orderStatus.status
        bucket = report.filled if status == "Filled" else report.cancelled if status in DONE else report.failed
        bucket.append(f"{label(trade)} {status}")
    report.kept.extend(label(t) for t in protective if t.orderStatus.status not in DONE)
    return report


def wait_done(ib: IB, trades: list[Trade], deadline: float) -> None:
    """Run the client until every trade is done (filled, cancelled, inactive) or the deadline passes."""
    while any(t.orderStatus.status not in DONE for t in trades) and clock.monotonic() < deadline:
        ib.sleep(0.05)
