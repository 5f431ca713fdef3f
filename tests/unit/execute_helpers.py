"""Builders shared by the `qc execute` unit tests: intents, leg orders, fills, all at fixed tz-aware instants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from qc.core.order_ref import Leg
from qc.execute.model import Fill, Intent, LegOrder, State
from qc.risk.model import ContractKey, Side

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
CALL = ContractKey("SPY", "OPT", date(2026, 3, 2), 600.0, "C")
PUT = ContractKey("QQQ", "OPT", date(2026, 3, 4), 500.0, "P")


def make_intent(side: Side = "BUY", quantity: int = 3, **kw: Any) -> Intent:
    """A long (BUY) or short (SELL) bracket intent on a SPY call: entry 2.00, stop/take-profit on the safe sides."""
    long = side == "BUY"
    base: dict[str, Any] = {
        "id": "sig1", "account": "DU1", "symbol": "SPY", "strategy": "gex", "bucket": "0dte", "contract": CALL,
        "side": side, "quantity": quantity, "limit": 2.0, "take_profit": 3.0 if long else 1.0,
        "stop": 1.5 if long else 2.5, "trail_pct": 0.0, "time_stop": T0 + timedelta(hours=2),
        "hard_close": T0 + timedelta(hours=3), "created": T0,
    }
    base.update(kw)
    return Intent(**base)


def leg(name: Leg, *, attempt: int = 0, order_id: int = 10, action: Side = "BUY", quantity: int = 3,
        order_type: str = "LMT", status: str = "", perm_id: int = 0, filled: int = 0, parent_id: int = 0,
        limit: float | None = 2.0, aux: float | None = None, oca_group: str = "") -> LegOrder:
    return LegOrder(name, attempt, order_id, action, quantity, order_type, limit=limit, aux=aux,
                    parent_id=parent_id, oca_group=oca_group, perm_id=perm_id, status=status, filled=filled)


def bracket_orders(quantity: int = 3, *, entry: str = "", children: str = "", entry_filled: int = 0,
                   perm: int = 0, side: Side = "BUY") -> tuple[LegOrder, LegOrder, LegOrder]:
    """Entry (id 10), take-profit (11) and stop (12) of a bracket, children linked to the entry."""
    exit_side: Side = "SELL" if side == "BUY" else "BUY"
    e = leg("entry", order_id=10, action=side, quantity=quantity, status=entry, perm_id=perm, filled=entry_filled)
    tp = leg("tp", order_id=11, action=exit_side, quantity=quantity, status=children, parent_id=10,
             limit=3.0, oca_group="qc:sig1:0", perm_id=perm + 1 if perm else 0)
    st = leg("stop", order_id=12, action=exit_side, quantity=quantity, order_type="STP", status=children,
             parent_id=10, limit=None, aux=1.5, oca_group="qc:sig1:0", perm_id=perm + 2 if perm else 0)
    return e, tp, st


def situation(state: State, orders: tuple[LegOrder, ...], *, filled: int = 0, exited: int = 0,
              quantity: int = 3) -> Intent:
    """An intent in ``state`` with these orders and ``filled`` entry / ``exited`` exit contracts applied."""
    return replace(make_intent(quantity=quantity), state=state, orders=orders, filled_qty=filled,
                   entry_avg=2.0 if filled else 0.0, exit_qty=exited, exit_avg=2.5 if exited else 0.0)


def make_fill(side: Side = "BUY", quantity: int = 1, price: float = 2.0, exec_id: str = "x1", **kw: Any) -> Fill:
    base: dict[str, Any] = {"exec_id": exec_id, "account": "DU1", "symbol": "SPY", "con_id": 9, "side": side,
                            "quantity": quantity, "price": price, "at": T0}
    base.update(kw)
    return Fill(**base)
