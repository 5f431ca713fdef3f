"""Positions from fills: average cost, realised P&L, commissions. Pure.

A position (``qc.risk.position_codec.PositionRecord``) is signed (+ long, − short). A fill that
adds to it moves the average cost (weighted by quantity); a fill that reduces it realises
``(price − avg_cost) × closed × multiplier`` for a long (the opposite sign for a short) and leaves
the average alone; a fill that crosses zero realises the closed part and opens the rest at the fill
price. Commissions are realised costs, booked when IB's report arrives (after the execution).

A flat position is kept (quantity 0) with what it realised today, so the daily loss limit still sees
a round trip closed this morning; the executor drops flat records of earlier days.
"""

from __future__ import annotations

from datetime import datetime

from qc.risk.model import Bucket, ContractKey, Position
from qc.risk.position_codec import PositionRecord


def apply_fill(rec: PositionRecord | None, con_id: int, contract: ContractKey, signed_qty: int, price: float,
               bucket: Bucket, now: datetime) -> PositionRecord:
    """``rec`` after a fill of ``signed_qty`` at ``price`` ($ per share)."""
    if rec is None:
        rec = PositionRecord(con_id, Position(contract, 0, 0.0, bucket), 0.0, None)
    pos = rec.position
    q, avg, mult = pos.quantity, pos.avg_cost, pos.contract.multiplier
    realised = rec.realised_today_usd
    if q == 0 or (q > 0) == (signed_qty > 0):
        total = abs(q) + abs(signed_qty)
        new_q, new_avg = q + signed_qty, (abs(q) * avg + abs(signed_qty) * price) / total
    else:
        closed = min(abs(q), abs(signed_qty))
        realised += (price - avg) * closed * mult * (1 if q > 0 else -1)
        new_q = q + signed_qty
        new_avg = avg if new_q != 0 and (new_q > 0) == (q > 0) else (price if new_q != 0 else 0.0)
    opened = rec.opened if q != 0 and new_q != 0 and (new_q > 0) == (q > 0) else (now if new_q != 0 else None)
    keep_bucket = pos.bucket if q != 0 else bucket
    return PositionRecord(con_id, Position(pos.contract, new_q, round(new_avg, 10), keep_bucket),
                          round(realised, 6), opened)


def apply_commission(rec: PositionRecord, commission_usd: float) -> PositionRecord:
    """A commission report: a realised cost of the position it was charged on."""
    return PositionRecord(rec.con_id, rec.position, round(rec.realised_today_usd - commission_usd, 6), rec.opened)


def unrealised_usd(rec: PositionRecord, mark: float) -> float:
    """Open P&L at ``mark`` ($ per share)."""
    p = rec.position
    return (mark - p.avg_cost) * p.quantity * p.contract.multiplier
