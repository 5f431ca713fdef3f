"""The typed shape of an open position in Redis (``positions:open:{account}:{conId}``), written by `qc execute`.

One hash per contract, never expiring (a position outlives any process). Fields, all strings:

==================  ===============================================================
v                   schema version (1)
con_id              the broker's contract id (> 0; must match the key's last part)
symbol              the underlying
sec_type            ``OPT`` or ``STK``
expiry              ``YYYY-MM-DD`` for an option, ``""`` for shares
strike              $ for an option, ``""`` for shares
right               ``C`` or ``P`` for an option, ``""`` for shares
multiplier          whole number ≥ 1 (100 for a standard option, 1 for shares)
qty                 signed whole number: + long, − short (contracts or shares)
avg_cost            $ per share paid (long) or received (short), ≥ 0
bucket              ``0dte``, ``1dte``, ``14dte`` or ``other``
realised_today_usd  $ realised today by this position
opened              ISO-8601 instant with its zone, or ``""``
==================  ===============================================================

The reader never raises: a missing or malformed field, a non-finite number, a fractional or
boolean quantity, an unknown bucket, an option without expiry, strike or right (or shares with
one), a ``con_id`` that disagrees with the key all give an :class:`~qc.core.codec.Absent` naming
the key and the field. An empty hash (the key is gone: the position closed) is ``missing``.
The record refuses on construction what the reader would refuse, so the writer cannot store a
hash that risk then skips.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from qc.core.codec import (
    MISSING,
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    need,
    opt_instant,
    req_float,
    req_str,
)
from qc.risk.model import BUCKETS, Bucket, ContractKey, Position, Right, SecType

SCHEMA = 1
FIELDS: tuple[str, ...] = (VERSION_FIELD, "con_id", "symbol", "sec_type", "expiry", "strike", "right", "multiplier",
                           "qty", "avg_cost", "bucket", "realised_today_usd", "opened")
MAX_QTY = 10_000_000          # contracts or shares; beyond it the hash is garbage, not a position
MAX_MULTIPLIER = 100_000
MAX_STRIKE = 1e7
MAX_PRICE = 1e9               # $ per share
_WHOLE = re.compile(r"[+-]?[0-9]{1,16}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """A position as the executor keeps it: the broker's conId, the holding, what it realised today."""

    con_id: int
    position: Position
    realised_today_usd: float = 0.0
    opened: datetime | None = None

    def __post_init__(self) -> None:
        """Refuse here what :func:`position_from_redis` would refuse, so a stored record always reads back."""
        if isinstance(self.con_id, bool) or not isinstance(self.con_id, int) or self.con_id <= 0:
            raise ValueError(f"PositionRecord.con_id: must be a whole number > 0, got {self.con_id!r}")
        if not math.isfinite(self.realised_today_usd):
            raise ValueError(f"PositionRecord.realised_today_usd: must be finite, got {self.realised_today_usd!r}")
        if self.opened is not None and self.opened.utcoffset() is None:
            raise ValueError(f"PositionRecord.opened: must be tz-aware, got {self.opened!r}")
        p, c = self.position, self.position.contract
        if isinstance(p.quantity, bool) or not isinstance(p.quantity, int) or abs(p.quantity) > MAX_QTY:
            raise ValueError(f"PositionRecord.qty: must be a whole number within ±{MAX_QTY}, got {p.quantity!r}")
        if not 0.0 <= p.avg_cost <= MAX_PRICE:
            raise ValueError(f"PositionRecord.avg_cost: must be in [0, {MAX_PRICE:g}] $ per share, got {p.avg_cost!r}")
        if c.multiplier > MAX_MULTIPLIER or isinstance(c.multiplier, bool):
            raise ValueError(f"PositionRecord.multiplier: must be ≤ {MAX_MULTIPLIER}, got {c.multiplier!r}")
        if c.strike is not None and c.strike > MAX_STRIKE:
            raise ValueError(f"PositionRecord.strike: must be ≤ {MAX_STRIKE:g}, got {c.strike!r}")


def position_to_redis(rec: PositionRecord) -> dict[str, str]:
    """The hash the executor stores: every field always present (``""`` where shares have none)."""
    c, p = rec.position.contract, rec.position
    return {VERSION_FIELD: str(SCHEMA), "con_id": str(rec.con_id), "symbol": c.underlying, "sec_type": c.sec_type,
            "expiry": c.expiry.isoformat() if c.expiry is not None else "",
            "strike": repr(float(c.strike)) if c.strike is not None else "",
            "right": c.right or "", "multiplier": str(c.multiplier), "qty": str(p.quantity),
            "avg_cost": repr(float(p.avg_cost)), "bucket": p.bucket,
            "realised_today_usd": repr(float(rec.realised_today_usd)),
            "opened": rec.opened.isoformat() if rec.opened is not None else ""}


def _whole(raw: object, name: str, *, lo: int, hi: int) -> int:
    """Digits only: ``1.0``, ``1e3``, ``true`` or ``1_000`` are not what the writer stores, so garbage."""
    text = req_str(raw, name, empty=False)
    if not _WHOLE.fullmatch(text):
        raise Malformed(name, f"is not a whole number ({text[:40]!r})")
    value = int(text)
    if not lo <= value <= hi:
        raise Malformed(name, f"is {value}, outside [{lo}, {hi}]")
    return value


def _expiry(raw: object) -> date:
    text = req_str(raw, "expiry", empty=False)
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise Malformed("expiry", f"is not a YYYY-MM-DD date ({text[:20]!r})") from None


def _sec_type(raw: object) -> SecType:
    return "OPT" if req_str(raw, "sec_type", choices=("OPT", "STK")) == "OPT" else "STK"


def _right(raw: object) -> Right:
    return "C" if req_str(raw, "right", choices=("C", "P")) == "C" else "P"


def _bucket(raw: object) -> Bucket:
    name = req_str(raw, "bucket", choices=BUCKETS)
    return next(b for b in BUCKETS if b == name)


def _con_id_of(key: str) -> int | None:
    """The conId a ``positions:open:{account}:{conId}`` key names (None for a key of another shape)."""
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isascii() and tail.isdigit() else None


def _parse(fields: Mapping[str, str], key: str) -> PositionRecord:
    check_version(fields, SCHEMA)
    con_id = _whole(need(fields, "con_id"), "con_id", lo=1, hi=2**53)
    expected = _con_id_of(key)
    if expected is not None and expected != con_id:
        raise Malformed("con_id", f"is {con_id}, the key names {expected}")
    symbol = req_str(need(fields, "symbol"), "symbol", empty=False)
    sec_type = _sec_type(need(fields, "sec_type"))
    raw_expiry, raw_strike, raw_right = need(fields, "expiry"), need(fields, "strike"), need(fields, "right")
    expiry: date | None = None
    strike: float | None = None
    right: Right | None = None
    if sec_type == "OPT":
        expiry = _expiry(raw_expiry)
        strike = req_float(raw_strike, "strike", lo=1e-9, hi=MAX_STRIKE)
        right = _right(raw_right)
    else:
        for name, raw in (("expiry", raw_expiry), ("strike", raw_strike), ("right", raw_right)):
            if raw != "":
                raise Malformed(name, f"is {str(raw)[:20]!r}: shares have none")
    multiplier = _whole(need(fields, "multiplier"), "multiplier", lo=1, hi=MAX_MULTIPLIER)
    qty = _whole(need(fields, "qty"), "qty", lo=-MAX_QTY, hi=MAX_QTY)
    avg_cost = req_float(need(fields, "avg_cost"), "avg_cost", lo=0.0, hi=MAX_PRICE)
    bucket = _bucket(need(fields, "bucket"))
    realised = req_float(need(fields, "realised_today_usd"), "realised_today_usd")
    opened = opt_instant(need(fields, "opened"), "opened")
    try:
        contract = ContractKey(symbol, sec_type, expiry, strike, right, multiplier)
        return PositionRecord(con_id, Position(contract, qty, avg_cost, bucket), realised, opened)
    except ValueError as exc:  # the model's own validation names its field; fields above should catch all
        raise Malformed("position", str(exc)) from None


def position_from_redis(fields: Mapping[str, str], *, key: str) -> PositionRecord | Absent:
    """The record in one ``positions:open:…`` hash (HGETALL's reply), or an Absent saying which field is bad."""
    if not fields:
        return Absent(key, MISSING)
    return decode(key, dict(fields), lambda d: _parse(d, key))
