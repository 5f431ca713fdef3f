"""What `qc risk halt` and `qc risk resume` do, step by step; the command only prints the outcome.

Halt order matters: the latch first (from that instant nothing new is approved, whatever else
fails), then the request to the executor, then, only without an acknowledgement, the fence and the
cancel as the executor (``killswitch``). Resume only lowers a latch; it never restarts an executor
that halt ended (an operator does, after looking).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from qc.core import clock
from qc.risk.cycle import killswitch, latches
from qc.risk.cycle.killswitch import CancelReport
from qc.risk.state import Latch, TradingState, escalate, resume
from qc.runtime import fence
from qc.runtime.store import Store

OPERATOR_HALT = "operator_halt"
CANCEL_BUDGET_S = 5.0


@dataclass(frozen=True, slots=True)
class Broker:
    """Where the kill switch reaches IB, as whom."""

    host: str
    port: int
    executor_client_id: int
    account: str | None  # the IB account code, None: every account of the connection


@dataclass
class HaltOutcome:
    scope: str
    transition: latches.Transition | None      # None: it was HALTED already
    request_id: str
    ack_s: float | None                        # the executor acknowledged after this long
    token: int | None = None                   # the fencing token halt bumped to
    process: str = ""                          # what happened to the executor's process
    cancel: CancelReport | None = None

    @property
    def ok(self) -> bool:
        return self.ack_s is not None or (self.cancel is not None and self.cancel.ok)


def halt(store: Store, account: str, scope: str, by: str, reason: str, now: datetime, broker: Broker,
         ack_s: float, cancel_budget_s: float = CANCEL_BUDGET_S) -> HaltOutcome:
    """Latch HALTED, ask the executor, and if it is silent fence it off and cancel its entries."""
    operator = f"operator:{by}"
    text = reason.strip() or "no reason given"

    def to_halted(current: Latch) -> Latch:
        return escalate(current, TradingState.HALTED, OPERATOR_HALT, operator, text, now)

    transition = latches.update(store, account, scope, to_halted, now)
    request = killswitch.request_halt(store, account, by, text, now)
    acked = killswitch.wait_ack(store, account, request.id, ack_s)
    outcome = HaltOutcome(scope, transition, request.id, acked)
    if acked is not None:
        return outcome
    deadline = clock.monotonic() + cancel_budget_s
    if scope == latches.ACCOUNT_SCOPE:
        outcome.token = fence.bump(store, account, by=operator, now_epoch=now.timestamp())
        executor = killswitch.registered_executor(store, account)
        outcome.process = ("no executor registered" if executor is None
                           else killswitch.end_process(executor, timeout_s=min(2.0, cancel_budget_s / 2)))
    else:
        outcome.process = "executor left running (halt of one underlying): its entries in it are cancelled"
    outcome.cancel = killswitch.cancel_entries(broker.host, broker.port, broker.executor_client_id, broker.account,
                                               None if scope == latches.ACCOUNT_SCOPE else scope, deadline)
    return outcome


def resume_trading(store: Store, account: str, scope: str, by: str, reason: str,
                   now: datetime) -> latches.Transition | None:
    """Lower the scope's latch to ACTIVE with the operator's reason (ValueError without one)."""
    if not reason.strip():
        raise ValueError("--reason: say why trading may resume (it is logged with the transition)")
    return latches.update(store, account, scope, lambda current: resume(current, by, reason, now), now)
