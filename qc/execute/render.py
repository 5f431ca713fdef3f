"""Tables and JSON for `qc positions | orders | fills` and the executor's lines of `qc status`.

Pure: values in, rows and documents out (``emit_table`` prints them with tabulate). Money is $,
prices $ per share, times shown in New York and given in JSON as ISO-8601 with their zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qc.core import clock
from qc.core.codec import Absent
from qc.execute.model import Fill, Intent, LegOrder
from qc.risk.model import ContractKey
from qc.risk.position_codec import PositionRecord
from qc.signals.codec import Signal

if TYPE_CHECKING:  # the snapshot module loads numpy: `qc status` imports this module and must not
    from qc.risk.snapshot import PositionView


@dataclass(frozen=True)
class PositionLine:
    """One open (or, kept for today's realised P&L, flat) position with its mark and the intents holding it."""

    record: PositionRecord
    view: PositionView | None          # the `qc risk` snapshot's line (mark, unrealised), None without one
    intents: tuple[Intent, ...]        # open intents on this conId


@dataclass(frozen=True)
class Positions:
    account: str
    as_of: datetime
    lines: tuple[PositionLine, ...]
    locked: dict[int, str]
    marks_as_of: datetime | None       # the exposure snapshot's time (None: no snapshot)
    marks_problem: str                 # why there are no marks ("" when there are)
    flat_hidden: int                   # flat positions left out (shown with --all)
    unreadable: tuple[str, ...] = ()   # keys that did not decode, with why


@dataclass(frozen=True)
class IntentDetail:
    """``qc orders ID``: the intent, its fills, the signal behind it (or why it is not there)."""

    intent: Intent
    fills: tuple[Fill, ...]
    signal: Signal | Absent


@dataclass(frozen=True)
class Intents:
    intents: tuple[Intent, ...]
    unreadable: tuple[str, ...] = field(default=())


def _ny(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(clock.NEW_YORK).strftime("%Y-%m-%d %H:%M:%S")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _money(x: float | None) -> str:
    return "" if x is None else f"{x:+,.2f}"


def _price(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def realised_usd(i: Intent) -> float:
    """What the intent realised: (exit avg − entry avg) × exit qty × multiplier × sign − commissions."""
    gross = (i.exit_avg - i.entry_avg) * i.exit_qty * i.contract.multiplier * i.sign if i.exit_qty else 0.0
    return round(gross - i.commission_usd, 2)


def contract_doc(c: ContractKey) -> dict[str, Any]:
    return {"describe": c.describe(), "underlying": c.underlying, "sec_type": c.sec_type,
            "expiry": c.expiry.isoformat() if c.expiry else None, "strike": c.strike, "right": c.right,
            "multiplier": c.multiplier}


# --- positions ---------------------------------------------------------------------------------------

POSITIONS_HEADERS = ["conId", "contract", "qty", "avg cost", "mark", "unrealised $", "realised today $", "bucket",
                     "opened (NY)", "held by (signal strategy state @entry)"]
LOCKED_HEADERS = ["conId", "contract", "why locked"]


def _holder(i: Intent) -> str:
    return f"{i.id} {i.strategy} {i.state.value} @{i.entry_avg:.2f}"


def position_rows(lines: Sequence[PositionLine]) -> list[list[str]]:
    rows = []
    for line in lines:
        p, v = line.record.position, line.view
        mark = None if v is None else v.mark
        unrealised = None if v is None else v.unrealised_usd
        rows.append([str(line.record.con_id), p.contract.describe(), f"{p.quantity:+d}", _price(p.avg_cost),
                     _price(mark), _money(unrealised), _money(line.record.realised_today_usd), p.bucket,
                     _ny(line.record.opened), "; ".join(_holder(i) for i in line.intents) or "none (not qc's?)"])
    return rows


def locked_rows(got: Positions) -> list[list[str]]:
    described = {line.record.con_id: line.record.position.contract.describe() for line in got.lines}
    return [[str(c), described.get(c, ""), why] for c, why in got.locked.items()]


def positions_json(got: Positions) -> dict[str, Any]:
    out = []
    for line in got.lines:
        r, v = line.record, line.view
        out.append({
            "con_id": r.con_id, "contract": contract_doc(r.position.contract), "qty": r.position.quantity,
            "avg_cost": r.position.avg_cost, "mark": None if v is None else v.mark,
            "unrealised_usd": None if v is None else v.unrealised_usd, "realised_today_usd": r.realised_today_usd,
            "bucket": r.position.bucket, "opened": _iso(r.opened),
            "intents": [{"id": i.id, "signal_id": i.id, "strategy": i.strategy, "state": i.state.value,
                         "side": i.side, "entry_avg": i.entry_avg, "filled_qty": i.filled_qty,
                         "exit_qty": i.exit_qty, "open_qty": i.open_qty} for i in line.intents],
        })
    return {"account": got.account, "as_of": got.as_of.isoformat(), "marks_as_of": _iso(got.marks_as_of),
            "marks_problem": got.marks_problem, "positions": out, "flat_hidden": got.flat_hidden,
            "locked": [{"con_id": c, "reason": why} for c, why in got.locked.items()],
            "unreadable": list(got.unreadable)}


# --- orders ------------------------------------------------------------------------------------------

ORDERS_HEADERS = ["id", "created (NY)", "symbol", "contract", "side", "qty", "state", "filled @avg", "exited @avg",
                  "realised $", "exit reason"]
LEGS_HEADERS = ["intent", "leg", "attempt", "orderRef", "permId", "status", "type", "action", "qty", "limit",
                "aux", "filled @avg"]
HISTORY_HEADERS = ["at (NY)", "state", "why"]


def _at_avg(qty: int, avg: float) -> str:
    return f"{qty} @{avg:.2f}" if qty else "0"


def order_rows(intents: Sequence[Intent]) -> list[list[str]]:
    return [[i.id, _ny(i.created), i.symbol, i.contract.describe(), i.side, str(i.quantity), i.state.value,
             _at_avg(i.filled_qty, i.entry_avg), _at_avg(i.exit_qty, i.exit_avg), _money(realised_usd(i)),
             i.exit_reason] for i in intents]


def leg_rows(intents: Sequence[Intent]) -> list[list[str]]:
    return [[i.id, o.leg, str(o.attempt), o.order_ref(i.id), str(o.perm_id or ""), o.status or "(unsent)",
             o.order_type, o.action, str(o.quantity), _price(o.limit), _price(o.aux), _at_avg(o.filled, o.avg_price)]
            for i in intents for o in i.orders]


def history_rows(i: Intent) -> list[list[str]]:
    return [[_ny(t.at), t.state.value, t.why] for t in i.history]


def leg_doc(i: Intent, o: LegOrder) -> dict[str, Any]:
    return {"leg": o.leg, "attempt": o.attempt, "order_ref": o.order_ref(i.id), "order_id": o.order_id,
            "perm_id": o.perm_id, "status": o.status, "order_type": o.order_type, "action": o.action,
            "quantity": o.quantity, "limit": o.limit, "aux": o.aux, "filled": o.filled, "avg_price": o.avg_price}


def intent_json(i: Intent) -> dict[str, Any]:
    return {"id": i.id, "account": i.account, "symbol": i.symbol, "strategy": i.strategy, "bucket": i.bucket,
            "contract": contract_doc(i.contract), "con_id": i.con_id, "side": i.side, "quantity": i.quantity,
            "limit": i.limit, "take_profit": i.take_profit, "stop": i.stop, "trail_pct": i.trail_pct,
            "state": i.state.value, "created": i.created.isoformat(), "filled_qty": i.filled_qty,
            "entry_avg": i.entry_avg, "exit_qty": i.exit_qty, "exit_avg": i.exit_avg, "open_qty": i.open_qty,
            "commission_usd": i.commission_usd, "realised_usd": realised_usd(i), "exit_reason": i.exit_reason,
            "reasons": list(i.reasons), "orders": [leg_doc(i, o) for o in i.orders]}


def signal_doc(s: Signal | Absent) -> dict[str, Any]:
    if isinstance(s, Absent):
        return {"absent": str(s)}
    return {"id": s.id, "strategy": s.strategy, "score": s.score, "threshold": s.threshold,
            "created_at": s.created_at.isoformat(), "execution": s.lineage.get("execution"),
            "lineage": dict(s.lineage)}


def detail_json(d: IntentDetail) -> dict[str, Any]:
    doc = intent_json(d.intent)
    doc["history"] = [{"at": t.at.isoformat(), "state": t.state.value, "why": t.why} for t in d.intent.history]
    doc["fills"] = [fill_json(f) for f in d.fills]
    doc["signal"] = signal_doc(d.signal)
    return doc


def detail_lines(d: IntentDetail) -> list[str]:
    i = d.intent
    lines = [
        f"intent {i.id}  {i.symbol} {i.strategy} ({i.bucket})  {i.side} {i.quantity} {i.contract.describe()}"
        f" (conId {i.con_id or '?'})",
        f"  state {i.state.value}; created {_ny(i.created)} NY; entry limit {i.limit:.2f}, take profit "
        f"{i.take_profit:.2f}, stop {i.stop:.2f}" + (f" trailing {i.trail_pct:g}%" if i.trail_pct else ""),
        f"  filled {_at_avg(i.filled_qty, i.entry_avg)}, exited {_at_avg(i.exit_qty, i.exit_avg)}, open "
        f"{i.open_qty}; commissions {i.commission_usd:.2f}; realised {_money(realised_usd(i))}"
        + (f"; exit: {i.exit_reason}" if i.exit_reason else ""),
    ]
    if i.reasons:
        lines.append("  reasons: " + "; ".join(i.reasons))
    s = d.signal
    if isinstance(s, Absent):
        lines.append(f"  signal: {s}")
    else:
        execution = s.lineage.get("execution")
        lines.append(f"  signal {s.id}: {s.strategy}, score {s.score:+.3f} (threshold {s.threshold:.3f}), created "
                     f"{_ny(s.created_at)} NY" + (f"; execution lineage: {execution}" if execution else ""))
    return lines


def orders_json(intents: Sequence[Intent], *, account: str, since: datetime | None, open_only: bool,
                unreadable: Sequence[str]) -> dict[str, Any]:
    return {"account": account, "since": _iso(since), "open_only": open_only,
            "orders": [intent_json(i) for i in intents], "unreadable": list(unreadable)}


# --- fills -------------------------------------------------------------------------------------------

FILLS_HEADERS = ["time (NY)", "execId", "symbol", "conId", "side", "qty", "price", "commission", "orderRef",
                 "intent", "leg", "kind"]


def fill_rows(fills: Sequence[Fill]) -> list[list[str]]:
    return [[_ny(f.at), f.exec_id, f.symbol, str(f.con_id), f.side, str(f.quantity), f"{f.price:.2f}",
             "pending" if f.commission_usd is None else f"{f.commission_usd:.2f}", f.order_ref, f.intent_id, f.leg,
             f.kind] for f in fills]


def fill_json(f: Fill) -> dict[str, Any]:
    return {"at": f.at.isoformat(), "exec_id": f.exec_id, "account": f.account, "symbol": f.symbol,
            "con_id": f.con_id, "side": f.side, "quantity": f.quantity, "price": f.price,
            "commission_usd": f.commission_usd, "order_ref": f.order_ref, "perm_id": f.perm_id,
            "order_id": f.order_id, "intent_id": f.intent_id, "leg": f.leg, "kind": f.kind}


# --- qc status ---------------------------------------------------------------------------------------

def executor_lines(doc: Mapping[str, Any]) -> list[str]:
    """The executor's section of `qc status` (the document from ``report.executor_status``)."""
    st: Mapping[str, str] = doc.get("status") or {}
    if st:
        head = (f"executor ({doc['account']}): {st.get('role', '?')}, {st.get('state', '?')}"
                + (f" since {st['since']}" if st.get("since") else ""))
        if st.get("last_reconcile"):
            head += f"; last reconciliation {st['last_reconcile']}: {st.get('last_reconcile_result', '')}".rstrip()
    else:
        head = f"executor ({doc['account']}): no status (is `qc execute` running?)"
    lines = [head, f"  open intents {doc['open_intents']}; failed orders today {doc['failed_orders_today']}"]
    for f in doc["failed_orders"]:
        lines.append(f"  failed: {f.get('symbol', '')} {f.get('order_ref', '')} code {f.get('code', '')}: "
                     f"{f.get('message', '')}")
    for lock in doc["locked"]:
        lines.append(f"  locked conId {lock['con_id']}: {lock['reason']}")
    for a in doc["alerts"]:
        lines.append(f"  alert {a['at']} {a['kind']}: {a['message']}")
    return lines
