"""Properties of the simulated broker over random order flow and random markets.

Whatever happens: positions are the signed sum of executions, cash moves by exactly the signed
notional plus commissions, no order fills beyond its quantity or after it finished, execIds and
permIds never repeat, cumQty/avgPrice run correctly and the reported status matches the fills.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qc.sim.broker.engine import SimBroker
from qc.sim.broker.orders import DONE_STATUSES, FILLED, ContractKey
from qc.sim.broker.reports import BrokerEvent, CommissionReported, ExecutionReported, OrderStateChanged
from tests.unit.sim_broker_helpers import ACCT, CALL, CASH, SPY, T0, bracket, new_broker, order

CONTRACTS = (CALL, SPY)
MID = {CALL.con_id: 2.0, SPY.con_id: 100.0}
KINDS = ("MKT", "LMT", "STP", "STP LMT", "TRAIL", "MOC")

price_move = st.floats(min_value=-0.3, max_value=0.3, allow_nan=False)
ops = st.one_of(
    st.tuples(st.just("quote"), st.integers(0, 1), price_move, st.floats(0.0, 0.05)),
    st.tuples(st.just("submit"), st.integers(0, 1), st.sampled_from(KINDS), st.sampled_from(("BUY", "SELL")),
              st.integers(1, 5), price_move, st.integers(1, 2), st.sampled_from(("", "g1", "g2")),
              st.integers(1, 3)),
    st.tuples(st.just("bracket"), st.integers(1, 5), price_move),
    st.tuples(st.just("partial"), st.integers(1, 4)),
    st.tuples(st.just("cancel"), st.integers(0, 30), st.integers(1, 2)),
    st.tuples(st.just("modify"), st.integers(0, 30), price_move, st.integers(1, 6)),
    st.tuples(st.just("close"), price_move),
    st.tuples(st.just("global_cancel")),
)


class Driver:
    """Plays random ops against a broker, remembering what it asked for."""

    def __init__(self) -> None:
        self.broker: SimBroker = new_broker()
        self.mid = dict(MID)
        self.events: list[BrokerEvent] = []
        self.placed: list[tuple[int, int]] = []
        self.next_id = {1: 1, 2: 1}
        self.step = 0
        self.quantity: dict[tuple[int, int], float] = {}
        self.run(("quote", 0, 0.0, 0.02))  # both books quoted from the start, so orders can fill
        self.run(("quote", 1, 0.0, 0.01))

    def now(self) -> Any:
        self.step += 1
        return T0 + timedelta(seconds=self.step)

    def _id(self, client: int) -> int:
        self.next_id[client] += 3
        return self.next_id[client] - 3

    def _place(self, client: int, req: Any) -> None:
        self.placed.append((client, req.order_id))
        self.quantity.setdefault((client, req.order_id), req.quantity)
        self.events += self.broker.submit(client, req, self.now())

    def run(self, op: tuple[Any, ...]) -> None:  # noqa: C901 - one branch per op kind
        name = op[0]
        if name == "quote":
            contract: ContractKey = CONTRACTS[op[1]]
            mid = max(self.mid[contract.con_id] + op[2], 0.05)
            self.mid[contract.con_id] = mid
            key: int | str = contract.con_id if contract.is_option else contract.symbol
            self.events += self.broker.on_market(key, mid - op[3], mid + op[3], mid, self.now())
        elif name == "submit":
            _, ci, kind, side, qty, off, client, group, oca_type = op
            contract = CONTRACTS[ci]
            if kind == "MOC" and contract.is_option:
                kind = "MKT"
            px = round(self.mid[contract.con_id] + off, 2)
            fields: dict[str, Any] = {"oca_group": group, "oca_type": oca_type}
            if kind in ("LMT", "STP LMT"):
                fields["lmt_price"] = max(px, 0.01)
            if kind in ("STP", "STP LMT"):
                fields["aux_price"] = max(px, 0.01)
            if kind == "TRAIL":
                fields["aux_price"] = abs(off) + 0.01
            self._place(client, order(self._id(client), side, qty, kind, contract, client, **fields))
        elif name == "bracket":
            mid = self.mid[CALL.con_id]
            pid = self._id(1)
            for req in bracket(pid, op[1], round(mid + op[2], 2), round(mid + 0.2, 2), max(round(mid - 0.2, 2), 0.01)):
                self._place(1, req)
        elif name == "partial":
            self.broker.fill_next_partially(quantity=op[1])
        elif name == "cancel" and self.placed:
            client, oid = self.placed[op[1] % len(self.placed)]
            self.events += self.broker.cancel(op[2], oid, self.now())
        elif name == "modify" and self.placed:
            client, oid = self.placed[op[1] % len(self.placed)]
            snap = self.broker.order(client, oid)
            if snap is not None and snap.request.order_type == "LMT":
                req = snap.request
                new = order(oid, req.action, op[3], "LMT", req.contract, client, parent_id=req.parent_id,
                            lmt_price=max(round(self.mid[req.contract.con_id] + op[2], 2), 0.01))
                self.quantity[(client, oid)] = max(self.quantity[(client, oid)], op[3])
                self.events += self.broker.submit(client, new, self.now())
        elif name == "close":
            self.events += self.broker.on_close("SPY", max(self.mid[SPY.con_id] + op[1], 0.05), self.now())
        elif name == "global_cancel":
            self.events += self.broker.global_cancel(self.now())


@settings(max_examples=150)
@given(st.lists(ops, min_size=3, max_size=40))
def test_random_flow_keeps_the_books_consistent(flow: list[tuple[Any, ...]]) -> None:
    d = Driver()
    for op in flow:
        d.run(op)
    done: set[tuple[int, int]] = set()
    filled: dict[tuple[int, int], float] = defaultdict(float)
    position: dict[int, float] = defaultdict(float)
    cash, exec_ids = CASH, set()
    for e in d.events:
        if isinstance(e, ExecutionReported):
            x = e.execution
            key = (x.client_id, x.order_id)
            assert key not in done, "filled after it was finished"
            assert x.exec_id not in exec_ids
            exec_ids.add(x.exec_id)
            filled[key] += x.shares
            assert x.cum_qty == pytest.approx(filled[key])
            assert filled[key] <= d.quantity[key] + 1e-9
            signed = x.shares if x.side == "BOT" else -x.shares
            position[x.contract.con_id] += signed
            cash -= signed * x.price * x.contract.multiplier
        elif isinstance(e, CommissionReported):
            assert e.commission.exec_id in exec_ids and e.commission.commission >= 0
            cash -= e.commission.commission
        elif isinstance(e, OrderStateChanged) and e.order.status in DONE_STATUSES:
            done.add((e.order.client_id, e.order.order_id))
            if e.order.status == FILLED:
                key = (e.order.client_id, e.order.order_id)
                assert e.order.remaining == 0 and e.order.filled == pytest.approx(filled[key])
    assert d.broker.ledger.cash(ACCT) == pytest.approx(cash, abs=1e-6)
    held = {r.contract.con_id: r.position for r in d.broker.positions(ACCT)}
    assert held == {k: v for k, v in position.items() if v != 0}
    perm_ids = [o.perm_id for o in d.broker.open_orders() + d.broker.completed_orders()]
    assert len(perm_ids) == len(set(perm_ids))
    for snap in d.broker.open_orders():
        assert snap.remaining > 0 and snap.filled == pytest.approx(filled[(snap.client_id, snap.order_id)])
