"""The typed shape of an open position in Redis (``positions:open:{account}:{conId}``), written by `qc execute`.

One hash per contract, never expiring (a position outlives any process). The reader never raises:
a missing or malformed field, a non-finite number, a fractional quantity, an unknown bucket, an
option without expiry, strike or right all give an :class:`~qc.core.codec.Absent` naming the key
and the field; an empty hash (the key is gone: the position closed) is ``missing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    need,
    opt_instant,
    req_float,
    req_int,
    req_str,
)
from qc.risk.model import BUCKETS, Bucket, ContractKey, Position, Right, SecType

SCHEMA = 1


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position as the executor keeps it: the broker's conId, the holding, what it realised today."""

    con_id: int
    position: Position
    realised_today_usd: float = 0.0
    opened: datetime | None = None


def position_to_redis(rec: PositionRecord) -> dict[str, str]:
    c, p = rec.position.contract, rec.position
    return {VERSION_FIELD: str(SCHEMA), "con_id": str(rec.con_id), "symbol": c.underlying, "sec_type": c.sec_type,
            "expiry": c.expiry.isoformat() if c.expiry else "", "strike": repr(c.strike) if c.strike else "",
            "right": c.right or "", "multiplier": str(c.multiplier), "qty": str(p.quantity),
            "avg_cost": repr(p.avg_cost), "bucket": p.bucket, "realised_today_usd": repr(rec.realised_today_usd),
            "opened": rec.opened.isoformat() if rec.opened else ""}


def _parse(fields: Mapping[str, str]) -> PositionRecord:
    check_version(fields, SCHEMA)
    sec_type: SecType = "OPT" if req_str(need(fields, "sec_type"), "sec_type", choices=("OPT", "STK")) == "OPT" \
        else "STK"
    expiry: date | None = None
    strike: float | None = None
    right: Right | None = None
    if sec_type == "OPT":
        raw_expiry = req_str(need(fields, "expiry"), "expiry", empty=False)
        try:
            expiry = date.fromisoformat(raw_expiry)
        except ValueError:
            raise Malformed("expiry", f"is not a date ({raw_expiry[:20]!r})") from None
        strike = req_float(need(fields, "strike"), "strike", lo=1e-9, hi=1e7)
        right = "C" if req_str(need(fields, "right"), "right", choices=("C", "P")) == "C" else "P"
    bucket_name = req_str(need(fields, "bucket"), "bucket", choices=BUCKETS)
    bucket: Bucket = next(b for b in BUCKETS if b == bucket_name)
    try:
        contract = ContractKey(req_str(need(fields, "symbol"), "symbol", empty=False), sec_type, expiry, strike, right,
                               req_int(need(fields, "multiplier"), "multiplier", lo=1, hi=100_000))
        position = Position(contract, req_int(need(fields, "qty"), "qty", lo=-10_000_000, hi=10_000_000),
                            req_float(need(fields, "avg_cost"), "avg_cost", lo=0.0, hi=1e9), bucket)
    except Malformed:
        raise
    except ValueError as exc:  # the model's own validation, already naming its field
        raise Malformed("position", str(exc)) from None
    return PositionRecord(req_int(need(fields, "con_id"), "con_id", lo=1), position,
                          req_float(need(fields, "realised_today_usd"), "realised_today_usd"),
                          opt_instant(fields.get("opened"), "opened"))


def position_from_redis(fields: Mapping[str, str], *, key: str) -> PositionRecord | Absent:
    return decode(key, dict(fields), _parse)
