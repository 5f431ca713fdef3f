"""The stored shapes of `qc execute`: an intent (``orders:intent:{id}``, JSON) and a fill (JSON, one per execId).

Schema 1, strict like every qc codec: a missing field, a non-finite or out-of-range number, an
unknown state, leg or side, a naive time give an :class:`~qc.core.codec.Absent` naming the key and
the field, never a half-read intent (the executor then refuses to touch that intent and alerts:
an order it cannot read is an order it must not guess about).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from qc.core.codec import (
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    loads_object,
    need,
    opt_instant,
    req_float,
    req_instant,
    req_int,
    req_str,
)
from qc.core.order_ref import LEGS, Leg
from qc.execute.model import Fill, Intent, LegOrder, State, Transition
from qc.risk.model import BUCKETS, Bucket, ContractKey, Side

SCHEMA = 1
MAX_PRICE = 1e9
MAX_QTY = 10_000_000
_SIDES: tuple[Side, ...] = ("BUY", "SELL")
_STATES = tuple(s.value for s in State)
_KINDS = ("trade", "exercise", "assignment", "expiry")


def _contract_doc(c: ContractKey) -> dict[str, Any]:
    return {"underlying": c.underlying, "sec_type": c.sec_type,
            "expiry": c.expiry.isoformat() if c.expiry else None, "strike": c.strike, "right": c.right,
            "multiplier": c.multiplier}


def _contract(doc: Any) -> ContractKey:
    if not isinstance(doc, dict):
        raise Malformed("contract", f"is a {type(doc).__name__}, not an object")
    sec_type = req_str(need(doc, "sec_type"), "contract.sec_type", choices=("OPT", "STK"))
    expiry_raw = need(doc, "expiry")
    try:
        expiry = None if expiry_raw is None else date.fromisoformat(req_str(expiry_raw, "contract.expiry"))
    except ValueError:
        raise Malformed("contract.expiry", f"is not a date ({str(expiry_raw)[:20]!r})") from None
    strike_raw, right_raw = need(doc, "strike"), need(doc, "right")
    strike = None if strike_raw is None else req_float(strike_raw, "contract.strike", lo=1e-9, hi=1e7)
    right = None if right_raw is None else req_str(right_raw, "contract.right", choices=("C", "P"))
    try:
        return ContractKey(req_str(need(doc, "underlying"), "contract.underlying", empty=False),
                           "OPT" if sec_type == "OPT" else "STK", expiry, strike,
                           None if right is None else ("C" if right == "C" else "P"),
                           req_int(need(doc, "multiplier"), "contract.multiplier", lo=1, hi=100_000))
    except ValueError as exc:
        raise Malformed("contract", str(exc)) from None


def _side(raw: Any, name: str) -> Side:
    value = req_str(raw, name, choices=_SIDES)
    return "BUY" if value == "BUY" else "SELL"


def _leg(raw: Any, name: str) -> Leg:
    value = req_str(raw, name, choices=LEGS)
    return next(leg for leg in LEGS if leg == value)


def _opt_price(raw: Any, name: str) -> float | None:
    return None if raw is None else req_float(raw, name, lo=0.0, hi=MAX_PRICE)


def _order_doc(o: LegOrder) -> dict[str, Any]:
    return {"leg": o.leg, "attempt": o.attempt, "order_id": o.order_id, "action": o.action, "quantity": o.quantity,
            "order_type": o.order_type, "limit": o.limit, "aux": o.aux, "parent_id": o.parent_id,
            "oca_group": o.oca_group, "perm_id": o.perm_id, "status": o.status, "filled": o.filled,
            "avg_price": o.avg_price}


def _order(doc: Any, i: int) -> LegOrder:
    if not isinstance(doc, dict):
        raise Malformed(f"orders[{i}]", "is not an object")
    p = f"orders[{i}]."
    return LegOrder(
        _leg(need(doc, "leg"), p + "leg"), req_int(need(doc, "attempt"), p + "attempt", lo=0, hi=9999),
        req_int(need(doc, "order_id"), p + "order_id", lo=0), _side(need(doc, "action"), p + "action"),
        req_int(need(doc, "quantity"), p + "quantity", lo=1, hi=MAX_QTY),
        req_str(need(doc, "order_type"), p + "order_type", choices=("LMT", "STP", "MKT")),
        _opt_price(need(doc, "limit"), p + "limit"), _opt_price(need(doc, "aux"), p + "aux"),
        req_int(need(doc, "parent_id"), p + "parent_id", lo=0), req_str(need(doc, "oca_group"), p + "oca_group"),
        req_int(need(doc, "perm_id"), p + "perm_id", lo=0), req_str(need(doc, "status"), p + "status"),
        req_int(need(doc, "filled"), p + "filled", lo=0, hi=MAX_QTY),
        req_float(need(doc, "avg_price"), p + "avg_price", lo=0.0, hi=MAX_PRICE))


def intent_to_redis(i: Intent) -> str:
    return dumps({
        "v": SCHEMA, "id": i.id, "account": i.account, "symbol": i.symbol, "strategy": i.strategy,
        "bucket": i.bucket, "contract": _contract_doc(i.contract), "side": i.side, "quantity": i.quantity,
        "limit": i.limit, "take_profit": i.take_profit, "stop": i.stop, "trail_pct": i.trail_pct,
        "time_stop": i.time_stop.isoformat(), "hard_close": i.hard_close.isoformat() if i.hard_close else None,
        "created": i.created.isoformat(), "state": i.state.value, "con_id": i.con_id, "token": i.token,
        "orders": [_order_doc(o) for o in i.orders], "filled_qty": i.filled_qty, "entry_avg": i.entry_avg,
        "exit_qty": i.exit_qty, "exit_avg": i.exit_avg, "commission_usd": i.commission_usd,
        "best_premium": i.best_premium, "reasons": list(i.reasons), "exit_reason": i.exit_reason,
        "absent_since": i.absent_since.isoformat() if i.absent_since else None,
        "history": [{"at": t.at.isoformat(), "state": t.state.value, "why": t.why} for t in i.history],
    })


def _history(raw: Any) -> tuple[Transition, ...]:
    if not isinstance(raw, list):
        raise Malformed("history", "is not a list")
    out = []
    for n, t in enumerate(raw):
        if not isinstance(t, dict):
            raise Malformed(f"history[{n}]", "is not an object")
        out.append(Transition(req_instant(need(t, "at"), f"history[{n}].at"),
                              State(req_str(need(t, "state"), f"history[{n}].state", choices=_STATES)),
                              req_str(need(t, "why"), f"history[{n}].why")))
    return tuple(out)


def _strings(raw: Any, name: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise Malformed(name, "is not a list of strings")
    return tuple(raw)


def _bucket(raw: Any) -> Bucket:
    value = req_str(raw, "bucket", choices=BUCKETS)
    return next(b for b in BUCKETS if b == value)


def _parse_intent(raw: str) -> Intent:
    d = loads_object(raw, "intent")
    check_version(d, SCHEMA)
    orders = need(d, "orders")
    if not isinstance(orders, list):
        raise Malformed("orders", "is not a list")
    try:
        return Intent(
            id=req_str(need(d, "id"), "id", empty=False), account=req_str(need(d, "account"), "account", empty=False),
            symbol=req_str(need(d, "symbol"), "symbol", empty=False), strategy=req_str(need(d, "strategy"), "strategy"),
            bucket=_bucket(need(d, "bucket")), contract=_contract(need(d, "contract")),
            side=_side(need(d, "side"), "side"), quantity=req_int(need(d, "quantity"), "quantity", lo=1, hi=MAX_QTY),
            limit=req_float(need(d, "limit"), "limit", lo=0.0, hi=MAX_PRICE),
            take_profit=req_float(need(d, "take_profit"), "take_profit", lo=0.0, hi=MAX_PRICE),
            stop=req_float(need(d, "stop"), "stop", lo=0.0, hi=MAX_PRICE),
            trail_pct=req_float(need(d, "trail_pct"), "trail_pct", lo=0.0, hi=99.999999),
            time_stop=req_instant(need(d, "time_stop"), "time_stop"),
            hard_close=opt_instant(need(d, "hard_close"), "hard_close"),
            created=req_instant(need(d, "created"), "created"),
            state=State(req_str(need(d, "state"), "state", choices=_STATES)),
            con_id=req_int(need(d, "con_id"), "con_id", lo=0), token=req_int(need(d, "token"), "token", lo=0),
            orders=tuple(_order(o, n) for n, o in enumerate(orders)),
            filled_qty=req_int(need(d, "filled_qty"), "filled_qty", lo=0, hi=MAX_QTY),
            entry_avg=req_float(need(d, "entry_avg"), "entry_avg", lo=0.0, hi=MAX_PRICE),
            exit_qty=req_int(need(d, "exit_qty"), "exit_qty", lo=0, hi=MAX_QTY),
            exit_avg=req_float(need(d, "exit_avg"), "exit_avg", lo=0.0, hi=MAX_PRICE),
            commission_usd=req_float(need(d, "commission_usd"), "commission_usd", lo=-1e9, hi=1e9),
            best_premium=req_float(need(d, "best_premium"), "best_premium", lo=0.0, hi=MAX_PRICE),
            reasons=_strings(need(d, "reasons"), "reasons"), exit_reason=req_str(need(d, "exit_reason"), "exit_reason"),
            absent_since=opt_instant(need(d, "absent_since"), "absent_since"),
            history=_history(need(d, "history")))
    except ValueError as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed("intent", str(exc)) from None


def intent_from_redis(raw: str | None, *, key: str) -> Intent | Absent:
    return decode(key, raw, _parse_intent)


def fill_to_redis(f: Fill) -> str:
    return dumps({"v": SCHEMA, "exec_id": f.exec_id, "account": f.account, "symbol": f.symbol, "con_id": f.con_id,
                  "side": f.side, "quantity": f.quantity, "price": f.price, "at": f.at.isoformat(),
                  "order_ref": f.order_ref, "perm_id": f.perm_id, "order_id": f.order_id, "intent_id": f.intent_id,
                  "leg": f.leg, "commission_usd": f.commission_usd, "kind": f.kind})


def _parse_fill(raw: str) -> Fill:
    d = loads_object(raw, "fill")
    check_version(d, SCHEMA)
    commission = need(d, "commission_usd")
    try:
        return Fill(
            exec_id=req_str(need(d, "exec_id"), "exec_id", empty=False), account=req_str(need(d, "account"), "account"),
            symbol=req_str(need(d, "symbol"), "symbol", empty=False), con_id=req_int(need(d, "con_id"), "con_id", lo=0),
            side=_side(need(d, "side"), "side"), quantity=req_int(need(d, "quantity"), "quantity", lo=1, hi=MAX_QTY),
            price=req_float(need(d, "price"), "price", lo=0.0, hi=MAX_PRICE), at=req_instant(need(d, "at"), "at"),
            order_ref=req_str(need(d, "order_ref"), "order_ref"), perm_id=req_int(need(d, "perm_id"), "perm_id", lo=0),
            order_id=req_int(need(d, "order_id"), "order_id", lo=-(2**31), hi=2**53),
            intent_id=req_str(need(d, "intent_id"), "intent_id"),
            leg=req_str(need(d, "leg"), "leg", choices=("", *LEGS)),
            commission_usd=None if commission is None else req_float(commission, "commission_usd", lo=-1e6, hi=1e6),
            kind=req_str(need(d, "kind"), "kind", choices=_KINDS))
    except ValueError as exc:
        if isinstance(exc, Malformed):
            raise
        raise Malformed("fill", str(exc)) from None


def fill_from_redis(raw: str | None, *, key: str) -> Fill | Absent:
    return decode(key, raw, _parse_fill)
