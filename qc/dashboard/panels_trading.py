"""The ``trading`` panel: positions with P&L and each one's protective stop, working orders, recent fills.

Read through `qc positions | orders | fills`' own report (``qc.execute.report``): positions from
``positions:open:{account}:*`` marked by `qc risk`'s exposure snapshot, the open intents and their
orders, the fills. A position's protective stop is the live stop order of every open intent holding
its conId; a position with fewer contracts covered than held is flagged ``unprotected`` (DESIGN §7: a
position never sits without its stop). The panel is as fresh as the marks (the snapshot's ``as_of``):
without `qc risk` there is no P&L, and the panel says so rather than showing zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from qc.dashboard.docs import Doc, envelope, epoch_of, num
from qc.execute import report
from qc.execute.model import Intent
from qc.execute.render import PositionLine, contract_doc, fill_json
from qc.runtime.store import Store

MARKS_STALE_S = 30.0
FILLS_SHOWN = 50


def build(store: Store, account: str, symbols: Sequence[str], now: float) -> Doc:
    now_dt = datetime.fromtimestamp(now, timezone.utc)
    got = report.positions(store, account, now_dt, include_flat=True)  # flat ones still count today's realised
    doc = envelope(epoch_of(got.marks_as_of), now, MARKS_STALE_S, got.marks_problem)
    positions = [position_row(line) for line in got.lines if line.record.position.quantity != 0]
    priced = [p["unrealised_usd"] for p in positions if p["unrealised_usd"] is not None]
    held = report.open_intents(store, account)
    fills = report.symbol_fills(store, symbols)[:FILLS_SHOWN]
    doc |= {"account": account, "positions": positions,
            # unknown (None) while any open position has no mark
            "unrealised_usd": sum(priced, 0.0) if len(priced) == len(positions) else None,
            "realised_today_usd": sum((line.record.realised_today_usd for line in got.lines), 0.0),
            "unprotected": sum(1 for p in positions if p["unprotected"]),
            "orders": working_orders(held.intents), "fills": [fill_json(f) for f in fills],
            "locked": [{"con_id": c, "reason": why} for c, why in got.locked.items()],
            "unreadable": [*got.unreadable, *held.unreadable]}
    return doc


def position_row(line: PositionLine) -> Doc:
    """One position: size, cost, mark and P&L, and the protective stops of the intents holding it."""
    r, v = line.record, line.view
    qty = r.position.quantity
    stops: list[Doc] = []
    for i in line.intents:
        stop = i.current("stop")
        if stop is not None and stop.live:
            stops.append({"intent": i.id, "order_ref": stop.order_ref(i.id), "trigger": num(stop.aux),
                          "quantity": i.protected_qty(), "status": stop.status, "trail_pct": i.trail_pct or None})
    covered = sum(s["quantity"] for s in stops)
    return {"con_id": r.con_id, "contract": contract_doc(r.position.contract)["describe"],
            "underlying": r.position.contract.underlying, "bucket": r.position.bucket, "qty": qty,
            "avg_cost": num(r.position.avg_cost), "mark": None if v is None else num(v.mark),
            "unrealised_usd": None if v is None else num(v.unrealised_usd),
            "realised_today_usd": num(r.realised_today_usd), "opened": r.opened.isoformat() if r.opened else None,
            "stop": stops[0]["trigger"] if len(stops) == 1 else None, "stops": stops, "protected_qty": covered,
            "unprotected": qty != 0 and covered < abs(qty),
            "intents": [{"id": i.id, "strategy": i.strategy, "state": i.state.value} for i in line.intents]}


def working_orders(intents: Sequence[Intent]) -> list[Doc]:
    """Every order qc has live at the broker (sent and not finished), newest intent first."""
    out = []
    for i in intents:
        for o in i.live_orders():
            out.append({"order_ref": o.order_ref(i.id), "intent": i.id, "symbol": i.symbol,
                        "contract": i.contract.describe(), "leg": o.leg, "action": o.action, "quantity": o.quantity,
                        "order_type": o.order_type, "limit": num(o.limit), "aux": num(o.aux), "status": o.status,
                        "filled": o.filled, "avg_price": num(o.avg_price) if o.filled else None,
                        "perm_id": o.perm_id or None, "intent_state": i.state.value})
    return out
