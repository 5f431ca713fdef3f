"""The typed shape of the risk values in Redis: the latched trading state, one JSON per scope; the halt
request `qc risk halt` leaves for the executor; each latch transition (log and breaches); the breakers'
readings; the pre-trade verdicts.

``risk:state:{account}`` holds one field per scope (``account``, or an underlying) whose value is a
:class:`~qc.risk.state.Latch` as JSON with ``v``. A reader gets the latch or an ``Absent`` naming the
field; a scope with no field is ACTIVE (nothing ever latched it), never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Protocol

from qc.core.codec import (
    VERSION_FIELD,
    Absent,
    Malformed,
    check_version,
    decode,
    dumps,
    loads_json,
    loads_object,
    need,
    opt_instant,
    req_instant,
    req_str,
)
from qc.risk.breakers import Reading
from qc.risk.state import Latch, TradingState

log = logging.getLogger(__name__)
SCHEMA = 1
READING_FIELDS = ("scope", "breaker", "value", "trips_at", "clears_at")


def latch_to_redis(latch: Latch) -> str:
    return dumps({VERSION_FIELD: SCHEMA, "state": latch.state.name, "cause": latch.cause, "by": latch.by,
                  "reason": latch.reason, "since": latch.since.isoformat() if latch.since else None})


def latch_from_redis(raw: str | None, *, key: str) -> Latch | Absent:
    def parse(text: str) -> Latch:
        d = loads_object(text, "trading state")
        check_version(d, SCHEMA)
        name = req_str(need(d, "state"), "state", choices=[s.name for s in TradingState])
        return Latch(TradingState[name], req_str(d.get("cause", ""), "cause"), req_str(d.get("by", ""), "by"),
                     req_str(d.get("reason", ""), "reason"), opt_instant(d.get("since"), "since"))

    return decode(key, raw, parse)


def latches_from_redis(raw: Mapping[str, str], *, key: str) -> dict[str, Latch | Absent]:
    """Every scope's latch in a ``risk:state:{account}`` hash (a malformed one as Absent, never ACTIVE)."""
    return {scope: latch_from_redis(value, key=f"{key}[{scope}]") for scope, value in raw.items()}


@dataclass(frozen=True, slots=True)
class TransitionEntry:
    """One entry of ``risk:state:log:{account}`` (and, when a breaker made it stricter, of the breach log):
    ``scope``'s latch went from ``before`` to ``after`` at ``at``, for ``cause``, by ``by``."""

    scope: str
    before: TradingState
    after: TradingState
    cause: str
    by: str
    reason: str
    at: datetime | None

    def view(self) -> dict[str, Any]:
        """The entry as `qc risk status --json` and the dashboard show it."""
        return {"scope": self.scope, "from": self.before.name, "to": self.after.name, "cause": self.cause,
                "by": self.by, "reason": self.reason, "at": self.at.isoformat() if self.at else None}

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, **self.view()})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> TransitionEntry | Absent:
        def parse(text: str) -> TransitionEntry:
            d = loads_object(text, "transition")
            if VERSION_FIELD in d:  # entries logged before the version field read the same
                check_version(d, SCHEMA)
            states = [s.name for s in TradingState]
            return cls(req_str(need(d, "scope"), "scope", empty=False),
                       TradingState[req_str(need(d, "from"), "from", choices=states)],
                       TradingState[req_str(need(d, "to"), "to", choices=states)],
                       req_str(d.get("cause", ""), "cause"), req_str(d.get("by", ""), "by"),
                       req_str(d.get("reason", ""), "reason"), opt_instant(d.get("at"), "at"))

        return decode(key, raw, parse)


class Shown(Protocol):
    def view(self) -> dict[str, Any]: ...


def views(raws: Iterable[str], key: str, decode: Callable[[str], Shown | Absent]) -> list[dict[str, Any]]:
    """Log entries as shown (transitions, breaches, verdicts); one that does not decode is logged, left out."""
    out: list[dict[str, Any]] = []
    for raw in raws:
        got = decode(raw)
        if isinstance(got, Absent):
            log.warning("%s: %s entry not shown: %.80r", got, key, raw)
        else:
            out.append(got.view())
    return out


def readings_to_redis(readings: Sequence[Reading]) -> str:
    """``risk:breakers:{account}``: every breaker's reading now, a JSON list."""
    return dumps([asdict(r) for r in readings])


def readings_from_redis(raw: str | None, *, key: str) -> tuple[Reading, ...] | Absent:
    def parse(text: str) -> tuple[Reading, ...]:
        doc = loads_json(text)
        if not isinstance(doc, list):
            raise Malformed("readings", "is not a list")
        out: list[Reading] = []
        for i, r in enumerate(doc):
            if not isinstance(r, dict):
                raise Malformed(f"readings[{i}]", "is not an object")
            path = f"readings[{i}]"
            missing = [f for f in READING_FIELDS if f not in r]
            if missing:
                raise Malformed(f"{path}.{missing[0]}", "missing (partial value)")
            out.append(Reading(*(req_str(r[f], f"{path}.{f}") for f in READING_FIELDS)))
        return tuple(out)

    return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class HaltRequest:
    """``risk:halt:{account}``: the executor halts and acknowledges ``id`` (``execution:halt_ack:{account}``)."""

    id: str
    at: datetime
    by: str
    reason: str

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, "id": self.id, "at": self.at.isoformat(), "by": self.by,
                      "reason": self.reason})

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> HaltRequest | Absent:
        def parse(text: str) -> HaltRequest:
            d = loads_object(text, "halt request")
            if VERSION_FIELD in d:  # written before the version field: still a halt, never ignored for it
                check_version(d, SCHEMA)
            return cls(req_str(need(d, "id"), "id", empty=False), req_instant(need(d, "at"), "at"),
                       req_str(d.get("by", ""), "by"), req_str(d.get("reason", ""), "reason"))

        return decode(key, raw, parse)


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """``risk:verdict:{signal}`` and each entry of ``risk:verdicts``: `qc risk`'s pre-trade verdict on a signal."""

    signal: str
    symbol: str
    strategy: str
    approved: bool
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    at: datetime

    def to_redis(self) -> str:
        return dumps({VERSION_FIELD: SCHEMA, **self.view()})

    def view(self) -> dict[str, Any]:
        """The verdict as `qc risk status --json` and the dashboard show it."""
        return {"signal": self.signal, "symbol": self.symbol, "strategy": self.strategy, "approved": self.approved,
                "codes": sorted(self.codes), "reasons": list(self.reasons), "at": self.at.isoformat()}

    @classmethod
    def from_redis(cls, raw: str | None, *, key: str) -> RiskVerdict | Absent:
        def parse(text: str) -> RiskVerdict:
            d = loads_object(text, "verdict")
            if VERSION_FIELD in d:  # verdicts written before the version field read the same
                check_version(d, SCHEMA)
            approved = need(d, "approved")
            if not isinstance(approved, bool):
                raise Malformed("approved", f"is {approved!r}, not true or false")
            return cls(req_str(need(d, "signal"), "signal", empty=False), req_str(d.get("symbol", ""), "symbol"),
                       req_str(d.get("strategy", ""), "strategy"), approved, _strings(d.get("codes", []), "codes"),
                       _strings(d.get("reasons", []), "reasons"), req_instant(need(d, "at"), "at"))

        return decode(key, raw, parse)


def _strings(raw: object, name: str) -> tuple[str, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise Malformed(name, "is not a list")
    return tuple(req_str(x, f"{name}[{i}]") for i, x in enumerate(raw))
