"""Between ib_async's objects and the executor's: contracts, orders to send, executions received.

The only module of the executor that builds an ib_async ``Order`` or reads an ``Execution``; the
rest speaks ``qc.execute.model``. Orders carry qc's order reference (``orderRef``), which IB echoes
on every open order, completed order and execution: the join key after any restart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from ib_async import Contract, Option, Order, Stock
from ib_async import Fill as IBFill

from qc.core.order_ref import parse
from qc.execute.bracket import Placement, time_in_force
from qc.execute.model import Fill
from qc.risk.model import ContractKey

UNSET_DOUBLE = 1.7976931348623157e308


def ib_contract(key: ContractKey) -> Contract:
    """The contract to qualify (SMART-routed, USD)."""
    if key.sec_type == "STK":
        return Stock(key.underlying, "SMART", "USD")
    assert key.expiry is not None and key.strike is not None and key.right is not None
    return Option(key.underlying, key.expiry.strftime("%Y%m%d"), key.strike, key.right, "SMART",
                  multiplier=str(key.multiplier), currency="USD")


def ib_order(p: Placement, intent_id: str, account: str) -> Order:
    """The ib_async ``Order`` for one placement: id, reference, links, prices, time in force set."""
    o = p.order
    order = Order(orderId=o.order_id, action=o.action, totalQuantity=float(o.quantity), orderType=o.order_type,
                  tif=time_in_force(o), orderRef=o.order_ref(intent_id), transmit=p.transmit, parentId=o.parent_id,
                  account=account)
    if o.limit is not None:
        order.lmtPrice = o.limit
    if o.aux is not None:
        order.auxPrice = o.aux
    if o.oca_group:
        order.ocaGroup, order.ocaType = o.oca_group, p.oca_type
    return order


def side_of(ib_side: str) -> str:
    """IB's execution side (BOT/SLD) as an order side."""
    return "BUY" if ib_side in ("BOT", "BUY") else "SELL"


def fill_of(f: IBFill, account: str, symbol: str, now: datetime) -> Fill:
    """Our record of an ib_async fill (commission None until IB's report; ``now`` when IB sent no time)."""
    e = f.execution
    ref = parse(e.orderRef)
    at = e.time if isinstance(e.time, datetime) else now
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    report = f.commissionReport
    commission = report.commission if report is not None and report.execId and 0 <= report.commission < UNSET_DOUBLE \
        else None
    kind = "trade"
    if not e.orderRef and not e.orderId:
        kind = "expiry" if e.price == 0 else "exercise"
    return Fill(exec_id=e.execId, account=e.acctNumber or account, symbol=symbol, con_id=f.contract.conId,
                side="BUY" if side_of(e.side) == "BUY" else "SELL", quantity=round(e.shares),
                price=float(e.price), at=at, order_ref=e.orderRef or "", perm_id=e.permId, order_id=e.orderId,
                intent_id=ref.intent if ref else "", leg=ref.leg if ref else "", commission_usd=commission,
                kind=kind)


def key_of(c: Contract) -> ContractKey | None:
    """Our key of a broker contract (an option or shares), None for anything else."""
    if c.secType == "STK":
        return ContractKey(c.symbol, "STK", multiplier=1)
    if c.secType == "OPT" and c.lastTradeDateOrContractMonth and c.right in ("C", "P", "CALL", "PUT"):
        raw = c.lastTradeDateOrContractMonth[:8]
        expiry = date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
        return ContractKey(c.symbol, "OPT", expiry, float(c.strike), "C" if c.right in ("C", "CALL") else "P",
                           int(c.multiplier or 100))
    return None
