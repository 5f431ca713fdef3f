"""The dashboard's halt, resume and flatten: the same steps as `qc risk halt|resume|flatten --confirm`, as JSON.

The work is qc.risk's own (``qc.risk.cycle.operator`` and ``flatten``), called exactly as the commands call
it; this module only validates the request body and turns each outcome into a document the page shows.
Everything here blocks (Redis, the broker): the server runs it on a thread of its own, one action at a time.

An action that did all it should answers ``ok: true`` (HTTP 200). One that latched the state but could not
finish at the broker (entries still working, IB unreachable, outside regular hours for a close) answers
``ok: false`` with a one-line ``error`` saying what is left to do (HTTP 502), like the command's exit 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qc.core.clock import Clock
from qc.core.config import SYMBOL_RE, Settings
from qc.core.errors import ConfigError
from qc.runtime.store import Store

ACTIONS = ("halt", "resume", "flatten")
ACCOUNT_SCOPE = "account"
MAX_REASON_LEN = 500
OK, PARTIAL = 200, 502


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A validated request: which action, for which scope, why, from whom (``dashboard@<peer address>``)."""

    action: str
    scope: str  # "account" or an underlying of QC_SYMBOLS
    reason: str
    by: str


def parse(action: str, body: Any, symbols: Sequence[str], by: str) -> ActionRequest:
    """Validate a POSTed body (``reason``, optional ``symbol``); ConfigError names the bad field and the fix.

    The operator token is the server's to check; unknown fields are ignored.
    """
    if action not in ACTIONS:
        raise ConfigError("action", f"{action!r} is not one of {', '.join(ACTIONS)}", "POST /api/actions/halt")
    if not isinstance(body, dict):
        raise ConfigError("body", "not a JSON object", 'send {"reason": "…", "operator_token": "…"}')
    reason = body.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise ConfigError("reason", f"must be a string, got {type(reason).__name__}", 'e.g. "reason": "vol spike"')
    reason = reason.strip()
    if len(reason) > MAX_REASON_LEN:
        raise ConfigError("reason", f"{len(reason)} characters, at most {MAX_REASON_LEN}", "say it shorter")
    if action == "resume" and not reason:
        raise ConfigError("reason", "empty", "say why trading may resume (it is logged with the transition)")
    return ActionRequest(action, _scope(action, body.get("symbol"), symbols), reason, by)


def _scope(action: str, symbol: Any, symbols: Sequence[str]) -> str:
    if symbol is None or symbol == "":
        return ACCOUNT_SCOPE
    if not isinstance(symbol, str):
        raise ConfigError("symbol", f"must be a string, got {type(symbol).__name__}", 'e.g. "symbol": "SPY"')
    if action == "flatten":
        raise ConfigError("symbol", "flatten closes every qc position of the account", "leave symbol out")
    sym = symbol.strip().upper()
    if not SYMBOL_RE.match(sym):
        raise ConfigError("symbol", f"{symbol!r} is not a ticker", 'e.g. "symbol": "SPY"')
    if sym not in symbols:
        raise ConfigError("symbol", f"{sym} is not in QC_SYMBOLS ({','.join(symbols)})", "name an underlying qc trades")
    return sym


class Actions:
    """Run one operator action against Redis and the broker; the answer's HTTP status and JSON document."""

    def __init__(self, store: Store, settings: Settings, account: str, clock: Clock, flatten_budget_s: float) -> None:
        self.store = store
        self.settings = settings
        self.account = account
        self.clock = clock
        self.flatten_budget_s = flatten_budget_s

    def run(self, request: ActionRequest) -> tuple[int, dict[str, Any]]:
        now = self.clock.now()
        if request.action == "halt":
            return self._halt(request, now)
        if request.action == "resume":
            return self._resume(request, now)
        return self._flatten(request, now)

    def _halt(self, request: ActionRequest, now: datetime) -> tuple[int, dict[str, Any]]:
        from qc.risk.cycle import operator

        s = self.settings
        broker = operator.Broker(s.ib_host, s.ib_port, s.execute_client_id, s.ib_account or None)
        outcome = operator.halt(self.store, self.account, request.scope, request.by, request.reason, now, broker,
                                s.risk_halt_ack_s)
        t = outcome.transition
        was = "HALTED" if t is None else t.before.state.name
        doc: dict[str, Any] = {"action": "halt", "scope": request.scope, "state": "HALTED", "was": was,
                               "acknowledged_s": outcome.ack_s, "fence_token": outcome.token,
                               "process": outcome.process or None}
        head = f"{request.scope}: HALTED" + (f" (was {was})" if t else " (already HALTED)")
        if outcome.ack_s is not None:
            doc["message"] = (f"{head}; qc execute acknowledged in {outcome.ack_s:.1f} s: it cancels its entries "
                              "and sends nothing new")
            return OK, {"ok": True, **doc}
        cancel = outcome.cancel
        assert cancel is not None  # no acknowledgement: halt always cancels as the executor
        doc.update(cancelled=cancel.cancelled, filled=cancel.filled, kept=cancel.kept, foreign=cancel.foreign,
                   still_working=cancel.failed)
        doc["message"] = (f"{head}; qc execute did not acknowledge within {s.risk_halt_ack_s:g} s; "
                          f"{len(cancel.cancelled)} entry order(s) cancelled, {len(cancel.kept)} protective left "
                          "working; restart qc execute only after resume")
        if cancel.error:
            error = (f"entries not cancelled: {cancel.error} (the state is HALTED; cancel qc's entry orders in TWS, "
                     "or free the executor's client id and halt again)")
            return PARTIAL, {"ok": False, "error": error, **doc}
        if cancel.failed:
            error = (f"{len(cancel.failed)} entry order(s) still working after {operator.CANCEL_BUDGET_S:g} s "
                     "(the state is HALTED; halt again or cancel them in TWS)")
            return PARTIAL, {"ok": False, "error": error, **doc}
        return OK, {"ok": True, **doc}

    def _resume(self, request: ActionRequest, now: datetime) -> tuple[int, dict[str, Any]]:
        from qc.risk.cycle import operator

        t = operator.resume_trading(self.store, self.account, request.scope, request.by, request.reason, now)
        doc: dict[str, Any] = {"ok": True, "action": "resume", "scope": request.scope, "state": "ACTIVE",
                               "was": "ACTIVE" if t is None else t.before.state.name}
        if t is None:
            doc["message"] = f"{request.scope}: already ACTIVE"
        else:
            doc["message"] = (f"{request.scope}: ACTIVE (was {t.before.state.name}: {t.before.cause} "
                              f"by {t.before.by})")
        return OK, doc

    def _flatten(self, request: ActionRequest, now: datetime) -> tuple[int, dict[str, Any]]:
        from qc.risk.cycle import flatten
        from qc.risk.cycle.inputs import RiskInputs

        s = self.settings
        records = RiskInputs(self.store, self.account).positions()
        report = flatten.flatten(self.store, self.account, request.by, request.reason, now, s.ib_host, s.ib_port,
                                 s.execute_client_id, s.ib_account or None, records,
                                 budget_s=self.flatten_budget_s)
        was = "HALTED" if report.transition is None else report.transition.before.state.name
        doc: dict[str, Any] = {
            "action": "flatten", "scope": ACCOUNT_SCOPE, "state": "HALTED", "was": was, "process": report.process,
            "positions": [f"{r.position.contract.describe()} {r.position.quantity:+d} (conId {r.con_id})"
                          for r in records],
            "cancelled": report.cancel.cancelled, "closed": report.closed,
            "protective_cancelled": report.protective_cancelled, "not_closed": report.not_closed,
            "still_working": report.cancel.failed, "skipped": report.skipped or None,
            "message": f"account: HALTED (was {was}); {len(report.closed)} of {len(records)} position(s) closed",
        }
        error = None
        if report.cancel.error:
            error = (f"could not reach IB as the executor: {report.cancel.error} (the state is HALTED; "
                     "close the positions in TWS)")
        elif report.skipped:
            error = f"{report.skipped} (the state is HALTED; flatten again in regular hours)"
        elif not report.ok:
            error = ("flatten incomplete (see not_closed / still_working; the state is HALTED: run it again or "
                     "finish in TWS)")
        if error:
            return PARTIAL, {"ok": False, "error": error, **doc}
        return OK, {"ok": True, **doc}
